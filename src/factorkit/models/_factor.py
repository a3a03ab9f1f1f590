"""FactorModel: fitted state, prediction, the scoring protocol and the state protocol.

A fitted model holds ``user_map_``/``item_map_`` (the training vocabularies),
``user_factors_``/``item_factors_`` (float32; zero columns for models without factors),
``user_bias_``/``item_bias_``/``global_mean_`` (zeros where a model has none),
``rating_scale_`` and the training interactions per user (``seen_indptr_``/
``seen_indices_``/``seen_values_``, CSR over positions) for ``exclude_seen`` and
``partial_fit``. Capabilities come from the mixins (:mod:`factorkit.models._recommend`,
``_similar``, ``_fold_in``, ``_partial``), each declaring its tag.

Scoring protocol
----------------
The public, position-based interface that evaluation, reports and any other consumer
use instead of private names. A *position* is an index into ``user_map_``/``item_map_``
(``model.user_map_.lookup(raw_ids)`` gives them; -1 means unknown).

``score_blocks(user_positions)``
    Yields ``(start, stop, scores)``: float32 ranking scores of every item for
    ``user_positions[start:stop]``, blocks small enough never to hold a full users x
    items matrix. Ranking scores order one user's items exactly as ``recommend`` does
    (for rating models they leave out the per-user constant ``mu + b_u``).
``top_items(user_positions, k, exclude=None, excluded_items=None)``
    ``(item_positions, scores)``, each ``(n, k)``, best first: the top ``k`` by ranking
    score, leaving out ``exclude = (indptr, indices)`` (a CSR of item positions per row of
    ``user_positions``) and the boolean mask ``excluded_items``; slots left empty (fewer
    than ``k`` candidates) hold item position -1.
``seen_indptr_``, ``seen_indices_``
    The training items of each user (CSR over positions).

State protocol
--------------
``get_state()`` returns a dict of NumPy arrays and JSON-able scalars that
``set_state(state)`` turns back into the same fitted model; :mod:`factorkit.persistence`
only writes and reads it. Keys: the declared arrays and scalars (``state_names()``,
from the class attributes ``_state_arrays``/``_state_scalars``, which a model family
extends), the vocabularies as raw-id arrays ``user_ids``/``item_ids``, and ``history_``
as a list of records.
"""

from __future__ import annotations

import contextlib
import json
import warnings
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np

from factorkit._lazy import pandas as pd
from factorkit._threads import blas_threads, resolve_threads, single_thread_blas, using_threads
from factorkit.base import Estimator, get_tags
from factorkit.data.idmap import IdMap
from factorkit.data.interactions import Interactions
from factorkit.data.weights import check_sample_weight
from factorkit.exceptions import DataError, DataWarning, InvalidParameterError
from factorkit.kernels.topk import topk_factors
from factorkit.models._training import HistoryAttribute

__all__ = ["FactorModel"]

UNKNOWN_POLICIES = ("fallback", "nan", "error")
#: scores of at most this many floats are materialised at once by score_blocks
_BLOCK_FLOATS = 1 << 22
#: scores per block of the top-k kernel (8 MiB, up to 256 users): large enough that BLAS
#: repacking the item factors for each block's product costs little, small enough that
#: each thread's block stays in the last-level cache for its selection
_TOPK_BLOCK_FLOATS = 1 << 21
#: predict for at most this many pairs runs with one BLAS thread (a single-row path)
_FEW_PAIRS = 1024


