"""Shared behaviour of latent-factor models: predict, recommend, similar items, fold-in.

A fitted factor model holds ``user_map_``/``item_map_`` (the training vocabularies),
``user_factors_``/``item_factors_`` (float32), ``user_bias_``/``item_bias_``/
``global_mean_`` (zeros where a model has none), ``rating_scale_`` and the training
matrix's structure (``seen_indptr_``/``seen_indices_``) for ``exclude_seen``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar, NamedTuple

import numpy as np

from factorkit._threads import blas_threads, resolve_threads, using_threads
from factorkit.data.idmap import IdMap
from factorkit.data.interactions import Interactions
from factorkit.exceptions import DataError, InvalidParameterError, UnknownIdError
from factorkit.kernels.topk import topk_factors
from factorkit.models.base import Estimator

__all__ = ["FactorModel", "FoldIn"]

UNKNOWN_POLICIES = ("fallback", "nan", "error")
#: scores of at most this many floats are materialised at once by recommend
_BLOCK_FLOATS = 1 << 22
#: scores per block of the top-k kernel (8 MiB, up to 256 users): large enough that BLAS
#: repacking the item factors for each block's product costs little, small enough that
#: each thread's block stays in the last-level cache for its selection
_TOPK_BLOCK_FLOATS = 1 << 21


class FoldIn(NamedTuple):
    """A new user's learned representation: latent ``factors`` and ``bias``."""

    factors: np.ndarray
    bias: float


