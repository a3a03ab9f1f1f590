"""RecommendMixin: top-N for known users (``recommend``, ``recommend_all``).

Mixed into a :class:`~factorkit.models.FactorModel` subclass; declares
``can_recommend``. Ranking goes through the model's scoring protocol (``top_items``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np

from factorkit._validation import Interval, RandomState, check
from factorkit.exceptions import InvalidParameterError, UnknownIdError
from factorkit.models._factor import also_seen_rows, gather_rows, merge_rows

__all__ = ["RecommendMixin"]


class RecommendMixin:
    """``recommend`` and ``recommend_all`` for a fitted model's training users.

    Examples
    --------
    >>> import factorkit as fk
    >>> data = fk.Interactions.from_arrays(["a", "a", "b"], [1, 2, 3])
    >>> model = fk.MostPopular().fit(data)
    >>> model.recommend("b", k=2)[0].tolist(), fk.get_tags(model).can_recommend
    ([1, 2], True)
    """

    _tags: ClassVar[dict[str, Any]] = {"can_recommend": True}

    def recommend(
        self,
        users: Any,
        k: int = 10,
        exclude_seen: bool = True,
        exclude_items: Any = None,
        items: Any = None,
        explore: float = 0.0,
        random_state: Any = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items for one or many known users, best first.

        Parameters
        ----------
        users : raw user id or array-like of them
            Users seen in training (use ``recommend_new_user`` for others).
        k : int
            Number of items per user.
        exclude_seen : bool
            Leave out every item the user interacted with in the training data: the
            training items, and the interactions the data kept as
            :attr:`~factorkit.Interactions.also_seen` (e.g. ratings below
            ``to_implicit``'s ``min_value``).
        exclude_items : array-like, optional
            Raw item ids never to recommend.
        items : array-like, optional
            Restrict candidates to these raw item ids.
        explore : float in [0, 1], default 0.0
            Share of the ``k`` slots given to exploration: ``m = floor(explore * k +
            0.5)`` slots hold items drawn uniformly at random from the user's candidates
            outside their top ``k - m`` (never an excluded or, with ``exclude_seen``, a
            seen item), at random places in the list; the other slots hold the top
            ``k - m`` in order. Each item keeps the model's score, so the scores of an
            explored list are not sorted.
        random_state : None, int or numpy.random.Generator
            Seeds the exploration draws (same seed, same lists).

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
        k = check_k(k, "recommend")
        check(explore, Interval(float, 0, 1), "explore", "recommend")
        check(random_state, RandomState(), "random_state", "recommend")
        single = np.ndim(users) == 0
        try:
            u = self.user_map_.to_index(users)
        except UnknownIdError as exc:
            raise UnknownIdError(
                f"{exc}. For a user unseen in training use recommend_new_user(items, ratings)."
            ) from None
        excluded = candidate_mask(self, exclude_items, items)
        exclude = None
        if exclude_seen:
            exclude = gather_rows(self.seen_indptr_, self.seen_indices_, u)
            also = also_seen_rows(self)
            if also is not None:
                exclude = merge_rows(exclude, gather_rows(*also, u))
        out_idx, out_val = self.top_items(u, k, exclude=exclude, excluded_items=excluded)
        n_explore = int(np.floor(float(explore) * k + 0.5))
        if n_explore:
            _explore(self, u, out_idx, out_val, n_explore, exclude, excluded, random_state)
        if self._rating_model():
            out_val += (self.global_mean_ + self.user_bias_[u])[:, None].astype(np.float32)
        return to_item_ids(self, out_idx, out_val, single)

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
        k = check_k(k, "recommend_all")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidParameterError(
                f"recommend_all: batch_size must be an int >= 1; got {batch_size!r}"
            )
        ids = self.user_map_.ids
        for start in range(0, len(ids), batch_size):
            users = ids[start : start + batch_size]
            items, scores = self.recommend(users, k=k, exclude_seen=exclude_seen)
            yield users, items, scores


def _explore(
    model: Any,
    users: np.ndarray,
    idx: np.ndarray,
    val: np.ndarray,
    n_explore: int,
    exclude: tuple[np.ndarray, np.ndarray] | None,
    excluded: np.ndarray,
    random_state: Any,
) -> None:
    """Replace ``n_explore`` slots of each row by random candidates (in place)."""
    rng = np.random.default_rng(random_state)
    k = idx.shape[1]
    keep = k - n_explore
    for start, stop, scores in model.score_blocks(users):
        for r in range(start, stop):
            allowed = ~excluded
            if exclude is not None:
                allowed[exclude[1][exclude[0][r] : exclude[0][r + 1]]] = False
            top = idx[r, :keep]
            allowed[top[top >= 0]] = False
            pool = np.flatnonzero(allowed)
            picked = rng.choice(pool, min(n_explore, len(pool)), replace=False)
            row = np.full(k, -1, dtype=np.int64)
            filled = keep + len(picked)
            places = np.sort(rng.choice(filled, len(picked), replace=False))
            mask = np.zeros(filled, dtype=bool)
            mask[places] = True
            row[:filled][mask] = picked
            row[:filled][~mask] = top
            idx[r] = row
            ok = row >= 0
            val[r] = np.where(ok, scores[r - start][np.maximum(row, 0)], np.nan)


def check_k(k: Any, where: str) -> int:
    """``k`` as an int >= 1, or InvalidParameterError naming ``where``."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InvalidParameterError(f"{where}: k must be an int >= 1; got {k!r}")
    return int(k)


def candidate_mask(model: Any, exclude_items: Any, items: Any) -> np.ndarray:
    """Boolean mask over item positions of the items never to return."""
    excluded = np.zeros(len(model.item_map_), dtype=np.bool_)
    if items is not None:
        excluded[:] = True
        excluded[model.item_map_.to_index(items)] = False
    if exclude_items is not None:
        excluded[model.item_map_.to_index(exclude_items)] = True
    return excluded


def to_item_ids(model: Any, idx: np.ndarray, vals: np.ndarray, single: bool):
    """Top-k positions -> raw item ids (1-D trimmed for one row; padded 2-D otherwise)."""
    ids = model.item_map_.ids
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