class FactorModel(Estimator):
    """Base of the recommenders: fitted state, ``predict``, scoring and state protocols.

    Not used directly: a model family subclasses it together with the capability mixins
    it supports (``RecommendMixin``, ``SimilarMixin``, ``FoldInMixin``,
    ``PartialFitMixin``); see ``docs/architecture.md``.

    Examples
    --------
    >>> import factorkit as fk
    >>> data = fk.Interactions.from_arrays(["a", "a", "b"], [1, 2, 2], [5.0, 3.0, 4.0])
    >>> model = fk.BaselineOnly(epochs=2).fit(data)
    >>> items, scores = model.top_items([0], k=2)  # positions in model.item_map_
    >>> model.item_map_.ids[items[0]].tolist()
    [1, 2]
    >>> state = model.get_state()
    >>> sorted(state)[:3]
    ['global_mean_', 'history_', 'item_bias_']
    >>> twin = fk.BaselineOnly(epochs=2).set_state(state)
    >>> bool((twin.predict(["a"], [2]) == model.predict(["a"], [2])).all())
    True
    """

    _abstract: ClassVar[bool] = True
    #: the declared fitted state (see :meth:`state_names`); families add their own arrays
    _state_arrays: ClassVar[tuple[str, ...]] = (
        "user_factors_",
        "item_factors_",
        "user_bias_",
        "item_bias_",
        "seen_indptr_",
        "seen_indices_",
        "seen_values_",
        "also_seen_indptr_",
        "also_seen_indices_",
        "item_titles_",
    )
    _state_scalars: ClassVar[tuple[str, ...]] = ("global_mean_", "rating_scale_")
    #: per-epoch records, a DataFrame built on first read (a fit never imports pandas)
    history_ = HistoryAttribute()

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
        self.seen_values_ = np.asarray(train.values, dtype=np.float32)
        # pairs the data says the users saw but are not feedback (to_implicit's left-outs):
        # kept by raw id until fit has settled the final positions, then made CSR on use
        self.also_seen_indptr_ = self.also_seen_indices_ = None
        also = train.also_seen
        self._also_seen_ids = None
        if also is not None and len(also[0]):
            self._also_seen_ids = (train.user_map.ids[also[0]], train.item_map.ids[also[1]])
        lo, hi = train.rating_scale
        self.rating_scale_ = (lo, hi)
        # titles are aligned with the final item vocabulary only when first needed
        meta = train.item_metadata
        self._title_source = None if meta is None or "title" not in meta else meta["title"]
        self._item_titles = None
        self._n_threads = resolve_threads(getattr(self, "n_threads", None))
        return train

    def _prepare_weighted_fit(
        self, train: Any, validation: Any, sample_weight: Any
    ) -> tuple[Interactions, np.ndarray | None]:
        """:meth:`_prepare_fit`, and ``sample_weight`` checked against ``train`` (None
        without weights): the fit setup of the models whose ``sample_weight`` is one
        weight per rating in ``train``'s canonical order.

        The weights are checked first, before :meth:`_prepare_fit` changes the model; a
        ``train`` that is not an ``Interactions`` is left to :meth:`_prepare_fit`, whose
        error names it.
        """
        weights = None
        if isinstance(train, Interactions):
            weights = check_sample_weight(sample_weight, train, f"{type(self).__name__}.fit")
        return self._prepare_fit(train, validation), weights

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
    def _rating_model(self) -> bool:
        """Whether scores are ratings (clipped to the training scale): the feedback tag."""
        return get_tags(self).explicit

    def _user_matrix(self) -> np.ndarray:
        """Effective user vectors used for scoring (SVD++ adds its implicit term)."""
        return self.user_factors_

    def _item_bias_for_ranking(self) -> np.ndarray:
        return self.item_bias_

    def _threads(self) -> int:
        # the current n_threads, so set_params(n_threads=...) on a fitted model applies
        return resolve_threads(getattr(self, "n_threads", None))

    def _refresh_user_matrix(self) -> None:
        """Drop cached scoring vectors after rows changed (SVD++ overrides)."""

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
        if clip and self._rating_model():
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
            whatever bias is known and warns (:class:`~factorkit.exceptions.DataWarning`,
            with the number of such pairs); "nan" returns NaN; "error" raises
            UnknownIdError.

        Returns
        -------
        numpy.ndarray of float64, clipped to the training data's rating scale.
        """
        u, i = self._predict_pairs(users, items, unknown)
        with single_thread_blas() if len(u) <= _FEW_PAIRS else contextlib.nullcontext():
            scores = self._score_positions(u, i, clip=True)
        if unknown == "nan":
            scores[(u < 0) | (i < 0)] = np.nan
        return scores

    def _predict_pairs(self, users: Any, items: Any, unknown: str) -> tuple[np.ndarray, ...]:
        """``predict``'s pairs as positions (-1: unknown), after the ``unknown`` policy:
        raise for "error", warn with the count for "fallback"."""
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
        n_missing = int(((u < 0) | (i < 0)).sum())
        if n_missing and unknown == "fallback":
            warnings.warn(
                f"{type(self).__name__}.predict: {n_missing} of {len(u)} (user, item) pairs "
                "have a user or item unknown to the model; they get the fallback prediction "
                "(global mean plus the known bias). Pass unknown='nan' or unknown='error' to "
                "mark or reject them.",
                DataWarning,
                stacklevel=3,  # the caller of predict
            )
        return u, i

    # ------------------------------------------------------------------ scoring protocol
    def score_blocks(
        self, user_positions: Any, block_rows: int | None = None
    ) -> Iterator[tuple[int, int, np.ndarray]]:
        """Ranking scores of every item for users given by position, block by block.

        Part of the public scoring protocol (see the module docstring).

        Parameters
        ----------
        user_positions : array-like of int
            Positions in ``user_map_`` (all known).
        block_rows : int, optional
            Rows per block; default: as many as fit in about 16 MiB of scores.

        Yields
        ------
        (start, stop, scores)
            ``scores`` is float32 ``(stop - start, n_items)`` for
            ``user_positions[start:stop]``.
        """
        self._check_fitted("score_blocks")
        return self._score_vectors(
            self._user_matrix()[np.asarray(user_positions, dtype=np.int64)],
            block_rows=block_rows,
        )

    def _score_vectors(
        self,
        user_vecs: np.ndarray,
        item_vecs: np.ndarray | None = None,
        item_bias: Any = "ranking",
        block_rows: int | None = None,
    ) -> Iterator[tuple[int, int, np.ndarray]]:
        """Blocks of ``user_vecs @ item_vecs.T + item_bias`` (float32)."""
        item_vecs = self.item_factors_ if item_vecs is None else item_vecs
        if isinstance(item_bias, str):
            item_bias = self._item_bias_for_ranking()
        n_rows, n_cols = len(user_vecs), len(item_vecs)
        block = block_rows or max(1, min(n_rows, _BLOCK_FLOATS // max(1, n_cols)))
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

    def top_items(
        self,
        user_positions: Any,
        k: int,
        exclude: tuple[np.ndarray, np.ndarray] | None = None,
        excluded_items: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` item positions by ranking score for users given by position.

        Part of the public scoring protocol (see the module docstring).

        Parameters
        ----------
        user_positions : array-like of int
            Positions in ``user_map_`` (all known).
        k : int
            Items per user.
        exclude : (indptr, indices), optional
            Item positions to leave out for each row of ``user_positions`` (CSR with
            ``len(user_positions) + 1`` pointers). Default: nothing per user.
        excluded_items : numpy.ndarray of bool, optional
            Items never to return (length ``len(item_map_)``).

        Returns
        -------
        (item_positions, scores)
            int64 and float32 arrays ``(n, k)``, best first; -1 marks missing slots.
        """
        self._check_fitted("top_items")
        users = np.asarray(user_positions, dtype=np.int64).reshape(-1)
        if exclude is None:
            exclude = (np.zeros(len(users) + 1, np.int64), np.empty(0, np.int32))
        if excluded_items is None:
            excluded_items = np.zeros(len(self.item_map_), dtype=np.bool_)
        indptr, indices = exclude
        return self._topk(
            self._user_matrix()[users],
            int(k),
            np.asarray(indptr, dtype=np.int64),
            np.asarray(indices, dtype=np.int32),
            np.asarray(excluded_items, dtype=np.bool_),
            item_bias=self._item_bias_for_ranking(),
        )

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

    # ------------------------------------------------------------------ state protocol
    @classmethod
    def state_names(cls) -> dict[str, tuple[str, ...]]:
        """The declared fitted state: ``{"arrays": names, "scalars": names}``.

        Besides these, a state holds ``user_ids``/``item_ids`` and ``history_``. Loading
        code checks a file against this declaration (a closed schema).
        """
        return {"arrays": tuple(cls._state_arrays), "scalars": tuple(cls._state_scalars)}

    def get_state(self) -> dict[str, Any]:
        """The fitted state as NumPy arrays and JSON-able scalars (see the module docstring).

        ``set_state`` on an unfitted instance with the same parameters restores it.
        """
        self._check_fitted("get_state")
        also_seen_rows(self)  # settle the also-seen structure into arrays
        state: dict[str, Any] = {
            "user_ids": np.asarray(self.user_map_.ids),
            "item_ids": np.asarray(self.item_map_.ids),
        }
        for name in self._state_arrays:
            value = getattr(self, name, None)
            if value is not None:
                state[name] = np.asarray(value)
        for name in self._state_scalars:
            value = getattr(self, name)
            state[name] = [_plain(v) for v in value] if isinstance(value, tuple) else _plain(value)
        history = getattr(self, "history_", None)
        if history is not None:  # JSON records (NaN -> None)
            state["history_"] = json.loads(pd.DataFrame(history).to_json(orient="records"))
        return state

    def set_state(self, state: dict[str, Any]) -> FactorModel:
        """Restore a state returned by :meth:`get_state`; returns ``self``.

        Raises InvalidParameterError for a key outside the declared state
        (:meth:`state_names`).
        """
        allowed = {"user_ids", "item_ids", "history_", *self._state_arrays, *self._state_scalars}
        unknown = sorted(set(state) - allowed)
        if unknown:
            raise InvalidParameterError(
                f"{type(self).__name__}.set_state: unknown state key(s) {unknown}; expected "
                f"keys among {sorted(allowed)} (a state from get_state() of this class)"
            )
        for name, value in state.items():
            if name in ("user_ids", "item_ids"):
                kind = name[: -len("_ids")]
                setattr(self, f"{kind}_map_", IdMap(np.asarray(value), kind=kind))
            elif name == "history_":
                self.history_ = pd.DataFrame(value)
            elif name == "rating_scale_":
                self.rating_scale_ = tuple(value)
            else:
                setattr(self, name, value)
        if "seen_values_" not in state and "seen_indices_" in state:  # saved before 0.x
            self.seen_values_ = np.ones(len(self.seen_indices_), dtype=np.float32)
        n_seen, n_values = len(self.seen_indices_), len(self.seen_values_)
        if n_seen != n_values:
            raise InvalidParameterError(
                f"{type(self).__name__}.set_state: seen_values_ holds {n_values} values for "
                f"{n_seen} seen items (seen_indices_); pass a state from get_state()"
            )
        self._n_threads = resolve_threads(getattr(self, "n_threads", None))
        self._after_set_state()
        return self

    def _after_set_state(self) -> None:
        """Drop derived caches after :meth:`set_state` (models with caches override)."""
        self._refresh_user_matrix()

    def save(self, path: Any) -> None:
        """Save the fitted model to one file (``.npz`` arrays + JSON metadata, no pickle).

        Load it back with :func:`factorkit.load`.
        """
        from factorkit.persistence import save_model

        save_model(self, path)

    # ------------------------------------------------------------------ titles
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


