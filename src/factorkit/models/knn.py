"""Neighbour models: ItemKNN and UserKNN (ratings), ImplicitItemKNN and ImplicitUserKNN.

One design, four classes, split by feedback as ALS / ImplicitALS are, so that each
class's tags are true whatever data it is given (tags are declared per class):

- :class:`ItemKNN` / :class:`UserKNN` predict ratings as Surprise's ``KNNBasic``,
  ``KNNWithMeans`` and ``KNNBaseline`` do (``centering="none"``, ``"mean"``,
  ``"baseline"``): a similarity-weighted average of the ``neighbours`` most similar
  items (users) that the user (item) has rated, of their ratings or of their deviations
  from a mean or baseline. Similarities are computed over the shared support (as
  Surprise): ``"cosine"``, ``"pearson"``, ``"adjusted_cosine"``, ``"pearson_baseline"``.
- :class:`ImplicitItemKNN` / :class:`ImplicitUserKNN` rank items for implicit feedback as
  ``implicit``'s ``ItemItemRecommender``, ``CosineRecommender``, ``BM25Recommender`` and
  ``TFIDFRecommender`` do (``similarity="dot"``, ``"cosine"``, ``"bm25"``, ``"tfidf"``):
  an item's score is the sum, over the user's items, of the item's similarity to them
  (user-based: over the user's neighbours, their similarity times their value).

Every similarity is shrunk by ``n / (n + shrinkage)`` (``n``: the number of users, or
items, the two share). Only each entity's ``max_neighbours`` most similar neighbours with
a positive similarity are kept (the memory bound), as a CSR named
``<side>_neighbour_indptr_`` / ``_indices_`` / ``_sims_`` (rows sorted most similar
first), which model files carry and :mod:`factorkit._state_checks` validates.

``fit(train, sample_weight=w)`` (kept as ``seen_weights_``) counts a rating of weight
``w`` as if given ``w`` times in the rating models (weighted means and baselines,
co-ratings weighted ``w_a w_b`` in the similarities, votes ``sim * w``) and multiplies
an interaction's value by ``w`` in the implicit models; weight 0 removes it exactly
(it stays seen). See :meth:`ItemKNN.fit`.
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from factorkit._lazy import tqdm
from factorkit._threads import single_thread_blas, using_threads
from factorkit._validation import Boolean, Interval, NoneOr, Options, Threads
from factorkit.data.interactions import Interactions
from factorkit.data.weights import check_sample_weight
from factorkit.exceptions import DataWarning
from factorkit.kernels.knn import (
    knn_join_rows,
    knn_mirror,
    knn_neighbours,
    knn_pair_similarities,
    knn_predict_pairs,
    knn_predict_pairs_unordered,
    knn_scores_item,
    knn_scores_sum,
    knn_scores_user,
    knn_sort_rows,
)
from factorkit.kernels.topk import topk_scores
from factorkit.models._explain import Explanation
from factorkit.models._factor import _BLOCK_FLOATS, FactorModel
from factorkit.models._fold_in import FoldIn, FoldInMixin
from factorkit.models._recommend import RecommendMixin, candidate_mask, check_k, to_item_ids
from factorkit.models._similar import SimilarMixin

__all__ = ["ImplicitItemKNN", "ImplicitUserKNN", "ItemKNN", "UserKNN"]

_EXPLICIT_SIMILARITIES = ("pearson_baseline", "pearson", "adjusted_cosine", "cosine", "msd")
_IMPLICIT_SIMILARITIES = ("cosine", "dot", "bm25", "tfidf")


def _csr(indptr, indices, values, shape) -> sp.csr_matrix:
    return sp.csr_matrix((values, indices, indptr), shape=shape)


def _transpose(indptr, indices, values, shape):
    """The transposed CSR with sorted rows: ``(indptr int64, indices int32, values)``."""
    t = _csr(indptr, indices, values, shape).T.tocsr()
    t.sort_indices()
    return t.indptr.astype(np.int64), t.indices.astype(np.int32), t.data


def _transpose_order(indptr, indices, shape):
    """:func:`_transpose`'s structure and the positions its values come from, so that
    several value arrays (values, weights) follow the same transposition."""
    t_indptr, t_indices, take = _transpose(
        indptr, indices, np.arange(len(indices), dtype=np.float64), shape
    )
    return t_indptr, t_indices, take.astype(np.int64)


def _wmean_by(key, values, weights, n):
    """Per-key means of ``values`` (weighted by ``weights`` unless None); 0 for empty keys."""
    if weights is None:
        return np.bincount(key, values, n) / np.maximum(np.bincount(key, minlength=n), 1)
    total = np.bincount(key, weights, n)
    sums = np.bincount(key, weights * values, n)
    return np.divide(sums, total, out=np.zeros(n), where=total > 0)


def _gather_positions(indptr, indices, rows):
    """CSR rows ``rows`` (in that order): ``(indptr, indices, positions taken)``."""
    rows = np.asarray(rows, dtype=np.int64)
    counts = indptr[rows + 1] - indptr[rows]
    ptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(counts, out=ptr[1:])
    starts = np.repeat(indptr[rows] - ptr[:-1], counts)
    take = np.arange(ptr[-1]) + starts
    return ptr, indices[take], take


def _gather(indptr, indices, values, rows):
    """CSR rows ``rows`` (in that order) with their values."""
    ptr, idx, take = _gather_positions(indptr, indices, rows)
    return ptr, idx, values[take]


def _split(cumulative: np.ndarray, n_tasks: int) -> np.ndarray:
    """Task bounds ``[0, ..., len(cumulative)]`` cutting rows into ``n_tasks`` runs of
    about equal work (``cumulative``: running total of the rows' work)."""
    n = len(cumulative)
    if n == 0:
        return np.zeros(2, np.int64)
    cuts = np.searchsorted(cumulative, cumulative[-1] * np.arange(1, n_tasks) / n_tasks)
    return np.concatenate([[0], np.minimum(cuts, n), [n]]).astype(np.int64)


def _table_property(j: int) -> property:
    """Component ``j`` (indptr, indices, sims) of a model's neighbour table, rows most
    similar first.

    A fit that keeps every neighbour leaves its rows in position order (the pairs path's
    radix sort of the whole table, 0.1-0.2 s of CPU on a MovieLens small item fold, is
    not needed to predict ratings: :func:`~factorkit.kernels.knn.knn_predict_pairs_unordered`
    gives the same bits on any row order); reading the table through these attributes
    (recommending, similar items, explanations, ``get_state`` / ``save``) sorts it
    first, once. Set (``set_state``): rows as given, taken as sorted.
    """

    def get(self):
        value = self._ordered_table()[j]
        if value is None:
            raise AttributeError(f"{type(self).__name__} has no neighbour table")
        return value

    def set(self, value):
        table = self.__dict__.get("_table")
        if table is not None and not table[3] and all(a is not None for a in table[:3]):
            table = self._ordered_table()
        table = list(table[:3] if table is not None else (None, None, None))
        table[j] = value
        self._table = (*table, True)

    return property(get, set)


#: most bytes the pairs path of a fit (:meth:`_KNN._fit_neighbours`) may hold
_PAIRS_BUDGET = 1 << 30

#: co-ratings (counted per ordered pair) above which a fit warns that it will take long:
#: about a minute of CPU time or more at the per-row path's measured 2-5 ns per
#: co-rating (docs/benchmarks.md, UserKNN on 10 M synthetic ratings)
_LONG_FIT_CORATINGS = 2e10


#: BaselineOnly's defaults (5-fold CV on MovieLens small) for the baselines that
#: ``centering="baseline"`` and ``similarity="pearson_baseline"`` use
_BASELINE_EPOCHS, _BASELINE_ITEM_REG, _BASELINE_USER_REG = 10, 3.0, 5.0


class _KNN(RecommendMixin, FoldInMixin, SimilarMixin, FactorModel):
    """Shared machinery of the four neighbour models (see the module docstring)."""

    _abstract: ClassVar[bool] = True
    _side: ClassVar[str] = "item"
    _explicit: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        prefix = f"{cls._side}_neighbour"
        cls._state_arrays = (
            *FactorModel._state_arrays,
            "seen_weights_",  # fit's sample_weight, aligned with seen_*; absent: none
            f"{prefix}_indptr_",
            f"{prefix}_indices_",
            f"{prefix}_sims_",
        )
        for j, name in enumerate(("indptr", "indices", "sims")):
            setattr(cls, f"{prefix}_{name}_", _table_property(j))

    # ------------------------------------------------------------------ fitting
    def fit(self, train: Interactions, *, sample_weight: Any = None) -> _KNN:
        """Compute the similarities, keep each entity's top neighbours; returns ``self``.

        Parameters
        ----------
        train : Interactions
        sample_weight : array-like of shape (len(train),), optional
            One finite weight >= 0 per interaction, aligned with ``train`` (its canonical
            order, as :func:`factorkit.time_decay` returns); kept in ``seen_weights_``.
            An interaction of weight 0 takes no part in the model, exactly as if it were
            removed, except that it still counts as seen (:meth:`recommend` leaves it
            out). Rating models (:class:`ItemKNN`, :class:`UserKNN`) weight a rating
            ``r`` of weight ``w`` as if it were given ``w`` times: the global mean, the
            ``"mean"`` centering, the baselines (``"baseline"`` centering and
            ``"pearson_baseline"``) and the means ``"pearson"`` / ``"adjusted_cosine"``
            subtract are weighted (BaselineOnly's ``|R|`` counts become sums of weights);
            each co-rating of a similarity counts ``w_a w_b`` (its dot product, norms and
            MSD's mean are weighted sums; the shrinkage support stays the number of
            shared raters); and each neighbour's vote counts ``sim * w``: ``r_ui = b_ui +
            sum sim w (r - b) / sum sim w``. Implicit models
            (:class:`ImplicitItemKNN`, :class:`ImplicitUserKNN`) multiply each
            interaction's value by its weight (a confidence) before computing the
            similarities and the scores.
        """
        data = self._prepare_fit(train)
        weights = check_sample_weight(sample_weight, data, f"{type(self).__name__}.fit")
        self.seen_weights_ = weights
        self.user_factors_ = np.zeros((data.n_users, 0), dtype=np.float32)
        self.item_factors_ = np.zeros((data.n_items, 0), dtype=np.float32)
        self._caches = {}
        self._fit_biases()
        self._table = self._fit_neighbours(self._keep())
        return self

    def _keep(self) -> int:
        keep = self.max_neighbours
        return len(self._map(self._side)) if keep is None else int(keep)

    def _map(self, side: str):
        return self.item_map_ if side == "item" else self.user_map_

    def _nbr(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The neighbour table, rows most similar first."""
        prefix = f"{self._side}_neighbour"
        return (
            np.asarray(getattr(self, f"{prefix}_indptr_"), dtype=np.int64),
            np.asarray(getattr(self, f"{prefix}_indices_"), dtype=np.int32),
            np.asarray(getattr(self, f"{prefix}_sims_"), dtype=np.float32),
        )

    def _ordered_table(self) -> tuple:
        """``(indptr, indices, sims, True)``: the table with its rows most similar first.

        ``_table`` is that, or a fit's unsorted table ``(indptr, indices, sims, False,
        start, end, up_indices, up_sims)``: row ``r`` is the CSR row (the pairs mirrored
        from the rows before it) then ``up_*[start[r] : end[r]]`` (its pairs with the
        entities after it, where the pair pass left them), in position order. That one
        is joined and sorted here, once, into new arrays, so that a concurrent
        prediction holding the old ones reads a consistent table."""
        table = self.__dict__.get("_table")
        if table is None:
            raise AttributeError(f"{type(self).__name__} has no neighbour table")
        if not table[3]:
            n_threads = self._threads()
            with using_threads(n_threads):
                indptr, indices, keys = knn_join_rows(*table[:3], *table[4:], n_threads)
            n = len(indptr) - 1
            tasks = max(1, min(n, 8 * n_threads))
            bounds = _split(indptr[1:] + np.arange(1, n + 1), tasks)
            with using_threads(n_threads):
                knn_sort_rows(bounds, indptr, keys, indices, n_threads)
            table = (indptr, indices, np.invert(keys, out=keys).view(np.float32), True)
            self._table = table
        return table

    def set_state(self, state: dict[str, Any]) -> _KNN:
        """:meth:`FactorModel.set_state`; a state without ``seen_weights_`` is an
        unweighted fit."""
        self.seen_weights_ = None
        self.__dict__.pop("_table", None)
        return super().set_state(state)

    def _after_set_state(self) -> None:
        self._caches = {}
        super()._after_set_state()

    def _fit_biases(self) -> None:
        n_users, n_items = len(self.user_map_), len(self.item_map_)
        self.user_bias_ = np.zeros(n_users)
        self.item_bias_ = np.zeros(n_items)
        if not self._explicit:
            self.global_mean_ = 0.0
            return
        u, i, r, w = self._ratings()
        self.global_mean_ = self._mean()
        if self.centering == "baseline":
            bu, bi = self._baselines()
            self.user_bias_, self.item_bias_ = bu.copy(), bi.copy()
        elif self.centering == "mean":
            key, n = (i, n_items) if self._side == "item" else (u, n_users)
            present = np.bincount(key, minlength=n) > 0
            means = _wmean_by(key, r, w, n)
            means -= self.global_mean_ * present
            if self._side == "item":
                self.item_bias_ = means
            else:
                self.user_bias_ = means

    def _weights(self) -> np.ndarray | None:
        """``fit``'s sample weights aligned with ``seen_*`` (None: unweighted)."""
        w = getattr(self, "seen_weights_", None)
        return None if w is None else np.asarray(w, dtype=np.float64)

    def _coo(self) -> tuple[np.ndarray, np.ndarray]:
        """(user, item) positions of the training interactions, in ``seen_*`` order."""
        counts = np.diff(self.seen_indptr_)
        return np.repeat(np.arange(len(counts)), counts), self.seen_indices_.astype(np.int64)

    def _ratings(self):
        """``(users, items, values, weights)`` of the interactions the model learns from,
        in ``seen_*`` order: weight-0 ones left out; ``weights`` None when unweighted."""
        u, i = self._coo()
        r = self.seen_values_.astype(np.float64)
        w = self._weights()
        if w is None:
            return u, i, r, None
        keep = w > 0
        return u[keep], i[keep], r[keep], w[keep]

    def _mean(self) -> float:
        """The (weighted) mean training value."""
        _, _, r, w = self._ratings()
        return float(r.mean()) if w is None else float(w @ r / w.sum())

    def _baselines(self) -> tuple[np.ndarray, np.ndarray]:
        """BaselineOnly's user and item biases on the training data (cached); with
        weights, its counts are sums of weights and its sums weighted."""
        if "baselines" not in self._caches:
            u, i, r, w = self._ratings()
            n_users, n_items = len(self.user_map_), len(self.item_map_)
            mu = self._mean()
            if w is None:
                n_u = np.bincount(u, minlength=n_users)
                n_i = np.bincount(i, minlength=n_items)
            else:
                n_u, n_i = np.bincount(u, w, n_users), np.bincount(i, w, n_items)
            bu = np.zeros(n_users)
            for _ in range(_BASELINE_EPOCHS):  # BaselineOnly's alternating exact updates
                e = r - mu - bu[u]
                bi = np.bincount(i, e if w is None else w * e, n_items) / (_BASELINE_ITEM_REG + n_i)
                e = r - mu - bi[i]
                bu = np.bincount(u, e if w is None else w * e, n_users) / (_BASELINE_USER_REG + n_u)
            self._caches["baselines"] = (bu, bi)
        return self._caches["baselines"]

    # ------------------------------------------------------------------ matrices
    def _user_major(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Sorted user-major CSR ``(indptr, indices, values, residuals)`` (cached).

        Residuals are the values less the model's base ``mu + b_u + b_i`` for centred
        rating models, the values themselves otherwise. With sample weights, weight-0
        interactions are left out, implicit models' values are multiplied by the
        weights, and rating models' weights are :meth:`_user_major_weights`.
        """
        if "user_major" not in self._caches:
            shape = (len(self.user_map_), len(self.item_map_))
            weights = self._weights()
            if weights is None:
                m = _csr(self.seen_indptr_, self.seen_indices_,
                         self.seen_values_.astype(np.float64), shape)  # fmt: skip
                m.sort_indices()
                indptr, indices = m.indptr.astype(np.int64), m.indices.astype(np.int32)
                values = m.data.astype(np.float64)
                w = np.empty(0, np.float64)
            else:
                u, i, r, w = self._ratings()
                indptr = np.zeros(shape[0] + 1, np.int64)
                np.cumsum(np.bincount(u, minlength=shape[0]), out=indptr[1:])
                m = _csr(indptr, i, np.arange(len(i), dtype=np.float64), shape)
                m.sort_indices()
                take = m.data.astype(np.int64)
                indices = m.indices.astype(np.int32)
                values, w = r[take], w[take]
                if not self._explicit:  # the weight is a confidence: it scales the value
                    values, w = values * w, np.empty(0, np.float64)
            residuals = values.copy()
            if self._centred():
                u = np.repeat(np.arange(shape[0]), np.diff(indptr))
                residuals -= self.global_mean_ + self.user_bias_[u] + self.item_bias_[indices]
            self._caches["user_major"] = (indptr, indices, values, residuals)
            self._caches["user_major_w"] = w
        return self._caches["user_major"]

    def _user_major_weights(self) -> np.ndarray:
        """Rating models' vote weights aligned with :meth:`_user_major` (empty: none)."""
        self._user_major()
        return self._caches["user_major_w"]

    def _item_major(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sorted item-major CSR of the residuals (cached)."""
        if "item_major" not in self._caches:
            indptr, indices, _, residuals = self._user_major()
            shape = (len(self.user_map_), len(self.item_map_))
            t_indptr, t_indices, take = _transpose_order(indptr, indices, shape)
            self._caches["item_major"] = (t_indptr, t_indices, residuals[take])
            w = self._user_major_weights()
            self._caches["item_major_w"] = w[take] if len(w) else w
        return self._caches["item_major"]

    def _item_major_weights(self) -> np.ndarray:
        """Vote weights aligned with :meth:`_item_major` (empty: none)."""
        self._item_major()
        return self._caches["item_major_w"]

    def _centred(self) -> bool:
        return self._explicit and self.centering != "none"

    def _sim_values(self, side: str) -> np.ndarray:
        """The values similarities are computed on, aligned with the user-major CSR."""
        indptr, indices, values, _ = self._user_major()
        u = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
        sim = self.similarity
        if not self._explicit:
            return values
        if sim == "pearson_baseline":
            bu, bi = self._baselines()
            mu = self._mean()
            return values - mu - bu[u] - bi[indices]
        if sim in ("pearson", "adjusted_cosine"):
            # pearson centres by the mean of the entity compared, adjusted cosine by
            # the mean of the other side
            by_user = (sim == "pearson") == (side == "user")
            key, n = (u, len(indptr) - 1) if by_user else (indices, len(self.item_map_))
            w = self._user_major_weights()
            means = _wmean_by(key, values, w if len(w) else None, n)
            return values - means[key]
        return values

    def _sim_matrix(self, side: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Entity-major CSR (rows: ``side``) of the (weighted) similarity values (cached);
        rating models' co-rating weights are :meth:`_sim_weights`."""
        key = f"sim_{side}"
        if key not in self._caches:
            indptr, indices, _, _ = self._user_major()
            values = self._sim_values(side)
            w = self._user_major_weights()
            shape = (len(self.user_map_), len(self.item_map_))
            if side == "item":
                indptr, indices, take = _transpose_order(indptr, indices, shape)
                values = values[take]
                w = w[take] if len(w) else w
            values = self._weight(indptr, indices, values.astype(np.float64), side)
            self._caches[key] = (indptr, indices, values)
            self._caches[f"simw_{side}"] = w
        return self._caches[key]

    def _sim_weights(self, side: str) -> np.ndarray:
        """Per-entry weights aligned with ``_sim_matrix(side)`` (empty: unweighted)."""
        self._sim_matrix(side)
        return self._caches[f"simw_{side}"]

    def _sim_query(self, side: str, rows: np.ndarray):
        """Rows of ``_sim_matrix(side)`` as a query of :meth:`_neighbours`, with weights."""
        indptr, indices, values = self._sim_matrix(side)
        ptr, idx, take = _gather_positions(indptr, indices, rows)
        w = self._sim_weights(side)
        return ptr, idx, values[take], w[take] if len(w) else w

    def _weight(self, indptr, indices, values, side: str) -> np.ndarray:
        """BM25 / TF-IDF weights of an entity-major matrix (``implicit``'s formulas:
        entities are the documents, the other side the terms); other similarities keep
        the values."""
        sim = self.similarity
        if self._explicit or sim not in ("bm25", "tfidf"):
            return values
        n_rows = len(indptr) - 1
        n_cols = len(self._map("user" if side == "item" else "item"))
        idf = np.log(n_rows) - np.log1p(np.bincount(indices, minlength=n_cols))
        if sim == "tfidf":
            return np.sqrt(values) * idf[indices]
        rows = np.repeat(np.arange(n_rows), np.diff(indptr))
        row_sums = np.bincount(rows, values, n_rows)
        length_norm = (1.0 - self.b) + self.b * row_sums / row_sums.mean()
        k1 = self.k1
        return values * (k1 + 1.0) / (k1 * length_norm[rows] + values) * idf[indices]

    def _kind(self) -> int:
        """:func:`~factorkit.kernels.knn.knn_neighbours`' ``kind`` of the similarity."""
        return (2 if self.similarity == "msd" else 1) if self._explicit else 0

    def _norms(self, indptr, values) -> np.ndarray:
        """Whole-row norms for the implicit cosine and TF-IDF similarities, else ones."""
        n = len(indptr) - 1
        if self._explicit or self.similarity not in ("cosine", "tfidf"):
            return np.ones(n)
        rows = np.repeat(np.arange(n), np.diff(indptr))
        return np.sqrt(np.bincount(rows, np.asarray(values, np.float64) ** 2, n))

    def _other(self, side: str):
        """``_sim_matrix(side)`` transposed (other-side-major, cached): ``(indptr,
        indices, values, weights, after)``, ``after[p]`` the transposed position of the
        entity-major entry ``p``."""
        key = f"other_{side}"
        if key not in self._caches:
            ent_indptr, ent_indices, ent_values = self._sim_matrix(side)
            ent_w = self._sim_weights(side)
            shape = (len(ent_indptr) - 1, len(self._map("user" if side == "item" else "item")))
            t_indptr, t_indices, take = _transpose_order(ent_indptr, ent_indices, shape)
            t_w = ent_w[take] if len(ent_w) else ent_w
            after = np.empty(len(take), np.int64)
            after[take] = np.arange(len(take))
            self._caches[key] = (t_indptr, t_indices, ent_values[take], t_w, after)
        return self._caches[key]

    def _fit_neighbours(self, keep: int):
        """The fitted neighbour table: :meth:`_neighbours` of every entity against every
        other, each pair computed once when the pairs fit in memory.

        The pairs path (:func:`~factorkit.kernels.knn.knn_pair_similarities`, then
        mirrored and radix-sorted rows) does half the co-rating work and no heap, but
        holds every positive pair (8 bytes in the upper triangle, then 8 in each of its
        two full rows: at most 24 bytes a pair), so it runs when the model keeps every
        neighbour anyway (``max_neighbours=None``: the table is that size) or when at
        most :data:`_PAIRS_BUDGET` bytes are needed (a fold of MovieLens small at
        ``max_neighbours=500``: 0.8 s CPU against 1.5 s per row, peak RSS 385 against
        311 MiB; docs/benchmarks.md). Both give the same table.

        Returns the table as ``_table`` holds it (see :meth:`_ordered_table`): a rating
        model that keeps every neighbour (``max_neighbours`` None or at least the
        entities less one) leaves it unsorted and in two parts (``ordered`` False, its
        fourth item), every other fit sorts the rows most similar first.
        """
        side = self._side
        ent_indptr, ent_indices, ent_values = self._sim_matrix(side)
        n = len(ent_indptr) - 1
        keep = max(1, min(keep, n))
        t_indptr, t_indices, t_values, t_weights, after = self._other(side)
        raters = np.diff(t_indptr).astype(np.float64)
        pairs = min(float((raters * (raters - 1)).sum()) / 2, n * (n - 1) / 2)
        if keep < n - 1 and 24 * pairs > _PAIRS_BUDGET:
            self._warn_long_fit(raters)
            rows = np.arange(n, dtype=np.int64)
            return (*self._neighbours(self._sim_query(side, rows), rows, keep, progress=True), True)
        n_threads = self._threads()
        # rows split into tasks of equal work: row r meets the entities after it only
        rows = np.repeat(np.arange(n), np.diff(ent_indptr))
        work = np.bincount(rows, t_indptr[ent_indices.astype(np.int64) + 1] - after, n) + 1.0
        bounds = _split(np.cumsum(work), max(1, min(n, 8 * n_threads)))
        tasks = max(1, min(n, 8 * n_threads))
        with using_threads(n_threads):
            # every row kept whole (rating models): prediction reads a row in any order
            # and in two parts, so only the mirrored pairs are written; the pairs stay
            # where the pair pass left them, unsorted (see _ordered_table)
            whole = self._explicit and keep >= n - 1
            result = knn_pair_similarities(
                bounds, ent_indptr, ent_indices.astype(np.int32), ent_values,
                self._sim_weights(side), after, t_indptr, t_indices, t_values, t_weights,
                self._norms(ent_indptr, ent_values), self._kind(), float(self.shrinkage),
                n_threads, with_rows=whole,
            )  # fmt: skip
            if whole:
                parts, (start, up_i, up_s) = result
                up = np.concatenate([p[0] for p in parts]) if parts else np.zeros(n, np.int64)
                indptr, indices, keys = knn_mirror(bounds, parts, n_threads, upper=False)
                sims = np.invert(keys, out=keys).view(np.float32)
                return indptr, indices, sims, False, start, start + up, up_i, up_s
            indptr, indices, keys = knn_mirror(bounds, result, n_threads)
            del result
            counts = np.diff(indptr)
            # rows to sort split by length (plus a little per row)
            sort_bounds = _split(indptr[1:] + np.arange(1, n + 1), tasks)
            knn_sort_rows(sort_bounds, indptr, keys, indices, n_threads)
        sims = np.invert(keys, out=keys).view(np.float32)
        if counts.max(initial=0) > keep:
            kept = np.minimum(counts, keep)
            ptr = np.zeros(n + 1, np.int64)
            np.cumsum(kept, out=ptr[1:])
            take = np.arange(ptr[-1]) + np.repeat(indptr[:-1] - ptr[:-1], kept)
            indices, sims, indptr = indices[take], sims[take], ptr
        return indptr, indices, sims, True

    def _warn_long_fit(self, raters: np.ndarray) -> None:
        """A :class:`~factorkit.exceptions.DataWarning` when the per-row path of a fit
        meets more than :data:`_LONG_FIT_CORATINGS` co-ratings: the estimate, where it
        comes from, and what to do instead."""
        raters = raters.astype(np.float64)
        corat = float((raters * (raters - 1)).sum())
        if corat <= _LONG_FIT_CORATINGS:
            return
        side = self._side
        other = "user" if side == "item" else "item"
        # the other side's model: co-ratings of the transposed matrix
        own = np.bincount(self._coo()[0 if side == "user" else 1].astype(np.int64),
                          minlength=len(self._map(side))).astype(np.float64)  # fmt: skip
        alt = float((own * (own - 1)).sum())
        top = max(1, len(raters) // 100)
        heavy = np.sort(raters * (raters - 1))[::-1][:top].sum() / corat
        name = type(self).__name__
        alt_name = name.replace(side.capitalize(), other.capitalize())
        warnings.warn(
            f"{name}.fit: {len(own):,} {side}s against each other meet {corat:,.0f} "
            f"co-ratings (pairs of {side}s sharing an {other}, summed over {other}s: "
            f"sum of raters x (raters - 1)): about {corat * 2e-9 / 60:,.0f}-"
            f"{corat * 5e-9 / 60:,.0f} CPU-minutes at 2-5 ns each (memory stays bounded "
            f"by max_neighbours). The {top:,} most-rated "
            f"{other}s (1%) make {heavy:.0%} of them. Faster: {alt_name} ({alt:,.0f} "
            f"co-ratings), or leave out the most-rated {other}s, or fit on fewer {side}s; "
            "progress=True shows a progress bar.",
            DataWarning,
            stacklevel=4,
        )

    def _neighbours(
        self, query, self_pos, keep: int, side: str | None = None, progress: bool = False
    ):
        """Top-``keep`` neighbours among ``side``'s entities (default: the model's side)
        of query rows, sparse vectors over the other side; ``self_pos`` (-1: none) is
        each row's own position, left out. ``query`` is ``(indptr, indices, values)``
        with an optional fourth array of per-entry weights (rating models fitted with
        weights; a query without them has weight 1 throughout). ``progress``: a fit's
        whole table, in blocks of about 1% of the rows under the model's ``progress``
        bar."""
        side = side or self._side
        ent_indptr, _, ent_values = self._sim_matrix(side)
        n_ent = len(ent_indptr) - 1
        t_indptr, t_indices, t_values, t_weights, _ = self._other(side)
        q_indptr, q_indices, q_values = query[:3]
        if not len(t_weights):
            q_weights = np.empty(0, np.float64)
        elif len(query) > 3:
            q_weights = np.asarray(query[3], np.float64)
        else:
            q_weights = np.ones(len(q_indices), np.float64)
        kind = self._kind()
        t_norms = self._norms(ent_indptr, ent_values)
        q_norms = self._norms(q_indptr, q_values)
        n_q = len(q_indptr) - 1
        keep = max(1, min(keep, n_ent))
        q_indptr = np.asarray(q_indptr, np.int64)
        q_indices = np.asarray(q_indices, np.int32)
        q_values = np.asarray(q_values, np.float64)
        self_pos = np.asarray(self_pos, np.int64)
        t_values = np.asarray(t_values, np.float64)
        counts = np.zeros(n_q, np.int64)
        parts_idx, parts_sim = [], []
        # query rows in blocks: the dense (rows x keep) output stays near 32 MiB; a fit's
        # blocks are also at most 1% of its rows, each a step of the progress bar
        block = max(1, (1 << 22) // keep)
        if progress:
            block = min(block, max(64, -(-n_q // 100)))
        n_threads = self._threads()
        shown = progress and getattr(self, "progress", False)
        bar = tqdm(total=n_q, desc=f"{type(self).__name__} fit", unit=self._side,
                   disable=not shown, leave=False)  # fmt: skip
        for start in range(0, n_q, block):
            stop = min(n_q, start + block)
            out_idx = np.empty((stop - start, keep), np.int32)
            out_sim = np.empty((stop - start, keep), np.float32)
            ptr = q_indptr[start : stop + 1]
            with using_threads(n_threads):
                knn_neighbours(
                    ptr - ptr[0], q_indices[ptr[0] : ptr[-1]], q_values[ptr[0] : ptr[-1]],
                    q_weights[ptr[0] : ptr[-1]] if len(q_weights) else q_weights,
                    self_pos[start:stop], q_norms[start:stop], t_indptr, t_indices, t_values,
                    t_weights, t_norms, n_ent, kind, float(self.shrinkage), keep, out_idx,
                    out_sim, counts[start:stop], n_threads,
                )  # fmt: skip
            mask = np.arange(keep)[None, :] < counts[start:stop, None]
            parts_idx.append(out_idx[mask])
            parts_sim.append(out_sim[mask])
            bar.update(stop - start)
        bar.close()
        indptr = np.zeros(n_q + 1, np.int64)
        np.cumsum(counts, out=indptr[1:])
        indices = np.concatenate(parts_idx) if parts_idx else np.empty(0, np.int32)
        sims = np.concatenate(parts_sim) if parts_sim else np.empty(0, np.float32)
        return indptr, indices, sims

    # ------------------------------------------------------------------ scoring
    def _known_rows(self, users: np.ndarray):
        """Row descriptions of known users: their items (item-based) or neighbours, as
        ``(indptr, indices, values, residuals, vote weights)`` (the weights, aligned with
        the residuals of an item-based rating model fitted with weights, else empty)."""
        if self._side == "item":
            indptr, indices, values, residuals = self._user_major()
            ptr, idx, take = _gather_positions(indptr, indices, users)
            w = self._user_major_weights()
            return ptr, idx, values[take], residuals[take], w[take] if len(w) else w
        ptr, idx, sims = _gather(*self._nbr(), users)
        sims = sims.astype(np.float64)
        return ptr, idx, sims, sims, np.empty(0, np.float64)

    def _row_scores(self, rows) -> tuple[np.ndarray, np.ndarray]:
        """Ranking scores ``(n, n_items)`` float32 of the users ``rows`` describes."""
        indptr, indices, values, residuals, weights = rows
        n, n_items = len(indptr) - 1, len(self.item_map_)
        n_threads = self._threads()
        k = int(self.neighbours)
        with using_threads(n_threads):
            if self._explicit:
                avg = np.empty((n, n_items), np.float64)
                found = np.empty((n, n_items), np.int32)
                if self._side == "item":
                    knn_scores_item(
                        indptr, indices, residuals, weights, *self._nbr(), k, avg, found,
                        n_threads,
                    )  # fmt: skip
                else:
                    um_indptr, um_indices, _, um_res = self._user_major()
                    knn_scores_user(
                        indptr, indices, values, um_indptr, um_indices, um_res,
                        self._user_major_weights(), k, avg, found, n_threads,
                    )  # fmt: skip
                if self._centred():
                    return (avg + self.item_bias_[None, :]).astype(np.float32)
                return np.where(found > 0, avg - self.global_mean_, 0.0).astype(np.float32)
            out = np.empty((n, n_items), np.float64)
            if self._side == "item":
                knn_scores_sum(indptr, indices, values, *self._nbr(), out, n_threads)
            else:
                um_indptr, um_indices, um_values, _ = self._user_major()
                knn_scores_sum(indptr, indices, values, um_indptr, um_indices, um_values, out,
                               n_threads)  # fmt: skip
            return out.astype(np.float32)

    def _block_rows(self) -> int:
        return max(1, (_BLOCK_FLOATS // 4) // max(1, len(self.item_map_)))

    def score_blocks(self, user_positions: Any, block_rows: int | None = None):
        """Ranking scores of every item for users given by position, block by block.

        Part of the public scoring protocol (see :mod:`factorkit.models._factor`).
        """
        self._check_fitted("score_blocks")
        users = np.asarray(user_positions, dtype=np.int64).reshape(-1)
        block = block_rows or self._block_rows()
        for start in range(0, len(users), block):
            stop = min(len(users), start + block)
            yield start, stop, self._row_scores(self._known_rows(users[start:stop]))

    def top_items(self, user_positions: Any, k: int, exclude=None, excluded_items=None):
        """Top-``k`` item positions by ranking score (the scoring protocol's ``top_items``)."""
        self._check_fitted("top_items")
        users = np.asarray(user_positions, dtype=np.int64).reshape(-1)
        if exclude is None:
            exclude = (np.zeros(len(users) + 1, np.int64), np.empty(0, np.int32))
        if excluded_items is None:
            excluded_items = np.zeros(len(self.item_map_), dtype=np.bool_)
        indptr = np.asarray(exclude[0], dtype=np.int64)
        indices = np.asarray(exclude[1], dtype=np.int32)
        excluded = np.asarray(excluded_items, dtype=np.bool_)
        out_idx = np.empty((len(users), int(k)), np.int64)
        out_val = np.empty((len(users), int(k)), np.float32)
        for start, stop, scores in self.score_blocks(users):
            ptr = indptr[start : stop + 1] - indptr[start]
            idx = indices[indptr[start] : indptr[stop]]
            with using_threads(self._threads()):
                topk_scores(scores, ptr, idx, excluded, int(k), out_idx[start:stop],
                            out_val[start:stop])  # fmt: skip
        return out_idx, out_val

    def _score_positions(self, u: np.ndarray, i: np.ndarray, clip: bool) -> np.ndarray:
        known_u, known_i = u >= 0, i >= 0
        both = known_u & known_i
        scores = np.full(len(u), self.global_mean_, dtype=np.float64)
        scores[known_u] += self.user_bias_[u[known_u]]
        scores[known_i] += self.item_bias_[i[known_i]]
        if not both.any():
            return scores
        if not self._explicit:
            users, inverse = np.unique(u[both], return_inverse=True)
            values = np.empty(both.sum())
            items = i[both]
            for start, stop, block in self.score_blocks(users):
                sel = (inverse >= start) & (inverse < stop)
                values[sel] = block[inverse[sel] - start, items[sel]]
            scores[both] = values
            return scores
        if self._side == "item":
            targets, queries = i[both], u[both]
            lk_indptr, lk_indices, _, lk_res = self._user_major()
            lk_w = self._user_major_weights()
        else:
            targets, queries = u[both], i[both]
            lk_indptr, lk_indices, lk_res = self._item_major()
            lk_w = self._item_major_weights()
        avg = np.empty(len(targets), np.float64)
        found = np.empty(len(targets), np.int32)
        n_cols = len(self._map(self._side))
        n_threads = self._threads()
        table = self._table
        ordered = table[3]
        # sorted rows: walk each target's row until k voted, one dense row per query
        # run; unsorted: one dense row per target run, the best k by a bucket prune
        order = np.argsort(queries if ordered else targets, kind="stable")
        nbr = (np.asarray(table[0], np.int64), np.asarray(table[1], np.int32),
               np.asarray(table[2], np.float32))  # fmt: skip
        with using_threads(n_threads):
            if ordered:
                knn_predict_pairs(
                    targets[order].astype(np.int64), queries[order].astype(np.int64), *nbr,
                    lk_indptr, lk_indices, lk_res, lk_w, n_cols, int(self.neighbours), avg,
                    found, n_threads,
                )  # fmt: skip
            else:
                knn_predict_pairs_unordered(
                    targets[order].astype(np.int64), queries[order].astype(np.int64), *nbr,
                    *table[4:], lk_indptr, lk_indices, lk_res, lk_w, n_cols,
                    int(self.neighbours), avg, found, n_threads,
                )  # fmt: skip
        avg[order], found[order] = avg.copy(), found.copy()
        if self._centred():
            scores[both] += avg
        else:
            scores[both] = np.where(found > 0, avg, self.global_mean_)
        if clip:
            np.clip(scores, self.rating_scale_[0], self.rating_scale_[1], out=scores)
        return scores

    # ------------------------------------------------------------------ similar
    def _similar_positions(self, side: str, pos: np.ndarray, k: int):
        """Top-``k`` most similar entities of ``side``: the kept neighbours on the
        model's own side, computed on demand with the same similarity on the other."""
        if side == self._side:
            indptr, indices, sims = self._nbr()
        else:
            query = self._sim_query(side, pos)
            indptr, indices, sims = self._neighbours(query, pos, k, side=side)
            pos = np.arange(len(pos))
        out_idx = np.full((len(pos), k), -1, np.int64)
        out_val = np.full((len(pos), k), -np.inf, np.float32)
        for r, p in enumerate(pos):
            lo, hi = indptr[p], min(indptr[p + 1], indptr[p] + k)
            out_idx[r, : hi - lo] = indices[lo:hi]
            out_val[r, : hi - lo] = sims[lo:hi]
        return out_idx, out_val

    # ------------------------------------------------------------------ new users
    def _new_user_bias(self, pos: np.ndarray, r: np.ndarray) -> float:
        if not self._explicit:
            return 0.0
        if self.centering == "baseline":
            return float((r - self.global_mean_ - self.item_bias_[pos]).sum()) / (
                _BASELINE_USER_REG + len(pos)
            )
        if self.centering == "mean" and self._side == "user":
            return float(r.mean() - self.global_mean_)
        return 0.0

    def _new_rows(self, pos: np.ndarray, r: np.ndarray, bias: float):
        """The row description (as :meth:`_known_rows`) of a user with items ``pos``."""
        order = np.argsort(pos, kind="stable")
        pos, r = pos[order].astype(np.int32), r[order].astype(np.float64)
        residuals = r - self.global_mean_ - bias - self.item_bias_[pos] if self._centred() else r
        if self._side == "item":  # a new user's ratings have weight 1
            w = np.ones(len(pos)) if len(self._user_major_weights()) else np.empty(0)
            return np.array([0, len(pos)], np.int64), pos, r, residuals, w
        query = (np.array([0, len(pos)], np.int64), pos, self._new_sim_values(pos, r))
        indptr, indices, sims = self._neighbours(query, np.array([-1]), self._keep())
        sims = sims.astype(np.float64)
        return indptr, indices, sims, sims, np.empty(0, np.float64)

    def _new_sim_values(self, pos: np.ndarray, r: np.ndarray) -> np.ndarray:
        """A new user's row of the user-side similarity values (as :meth:`_sim_matrix`)."""
        sim = self.similarity
        if self._explicit:
            if sim == "pearson":
                return r - r.mean()
            if sim == "adjusted_cosine":
                _, indices, values, _ = self._user_major()
                w = self._user_major_weights()
                means = _wmean_by(indices, values, w if len(w) else None, len(self.item_map_))
                return r - means[pos]
            if sim == "pearson_baseline":
                _, bi = self._baselines()
                mu = self._mean()
                b = float((r - mu - bi[pos]).sum()) / (_BASELINE_USER_REG + len(pos))
                return r - mu - b - bi[pos]
            return r
        if sim not in ("bm25", "tfidf"):
            return r
        _, indices, values, _ = self._user_major()
        n_users = len(self.user_map_)
        idf = np.log(n_users) - np.log1p(np.bincount(indices, minlength=len(self.item_map_)))
        if sim == "tfidf":
            return np.sqrt(r) * idf[pos]
        if self._weights() is None:
            average = float(self.seen_values_.astype(np.float64).sum()) / n_users
        else:  # the weighted values the training rows' lengths were taken on
            average = float(values.sum()) / n_users
        length_norm = (1.0 - self.b) + self.b * r.sum() / average
        return r * (self.k1 + 1.0) / (self.k1 * length_norm + r) * idf[pos]

    def _fold_in(self, pos: np.ndarray, r: np.ndarray) -> FoldIn:
        """A new user needs no solve: ``factors`` is their row over all items (residuals
        from the model's base, NaN where not rated, for rating models; values, 0 where
        absent, for implicit ones) and ``bias`` their ``b_u``."""
        bias = self._new_user_bias(pos, r)
        row = np.full(len(self.item_map_), np.nan if self._explicit else 0.0, np.float32)
        centred = self._centred()
        row[pos] = r - self.global_mean_ - bias - self.item_bias_[pos] if centred else r
        return FoldIn(factors=row, bias=bias)

    def recommend_new_user(
        self,
        items: Any,
        ratings: Any = None,
        k: int = 10,
        exclude_seen: bool = True,
        exclude_items: Any = None,
        candidates: Any = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items for a user unseen in training, from their items (no refit).

        As ``recommend_new_user`` of the other models: the given items are left out
        when ``exclude_seen``; returns 1-D ``(item_ids, scores)``.
        """
        self._check_fitted("recommend_new_user")
        pos, r = self._fold_in_inputs(items, ratings)
        k = check_k(k, "recommend_new_user")
        excluded = candidate_mask(self, exclude_items, candidates)
        if exclude_seen:
            excluded[pos] = True
        bias = self._new_user_bias(pos, r)
        with single_thread_blas():
            scores = self._row_scores(self._new_rows(pos, r, bias))
        idx = np.empty((1, k), np.int64)
        val = np.empty((1, k), np.float32)
        empty = np.zeros(2, np.int64), np.empty(0, np.int32)
        with using_threads(1):
            topk_scores(scores, empty[0], empty[1], excluded, k, idx, val)
        if self._explicit:
            val += np.float32(self.global_mean_ + bias)
        return to_item_ids(self, idx, val, single=True)

    # ------------------------------------------------------------------ explain
    def explain(self, user: Any, item: Any, items: Any = None, ratings: Any = None):
        """The neighbours that voted for ``user``'s score of ``item``.

        Item-based models list the user's items that voted (for rating models the
        ``neighbours`` most similar to ``item`` among those the user rated; for implicit
        ones every item of the user that has ``item`` among its kept neighbours);
        user-based models list the neighbour users who interacted with ``item``
        (``method="neighbour-users"``: the ``contributions`` hold user ids). Each
        contribution is the neighbour's share of the score: ``sim * residual / sum(sim)``
        for rating models (they add up to the score less the base ``mu + b_u + b_i``),
        ``sim * value`` for implicit ones (they add up to the score). ``items`` and
        ``ratings`` replace the user's training items, as :meth:`explain_new_user`.

        Returns
        -------
        Explanation, or a list of them when ``item`` is a list.
        """
        self._check_fitted("explain")
        u = int(self.user_map_.to_index([user])[0])
        if items is not None:
            return self.explain_new_user(items, ratings, item)
        return self._explain(self._known_rows(np.array([u])), float(self.user_bias_[u]), item)

    def explain_new_user(self, items: Any, ratings: Any = None, item: Any = None):
        """:meth:`explain` for a user the model has never seen, given their items."""
        self._check_fitted("explain_new_user")
        pos, r = self._fold_in_inputs(items, ratings)
        bias = self._new_user_bias(pos, r)
        return self._explain(self._new_rows(pos, r, bias), bias, item)

    def _explain(self, rows, bias: float, item: Any):
        many = isinstance(item, (list, tuple, np.ndarray))
        raw_items = list(item) if many else [item]
        targets = self.item_map_.to_index(raw_items)
        out = [
            self._explain_one(rows, bias, raw, int(t))
            for raw, t in zip(raw_items, targets, strict=True)
        ]
        return out if many else out[0]

    def _votes(self, rows, t: int) -> list[tuple[int, float, float]]:
        """``(neighbour position, similarity, residual or value)`` of the voters for
        item ``t``, in voting order."""
        indptr, indices, values, residuals, weights = rows
        k = int(self.neighbours)
        votes = []
        if self._side == "item":
            lo, hi = indptr[0], indptr[1]
            mine = {int(j): (float(v), float(e)) for j, v, e in
                    zip(indices[lo:hi], values[lo:hi], residuals[lo:hi], strict=True)}  # fmt: skip
            wt = (
                dict(zip(indices[lo:hi].tolist(), weights[lo:hi].tolist(), strict=True))
                if len(weights)
                else {}
            )
            n_ptr, n_idx, n_sim = self._nbr()
            if self._explicit:
                for s in range(n_ptr[t], n_ptr[t + 1]):
                    j = int(n_idx[s])
                    if j in mine:  # a weighted vote counts sim * w
                        votes.append((j, float(n_sim[s]) * wt.get(j, 1.0), mine[j][1]))
                        if len(votes) == k:
                            break
                return votes
            for j, (v, _) in mine.items():
                hits = np.flatnonzero(n_idx[n_ptr[j] : n_ptr[j + 1]] == t)
                if len(hits):
                    votes.append((j, float(n_sim[n_ptr[j] + hits[0]]), v))
            return votes
        im_indptr, im_indices, im_res = self._item_major()
        im_w = self._item_major_weights()
        lo, hi = im_indptr[t], im_indptr[t + 1]
        raters = dict(zip(im_indices[lo:hi].tolist(), im_res[lo:hi].tolist(), strict=True))
        rater_w = (
            dict(zip(im_indices[lo:hi].tolist(), im_w[lo:hi].tolist(), strict=True))
            if len(im_w)
            else {}
        )
        for v, sim in zip(indices[indptr[0] : indptr[1]], values[indptr[0] : indptr[1]],
                          strict=True):  # fmt: skip
            if int(v) in raters:  # a weighted vote counts sim * w
                votes.append((int(v), float(sim) * rater_w.get(int(v), 1.0), raters[int(v)]))
                if self._explicit and len(votes) == k:
                    break
        return votes

    def _explain_one(self, rows, bias: float, raw: Any, t: int) -> Explanation:
        votes = self._votes(rows, t)
        if self._explicit:
            den = sum(s for _, s, _ in votes)
            contrib = [(j, s * e / den) for j, s, e in votes] if den > 0 else []
            total = sum(c for _, c in contrib)
            if self._centred():
                score = self.global_mean_ + bias + float(self.item_bias_[t]) + total
            else:
                score = total if contrib else self.global_mean_
        else:
            contrib = [(j, s * v) for j, s, v in votes]
            score = sum(c for _, c in contrib)
        ids = (self.item_map_ if self._side == "item" else self.user_map_).ids
        contrib.sort(key=lambda jc: -jc[1])
        pairs = [(_plain(ids[j]), float(c)) for j, c in contrib]
        method = "neighbours" if self._side == "item" else "neighbour-users"
        return Explanation(item=_plain(raw), score=float(score), contributions=pairs, method=method)


def _plain(x: Any) -> Any:
    return x.item() if isinstance(x, np.generic) else x


_COMMON_PARAMS = """    neighbours : int, default {k}
        {k_doc}
    shrinkage : float, default {shrink}
        Similarities are multiplied by ``n / (n + shrinkage)``, ``n`` the number of
        {other}s the two {side}s share: similarities resting on little common support
        shrink towards 0.
    n_threads : int, optional
        Threads for the similarity and scoring kernels (default: all cores).
    progress : bool, default False
        A progress bar over the {side}s while a fit compares every {side} with every
        other one at a time (fits too large to compute each pair once in memory, such
        as user-based models on millions of ratings; others take seconds)."""

_EXPLICIT_CONSTRAINTS: dict[str, Any] = {
    "similarity": Options(_EXPLICIT_SIMILARITIES),
    "centering": Options(("baseline", "mean", "none")),
    "neighbours": Interval(int, 1, None),
    "max_neighbours": NoneOr(Interval(int, 1, None)),
    "shrinkage": Interval(float, 0, None),
    "n_threads": Threads(),
    "progress": Boolean(),
}
_IMPLICIT_CONSTRAINTS: dict[str, Any] = {
    "similarity": Options(_IMPLICIT_SIMILARITIES),
    "neighbours": Interval(int, 1, None),
    "shrinkage": Interval(float, 0, None),
    "k1": Interval(float, 0, None),
    "b": Interval(float, 0, 1),
    "n_threads": Threads(),
    "progress": Boolean(),
}
_EXPLICIT_SPACE = {
    "neighbours": {"randint": [10, 100]},
    "shrinkage": {"loguniform": [1.0, 300.0]},
}
_EXPLICIT_GRID = {"neighbours": [20, 40, 80], "shrinkage": [0.0, 25.0, 100.0]}
_IMPLICIT_SPACE = {"neighbours": {"randint": [10, 200]}}
_IMPLICIT_GRID = {"neighbours": [20, 50, 100], "similarity": ["cosine", "bm25"]}


class _ExplicitKNN(_KNN):
    _abstract: ClassVar[bool] = True
    _parameter_constraints: ClassVar[dict[str, Any]] = _EXPLICIT_CONSTRAINTS

    def __init__(
        self,
        similarity: str = "pearson_baseline",
        centering: str = "baseline",
        neighbours: int = 40,
        max_neighbours: int | None = 500,
        shrinkage: float = 100.0,
        n_threads: int | None = None,
        progress: bool = False,
    ) -> None:
        self.similarity = similarity
        self.centering = centering
        self.neighbours = neighbours
        self.max_neighbours = max_neighbours
        self.shrinkage = shrinkage
        self.n_threads = n_threads
        self.progress = progress


class _ImplicitKNN(_KNN):
    _abstract: ClassVar[bool] = True
    _explicit: ClassVar[bool] = False
    _parameter_constraints: ClassVar[dict[str, Any]] = _IMPLICIT_CONSTRAINTS
    centering = "none"

    def __init__(
        self,
        similarity: str = "cosine",
        neighbours: int = 20,
        shrinkage: float = 0.0,
        k1: float = 1.2,
        b: float = 0.75,
        n_threads: int | None = None,
        progress: bool = False,
    ) -> None:
        self.similarity = similarity
        self.neighbours = neighbours
        self.shrinkage = shrinkage
        self.k1 = k1
        self.b = b
        self.n_threads = n_threads
        self.progress = progress

    @property
    def max_neighbours(self) -> int:
        """Implicit models keep exactly the ``neighbours`` they score with."""
        return self.neighbours


_EXPLICIT_DOC = """
    Parameters
    ----------
    similarity : {{"pearson_baseline", "pearson", "adjusted_cosine", "cosine", "msd"}}
        Computed over the {other}s two {side}s share (as Surprise): cosine of the
        ratings; ``"pearson"`` centres each {side}'s ratings by its mean,
        ``"adjusted_cosine"`` by each {other}'s mean, ``"pearson_baseline"`` takes
        the residuals from the baseline ``mu + b_u + b_i`` (BaselineOnly's); ``"msd"``
        is ``1 / (1 + mean squared difference)`` (Surprise's default).
    centering : {{"baseline", "mean", "none"}}
        What the neighbours' ratings are averaged as: deviations from the baseline
        ``mu + b_u + b_i`` (Surprise's ``KNNBaseline``), from the {side}'s mean rating
        (``KNNWithMeans``), or raw ratings (``KNNBasic``; the global mean when no
        neighbour voted).
{common}
    max_neighbours : int or None, default 500
        Neighbours kept per {side} (the memory bound: the model holds at most
        ``max_neighbours`` similarities per {side}; None keeps every positive one, as
        Surprise's full similarity matrix does); the ``neighbours`` that vote for a
        prediction are the most similar of these that rated the pair's {vote}.

    Attributes
    ----------
    {side}_neighbour_indptr_, {side}_neighbour_indices_, {side}_neighbour_sims_ : numpy.ndarray
        The kept neighbours: CSR over {side} positions, rows most similar first.
    global_mean_, user_bias_, item_bias_ : the base the ratings are centred on.
"""

_IMPLICIT_DOC = """
    Parameters
    ----------
    similarity : {{"cosine", "dot", "bm25", "tfidf"}}
        Between whole {side} vectors over {other}s (as ``implicit``): ``"cosine"``
        (``CosineRecommender``), ``"dot"`` (co-occurrence, ``ItemItemRecommender``),
        ``"bm25"`` (dot product of BM25-weighted vectors, ``BM25Recommender``),
        ``"tfidf"`` (cosine of TF-IDF weighted vectors, ``TFIDFRecommender``).
{common}
    k1, b : float, default 1.2 and 0.75
        BM25's saturation and length normalisation (``similarity="bm25"`` only).

    Attributes
    ----------
    {side}_neighbour_indptr_, {side}_neighbour_indices_, {side}_neighbour_sims_ : numpy.ndarray
        The kept neighbours: CSR over {side} positions, rows most similar first.
"""


def _doc(template: str, side: str, k: int, k_doc: str, shrink: str) -> str:
    other = "user" if side == "item" else "item"
    common = _COMMON_PARAMS.format(k=k, k_doc=k_doc, shrink=shrink, other=other, side=side)
    return template.format(side=side, other=other, common=common, vote=other)


class ItemKNN(_ExplicitKNN):
    __doc__ = (
        """Item-based neighbour model for ratings (Surprise's KNNBasic / KNNWithMeans /
    KNNBaseline with ``user_based=False``).

    Predicts ``r_ui = b_ui + sum_j s_ij (r_uj - b_uj) / sum_j s_ij`` over the
    ``neighbours`` items ``j`` most similar to ``i`` among those ``u`` rated (positive
    similarities only). ``recommend`` ranks by that prediction; ``similar_items`` reads
    the kept neighbours, ``similar_users`` computes the same similarity between users on
    demand; a new user folds in from their ratings with no solve; ``explain`` lists the
    items that voted.
"""
        + _doc(
            _EXPLICIT_DOC,
            "item",
            40,
            "Items that vote for a prediction: the most similar the user rated.",
            "100.0",
        )
        + """
    Examples
    --------
    >>> import factorkit as fk
    >>> data = fk.Interactions.from_arrays(
    ...     ["a", "a", "b", "b", "c", "c"], [1, 2, 1, 2, 1, 3], [5.0, 4.0, 4.0, 3.0, 5.0, 2.0])
    >>> model = fk.ItemKNN(shrinkage=0.0, similarity="cosine", centering="none").fit(data)
    >>> float(model.predict(["c"], [2])[0])  # only item 1 shares raters with item 2
    5.0
    >>> model.explain("c", 2).contributions
    [(1, 5.0)]
    >>> model.similar_items(1, k=2)[0].tolist()  # one shared rater makes item 3 "identical"
    [3, 2]
    >>> shrunk = fk.ItemKNN(shrinkage=100.0, similarity="cosine", centering="none").fit(data)
    >>> shrunk.similar_items(1, k=2)[0].tolist()  # shrinkage trusts the 2 shared raters more
    [2, 3]
"""
    )
    _tags: ClassVar[dict[str, Any]] = {
        "cli_name": "item-knn",
        "has_factors": False,
        "search_space": _EXPLICIT_SPACE,
        "search_grid": _EXPLICIT_GRID,
    }
    _side: ClassVar[str] = "item"


class UserKNN(_ExplicitKNN):
    __doc__ = (
        """User-based neighbour model for ratings (Surprise's KNNBasic / KNNWithMeans /
    KNNBaseline with ``user_based=True``).

    Predicts ``r_ui = b_ui + sum_v s_uv (r_vi - b_vi) / sum_v s_uv`` over the
    ``neighbours`` users ``v`` most similar to ``u`` among those who rated ``i``.
    ``similar_users`` reads the kept neighbours, ``similar_items`` computes the same
    similarity between items on demand; a new user is compared with every user (one
    sparse pass) and scored from their neighbours; ``explain`` lists the neighbour users
    who voted.
"""
        + _doc(
            _EXPLICIT_DOC,
            "user",
            40,
            "Users that vote for a prediction: the most similar who rated the item.",
            "100.0",
        )
        + """
    Examples
    --------
    >>> import factorkit as fk
    >>> data = fk.Interactions.from_arrays(
    ...     ["a", "a", "b", "b", "c"], [1, 2, 1, 2, 1], [5.0, 4.0, 4.0, 2.0, 5.0])
    >>> model = fk.UserKNN(centering="mean", similarity="cosine", shrinkage=0.0).fit(data)
    >>> model.similar_users("c", k=2)[0].tolist()
    ['a', 'b']
"""
    )
    _tags: ClassVar[dict[str, Any]] = {
        "cli_name": "user-knn",
        "has_factors": False,
        "search_space": _EXPLICIT_SPACE,
        "search_grid": _EXPLICIT_GRID,
    }
    _side: ClassVar[str] = "user"


class ImplicitItemKNN(_ImplicitKNN):
    __doc__ = (
        """Item-item top-N recommender for implicit feedback (``implicit``'s
    ItemItemRecommender / CosineRecommender / BM25Recommender / TFIDFRecommender).

    Keeps each item's ``neighbours`` most similar items; a user's score for item ``i``
    is ``sum_j r_uj s_ji`` over the user's items ``j`` that have ``i`` among their kept
    neighbours. ``predict`` returns that score (a ranking score, not a rating).
"""
        + _doc(_IMPLICIT_DOC, "item", 20, "Neighbours kept per item.", "0.0")
        + """
    Examples
    --------
    >>> import factorkit as fk
    >>> data = fk.Interactions.from_arrays(["a", "a", "b", "b", "c"], [1, 2, 1, 2, 1])
    >>> model = fk.ImplicitItemKNN().fit(data)
    >>> model.recommend("c", k=1)[0].tolist()
    [2]
"""
    )
    _tags: ClassVar[dict[str, Any]] = {
        "feedback": "implicit",
        "cli_name": "implicit-item-knn",
        "has_factors": False,
        "search_space": _IMPLICIT_SPACE,
        "search_grid": _IMPLICIT_GRID,
    }
    _side: ClassVar[str] = "item"


class ImplicitUserKNN(_ImplicitKNN):
    __doc__ = (
        """User-user top-N recommender for implicit feedback.

    Keeps each user's ``neighbours`` most similar users; a user's score for item ``i``
    is ``sum_v s_uv r_vi`` over those neighbours. ``predict`` returns that score.
"""
        + _doc(_IMPLICIT_DOC, "user", 20, "Neighbours kept per user.", "0.0")
        + """
    Examples
    --------
    >>> import factorkit as fk
    >>> data = fk.Interactions.from_arrays(["a", "a", "b", "b", "c"], [1, 2, 1, 2, 1])
    >>> model = fk.ImplicitUserKNN().fit(data)
    >>> model.recommend("c", k=1)[0].tolist()
    [2]
"""
    )
    _tags: ClassVar[dict[str, Any]] = {
        "feedback": "implicit",
        "cli_name": "implicit-user-knn",
        "has_factors": False,
        "search_space": _IMPLICIT_SPACE,
        "search_grid": _IMPLICIT_GRID,
    }
    _side: ClassVar[str] = "user"
