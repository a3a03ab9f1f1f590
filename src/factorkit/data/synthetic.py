"""Synthetic interaction data drawn from a known low-rank model.

:func:`make_ratings` draws explicit ratings and :func:`make_implicit` draws implicit
feedback. Each returns the data and a :class:`SyntheticTruth`: the true factors and
biases plus the noiseless score of any (user, item) pair, so a test can compare a model's
error with the noise floor, or check that held-out interactions are ranked well.

How the (user, item) pairs are drawn
------------------------------------
Users and items get Zipf-like weights: the item with popularity rank ``r`` (ranks are a
random permutation of the item positions) gets weight ``r ** -popularity_skew``, and users
likewise with ``activity_skew``. No single user may expect more than half of the items and
no item more than half of the users (weights above that cap are cut to it and the rest
rescaled), as in real logs. Distinct pairs are then drawn by successive sampling without
replacement with probability proportional to ``user_weight * P(item | user)``, where
``P(item | user)`` is the item weight for ratings and the user's taste times the item
weight for implicit data (see :func:`make_implicit`). Before that, when ``n >= n_users +
n_items``, every user gets one item drawn from the popularity weights and every item one
user drawn from the activity weights, so no user or item is empty; when only ``n >=
max(n_users, n_items)`` holds, a uniform cover is used instead; below that some are left
empty.

Small problems (at most 4M cells) are sampled exactly with exponential keys
(Efraimidis-Spirakis); large ones by drawing with replacement, deduplicating sorted int64
keys and topping up, all vectorised, so 25M ratings take seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from factorkit._random import SEED, make_rng
from factorkit._validation import (
    Boolean,
    Interval,
    NoneOr,
    check,
    constraint_error,
    validate_params,
)
from factorkit.data.idmap import IdMap
from factorkit.data.interactions import Interactions
from factorkit.exceptions import InvalidParameterError

__all__ = ["SyntheticTruth", "make_implicit", "make_ratings"]

_COUNT = Interval(int, 1)
_SKEW = Interval(float, 0.0)
#: shared by make_ratings and make_implicit (each adds its count and noise constraints)
_SHAPE = {
    "n_users": _COUNT,
    "n_items": _COUNT,
    "rank": _COUNT,
    "popularity_skew": _SKEW,
    "activity_skew": NoneOr(_SKEW),
    "timestamps": Boolean(),
    "random_state": SEED,
}
_DENSE_MAX_CELLS = 1 << 22  # exact sampling over every cell up to this many cells
_CHUNK = 1 << 20  # rows per chunk when gathering factors
_ALIAS_MAX_ENTRIES = 1 << 22  # larger topic tables use inverse-CDF draws
_MAX_ROUNDS = 1000
_TOPIC_CONCENTRATION = 0.1  # Dirichlet parameter of topic shares and affinities: sharp tastes
_T0 = 1_577_836_800  # 2020-01-01T00:00:00Z
_SPAN = 365 * 86_400  # timestamps are spread uniformly over one year


# ---------------------------------------------------------------------- the truth
@dataclass(frozen=True, eq=False)
class SyntheticTruth:
    """The model that generated a synthetic data set.

    Positions are those of the generated :class:`~factorkit.Interactions`; since the
    generated raw ids are ``0 .. n - 1``, a position is also the raw id.

    Attributes
    ----------
    user_factors : ndarray of shape (n_users, rank)
        Explicit data: Gaussian factors. Implicit data: topic shares (rows sum to 1).
    item_factors : ndarray of shape (n_items, rank)
        Explicit data: Gaussian factors. Implicit data: topic affinities, scaled so that
        ``exp(item_bias) * item_factors[:, k]`` sums to 1 over items for each topic.
    user_bias : ndarray of shape (n_users,)
        Explicit data: additive user bias. Implicit data: log of the user's activity
        weight.
    item_bias : ndarray of shape (n_items,)
        Explicit data: additive item bias. Implicit data: log of the item's popularity
        weight.
    global_mean : float
        Explicit data: the intercept. Implicit data: 0.
    noise : float
        Explicit data: standard deviation of the Gaussian noise added to each rating.
        Implicit data: share of interactions that follow popularity, not taste.
    rating_scale : tuple of float or None
        ``(low, high)`` that ratings were clipped to; None for implicit data.
    rating_step : float or None
        Rating granularity; None for continuous ratings and implicit data.
    implicit : bool
        Whether the data is implicit feedback.

    Examples
    --------
    >>> from factorkit.data.synthetic import make_ratings
    >>> data, truth = make_ratings(n_users=50, n_items=40, n_ratings=600, random_state=0)
    >>> truth.rank, truth.user_factors.shape
    (10, (50, 10))
    >>> truth.score(data.user_index[:3], data.item_index[:3]).shape
    (3,)
    """

    user_factors: np.ndarray
    item_factors: np.ndarray
    user_bias: np.ndarray
    item_bias: np.ndarray
    global_mean: float
    noise: float
    rating_scale: tuple[float, float] | None = None
    rating_step: float | None = None
    implicit: bool = False

    def __post_init__(self) -> None:
        for arr in (self.user_factors, self.item_factors, self.user_bias, self.item_bias):
            arr.flags.writeable = False

    @property
    def rank(self) -> int:
        """Number of latent factors."""
        return int(self.user_factors.shape[1])

    @property
    def n_users(self) -> int:
        return int(self.user_factors.shape[0])

    @property
    def n_items(self) -> int:
        return int(self.item_factors.shape[0])

    def score(self, users: Any, items: Any, *, clip: bool = False) -> np.ndarray:
        """Noiseless true score of each (user position, item position) pair.

        Explicit data: ``global_mean + user_bias[u] + item_bias[i] + user_factors[u] @
        item_factors[i]``, before noise, clipping and rounding (``clip=True`` clips it to
        ``rating_scale``; the observed rating is that plus noise, clipped, then rounded to
        ``rating_step``).

        Implicit data: the log of the weight with which the pair was drawn,
        ``user_bias[u] + item_bias[i] + log(noise + (1 - noise) * user_factors[u] @
        item_factors[i])``. Ranking a user's items by it is the best possible ranking.

        Parameters
        ----------
        users, items : array-like of int
            Positions (equal to the raw ids of the generated data), same length.
        clip : bool, default False
            Clip explicit scores to ``rating_scale``.

        Returns
        -------
        ndarray of float64

        Examples
        --------
        >>> from factorkit.data.synthetic import make_ratings
        >>> data, truth = make_ratings(n_users=20, n_items=10, n_ratings=100, noise=0.0,
        ...                            rating_step=None, random_state=1)
        >>> bool(abs(truth.score([0], [3], clip=True)[0] - 3.0) < 2.0)
        True
        """
        fn = "SyntheticTruth.score"
        check(clip, Boolean(), "clip", fn)
        if clip and self.implicit:
            raise InvalidParameterError(
                f"{fn}: clip=True needs explicit ratings; this truth is of implicit data, "
                "whose scores have no scale. Leave clip=False."
            )
        u = _positions(users, "users", self.n_users, fn)
        i = _positions(items, "items", self.n_items, fn)
        if len(u) != len(i):
            raise InvalidParameterError(
                f"{fn}: users and items must have the same length; got {len(u)} and {len(i)}"
            )
        out = np.empty(len(u), dtype=np.float64)
        for lo in range(0, len(u), _CHUNK):
            uu, ii = u[lo : lo + _CHUNK], i[lo : lo + _CHUNK]
            dot = _rowdot(self.user_factors, uu, self.item_factors, ii)
            bias = self.user_bias.take(uu) + self.item_bias.take(ii)
            if self.implicit:
                with np.errstate(divide="ignore"):
                    out[lo : lo + _CHUNK] = bias + np.log(self.noise + (1.0 - self.noise) * dot)
            else:
                out[lo : lo + _CHUNK] = bias + dot + self.global_mean
        if clip:
            np.clip(out, *self.rating_scale, out=out)
        return out

    def rmse(self, data: Interactions) -> float:
        """RMSE of the noiseless truth (clipped to the scale) against ``data``'s ratings.

        This is the noise floor: about ``noise`` plus the rounding error, and what a
        perfect model would score. ``data`` must use this truth's positions (the generated
        data or a split of it).

        Examples
        --------
        >>> from factorkit.data.synthetic import make_ratings
        >>> data, truth = make_ratings(noise=0.5, rating_step=None, random_state=0)
        >>> 0.4 < truth.rmse(data) < 0.5
        True
        """
        fn = "SyntheticTruth.rmse"
        if self.implicit:
            raise InvalidParameterError(
                f"{fn}: rmse needs explicit ratings; this truth is of implicit data. "
                "Rank held-out items by score() instead."
            )
        if not isinstance(data, Interactions):
            raise constraint_error(fn, "data", "an Interactions", data)
        if data.shape != (self.n_users, self.n_items):
            raise InvalidParameterError(
                f"{fn}: data must have this truth's shape {(self.n_users, self.n_items)} "
                f"(the generated data or a split of it); got {data.shape}"
            )
        if not len(data):
            return float("nan")
        pred = self.score(data.user_index, data.item_index, clip=True)
        return float(np.sqrt(np.mean((pred - data.values) ** 2)))


def _positions(values: Any, name: str, n: int, fn: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
        raise constraint_error(fn, name, "a 1-D array of integer positions", values)
    if arr.size and (arr.min() < 0 or arr.max() >= n):
        bad = arr[np.flatnonzero((arr < 0) | (arr >= n))[0]]
        raise constraint_error(fn, name, f"positions in [0, {n})", bad)
    return arr


# ---------------------------------------------------------------------- public makers
@validate_params(
    {"n_ratings": _COUNT, "noise": Interval(float, 0.0), **_SHAPE}, owner="make_ratings"
)
def make_ratings(
    n_users: int = 1000,
    n_items: int = 500,
    n_ratings: int = 20000,
    rank: int = 10,
    noise: float = 0.5,
    popularity_skew: float = 1.0,
    rating_scale: tuple[float, float] = (1.0, 5.0),
    rating_step: float | None = 0.5,
    random_state: Any = None,
    *,
    activity_skew: float | None = None,
    timestamps: bool = True,
) -> tuple[Interactions, SyntheticTruth]:
    """Explicit ratings from a biased low-rank model with Gaussian noise.

    Each rating is ``global_mean + user_bias + item_bias + user_factors @ item_factors``
    plus ``N(0, noise**2)``, clipped to ``rating_scale`` and rounded to ``rating_step``.
    With scale width ``W`` the intercept is at 62.5% of the scale (3.5 on 1-5), user
    biases have standard deviation ``0.1 W``, item biases ``0.125 W`` and the factor
    term ``0.15 W`` whatever the rank: about MovieLens's spread on a 1-5 scale.
    Which pairs are rated follows popularity and activity skew (see the module notes).

    Parameters
    ----------
    n_users, n_items : int, default 1000, 500
        Vocabulary sizes; the raw ids are ``0 .. n_users - 1`` and ``0 .. n_items - 1``.
    n_ratings : int, default 20000
        Number of distinct (user, item) ratings, at most ``n_users * n_items``. When it is
        at least ``n_users + n_items`` every user and every item has a rating.
    rank : int, default 10
        Number of latent factors.
    noise : float, default 0.5
        Standard deviation of the rating noise (in rating units); 0 for none.
    popularity_skew : float, default 1.0
        Zipf exponent of item popularity; 0 is uniform.
    rating_scale : (float, float), default (1.0, 5.0)
        Ratings are clipped to ``[low, high]``.
    rating_step : float or None, default 0.5
        Ratings are rounded to ``low + k * rating_step``; it must divide the scale width.
        None keeps them continuous.
    random_state : None, int or numpy.random.Generator
        Seed; equal seeds give identical data.
    activity_skew : float, optional
        Zipf exponent of user activity; defaults to ``popularity_skew / 2`` (real logs
        are about half as skewed on the user side: MovieLens-25M ~0.55 vs ~0.9).
    timestamps : bool, default True
        Attach integer Unix-second timestamps, uniform over the year from 2020-01-01.

    Returns
    -------
    data : Interactions
        Explicit ratings (``implicit=False``), in canonical order.
    truth : SyntheticTruth
        The generating model; ``truth.rmse(test)`` is the noise floor on any split.

    Raises
    ------
    InvalidParameterError
        If an argument is out of range, naming it, what was expected and what was given.

    Examples
    --------
    >>> from factorkit.data.synthetic import make_ratings
    >>> data, truth = make_ratings(n_users=100, n_items=50, n_ratings=2000, random_state=0)
    >>> data.shape, len(data)
    ((100, 50), 2000)
    >>> sorted(set(data.values.tolist()))[:3]
    [1.0, 1.5, 2.0]
    >>> bool((data.user_counts > 0).all() and (data.item_counts > 0).all())
    True
    """
    fn = "make_ratings"
    n_users, n_items, n_ratings, rank, skews = _check_shape_args(
        fn, n_users, n_items, n_ratings, "n_ratings", rank, popularity_skew, activity_skew
    )
    noise = float(noise)
    lo, hi = _check_scale(rating_scale, fn)
    step = _check_step(rating_step, lo, hi, fn)
    rng = make_rng(random_state, fn)

    width = hi - lo
    factor_sd = math.sqrt(0.15 * width) / rank**0.25  # rank * sd**4 == (0.15 W) ** 2
    truth = SyntheticTruth(
        user_factors=rng.normal(0.0, factor_sd, (n_users, rank)),
        item_factors=rng.normal(0.0, factor_sd, (n_items, rank)),
        user_bias=rng.normal(0.0, 0.1 * width, n_users),
        item_bias=rng.normal(0.0, 0.125 * width, n_items),
        global_mean=lo + 0.625 * width,
        noise=noise,
        rating_scale=(lo, hi),
        rating_step=step,
        implicit=False,
    )
    a, b = _weights(rng, n_users, n_items, n_ratings, *skews)
    keys = _sample_cells(rng, n_ratings, _Popularity(a, b), fn)
    users, items = _split_keys(keys, n_items)
    del keys

    values = np.empty(n_ratings, dtype=np.float32)
    for start in range(0, n_ratings, _CHUNK):
        sl = slice(start, start + _CHUNK)
        x = truth.score(users[sl], items[sl])
        if noise:
            x += noise * rng.standard_normal(len(x))
        np.clip(x, lo, hi, out=x)
        if step is not None:
            x = lo + np.round((x - lo) / step) * step
        values[sl] = x
    ts = _timestamps(rng, n_ratings) if timestamps else None
    return _build(users, items, values, ts, n_users, n_items, implicit=False), truth


@validate_params(
    {
        "n_interactions": _COUNT,
        "noise": Interval(float, 0.0, 1.0),
        "counts": Boolean(),
        **_SHAPE,
    },
    owner="make_implicit",
)
def make_implicit(
    n_users: int = 1000,
    n_items: int = 500,
    n_interactions: int = 20000,
    rank: int = 10,
    popularity_skew: float = 1.0,
    random_state: Any = None,
    *,
    noise: float = 0.2,
    counts: bool = False,
    activity_skew: float | None = None,
    timestamps: bool = True,
) -> tuple[Interactions, SyntheticTruth]:
    """Implicit feedback drawn from a low-rank (topic) preference model.

    There are ``rank`` latent topics. Each user has topic shares ``t[u]`` (summing to
    1, concentrated on a few topics) and each item topic affinities ``f[i]``. A user's
    next item is drawn with probability ``popularity[i] * (noise + (1 - noise) * t[u] @
    f[i])``, where ``f`` is scaled so that each topic is itself a distribution over
    items: a ``noise`` share of the draws follows popularity alone, the rest the user's
    taste. Distinct pairs are drawn from that, weighted by user activity, without
    replacement. The preference matrix ``t @ f.T`` has rank ``rank``, so held-out
    positives are predictable from a user's other interactions, and
    ``truth.score`` ranks them best.

    Parameters
    ----------
    n_users, n_items : int, default 1000, 500
        Vocabulary sizes; the raw ids are ``0 .. n_users - 1`` and ``0 .. n_items - 1``.
    n_interactions : int, default 20000
        Number of distinct (user, item) interactions, at most ``n_users * n_items``.
        When it is at least ``n_users + n_items`` every user and item has one.
    rank : int, default 10
        Number of latent topics.
    popularity_skew : float, default 1.0
        Zipf exponent of item popularity; 0 is uniform.
    random_state : None, int or numpy.random.Generator
        Seed; equal seeds give identical data.
    noise : float, default 0.2
        Share of interactions, in [0, 1], that ignore taste and follow popularity alone.
    counts : bool, default False
        Values are 1.0 (False) or play counts ``1 + Poisson(t[u] @ f[i])`` (True),
        higher for items that match the user's taste (the mean of ``t[u] @ f[i]`` over
        popularity is 1).
    activity_skew : float, optional
        Zipf exponent of user activity; defaults to ``popularity_skew / 2``.
    timestamps : bool, default True
        Attach integer Unix-second timestamps, uniform over the year from 2020-01-01.

    Returns
    -------
    data : Interactions
        Implicit feedback (``implicit=True``), in canonical order.
    truth : SyntheticTruth
        The generating model (``implicit=True``): ``user_factors`` is ``t``,
        ``item_factors`` is ``f``, the biases are log activity and log popularity.

    Raises
    ------
    InvalidParameterError
        If an argument is out of range, naming it, what was expected and what was given.

    Examples
    --------
    >>> from factorkit.data.synthetic import make_implicit
    >>> data, truth = make_implicit(n_users=100, n_items=50, n_interactions=1500,
    ...                             random_state=0)
    >>> data.implicit, len(data), set(data.values.tolist())
    (True, 1500, {1.0})
    >>> truth.user_factors.sum(axis=1)[:3].round(6).tolist()
    [1.0, 1.0, 1.0]
    """
    fn = "make_implicit"
    n_users, n_items, n, rank, skews = _check_shape_args(
        fn, n_users, n_items, n_interactions, "n_interactions", rank, popularity_skew,
        activity_skew,
    )  # fmt: skip
    noise = float(noise)
    rng = make_rng(random_state, fn)

    a, b = _weights(rng, n_users, n_items, n, *skews)
    t = rng.dirichlet(np.full(rank, _TOPIC_CONCENTRATION), n_users)
    f = rng.dirichlet(np.full(rank, _TOPIC_CONCENTRATION), n_items)
    f /= b @ f  # each topic's item distribution b * f[:, k] sums to 1
    truth = SyntheticTruth(
        user_factors=t,
        item_factors=f,
        user_bias=np.log(a),
        item_bias=np.log(b),
        global_mean=0.0,
        noise=noise,
        implicit=True,
    )
    keys = _sample_cells(rng, n, _Topics(a, b, t, f, noise), fn)
    users, items = _split_keys(keys, n_items)
    del keys
    if counts:
        values = np.empty(n, dtype=np.float32)
        for lo in range(0, n, _CHUNK):
            taste = _rowdot(t, users[lo : lo + _CHUNK], f, items[lo : lo + _CHUNK])
            values[lo : lo + _CHUNK] = 1.0 + rng.poisson(taste)
    else:
        values = np.ones(n, dtype=np.float32)
    ts = _timestamps(rng, n) if timestamps else None
    return _build(users, items, values, ts, n_users, n_items, implicit=True), truth


# ---------------------------------------------------------------------- argument checks
def _check_shape_args(
    fn: str,
    n_users: Any,
    n_items: Any,
    n: Any,
    n_name: str,
    rank: Any,
    popularity_skew: Any,
    activity_skew: Any,
) -> tuple[int, int, int, int, tuple[float, float]]:
    """The already checked shape arguments as Python numbers, and the checks that
    involve several of them."""
    n_users, n_items, n, rank = int(n_users), int(n_items), int(n), int(rank)
    cells = n_users * n_items
    if cells >= 2**62:  # cells are addressed by int64 keys
        raise constraint_error(fn, "n_users * n_items", "< 2**62", cells)
    if n > cells:
        raise constraint_error(fn, n_name, f"<= n_users * n_items ({cells})", n)
    pop = float(popularity_skew)
    act = pop / 2 if activity_skew is None else float(activity_skew)
    return n_users, n_items, n, rank, (pop, act)


def _check_scale(rating_scale: Any, fn: str) -> tuple[float, float]:
    expected = "a (low, high) pair of finite numbers with low < high"
    try:
        lo, hi = rating_scale
    except (TypeError, ValueError):
        raise constraint_error(fn, "rating_scale", expected, rating_scale) from None
    finite = Interval(float)
    if not (finite.accepts(lo) and finite.accepts(hi) and lo < hi):
        raise constraint_error(fn, "rating_scale", expected, rating_scale)
    return float(lo), float(hi)


def _check_step(step: Any, lo: float, hi: float, fn: str) -> float | None:
    if step is None:
        return None
    step = float(check(step, Interval(float, 0.0, closed="neither"), "rating_step", fn))
    width = hi - lo
    k = width / step
    if abs(k - round(k)) > 1e-9 * max(1.0, k):
        raise constraint_error(
            fn, "rating_step", f"None or a step that divides the scale width ({width:g})", step
        )
    return step


# ---------------------------------------------------------------------- sampling
def _weights(
    rng: np.random.Generator, n_users: int, n_items: int, n: int, pop: float, act: float
) -> tuple[np.ndarray, np.ndarray]:
    """User and item sampling weights: Zipf-like over a random ranking, then capped."""
    density = n / (n_users * n_items)
    share = min(1.0, max(0.5, 2.0 * density))  # the cap is always feasible
    a = _cap(_zipf(rng, n_users, act), share * n_items / n)
    b = _cap(_zipf(rng, n_items, pop), share * n_users / n)
    return a, b


def _zipf(rng: np.random.Generator, m: int, s: float) -> np.ndarray:
    ranks = rng.permutation(m).astype(np.float64) + 1.0
    w = ranks**-s
    return w / w.sum()


def _cap(w: np.ndarray, cap: float) -> np.ndarray:
    """Water-filling: weights above ``cap`` are set to it, the rest rescaled to sum 1."""
    if w.max() <= cap:
        return w
    order = np.argsort(w)[::-1]
    ws = w[order]
    suffix = np.cumsum(ws[::-1])[::-1]
    k = np.arange(len(ws))
    room = 1.0 - k * cap
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = room / suffix
    ok = (room > 0) & (ws * scale <= cap * (1 + 1e-12))
    first = int(np.argmax(ok)) if ok.any() else len(ws) - 1
    out = ws * scale[first]
    out[:first] = cap
    res = np.empty_like(w)
    res[order] = out
    return res / res.sum()


class _Alias:
    """Walker's alias table: O(1) weighted draws from one uniform each."""

    def __init__(self, p: np.ndarray) -> None:
        m = len(p)
        prob = (p * (m / p.sum())).tolist()
        alias = list(range(m))
        small = [j for j in range(m) if prob[j] < 1.0]
        large = [j for j in range(m) if prob[j] >= 1.0]
        while small and large:
            s, g = small.pop(), large.pop()
            alias[s] = g
            prob[g] -= 1.0 - prob[s]
            (small if prob[g] < 1.0 else large).append(g)
        for j in small + large:
            prob[j] = 1.0
        self.m = m
        self.prob = np.asarray(prob)
        self.alias = np.asarray(alias, dtype=np.int32 if m < 2**31 else np.int64)

    def draw(self, rng: np.random.Generator, size: int) -> np.ndarray:
        x = rng.random(size)
        x *= self.m
        idx = x.astype(np.int32 if self.m < 2**31 else np.int64)
        np.minimum(idx, self.m - 1, out=idx)
        x -= idx  # the fractional part is a fresh uniform for the coin
        use_alias = x >= self.prob.take(idx)
        idx[use_alias] = self.alias.take(idx[use_alias])
        return idx


