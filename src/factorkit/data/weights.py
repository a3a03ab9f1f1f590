"""Interaction weights from data: :func:`time_decay`."""

from __future__ import annotations

import datetime as _dt
import math
import numbers
import re
from typing import Any

import numpy as np

from factorkit._lazy import pandas as pd
from factorkit._validation import constraint_error
from factorkit.data.interactions import Interactions
from factorkit.exceptions import DataError

__all__ = ["check_sample_weight", "time_decay", "weights_by_item"]

#: unit suffixes of half_life strings -> seconds
UNITS = {"s": 1, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365.25 * 86400}
_PATTERN = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([a-z]+)\s*$")


def _half_life_seconds(half_life: Any) -> float:
    expected = (
        "a positive finite number of seconds or a string such as '180d' (units: "
        + ", ".join(UNITS)
        + ")"
    )
    if isinstance(half_life, str):
        match = _PATTERN.match(half_life.lower())
        if match is None or match.group(2) not in UNITS:
            raise constraint_error("time_decay", "half_life", expected, half_life)
        seconds = float(match.group(1)) * UNITS[match.group(2)]
    elif isinstance(half_life, (_dt.timedelta, pd.Timedelta, np.timedelta64)):
        seconds = pd.Timedelta(half_life).total_seconds()
    elif isinstance(half_life, numbers.Real) and not isinstance(half_life, (bool, np.bool_)):
        seconds = float(half_life)
    else:
        raise constraint_error("time_decay", "half_life", expected, half_life)
    if not (math.isfinite(seconds) and seconds > 0):
        raise constraint_error("time_decay", "half_life", expected, half_life)
    return seconds


def _now_seconds(now: Any, ts: np.ndarray) -> float:
    expected = (
        "None, 'user', Unix seconds or a datetime-like (datetime, numpy.datetime64, ISO string)"
    )
    if now is None:
        return float(ts.max())
    if isinstance(now, numbers.Real) and not isinstance(now, (bool, np.bool_)):
        if not math.isfinite(float(now)):
            raise constraint_error("time_decay", "now", expected, now)
        return float(now)
    if isinstance(now, (str, _dt.datetime, _dt.date, np.datetime64, pd.Timestamp)):
        try:
            stamp = pd.Timestamp(now)
        except (ValueError, TypeError):
            raise constraint_error("time_decay", "now", expected, now) from None
        if stamp is pd.NaT:
            raise constraint_error("time_decay", "now", expected, now)
        if stamp.tzinfo is not None:
            stamp = stamp.tz_convert("UTC").tz_localize(None)
        return float((stamp - pd.Timestamp(0)) / pd.Timedelta(seconds=1))
    raise constraint_error("time_decay", "now", expected, now)


