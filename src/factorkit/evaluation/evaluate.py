"""evaluate(): score a fitted model on held-out interactions; cross_validate(): per fold."""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

import numpy as np

from factorkit._lazy import pandas as pd
from factorkit._lazy import tqdm
from factorkit._threads import concurrent_launches_safe, resolve_threads
from factorkit._validation import Boolean, Interval, NoneOr, check
from factorkit.base import Estimator, clone, get_tags
from factorkit.data.interactions import Interactions
from factorkit.evaluation._checks import check_estimator
from factorkit.evaluation.metrics import RATING_METRICS
from factorkit.evaluation.ranking import (
    MetricSpec,
    RankingResult,
    parse_metrics,
    ranking_evaluation,
)
from factorkit.exceptions import DataError, InvalidParameterError

__all__ = ["CrossValidationResult", "cross_validate", "evaluate"]


def _metric_names(metrics: str | Sequence[str]) -> list[str]:
    return [spec.name for spec in parse_metrics(metrics)]


def evaluate(
    model: Any,
    test: Interactions,
    metrics: str | Sequence[str] = ("rmse", "mae"),
    train: Interactions | None = None,
    relevance_threshold: float | None = None,
    per_user: bool = False,
) -> dict[str, float] | tuple[dict[str, float], pd.DataFrame]:
    """Score a fitted model on ``test`` with rating and ranking metrics.

    Rating metrics (``"rmse"``, ``"mae"``) compare ``model.predict`` (with the default
    ``unknown="fallback"``) to every test interaction, so users or items unseen in
    training count, predicted from the global mean and known biases. Models tagged
    ``requires_timestamps`` (timeSVD++) predict each test interaction at its timestamp.

    Ranking metrics (``"precision@k"``, ``"recall@k"``, ``"ndcg@k"``, ``"map@k"``,
    ``"mrr@k"``, ``"hit_rate@k"``, ``"auc"``, ``"coverage@k"``) rank, for every test user
    with at least one relevant test item, all of the model's items except the user's
    training items, in one blocked pass (never a users x items matrix). Every test
    interaction is relevant (or those with value >= ``relevance_threshold``); relevant
    items the model never saw in training are misses. Users unknown to the model get no
    recommendations and count as 0 in the top-k metrics (a :class:`DataWarning` gives
    their number). Formulas and conventions: ``docs/metrics.md``.

    Parameters
    ----------
    model : fitted estimator
    test : Interactions
        Held-out interactions; may share id maps with ``train`` (as ``fk.split`` gives) or
        not: ids are matched by raw value.
    metrics : str or list of str
        Names such as ``"rmse"``, ``"ndcg@10"``, ``"auc"``; see
        :func:`factorkit.evaluation.available_metrics`.
    train : Interactions, optional
        Items to leave out of each user's ranking candidates. Default: the data the model
        was fitted on (``exclude_seen`` in ``recommend``).
    relevance_threshold : float, optional
        Only test interactions with value >= this are relevant (e.g. ``4.0`` for ratings);
        the others stay ranking candidates and count as non-relevant.
    per_user : bool, default False
        Also return a DataFrame with one row per evaluated test user.

    Returns
    -------
    dict
        Metric name -> mean over evaluated users (rating metrics: over interactions;
        ``coverage@k``: over the catalogue). With ``per_user=True``, a tuple
        ``(summary, frame)`` whose frame has a ``user`` column (raw ids), one column per
        per-user metric (NaN where a metric does not evaluate that user; each column's
        mean is the summary value, except for ``rmse``/``mae``, which are each user's own
        error) and, with ranking metrics, ``n_relevant`` and ``known`` (user seen in
        training).

    Examples
    --------
    >>> import factorkit as fk
    >>> data = fk.datasets.load_movielens_small()
    >>> train, test = fk.split.random(data, random_state=0)
    >>> scores = fk.evaluate(fk.BaselineOnly().fit(train), test, metrics=["rmse", "mae"])
    >>> sorted(scores)
    ['mae', 'rmse']
    >>> train, test = fk.split.per_user(data, test_size=0.2, random_state=0)
    >>> model = fk.BaselineOnly().fit(train)
    >>> summary, frame = fk.evaluate(
    ...     model, test, ["ndcg@10", "recall@20", "auc"], train=train, per_user=True
    ... )
    >>> list(summary)
    ['ndcg@10', 'recall@20', 'auc']
    >>> list(frame.columns)
    ['user', 'ndcg@10', 'recall@20', 'auc', 'n_relevant', 'known']
    >>> bool(abs(frame["recall@20"].mean() - summary["recall@20"]) < 1e-12)
    True
    """
    # checked inline, not by the validate_params decorator: warnings raised below keep
    # pointing at the caller's line (a wrapper would add a frame)
    check(per_user, Boolean(), "per_user", "evaluate")
    specs = parse_metrics(metrics)
    if not isinstance(test, Interactions):
        raise DataError(f"evaluate: test must be an Interactions; got {type(test).__name__}")
    if relevance_threshold is not None and not any(not s.is_rating for s in specs):
        raise InvalidParameterError(
            "evaluate: relevance_threshold applies to ranking metrics only (e.g. 'ndcg@10'); "
            f"got metrics {[s.name for s in specs]}"
        )
    rating_specs = [s for s in specs if s.is_rating]
    ranking_specs = [s for s in specs if not s.is_rating]
    summary: dict[str, float] = {}
    predicted = None
    if rating_specs:
        users = test.user_map.ids[test.user_index]
        items = test.item_map.ids[test.item_index]
        if get_tags(model).requires_timestamps and test.has_timestamps:
            # time-aware models predict each test rating at its own time
            predicted = model.predict(users, items, times=test.timestamps)
        else:
            predicted = model.predict(users, items)
        for s in rating_specs:
            summary[s.name] = RATING_METRICS[s.kind](predicted, test.values)
    ranking = None
    if ranking_specs:
        ranking = ranking_evaluation(model, test, ranking_specs, train, relevance_threshold)
        summary.update(ranking.summary)
    summary = {s.name: summary[s.name] for s in specs}
    if not per_user:
        return summary
    return summary, _per_user_frame(test, specs, predicted, ranking)


