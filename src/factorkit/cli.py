"""The ``factorkit`` command line: parses arguments, calls the public API, prints.

No logic lives here that the Python API lacks.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import factorkit as fk
from factorkit.exceptions import FactorkitError

#: command-line model names -> public class names
MODELS = {
    "baseline": "BaselineOnly",
    "biased-mf": "BiasedMF",
    "svdpp": "SVDpp",
    "als": "ALS",
    "implicit-als": "ImplicitALS",
    "bpr": "BPR",
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
    if path.suffix.lower() in (".parquet", ".pq"):
        return fk.read_parquet(path, **columns)
    header = not args.no_header
    if not header:
        columns = {k: (int(v) if v is not None else None) for k, v in columns.items()}
    sep = "\t" if args.sep == "\\t" else args.sep
    return fk.read_csv(path, sep=sep, header=header, **columns)


def make_model(args: argparse.Namespace) -> Any:
    cls_name = MODELS[args.model]
    cls = getattr(fk, cls_name, None)
    if cls is None:
        raise FactorkitError(f"model {args.model!r} ({cls_name}) is not available in this build")
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


def _parse_value(raw: str) -> Any:
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
    print(f"{'rank':>4}  {'item':>10}  {'score':>8}  title")
    for rank, (item, score, title) in enumerate(zip(item_ids, scores, titles, strict=True), 1):
        print(f"{rank:>4}  {item!s:>10}  {score:>8.4f}  {title}")


# ---------------------------------------------------------------------- commands
def cmd_demo(args: argparse.Namespace) -> int:
    from factorkit.data.summary import summarize

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
    for label, model in (
        ("BaselineOnly", fk.BaselineOnly()),
        ("BiasedMF", fk.BiasedMF(random_state=0, progress=_progress_default(args))),
    ):
        t0 = time.perf_counter()
        model.fit(train)
        elapsed = time.perf_counter() - t0
        scores = fk.evaluate(model, test, metrics=["rmse", "mae"])
        results.append((label, scores["rmse"], scores["mae"], elapsed, model))
    print()
    print(f"{'model':<14}{'RMSE':>8}{'MAE':>8}{'fit s':>8}")
    for label, r, m, t, _ in results:
        print(f"{label:<14}{r:>8.4f}{m:>8.4f}{t:>8.2f}")
    model = results[-1][-1]
    titles = data.item_metadata["title"] if data.item_metadata is not None else None
    print()
    print("Predicted ratings for movies each user has not rated (top 5 by BiasedMF):")
    for user in data.user_map.ids[:3]:
        items, scores = model.recommend(user, k=5)
        print(f"  user {user}:")
        for item, score in zip(items, scores, strict=True):
            title = titles.get(item, "") if titles is not None else ""
            print(f"    {min(score, 5.0):.2f}  {title} [{item}]")
    return 0


def cmd_fit(args: argparse.Namespace) -> int:
    data = load_data(args)
    model = make_model(args)
    t0 = time.perf_counter()
    model.fit(data)
    elapsed = time.perf_counter() - t0
    model.save(args.out)
    if not args.quiet:
        print(f"fitted {model!r} on {len(data):,} interactions in {elapsed:.2f} s")
        print(f"saved to {args.out}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    model = fk.load(args.model_file)
    users = _coerce_ids([args.user], model.user_map_)
    items = _coerce_ids(args.item, model.item_map_)
    preds = model.predict(users * len(items), items, unknown=args.unknown)
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
    return 0


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
    data = load_data(args)
    model = make_model(args)
    if "progress" in model.get_params():
        model.set_params(progress=False)
    folds = fk.split.kfold(data, k=args.cv, random_state=args.seed)
    result = fk.cross_validate(model, data, cv=folds, metrics=["rmse", "mae"])
    print(f"{model!r}: {args.cv}-fold cross-validation on {len(data):,} interactions")
    table = result.summary()
    print(table.to_string(float_format=lambda x: f"{x:.4f}"))
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from factorkit.persistence import read_metadata

    meta = read_metadata(args.model_file)
    print(f"model:      {meta['class']}")
    print(f"factorkit:  {meta['factorkit_version']} (format {meta['format_version']})")
    params = ", ".join(f"{k}={v!r}" for k, v in meta["params"].items())
    print(f"parameters: {params}")
    shapes = meta["arrays"]
    print(f"users:      {shapes['user_ids']['shape'][0]:,}")
    print(f"items:      {shapes['item_ids']['shape'][0]:,}")
    for name, info in shapes.items():
        if name.endswith("_"):
            print(f"  {name:<18} {info['dtype']:<8} {tuple(info['shape'])}")
    if meta.get("history"):
        last = meta["history"][-1]
        print(f"trained:    {last.get('epoch')} epochs, final loss {last.get('loss'):.4f}")
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
        "--no-header", action="store_true", help="file has no header; columns by 0-based position"
    )


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, choices=sorted(MODELS), help="model to fit")
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="factorkit",
        description="Matrix factorization for recommenders: fit, evaluate, predict, recommend.",
    )
    parser.add_argument("--version", action="version", version=f"factorkit {fk.__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="fit and evaluate on the built-in MovieLens small data")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("fit", help="fit a model and save it")
    _add_data_args(p)
    _add_model_args(p)
    p.add_argument("--out", required=True, help="where to save the model (e.g. model.fk)")
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
    p.add_argument("--seed", type=int, default=0, help="fold assignment seed")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("recommend", help="top-k items for a user, or for all users to a file")
    p.add_argument("model_file")
    p.add_argument("--user", help="raw user id")
    p.add_argument("-k", type=int, default=10, help="items per user (default 10)")
    p.add_argument("--include-seen", action="store_true", help="do not leave out seen items")
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

    p = sub.add_parser("info", help="describe a saved model")
    p.add_argument("model_file")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=cmd_info)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (FactorkitError, FileNotFoundError) as exc:
        print(f"factorkit {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
