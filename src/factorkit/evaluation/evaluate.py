"""evaluate(): score a fitted model on held-out interactions; cross_validate(): per fold."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from factorkit.data.interactions import Interactions
from factorkit.evaluation.metrics import RATING_METRICS
from factorkit.exceptions import DataError, InvalidParameterError
from factorkit.models.base import Estimator, clone

__all__ = ["CrossValidationResult", "cross_validate", "evaluate"]


def _metric_names(metrics: str | Sequence[str]) -> list[str]:
    names = [metrics] if isinstance(metrics, str) else list(metrics)
    if not names:
        raise InvalidParameterError("metrics must name at least one metric, e.g. ['rmse']")
    for m in names:
        if m.lower() not in RATING_METRICS:
            raise InvalidParameterError(
                f"unknown metric {m!r}; available: {', '.join(sorted(RATING_METRICS))}"
            )
    return [m.lower() for m in names]


def evaluate(
    model: Any,
    test: Interactions,
    metrics: str | Sequence[str] = ("rmse", "mae"),
    train: Interactions | None = None,
) -> dict[str, float]:
    """Score a fitted model on ``test``.

    Rating metrics compare ``model.predict`` (with the default ``unknown="fallback"``) to
    every test interaction, so users or items unseen in training count, predicted from
    the global mean and known biases.

    Parameters
    ----------
    model : fitted estimator
    test : Interactions
    metrics : str or list of str
        Names such as ``"rmse"`` and ``"mae"``.
    train : Interactions, optional
        The training data (used by ranking metrics to exclude seen items).

    Returns
    -------
    dict mapping metric name to value.

    Examples
    --------
    >>> import factorkit as fk
    >>> data = fk.datasets.load_movielens_small()
    >>> train, test = fk.split.random(data, random_state=0)
    >>> scores = fk.evaluate(fk.BaselineOnly().fit(train), test, metrics=["rmse", "mae"])
    >>> sorted(scores)
    ['mae', 'rmse']
    """
    names = _metric_names(metrics)
    if not isinstance(test, Interactions):
        raise DataError(f"evaluate: test must be an Interactions; got {type(test).__name__}")
    users = test.user_map.ids[test.user_index]
    items = test.item_map.ids[test.item_index]
    predicted = model.predict(users, items)
    return {m: RATING_METRICS[m](predicted, test.values) for m in names}


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
    random_state : int, optional
        Seed of the fold assignment when ``cv`` is an int.

    Examples
    --------
    >>> import factorkit as fk
    >>> data = fk.datasets.load_movielens_small()
    >>> res = fk.cross_validate(fk.BaselineOnly(), data, cv=3)
    >>> len(res.folds)
    3
    """
    names = _metric_names(metrics)
    if not isinstance(estimator, Estimator):
        raise InvalidParameterError(
            "cross_validate: estimator must be a factorkit estimator instance such as "
            f"fk.BiasedMF(); got {estimator!r}"
        )
    if isinstance(cv, (int, np.integer)) and not isinstance(cv, bool):
        from factorkit.data.splits import kfold

        folds: Iterable = kfold(data, k=int(cv), random_state=random_state)
    else:
        folds = cv
    rows = []
    for train, test in folds:
        model = clone(estimator)
        t0 = time.perf_counter()
        model.fit(train)
        t1 = time.perf_counter()
        scores = evaluate(model, test, metrics=names, train=train)
        t2 = time.perf_counter()
        rows.append({**scores, "fit_time": t1 - t0, "test_time": t2 - t1})
    frame = pd.DataFrame(rows)
    frame.index.name = "fold"
    return CrossValidationResult(frame)
