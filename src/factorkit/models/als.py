"""ALS: explicit-rating alternating least squares with biases and weighted-lambda
regularisation (ALS-WR)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from factorkit._validation import (
    TRAINING_CONSTRAINTS,
    Boolean,
    Interval,
)
from factorkit.data.interactions import Interactions
from factorkit.data.weights import weights_by_item
from factorkit.exceptions import DivergenceError
from factorkit.kernels.als import als_solve_rows
from factorkit.kernels.linalg import nnls_solve
from factorkit.models._backend import (
    fit_backend_options,
    fit_distributed,
    is_distributed,
    reject_distributed_weights,
)
from factorkit.models._factor import FactorModel
from factorkit.models._fold_in import FoldInMixin
from factorkit.models._init import normal_factors
from factorkit.models._partial import PartialFitMixin
from factorkit.models._recommend import RecommendMixin
from factorkit.models._similar import SimilarMixin
from factorkit.models._training import Trainer, fit_trainer

__all__ = ["ALS"]


class ALS(RecommendMixin, SimilarMixin, FoldInMixin, PartialFitMixin, FactorModel):
    """Biased matrix factorization of explicit ratings by alternating least squares.

    Predicts ``r_ui = mu + b_u + b_i + p_u . q_i`` and minimises

    ``sum (r_ui - r_hat_ui)^2 + sum_u lam_u (|p_u|^2 + b_u^2) + sum_i lam_i (|q_i|^2 + b_i^2)``

    with ``lam_u = regularization * n_u`` and ``lam_i = regularization * n_i`` (``n`` the
    number of ratings: the weighted-lambda rule of ALS-WR, Zhou et al. 2008). Each epoch
    solves every user exactly with the items fixed, then every item with the users fixed:
    the bias is solved jointly with the factors, as one ridge problem in ``[b_u, p_u]``
    against ``[1, q_i]`` with target ``r_ui - mu - b_i``. ``mu`` is the training mean.
    Rows are solved in parallel by Cholesky; long-tail rows with fewer ratings than
    ``factors + 1`` use the equivalent, smaller dual system. Given the initial item
    factors the result is deterministic whatever the thread count.

    Parameters
    ----------
    factors : int, default 50
        Latent dimension ``k``.
    epochs : int, default 10
        Alternating sweeps (one users step plus one items step each).
    regularization : float, default 0.1
        ``lam`` (> 0). Multiplied by each row's rating count when
        ``weighted_regularization`` is true.
    weighted_regularization : bool, default True
        ALS-WR's ``lam * n`` scaling; with False every row gets the same ``lam``, so
        useful values are larger (around ``regularization * mean ratings per row``).
    init_scale : float, default 0.1
        Standard deviation of the random initial item factors (users are solved first).
    nonnegative : bool, default False
        Hold every factor entry ``>= 0`` (Spark MLlib's ``nonnegative=True``; the biases
        stay unconstrained). Each row's problem is then non-negative least squares on the
        same normal equations, solved exactly (up to rounding) by block principal
        pivoting: Cholesky solves of sub-systems until the KKT conditions hold, at most
        ``4 (k+1) + 10`` of them, with a projected coordinate-descent fallback beyond
        that bound (see :func:`factorkit.kernels.linalg.nnls_solve`); each row's
        current zeros are the first guess of the active set. Initial item factors are
        the absolute values of the normal draw, and every row uses the primal solve.
        ``fold_in`` and ``partial_fit`` apply the same constraint.
    random_state : None, int or numpy.random.Generator
        Seed for the initial item factors.
    n_threads : int, optional
        Threads for the row solves; ``None`` uses every core. Results do not depend on it.
    progress : bool, default False
        Show a progress bar over epochs.
    callbacks : callable or list of callables, optional
        Called after each epoch with a record dict; see :mod:`factorkit.models`.
    early_stopping : int or True, optional
        Patience in epochs on the validation RMSE (``True`` means 3); needs
        ``fit(train, validation=...)``. The best epoch's factors are kept.

    Attributes
    ----------
    user_factors_, item_factors_ : numpy.ndarray of float32, (n_users, k), (n_items, k)
    user_bias_, item_bias_ : numpy.ndarray of float32
    global_mean_ : float
    history_ : pandas.DataFrame
        One row per epoch: ``epoch``, ``loss`` (the regularised objective above divided
        by the number of ratings, or the sum of ``sample_weight``, after the epoch),
        ``val_rmse`` with validation data, ``elapsed`` seconds.

    See Also
    --------
    BiasedMF : the same model fitted by stochastic gradient descent.

    Notes
    -----
    One epoch costs about ``nnz (k+1)^2`` flops per side to build the Gram matrices plus
    ``(k+1)^3 / 3`` per row to factor them. ``fold_in`` solves the same weighted problem
    for a new user; ``partial_fit(new_data)`` re-solves the users and items that
    ``new_data`` touches against all their ratings (``epochs`` alternations, default 2).

    The biases carry the same penalty ``lam_u`` / ``lam_i`` as the factors, with no
    separate parameter: in 5-fold CV on MovieLens small a separate bias penalty (0.03 or
    0.3 next to ``regularization=0.1``) was worse (RMSE 0.857 and 0.858 against 0.852), and
    one penalty keeps :meth:`fold_in` the exact single-user version of the training step.

    With ``nonnegative=True`` the RMSE is a little higher (on MovieLens small, 80/20
    split, ``factors=50``, 10 epochs: 0.868 against 0.849 unconstrained; about 70% of
    the factor entries are 0) in exchange for factors that read as additive parts; an
    epoch takes about 2.5x as long (docs/benchmarks.md).

    Examples
    --------
    >>> import factorkit as fk
    >>> data = fk.datasets.load_movielens_small()
    >>> train, test = fk.split.random(data, test_size=0.2, random_state=0)
    >>> model = fk.ALS(factors=50, epochs=10, regularization=0.1, random_state=0).fit(train)
    >>> round(fk.evaluate(model, test, metrics=["rmse"])["rmse"], 2)
    0.85
    >>> item_ids, scores = model.recommend(1, k=3)
    >>> len(item_ids)
    3
    >>> new_user = model.fold_in([1, 260, 1196], ratings=[5.0, 4.5, 5.0])
    >>> new_user.factors.shape
    (50,)
    >>> nn = fk.ALS(factors=8, epochs=3, nonnegative=True, random_state=0).fit(train)
    >>> folded = nn.fold_in([1, 260], ratings=[5.0, 1.0])
    >>> bool((nn.item_factors_ >= 0).all() and (folded.factors >= 0).all())
    True
    """

    _tags: ClassVar[dict[str, Any]] = {
        "iterative": True,
        "cli_name": "als",
        "search_space": {
            "factors": {"loguniform_int": [20, 200]},
            "epochs": {"randint": [5, 20]},
            "regularization": {"loguniform": [0.03, 0.3]},
        },
        "search_grid": {"factors": [20, 50, 100], "regularization": [0.05, 0.1, 0.2]},
    }
    _parameter_constraints: ClassVar[dict[str, Any]] = {
        "factors": Interval(int, 1, None),
        "epochs": Interval(int, 1, None),
        "regularization": Interval(float, 0, None, closed="neither"),
        "weighted_regularization": Boolean(),
        "nonnegative": Boolean(),
        "init_scale": Interval(float, 0, None, closed="neither"),
        **TRAINING_CONSTRAINTS,
    }

    def __init__(
        self,
        factors: int = 50,
        epochs: int = 10,
        regularization: float = 0.1,
        weighted_regularization: bool = True,
        init_scale: float = 0.1,
        nonnegative: bool = False,
        random_state: Any = None,
        n_threads: int | None = None,
        progress: bool = False,
        callbacks: Any = None,
        early_stopping: int | bool | None = None,
    ) -> None:
        self.factors = factors
        self.epochs = epochs
        self.regularization = regularization
        self.weighted_regularization = weighted_regularization
        self.init_scale = init_scale
        self.nonnegative = nonnegative
        self.random_state = random_state
        self.n_threads = n_threads
        self.progress = progress
        self.callbacks = callbacks
        self.early_stopping = early_stopping

    def _penalty(self, factors: np.ndarray, bias: np.ndarray, counts: np.ndarray) -> float:
        """``sum_r w_r lam (|x_r|^2 + b_r^2)`` of one side (``w_r = n_r``, or 1 unweighted)."""
        sq = np.einsum("ij,ij->i", factors, factors, dtype=np.float64)
        b2 = bias.astype(np.float64) ** 2
        terms = float(self.regularization) * (sq + b2)
        if self.weighted_regularization:
            return float(terms @ counts)
        return float(terms.sum())

    def fit(
        self,
        train: Interactions,
        validation: Interactions | None = None,
        *,
        sample_weight: Any = None,
        **backend: Any,
    ) -> ALS:
        """Learn factors and biases from ``train``; returns ``self``.

        Parameters
        ----------
        train : Interactions
            Explicit ratings.
        validation : Interactions, optional
            Held-out ratings scored (RMSE) after every epoch, for ``history_`` and
            ``early_stopping``.
        sample_weight : array-like of shape (len(train),), optional
            One finite weight >= 0 per rating, aligned with ``train`` (its canonical
            order, as :func:`factorkit.time_decay` returns). The squared errors become
            ``sum w (r - r_hat)^2``, ``mu`` the weighted mean, and the weighted-lambda
            counts ``n_u``, ``n_i`` the sums of weights: weight 0 is exactly a missing
            rating, weight 2 exactly a duplicated one. Not on the Dask backend.
        **backend
            For :class:`factorkit.distributed.DistributedInteractions` only:
            ``checkpoint_dir``, ``resume`` and ``exchange`` of
            :func:`factorkit.distributed.fit`, which trains on the data's Dask cluster.
        """
        if is_distributed(train):  # the data's type picks the backend
            reject_distributed_weights(self, sample_weight)
            return fit_distributed(self, train, validation, backend)
        fit_backend_options(self, backend)
        data, weights = self._prepare_weighted_fit(train, validation, sample_weight)
        trainer = _ALSTrainer(self, data, validation, weights)
        rng = np.random.default_rng(self.random_state)
        if weights is None:
            self.global_mean_ = float(np.mean(trainer.u_val, dtype=np.float64))
        else:
            self.global_mean_ = float(np.average(trainer.u_val.astype(np.float64), weights=weights))
        self.item_factors_ = normal_factors(
            rng, data.n_items, int(self.factors), float(self.init_scale), n_threads=self._n_threads
        )
        if self.nonnegative:  # the first half-step starts from feasible item factors
            np.abs(self.item_factors_, out=self.item_factors_)
        self.user_factors_ = np.zeros((data.n_users, int(self.factors)), dtype=np.float32)
        self.user_bias_ = np.zeros(data.n_users, dtype=np.float32)
        self.item_bias_ = np.zeros(data.n_items, dtype=np.float32)
        self.history_ = fit_trainer(trainer, self.epochs)
        return self

    def _fold_in_regularization(self, n_ratings: int) -> float:
        if self.weighted_regularization:
            return float(self.regularization) * n_ratings
        return float(self.regularization)

    def _ridge_solve(self, gram: np.ndarray, rhs: np.ndarray) -> np.ndarray:
        """``fold_in``'s and ``partial_fit``'s row solve: with ``nonnegative``, the
        training kernel's non-negative least squares (``[b, x]``: the bias stays free)."""
        sol = np.linalg.solve(gram, rhs)
        if not self.nonnegative or not (sol[1:] < 0).any():
            return sol
        return _nnls_row_solve(gram, rhs, sol)