def _per_user_frame(
    test: Interactions,
    specs: list[MetricSpec],
    predicted: np.ndarray | None,
    ranking: RankingResult | None,
) -> pd.DataFrame:
    if ranking is not None and predicted is None:
        users = ranking.users
    else:
        users = np.flatnonzero(np.bincount(test.user_index, minlength=test.n_users) > 0)
    columns: dict[str, Any] = {"user": test.user_map.ids[users]}
    if predicted is not None:
        u = test.user_index
        count = np.bincount(u, minlength=test.n_users)[users]
        err = predicted - test.values.astype(np.float64)
        sq = np.bincount(u, weights=err * err, minlength=test.n_users)[users]
        ab = np.bincount(u, weights=np.abs(err), minlength=test.n_users)[users]
        per = {"rmse": np.sqrt(sq / count), "mae": ab / count}
    where = None if ranking is None else np.searchsorted(users, ranking.users)
    for s in specs:
        if not s.per_user:
            continue
        if s.is_rating:
            columns[s.name] = per[s.kind]
        else:
            col = np.full(len(users), np.nan)
            col[where] = ranking.per_user[s.name]
            columns[s.name] = col
    if ranking is not None:
        n_rel = np.zeros(len(users), dtype=np.int64)
        n_rel[where] = ranking.n_relevant
        known = np.zeros(len(users), dtype=np.bool_)
        known[where] = ranking.known
        columns["n_relevant"] = n_rel
        columns["known"] = known
    return pd.DataFrame(columns)


class CrossValidationResult:
    """Per-fold scores and timings of :func:`cross_validate`.

    Attributes
    ----------
    folds : pandas.DataFrame
        One row per fold: each metric, ``fit_time`` and ``test_time`` in seconds.
    """

    def __init__(self, folds: pd.DataFrame) -> None:
        self.folds = folds

    @property
    def mean(self) -> pd.Series:
        """Mean over folds of each column."""
        return self.folds.mean()

    @property
    def std(self) -> pd.Series:
        """Standard deviation over folds (ddof=1) of each column."""
        return self.folds.std(ddof=1)

    def summary(self) -> pd.DataFrame:
        """Folds plus ``mean`` and ``std`` rows, ready to print."""
        return pd.concat([self.folds, self.mean.to_frame("mean").T, self.std.to_frame("std").T])

    def __getitem__(self, metric: str) -> np.ndarray:
        return self.folds[metric].to_numpy()

    def __repr__(self) -> str:
        return f"CrossValidationResult\n{self.summary().to_string(float_format='%.4f')}"


