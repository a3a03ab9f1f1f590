"""The ``factorkit`` command line: parses arguments, calls the public API, prints.

No logic lives here that the Python API lacks.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

import factorkit as fk
from factorkit._compile import compile_time, notify_first_compile
from factorkit._format import params_text, short
from factorkit._lazy import pandas as pd
from factorkit.data.hints import Placeholder, hint_style
from factorkit.data.interactions import DUPLICATE_POLICIES
from factorkit.exceptions import FactorkitError


def cli_models() -> dict[str, type]:
    """``--model`` names -> estimator classes, from each class's ``cli_name`` tag."""
    return {
        tags.cli_name: cls
        for _, cls in fk.all_estimators()
        if (tags := fk.get_tags(cls)).cli_name is not None
    }


BUILTIN_DATA = ("movielens-small", "ml-latest-small")
#: flags shared by all models -> parameter names
MODEL_FLAGS = {
    "factors": int,
    "epochs": int,
    "learning_rate": float,
    "regularization": float,
    "alpha": float,
    "random_state": int,
    "n_threads": int,
}


def _progress_default(args: argparse.Namespace) -> bool:
    return not args.quiet and sys.stderr.isatty()


# ---------------------------------------------------------------------- data and models
def load_data(args: argparse.Namespace) -> fk.Interactions:
    """DATA is a built-in name or a CSV/TSV/DAT/Parquet path (with column options)."""
    source = args.data
    if source in BUILTIN_DATA:
        return fk.datasets.load_movielens_small()
    path = Path(source)
    if not path.exists():
        raise FactorkitError(
            f"DATA {source!r} is neither a file nor a built-in data set; pass a CSV or Parquet "
            f"path, or one of {', '.join(BUILTIN_DATA)}"
        )
    if path.is_dir():
        return fk.datasets.read_movielens(path)
    columns = {
        "user": args.user_col,
        "item": args.item_col,
        "rating": None if args.implicit else args.rating_col,
        "timestamp": args.timestamp_col,
    }
    duplicates = getattr(args, "duplicates", "error")
    with hint_style(_data_flag):  # readers' fixes read as flags: "pass --sep ';'"
        if path.suffix.lower() in (".parquet", ".pq"):
            return fk.read_parquet(path, duplicates=duplicates, **columns)
        header = not args.no_header
        if not header:  # positions; a name is left for read_csv to explain
            columns = {k: _position(v) for k, v in columns.items()}
        sep = "\t" if args.sep == "\\t" else args.sep
        return fk.read_csv(path, sep=sep, header=header, duplicates=duplicates, **columns)


#: reader argument -> the data flag that sets it
DATA_FLAGS = {
    "user": "--user-col",
    "item": "--item-col",
    "rating": "--rating-col",
    "timestamp": "--timestamp-col",
    "sep": "--sep",
    "duplicates": "--duplicates",
}


def _data_flag(name: str, values: Any) -> str | None:
    """A reader's suggested argument as the flag a CLI user passes (see data.hints)."""
    if name == "header" and list(values) == [False]:
        return "--no-header"
    if name == "rating" and list(values) == [None]:
        return "--implicit"
    if name not in DATA_FLAGS:
        return None
    shown = [
        v if isinstance(v, Placeholder) else "'\\t'" if v == "\t" else shlex.quote(str(v))
        for v in values
    ]
    choices = shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " or " + shown[-1]
    return f"{DATA_FLAGS[name]} {choices}"


def _position(value: str | None) -> int | str | None:
    return int(value) if value is not None and value.strip().isdigit() else value


def load_training_data(args: argparse.Namespace) -> fk.Interactions:
    """DATA, with ``--min-rating`` turning ratings at or above it into implicit positives."""
    data = load_data(args)
    if getattr(args, "min_rating", None) is not None:
        data = data.to_implicit(min_value=args.min_rating)
    return data


