"""Ranking metrics: names, parsing, and one blocked pass over the test users.

Definitions and conventions are in ``docs/metrics.md``. In short, for a test user with
relevant items ``R`` (``n = |R|``) and recommendation list ``L`` (training items left
out), ``hit_j`` says whether the item at rank ``j`` is in ``R``:

- ``precision@k = hits@k / k``; ``recall@k = hits@k / n``;
- ``ndcg@k = sum_{j<=k} hit_j / log2(j + 1)`` over the same sum for ``min(k, n)`` hits;
- ``map@k = sum_{j<=k} hit_j * precision@j / min(k, n)``;
- ``mrr@k = 1 / (rank of the first hit)`` (0 without a hit in the top ``k``);
- ``hit_rate@k = 1`` if any hit in the top ``k``;
- ``auc``: share of (relevant, non-relevant candidate) pairs ranked the right way round,
  ties counting half;
- ``coverage@k``: share of the model's items in at least one evaluated user's top ``k``;
- beyond accuracy, from each user's top ``k`` and the training popularity ``c_i`` of
  items (``N`` training users): ``novelty@k``, the mean self-information
  ``-log2(max(c_i, 1) / N)``; ``popularity@k``, the mean popularity percentile of the
  recommended items (0 = least, 1 = most interacted-with item; ties share their mid-rank);
  ``diversity@k``, intra-list diversity, the mean of ``1 - cos(q_i, q_j)`` over pairs of
  recommended items' factor vectors (NaN for models without item factors).

The model is reached only through its public scoring protocol (``top_items``,
``score_blocks``, ``user_map_``/``item_map_``, ``seen_indptr_``/``seen_indices_``; see
:class:`factorkit.models.FactorModel`) and its ``can_recommend`` tag.

Per-user values are averaged over the evaluated users (test users with at least one
relevant item). Relevant items the model cannot recommend (unknown to it) are misses.
Users unknown to the model get no recommendations: 0 for every top-k metric.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from factorkit._threads import resolve_threads, using_threads
from factorkit._validation import Interval, NoneOr, Satisfies, check
from factorkit.base import get_tags
from factorkit.data.interactions import Interactions
from factorkit.evaluation.metrics import RATING_METRICS
from factorkit.exceptions import DataError, DataWarning, InvalidParameterError, NotFittedError
from factorkit.kernels.ranking import (
    HIT_RATE,
    MAP,
    MRR,
    NDCG,
    PRECISION,
    RECALL,
    ranking_auc,
    ranking_topk_metrics,
)
from factorkit.kernels.topk import topk_scores

__all__ = ["MetricSpec", "available_metrics", "parse_metrics"]

#: per-user metrics with a cut-off, by kernel code
TOPK_METRICS = {
    "precision": PRECISION,
    "recall": RECALL,
    "ndcg": NDCG,
    "map": MAP,
    "mrr": MRR,
    "hit_rate": HIT_RATE,
}
#: beyond-accuracy metrics computed from the top-k lists and training popularity
BEYOND_METRICS = ("novelty", "popularity", "diversity")
_NAME = re.compile(r"^\s*([a-z_]+)\s*(?:@\s*(.*?))?\s*$")


class MetricSpec(NamedTuple):
    """A parsed metric name: canonical ``name`` (``"ndcg@10"``), ``kind`` and cut-off ``k``."""

    name: str
    kind: str
    k: int | None

    @property
    def is_rating(self) -> bool:
        return self.kind in RATING_METRICS

    @property
    def per_user(self) -> bool:
        """Whether the metric has a value per user (all but ``coverage``)."""
        return self.kind != "coverage"


def available_metrics() -> list[str]:
    """Metric names :func:`factorkit.evaluate` accepts; ``k`` stands for an int >= 1.

    Examples
    --------
    >>> from factorkit.evaluation import available_metrics
    >>> available_metrics()[:4]
    ['rmse', 'mae', 'precision@k', 'recall@k']
    """
    return [
        *RATING_METRICS,
        *(f"{m}@k" for m in TOPK_METRICS),
        "auc",
        "coverage@k",
        *(f"{m}@k" for m in BEYOND_METRICS),
    ]


def _unknown(name: Any, why: str) -> InvalidParameterError:
    return InvalidParameterError(
        f"{why} (metric {name!r}); available metrics: {', '.join(available_metrics())}, "
        "where k is an int >= 1, e.g. 'ndcg@10'"
    )


def parse_metrics(metrics: str | Sequence[str]) -> list[MetricSpec]:
    """Parse metric names such as ``"rmse"``, ``"ndcg@10"`` or ``"auc"``.

    Names are case-insensitive; repeats are dropped (first kept).

    Raises
    ------
    InvalidParameterError
        For an empty list, an unknown name or a bad cut-off; the message lists the
        available metrics.

    Examples
    --------
    >>> from factorkit.evaluation import parse_metrics
    >>> [m.name for m in parse_metrics(["RMSE", "ndcg@10", "auc"])]
    ['rmse', 'ndcg@10', 'auc']
    """
    names = [metrics] if isinstance(metrics, str) else list(metrics)
    if not names:
        raise InvalidParameterError(
            "metrics must name at least one metric, e.g. ['rmse'] or ['ndcg@10']; "
            f"available metrics: {', '.join(available_metrics())}"
        )
    specs: list[MetricSpec] = []
    for raw in names:
        if not isinstance(raw, str):
            raise _unknown(raw, "metric names must be strings")
        match = _NAME.match(raw.lower())
        if match is None:
            raise _unknown(raw, "unknown metric")
        kind, k_text = match.group(1), match.group(2)
        if kind in RATING_METRICS or kind == "auc":
            if k_text is not None:
                raise _unknown(raw, f"{kind} takes no cut-off @k")
            spec = MetricSpec(kind, kind, None)
        elif kind in TOPK_METRICS or kind == "coverage" or kind in BEYOND_METRICS:
            if k_text is None:
                raise _unknown(raw, f"{kind} needs a cut-off, e.g. '{kind}@10'")
            if not k_text.isdigit() or int(k_text) < 1:
                raise _unknown(raw, f"the cut-off k of {kind} must be an int >= 1; got {k_text!r}")
            spec = MetricSpec(f"{kind}@{int(k_text)}", kind, int(k_text))
        else:
            raise _unknown(raw, "unknown metric")
        if spec not in specs:
            specs.append(spec)
    return specs


@dataclass
class RankingResult:
    """Ranking metrics of one evaluation (internal; :func:`factorkit.evaluate` reshapes it)."""

    #: test-user positions (in ``test.user_map``) of the evaluated users
    users: np.ndarray
    #: per-user value of each per-user metric, by name
    per_user: dict[str, np.ndarray]
    #: summary value of every requested ranking metric, by name
    summary: dict[str, float]
    n_relevant: np.ndarray
    known: np.ndarray


_THRESHOLD = Satisfies(
    NoneOr(Interval(float)).accepts,
    "a finite number (test interactions with value >= it are relevant) or None (all are)",
)


def _check_threshold(relevance_threshold: Any) -> float | None:
    check(relevance_threshold, _THRESHOLD, "relevance_threshold", "evaluate")
    return None if relevance_threshold is None else float(relevance_threshold)


def _train_structure(model: Any, train: Interactions | None) -> tuple[np.ndarray, np.ndarray]:
    """CSR (model users x model items) of the items to leave out of each user's candidates."""
    if train is None:
        return (
            np.asarray(model.seen_indptr_, dtype=np.int64),
            np.asarray(model.seen_indices_, dtype=np.int32),
        )
    if not isinstance(train, Interactions):
        raise DataError(
            f"evaluate: train must be an Interactions (the training data) or None; got "
            f"{type(train).__name__}"
        )
    n_users = len(model.user_map_)
    u = model.user_map_.lookup(train.user_map.ids)[train.user_index]
    i = model.item_map_.lookup(train.item_map.ids)[train.item_index]
    keep = (u >= 0) & (i >= 0)
    u, i = u[keep], i[keep]
    order = np.lexsort((i, u))
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(u, minlength=n_users), out=indptr[1:])
    return indptr, i[order].astype(np.int32)


