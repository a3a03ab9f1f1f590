"""SimilarMixin: nearest items and users (by default, cosine of their factors).

It declares ``can_find_similar`` and ``has_factors``. A model whose similarities are
not factor cosines (the neighbour models) overrides the hook
``_similar_positions(side, positions, k)`` and declares ``has_factors: False``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from factorkit.models._recommend import check_k, to_item_ids

__all__ = ["SimilarMixin"]


class SimilarMixin:
    """``similar_items`` and ``similar_users`` by cosine similarity of factor vectors.

    Examples
    --------
    >>> import factorkit as fk
    >>> hasattr(fk.ALS(), "similar_items"), hasattr(fk.BaselineOnly(), "similar_items")
    (True, False)
    """

    _tags: ClassVar[dict[str, Any]] = {"can_find_similar": True, "has_factors": True}

    def similar_items(self, items: Any, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` items most similar to each given item by cosine of item factors.

        Returns ``(item_ids, scores)``: 1-D for one item, 2-D for many; the item itself is
        left out.
        """
        self._check_fitted("similar_items")
        k = check_k(k, "similar_items")
        single = np.ndim(items) == 0
        pos = self.item_map_.to_index(items)
        idx, val = self._similar_positions("item", pos, k)
        return to_item_ids(self, idx, val, single)

    def similar_users(self, users: Any, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` users most similar to each given user by cosine of user factors."""
        self._check_fitted("similar_users")
        k = check_k(k, "similar_users")
        single = np.ndim(users) == 0
        pos = self.user_map_.to_index(users)
        idx, val = self._similar_positions("user", pos, k)
        ids = self.user_map_.ids
        if single:
            n = int((idx[0] >= 0).sum())
            return ids[idx[0, :n]], val[0, :n]
        return ids[np.maximum(idx, 0)], val

    def _similar_positions(self, side: str, pos: np.ndarray, k: int):
        """Top-``k`` positions and scores of the ``side`` entities most similar to those
        at ``pos`` (each left out of its own list): cosine of the factor vectors."""
        vectors = self.item_factors_ if side == "item" else self._user_matrix()
        return self._nearest(_normalise_rows(vectors), pos, k)

    def _nearest(self, normed: np.ndarray, pos: np.ndarray, k: int):
        """Top-k rows of ``normed`` by dot product with the rows ``pos``, each row itself
        left out."""
        ptr = np.arange(len(pos) + 1, dtype=np.int64)
        excluded = np.zeros(len(normed), np.bool_)
        return self._topk(normed[pos], k, ptr, pos.astype(np.int32), excluded, normed)


def _normalise_rows(m: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    return (m / np.where(norms > 0, norms, 1.0)).astype(np.float32)