def make_model(args: argparse.Namespace) -> Any:
    models = cli_models()
    if args.model not in models:
        raise FactorkitError(
            f"--model {args.model!r} is not a model name; choose one of "
            f"{', '.join(sorted(models))} (`factorkit models` lists them)"
        )
    cls = models[args.model]
    cls_name = cls.__name__
    model = cls()
    valid = set(model.get_params())
    params: dict[str, Any] = {}
    for name in MODEL_FLAGS:
        value = getattr(args, name, None)
        if value is None:
            continue
        if name not in valid:
            raise FactorkitError(
                f"--{name.replace('_', '-')} does not apply to {cls_name}; its parameters are "
                f"{', '.join(sorted(valid))}"
            )
        params[name] = value
    for item in args.param or []:
        key, sep, raw = item.partition("=")
        if not sep or key not in valid:
            raise FactorkitError(
                f"--param {item!r}: expected NAME=VALUE with NAME one of {', '.join(sorted(valid))}"
            )
        params[key] = _parse_value(raw)
    if "random_state" in valid and "random_state" not in params:
        params["random_state"] = 0
    if "progress" in valid:
        params["progress"] = _progress_default(args)
    return model.set_params(**params)


#: Python's spellings of the JSON constants, as users type them in --param
_PYTHON_CONSTANTS = {"True": True, "False": False, "None": None}


def _parse_value(raw: str) -> Any:
    """A ``--param`` value: JSON (``true``, ``0.1``, ``[1, 2]``), ``True`` / ``False`` /
    ``None`` as Python spells them, else the text itself."""
    if raw in _PYTHON_CONSTANTS:
        return _PYTHON_CONSTANTS[raw]
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def _coerce_ids(values: list[str], idmap: fk.IdMap) -> list[Any]:
    """Command-line ids arrive as text; convert to int where the vocabulary holds ints."""
    if idmap.ids.dtype.kind in "iu":
        out = []
        for v in values:
            try:
                out.append(int(v))
            except ValueError:
                raise FactorkitError(
                    f"{idmap.kind} id {v!r} is not an integer, but this model's {idmap.kind} "
                    f"ids are integers (e.g. {idmap[0]})"
                ) from None
        return out
    return list(values)


def _print_ranked(model: Any, item_ids: np.ndarray, scores: np.ndarray) -> None:
    titles = model.item_titles(item_ids)
    if fk.get_tags(model).explicit:  # the predicted rating, before predict() clips it
        print("(score: predicted rating, unclipped; `factorkit predict` clips to the scale)")
    print(f"{'rank':>4}  {'item':>10}  {'score':>8}  title")
    for rank, (item, score, title) in enumerate(zip(item_ids, scores, titles, strict=True), 1):
        print(f"{rank:>4}  {item!s:>10}  {score:>8.4f}  {title}")


# ---------------------------------------------------------------------- commands
def cmd_demo(args: argparse.Namespace) -> int:
    from factorkit.data.summary import summarize

    if getattr(args, "serve", False):
        return _demo_serve(args)

    data = fk.datasets.load_movielens_small()
    print("factorkit demo on the built-in MovieLens small data set (ml-latest-small, GroupLens)")
    print()
    print(summarize(data, name="MovieLens small"))
    if not hasattr(fk, "BiasedMF"):
        return 0
    print()
    train, test = fk.split.random(data, test_size=0.2, random_state=0)
    print(f"held-out split: {len(train):,} training and {len(test):,} test ratings (80/20)")
    results = []
    compiling = 0.0
    for label, model in (
        ("BaselineOnly", fk.BaselineOnly()),
        ("BiasedMF", fk.BiasedMF(random_state=0, progress=_progress_default(args))),
    ):
        elapsed, compiled = _timed_fit(model, train)
        compiling += compiled
        scores = fk.evaluate(model, test, metrics=["rmse", "mae"])
        results.append((label, scores["rmse"], scores["mae"], elapsed, model))
    print()
    print(f"{'model':<14}{'RMSE':>8}{'MAE':>8}{'fit s':>8}")
    for label, r, m, t, _ in results:
        print(f"{label:<14}{r:>8.4f}{m:>8.4f}{t:>8.2f}")
    if compiling >= 0.05:
        print(f"(fit times exclude {compiling:.1f} s of one-off kernel compilation)")
    model = results[-1][-1]
    titles = data.item_metadata["title"] if data.item_metadata is not None else None
    print()
    print("Top 5 movies each user has not rated, by BiasedMF's predicted rating")
    lo, hi = model.rating_scale_
    print(f"(the model's score, unclipped; predict() clips it to the {lo:g}-{hi:g} rating scale):")
    for user in data.user_map.ids[:3]:
        items, scores = model.recommend(user, k=5)
        print(f"  user {user}:")
        for item, score in zip(items, scores, strict=True):
            title = titles.get(item, "") if titles is not None else ""
            print(f"    {score:.2f}  {title} [{item}]")
    return 0