def _nnls_row_solve(gram: np.ndarray, rhs: np.ndarray, start: np.ndarray) -> np.ndarray:
    """:func:`~factorkit.kernels.linalg.nnls_solve` of one ``[b, x]`` system from Python
    (float64, C-ordered: the training kernel's argument types, one compilation)."""
    m = len(rhs)
    a = np.ascontiguousarray(gram, dtype=np.float64)
    b = np.ascontiguousarray(rhs, dtype=np.float64)
    s = np.array(start, dtype=np.float64)
    free = np.empty(2 * m, dtype=np.int64)
    scratch = (np.empty((m, m)), np.empty(m), np.empty(m), np.empty((m, m)))
    status = nnls_solve(a, m, 1, b, s, 4 * m + 10, free, *scratch)
    if status < 0:
        raise DivergenceError(
            "ALS: a non-negative row system is not numerically positive definite; "
            "increase regularization"
        )
    return s


class _ALSTrainer(Trainer):
    """Each epoch solves every user with the items fixed, then every item."""

    state_names = ("user_factors_", "item_factors_", "user_bias_", "item_bias_")
    diverge_hint = "regularization"

    def __init__(
        self, model: ALS, data: Interactions, validation: Any, weights: np.ndarray | None
    ) -> None:
        super().__init__(model)
        # the user side reads the data's own arrays; the item side is one transposition
        # (8 bytes per rating, freed after fit; the data's to_csc() cache when it has one)
        self.u_ptr = np.asarray(data.indptr, dtype=np.int64)
        self.u_idx = np.asarray(data.item_index, dtype=np.int32)
        self.u_val = np.asarray(data.values, dtype=np.float32)
        self.i_ptr, self.i_idx, self.i_val = data._item_major()
        if weights is None:
            # empty weights: the kernels' unweighted arithmetic, one compiled signature
            self.u_w = self.i_w = np.zeros(0)
            self.n_u = np.diff(self.u_ptr).astype(np.float64)
            self.total = float(len(self.u_val))
        else:
            # the canonical order is CSR's (user-major); the item side reads CSC's
            self.u_w = np.ascontiguousarray(weights, dtype=np.float64)
            self.i_w = weights_by_item(data, self.u_w)
            self.n_u = np.bincount(data.user_index, weights=self.u_w, minlength=data.n_users)
            self.total = float(self.u_w.sum())
        self.n_threads = model._n_threads
        self.val = None if validation is None else model._validation_positions(validation)
        self.has_validation = self.val is not None

    def epoch(self, epoch: int) -> float:
        m = self.model
        mu, lam, weighted = m.global_mean_, float(m.regularization), bool(m.weighted_regularization)
        nonneg = bool(m.nonnegative)
        als_solve_rows(
            self.u_ptr, self.u_idx, self.u_val, self.u_w, m.item_factors_, m.item_bias_, mu,
            lam, lam, weighted, nonneg, m.user_factors_, m.user_bias_,
        )  # fmt: skip
        items_obj = als_solve_rows(
            self.i_ptr, self.i_idx, self.i_val, self.i_w, m.user_factors_, m.user_bias_, mu,
            lam, lam, weighted, nonneg, m.item_factors_, m.item_bias_,
        )  # fmt: skip
        penalty = m._penalty(m.user_factors_, m.user_bias_, self.n_u)
        return (items_obj + penalty) / self.total

    def validate(self) -> float:
        return self.model._rmse_on(*self.val)
