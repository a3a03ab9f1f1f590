"""NonNegativeMF: explicit ratings as a product of non-negative factors.

The masked NMF of :mod:`factorkit.decomposition` (coordinate descent on each row's own
observed entries; missing ratings take no part in the loss) on the user x item rating
matrix, as Luo et al. (2014) and Surprise's ``NMF`` model ratings, with a ridge penalty.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from factorkit._validation import Interval, RandomState, Threads
from factorkit.data.interactions import Interactions
from factorkit.data.weights import check_sample_weight
from factorkit.decomposition._checks import check_rank
from factorkit.decomposition._nmf import _fit
from factorkit.exceptions import DataError
from factorkit.kernels.nmf import nmf_masked_cd_rows
from factorkit.models._factor import FactorModel
from factorkit.models._fold_in import FoldIn, FoldInMixin
from factorkit.models._recommend import RecommendMixin
from factorkit.models._similar import SimilarMixin

__all__ = ["NonNegativeMF"]


class NonNegativeMF(RecommendMixin, SimilarMixin, FoldInMixin, FactorModel):
    """Rating prediction ``r_ui ~ p_u . q_i`` with ``p_u, q_i >= 0``, missing entries ignored.

    Minimises ``0.5 sum_{observed} (r_ui - p_u . q_i)^2 + 0.5 regularization (n_u |p_u|^2
    + n_i |q_i|^2)`` (``n_u``, ``n_i``: rating counts; a penalty per rating, as SGD's weight
    decay and Surprise's NMF) by ``epochs`` sweeps of coordinate descent.
    Non-negative factors are parts: each factor adds to a rating, none subtracts.
    Predictions are clipped to the training rating scale. ``fit(train, sample_weight=w)``
    weighs each rating's squared error (and its share of the penalty) by ``w``.

    Parameters
    ----------
    factors : int, default=15
    epochs : int, default=50
    regularization : float, default=0.2
        Ridge strength per rating.
    random_state, n_threads :
        Seed of the initialization and threads (None: all cores).

    Examples
    --------
    >>> import factorkit as fk
    >>> from factorkit.models.nonnegative_mf import NonNegativeMF
    >>> data = fk.Interactions.from_arrays(["a", "a", "b", "b"], [1, 2, 1, 2], [5, 3, 4, 2])
    >>> model = NonNegativeMF(factors=1, random_state=0).fit(data)
    >>> bool(abs(model.predict(["a"], [1])[0] - 5) < 0.6)
    True
    """

    _tags: ClassVar[dict[str, Any]] = {"feedback": "explicit", "cli_name": "nonnegative-mf"}
    _parameter_constraints: ClassVar[dict[str, Any]] = {
        "factors": Interval(int, 1),
        "epochs": Interval(int, 1),
        "regularization": Interval(float, 0),
        "random_state": RandomState(),
        "n_threads": Threads(),
    }

    def __init__(
        self,
        factors: int = 15,
        *,
        epochs: int = 50,
        regularization: float = 0.2,
        random_state: Any = None,
        n_threads: int | None = None,
    ) -> None:
        self.factors = factors
        self.epochs = epochs
        self.regularization = regularization
        self.random_state = random_state
        self.n_threads = n_threads

    def fit(self, train: Interactions, *, sample_weight: Any = None) -> NonNegativeMF:
        """Fit the non-negative factors on the observed ratings; returns ``self``.

        Parameters
        ----------
        train : Interactions
        sample_weight : array-like of shape (len(train),), optional
            One finite weight >= 0 per rating, aligned with ``train`` (its canonical
            order, as :func:`factorkit.time_decay` returns). The objective becomes
            ``0.5 sum_{observed} w_ui (r_ui - p_u . q_i)^2 + 0.5 regularization (n_u
            |p_u|^2 + n_i |q_i|^2)`` with ``n_u``, ``n_i`` the sums of the row's and the
            column's weights: a rating of weight 2 counts exactly as the same rating
            given twice (in the loss and in the per-rating penalty), and a rating of
            weight 0 is left out of the fit, initialization included, as if removed (it
            still counts as seen: :meth:`recommend` leaves it out). The initialization
            (NNDSVDa) reads the positive-weight ratings unweighted. ``fallback_`` (the
            prediction for unknown users and items) is the weighted mean rating.
        """
        data = self._prepare_fit(train)
        weights = check_sample_weight(sample_weight, data, "NonNegativeMF.fit")
        if len(data) and float(data.values.min()) < 0:
            raise DataError(
                f"NonNegativeMF.fit: ratings must be non-negative; the smallest is "
                f"{float(data.values.min()):g}. Shift the rating scale (e.g. r - min(r))."
            )
        m, n = data.n_users, data.n_items
        check_rank(self.factors, (m, n), "NonNegativeMF.fit")
        obs = sp.csr_matrix(
            (data.values.astype(np.float32), data.item_index, data.indptr), shape=(m, n)
        )
        mask = sp.csr_matrix((np.ones(len(data), dtype=bool), data.item_index, data.indptr),
                             shape=(m, n))  # fmt: skip
        params = {
            "factors": self.factors, "init": "nndsvda", "solver": "cd", "loss": "frobenius",
            "tol": 0.0, "max_iter": self.epochs, "alpha_W": 0.0, "alpha_H": "same",
            "l1_ratio": 0.0, "random_state": self.random_state, "n_threads": self.n_threads,
            "dtype": np.float32, "verbose": False, "l2_count": self.regularization,
        }  # fmt: skip
        if weights is not None:
            params["weights"] = sp.csr_matrix((weights, data.item_index, data.indptr),
                                              shape=(m, n))  # fmt: skip
        W, H, _, _ = _fit(obs, None, None, params, True, mask, "NonNegativeMF.fit")
        self.user_factors_ = np.ascontiguousarray(W, dtype=np.float32)
        self.item_factors_ = np.ascontiguousarray(H.T, dtype=np.float32)
        self.user_bias_ = np.zeros(m)
        self.item_bias_ = np.zeros(n)
        self.global_mean_ = 0.0
        self.fallback_ = float(np.average(data.values, weights=weights))
        return self

    _state_scalars: ClassVar[tuple[str, ...]] = (*FactorModel._state_scalars, "fallback_")

    def _score_positions(self, u: np.ndarray, i: np.ndarray, clip: bool) -> np.ndarray:
        """``p_u . q_i`` for known pairs; the training mean rating when the user or the
        item is unknown (there is no bias to fall back on, and 0 is not a rating)."""
        scores = np.full(len(u), self.fallback_, dtype=np.float64)
        both = (u >= 0) & (i >= 0)
        if both.any():
            scores[both] = np.einsum(
                "ij,ij->i",
                self.user_factors_[u[both]].astype(np.float64),
                self.item_factors_[i[both]].astype(np.float64),
            )
        if clip:
            np.clip(scores, self.rating_scale_[0], self.rating_scale_[1], out=scores)
        return scores

    def fold_in(self, items: Any, ratings: Any = None) -> FoldIn:
        """A new user's non-negative factors from a few ratings (items held fixed)."""
        self._check_fitted("fold_in")
        pos, r = self._fold_in_inputs(items, ratings)
        w = np.full((1, self.factors), np.sqrt(max(float(np.mean(r)), 0.0) / self.factors),
                    dtype=np.float32)  # fmt: skip
        order = np.argsort(pos)
        # int32 offsets, as scipy gives fit: one compilation of the kernel, not two
        indptr = np.array([0, len(pos)], dtype=np.int32)
        nmf_masked_cd_rows(
            indptr, pos[order].astype(np.int32), r[order].astype(np.float32),
            np.empty(0, dtype=np.float32), w,
            self.item_factors_, np.float32(0.0), np.float32(0.0),
            np.float32(self.regularization), 50,
        )  # fmt: skip
        return FoldIn(factors=w[0], bias=0.0)