def _plain(x: Any) -> Any:
    return x.item() if isinstance(x, np.generic) else x


def gather_rows(
    indptr: np.ndarray, indices: np.ndarray, rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """CSR sub-structure of ``rows`` (in that order)."""
    counts = indptr[rows + 1] - indptr[rows]
    ptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(counts, out=ptr[1:])
    if ptr[-1] == 0:
        return ptr, np.empty(0, dtype=np.int32)
    starts = np.repeat(indptr[rows] - ptr[:-1], counts)
    return ptr, indices[np.arange(ptr[-1]) + starts]


def also_seen_rows(model: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """The model's also-seen structure (CSR over its user and item positions) or None.

    Built once from the raw ids ``_prepare_fit`` kept, after ``fit`` has settled the final
    positions (some models relabel users and items while training).
    """
    pending = getattr(model, "_also_seen_ids", None)
    if pending is not None:
        users = model.user_map_.lookup(pending[0]).astype(np.int64)
        items = model.item_map_.lookup(pending[1]).astype(np.int64)
        n_items = len(model.item_map_)
        key = np.unique(users * n_items + items)
        ptr = np.zeros(len(model.user_map_) + 1, dtype=np.int64)
        np.cumsum(np.bincount(key // n_items, minlength=len(model.user_map_)), out=ptr[1:])
        model.also_seen_indptr_ = ptr
        model.also_seen_indices_ = (key % n_items).astype(np.int32)
        model._also_seen_ids = None
    if getattr(model, "also_seen_indptr_", None) is None:
        return None
    return model.also_seen_indptr_, model.also_seen_indices_


def merge_rows(
    a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise union of two CSR structures over the same rows (rows of ``a`` first)."""
    (a_ptr, a_idx), (b_ptr, b_idx) = a, b
    n = len(a_ptr) - 1
    rows = np.concatenate(
        [np.repeat(np.arange(n), np.diff(a_ptr)), np.repeat(np.arange(n), np.diff(b_ptr))]
    )
    order = np.argsort(rows, kind="stable")
    return a_ptr + b_ptr, np.concatenate([a_idx, b_idx])[order].astype(np.int32)