class _Cdf:
    """Weighted draws by inverse CDF: O(log m) each, but nothing to build."""

    def __init__(self, p: np.ndarray) -> None:
        self.cdf = np.cumsum(p)

    def draw(self, rng: np.random.Generator, size: int) -> np.ndarray:
        u = rng.random(size)
        u *= self.cdf[-1]
        idx = np.searchsorted(self.cdf, u, side="right")
        return np.minimum(idx, len(self.cdf) - 1, out=idx)


def _draw(rng: np.random.Generator, p: np.ndarray, size: int) -> np.ndarray:
    return _Cdf(p).draw(rng, size)


def _coverage(rng: np.random.Generator, n: int, model: _Popularity | _Topics) -> np.ndarray:
    """Sorted unique cell keys giving every user and item one interaction, if n allows.

    Each user's item is drawn from ``P(item | user)`` and each item's user from ``P(user
    | item)``, so the cover follows the same model as the rest.
    """
    nu, ni = len(model.a), len(model.b)
    if n >= nu + ni:
        users = np.arange(nu, dtype=np.int64)
        items = np.arange(ni, dtype=np.int64)
        keys = np.concatenate(
            [
                users * ni + model.draw(rng, users),
                model.draw_users(rng, items).astype(np.int64) * ni + items,
            ]
        )
        return _unique_sorted(np.sort(keys))
    if n >= max(nu, ni):
        k = np.arange(max(nu, ni))
        users = rng.permutation(nu)[k % nu].astype(np.int64)
        items = rng.permutation(ni)[k % ni]
        return np.sort(users * ni + items)  # distinct: k < lcm(nu, ni)
    return np.empty(0, dtype=np.int64)


