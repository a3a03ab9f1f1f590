"""The compute half of a report: every table and curve, with where each comes from.

:func:`compute_report` evaluates the model, computes the spectrum, refits for the
metric-versus-factors curve, runs the recommendation and item-map analyses, and returns
a :class:`ReportData`: plain tables (pandas DataFrames) and strings, no figures and no
HTML. :func:`factorkit.report.html.render_html` draws and writes it; it needs
matplotlib, this module does not.

Every table carries its provenance: which data (train or test, how many interactions,
how the split was made) and which model (its parameters) it comes from.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from factorkit._lazy import pandas as pd
from factorkit._validation import Interval, Satisfies, check
from factorkit.base import Estimator, get_tags
from factorkit.data.interactions import Interactions
from factorkit.exceptions import DataError, NotFittedError
from factorkit.report import figures as F

__all__ = ["ReportData", "SearchResults", "compute_report"]

_TEXT = Satisfies(lambda v: isinstance(v, str), "a str")
_FITTED_MODEL = Satisfies(
    lambda v: isinstance(v, Estimator), "a fitted factorkit estimator such as fk.BiasedMF()"
)


@dataclass
class SearchResults:
    """A parameter search's results, detached from the search object.

    Field names follow the fitted search's attributes, so
    :func:`factorkit.report.plot_search_results` draws it as it draws the search.
    """

    cv_results_: pd.DataFrame
    metric_: str | None
    best_params_: dict[str, Any] | None


@dataclass
class ReportData:
    """Everything a report shows, computed, with where each table comes from.

    Tables are ``None`` where a section does not apply (no history, no factors, ...).
    ``sources`` maps each computed table's name (``"metrics"``, ``"learning"``,
    ``"spectrum"``, ``"factors"``, ``"search"``, ``"cv"``, ``"activity"``,
    ``"recommendations"``, ``"items"``) to one line naming its data, split and model.
    """

    title: str
    model_name: str
    model: str  #: the model's repr: class and every parameter that differs from default
    version: str
    created: str
    data_name: str | None
    split: str  #: how train and test were made
    data_summary: pd.DataFrame
    params: pd.DataFrame
    metrics: pd.DataFrame
    explicit: bool
    history: pd.DataFrame | None = None
    spectrum: pd.DataFrame | None = None
    factors_curve: pd.DataFrame | None = None
    search: SearchResults | None = None
    cv_folds: pd.DataFrame | None = None
    activity: pd.DataFrame | None = None
    popularity: pd.DataFrame | None = None
    k: int = 10
    item_map: pd.DataFrame | None = None
    n_labels: int = 15
    sources: dict[str, str] = field(default_factory=dict)


def _check_fitted(model: Any) -> None:
    """A fitted estimator has learned attributes (public names ending in ``_``)."""
    check(model, _FITTED_MODEL, "model", "write_report")
    if not any(k.endswith("_") and not k.startswith("_") for k in vars(model)):
        raise NotFittedError(
            f"This {type(model).__name__} is not fitted yet; call fit(train) before write_report."
        )


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
                "values": "implicit" if d.implicit else f"{lo:g} – {hi:g}",
            }
        )
    return pd.DataFrame(rows)


def _default_metrics(explicit: bool) -> list[str]:
    ranking = ["precision@10", "recall@10", "ndcg@10", "coverage@10"]
    return ["rmse", "mae", *ranking] if explicit else ranking


def _split_text(train: Interactions, test: Interactions, split: str | None) -> str:
    if split:
        return split
    share = len(test) / max(1, len(train) + len(test))
    return (
        f"{len(train):,} train / {len(test):,} test interactions ({share:.0%} held out); "
        "how they were split was not given (pass split=... to say)"
    )


def _search_results(search: Any) -> tuple[SearchResults, str]:
    results = pd.DataFrame(getattr(search, "cv_results_", search)).copy()
    metric = getattr(search, "metric_", None) or getattr(search, "metric", None)
    n_splits = getattr(search, "n_splits_", None)
    how = f", mean over {n_splits} splits" if n_splits and n_splits > 1 else ""
    how = ", one validation split" if n_splits == 1 else how
    source = (
        f"{type(search).__name__} results ({len(results)} settings"
        + (f", metric {metric}" if isinstance(metric, str) else "")
        + f"{how}), scored on splits of the data the search was fitted on"
    )
    table = SearchResults(
        cv_results_=results,
        metric_=metric if isinstance(metric, str) else None,
        best_params_=getattr(search, "best_params_", None),
    )
    return table, source


def _cv_folds(cv_result: Any) -> pd.DataFrame:
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
    return summary.rename_axis("fold")


def compute_report(
    model: Any,
    train: Interactions,
    test: Interactions,
    *,
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
) -> ReportData:
    """Compute every table of a report on a fitted model (no figures, no matplotlib).

    Arguments as for :func:`factorkit.report.write_report`, which renders the result.

    Examples
    --------
    >>> import factorkit as fk
    >>> from factorkit.report import compute_report
    >>> data = fk.datasets.load_movielens_small()
    >>> train, test = fk.split.random(data, test_size=0.2, random_state=0)
    >>> model = fk.BaselineOnly().fit(train)
    >>> report = compute_report(model, train, test, metrics=["rmse"], spectrum_k=0,
    ...                         split="fk.split.random, test_size 0.2, seed 0")
    >>> report.metrics.columns.tolist(), report.split
    (['metric', 'test value'], 'fk.split.random, test_size 0.2, seed 0')
    >>> "fitted on train (80,669 interactions)" in report.sources["metrics"]
    True
    """
    for name, value in (("train", train), ("test", test)):
        if not isinstance(value, Interactions):
            raise DataError(
                f"write_report: {name} must be a factorkit Interactions; got {type(value).__name__}"
            )
    check(title, _TEXT, "title", "write_report")
    for name, value in (("k", k), ("spectrum_k", spectrum_k), ("n_labels", n_labels)):
        check(value, Interval(int, 0 if name != "k" else 1), name, "write_report")
    _check_fitted(model)
    from factorkit import __version__

    explicit = get_tags(model).explicit and not train.implicit
    names = list(metrics) if metrics is not None else _default_metrics(explicit)
    split_text = _split_text(train, test, split)
    report = ReportData(
        title=title,
        model_name=type(model).__name__,
        model=repr(model),
        version=__version__,
        created=_dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        data_name=data_name,
        split=split_text,
        data_summary=_data_summary(train, test),
        params=pd.DataFrame(
            [(k_, repr(v)) for k_, v in model.get_params().items()],
            columns=["parameter", "value"],
        ),
        metrics=pd.DataFrame(columns=["metric", "test value"]),
        explicit=explicit,
        k=int(k),
        n_labels=int(n_labels),
    )
    _summary(report, model, train, test, names)
    _rank_selection(report, model, train, test, factors, names[0], int(spectrum_k))
    if search is not None:
        report.search, report.sources["search"] = _search_results(search)
    if cv_result is not None:
        report.cv_folds = _cv_folds(cv_result)
        report.sources["cv"] = (
            f"fk.cross_validate result passed as cv_result= ({len(report.cv_folds) - 2} "
            "folds); its folds need not be the train/test split above"
        )
    _behaviour(report, model, train, test)
    return report


def _fitted_on(report: ReportData, train: Interactions) -> str:
    return f"{report.model} fitted on train ({len(train):,} interactions)"


def _summary(
    report: ReportData, model: Any, train: Interactions, test: Interactions, names: list[str]
) -> None:
    from factorkit.evaluation.evaluate import evaluate

    scores = evaluate(model, test, metrics=names, train=train)
    report.metrics = pd.DataFrame(
        [(name, float(v)) for name, v in scores.items()], columns=["metric", "test value"]
    )
    report.sources["metrics"] = (
        f"{_fitted_on(report, train)}, scored on test ({len(test):,} interactions; ranking "
        f"metrics leave each user's training items out). Split: {report.split}"
    )
    history = getattr(model, "history_", None)
    if isinstance(history, pd.DataFrame) and len(history) and "loss" in history:
        report.history = history
        val = [c for c in history.columns if c.startswith("val_")]
        report.sources["learning"] = (
            f"Recorded epoch by epoch while fitting {report.model} on train "
            f"({len(train):,} interactions)"
        ) + (
            "; validation columns score the validation data passed to fit(validation=...)"
            if val
            else ""
        )


def _rank_selection(
    report: ReportData,
    model: Any,
    train: Interactions,
    test: Interactions,
    factors: Sequence[int] | pd.DataFrame | None,
    metric: str,
    spectrum_k: int,
) -> None:
    from factorkit.evaluation.spectrum import factors_curve, singular_value_spectrum

    if spectrum_k:
        center = "user" if report.explicit else None
        report.spectrum = singular_value_spectrum(train, k=spectrum_k, center=center)
        report.sources["spectrum"] = (
            f"Training matrix, {train.n_users:,} x {train.n_items:,} (users x items of "
            f"train's id maps), {len(train):,} interactions; center={center!r}"
        )
    if factors is None:
        return
    if isinstance(factors, pd.DataFrame):
        report.factors_curve = factors
        report.sources["factors"] = "Curve passed in as factors=... (computed elsewhere)"
        return
    report.factors_curve = factors_curve(
        model, train, test, factors=factors, metric=metric, train_score=False
    )
    report.sources["factors"] = (
        f"Clones of {report.model} refitted on train ({len(train):,} interactions) at "
        f"each number of factors, {metric} on test ({len(test):,} interactions)"
    )


def _behaviour(report: ReportData, model: Any, train: Interactions, test: Interactions) -> None:
    fitted = _fitted_on(report, train)
    if report.explicit and hasattr(model, "predict"):
        table = F.activity_errors(model, train, test)
        if len(table):
            report.activity = table
            report.sources["activity"] = (
                f"{fitted}; errors on test ({len(test):,} ratings), users grouped by their "
                "number of training ratings"
            )
    if hasattr(model, "recommend_all"):
        report.popularity = F.recommendation_popularity(model, k=report.k, train=train)
        report.sources["recommendations"] = (
            f"Top-{report.k} lists of {fitted}, for every training user (training items "
            "left out); popularity counts training interactions"
        )
    item_factors = getattr(model, "item_factors_", None)
    if item_factors is not None and np.ndim(item_factors) == 2 and item_factors.shape[1] >= 2:
        report.item_map = F.item_map_table(model, train=train)
        report.sources["items"] = (
            f"Item factors of {fitted}; items with at least "
            f"{report.item_map.attrs['min_count']} training interactions"
        )
