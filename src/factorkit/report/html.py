"""write_report(): one self-contained HTML page about a fitted model.

The page embeds every figure as a base64 PNG and carries its CSS inline; it links to
nothing outside itself, so it can be mailed, archived as a CI artifact or opened offline.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from factorkit.base import get_tags
from factorkit.data.interactions import Interactions
from factorkit.exceptions import DataError, InvalidParameterError
from factorkit.report import figures as F

__all__ = ["write_report"]

#: figures are rendered at this many pixels per inch and shown at 100 px per inch,
#: so they stay sharp on high-density screens
_DPI = 150

_CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, "DejaVu Sans", Arial, sans-serif;
       margin: 0; background: #f4f5f7; color: #1d2330; line-height: 1.45; }
main { max-width: 1080px; margin: 0 auto; padding: 24px 32px 48px; background: #fff; }
h1 { font-size: 26px; margin: 8px 0 4px; }
h2 { font-size: 20px; margin: 36px 0 8px; padding-bottom: 4px; border-bottom: 2px solid #e3e6eb; }
h3 { font-size: 15px; margin: 20px 0 6px; }
p.meta { color: #5b6272; font-size: 13px; margin: 0 0 12px; }
p.note { color: #3b4252; font-size: 14px; max-width: 900px; }
nav { font-size: 14px; margin: 12px 0 4px; }
nav a { margin-right: 14px; color: #1f5fa8; text-decoration: none; }
figure { margin: 12px 0 20px; }
figure img { max-width: 100%; height: auto; border: 1px solid #e3e6eb; }
figcaption { font-size: 13px; color: #5b6272; margin-top: 4px; max-width: 900px; }
table.data { border-collapse: collapse; font-size: 13px; margin: 6px 0 16px; }
table.data th, table.data td { padding: 4px 10px; border-bottom: 1px solid #e3e6eb;
       text-align: right; }
table.data th { background: #f0f2f5; font-weight: 600; }
table.data td:first-child, table.data th:first-child { text-align: left; }
table.data td.text, table.data th.text { text-align: left; }
.grid { display: flex; flex-wrap: wrap; gap: 28px; align-items: flex-start; }
code { background: #f0f2f5; padding: 1px 4px; border-radius: 3px; font-size: 13px; }
"""


def _png(fig: Any, alt: str, caption: str) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, facecolor="white")
    width = round(fig.get_figwidth() * 100)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    fig.clear()
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(alt)}" '
        f'width="{width}"><figcaption>{caption}</figcaption></figure>'
    )


def _fmt(x: Any) -> str:
    if isinstance(x, (float, np.floating)):
        if not np.isfinite(x):
            return "–"
        if x != 0 and (abs(x) >= 1e5 or abs(x) < 1e-3):
            return f"{x:.3g}"
        return f"{x:,.4f}".rstrip("0").rstrip(".") if abs(x) < 1000 else f"{x:,.1f}"
    if isinstance(x, (int, np.integer)) and not isinstance(x, bool):
        return f"{x:,}"
    return str(x)


#: columns holding identifiers or labels, printed as they are (no thousands separators)
_RAW_COLUMNS = frozenset({"item", "user", "fold", "factors", "component", "epoch"})


