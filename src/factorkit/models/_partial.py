"""Growing a fitted model's vocabulary: the shared part of every ``partial_fit``.

``extend_vocabulary`` appends users and items that a model has not seen, pads the
per-user and per-item fitted arrays with zero rows, merges the new interactions into the
seen-items structure, and returns the new data in the model's positions. Existing rows
are never touched, so existing users' and items' predictions stay exactly as they were.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from factorkit.data.idmap import IdMap
from factorkit.data.interactions import Interactions
from factorkit.exceptions import DataError

__all__ = ["Extension", "extend_vocabulary"]

#: fitted arrays with one row per user / per item, padded when the vocabulary grows
USER_ROWS = ("user_factors_", "user_bias_")
ITEM_ROWS = ("item_factors_", "item_bias_", "implicit_factors_")


@dataclass(frozen=True)
class Extension:
    """New interactions in model positions, and which rows are new."""

    users: np.ndarray  # int64 positions, one per new interaction
    items: np.ndarray
    values: np.ndarray  # float64
    new_users: np.ndarray  # positions of appended users
    new_items: np.ndarray


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
    """Append unseen users/items of ``new_data`` to ``model`` and merge its interactions."""
    name = type(model).__name__
    if not isinstance(new_data, Interactions):
        raise DataError(
            f"{name}.partial_fit: new_data must be a factorkit Interactions; got "
            f"{type(new_data).__name__}"
        )
    if len(new_data) == 0:
        raise DataError(f"{name}.partial_fit: new_data holds no interactions")
    data = new_data.compact()
    user_map, new_users = _grow(model.user_map_, data.user_map.ids)
    item_map, new_items = _grow(model.item_map_, data.item_map.ids)
    for attr in USER_ROWS:
        if hasattr(model, attr):
            setattr(model, attr, _pad_rows(getattr(model, attr), len(new_users)))
    for attr in ITEM_ROWS:
        if hasattr(model, attr):
            setattr(model, attr, _pad_rows(getattr(model, attr), len(new_items)))
    titles = getattr(model, "item_titles_", None)
    if titles is not None and len(new_items):
        model.item_titles_ = np.concatenate([titles, np.full(len(new_items), "", dtype=str)])
    model._set_maps(user_map, item_map)

    users = user_map.lookup(data.user_map.ids)[data.user_index]
    items = item_map.lookup(data.item_map.ids)[data.item_index]
    # merge seen structure: old (user, item) pairs plus new ones, duplicates collapsed
    old_counts = np.diff(model.seen_indptr_)
    old_users = np.repeat(np.arange(len(old_counts)), old_counts)
    all_u = np.concatenate([old_users, users])
    all_i = np.concatenate([model.seen_indices_.astype(np.int64), items])
    key = all_u * len(item_map) + all_i
    key = np.sort(key)
    key = key[np.concatenate(([True], key[1:] != key[:-1]))] if len(key) else key
    seen_u, seen_i = key // len(item_map), key % len(item_map)
    ptr = np.zeros(len(user_map) + 1, dtype=np.int64)
    np.cumsum(np.bincount(seen_u, minlength=len(user_map)), out=ptr[1:])
    model.seen_indptr_ = ptr
    model.seen_indices_ = seen_i.astype(np.int32)
    return Extension(
        users=users,
        items=items,
        values=data.values.astype(np.float64),
        new_users=new_users,
        new_items=new_items,
    )
