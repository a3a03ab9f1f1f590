"""PureSVD: top-N recommendation from the truncated SVD of the interaction matrix.

Cremonesi, Koren & Turrin (2010), "Performance of recommender algorithms on top-N
recommendation tasks": missing entries are zeros, ``R ~ U S Q^T``, and a user's scores are
``r_u Q Q^T``. It ranks well despite (because of) treating missing as zero, and fits with
one randomized SVD of the sparse matrix (:func:`factorkit.decomposition.randomized_svd`).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from factorkit._validation import Boolean, Interval, RandomState, Threads
from factorkit.data.interactions import Interactions
from factorkit.data.weights import check_sample_weight
from factorkit.decomposition import randomized_svd
from factorkit.decomposition._checks import check_rank
from factorkit.models._factor import FactorModel
from factorkit.models._fold_in import FoldIn, FoldInMixin
from factorkit.models._recommend import RecommendMixin
from factorkit.models._similar import SimilarMixin

__all__ = ["PureSVD"]


class PureSVD(RecommendMixin, SimilarMixin, FoldInMixin, FactorModel):
    """Top-N recommender: the rank-``factors`` SVD of the user x item matrix (zeros missing).

    Item factors are ``Q`` (orthonormal columns), user factors ``R Q`` (= ``U S``), so a
    user's score for item i is ``r_u . Q q_i``; a new user folds in by projection, no
    solve. Scores rank items; they are not ratings (``predict`` returns the score).
    ``fit(train, sample_weight=w)`` factorizes ``W * R`` (each value times its weight;
    weight 0 removes the cell), e.g. ``w = fk.time_decay(train, half_life="1y")``.

    Parameters
    ----------
    factors : int, default=50
    binary : bool, default=False
        Use 1 for every interaction instead of its rating.
    n_iter : int, default=5
        Power iterations of the randomized SVD (oversampling 10).
    random_state, n_threads :
        Seed and threads (None: all cores).

    Examples
    --------
    >>> import factorkit as fk
    >>> from factorkit.models.pure_svd import PureSVD
    >>> data = fk.Interactions.from_arrays(["a", "a", "b", "b", "c"], [1, 2, 1, 3, 2])
    >>> model = PureSVD(factors=2, random_state=0).fit(data)
    >>> items, scores = model.recommend("c", k=1)
    >>> items.tolist()
    [1]
    """

    _parameter_constraints: ClassVar[dict[str, Any]] = {
        "factors": Interval(int, 1),
        "binary": Boolean(),
        "n_iter": Interval(int, 0),
        "random_state": RandomState(),
        "n_threads": Threads(),
    }
    _tags: ClassVar[dict[str, Any]] = {"feedback": "implicit", "cli_name": "pure-svd"}

    def __init__(
        self,
        factors: int = 50,
        *,
        binary: bool = False,
        n_iter: int = 5,
        random_state: Any = None,
        n_threads: int | None = None,
    ) -> None:
        self.factors = factors
        self.binary = binary
        self.n_iter = n_iter
        self.random_state = random_state
        self.n_threads = n_threads

    def fit(self, train: Interactions, *, sample_weight: Any = None) -> PureSVD:
        """One truncated SVD of the training matrix; returns ``self``.

        Parameters
        ----------
        train : Interactions
        sample_weight : array-like of shape (len(train),), optional
            One finite weight >= 0 per interaction, aligned with ``train`` (its canonical
            order, as :func:`factorkit.time_decay` returns). The matrix factorized is
            ``W * R``: each entry's value (1 with ``binary=True``) is multiplied by its
            weight, and missing cells stay 0. PureSVD's objective is the squared error
            over *every* cell, so weighting an entry's error while the unobserved cells
            keep weight 1 would no longer be an SVD; scaling the value is the weighted
            analogue that keeps one: weight 0 makes the cell missing exactly as if the
            interaction were removed, weight 2 doubles its value (with ``binary=True``,
            as if the interaction were counted twice). A user's factors are ``(w * r_u)
            Q``; :meth:`fold_in` takes the (already weighted) values it is given. A
            weight-0 interaction still counts as seen: :meth:`recommend` leaves it out.
        """
        data = self._prepare_fit(train)
        weights = check_sample_weight(sample_weight, data, "PureSVD.fit")
        values = np.ones(len(data)) if self.binary else data.values
        if weights is not None:
            values = np.asarray(values, dtype=np.float64) * weights
        R = sp.csr_matrix(
            (values.astype(np.float32), data.item_index, data.indptr),
            shape=(data.n_users, data.n_items),
        )
        if weights is not None:
            R = R.copy()  # (the structure arrays are the data's, read-only)
            R.eliminate_zeros()  # weight 0: the cell is missing, not a stored 0
        check_rank(self.factors, R.shape, "PureSVD.fit")
        _, _, Vt = randomized_svd(
            R, self.factors, n_iter=self.n_iter, random_state=self.random_state,
            n_threads=self.n_threads,
        )  # fmt: skip
        self.item_factors_ = np.ascontiguousarray(Vt.T, dtype=np.float32)
        self.user_factors_ = np.asarray(R @ self.item_factors_, dtype=np.float32)
        self.user_bias_ = np.zeros(data.n_users)
        self.item_bias_ = np.zeros(data.n_items)
        self.global_mean_ = 0.0
        return self

    def fold_in(self, items: Any, ratings: Any = None) -> FoldIn:
        """A new user's factors by projection: ``r Q`` over the rated items (ratings
        default to 1)."""
        self._check_fitted("fold_in")
        if ratings is None or self.binary:
            ratings = np.ones(len(np.atleast_1d(items)))
        pos, r = self._fold_in_inputs(items, ratings)
        factors = r.astype(np.float64) @ self.item_factors_[pos].astype(np.float64)
        return FoldIn(factors=factors.astype(np.float32), bias=0.0)