def _in_training(test: Interactions, model: Any, train: Interactions | None) -> np.ndarray:
    """Whether each test interaction's (user, item) pair is a training pair, by raw ids.

    Training pairs come from ``train`` when given, else from the model's seen structure.
    """
    if train is None:
        counts = np.diff(model.seen_indptr_)
        u = test.user_map.lookup(model.user_map_.ids)
        u = np.repeat(u, counts)
        i = test.item_map.lookup(model.item_map_.ids)[model.seen_indices_]
    else:
        u = test.user_map.lookup(train.user_map.ids)[train.user_index]
        i = test.item_map.lookup(train.item_map.ids)[train.item_index]
    keep = (u >= 0) & (i >= 0)
    n_test_items = max(test.n_items, 1)
    train_keys = np.sort(u[keep] * n_test_items + i[keep])
    out = np.zeros(len(test), dtype=np.bool_)
    if len(train_keys):
        keys = test.user_index.astype(np.int64) * n_test_items + test.item_index
        at = np.minimum(np.searchsorted(train_keys, keys), len(train_keys) - 1)
        out = train_keys[at] == keys
    return out


def ranking_evaluation(
    model: Any,
    test: Interactions,
    specs: Sequence[MetricSpec],
    train: Interactions | None = None,
    relevance_threshold: float | None = None,
) -> RankingResult:
    """Compute the ranking metrics ``specs`` of a fitted recommender on ``test``.

    Steps: the relevant test items per user (:func:`_relevance`), one pass over the known
    users' scores for their top-k lists and AUC (:func:`_rank_known_users`), the per-user
    metric values (:func:`_per_user_metrics`), and their summary (:func:`_summarise`).
    """
    from factorkit.base import Estimator

    if not isinstance(model, Estimator) or not get_tags(model).can_recommend:
        raise InvalidParameterError(
            "evaluate: ranking metrics need a fitted factorkit model with recommend(); got "
            f"{type(model).__name__}"
        )
    if not hasattr(model, "user_map_"):
        raise NotFittedError(
            f"This {type(model).__name__} is not fitted yet; call fit(train) before evaluate."
        )
    threshold = _check_threshold(relevance_threshold)
    seen_all = _train_structure(model, train)
    rel = _relevance(model, test, train, threshold)
    per_user = {s.name: np.full(len(rel.users), np.nan) for s in specs if s.per_user}
    if len(rel.users) == 0:
        where = "" if threshold is None else f" with value >= {threshold:g}"
        warnings.warn(
            f"evaluate: no test user has a relevant item{where} that is not in their training "
            "data; ranking metrics are NaN",
            DataWarning,
            stacklevel=3,
        )
        nan = {s.name: float("nan") for s in specs}
        return RankingResult(rel.users, per_user, nan, rel.n_rel, rel.known)
    n_unknown = int((~rel.known).sum())
    if n_unknown:
        warnings.warn(
            f"evaluate: {n_unknown} of {len(rel.users)} evaluated test users are unknown to "
            "the model (no training interactions); they get no recommendations and count as 0 "
            "in every top-k metric (see docs/metrics.md)",
            DataWarning,
            stacklevel=3,
        )
    ranked = _rank_known_users(model, specs, rel, seen_all)
    _per_user_metrics(model, specs, rel, ranked, seen_all, per_user)
    summary = _summarise(specs, per_user, ranked.topk_idx, len(model.item_map_))
    return RankingResult(rel.users, per_user, summary, rel.n_rel, rel.known)