class FactorModel(Estimator):
    """Mixin with the methods every latent-factor model shares (not used directly)."""

    #: fitted arrays saved by ``save`` (id maps are saved separately)
    _state_arrays: ClassVar[tuple[str, ...]] = (
        "user_factors_",
        "item_factors_",
        "user_bias_",
        "item_bias_",
        "seen_indptr_",
        "seen_indices_",
        "item_titles_",
    )
    _state_scalars: ClassVar[tuple[str, ...]] = ("global_mean_", "rating_scale_")
    #: whether predictions are ratings (clipped to the training scale)
    _explicit: ClassVar[bool] = True

    # ------------------------------------------------------------------ fitting helpers
    def _prepare_fit(self, data: Any, validation: Any = None) -> Interactions:
        """Validate parameters and data; set vocabularies and the seen-items structure."""
        self._validate_params()
        name = type(self).__name__
        for arg, value in (("train", data), ("validation", validation)):
            if arg == "validation" and value is None:
                continue
            if not isinstance(value, Interactions):
                raise DataError(
                    f"{name}.fit: {arg} must be a factorkit Interactions; got "
                    f"{type(value).__name__}. Build one with fk.Interactions.from_pandas(...) "
                    "or fk.read_csv(...)."
                )
        if len(data) == 0:
            raise DataError(f"{name}.fit: the training data holds no interactions")
        train = data.compact()
        self.user_map_ = train.user_map
        self.item_map_ = train.item_map
        self.seen_indptr_ = np.asarray(train.indptr, dtype=np.int64)
        self.seen_indices_ = np.asarray(train.item_index, dtype=np.int32)
        lo, hi = train.rating_scale
        self.rating_scale_ = (lo, hi)
        # titles are aligned with the final item vocabulary only when first needed
        meta = train.item_metadata
        self._title_source = None if meta is None or "title" not in meta else meta["title"]
        self._item_titles = None
        self._n_threads = resolve_threads(getattr(self, "n_threads", None))
        return train

    def _validation_positions(
        self, validation: Interactions
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Validation (user, item, value) in this model's positions; unknown ids give -1."""
        u = self.user_map_.lookup(validation.user_map.ids)[validation.user_index]
        i = self.item_map_.lookup(validation.item_map.ids)[validation.item_index]
        return u, i, validation.values

    def _rmse_on(self, users: np.ndarray, items: np.ndarray, values: np.ndarray) -> float:
        pred = self._score_positions(users, items, clip=True)
        return float(np.sqrt(np.mean((pred - values) ** 2))) if len(values) else float("nan")

    # ------------------------------------------------------------------ scoring
    def _user_matrix(self) -> np.ndarray:
        """Effective user vectors used for scoring (SVD++ adds its implicit term)."""
        return self.user_factors_

    def _score_positions(self, u: np.ndarray, i: np.ndarray, clip: bool) -> np.ndarray:
        """Scores for position pairs; -1 means unknown and contributes nothing."""
        known_u = u >= 0
        known_i = i >= 0
        both = known_u & known_i
        scores = np.full(len(u), self.global_mean_, dtype=np.float64)
        scores[known_u] += self.user_bias_[u[known_u]]
        scores[known_i] += self.item_bias_[i[known_i]]
        if both.any():
            users = self._user_matrix()
            scores[both] += np.einsum(
                "ij,ij->i",
                users[u[both]].astype(np.float64),
                self.item_factors_[i[both]].astype(np.float64),
            )
        if clip and self._explicit:
            np.clip(scores, self.rating_scale_[0], self.rating_scale_[1], out=scores)
        return scores

    def predict(self, users: Any, items: Any, unknown: str = "fallback") -> np.ndarray:
        """Predicted values for (user, item) pairs given as raw ids.

        Parameters
        ----------
        users, items : scalar or array-like
            Raw ids; equal lengths, or one of them a scalar broadcast to the other.
        unknown : {"fallback", "nan", "error"}
            For ids not seen in training: "fallback" predicts the global mean plus
            whatever bias is known; "nan" returns NaN; "error" raises UnknownIdError.

        Returns
        -------
        numpy.ndarray of float64, clipped to the training data's rating scale.
        """
        self._check_fitted("predict")
        if unknown not in UNKNOWN_POLICIES:
            raise InvalidParameterError(
                f"predict: unknown must be one of {list(UNKNOWN_POLICIES)}; got {unknown!r}"
            )
        u = self.user_map_.lookup(users)
        i = self.item_map_.lookup(items)
        if len(u) != len(i):
            if len(u) == 1:
                u = np.repeat(u, len(i))
            elif len(i) == 1:
                i = np.repeat(i, len(u))
            else:
                raise InvalidParameterError(
                    f"predict: users has {len(u)} entries and items has {len(i)}; pass equal "
                    "lengths, or a single user or item to pair with all of the others"
                )
        if unknown == "error":
            self.user_map_.to_index(users)
            self.item_map_.to_index(items)
        scores = self._score_positions(u, i, clip=True)
        if unknown == "nan":
            scores[(u < 0) | (i < 0)] = np.nan
        return scores

    # ------------------------------------------------------------------ top-N
    def _item_bias_for_ranking(self) -> np.ndarray:
        return self.item_bias_

    def _score_blocks(
        self,
        user_vecs: np.ndarray,
        item_vecs: np.ndarray | None = None,
        item_bias: np.ndarray | None = None,
    ) -> Iterator[tuple[int, int, np.ndarray]]:
        """Yield ``(start, stop, scores)`` with ``scores = user_vecs[start:stop] @ items.T
        + item_bias`` (float32), in row blocks small enough never to hold a full
        users x items matrix."""
        item_vecs = self.item_factors_ if item_vecs is None else item_vecs
        n_rows, n_cols = len(user_vecs), len(item_vecs)
        block = max(1, min(n_rows, _BLOCK_FLOATS // max(1, n_cols)))
        item_t = np.asarray(item_vecs, dtype=np.float32).T  # BLAS reads the transpose in place
        bias = None if item_bias is None else np.asarray(item_bias, dtype=np.float32)
        n_threads = self._threads()
        for start in range(0, n_rows, block):
            stop = min(n_rows, start + block)
            with blas_threads(n_threads):
                scores = np.asarray(user_vecs[start:stop], dtype=np.float32) @ item_t
            if bias is not None:
                scores += bias
            yield start, stop, scores

    def _threads(self) -> int:
        # the current n_threads, so set_params(n_threads=...) on a fitted model applies
        return resolve_threads(getattr(self, "n_threads", None))

    def _topk(
        self,
        user_vecs: np.ndarray,
        k: int,
        seen_indptr: np.ndarray,
        seen_indices: np.ndarray,
        excluded: np.ndarray,
        item_vecs: np.ndarray | None = None,
        item_bias: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Blocked scores = user_vecs @ item_vecs.T + item_bias, then top-k per row."""
        n_rows = len(user_vecs)
        out_idx = np.empty((n_rows, k), dtype=np.int64)
        out_val = np.empty((n_rows, k), dtype=np.float32)
        item_vecs = self.item_factors_ if item_vecs is None else item_vecs
        # the transposed view (Fortran-ordered, no copy): BLAS reads it as it is
        item_t = np.ascontiguousarray(item_vecs, dtype=np.float32).T
        bias = np.zeros(0, np.float32) if item_bias is None else np.asarray(item_bias, np.float32)
        users = np.ascontiguousarray(user_vecs, dtype=np.float32)
        block_rows = max(1, min(256, _TOPK_BLOCK_FLOATS // max(1, item_t.shape[1])))
        n_threads = self._threads()
        with using_threads(n_threads):
            topk_factors(
                users, item_t, bias, block_rows, np.asarray(seen_indptr, dtype=np.int64),
                seen_indices, excluded, k, out_idx, out_val, n_threads,
            )  # fmt: skip
        return out_idx, out_val

    def _candidate_mask(self, exclude_items: Any, items: Any) -> np.ndarray:
        excluded = np.zeros(len(self.item_map_), dtype=np.bool_)
        if items is not None:
            excluded[:] = True
            excluded[self.item_map_.to_index(items)] = False
        if exclude_items is not None:
            excluded[self.item_map_.to_index(exclude_items)] = True
        return excluded

    def _to_item_ids(self, idx: np.ndarray, vals: np.ndarray, single: bool):
        ids = self.item_map_.ids
        if single:
            n = int((idx[0] >= 0).sum())
            return ids[idx[0, :n]], vals[0, :n]
        if (idx < 0).any():
            out = np.empty(idx.shape, dtype=object if ids.dtype == object else np.int64)
            out[...] = None if out.dtype == object else -1
            ok = idx >= 0
            out[ok] = ids[idx[ok]]
            return out, np.where(ok, vals, np.nan).astype(np.float32)
        return ids[idx], vals

    def recommend(
        self,
        users: Any,
        k: int = 10,
        exclude_seen: bool = True,
        exclude_items: Any = None,
        items: Any = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items for one or many known users, best first.

        Parameters
        ----------
        users : raw user id or array-like of them
            Users seen in training (use :meth:`recommend_new_user` for others).
        k : int
            Number of items per user.
        exclude_seen : bool
            Leave out the user's training items.
        exclude_items : array-like, optional
            Raw item ids never to recommend.
        items : array-like, optional
            Restrict candidates to these raw item ids.

        Returns
        -------
        (item_ids, scores)
            1-D arrays for a single user (shorter than ``k`` when fewer candidates exist);
            2-D ``(n_users, k)`` arrays for many users, where missing slots (fewer than
            ``k`` candidates) hold item id ``-1`` (``None`` for string ids) and score NaN.
            Scores are the model's ranking scores (predicted ratings before clipping for
            explicit models).
        """
        self._check_fitted("recommend")
        k = _check_k(k, "recommend")
        single = np.ndim(users) == 0
        try:
            u = self.user_map_.to_index(users)
        except UnknownIdError as exc:
            raise UnknownIdError(
                f"{exc}. For a user unseen in training use recommend_new_user(items, ratings)."
            ) from None
        excluded = self._candidate_mask(exclude_items, items)
        if exclude_seen:
            ptr, idx = _gather_rows(self.seen_indptr_, self.seen_indices_, u)
        else:
            ptr, idx = np.zeros(len(u) + 1, dtype=np.int64), np.empty(0, dtype=np.int32)
        user_vecs = self._user_matrix()[u]
        out_idx, out_val = self._topk(
            user_vecs, k, ptr, idx, excluded, item_bias=self._item_bias_for_ranking()
        )
        if self._explicit:
            out_val += (self.global_mean_ + self.user_bias_[u])[:, None].astype(np.float32)
        return self._to_item_ids(out_idx, out_val, single)

    def recommend_all(
        self,
        k: int = 10,
        exclude_seen: bool = True,
        batch_size: int = 4096,
    ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Stream top-``k`` recommendations for every training user, block by block.

        Yields ``(user_ids, item_ids, scores)`` per block of ``batch_size`` users:
        ``user_ids`` is 1-D, the other two are ``(len(user_ids), k)`` as in
        :meth:`recommend`. Memory stays bounded by one block, whatever the number of users.

        Examples
        --------
        >>> import factorkit as fk
        >>> data = fk.datasets.load_movielens_small()
        >>> model = fk.BaselineOnly().fit(data)
        >>> n = sum(len(users) for users, _, _ in model.recommend_all(k=5, batch_size=256))
        >>> n == data.n_users
        True
        """
        self._check_fitted("recommend_all")
        k = _check_k(k, "recommend_all")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidParameterError(
                f"recommend_all: batch_size must be an int >= 1; got {batch_size!r}"
            )
        ids = self.user_map_.ids
        for start in range(0, len(ids), batch_size):
            users = ids[start : start + batch_size]
            items, scores = self.recommend(users, k=k, exclude_seen=exclude_seen)
            yield users, items, scores

    def similar_items(self, items: Any, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` items most similar to each given item by cosine of item factors.

        Returns ``(item_ids, scores)``: 1-D for one item, 2-D for many; the item itself is
        left out.
        """
        self._check_fitted("similar_items")
        k = _check_k(k, "similar_items")
        single = np.ndim(items) == 0
        pos = self.item_map_.to_index(items)
        normed = _normalise_rows(self.item_factors_)
        ptr = np.arange(len(pos) + 1, dtype=np.int64)
        idx, val = self._topk(
            normed[pos], k, ptr, pos.astype(np.int32), np.zeros(len(normed), np.bool_), normed
        )
        return self._to_item_ids(idx, val, single)

    def similar_users(self, users: Any, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` users most similar to each given user by cosine of user factors."""
        self._check_fitted("similar_users")
        k = _check_k(k, "similar_users")
        single = np.ndim(users) == 0
        pos = self.user_map_.to_index(users)
        normed = _normalise_rows(self._user_matrix())
        ptr = np.arange(len(pos) + 1, dtype=np.int64)
        idx, val = self._topk(
            normed[pos], k, ptr, pos.astype(np.int32), np.zeros(len(normed), np.bool_), normed
        )
        ids = self.user_map_.ids
        if single:
            n = int((idx[0] >= 0).sum())
            return ids[idx[0, :n]], val[0, :n]
        return ids[np.maximum(idx, 0)], val

    # ------------------------------------------------------------------ new users
    def _fold_in_regularization(self, n_ratings: int) -> float:
        return float(self.regularization)

    def _fold_in_offset(self, item_pos: np.ndarray) -> np.ndarray:
        """Part of the user vector fixed by the items themselves (SVD++'s implicit term)."""
        return np.zeros(self.item_factors_.shape[1], dtype=np.float64)

    def _uses_bias(self) -> bool:
        return bool(getattr(self, "biased", True)) and self._explicit

    def fold_in(self, items: Any, ratings: Any = None) -> FoldIn:
        """A new user's factors and bias from a few rated items, without refitting.

        Solves the model's regularised least-squares problem for one user with the item
        factors and biases held fixed.

        Parameters
        ----------
        items : array-like
            Raw item ids the new user rated (all must be known to the model).
        ratings : array-like
            The ratings, one per item (required for explicit-rating models).

        Returns
        -------
        FoldIn
            ``factors`` (the user's effective vector, as used for scoring) and ``bias``.
        """
        self._check_fitted("fold_in")
        pos, r = self._fold_in_inputs(items, ratings)
        q = self.item_factors_[pos].astype(np.float64)
        offset = self._fold_in_offset(pos)
        lam = self._fold_in_regularization(len(pos))
        if self._uses_bias():
            x = np.hstack([np.ones((len(pos), 1)), q])
            y = r - self.global_mean_ - self.item_bias_[pos] - q @ offset
        else:
            x = q
            y = r - self.global_mean_ - self.item_bias_[pos] - q @ offset
        a = x.T @ x + lam * np.eye(x.shape[1])
        sol = np.linalg.solve(a, x.T @ y)
        if self._uses_bias():
            return FoldIn(factors=(sol[1:] + offset).astype(np.float32), bias=float(sol[0]))
        return FoldIn(factors=(sol + offset).astype(np.float32), bias=0.0)

    def _fold_in_inputs(self, items: Any, ratings: Any) -> tuple[np.ndarray, np.ndarray]:
        name = type(self).__name__
        pos = self.item_map_.to_index(items)
        if len(pos) == 0:
            raise DataError(f"{name}.fold_in: items is empty; pass at least one rated item")
        if len(np.unique(pos)) != len(pos):
            raise DataError(f"{name}.fold_in: items holds repeated ids; pass each item once")
        if ratings is None:
            if self._explicit:
                raise DataError(
                    f"{name}.fold_in: ratings are required for an explicit-rating model; "
                    "pass ratings=[...] with one rating per item"
                )
            r = np.ones(len(pos))
        else:
            r = np.asarray(ratings, dtype=np.float64).reshape(-1)
            if len(r) != len(pos):
                raise DataError(
                    f"{name}.fold_in: {len(pos)} items but {len(r)} ratings; pass one rating "
                    "per item"
                )
            if not np.isfinite(r).all():
                raise DataError(f"{name}.fold_in: ratings must be finite numbers; got {r}")
        return pos, r

    def recommend_new_user(
        self,
        items: Any,
        ratings: Any = None,
        k: int = 10,
        exclude_seen: bool = True,
        exclude_items: Any = None,
        candidates: Any = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Fold a new user in from a few interactions and return their top-``k`` items.

        The given items are left out when ``exclude_seen`` is true; ``exclude_items`` and
        ``candidates`` (raw item ids) work as ``exclude_items`` and ``items`` of
        :meth:`recommend`. Returns 1-D ``(item_ids, scores)``.
        """
        folded = self.fold_in(items, ratings)
        k = _check_k(k, "recommend_new_user")
        excluded = self._candidate_mask(exclude_items, candidates)
        if exclude_seen:
            excluded[self.item_map_.to_index(items)] = True
        idx, val = self._topk(
            folded.factors[None, :],
            k,
            np.zeros(2, dtype=np.int64),
            np.empty(0, dtype=np.int32),
            excluded,
            item_bias=self._item_bias_for_ranking(),
        )
        if self._explicit:
            val += np.float32(self.global_mean_ + folded.bias)
        return self._to_item_ids(idx, val, single=True)

    # ------------------------------------------------------------------ incremental
    def partial_fit(self, new_data: Interactions, epochs: int = 2) -> FactorModel:
        """Add the users and items of ``new_data`` that the model has not seen, no refit.

        New users' and items' factors and biases are solved by the same regularised least
        squares as :meth:`fold_in`, alternating ``epochs`` times between new items (against
        all users who rated them in ``new_data``) and new users (against all items).
        Existing users' and items' parameters stay exactly as they were; new interactions
        of existing users join their seen items (so ``recommend`` leaves them out).

        Returns ``self``.
        """
        from factorkit.models._partial import extend_vocabulary

        self._check_fitted("partial_fit")
        if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 1:
            raise InvalidParameterError(f"partial_fit: epochs must be an int >= 1; got {epochs!r}")
        ext = extend_vocabulary(self, new_data)
        self._refresh_user_matrix()
        new_u = np.isin(ext.users, ext.new_users)
        new_i = np.isin(ext.items, ext.new_items)
        for _ in range(int(epochs)):
            if len(ext.new_items):
                m = new_i
                self._solve_new_rows(
                    ext.items[m], ext.users[m], ext.values[m], ext.new_items, side="item"
                )
            if len(ext.new_users):
                m = new_u
                self._solve_new_rows(
                    ext.users[m], ext.items[m], ext.values[m], ext.new_users, side="user"
                )
            self._refresh_user_matrix()
        return self

    def _refresh_user_matrix(self) -> None:
        """Recompute cached scoring vectors after rows changed (SVD++ overrides)."""

    def _solve_new_rows(
        self,
        rows: np.ndarray,
        others: np.ndarray,
        values: np.ndarray,
        targets: np.ndarray,
        side: str,
    ) -> None:
        """Regularised least squares for the ``targets`` rows of one side, others fixed."""
        if side == "user":
            own_f, own_b = self.user_factors_, self.user_bias_
            other_f, other_b = self.item_factors_, self.item_bias_
        else:
            own_f, own_b = self.item_factors_, self.item_bias_
            other_f, other_b = self._user_matrix(), self.user_bias_
        order = np.argsort(rows, kind="stable")
        rows, others, values = rows[order], others[order], values[order]
        starts = np.searchsorted(rows, targets, side="left")
        stops = np.searchsorted(rows, targets, side="right")
        use_bias = self._uses_bias()
        for target, lo, hi in zip(targets, starts, stops, strict=True):
            if hi == lo:
                continue
            q = other_f[others[lo:hi]].astype(np.float64)
            y = values[lo:hi] - self.global_mean_ - other_b[others[lo:hi]]
            if side == "user":  # the part of the user vector the items fix (SVD++)
                y = y - q @ self._fold_in_offset(others[lo:hi])
            x = np.hstack([np.ones((hi - lo, 1)), q]) if use_bias else q
            lam = self._fold_in_regularization(hi - lo)
            sol = np.linalg.solve(x.T @ x + lam * np.eye(x.shape[1]), x.T @ y)
            if use_bias:
                own_b[target] = sol[0]
                own_f[target] = sol[1:]
            else:
                own_f[target] = sol

    # ------------------------------------------------------------------ persistence
    def save(self, path: Any) -> None:
        """Save the fitted model to one file (``.npz`` arrays + JSON metadata, no pickle).

        Load it back with :func:`factorkit.load`.
        """
        from factorkit.persistence import save_model

        save_model(self, path)

    def _set_maps(self, user_map: IdMap, item_map: IdMap) -> None:
        self.user_map_ = user_map
        self.item_map_ = item_map

    @property
    def item_titles_(self) -> np.ndarray | None:
        """Titles aligned with ``item_map_`` when the training data had them, else None."""
        if getattr(self, "_item_titles", None) is None:
            source = getattr(self, "_title_source", None)
            if source is not None and hasattr(self, "item_map_"):
                titles = source.reindex(self.item_map_.ids).fillna("").astype(str)
                self._item_titles = titles.to_numpy().astype(str)
        return getattr(self, "_item_titles", None)

    @item_titles_.setter
    def item_titles_(self, titles: np.ndarray | None) -> None:
        self._item_titles = titles
        self._title_source = None

    def item_titles(self, items: Any) -> list[str]:
        """Titles of raw item ids when the training data carried them (else empty strings)."""
        self._check_fitted("item_titles")
        titles = getattr(self, "item_titles_", None)
        pos = self.item_map_.lookup(items)
        if titles is None:
            return ["" for _ in pos]
        return [str(titles[p]) if p >= 0 else "" for p in pos]

    def _after_load(self) -> None:
        """Rebuild derived, unsaved state after :func:`factorkit.load`."""
        self._n_threads = resolve_threads(getattr(self, "n_threads", None))


def _check_k(k: Any, where: str) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InvalidParameterError(f"{where}: k must be an int >= 1; got {k!r}")
    return int(k)


def _normalise_rows(m: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    return (m / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def _gather_rows(indptr: np.ndarray, indices: np.ndarray, rows: np.ndarray):
    """CSR sub-structure of ``rows`` (in that order)."""
    counts = indptr[rows + 1] - indptr[rows]
    ptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(counts, out=ptr[1:])
    if ptr[-1] == 0:
        return ptr, np.empty(0, dtype=np.int32)
    starts = np.repeat(indptr[rows] - ptr[:-1], counts)
    return ptr, indices[np.arange(ptr[-1]) + starts]
