"""Train/test splits of :class:`~factorkit.Interactions` (public as ``factorkit.split``).

Every split returns Interactions that share the parent's :class:`~factorkit.IdMap`
objects, so user and item positions agree between train and test, and every interaction
of the input lands in exactly one of the two (``drop_unknown=True`` aside).

Test rows whose user or item never appears in train are *kept* by default: models
treat them as unknown ids (``predict(..., unknown="fallback")``), which is what happens
in production. Pass ``drop_unknown=True`` to remove them from the test set instead.

All work is vectorised numpy over the canonical (user, item) order; per-user choices
sort one packed int64 key (user, random or time key, position) instead of looping over
users, so 25M interactions split in a few seconds (see ``bench/bench_split.py``).
"""

from __future__ import annotations

import datetime as _dt
import math
import numbers
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from factorkit._lazy import pandas as pd
from factorkit._random import SEED, make_rng
from factorkit._validation import (
    Boolean,
    Interval,
    Satisfies,
    check,
    constraint_error,
    show,
    validate_params,
)
from factorkit.data.interactions import Interactions
from factorkit.exceptions import DataError, DataWarning, InvalidParameterError

__all__ = ["kfold", "leave_last", "per_user", "random", "temporal", "user_kfold"]

Split = tuple[Interactions, Interactions]


def _is_test_size(value: Any) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, numbers.Integral):
        return value >= 1
    return isinstance(value, numbers.Real) and 0.0 < value < 1.0


#: a fraction in (0, 1) or a count >= 1 (an integral float such as 2.0 is neither)
TEST_SIZE = Satisfies(_is_test_size, "a float in (0, 1) or an int >= 1")
_FLAG = Boolean()


def _size(test_size: Any) -> float | int:
    """A checked ``test_size`` as a Python int (a count) or float (a fraction)."""
    return int(test_size) if isinstance(test_size, numbers.Integral) else float(test_size)


_COUNT_0 = Interval(int, 0)
_K = Interval(int, 2)


# ---------------------------------------------------------------------- splits
@validate_params(
    {"test_size": TEST_SIZE, "drop_unknown": _FLAG, "random_state": SEED}, owner="random"
)
def random(
    data: Interactions,
    test_size: float | int = 0.2,
    random_state: Any = None,
    drop_unknown: bool = False,
) -> Split:
    """Hold out a uniformly random subset of the interactions.

    Parameters
    ----------
    data : Interactions
    test_size : float or int, default 0.2
        A float in (0, 1) is the fraction of interactions in test (rounded half up,
        then kept within 1 .. ``len(data) - 1``); an int >= 1 is their number, which
        must be below ``len(data)``.
    random_state : None, int or numpy.random.Generator
        Seed; equal seeds give identical splits.
    drop_unknown : bool, default False
        Remove test rows whose user or item has no interaction in train. By default
        they are kept and models treat them as unknown ids.

    Returns
    -------
    train, test : Interactions
        Sharing ``data``'s id maps; the test set has exactly the number of
        interactions ``test_size`` asks for, before ``drop_unknown``.

    Examples
    --------
    >>> from factorkit import split
    >>> from factorkit.data.synthetic import make_ratings
    >>> data, _ = make_ratings(n_users=100, n_items=50, n_ratings=1000, random_state=0)
    >>> train, test = split.random(data, test_size=0.2, random_state=0)
    >>> len(train), len(test)
    (800, 200)
    >>> train.user_map is data.user_map
    True
    """
    fn = "random"
    _check_data(data, fn)
    rng = make_rng(random_state, fn)
    n = len(data)
    n_test = _global_count(test_size, n, fn)
    mask = np.zeros(n, dtype=bool)
    mask[_smallest(rng.random(n), n_test)] = True
    return _finish(data, mask, drop_unknown)


