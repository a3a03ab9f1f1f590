"""MostPopular: the non-personalised top-N baseline every recommender must beat."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from factorkit._validation import Interval, NoneOr
from factorkit.data.interactions import Interactions
from factorkit.data.weights import check_sample_weight
from factorkit.models._factor import FactorModel
from factorkit.models._fold_in import FoldIn, FoldInMixin
from factorkit.models._partial import Extension, PartialFitMixin
from factorkit.models._recommend import RecommendMixin

__all__ = ["MostPopular"]


class MostPopular(RecommendMixin, FoldInMixin, PartialFitMixin, FactorModel):
    """Recommend the items with the most training interactions, the same for every user.

    A factor model with zero-width factors whose item score is the item's training count,
    so ``recommend``, ``recommend_new_user``, :func:`factorkit.evaluate`, ``save`` and
    :func:`factorkit.load` work as for any model. ``predict`` returns that count (a
    ranking score, not a rating; 0 for unknown items). Ties keep the order of the
    model's item vocabulary ``item_map_``. It has no item or user factors, so it has no
    ``similar_items`` or ``similar_users``. ``partial_fit(new_data)`` recounts the items
    with the new interactions. ``fit(train, sample_weight=w)`` scores items by the sum
    of their interactions' weights instead: with ``w = fk.time_decay(train, half_life=...)``
    it ranks what is popular *lately*.

    Parameters
    ----------
    min_value : float, optional
        Count only interactions with value >= ``min_value`` (e.g. ``4.0``: rank by the
        number of high ratings). Default: every interaction counts.

    Attributes
    ----------
    item_bias_ : numpy.ndarray of float64
        Each item's count, the ranking score.
    user_bias_ : numpy.ndarray
        Zeros.
    global_mean_ : float
        0.0.

    Examples
    --------
    >>> import factorkit as fk
    >>> from factorkit.models.popular import MostPopular
    >>> data = fk.Interactions.from_arrays(["a", "a", "b", "c"], [1, 2, 2, 3])
    >>> model = MostPopular().fit(data)
    >>> items, scores = model.recommend("c", k=2)
    >>> items.tolist(), scores.tolist()
    ([2, 1], [2.0, 1.0])
    """

    _tags: ClassVar[dict[str, Any]] = {
        "feedback": "implicit",
        "cli_name": "most-popular",
    }
    _parameter_constraints: ClassVar[dict[str, Any]] = {
        "min_value": NoneOr(Interval(float, None, None)),
    }

    def __init__(self, min_value: float | None = None) -> None:
        self.min_value = min_value

    def fit(self, train: Interactions, *, sample_weight: Any = None) -> MostPopular:
        """Count each item's training interactions; returns ``self``.

        Parameters
        ----------
        train : Interactions
        sample_weight : array-like of shape (len(train),), optional
            One finite weight >= 0 per interaction, aligned with ``train`` (its canonical
            order, as :func:`factorkit.time_decay` returns): an item's score is then the
            sum of its interactions' weights instead of their number (weight 0 drops an
            interaction, weight 2 counts it twice). ``partial_fit`` does not keep them:
            it recounts every interaction with weight 1.

        Examples
        --------
        >>> import factorkit as fk
        >>> from factorkit.models.popular import MostPopular
        >>> data = fk.Interactions.from_arrays(["a", "a", "b", "c"], [1, 2, 2, 3])
        >>> model = MostPopular().fit(data, sample_weight=[3.0, 0.5, 0.5, 1.0])
        >>> model.recommend("c", k=2)[1].tolist()
        [3.0, 1.0]
        """
        data = self._prepare_fit(train)
        weights = check_sample_weight(sample_weight, data, "MostPopular.fit")
        self.user_bias_ = np.zeros(data.n_users)
        self.global_mean_ = 0.0
        self.user_factors_ = np.zeros((data.n_users, 0), dtype=np.float32)
        self.item_factors_ = np.zeros((data.n_items, 0), dtype=np.float32)
        self._count(weights)
        return self

    def _count(self, weights: np.ndarray | None = None) -> None:
        """``item_bias_``: per item, the number (or the sum of ``weights``, aligned with
        the seen arrays) of interactions with value >= ``min_value``."""
        items, values = self.seen_indices_, self.seen_values_
        if self.min_value is not None:
            keep = values >= self.min_value
            items = items[keep]
            weights = None if weights is None else weights[keep]
        counts = np.bincount(items, weights, minlength=len(self.item_map_))
        self.item_bias_ = counts.astype(np.float64)

    def _partial_update(self, ext: Extension, epochs: int) -> None:
        self._count()

    def _fold_in(self, pos: np.ndarray, r: np.ndarray) -> FoldIn:
        """A new user needs no fitting: empty factors and zero bias."""
        return FoldIn(factors=np.zeros(0, dtype=np.float32), bias=0.0)