class _Relevance(NamedTuple):
    """Evaluated test users and their relevant items (in model positions)."""

    users: np.ndarray  # test-user positions with at least one relevant item
    n_rel: np.ndarray  # relevant items per evaluated user (known to the model or not)
    known: np.ndarray  # whether each evaluated user is known to the model
    user_model_pos: np.ndarray  # each evaluated user's model position (-1: unknown)
    rel_ptr: np.ndarray  # CSR over test users of relevant, known items
    rel_idx: np.ndarray
    n_known_rel: np.ndarray  # relevant items known to the model, per evaluated user


def _relevance(
    model: Any, test: Interactions, train: Interactions | None, threshold: float | None
) -> _Relevance:
    tu = np.asarray(test.user_index, dtype=np.int64)
    ti = model.item_map_.lookup(test.item_map.ids)[test.item_index]  # -1: unknown item
    user_pos = model.user_map_.lookup(test.user_map.ids)  # per test user
    relevant = np.ones(len(tu), dtype=np.bool_)
    if threshold is not None:
        relevant &= test.values >= threshold
    # items already in the user's training data cannot be recommended: not relevant
    relevant[_in_training(test, model, train)] = False
    n_rel_all = np.bincount(tu[relevant], minlength=test.n_users)
    users = np.flatnonzero(n_rel_all > 0)
    # relevant known items per test user, sorted by model item position
    rows = np.flatnonzero(relevant & (ti >= 0))
    rows = rows[np.lexsort((ti[rows], tu[rows]))]
    rel_ptr = np.zeros(test.n_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(tu[rows], minlength=test.n_users), out=rel_ptr[1:])
    return _Relevance(
        users=users,
        n_rel=n_rel_all[users],
        known=user_pos[users] >= 0,
        user_model_pos=user_pos[users],
        rel_ptr=rel_ptr,
        rel_idx=ti[rows].astype(np.int32),
        n_known_rel=np.diff(rel_ptr)[users],
    )