def _unique_sorted(sorted_keys: np.ndarray) -> np.ndarray:
    if len(sorted_keys) < 2:
        return sorted_keys
    keep = np.empty(len(sorted_keys), dtype=bool)
    keep[0] = True
    np.not_equal(sorted_keys[1:], sorted_keys[:-1], out=keep[1:])
    return sorted_keys[keep]


class _Popularity:
    """Items drawn from the popularity weights alone, whoever the user."""

    def __init__(self, a: np.ndarray, b: np.ndarray) -> None:
        self.a, self.b = a, b
        self.alias = _Alias(b)

    def draw_users(self, rng: np.random.Generator, items: np.ndarray) -> np.ndarray:
        return _draw(rng, self.a, len(items))

    def dense(self) -> np.ndarray:
        return self.b[None, :]

    def draw(self, rng: np.random.Generator, users: np.ndarray) -> np.ndarray:
        return self.alias.draw(rng, len(users))


class _Topics:
    """Items drawn from a user's taste: ``P(i | u) = b[i] * (noise + (1 - noise) * t[u] @ f[i])``.

    ``t`` (users x rank) holds topic shares summing to 1, ``f`` (items x rank) topic
    affinities scaled so each topic's distribution ``b[i] * f[i, k]`` sums to 1. The
    ``noise`` share of draws follows popularity alone (an extra topic).
    """

    def __init__(
        self, a: np.ndarray, b: np.ndarray, t: np.ndarray, f: np.ndarray, noise: float
    ) -> None:
        self.a, self.b, self.t, self.f, self.noise = a, b, t, f, noise
        mix = np.hstack([(1.0 - noise) * t, np.full((len(t), 1), noise)])
        self.cum_mix = np.cumsum(mix, axis=1)
        self.cum_mix[:, -1] = np.inf  # every uniform lands in some topic
        dists = np.hstack([b[:, None] * f, b[:, None]])  # items x (rank + 1), columns sum 1
        if dists.size <= _ALIAS_MAX_ENTRIES:  # O(1) draws, but built in a Python loop
            self.samplers = [_Alias(col) for col in dists.T]
        else:
            self.samplers = [_Cdf(col) for col in dists.T]

    def dense(self) -> np.ndarray:
        return self.b[None, :] * (self.noise + (1.0 - self.noise) * (self.t @ self.f.T))

    def draw_users(self, rng: np.random.Generator, items: np.ndarray) -> np.ndarray:
        """Users from ``P(u | i)``: ``a[u] * (noise + (1 - noise) * t[u] @ f[i])``."""
        a_t = self.a[:, None] * self.t  # users x rank
        mix = np.hstack(
            [(1.0 - self.noise) * self.f[items] * a_t.sum(0), np.full((len(items), 1), self.noise)]
        )
        topic = (np.cumsum(mix, axis=1) <= (rng.random(len(items)) * mix.sum(1))[:, None]).sum(1)
        topic = np.minimum(topic, mix.shape[1] - 1)
        users = np.empty(len(items), dtype=np.int64)
        for k in range(mix.shape[1]):
            where = np.flatnonzero(topic == k)
            if len(where):
                weights = self.a if k == mix.shape[1] - 1 else a_t[:, k]
                users[where] = _draw(rng, weights, len(where))
        return users

    def draw(self, rng: np.random.Generator, users: np.ndarray) -> np.ndarray:
        m, n_topics = len(users), self.cum_mix.shape[1]
        topic = np.empty(m, dtype=np.int8 if n_topics < 128 else np.int32)
        for lo in range(0, m, _CHUNK):
            r = rng.random(min(_CHUNK, m - lo))
            cum = self.cum_mix.take(users[lo : lo + _CHUNK], axis=0)
            topic[lo : lo + _CHUNK] = (cum <= r[:, None]).sum(axis=1)
        items = np.empty(m, dtype=np.int32 if len(self.b) < 2**31 else np.int64)
        for k, sampler in enumerate(self.samplers):
            where = np.flatnonzero(topic == k)
            items[where] = sampler.draw(rng, len(where))
        return items