def _table(frame: pd.DataFrame, index: bool = False) -> str:
    """A DataFrame as an HTML table, values escaped, numbers formatted for reading."""
    frame = frame.reset_index() if index else frame
    text_cols = [frame[c].dtype == object for c in frame.columns]
    head = "".join(
        ('<th class="text">' if t else "<th>") + html.escape(str(c)) + "</th>"
        for c, t in zip(frame.columns, text_cols, strict=True)
    )
    raw = [str(c) in _RAW_COLUMNS for c in frame.columns]
    rows = []
    for row in frame.itertuples(index=False):
        cells = []
        for v, as_is in zip(row, raw, strict=True):
            cls = ' class="text"' if isinstance(v, str) else ""
            if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
                value = "–"
            else:
                value = str(v) if as_is else _fmt(v)
            cells.append(f"<td{cls}>{html.escape(value)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    body = "".join(rows)
    return f'<table class="data"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _kv(pairs: Sequence[tuple[str, Any]], columns: tuple[str, str] = ("", "")) -> str:
    return _table(pd.DataFrame(list(pairs), columns=list(columns)))


def _data_summary(train: Interactions, test: Interactions) -> pd.DataFrame:
    rows = []
    for name, d in (("train", train), ("test", test)):
        lo, hi = d.rating_scale
        users = int(np.count_nonzero(d.user_counts))
        items = int(np.count_nonzero(d.item_counts))
        rows.append(
            {
                "split": name,
                "users": users,
                "items": items,
                "interactions": len(d),
                "density": f"{len(d) / max(1, users * items):.3%}",
                "values": "implicit" if d.implicit else f"{_fmt(lo)} – {_fmt(hi)}",
            }
        )
    return pd.DataFrame(rows)


def _default_metrics(explicit: bool) -> list[str]:
    ranking = ["precision@10", "recall@10", "ndcg@10", "coverage@10"]
    return ["rmse", "mae", *ranking] if explicit else ranking


def write_report(
    path_dir: str | Path,
    *,
    model: Any,
    train: Interactions,
    test: Interactions,
    title: str = "factorkit model report",
    search: Any = None,
    cv_result: Any = None,
    metrics: Sequence[str] | None = None,
    factors: Sequence[int] | pd.DataFrame | None = None,
    k: int = 10,
    spectrum_k: int = 50,
    n_labels: int = 15,
) -> Path:
    """Write ``index.html``, a self-contained report on a fitted model, into ``path_dir``.

    Sections (each only where it applies): data and model summary with test metrics;
    learning curves (``model.history_``); rank selection (singular value spectrum of the
    training ratings, and held-out metric versus factors when ``factors`` is given);
    model selection (``search.cv_results_``, ``cv_result.folds``); error by user activity
    (explicit ratings); popularity of recommended items and the most recommended items;
    a 2-D map of the item factors labelled with the most popular titles.

    Figures are PNGs embedded as base64 ``data:`` URIs and the CSS is inline: the file
    references nothing outside itself.

    Parameters
    ----------
    path_dir : str or Path
        Directory to write into (created if missing); an existing ``index.html`` is
        replaced.
    model : fitted estimator
    train, test : Interactions
        The data the model was fitted on, and held-out data.
    title : str
        Page heading.
    search : fitted search object, optional
        A fitted ``GridSearch``/``RandomSearch`` from
        :mod:`factorkit.evaluation.search`, or anything with a compatible ``cv_results_``
        (see :func:`factorkit.report.plot_search_results`).
    cv_result : CrossValidationResult, optional
        From :func:`factorkit.cross_validate`; its per-fold table is shown.
    metrics : list of str, optional
        Test metrics for the summary (names as for :func:`factorkit.evaluate`). Default:
        RMSE, MAE and top-10 ranking metrics for explicit models; ranking metrics only for
        implicit ones.
    factors : list of int or DataFrame, optional
        Ranks for a metric-versus-factors curve (refits a clone of ``model`` per value
        with :func:`factorkit.evaluation.spectrum.factors_curve`), or a curve already
        computed by it.
    k : int, default 10
        Length of the recommendation lists analysed for popularity.
    spectrum_k : int, default 50
        Singular values computed for the spectrum (0 leaves the section out).
    n_labels : int, default 15
        Titles labelled on the item factor map.

    Returns
    -------
    pathlib.Path
        The path of the written ``index.html``.

    Raises
    ------
    FactorkitError
        When matplotlib is not installed (``pip install 'factorkit[plot]'``).

    Examples
    --------
    >>> import tempfile
    >>> import factorkit as fk
    >>> from factorkit.report import write_report
    >>> data = fk.datasets.load_movielens_small()
    >>> train, test = fk.split.random(data, test_size=0.2, random_state=0)
    >>> model = fk.BiasedMF(factors=10, epochs=3, random_state=0).fit(train)
    >>> path = write_report(tempfile.mkdtemp(), model=model, train=train, test=test,
    ...                     metrics=["rmse"], spectrum_k=10)
    >>> path.name, "data:image/png;base64," in path.read_text()
    ('index.html', True)
    """
    F.require_matplotlib()
    for name, value in (("train", train), ("test", test)):
        if not isinstance(value, Interactions):
            raise DataError(
                f"write_report: {name} must be a factorkit Interactions; got {type(value).__name__}"
            )
    if not isinstance(title, str):
        raise InvalidParameterError(f"write_report: title must be a str; got {title!r}")
    check = getattr(model, "_check_fitted", None)
    if check is None:
        raise InvalidParameterError(
            f"write_report: model must be a fitted factorkit estimator; got {model!r}"
        )
    check("write_report")
    from factorkit import __version__
    from factorkit.evaluation.evaluate import evaluate
    from factorkit.evaluation.spectrum import factors_curve, singular_value_spectrum

    explicit = get_tags(model).explicit and not train.implicit
    metric_names = list(metrics) if metrics is not None else _default_metrics(explicit)
    scores = evaluate(model, test, metrics=metric_names, train=train)

    sections: list[tuple[str, str, str]] = []  # (anchor, heading, body)

    # --- summary
    params = pd.DataFrame(
        [(k_, repr(v)) for k_, v in model.get_params().items()], columns=["parameter", "value"]
    )
    metric_table = pd.DataFrame(
        [(name, float(v)) for name, v in scores.items()], columns=["metric", "test value"]
    )
    body = (
        '<div class="grid"><div><h3>Data</h3>'
        + _table(_data_summary(train, test))
        + "<h3>Test metrics</h3>"
        + _table(metric_table)
        + "</div><div><h3>Model</h3>"
        + _table(params)
        + "</div></div>"
    )
    sections.append(("summary", "Summary", body))

    # --- learning curves
    history = getattr(model, "history_", None)
    if isinstance(history, pd.DataFrame) and len(history) and "loss" in history:
        total = history["elapsed"].iloc[-1] if "elapsed" in history else float("nan")
        note = f"{len(history)} epochs in {total:.1f} s." if np.isfinite(total) else ""
        if not any(c.startswith("val_") for c in history.columns):
            note += (
                " No validation curve: fit with <code>fit(train, validation=...)</code> to "
                "record a held-out metric per epoch."
            )
        body = _png(
            F.plot_learning_curves(history),
            "learning curves",
            "Training objective per epoch; a validation curve that turns upward while the "
            "loss keeps falling means over-fitting (raise regularization or stop earlier).",
        )
        sections.append(("learning", "Learning curves", f'<p class="note">{note}</p>{body}'))

    # --- rank selection
    body = ""
    if spectrum_k:
        spec = singular_value_spectrum(
            train, k=int(spectrum_k), center="user" if explicit else None
        )
        body += _png(
            F.plot_spectrum(spec),
            "singular value spectrum",
            "Singular values of the training matrix"
            + (" (each user's mean rating subtracted)" if explicit else "")
            + "; components beyond the knee of the left curve add little. The right "
            "panel is the share of the matrix's total energy the first components hold.",
        )
    if factors is not None:
        curve = (
            factors
            if isinstance(factors, pd.DataFrame)
            else factors_curve(
                model, train, test, factors=factors, metric=metric_names[0], train_score=False
            )
        )
        body += _png(
            F.plot_factors_curve(curve),
            "metric versus factors",
            "Held-out metric of the same model refitted at each number of factors.",
        )
        body += _table(curve)
    if body:
        sections.append(("rank", "Rank selection", body))

    # --- model selection
    body = ""
    if search is not None:
        frame, score, std, _ = F.search_table(search)
        body += _png(
            F.plot_search_results(search),
            "parameter search",
            "Mean cross-validated score per candidate (best circled), with one standard "
            "deviation over folds.",
        )
        rank = score.replace("mean_", "rank_", 1)
        keep = ["parameters", score] + ([std] if std else [])
        keep += [c for c in ("mean_fit_time", rank) if c in frame]
        best = getattr(search, "best_params_", None)
        if best is not None:
            body += f'<p class="note">Best parameters: <code>{html.escape(repr(best))}</code></p>'
        body += _table(frame[keep].head(20))
    if cv_result is not None:
        folds = getattr(cv_result, "folds", cv_result)
        if not isinstance(folds, pd.DataFrame):
            raise DataError(
                "write_report: cv_result must be a CrossValidationResult from "
                f"fk.cross_validate; got {type(cv_result).__name__}"
            )
        summary = pd.concat(
            [folds, folds.mean().to_frame("mean").T, folds.std(ddof=1).to_frame("std").T]
        )
        summary.index = [
            f"fold {i}" if isinstance(i, (int, np.integer)) else str(i) for i in summary.index
        ]
        body += "<h3>Cross-validation</h3>" + _table(summary.rename_axis("fold"), index=True)
    if body:
        sections.append(("selection", "Model selection", body))

    # --- error by user activity
    if explicit and hasattr(model, "predict"):
        table = F.activity_errors(model, train, test)
        if len(table):
            body = _png(
                F.plot_error_by_activity(table),
                "error by user activity",
                "Test RMSE of users grouped by how many training ratings they have; the "
                "model usually does worst on users it knows least.",
            )
            sections.append(("activity", "Error by user activity", body + _table(table)))

    # --- recommendations
    if hasattr(model, "recommend_all"):
        pop = F.recommendation_popularity(model, k=k, train=train)
        body = _png(
            F.plot_recommendation_popularity(pop),
            "popularity of recommended items",
            f"Training popularity of the items in every user's top-{k} list (seen items "
            "left out), against the catalogue as a whole. Recommendations piled onto the "
            "right-hand bands mean a popularity-biased model.",
        )
        top = pop.head(15)[["item", "title", "train_count", "recommended"]].rename(
            columns={"train_count": "training ratings", "recommended": "in top-k lists"}
        )
        body += "<h3>Most recommended items</h3>" + _table(top)
        sections.append(("recommendations", "Recommendations", body))

    # --- item factor map
    item_factors = getattr(model, "item_factors_", None)
    if item_factors is not None and np.ndim(item_factors) == 2 and item_factors.shape[1] >= 2:
        body = _png(
            F.plot_item_map(model, n_labels=n_labels, train=train),
            "item factor map",
            "Item factors projected on their first two principal components; nearby items "
            "are scored alike. Items with fewer than 10 training ratings are left out; the "
            "most-rated items are labelled.",
        )
        sections.append(("items", "Item factor map", body))

    page = _page(title, model, sections, __version__)
    out_dir = Path(path_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "index.html"
    path.write_text(page, encoding="utf-8")
    return path


def _page(title: str, model: Any, sections: list[tuple[str, str, str]], version: str) -> str:
    stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    nav = "".join(f'<a href="#{a}">{html.escape(h)}</a>' for a, h, _ in sections)
    body = "".join(
        f'<section id="{a}"><h2>{html.escape(h)}</h2>{b}</section>' for a, h, b in sections
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>"
        f"<body><main><h1>{html.escape(title)}</h1>"
        f'<p class="meta">{html.escape(type(model).__name__)} · generated {stamp} by '
        f"factorkit {html.escape(version)}</p>"
        f"<nav>{nav}</nav>{body}</main></body></html>\n"
    )
