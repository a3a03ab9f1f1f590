"""The render half of a report: figures and one self-contained HTML page.

:func:`write_report` = :func:`factorkit.report.compute.compute_report` (every table, no
figures) + :func:`render_html` (draws the figures from those tables and writes the page).

The page embeds every figure as a base64 PNG and carries its CSS inline; it links to
nothing outside itself, so it can be mailed, archived as a CI artifact or opened offline.
Under each heading a "Source" line says which data, split and model the figure and table
come from.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from factorkit._lazy import pandas as pd
from factorkit.data.interactions import Interactions
from factorkit.report import figures as F
from factorkit.report.compute import ReportData, compute_report

__all__ = ["render_html", "write_report"]

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
p.source { color: #3b4252; font-size: 13px; max-width: 900px; background: #f7f8fa;
       border-left: 3px solid #c5cbd6; padding: 4px 8px; }
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


#: one rendered section: (anchor, heading, body html)
Section = tuple[str, str, str]


def _source(report: ReportData, key: str) -> str:
    text = report.sources.get(key)
    return f'<p class="source">Source: {html.escape(text)}</p>' if text else ""


def _note(text: str) -> str:
    return f'<p class="note">{text}</p>' if text else ""


def _summary_section(report: ReportData) -> Section:
    data = "<h3>Data</h3>"
    if report.data_name:
        data += f'<p class="note">Data set: <code>{html.escape(report.data_name)}</code></p>'
    data += _table(report.data_summary)
    data += f'<p class="note">Split: {html.escape(report.split)}</p>'
    body = (
        '<div class="grid"><div>'
        + data
        + "<h3>Test metrics</h3>"
        + _source(report, "metrics")
        + _table(report.metrics)
        + "</div><div><h3>Model</h3>"
        + _table(report.params)
        + "</div></div>"
    )
    return ("summary", "Summary", body)


def _learning_section(report: ReportData) -> Section | None:
    history = report.history
    if history is None:
        return None
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
    return ("learning", "Learning curves", _source(report, "learning") + _note(note) + body)


def _rank_section(report: ReportData) -> Section | None:
    body = ""
    if report.spectrum is not None:
        body += _source(report, "spectrum") + _png(
            F.plot_spectrum(report.spectrum),
            "singular value spectrum",
            "Singular values of the training matrix"
            + (" (each user's mean rating subtracted)" if report.explicit else "")
            + "; components beyond the knee of the left curve add little. The right "
            "panel is the share of the matrix's total energy the first components hold.",
        )
    if report.factors_curve is not None:
        body += _source(report, "factors") + _png(
            F.plot_factors_curve(report.factors_curve),
            "metric versus factors",
            "Held-out metric of the same model refitted at each number of factors.",
        )
        body += _table(report.factors_curve)
    return ("rank", "Rank selection", body) if body else None


def _selection_section(report: ReportData) -> Section | None:
    body = ""
    if report.search is not None:
        frame, score, std, _ = F.search_table(report.search)
        body += _source(report, "search") + _png(
            F.plot_search_results(report.search),
            "parameter search",
            "Mean cross-validated score per candidate (best circled), with one standard "
            "deviation over folds.",
        )
        rank = score.replace("mean_", "rank_", 1)
        keep = ["parameters", score] + ([std] if std else [])
        keep += [c for c in ("mean_fit_time", rank) if c in frame]
        best = report.search.best_params_
        if best is not None:
            body += f'<p class="note">Best parameters: <code>{html.escape(repr(best))}</code></p>'
        body += _table(frame[keep].head(20))
    if report.cv_folds is not None:
        body += "<h3>Cross-validation</h3>" + _source(report, "cv")
        body += _table(report.cv_folds, index=True)
    return ("selection", "Model selection", body) if body else None


def _activity_section(report: ReportData) -> Section | None:
    if report.activity is None:
        return None
    body = _png(
        F.plot_error_by_activity(report.activity),
        "error by user activity",
        "Test RMSE of users grouped by how many training ratings they have; the "
        "model usually does worst on users it knows least.",
    )
    body = _source(report, "activity") + body + _table(report.activity)
    return ("activity", "Error by user activity", body)


def _recommendations_section(report: ReportData) -> Section | None:
    pop = report.popularity
    if pop is None:
        return None
    body = _source(report, "recommendations") + _png(
        F.plot_recommendation_popularity(pop),
        "popularity of recommended items",
        f"Training popularity of the items in every user's top-{report.k} list (seen items "
        "left out), against the catalogue as a whole. Recommendations piled onto the "
        "right-hand bands mean a popularity-biased model.",
    )
    top = pop.head(15)[["item", "title", "train_count", "recommended"]].rename(
        columns={"train_count": "training ratings", "recommended": "in top-k lists"}
    )
    body += "<h3>Most recommended items</h3>" + _table(top)
    return ("recommendations", "Recommendations", body)


def _items_section(report: ReportData) -> Section | None:
    if report.item_map is None:
        return None
    body = _source(report, "items") + _png(
        F.plot_item_map(report.item_map, n_labels=report.n_labels),
        "item factor map",
        "Item factors projected on their first two principal components; nearby items "
        f"are scored alike. Items with fewer than {report.item_map.attrs['min_count']} "
        "training ratings are left out; the most-rated items are labelled.",
    )
    return ("items", "Item factor map", body)


#: the sections of a report, in page order
_SECTIONS: Sequence[Callable[[ReportData], Section | None]] = (
    _summary_section,
    _learning_section,
    _rank_section,
    _selection_section,
    _activity_section,
    _recommendations_section,
    _items_section,
)


def render_html(report: ReportData, path_dir: str | Path) -> Path:
    """Draw the figures of a computed report and write ``index.html`` into ``path_dir``.

    Parameters
    ----------
    report : ReportData
        From :func:`factorkit.report.compute_report`.
    path_dir : str or Path
        Directory to write into (created if missing); an existing ``index.html`` is
        replaced.

    Returns
    -------
    pathlib.Path
        The path of the written ``index.html``.
    """
    F.require_matplotlib()
    sections = [s for s in (build(report) for build in _SECTIONS) if s is not None]
    page = _page(report, sections)
    out_dir = Path(path_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "index.html"
    path.write_text(page, encoding="utf-8")
    return path


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
    data_name: str | None = None,
    split: str | None = None,
) -> Path:
    """Write ``index.html``, a self-contained report on a fitted model, into ``path_dir``.

    Sections (each only where it applies): data and model summary with test metrics;
    learning curves (``model.history_``); rank selection (singular value spectrum of the
    training ratings, and held-out metric versus factors when ``factors`` is given);
    model selection (``search.cv_results_``, ``cv_result.folds``); error by user activity
    (explicit ratings); popularity of recommended items and the most recommended items;
    a 2-D map of the item factors labelled with the most popular titles. Each section
    says where it comes from: which data (train or test, and how they were split), which
    model and parameters.

    Computing (:func:`~factorkit.report.compute_report`) and drawing
    (:func:`render_html`) are separate steps; this function runs both. Figures are PNGs
    embedded as base64 ``data:`` URIs and the CSS is inline: the file references nothing
    outside itself.

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
    data_name : str, optional
        Name of the data set, shown in the summary.
    split : str, optional
        How ``train`` and ``test`` were made (e.g. ``"fk.split.random, test_size 0.2,
        seed 0"``), shown with every figure computed on them. Default: their sizes, and a
        note that the split was not given.

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
    ...                     metrics=["rmse"], spectrum_k=10,
    ...                     split="fk.split.random, test_size 0.2, seed 0")
    >>> page = path.read_text()
    >>> path.name, "data:image/png;base64," in page, "seed 0" in page
    ('index.html', True, True)
    """
    F.require_matplotlib()  # before any computing: say what is missing at once
    report = compute_report(
        model,
        train,
        test,
        title=title,
        search=search,
        cv_result=cv_result,
        metrics=metrics,
        factors=factors,
        k=k,
        spectrum_k=spectrum_k,
        n_labels=n_labels,
        data_name=data_name,
        split=split,
    )
    return render_html(report, path_dir)


def _page(report: ReportData, sections: list[Section]) -> str:
    nav = "".join(f'<a href="#{a}">{html.escape(h)}</a>' for a, h, _ in sections)
    body = "".join(
        f'<section id="{a}"><h2>{html.escape(h)}</h2>{b}</section>' for a, h, b in sections
    )
    data = f" on {report.data_name}" if report.data_name else ""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(report.title)}</title><style>{_CSS}</style></head>"
        f"<body><main><h1>{html.escape(report.title)}</h1>"
        f'<p class="meta">{html.escape(report.model)}{html.escape(data)} · generated '
        f"{report.created} by factorkit {html.escape(report.version)}</p>"
        f"<nav>{nav}</nav>{body}</main></body></html>\n"
    )