def _sample_cells(
    rng: np.random.Generator, n: int, model: _Popularity | _Topics, fn: str
) -> np.ndarray:
    """``n`` distinct cells as sorted flat keys ``user * n_items + item``.

    Successive sampling without replacement with weight ``a[u] * P(i | u)`` (``model``),
    after the coverage cells.
    """
    a = model.a
    nu, ni = len(a), len(model.b)
    base = _coverage(rng, n, model)
    if nu * ni <= _DENSE_MAX_CELLS:
        with np.errstate(divide="ignore"):
            w = a[:, None] * model.dense()
            keys = rng.standard_exponential(nu * ni) / w.ravel()  # smaller = drawn earlier
        keys[base] = -1.0
        if n < nu * ni:
            cells = np.argpartition(keys, n - 1)[:n]
            cells.sort()
            return cells.astype(np.int64)
        return np.arange(nu * ni, dtype=np.int64)

    user_ids = np.arange(nu, dtype=np.int64)
    keys = base
    frac = 1.0  # fraction of the last round's draws that were new cells
    max_draws = max(2 * n, 1 << 20)
    for _ in range(_MAX_ROUNDS):
        need = n - len(keys)
        if need <= 0:
            return keys
        m = int(min(max_draws, need / frac * 1.05 + 1024))
        cand = np.repeat(user_ids, rng.multinomial(m, a))
        items = model.draw(rng, cand)
        cand *= ni
        cand += items
        del items
        cand.sort()
        cand = _unique_sorted(cand)
        if len(keys):
            pos = np.searchsorted(keys, cand)
            pos[pos == len(keys)] = 0
            cand = cand[keys[pos] != cand]
        frac = max(len(cand) / m, 1e-4)
        if len(cand) > need:  # keep a uniformly random `need` of the new cells
            if len(cand) - need < need:
                keep = np.ones(len(cand), dtype=bool)
                keep[rng.choice(len(cand), len(cand) - need, replace=False)] = False
                cand = cand[keep]
            else:
                cand = np.sort(cand[rng.choice(len(cand), need, replace=False)])
        keys = np.concatenate([keys, cand])
        keys.sort(kind="stable")  # timsort: one linear merge of the two sorted runs
    raise InvalidParameterError(
        f"{fn}: could not place {n} distinct interactions in {_MAX_ROUNDS} sampling rounds; "
        "the requested density is too high for this skew. Lower the skew or the count."
    )


def _rowdot(p: np.ndarray, u: np.ndarray, q: np.ndarray, i: np.ndarray) -> np.ndarray:
    """``(p[u] * q[i]).sum(1)``; ``take`` gathers rows several times faster than ``[]``."""
    return np.einsum("ij,ij->i", p.take(u, axis=0), q.take(i, axis=0))


def _split_keys(keys: np.ndarray, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    users = (keys // n_items).astype(np.int32)
    items = (keys % n_items).astype(np.int32)
    return users, items


def _timestamps(rng: np.random.Generator, n: int) -> np.ndarray:
    ts = rng.integers(0, _SPAN, n, dtype=np.int64)
    ts += _T0
    return ts


def _build(
    users: np.ndarray,
    items: np.ndarray,
    values: np.ndarray,
    ts: np.ndarray | None,
    n_users: int,
    n_items: int,
    *,
    implicit: bool,
) -> Interactions:
    return Interactions(
        users,
        items,
        values,
        IdMap._from_unique(np.arange(n_users, dtype=np.int64), "user"),
        IdMap._from_unique(np.arange(n_items, dtype=np.int64), "item"),
        ts,
        implicit=implicit,
        _canonical=True,  # sorted unique keys are (user, item) order
    )