def _timed_fit(
    model: Any, data: fk.Interactions, sample_weight: np.ndarray | None = None
) -> tuple[float, float]:
    """Fit; return (seconds of work, seconds of kernel compilation), measured apart."""
    with compile_time() as compiled:
        t0 = time.perf_counter()
        if sample_weight is None:
            model.fit(data)
        else:
            model.fit(data, sample_weight=sample_weight)
        elapsed = time.perf_counter() - t0
    return max(0.0, elapsed - compiled.seconds), compiled.seconds


def _demo_serve(args: argparse.Namespace) -> int:
    """Fit the demo recommender (ImplicitALS on MovieLens small) and serve its web page."""
    import tempfile

    path = Path(args.model_out or Path(tempfile.mkdtemp(prefix="factorkit-demo-")) / "demo.fk")
    data = fk.datasets.load_movielens_small()
    print(f"fitting ImplicitALS on MovieLens small ({len(data):,} ratings) ...", flush=True)
    model = fk.ImplicitALS(factors=64, epochs=15, random_state=0, progress=False).fit(data)
    model.save(path)
    print(f"saved to {path}; open http://{args.host}:{args.port}/ (Ctrl+C stops)", flush=True)
    return _serve(path, args)


def _serve(path: Any, args: argparse.Namespace) -> int:
    try:
        from factorkit import serve
    except ImportError as exc:
        raise FactorkitError(str(exc)) from None
    serve.run(
        path,
        host=args.host,
        port=args.port,
        workers=getattr(args, "workers", 1),
        admin_token=getattr(args, "admin_token", None),
        log_level="warning" if args.quiet else "info",
    )
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    return _serve(args.model_file, args)


def _time_decay_weights(args: argparse.Namespace, data: fk.Interactions) -> np.ndarray | None:
    """``--time-decay HALF_LIFE``: fit's sample weights from the data's timestamps."""
    if args.time_decay is None:
        return None
    if not data.has_timestamps:
        raise FactorkitError(
            "--time-decay weighs each rating by its age and needs the times: pass "
            "--timestamp-col COLUMN (Unix seconds)"
        )
    text = args.time_decay.strip()
    try:
        half_life: Any = float(text)
    except ValueError:
        half_life = text
    try:
        return fk.time_decay(data, half_life=half_life)
    except fk.exceptions.InvalidParameterError:
        raise FactorkitError(
            "--time-decay must be a positive number of seconds or a number with a unit (s, "
            f"min, h, d, w, y), e.g. --time-decay 180d; got {args.time_decay!r}"
        ) from None