@validate_params(
    {
        "test_size": TEST_SIZE,
        "min_train": _COUNT_0,
        "drop_unknown": _FLAG,
        "random_state": SEED,
    },
    owner="per_user",
)
def per_user(
    data: Interactions,
    test_size: float | int = 0.2,
    min_train: int = 1,
    random_state: Any = None,
    drop_unknown: bool = False,
) -> Split:
    """Hold out a random part of each user's interactions.

    Parameters
    ----------
    data : Interactions
    test_size : float or int, default 0.2
        A float in (0, 1): each user with ``c`` interactions puts ``round(test_size *
        c)`` of them (rounded half up) in test, lowered where needed so that
        ``min_train`` stay in train. An int >= 1: each user puts exactly ``test_size``
        in test; users with fewer than ``test_size + min_train`` stay wholly in train.
    min_train : int, default 1
        Interactions each user keeps in train at least (0 allows users wholly in test).
    random_state : None, int or numpy.random.Generator
        Seed; equal seeds give identical splits.
    drop_unknown : bool, default False
        Remove test rows whose user or item has no interaction in train (with
        ``min_train >= 1`` only the item can be unknown). Kept by default.

    Returns
    -------
    train, test : Interactions
        Sharing ``data``'s id maps.

    Warns
    -----
    DataWarning
        If no user has enough interactions to put any in test.

    Examples
    --------
    >>> from factorkit import split
    >>> from factorkit.data.synthetic import make_ratings
    >>> data, _ = make_ratings(n_users=100, n_items=50, n_ratings=1000, random_state=0)
    >>> train, test = split.per_user(data, test_size=2, random_state=0)
    >>> len(test), sorted(set(test.user_counts.tolist()))
    (200, [2])
    >>> train, test = split.per_user(data, test_size=0.5, min_train=3, random_state=0)
    >>> bool((train.user_counts >= 3).all())
    True
    """
    fn = "per_user"
    _check_data(data, fn)
    rng = make_rng(random_state, fn)

    test_size = _size(test_size)
    counts = data.user_counts
    if isinstance(test_size, float):
        n_test = np.minimum(np.floor(test_size * counts + 0.5), counts - min_train)
        n_test = np.maximum(n_test, 0).astype(np.int64)
    else:
        n_test = np.where(counts >= test_size + min_train, test_size, 0)
    if not n_test.any():
        _warn_empty(fn, f"test_size={show(test_size)} and min_train={min_train}")
    pos, rank, users = _order_within_users(data, None, rng)
    mask = np.zeros(len(data), dtype=bool)
    mask[pos[rank < n_test[users]]] = True
    return _finish(data, mask, drop_unknown)


@validate_params({"drop_unknown": _FLAG}, owner="temporal")
def temporal(
    data: Interactions,
    test_size: float | int | None = None,
    *,
    cutoff: Any = None,
    drop_unknown: bool = False,
) -> Split:
    """Cut at one point in time: everything before it trains, everything after tests.

    Every test interaction is at or after every train interaction. Give either
    ``test_size`` (default 0.2) or ``cutoff``.

    Parameters
    ----------
    data : Interactions
        Must have timestamps.
    test_size : float or int, optional
        The latest interactions go to test: a float in (0, 1) is their fraction of the
        data (rounded half up, within 1 .. ``len(data) - 1``), an int >= 1 their number
        (below ``len(data)``); 0.2 when neither
        this nor ``cutoff`` is given. Ties: interactions sharing the boundary timestamp
        are ordered by (user position, item position) and the later ones go to test,
        so the count is exact and the split deterministic; train's latest timestamp
        may then equal test's earliest. Use ``cutoff`` to cut strictly between times.
    cutoff : number or datetime-like, optional
        Interactions with ``timestamp >= cutoff`` go to test, the rest to train. A
        datetime, ``numpy.datetime64``, ``pandas.Timestamp`` or ISO string is read as
        UTC and compared as Unix seconds (how datetime columns are stored).
    drop_unknown : bool, default False
        Remove test rows whose user or item has no interaction in train (new users and
        items after the cut). Kept by default.

    Returns
    -------
    train, test : Interactions
        Sharing ``data``'s id maps.

    Raises
    ------
    DataError
        If ``data`` has no timestamps.

    Examples
    --------
    >>> from factorkit import split
    >>> from factorkit.data.synthetic import make_ratings
    >>> data, _ = make_ratings(n_users=100, n_items=50, n_ratings=1000, random_state=0)
    >>> train, test = split.temporal(data, test_size=0.25)
    >>> len(test), bool(train.timestamps.max() <= test.timestamps.min())
    (250, True)
    >>> train, test = split.temporal(data, cutoff="2020-07-01")
    >>> bool(test.timestamps.min() >= 1593561600 > train.timestamps.max())
    True
    """
    fn = "temporal"
    _check_data(data, fn)
    if test_size is not None and cutoff is not None:
        raise InvalidParameterError(
            f"{fn}: pass test_size or cutoff, not both; got test_size={show(test_size)} "
            f"and cutoff={show(cutoff)}"
        )
    ts = _need_timestamps(data, fn, "a temporal")
    n = len(data)
    if cutoff is not None:
        cut = _check_cutoff(cutoff, ts, fn)
        mask = ts >= cut
        n_test = int(np.count_nonzero(mask))
        if n_test == 0 or n_test == n:
            side = "test" if n_test == 0 else "train"
            raise InvalidParameterError(
                f"{fn}: cutoff must fall within the timestamps ({show(ts.min())} .. "
                f"{show(ts.max())}) so that train and test are both non-empty; got "
                f"{show(cutoff)}, which leaves {side} empty"
            )
        return _finish(data, mask, drop_unknown)

    size = check(0.2 if test_size is None else test_size, TEST_SIZE, "test_size", fn)
    n_test = _global_count(size, n, fn)
    boundary = np.partition(ts, n - n_test)[n - n_test]  # the earliest test timestamp
    mask = ts > boundary
    ties = np.flatnonzero(ts == boundary)  # in canonical order
    mask[ties[len(ties) - (n_test - int(np.count_nonzero(mask))) :]] = True
    return _finish(data, mask, drop_unknown)