class _Ranked(NamedTuple):
    """Top-k lists and AUC of the known evaluated users."""

    kpos: np.ndarray  # indices (into the evaluated users) of the known ones
    topk_idx: np.ndarray  # (n_known, big_k) model item positions, -1 padded
    auc: np.ndarray  # (n_known,) NaN unless AUC was asked for
    rel_ptr: np.ndarray  # relevant known items of the known users (CSR)
    rel_idx: np.ndarray


def _rank_known_users(
    model: Any, specs: Sequence[MetricSpec], rel: _Relevance, seen_all: tuple
) -> _Ranked:
    """One pass over the known users: top-k lists, and AUC while each score block exists."""
    topk_specs = [
        s for s in specs if s.kind in TOPK_METRICS or s.kind in ("coverage", *BEYOND_METRICS)
    ]
    want_auc = any(s.kind == "auc" for s in specs)
    big_k = max((s.k for s in topk_specs), default=0)
    kpos = np.flatnonzero(rel.known)
    u_model = rel.user_model_pos[kpos]
    n_known = len(kpos)
    seen_ptr, seen_idx = _gather_rows(*seen_all, u_model)
    rel_ptr, rel_idx = _gather_rows(rel.rel_ptr, rel.rel_idx, rel.users[kpos])
    topk_idx = np.full((n_known, big_k), -1, dtype=np.int64)
    auc = np.full(n_known, np.nan)
    n_rel_known = rel.n_rel[kpos].astype(np.int64)
    excluded = np.zeros(len(model.item_map_), dtype=np.bool_)
    n_threads = resolve_threads(model.get_params().get("n_threads"))
    if n_known and want_auc:
        topk_val = np.empty((n_known, big_k), dtype=np.float32)
        for start, stop, scores in model.score_blocks(u_model):
            sp_ = seen_ptr[start : stop + 1] - seen_ptr[start]
            si_ = seen_idx[seen_ptr[start] : seen_ptr[stop]]
            rp_ = rel_ptr[start : stop + 1] - rel_ptr[start]
            ri_ = rel_idx[rel_ptr[start] : rel_ptr[stop]]
            with using_threads(n_threads):
                if big_k:
                    topk_scores(
                        scores, sp_, si_, excluded, big_k,
                        topk_idx[start:stop], topk_val[start:stop],
                    )  # fmt: skip
                ranking_auc(scores, sp_, si_, rp_, ri_, n_rel_known[start:stop], auc[start:stop])
    elif n_known and big_k:
        topk_idx, _ = model.top_items(u_model, big_k, exclude=(seen_ptr, seen_idx))
    return _Ranked(kpos, topk_idx, auc, rel_ptr, rel_idx)


