"""PartialFitMixin: one ``partial_fit(new_data, epochs=None)`` contract for every model.

``partial_fit`` folds new interactions into a fitted model without a refit, like
implicit's ``partial_fit_users``/``partial_fit_items``:

- users and items the model has not seen are appended (new rows start at zero, or are
  solved first);
- every interaction of ``new_data`` joins the training structure (``seen_indptr_``/
  ``seen_indices_``/``seen_values_``; a repeated pair takes the new value), so
  ``recommend`` leaves it out;
- the users and items *touched* by ``new_data`` (new or known) are updated against all
  their interactions, old and new: re-solved for ALS-family models, refined by ``epochs``
  SGD epochs over the touched users' rows for SGD models;
- rows not touched keep their values exactly.

A model mixes this in and implements ``_partial_update(ext, epochs)`` (``ext`` is the
:class:`Extension` built here); the default re-solves touched rows by regularised least
squares (:func:`solve_rows`, the single-row training step of ``BaselineOnly`` and
``ALS``), which uses the row hooks of :class:`~factorkit.models.FoldInMixin`
(``_uses_bias``, ``_fold_in_offset``, ``_fold_in_regularization``, ``_ridge_solve``); a
model without fold-in overrides ``_partial_update``. An unfitted model is fitted on ``new_data``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from factorkit._threads import resolve_threads, single_thread_blas
from factorkit.data.idmap import IdMap
from factorkit.data.interactions import Interactions
from factorkit.exceptions import DataError, InvalidParameterError
from factorkit.models._factor import also_seen_rows, gather_rows

__all__ = ["Extension", "PartialFitMixin", "extend_vocabulary", "solve_rows"]

#: fitted arrays with one row per user / per item, padded when the vocabulary grows
USER_ROWS = ("user_factors_", "user_bias_")
ITEM_ROWS = ("item_factors_", "item_bias_", "implicit_factors_")


@dataclass(frozen=True)
class Extension:
    """New interactions in model positions, and which rows are new or touched."""

    users: np.ndarray  # int64 positions, one per new interaction
    items: np.ndarray
    values: np.ndarray  # float64
    new_users: np.ndarray  # positions of appended users
    new_items: np.ndarray
    touched_users: np.ndarray  # sorted positions of every user in new_data
    touched_items: np.ndarray


class PartialFitMixin:
    """``partial_fit(new_data, epochs=None)``: see the module docstring.

    Examples
    --------
    >>> import factorkit as fk
    >>> model = fk.MostPopular().fit(fk.Interactions.from_arrays(["a", "b"], [1, 2]))
    >>> _ = model.partial_fit(fk.Interactions.from_arrays(["c", "c"], [2, 3]))
    >>> model.recommend("a", k=2)[0].tolist()  # 2 now has two interactions
    [2, 3]
    """

    _tags: ClassVar[dict[str, Any]] = {"can_partial_fit": True}
    #: passes when ``epochs`` is None: alternations (ALS family) or SGD epochs
    _partial_epochs: ClassVar[int] = 2

    def partial_fit(self, new_data: Interactions, epochs: int | None = None) -> Any:
        """Add ``new_data`` to the fitted model: new users and items are appended, and
        the users and items it touches are updated; other rows stay exactly as they were.

        Parameters
        ----------
        new_data : Interactions
            Interactions with raw ids, mixing known and new users and items freely.
        epochs : int, optional
            Passes of the update: alternations of the user and item re-solves for
            ALS-family models, SGD epochs over the touched rows for SGD models. Default:
            the model's own (see its docstring).

        Returns
        -------
        self
        """
        if not self._is_fitted():
            return self.fit(new_data)
        self._validate_params()
        n = self._partial_epochs if epochs is None else epochs
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise InvalidParameterError(
                f"{type(self).__name__}.partial_fit: epochs must be None or an int >= 1; "
                f"got {epochs!r}"
            )
        name = type(self).__name__
        if not isinstance(new_data, Interactions):
            raise DataError(
                f"{name}.partial_fit: new_data must be a factorkit Interactions; got "
                f"{type(new_data).__name__}. Build one with fk.Interactions.from_pandas(...)."
            )
        if len(new_data) == 0:
            raise DataError(f"{name}.partial_fit: new_data holds no interactions")
        self._check_partial_data(new_data)
        ext = extend_vocabulary(self, new_data)
        self._n_threads = resolve_threads(getattr(self, "n_threads", None))
        self._refresh_user_matrix()
        self._partial_update(ext, int(n))
        self._refresh_user_matrix()
        return self

    def _check_partial_data(self, new_data: Interactions) -> None:
        """Model-specific checks of ``new_data`` (e.g. non-negative implicit values)."""

    def _partial_update(self, ext: Extension, epochs: int) -> None:
        """Default: alternate exact re-solves of the touched users and items."""
        with single_thread_blas():
            for _ in range(epochs):
                solve_rows(self, ext.touched_users, "user")
                self._refresh_user_matrix()
                solve_rows(self, ext.touched_items, "item")

    def _row_regularization(self, n_ratings: int, side: str) -> float:
        """Ridge penalty of one row with ``n_ratings`` ratings in :func:`solve_rows`."""
        return self._fold_in_regularization(n_ratings)


def _grow(old: IdMap, raw: np.ndarray) -> tuple[IdMap, np.ndarray]:
    pos = old.lookup(raw)
    fresh = raw[pos < 0]
    if not len(fresh):
        return old, np.empty(0, dtype=np.int64)
    ids = np.concatenate([old.ids.astype(object), fresh.astype(object)])
    if old.ids.dtype.kind in "iu" and fresh.dtype.kind in "iu":
        ids = ids.astype(np.int64)
    return IdMap._from_unique(ids, old.kind), np.arange(len(old), len(old) + len(fresh))


def _pad_rows(arr: np.ndarray | None, n_new: int) -> np.ndarray | None:
    if arr is None or n_new == 0:
        return arr
    pad = np.zeros((n_new, *arr.shape[1:]), dtype=arr.dtype)
    return np.concatenate([arr, pad])


def extend_vocabulary(model: Any, new_data: Interactions) -> Extension:
    """Append unseen users/items of ``new_data`` to ``model`` (zero rows) and merge its
    interactions into the seen structure (a repeated pair takes the new value)."""
    data = new_data.compact()
    also = also_seen_rows(model)  # in the old positions, before the vocabulary grows
    user_map, new_users = _grow(model.user_map_, data.user_map.ids)
    item_map, new_items = _grow(model.item_map_, data.item_map.ids)
    for attr in USER_ROWS:
        if getattr(model, attr, None) is not None:
            setattr(model, attr, _pad_rows(getattr(model, attr), len(new_users)))
    for attr in ITEM_ROWS:
        if getattr(model, attr, None) is not None:
            setattr(model, attr, _pad_rows(getattr(model, attr), len(new_items)))
    titles = model.item_titles_
    if titles is not None and len(new_items):
        model.item_titles_ = np.concatenate([titles, np.full(len(new_items), "", dtype=str)])
    model.user_map_, model.item_map_ = user_map, item_map
    if also is not None and len(new_users):  # appended users have no also-seen items
        pad = np.full(len(new_users), also[0][-1], dtype=np.int64)
        model.also_seen_indptr_ = np.concatenate([also[0], pad])

    users = user_map.lookup(data.user_map.ids)[data.user_index]
    items = item_map.lookup(data.item_map.ids)[data.item_index]
    values = np.asarray(data.values, dtype=np.float64)
    # merge: old pairs then new ones; a stable sort by key keeps the new value last
    old_counts = np.diff(model.seen_indptr_)
    old_users = np.repeat(np.arange(len(old_counts), dtype=np.int64), old_counts)
    n_items = len(item_map)
    key = np.concatenate([old_users * n_items + model.seen_indices_, users * n_items + items])
    vals = np.concatenate([np.asarray(model.seen_values_, dtype=np.float32), values])
    order = np.argsort(key, kind="stable")
    key, vals = key[order], vals[order]
    last = np.ones(len(key), dtype=np.bool_)
    last[:-1] = key[1:] != key[:-1]
    key, vals = key[last], vals[last]
    ptr = np.zeros(len(user_map) + 1, dtype=np.int64)
    np.cumsum(np.bincount(key // n_items, minlength=len(user_map)), out=ptr[1:])
    model.seen_indptr_ = ptr
    model.seen_indices_ = (key % n_items).astype(np.int32)
    model.seen_values_ = vals.astype(np.float32)
    return Extension(
        users=users,
        items=items,
        values=values,
        new_users=new_users,
        new_items=new_items,
        touched_users=np.unique(users),
        touched_items=np.unique(items),
    )


def item_major(model: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The seen structure transposed: CSR over items of (user positions, values)."""
    n_items = len(model.item_map_)
    users = np.repeat(np.arange(len(model.user_map_), dtype=np.int64), np.diff(model.seen_indptr_))
    order = np.argsort(model.seen_indices_, kind="stable")
    ptr = np.zeros(n_items + 1, dtype=np.int64)
    np.cumsum(np.bincount(model.seen_indices_, minlength=n_items), out=ptr[1:])
    return ptr, users[order].astype(np.int32), model.seen_values_[order]