@validate_params(
    {"n": Interval(int, 1), "min_train": _COUNT_0, "drop_unknown": _FLAG}, owner="leave_last"
)
def leave_last(
    data: Interactions,
    n: int = 1,
    min_train: int = 1,
    drop_unknown: bool = False,
) -> Split:
    """Hold out each user's latest ``n`` interactions.

    Parameters
    ----------
    data : Interactions
        Must have timestamps.
    n : int, default 1
        Interactions per user in test. Users with fewer than ``n + min_train``
        interactions stay wholly in train. Ties: among equal timestamps, the
        interaction with the higher item position counts as the later one.
    min_train : int, default 1
        Interactions each user keeps in train at least.
    drop_unknown : bool, default False
        Remove test rows whose item has no interaction in train (with ``min_train >=
        1`` users are always known). Kept by default.

    Returns
    -------
    train, test : Interactions
        Sharing ``data``'s id maps.

    Raises
    ------
    DataError
        If ``data`` has no timestamps.

    Warns
    -----
    DataWarning
        If no user has at least ``n + min_train`` interactions.

    Examples
    --------
    >>> from factorkit import split
    >>> from factorkit.data.synthetic import make_ratings
    >>> data, _ = make_ratings(n_users=100, n_items=50, n_ratings=1000, random_state=0)
    >>> train, test = split.leave_last(data, n=1)
    >>> len(test) == int((data.user_counts >= 2).sum())
    True
    """
    fn = "leave_last"
    _check_data(data, fn)
    ts = _need_timestamps(data, fn, "a leave-last")

    counts = data.user_counts
    n_test = np.where(counts >= n + min_train, n, 0)
    if not n_test.any():
        _warn_empty(fn, f"n={n} and min_train={min_train}")
    pos, rank, users = _order_within_users(data, ts, None)
    from_end = counts[users] - 1 - rank  # 0 for each user's latest
    mask = np.zeros(len(data), dtype=bool)
    mask[pos[from_end < n_test[users]]] = True
    return _finish(data, mask, drop_unknown)