def cmd_fit(args: argparse.Namespace) -> int:
    data = load_training_data(args)
    model = make_model(args)
    weights = _time_decay_weights(args, data)
    elapsed, compiled = _timed_fit(model, data, weights)
    model.save(args.out)
    if not args.quiet:
        extra = (
            f" (+ {compiled:.1f} s compiling kernels, first run only)" if compiled >= 0.05 else ""
        )
        print(f"fitted {model!r} on {len(data):,} interactions in {elapsed:.2f} s{extra}")
        if weights is not None:
            print(
                f"weighted by age: half-life {args.time_decay}, weights "
                f"{weights.min():.3g} (oldest) to {weights.max():.3g} (latest)"
            )
        print(f"saved to {args.out}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    model = fk.load(args.model_file)
    users = _coerce_ids([args.user], model.user_map_)
    items = _coerce_ids(args.item, model.item_map_)
    with warnings.catch_warnings():
        # said below in the CLI's own terms (the library's warning speaks Python)
        warnings.simplefilter("ignore", fk.exceptions.DataWarning)
        preds = model.predict(users * len(items), items, unknown=args.unknown)
    unknown = (model.user_map_.lookup(users)[0] < 0) | (model.item_map_.lookup(items) < 0)
    if unknown.any() and args.unknown == "fallback":
        print(
            f"factorkit predict: warning: {int(unknown.sum())} of {len(items)} (user, item) "
            "pairs have a user or item the model does not know; they get the fallback "
            "prediction (global mean plus the known bias). Pass --unknown nan or --unknown "
            "error to mark or reject them.",
            file=sys.stderr,
        )
    for item, p in zip(items, preds, strict=True):
        print(f"user {users[0]}\titem {item}\t{p:.4f}")
    return 0


def cmd_recommend(args: argparse.Namespace) -> int:
    model = fk.load(args.model_file)
    if args.all:
        if not args.out:
            raise FactorkitError("--all writes to a file: pass --out recs.parquet (or .csv)")
        return _recommend_all(model, args)
    if args.user is None:
        raise FactorkitError("pass --user USER for one user, or --all --out FILE for everyone")
    user = _coerce_ids([args.user], model.user_map_)[0]
    items, scores = model.recommend(user, k=args.k, exclude_seen=not args.include_seen)
    _print_ranked(model, items, scores)
    if getattr(args, "explain", False):
        _print_explanations(model, user, items)
    return 0


def _print_explanations(model: Any, user: Any, items: np.ndarray) -> None:
    """For each recommended item, the user's items that contributed most to its score."""
    print()
    for item in items.tolist():
        e = model.explain(user, item)
        top = e.contributions[:3]
        titles = model.item_titles([i for i, _ in top])
        because = "; ".join(f"{t or i} ({c:+.3f})" for (i, c), t in zip(top, titles, strict=True))
        print(f"{item!s:>10}  because of {because}  [{e.method}]")


def _recommend_all(model: Any, args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    out = Path(args.out)
    parquet = out.suffix.lower() in (".parquet", ".pq")
    if parquet:
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise FactorkitError(
                "writing Parquet needs pyarrow: pip install 'factorkit[parquet]', or use --out "
                "recs.csv"
            ) from None
    n_users = len(model.user_map_)
    bar = tqdm(total=n_users, unit="user", desc="recommend", disable=not _progress_default(args))
    writer = None
    first = True
    try:
        for users, items, scores in model.recommend_all(k=args.k, batch_size=args.batch_size):
            k = items.shape[1]
            frame = pd.DataFrame(
                {
                    "user": np.repeat(users, k),
                    "rank": np.tile(np.arange(1, k + 1), len(users)),
                    "item": items.ravel(),
                    "score": scores.ravel(),
                }
            )
            frame = frame[frame["score"].notna()]
            if parquet:
                table = pa.Table.from_pandas(frame, preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(out, table.schema)
                writer.write_table(table)
            else:
                frame.to_csv(out, mode="w" if first else "a", header=first, index=False)
            first = False
            bar.update(len(users))
    finally:
        bar.close()
        if writer is not None:
            writer.close()
    if not args.quiet:
        print(f"wrote top-{args.k} recommendations for {n_users:,} users to {out}")
    return 0


def cmd_similar(args: argparse.Namespace) -> int:
    model = fk.load(args.model_file)
    item = _coerce_ids([args.item], model.item_map_)[0]
    title = model.item_titles([item])[0]
    print(f"items most similar to {item}" + (f" ({title})" if title else ""))
    items, scores = model.similar_items(item, k=args.k)
    _print_ranked(model, items, scores)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    data = load_training_data(args)
    model = make_model(args)
    if "progress" in model.get_params():
        model.set_params(progress=False)
    if args.metrics:
        metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    elif fk.get_tags(model).explicit:
        metrics = ["rmse", "mae"]
    else:
        metrics = ["precision@10", "recall@10", "ndcg@10", "coverage@10"]
    result = fk.cross_validate(
        model,
        data,
        cv=args.cv,
        metrics=metrics,
        random_state=args.seed,
        progress=_progress_default(args),
    )
    print(f"{model!r}: {args.cv}-fold cross-validation on {len(data):,} interactions")
    table = result.summary()
    print(table.to_string(float_format=lambda x: f"{x:.4f}"))
    if args.report:
        # the report's test metrics and figures come from the first of the same folds
        train, test = next(iter(fk.split.kfold(data, k=args.cv, random_state=args.seed)))
        _write_report(
            args.report,
            model=fk.clone(model).fit(train),
            train=train,
            test=test,
            title=f"{type(model).__name__} on {args.data}",
            cv_result=result,
            data_name=args.data,
            split=(
                f"fold 0 of the {args.cv}-fold split of the cross-validation "
                f"(fk.split.kfold, seed {args.seed}): {len(train):,} train / {len(test):,} "
                "test interactions"
            ),
        )
    return 0


def _write_report(directory: str, **kwargs: Any) -> None:
    """Write the HTML report (needs matplotlib) and say where it is."""
    from factorkit.report import write_report

    path = write_report(directory, **kwargs)
    print(f"report written to {path}")


#: what ``factorkit tune`` hands to :func:`report_tune` (the API's result object)
TuneOutcome = fk.evaluation.TuneResult


def _read_space(text: str) -> Any:
    """--param-grid: inline JSON or a path to a JSON file."""
    path = Path(text)
    raw = path.read_text() if not text.lstrip().startswith("{") and path.exists() else text
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise FactorkitError(
            f"--param-grid must be a JSON object or a JSON file, e.g. "
            f'\'{{"factors": [50, 100], "learning_rate": {{"loguniform": [0.005, 0.05]}}}}\'; '
            f"{exc}"
        ) from None


def cmd_tune(args: argparse.Namespace) -> int:
    data = load_training_data(args)
    base = make_model(args)
    # parameters given on the command line stay out of the built-in space
    fixed = {name for name in MODEL_FLAGS if getattr(args, name, None) is not None}
    fixed |= {item.partition("=")[0] for item in args.param or []}
    outcome = fk.tune(
        base,
        data,
        search=args.search,
        param_space=_read_space(args.param_grid) if args.param_grid else None,
        n_iter=args.n_iter,
        cv="holdout" if args.holdout is not None else args.cv,
        validation_size=args.holdout if args.holdout is not None else 0.2,
        metric=args.metric,
        test_size=args.test_size,
        fixed=fixed,
        halving=args.halving,
        factor=args.factor,
        random_state=args.seed,
        n_jobs=args.n_jobs,
        progress=_progress_default(args),
    )
    return report_tune(outcome.search, outcome, args)


def report_tune(search: Any, outcome: TuneOutcome, args: argparse.Namespace) -> int:
    """Print the fitted search: top settings, best parameters, tuned vs default held-out score.

    The end of ``factorkit tune``; a report writer (``--report DIR``) hooks in here.
    """

    m = outcome.metric
    print(format_search_table(search, top=args.top))
    print()
    print(f"best parameters: {params_text(search.best_params_)}")
    better = "higher" if outcome.greater_is_better else "lower"
    print(
        f"held-out {m} on {outcome.n_test:,} test interactions ({better} is better; split "
        f"{outcome.test_split}, seed {args.seed}, never seen by the search):"
    )
    print(f"  tuned     {outcome.tuned_score:.4f}  best parameters, refitted on all tuning data")
    print(f"  defaults  {outcome.default_score:.4f}  {outcome.default_model!r}")
    if abs(outcome.gain) < 5e-5:
        print("  tuned matches defaults (difference < 0.0001)")
    else:
        verdict = "better" if outcome.gain > 0 else "worse"
        print(
            f"  tuned is {verdict} than defaults by {abs(outcome.gain):.4f} "
            f"({abs(100 * outcome.relative_gain):.2f}%)"
        )
    n_fits = len(search.cv_results_) * search.n_splits_
    print(
        f"search: {len(search.cv_results_)} settings, {n_fits} fits in "
        f"{search.search_time_:.1f} s wall / {search.search_cpu_time_:.1f} s CPU; "
        f"tune (split, search, refit, defaults) {outcome.wall_time:.1f} s wall / "
        f"{outcome.cpu_time:.1f} s CPU"
    )
    if args.report:
        _write_report(
            args.report,
            model=search.best_estimator_,
            train=outcome.tune_set,
            test=outcome.test,
            title=f"{outcome.model_name} tuned on {args.data}",
            search=search,
            data_name=args.data,
            split=outcome.split_description,
        )
    return 0


def format_search_table(search: Any, top: int = 10) -> str:
    """The top settings of a fitted search as a plain-text table."""

    table = search.summary(top=top)
    m = search.metric_
    n = search.n_splits_
    how = f"mean over {n} folds" if n > 1 else "one validation split"
    rename = {f"mean_{m}": m, f"std_{m}": "std", "mean_fit_time": "fit s"}
    if n == 1:
        table = table.drop(columns=[f"std_{m}"])
    epochs = table.pop("mean_epochs") if "mean_epochs" in table else None
    if epochs is not None and "epochs" in table and not (epochs == table["epochs"]).all():
        table["epochs run"] = epochs  # early stopping cut training short
    table = table.rename(columns=rename)
    formatters: dict[str, Any] = {}
    for col in table.columns:
        if col in (m, "std"):
            formatters[col] = "{:.4f}".format
        elif col == "fit s":
            formatters[col] = "{:.2f}".format
        elif col == "epochs run":
            formatters[col] = "{:.1f}".format
        elif table[col].dtype.kind == "f":
            formatters[col] = short
    title = f"top {len(table)} of {len(search.cv_results_)} settings by {m} ({how})"
    return title + "\n" + table.to_string(index=False, formatters=formatters)


def cmd_info(args: argparse.Namespace) -> int:
    from factorkit.persistence import read_metadata

    model = fk.load(args.model_file)  # verifies every array, not only the metadata
    meta = read_metadata(args.model_file)
    tags = fk.get_tags(model)
    print(f"model:      {meta['class']} ({tags.feedback} feedback)")
    print(f"factorkit:  {meta['factorkit_version']} (format {meta['format_version']})")
    params = ", ".join(f"{k}={v!r}" for k, v in meta["params"].items())
    print(f"parameters: {params}")
    print(f"users:      {len(model.user_map_):,}")
    print(f"items:      {len(model.item_map_):,}")
    if tags.has_factors:
        print(f"factors:    {model.user_factors_.shape[1]} per user and per item")
    if meta.get("history"):
        last = meta["history"][-1]
        print(f"trained:    {last.get('epoch')} epochs, final loss {last.get('loss'):.4f}")
    print("file:       verified (checksums, and every array against the id vocabularies)")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    """Every estimator with its declared tags (what ``--model`` accepts, and more)."""
    rows = []
    for name, cls in fk.all_estimators():
        tags = fk.get_tags(cls)
        abilities = [
            label
            for label, flag in (
                ("recommend", tags.can_recommend),
                ("similar", tags.can_find_similar),
                ("fold-in", tags.can_fold_in),
                ("partial-fit", tags.can_partial_fit),
            )
            if flag
        ]
        rows.append(
            {
                "--model": tags.cli_name or "-",
                "class": name,
                "kind": tags.kind,
                "feedback": tags.feedback,
                "factors": "yes" if tags.has_factors else "no",
                "can": ", ".join(abilities) or "-",
            }
        )
    print(pd.DataFrame(rows).to_string(index=False))
    return 0


# ---------------------------------------------------------------------- parser
def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", help=f"CSV/Parquet path or built-in name ({', '.join(BUILTIN_DATA)})")
    p.add_argument("--user-col", default="userId", help="user id column (default userId)")
    p.add_argument("--item-col", default="movieId", help="item id column (default movieId)")
    p.add_argument("--rating-col", default="rating", help="rating column (default rating)")
    p.add_argument("--timestamp-col", default=None, help="timestamp column (optional)")
    p.add_argument("--implicit", action="store_true", help="no rating column: implicit 1.0")
    p.add_argument("--sep", default=",", help="field separator: , \\t ; | :: (default ,)")
    p.add_argument(
        "--duplicates",
        choices=DUPLICATE_POLICIES,
        default="error",
        help="repeated (user, item) pairs: error (default), keep the last, mean or sum",
    )
    p.add_argument(
        "--no-header", action="store_true", help="file has no header; columns by 0-based position"
    )
    p.add_argument(
        "--min-rating",
        type=float,
        help="implicit feedback from ratings: keep ratings >= this as positives (value 1)",
    )


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model", required=True, metavar="NAME", help="model to fit (see `factorkit models`)"
    )
    p.add_argument("--factors", type=int)
    p.add_argument("--epochs", type=int)
    p.add_argument("--learning-rate", dest="learning_rate", type=float)
    p.add_argument("--regularization", type=float)
    p.add_argument("--alpha", type=float, help="implicit confidence weight")
    p.add_argument(
        "--random-state", dest="random_state", type=int, help="seed (default 0: repeatable runs)"
    )
    p.add_argument("--n-threads", dest="n_threads", type=int)
    p.add_argument("--param", action="append", metavar="NAME=VALUE", help="any other parameter")


# ------------------------------------------------------------- low-rank modelling (issue 12)
def cmd_compress(args: argparse.Namespace) -> int:
    """Keep an image or a weight matrix at low rank (fk.decomposition.compress)."""
    result = fk.decomposition.compress(
        args.input, rank=args.rank, energy=args.energy, max_error=args.max_error,
        out=args.out, report=args.report, key=args.key,
    )  # fmt: skip
    print(result.report)
    print(f"wrote {args.out}" + (f" and {args.report}/report.md" if args.report else ""))
    return 0


def cmd_topics(args: argparse.Namespace) -> int:
    """NMF topics of a corpus; prints top words, writes document-topic weights (CSV)."""
    if args.corpus in BUILTIN_DATA:
        movies = fk.decomposition.movie_documents()
        documents, names = movies["text"], movies["title"]
    else:
        documents = fk.decomposition.read_documents(args.corpus)
        names = None
    model = fk.decomposition.topics(
        documents, args.topics, max_features=args.max_features, top=args.top,
        random_state=args.random_state,
    )  # fmt: skip
    print(model)
    model.document_frame(names).to_csv(args.out, index=False)
    n_docs = len(model.document_topics)
    print(f"wrote document-topic weights for {n_docs:,} documents to {args.out}")
    return 0


def _add_decomposition_commands(sub: Any) -> None:
    p = sub.add_parser(
        "compress", help="keep an image or a weight matrix (.npy/.npz/.safetensors) at low rank"
    )
    p.add_argument("input", help="image (.png, .jpg, ...) or weight file")
    crit = p.add_mutually_exclusive_group(required=True)
    crit.add_argument("--rank", type=int, help="keep this many singular triplets")
    crit.add_argument("--energy", type=float, help="smallest rank keeping this energy share")
    crit.add_argument("--max-error", type=float, help="smallest rank within this relative error")
    p.add_argument("--out", required=True, help=".npz/.safetensors factors, or an image file")
    p.add_argument("--report", help="folder for report.md and figures")
    p.add_argument("--key", help="array name inside a .npz/.safetensors file")
    p.set_defaults(func=cmd_compress)

    p = sub.add_parser("topics", help="NMF topic model of a corpus (top words per topic)")
    p.add_argument(
        "corpus", help="movielens-small, a .txt file (one document per line) or a folder of .txt"
    )
    p.add_argument("--topics", type=int, default=10, help="number of topics (default 10)")
    p.add_argument("--top", type=int, default=10, help="words shown per topic")
    p.add_argument("--max-features", type=int, default=1000, help="vocabulary size")
    p.add_argument("--random-state", type=int, default=0)
    p.add_argument("--out", default="document_topics.csv", help="CSV of document-topic weights")
    p.set_defaults(func=cmd_topics)


def build_parser() -> argparse.ArgumentParser:
    """Every subcommand's arguments, declared in one place.

    Long but flat: a list of argparse declarations, one block per subcommand, with the
    shared groups in ``_add_data_args`` / ``_add_model_args``; splitting it would scatter
    the command-line reference without removing any logic.
    """
    parser = argparse.ArgumentParser(
        prog="factorkit",
        description="Matrix factorization for recommenders: fit, evaluate, predict, recommend.",
    )
    parser.add_argument("--version", action="version", version=f"factorkit {fk.__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="fit and evaluate on the built-in MovieLens small data")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.add_argument("--serve", action="store_true", help="fit ImplicitALS and serve the web page")
    p.add_argument("--model-out", help="with --serve: where to save the model (default: temp)")
    p.add_argument("--host", default="127.0.0.1", help="with --serve (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="with --serve (default 8000)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("fit", help="fit a model and save it")
    _add_data_args(p)
    _add_model_args(p)
    p.add_argument("--out", required=True, help="where to save the model (e.g. model.fk)")
    p.add_argument(
        "--time-decay",
        metavar="HALF_LIFE",
        help="weigh each rating by its age, halving every HALF_LIFE (seconds, or e.g. 180d, "
        "12w, 1y); needs --timestamp-col",
    )
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser("predict", help="predict ratings with a saved model")
    p.add_argument("model_file")
    p.add_argument("--user", required=True)
    p.add_argument("--item", required=True, action="append", help="repeat for several items")
    p.add_argument("--unknown", default="fallback", choices=["fallback", "nan", "error"])
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("evaluate", help="cross-validate a model (RMSE and MAE per fold)")
    _add_data_args(p)
    _add_model_args(p)
    p.add_argument("--cv", type=int, default=5, help="number of folds (default 5)")
    p.add_argument(
        "--metrics",
        help="comma-separated metrics, e.g. rmse,mae or ndcg@10,recall@20 (default: rmse,mae "
        "for rating models, top-10 ranking metrics for implicit ones)",
    )
    p.add_argument("--report", metavar="DIR", help="also write an HTML report (needs matplotlib)")
    p.add_argument("--seed", type=int, default=0, help="fold assignment seed")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "tune",
        help="search hyper-parameters; report tuned vs default score on a held-out test set",
    )
    _add_data_args(p)
    _add_model_args(p)
    p.add_argument("--search", choices=["random", "grid"], default="random")
    p.add_argument("--n-iter", type=int, default=30, help="random search: settings (default 30)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--cv", type=int, default=3, help="cross-validation folds (default 3)")
    group.add_argument(
        "--holdout", type=float, metavar="FRACTION", help="score on one validation split instead"
    )
    p.add_argument(
        "--metric", help="metric to optimise (default rmse; ndcg@10 for implicit models)"
    )
    p.add_argument(
        "--param-grid",
        metavar="JSON",
        help='search space as JSON or a JSON file: {"factors": [50, 100], "learning_rate": '
        '{"loguniform": [0.005, 0.05]}} (default: the built-in space of the model)',
    )
    p.add_argument("--halving", action="store_true", help="successive halving over epochs")
    p.add_argument("--factor", type=float, default=3, help="halving factor (default 3)")
    p.add_argument("--test-size", type=float, default=0.2, help="held-out test share (default 0.2)")
    p.add_argument("--seed", type=int, default=0, help="seed of splits and sampling (default 0)")
    p.add_argument("--n-jobs", type=int, default=1, help="trials at once (-1: one per core)")
    p.add_argument("--top", type=int, default=10, help="settings shown (default 10)")
    p.add_argument("--report", metavar="DIR", help="also write an HTML report (needs matplotlib)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_tune)

    p = sub.add_parser("recommend", help="top-k items for a user, or for all users to a file")
    p.add_argument("model_file")
    p.add_argument("--user", help="raw user id")
    p.add_argument("-k", type=int, default=10, help="items per user (default 10)")
    p.add_argument("--include-seen", action="store_true", help="do not leave out seen items")
    p.add_argument("--explain", action="store_true", help="which of the user's items drove each")
    p.add_argument("--all", action="store_true", help="every training user (needs --out)")
    p.add_argument("--out", help="with --all: output .parquet or .csv (user, rank, item, score)")
    p.add_argument("--batch-size", type=int, default=4096, help="users per block with --all")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=cmd_recommend)

    p = sub.add_parser("similar", help="items most similar to an item (cosine of factors)")
    p.add_argument("model_file")
    p.add_argument("--item", required=True, help="raw item id")
    p.add_argument("-k", type=int, default=10)
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=cmd_similar)

    p = sub.add_parser("models", help="list every model with its tags")
    p.set_defaults(func=cmd_models)
    p = sub.add_parser("serve", help="serve a saved model over HTTP, with a web page")
    p.add_argument("model_file")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--admin-token", help="enables POST /admin/reload with this bearer token")
    p.add_argument("-q", "--quiet", action="store_true", help="log warnings only")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("info", help="describe a saved model")
    p.add_argument("model_file")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=cmd_info)
    _add_decomposition_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "quiet", False) and sys.stderr.isatty():
        notify_first_compile()
    try:
        return int(args.func(args) or 0)
    except (FactorkitError, FileNotFoundError) as exc:
        print(f"factorkit {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
