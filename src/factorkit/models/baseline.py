"""BaselineOnly: global mean plus user and item biases, by regularised alternating least squares."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from factorkit._threads import single_thread_blas
from factorkit._validation import LOOP_CONSTRAINTS, Interval
from factorkit.data.interactions import Interactions
from factorkit.models._factor import FactorModel
from factorkit.models._fold_in import FoldInMixin
from factorkit.models._partial import PartialFitMixin
from factorkit.models._recommend import RecommendMixin
from factorkit.models._training import Trainer, fit_trainer

__all__ = ["BaselineOnly"]


class BaselineOnly(RecommendMixin, FoldInMixin, PartialFitMixin, FactorModel):
    """Predict ``mu + b_u + b_i``: the rating baseline every factor model builds on.

    The biases minimise ``sum (r - mu - b_u - b_i)^2 + lu * sum b_u^2 + li * sum b_i^2``
    by alternating exact least-squares updates (Koren, "Factor in the neighbors", 2010),
    items first, then users, each epoch.

    Parameters
    ----------
    epochs : int, default 10
        Alternating sweeps over items and users.
    regularization : float, default 3.0
        ``li``, the shrinkage of item biases towards zero (in units of ratings: an item
        with ``n`` ratings keeps ``n / (n + li)`` of its mean deviation).
    user_regularization : float, default 5.0
        ``lu`` for user biases. Both defaults come from 5-fold cross-validation on
        MovieLens small (RMSE 0.864; Surprise's 15 / 10 give 0.872).
    progress : bool, default False
        Show a progress bar over epochs.
    callbacks : callable or list of callables, optional
        Called after each epoch with a record dict; see :mod:`factorkit.models`.
    early_stopping : int, optional
        Patience in epochs on the validation RMSE; needs ``fit(train, validation=...)``.

    Attributes
    ----------
    global_mean_ : float
    user_bias_, item_bias_ : numpy.ndarray
    history_ : pandas.DataFrame
        One row per epoch: ``epoch``, ``loss`` (regularised objective per rating, or per
        unit of ``sample_weight``),
        ``val_rmse`` with validation data, ``elapsed`` seconds.

    Examples
    --------
    >>> import factorkit as fk
    >>> data = fk.datasets.load_movielens_small()
    >>> train, test = fk.split.random(data, test_size=0.2, random_state=0)
    >>> model = fk.BaselineOnly().fit(train)
    >>> round(fk.evaluate(model, test, metrics=["rmse"])["rmse"], 2)
    0.86
    """

    _tags: ClassVar[dict[str, Any]] = {
        "iterative": True,
        "cli_name": "baseline",
        "search_space": {
            "epochs": {"randint": [5, 20]},
            "regularization": {"loguniform": [0.5, 20.0]},
            "user_regularization": {"loguniform": [0.5, 20.0]},
        },
        "search_grid": {
            "regularization": [1.0, 3.0, 10.0],
            "user_regularization": [2.0, 5.0, 10.0],
        },
    }
    _parameter_constraints: ClassVar[dict[str, Any]] = {
        "epochs": Interval(int, 1, None),
        "regularization": Interval(float, 0, None),
        "user_regularization": Interval(float, 0, None),
        **LOOP_CONSTRAINTS,
    }

    def __init__(
        self,
        epochs: int = 10,
        regularization: float = 3.0,
        user_regularization: float = 5.0,
        progress: bool = False,
        callbacks: Any = None,
        early_stopping: int | bool | None = None,
    ) -> None:
        self.epochs = epochs
        self.regularization = regularization
        self.user_regularization = user_regularization
        self.progress = progress
        self.callbacks = callbacks
        self.early_stopping = early_stopping

    def _user_reg(self) -> float:
        return float(self.user_regularization)

    def fit(
        self,
        train: Interactions,
        validation: Interactions | None = None,
        *,
        sample_weight: Any = None,
    ) -> BaselineOnly:
        """Learn the biases from ``train``; returns ``self``.

        Parameters
        ----------
        train : Interactions
            Explicit ratings.
        validation : Interactions, optional
            Held-out ratings scored (RMSE) after every epoch; needed for
            ``early_stopping``.
        sample_weight : array-like of shape (len(train),), optional
            One finite weight >= 0 per rating, aligned with ``train`` (its canonical
            order, as :func:`factorkit.time_decay` returns). The objective becomes
            ``sum w (r - mu - b_u - b_i)^2 + lu sum b_u^2 + li sum b_i^2`` with ``mu`` the
            weighted mean: weight 0 is exactly a missing rating, weight 2 exactly a
            duplicated one.
        """
        data, weights = self._prepare_weighted_fit(train, validation, sample_weight)
        if weights is None:
            self.global_mean_ = float(data.values.astype(np.float64).mean())
        else:
            self.global_mean_ = float(np.average(data.values.astype(np.float64), weights=weights))
        self.user_bias_ = np.zeros(data.n_users)
        self.item_bias_ = np.zeros(data.n_items)
        self.user_factors_ = np.zeros((data.n_users, 0), dtype=np.float32)
        self.item_factors_ = np.zeros((data.n_items, 0), dtype=np.float32)
        trainer = _BiasTrainer(self, data, validation, weights)
        # One BLAS thread: the epoch's only BLAS calls are dot products of rating-length
        # vectors, memory-bound, which OpenBLAS splits over its threads above 10,000
        # elements; its idle threads then spin while NumPy's single-threaded bincounts
        # run, and on a busy machine they take the core those need: 76 ms a fit against
        # 18 ms with one thread, with one other job beside it (docs/benchmarks.md, issue
        # 11 item 1). The same rule on any machine and data, so results never depend on
        # the load.
        with single_thread_blas():
            self.history_ = fit_trainer(trainer, self.epochs)
        return self

    def _row_regularization(self, n_ratings: int, side: str) -> float:
        return self._user_reg() if side == "user" else float(self.regularization)

    def _fold_in_regularization(self, n_ratings: int) -> float:
        return self._user_reg()


class _BiasTrainer(Trainer):
    """Alternating exact bias updates: items, then users, each epoch."""

    state_names = ("user_bias_", "item_bias_")
    diverge_hint = "regularization"

    def __init__(
        self, model: BaselineOnly, data: Interactions, validation: Any, weights: Any
    ) -> None:
        super().__init__(model)
        self.u, self.i = data.user_index, data.item_index
        self.r = data.values.astype(np.float64)
        self.w = weights  # None: every weight 1, the unweighted arithmetic exactly
        self.n_users, self.n_items = data.n_users, data.n_items
        # (weighted) rating counts: the denominators of the exact bias updates
        self.n_u = np.bincount(self.u, weights=weights, minlength=self.n_users).astype(np.float64)
        self.n_i = np.bincount(self.i, weights=weights, minlength=self.n_items).astype(np.float64)
        self.total = float(len(self.r)) if weights is None else float(weights.sum())
        self.val = None if validation is None else model._validation_positions(validation)
        self.has_validation = self.val is not None

    def epoch(self, epoch: int) -> float:
        m = self.model
        u, i, r, mu = self.u, self.i, self.r, m.global_mean_
        li, lu = float(m.regularization), m._user_reg()
        bu, w = m.user_bias_, self.w
        if w is None:
            bi = np.bincount(i, weights=r - mu - bu[u], minlength=self.n_items) / (li + self.n_i)
            bu = np.bincount(u, weights=r - mu - bi[i], minlength=self.n_users) / (lu + self.n_u)
            err = r - mu - bu[u] - bi[i]
            sse = err @ err
        else:
            # a row whose weights are all 0 (with li or lu = 0) has 0 / 0: bias 0
            with np.errstate(invalid="ignore", divide="ignore"):
                bi = np.bincount(i, weights=w * (r - mu - bu[u]), minlength=self.n_items)
                bi = np.nan_to_num(bi / (li + self.n_i), nan=0.0, posinf=0.0, neginf=0.0)
                bu = np.bincount(u, weights=w * (r - mu - bi[i]), minlength=self.n_users)
                bu = np.nan_to_num(bu / (lu + self.n_u), nan=0.0, posinf=0.0, neginf=0.0)
            err = r - mu - bu[u] - bi[i]
            sse = err @ (w * err)
        m.user_bias_, m.item_bias_ = bu, bi
        return float((sse + lu * bu @ bu + li * bi @ bi) / self.total)

    def validate(self) -> float:
        return self.model._rmse_on(*self.val)