@validate_params(
    {"k": _K, "shuffle": _FLAG, "drop_unknown": _FLAG, "random_state": SEED}, owner="kfold"
)
def kfold(
    data: Interactions,
    k: int = 5,
    random_state: Any = None,
    shuffle: bool = True,
    drop_unknown: bool = False,
) -> Iterator[Split]:
    """K-fold cross-validation over interactions: each one is tested exactly once.

    Arguments are checked when ``kfold`` is called; the folds are built lazily, one per
    iteration.

    Parameters
    ----------
    data : Interactions
    k : int, default 5
        Number of folds, 2 .. ``len(data)``. Fold sizes differ by at most one (the
        first ``len(data) % k`` folds are one larger).
    random_state : None, int or numpy.random.Generator
        Seed of the fold assignment (ignored when ``shuffle=False``).
    shuffle : bool, default True
        Assign interactions to folds at random. False makes each fold a contiguous
        block of the canonical (user, item) order, as scikit-learn's ``KFold`` does:
        that holds out whole users, which is rarely what you want.
    drop_unknown : bool, default False
        Remove test rows whose user or item has no interaction in that fold's train
        set. Kept by default; the test folds then partition the data exactly.

    Yields
    ------
    train, test : Interactions
        Sharing ``data``'s id maps.

    Examples
    --------
    >>> from factorkit import split
    >>> from factorkit.data.synthetic import make_ratings
    >>> data, _ = make_ratings(n_users=100, n_items=50, n_ratings=1000, random_state=0)
    >>> [len(test) for _, test in split.kfold(data, k=3, random_state=0)]
    [334, 333, 333]
    """
    fn = "kfold"
    _check_data(data, fn)
    k = _check_k(k, len(data), "the number of interactions", fn)
    rng = make_rng(random_state, fn)
    n = len(data)
    sizes = np.full(k, n // k, dtype=np.int64)
    sizes[: n % k] += 1
    if not shuffle:
        labels = np.repeat(np.arange(k, dtype=_label_dtype(k)), sizes)
    else:
        labels = _random_labels(rng.random(n), sizes)
    return _folds(data, labels, k, drop_unknown, drop_users=True)


@validate_params({"k": _K, "drop_unknown": _FLAG, "random_state": SEED}, owner="user_kfold")
def user_kfold(
    data: Interactions,
    k: int = 5,
    random_state: Any = None,
    drop_unknown: bool = False,
) -> Iterator[Split]:
    """K-fold cross-validation over users: each fold holds out whole users.

    Test users have no interaction in train by construction: models see them as unknown
    users (fallback predictions) or evaluate them through ``fold_in`` /
    ``recommend_new_user`` with part of their history. Users without interactions are
    in no fold.

    Arguments are checked when ``user_kfold`` is called; the folds are built lazily.

    Parameters
    ----------
    data : Interactions
    k : int, default 5
        Number of folds, 2 .. number of users with interactions. Folds hold numbers of
        users differing by at most one.
    random_state : None, int or numpy.random.Generator
        Seed of the assignment of users to folds.
    drop_unknown : bool, default False
        Remove test rows whose *item* has no interaction in that fold's train set (test
        users are always unknown, that being the point). Kept by default.

    Yields
    ------
    train, test : Interactions
        Sharing ``data``'s id maps.

    Examples
    --------
    >>> from factorkit import split
    >>> from factorkit.data.synthetic import make_ratings
    >>> data, _ = make_ratings(n_users=100, n_items=50, n_ratings=1000, random_state=0)
    >>> folds = list(split.user_kfold(data, k=4, random_state=0))
    >>> [int((test.user_counts > 0).sum()) for _, test in folds]
    [25, 25, 25, 25]
    """
    fn = "user_kfold"
    _check_data(data, fn)
    active = np.flatnonzero(data.user_counts)
    k = _check_k(k, len(active), "the number of users with interactions", fn)
    rng = make_rng(random_state, fn)
    sizes = np.full(k, len(active) // k, dtype=np.int64)
    sizes[: len(active) % k] += 1
    user_label = np.full(data.n_users, -1, dtype=_label_dtype(k))
    user_label[active[rng.permutation(len(active))]] = np.repeat(np.arange(k), sizes)
    labels = user_label[data.user_index]
    return _folds(data, labels, k, drop_unknown, drop_users=False)


# ---------------------------------------------------------------------- checks
def _check_data(data: Any, fn: str) -> None:
    if not isinstance(data, Interactions):
        raise InvalidParameterError(
            f"{fn}: data must be an Interactions; got {type(data).__name__}. Build one "
            "with fk.Interactions.from_pandas(...) or fk.read_csv(...)"
        )
    if len(data) == 0:
        raise DataError(f"{fn}: data has no interactions; there is nothing to split")


def _global_count(test_size: float | int, n: int, fn: str) -> int:
    """Number of test interactions out of ``n``; train must keep at least one."""
    test_size = _size(test_size)
    if n < 2:
        raise DataError(f"{fn}: data has only {n} interaction; a split needs at least 2")
    if isinstance(test_size, float):  # rounded half up, kept within [1, n - 1]
        return min(max(1, math.floor(test_size * n + 0.5)), n - 1)
    n_test = test_size
    if n_test >= n:
        raise InvalidParameterError(
            f"{fn}: test_size must leave at least one interaction for training; got "
            f"{show(test_size)}, which puts {n_test} of the {n} interactions in test"
        )
    return n_test


def _check_k(k: int, limit: int, what: str, fn: str) -> int:
    """``k`` (already an int >= 2) must not exceed the number of things to fold."""
    if k > limit:
        raise constraint_error(fn, "k", f"<= {what} ({limit})", k)
    return int(k)


def _need_timestamps(data: Interactions, fn: str, what: str) -> np.ndarray:
    if data.timestamps is None:
        raise DataError(
            f"{fn}: data has no timestamps, and {what} split orders interactions by time. "
            "Build the data with a timestamp column (e.g. fk.read_csv(path, ..., "
            "timestamp='timestamp')) or use split.random / split.per_user instead."
        )
    return data.timestamps


def _check_cutoff(cutoff: Any, ts: np.ndarray, fn: str) -> float | int:
    expected = "a number or a datetime-like (datetime, numpy.datetime64, ISO string)"
    if isinstance(cutoff, numbers.Real) and not isinstance(cutoff, (bool, np.bool_)):
        if isinstance(cutoff, float) and not math.isfinite(cutoff):
            raise constraint_error(fn, "cutoff", expected, cutoff)
        return cutoff
    if isinstance(cutoff, (str, _dt.datetime, _dt.date, np.datetime64, pd.Timestamp)):
        try:
            stamp = pd.Timestamp(cutoff)
        except (ValueError, TypeError):
            raise constraint_error(fn, "cutoff", expected, cutoff) from None
        if stamp is pd.NaT:
            raise constraint_error(fn, "cutoff", expected, cutoff)
        if stamp.tzinfo is not None:
            stamp = stamp.tz_convert("UTC").tz_localize(None)
        seconds = (stamp - pd.Timestamp(0)) / pd.Timedelta(seconds=1)
        return math.ceil(seconds) if ts.dtype.kind in "iu" else seconds
    raise constraint_error(fn, "cutoff", expected, cutoff)


def _warn_empty(fn: str, setting: str) -> None:
    warnings.warn(
        f"{fn}: no user has enough interactions to hold any out with {setting}; the test "
        "set is empty",
        DataWarning,
        stacklevel=3,
    )


# ---------------------------------------------------------------------- machinery
def _finish(data: Interactions, test_mask: np.ndarray, drop_unknown: bool) -> Split:
    return _split_by_mask(data, test_mask, drop_unknown, drop_users=True)


def _split_by_mask(
    data: Interactions, test_mask: np.ndarray, drop_unknown: bool, *, drop_users: bool
) -> Split:
    train = data._derive(np.flatnonzero(~test_mask))
    test_pos = np.flatnonzero(test_mask)
    if drop_unknown and len(test_pos):
        keep = train.item_counts[data.item_index[test_pos]] > 0
        if drop_users:
            keep &= train.user_counts[data.user_index[test_pos]] > 0
        test_pos = test_pos[keep]
    return train, data._derive(test_pos)


def _folds(
    data: Interactions, labels: np.ndarray, k: int, drop_unknown: bool, *, drop_users: bool
) -> Iterator[Split]:
    for fold in range(k):
        yield _split_by_mask(data, labels == fold, drop_unknown, drop_users=drop_users)


def _smallest(r: np.ndarray, k: int) -> np.ndarray:
    """Sorted positions of the ``k`` smallest values of ``r`` (uniform on [0, 1)).

    The k smallest of iid uniforms are a uniformly random k-subset. A threshold a few
    standard deviations above ``k / n`` catches them in one pass; only that candidate
    set is partitioned.
    """
    n = len(r)
    if k >= n:
        return np.arange(n)
    thresh = (k + 6.0 * math.sqrt(k) + 16.0) / n
    cand = np.flatnonzero(r < thresh) if thresh < 1.0 else np.arange(n)
    if len(cand) < k:  # astronomically unlikely; stay exact anyway
        cand = np.arange(n)
    if len(cand) > k:
        cand = cand[np.argpartition(r[cand], k - 1)[:k]]
        cand.sort()
    return cand


def _random_labels(r: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Fold labels with exactly ``sizes`` members each: the order statistics of ``r``."""
    cuts = np.cumsum(sizes)[:-1]
    bounds = np.partition(r, cuts)[cuts]  # smallest value of folds 1 .. k-1
    return np.searchsorted(bounds, r, side="right").astype(_label_dtype(len(sizes)))


def _label_dtype(k: int) -> type:
    return np.int16 if k < 2**15 else np.int64


def _order_within_users(
    data: Interactions, key: np.ndarray | None, rng: np.random.Generator | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Interactions ordered by (user, key, position): positions, rank within user, user.

    Returns ``pos`` (interaction positions in that order), ``rank`` (0 for the first of
    each user) and the user of each slot (which is ``data.user_index`` itself).

    ``key`` None draws a random key from ``rng``. Ties in the key keep canonical order
    (item position). The order comes from one sort of a packed int64
    ``user | key | offset-within-user``; when that does not fit in 63 bits the key is
    first replaced by its dense rank, and failing that a (slower) lexsort is used.
    """
    n = len(data)
    users = data.user_index
    indptr = data.indptr
    u_bits = max(1, int(data.n_users - 1).bit_length())
    o_bits = max(1, int(data.user_counts.max() - 1).bit_length())
    free = 63 - u_bits - o_bits

    if key is None:
        k_bits = min(free, 40)
        if k_bits >= 20:
            ikey = rng.integers(0, 1 << k_bits, n, dtype=np.int64)
        else:  # pragma: no cover - needs > 2**43 users x interactions per user
            ikey, fallback = None, rng.random(n)
    else:
        ikey, k_bits = _integer_key(key)
        if k_bits > free:
            ikey, k_bits = _dense_rank(key)
        fallback = key

    if ikey is not None and k_bits <= free:
        # packed = user | key | offset within the user's row, one int64 sort
        first = indptr[:-1].take(users)  # row start of each interaction
        packed = users.astype(np.int64)
        packed <<= k_bits
        packed |= ikey
        del ikey
        packed <<= o_bits
        packed += np.arange(n, dtype=np.int64)
        packed -= first
        packed.sort()
        packed &= (1 << o_bits) - 1  # the offsets within rows, now in sorted order
        # Each user's rows are contiguous and equally long in both orders, so slot j
        # still belongs to user users[j], whose row starts at first[j].
        pos = packed
        pos += first
    else:  # pragma: no cover - needs > 2**43 users x interactions per user
        first = indptr[:-1].take(users)
        pos = np.lexsort((fallback, users))
    rank = np.arange(n, dtype=np.int64)
    rank -= first
    return pos, rank, users


def _integer_key(key: np.ndarray) -> tuple[np.ndarray | None, int]:
    """A non-negative int64 version of an integer ``key`` and its bit width."""
    if key.dtype.kind not in "iu" or not len(key):
        return None, 64
    lo, hi = int(key.min()), int(key.max())
    bits = max(1, (hi - lo).bit_length())
    if bits > 62:
        return None, 64
    out = key.astype(np.int64)
    out -= lo
    return out, bits


def _dense_rank(key: np.ndarray) -> tuple[np.ndarray, int]:
    """Dense ranks (0 for the smallest value; equal values share a rank) and bit width."""
    order = np.argsort(key, kind="stable")
    sk = key[order]
    new = np.empty(len(sk), dtype=np.int64)
    new[0] = 0
    np.not_equal(sk[1:], sk[:-1], out=new[1:])  # type: ignore[arg-type]
    np.cumsum(new, out=new)
    ranks = np.empty(len(key), dtype=np.int64)
    ranks[order] = new
    return ranks, max(1, int(new[-1]).bit_length())