def _per_user_metrics(
    model: Any,
    specs: Sequence[MetricSpec],
    rel: _Relevance,
    ranked: _Ranked,
    seen_all: tuple,
    per_user: dict[str, np.ndarray],
) -> None:
    """Fill ``per_user`` (one value per evaluated user) from the ranked lists."""
    kpos, n_known = ranked.kpos, len(ranked.kpos)
    kernel_specs = [s for s in specs if s.kind in TOPK_METRICS]
    if kernel_specs:
        values = np.zeros((n_known, len(kernel_specs)), dtype=np.float64)
        if n_known:
            with using_threads(resolve_threads(model.get_params().get("n_threads"))):
                ranking_topk_metrics(
                    ranked.topk_idx,
                    ranked.rel_ptr,
                    ranked.rel_idx,
                    rel.n_rel[kpos].astype(np.int64),
                    np.array([TOPK_METRICS[s.kind] for s in kernel_specs], dtype=np.int64),
                    np.array([s.k for s in kernel_specs], dtype=np.int64),
                    values,
                )
        for m, s in enumerate(kernel_specs):
            per_user[s.name][:] = 0.0  # unknown users: no recommendations, no hits
            per_user[s.name][kpos] = values[:, m]
    if "auc" in per_user:
        # unknown users: every candidate ties (half a pair each); unknown items lose
        col = per_user["auc"]
        n_neg_unknown = len(model.item_map_) - rel.n_known_rel
        col[:] = np.where(n_neg_unknown > 0, 0.5 * rel.n_known_rel / rel.n_rel, np.nan)
        col[kpos] = ranked.auc
    beyond = [s for s in specs if s.kind in BEYOND_METRICS]
    if beyond:
        stats = _beyond_accuracy(model, *seen_all, ranked.topk_idx, beyond)
        for name, values in stats.items():
            per_user[name][kpos] = values  # unknown users have no list: NaN


def _summarise(
    specs: Sequence[MetricSpec],
    per_user: dict[str, np.ndarray],
    topk_idx: np.ndarray,
    n_items: int,
) -> dict[str, float]:
    summary: dict[str, float] = {}
    for s in specs:
        if s.kind in BEYOND_METRICS or s.kind == "auc":
            vals = per_user[s.name]
            summary[s.name] = float(np.nanmean(vals)) if np.isfinite(vals).any() else float("nan")
        elif s.kind == "coverage":
            shown = topk_idx[:, : s.k]
            summary[s.name] = float(len(np.unique(shown[shown >= 0])) / n_items)
        else:
            summary[s.name] = float(per_user[s.name].mean())
    return summary


def _beyond_accuracy(
    model: Any,
    seen_ptr: np.ndarray,
    seen_idx: np.ndarray,
    topk_idx: np.ndarray,
    specs: Sequence[MetricSpec],
) -> dict[str, np.ndarray]:
    """Per-user novelty, popularity percentile and intra-list diversity of top-k lists."""
    n_items = len(model.item_map_)
    counts = np.bincount(seen_idx, minlength=n_items).astype(np.float64)
    n_train_users = max(int((np.diff(seen_ptr) > 0).sum()), 1)
    order = np.sort(counts)
    below = np.searchsorted(order, counts, side="left")
    equal = np.searchsorted(order, counts, side="right") - below
    percentile = (below + 0.5 * equal) / n_items
    information = -np.log2(np.maximum(counts, 1.0) / n_train_users)
    factors = np.asarray(model.item_factors_, dtype=np.float64)
    norms = np.linalg.norm(factors, axis=1, keepdims=True)
    unit = factors / np.where(norms > 0, norms, 1.0)
    out: dict[str, np.ndarray] = {}
    for s in specs:
        idx = topk_idx[:, : s.k]
        valid = idx >= 0
        safe = np.where(valid, idx, 0)
        n_valid = valid.sum(axis=1)
        if s.kind in ("novelty", "popularity"):
            table = information if s.kind == "novelty" else percentile
            total = np.where(valid, table[safe], 0.0).sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                out[s.name] = np.where(n_valid > 0, total / n_valid, np.nan)
        else:  # diversity
            if unit.shape[1] == 0:
                out[s.name] = np.full(len(idx), np.nan)
                continue
            vecs = unit[safe] * valid[..., None]
            sims = np.einsum("ukf,ujf->ukj", vecs, vecs)
            pair_sum = (sims.sum(axis=(1, 2)) - np.einsum("ukk->u", sims)) / 2
            n_pairs = n_valid * (n_valid - 1) / 2
            with np.errstate(invalid="ignore", divide="ignore"):
                out[s.name] = np.where(n_pairs > 0, 1.0 - pair_sum / n_pairs, np.nan)
    return out


def _gather_rows(indptr: np.ndarray, indices: np.ndarray, rows: np.ndarray):
    """CSR sub-structure of ``rows`` (in that order)."""
    counts = indptr[rows + 1] - indptr[rows]
    ptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(counts, out=ptr[1:])
    if ptr[-1] == 0:
        return ptr, np.empty(0, dtype=np.int32)
    starts = np.repeat(indptr[rows] - ptr[:-1], counts)
    return ptr, indices[np.arange(ptr[-1]) + starts]