def time_decay(data: Interactions, half_life: Any, now: Any = None) -> np.ndarray:
    """Exponential time-decay weights: ``0.5 ** ((now - t) / half_life)`` per interaction.

    An interaction ``half_life`` old weighs half as much as one at ``now``, two half
    lives old a quarter, and so on: the usual way to let recent behaviour count more
    (pass the result as a model's ``sample_weight`` where supported).

    Parameters
    ----------
    data : Interactions
        Must have timestamps (Unix seconds).
    half_life : float, str or timedelta
        Seconds, or a string of a number and a unit: ``"s"``, ``"min"``, ``"h"``,
        ``"d"``, ``"w"``, ``"y"`` (365.25 days), e.g. ``"180d"``, ``"1.5y"``.
    now : None, "user", number or datetime-like, optional
        The reference time (weight 1). Default: the latest timestamp of ``data``.
        Interactions after ``now`` get weights above 1. ``"user"``: each user's own
        latest interaction, so that age counts within each user's history (what a
        model of each user's *current* taste wants; with one global ``now``, users who
        stopped long ago are weighed down as a whole).

    Returns
    -------
    numpy.ndarray of float64
        One weight per interaction, aligned with ``data`` (its canonical order:
        ``data.user_index``, ``data.item_index``, ``data.timestamps``).

    Raises
    ------
    DataError
        If ``data`` has no timestamps or non-finite ones.
    InvalidParameterError
        If ``half_life`` is not positive and finite, or its unit is unknown; or ``now``
        is not a time.

    Examples
    --------
    >>> import factorkit as fk
    >>> data = fk.Interactions.from_arrays(
    ...     ["a", "a", "b"], [1, 2, 1], [4.0, 3.0, 5.0], timestamps=[0, 86400, 2 * 86400]
    ... )
    >>> fk.time_decay(data, half_life="1d").tolist()
    [0.25, 0.5, 1.0]
    >>> fk.time_decay(data, half_life=86400, now=86400).tolist()
    [0.5, 1.0, 2.0]
    >>> fk.time_decay(data, half_life="1d", now="user").tolist()  # b's latest is b's now
    [0.5, 1.0, 1.0]
    """
    if not isinstance(data, Interactions):
        raise DataError(
            f"time_decay: data must be a factorkit Interactions; got {type(data).__name__}. "
            "Build one with fk.Interactions.from_pandas(..., timestamp='timestamp')."
        )
    seconds = _half_life_seconds(half_life)
    if not data.has_timestamps:
        raise DataError(
            "time_decay: data has no timestamps, and the weights decay with age. Build the "
            "data with a timestamp column (e.g. fk.read_csv(path, ..., timestamp='timestamp'))."
        )
    ts = np.asarray(data.timestamps, dtype=np.float64)
    if not np.isfinite(ts).all():
        raise DataError(
            f"time_decay: data holds {int((~np.isfinite(ts)).sum())} NaN or infinite "
            "timestamp(s); fill or drop them first"
        )
    if not len(ts):
        return np.zeros(0, dtype=np.float64)
    if isinstance(now, str) and now == "user":
        # each user's own latest interaction is their "now": a user whose activity ended
        # long before the data's last day keeps full weight on their recent tastes
        latest = np.full(data.n_users, -np.inf)
        np.maximum.at(latest, data.user_index, ts)
        return np.exp2(-(latest[data.user_index] - ts) / seconds)
    ref = _now_seconds(now, ts)
    return np.exp2(-(ref - ts) / seconds)


def check_sample_weight(sample_weight: Any, train: Interactions, owner: str) -> np.ndarray | None:
    """Validate ``fit``'s ``sample_weight``: one finite weight >= 0 per interaction.

    Weights are aligned with ``train`` in its canonical order (``train.user_index``,
    ``train.item_index``, ``train.values``; the order :func:`time_decay` returns). Weight
    0 drops an interaction from the objective; weight 2 counts it twice.

    Parameters
    ----------
    sample_weight : None or array-like of shape (len(train),)
    train : Interactions
    owner : str
        How the user called it, e.g. ``"ALS.fit"``: every message starts with it.

    Returns
    -------
    None or numpy.ndarray of float64
        ``None`` when no weights were given (every weight 1).

    Raises
    ------
    DataError
        Not one-dimensional numbers, the wrong length, a negative, NaN or infinite
        weight (the first one is named), or every weight 0.

    Examples
    --------
    >>> import factorkit as fk
    >>> data = fk.Interactions.from_arrays(["a", "b"], [1, 1], [4.0, 5.0])
    >>> check_sample_weight([1, 0.5], data, "ALS.fit").tolist()
    [1.0, 0.5]
    """
    if sample_weight is None:
        return None
    try:
        w = np.asarray(sample_weight, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(
            f"{owner}: sample_weight must be numbers, one per interaction; got "
            f"{type(sample_weight).__name__} that does not convert to floats."
        ) from None
    if w.ndim != 1 or len(w) != len(train):
        raise DataError(
            f"{owner}: sample_weight must have one weight per training interaction "
            f"(shape ({len(train)},), aligned with train.values); got shape {w.shape}. "
            "Compute it from the same Interactions you fit, e.g. fk.time_decay(train, ...)."
        )
    bad = ~(np.isfinite(w) & (w >= 0))
    if bad.any():
        j = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{owner}: sample_weight[{j}] is {float(w[j])!r} ({int(bad.sum())} bad in all); "
            "weights must be finite and >= 0 (0 drops an interaction). Fix or drop those rows."
        )
    if len(w) and not (w > 0).any():
        raise DataError(
            f"{owner}: every sample_weight is 0, which leaves nothing to fit; give the "
            "interactions to learn from a positive weight."
        )
    return w


def weights_by_item(train: Interactions, weights: np.ndarray) -> np.ndarray:
    """``weights`` (canonical, user-major order) reordered to follow ``train.to_csc()``'s
    data, so that item-side solvers read each interaction's weight next to its value."""
    return train._item_major(np.asarray(weights, dtype=np.float64))[2]
