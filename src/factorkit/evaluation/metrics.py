"""Rating-accuracy metrics over aligned arrays of predictions and truths."""

from __future__ import annotations

import numpy as np

__all__ = ["mae", "rmse"]


def rmse(predicted: np.ndarray, actual: np.ndarray) -> float:
    """Root mean squared error; NaN for empty input.

    >>> rmse(np.array([3.0, 4.0]), np.array([4.0, 4.0]))
    0.7071067811865476
    """
    p = np.asarray(predicted, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    return float(np.sqrt(np.mean((p - a) ** 2))) if len(a) else float("nan")


def mae(predicted: np.ndarray, actual: np.ndarray) -> float:
    """Mean absolute error; NaN for empty input.

    >>> mae(np.array([3.0, 4.0]), np.array([4.0, 4.0]))
    0.5
    """
    p = np.asarray(predicted, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    return float(np.mean(np.abs(p - a))) if len(a) else float("nan")


RATING_METRICS = {"rmse": rmse, "mae": mae}