def cross_validate(
    estimator: Estimator,
    data: Interactions,
    cv: int | Iterable[tuple[Interactions, Interactions]] = 5,
    metrics: str | Sequence[str] = ("rmse", "mae"),
    random_state: int | None = 0,
    relevance_threshold: float | None = None,
    n_jobs: int | None = None,
    progress: bool = False,
) -> CrossValidationResult:
    """Fit a clone of ``estimator`` on each training fold and score it on the test fold.

    Parameters
    ----------
    estimator : estimator instance
        Cloned per fold; the instance passed in stays unfitted.
    data : Interactions
    cv : int or iterable of (train, test)
        Number of interaction-level folds (``fk.split.kfold``), or the folds themselves.
    metrics : str or list of str
        Rating and ranking metric names, as for :func:`evaluate`; ranking metrics leave
        each fold's training items out of the candidates.
    random_state : int, optional
        Seed of the fold assignment when ``cv`` is an int.
    relevance_threshold : float, optional
        Passed to :func:`evaluate` (ranking metrics only).
    n_jobs : int, optional
        Folds fitted at once, in threads (the kernels release the GIL). Each fold's
        estimator then gets ``n_threads = cores // n_jobs`` (when it has that parameter)
        so the folds together never oversubscribe the cores. ``None`` or 1: one fold at a
        time, each using every core.
    progress : bool, default False
        A progress bar over the folds (on stderr), advanced as each fold is scored.

    Examples
    --------
    >>> import factorkit as fk
    >>> data = fk.datasets.load_movielens_small()
    >>> res = fk.cross_validate(fk.BaselineOnly(), data, cv=3)
    >>> len(res.folds)
    3
    >>> res = fk.cross_validate(fk.BaselineOnly(), data, cv=2, metrics=["rmse", "ndcg@10"])
    >>> list(res.folds.columns)
    ['rmse', 'ndcg@10', 'fit_time', 'test_time']
    """
    names = _metric_names(metrics)
    check_estimator(estimator, "cross_validate")
    check(n_jobs, NoneOr(Interval(int, 1)), "n_jobs", "cross_validate")
    check(progress, Boolean(), "progress", "cross_validate")
    if isinstance(cv, (int, np.integer)) and not isinstance(cv, bool):
        from factorkit.data.splits import kfold

        folds: Iterable = kfold(data, k=int(cv), random_state=random_state)
        n_folds: int | None = int(cv)
    else:
        folds = cv
        n_folds = len(cv) if hasattr(cv, "__len__") else None
    jobs = 1 if n_jobs is None else int(n_jobs)

    def run_fold(pair: tuple[Interactions, Interactions], threads: int | None) -> dict:
        train, test = pair
        model = clone(estimator)
        if threads is not None and "n_threads" in model.get_params():
            model.set_params(n_threads=threads)
        t0 = time.perf_counter()
        model.fit(train)
        t1 = time.perf_counter()
        scores = evaluate(
            model, test, metrics=names, train=train, relevance_threshold=relevance_threshold
        )
        t2 = time.perf_counter()
        return {**scores, "fit_time": t1 - t0, "test_time": t2 - t1}

    if jobs > 1 and not concurrent_launches_safe():
        warnings.warn(
            "cross_validate: numba's 'workqueue' threading layer cannot run kernels from "
            "several threads at once; running folds one at a time (install tbb, or have "
            "libgomp available, for n_jobs > 1)",
            RuntimeWarning,
            stacklevel=2,
        )
        jobs = 1
    bar = tqdm(total=n_folds, desc="cross_validate", unit="fold", disable=not progress)
    try:
        if jobs > 1:
            per_fold = max(1, resolve_threads(None) // jobs)
            with ThreadPoolExecutor(max_workers=jobs) as pool:
                futures = [pool.submit(run_fold, pair, per_fold) for pair in folds]
                for future in as_completed(futures):
                    future.result()
                    bar.update(1)
                rows = [future.result() for future in futures]
        else:  # one fold at a time: a generator of folds is never held in memory at once
            rows = []
            for pair in folds:
                rows.append(run_fold(pair, None))
                bar.update(1)
    finally:
        bar.close()
    frame = pd.DataFrame(rows)
    frame.index.name = "fold"
    return CrossValidationResult(frame)