def solve_rows(model: Any, rows: np.ndarray, side: str) -> None:
    """Re-solve ``rows`` of one side by regularised least squares, the other side fixed.

    For a user, ``[b_u, p_u]`` minimises ``sum (r - mu - b_i - (p_u + o_u) . q_i - b_u)^2
    + lam (|p_u|^2 + b_u^2)`` over all their interactions (``o_u`` is the part of the user
    vector the items fix, SVD++'s implicit term; ``b_u`` only for biased rating models);
    items alike against the users' effective vectors. ``lam`` is
    ``model._row_regularization(n, side)``.
    """
    if not len(rows):
        return
    if side == "user":
        ptr, idx, val = model.seen_indptr_, model.seen_indices_, model.seen_values_
        own_f, own_b = model.user_factors_, model.user_bias_
        other_f, other_b = model.item_factors_, model.item_bias_
    else:
        ptr, idx, val = item_major(model)
        own_f, own_b = model.item_factors_, model.item_bias_
        other_f, other_b = model._user_matrix(), model.user_bias_
    use_bias = model._uses_bias()
    sub_ptr, sub_idx = gather_rows(ptr, idx, rows)
    _, sub_pos = gather_rows(ptr, np.arange(len(idx)), rows)
    for r, target in enumerate(rows):
        lo, hi = sub_ptr[r], sub_ptr[r + 1]
        if hi == lo:
            continue
        others = sub_idx[lo:hi]
        q = other_f[others].astype(np.float64)
        y = val[sub_pos[lo:hi]].astype(np.float64) - model.global_mean_ - other_b[others]
        if side == "user":
            y = y - q @ model._fold_in_offset(others)
        x = np.hstack([np.ones((hi - lo, 1)), q]) if use_bias else q
        lam = model._row_regularization(hi - lo, side)
        sol = model._ridge_solve(x.T @ x + lam * np.eye(x.shape[1]), x.T @ y)
        if use_bias:
            own_b[target] = sol[0]
            own_f[target] = sol[1:]
        else:
            own_f[target] = sol


@contextlib.contextmanager
def untouched_rows_kept(model: Any, ext: Extension) -> Iterator[None]:
    """Restore every row that ``ext`` does not touch after the block (SGD updates reach
    rows beyond the touched ones, e.g. items of a touched user's old ratings)."""
    saved = {}
    for names, touched in ((USER_ROWS, ext.touched_users), (ITEM_ROWS, ext.touched_items)):
        for name in names:
            arr = getattr(model, name, None)
            if arr is not None:
                keep = np.ones(len(arr), dtype=np.bool_)
                keep[touched] = False
                saved[name] = (keep, arr[keep].copy())
    yield
    for name, (keep, rows) in saved.items():
        getattr(model, name)[keep] = rows
