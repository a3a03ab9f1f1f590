"""BiasedMF: biased matrix factorization of explicit ratings by parallel SGD."""

from __future__ import annotations

import time
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from factorkit._threads import AdaptiveWorkers, single_thread_blas, using_threads
from factorkit._validation import (
    TRAINING_CONSTRAINTS,
    Boolean,
    Interval,
    Options,
)
from factorkit.data.interactions import Interactions
from factorkit.kernels.sgd import (
    sgd_arrange,
    sgd_epoch,
    sgd_epoch_adaptive,
    sgd_interleave,
    sgd_partition,
    sgd_penalty,
    sgd_schedule,
)
from factorkit.models._backend import (
    fit_backend_options,
    fit_distributed,
    is_distributed,
    reject_distributed_weights,
)
from factorkit.models._factor import FactorModel, gather_rows
from factorkit.models._fold_in import FoldInMixin
from factorkit.models._init import normal_factors
from factorkit.models._partial import (
    Extension,
    PartialFitMixin,
    solve_rows,
    untouched_rows_kept,
)
from factorkit.models._recommend import RecommendMixin
from factorkit.models._similar import SimilarMixin
from factorkit.models._training import Trainer, fit_trainer

__all__ = ["BiasedMF"]

#: the grid is at least this many blocks per side; it must not depend on the thread count
#: (below 8 threads) for results to be identical across thread counts
_MIN_BLOCKS = 16
#: ratings per thread below which another thread costs more (its start and its waits for
#: blocks, each epoch) than it saves; the thread count never changes the result
#: (measurements: docs/benchmarks.md, "Kernel design notes")
_MIN_RATINGS_PER_THREAD = 10_000
#: factor rows are padded to a multiple of this many floats while training
_LANES = 32
#: within a block, updates run round-robin over the block's users (independent updates
#: back to back) when one user group's factor rows fit in a core's L2 cache; otherwise
#: user by user, so that each row streams in once (docs/benchmarks.md)
_INTERLEAVE_MAX_GROUP_BYTES = 256 << 10


def _n_blocks(n_threads: int) -> int:
    return max(_MIN_BLOCKS, 2 * n_threads)


def _threads_for(n_ratings: int, n_threads: int) -> int:
    return max(1, min(n_threads, n_ratings // _MIN_RATINGS_PER_THREAD))


class BiasedMF(RecommendMixin, SimilarMixin, FoldInMixin, PartialFitMixin, FactorModel):
    """Biased matrix factorization: predict ``mu + b_u + b_i + p_u . q_i``, fit by SGD.

    The model of Koren, Bell & Volinsky ("Matrix factorization techniques for
    recommender systems", 2009), the one Surprise calls ``SVD``. It minimises

    ``sum (r_ui - mu - b_u - b_i - p_u . q_i)^2 + reg * (b_u^2 + b_i^2 + |p_u|^2 + |q_i|^2)``

    over the training ratings by stochastic gradient descent, with ``mu`` fixed to the
    training mean. Epochs run in parallel on all cores without locks (libmf's block
    scheduling, see :mod:`factorkit.kernels.sgd`); results are bit-for-bit identical for a
    fixed ``random_state`` whatever ``n_threads`` is (up to 8 threads).

    Parameters
    ----------
    factors : int, default 100
        Latent dimensions ``k``.
    epochs : int, default 30
        Passes over the training ratings.
    learning_rate : float, default 0.1
        SGD step size in the first epoch: with the adaptive schedule, the step of a row
        whose accumulator is still 1 (its first rating); with ``"decay"``, of every
        update (0.03 suits it: the default before the adaptive schedule).
    regularization : float, default 0.1
        ``reg``, applied with every rating to the factors and biases it touches.
    biased : bool, default True
        Learn ``b_u`` and ``b_i``. With False the model is Funk's plain MF on
        mean-centred ratings, ``mu + p_u . q_i``: unlike Surprise's ``SVD(biased=False)``
        the global mean is kept, so factors model deviations from it, small initial
        factors start from a sensible prediction, and unknown users or items fall back
        to ``mu``.
    init_scale : float, default 0.1
        Standard deviation of the normal initial factors (biases start at zero).
    learning_rate_decay : float, default 0.95
        Epoch ``t`` (from 0) runs at ``learning_rate * learning_rate_decay**t``, under
        either schedule. 1.0 keeps it constant.
    learning_rate_schedule : {"adaptive", "decay"}, default "adaptive"
        ``"adaptive"``: libmf's per-row schedule (Chin, Zhuang, Juan & Lin, PAKDD 2015), a
        form of AdaGrad. Every user and every item keeps ``G``, one plus the sum of the
        squared gradients of its factor row (averaged over the ``k`` coordinates) over
        its updates so far, and steps ``lr_t / sqrt(G)``; its bias has an accumulator
        of its own. Rows with many ratings slow down sooner than rare ones.
        ``"decay"``: every update steps ``lr_t``. With ``learning_rate_decay=1.0`` this
        is the constant step of Surprise's ``SVD``, for like-for-like comparisons.
    random_state : int, numpy.random.Generator or None
        Seed of the initial factors, the grid and the per-epoch block schedule.
    n_threads : int, optional
        Threads for training (default: all cores). Small data sets train on fewer (one
        per 10,000 ratings): below that another thread costs more than it saves. The
        thread count never changes the result.
    progress : bool, default False
        Show a progress bar over epochs.
    callbacks : callable or list of callables, optional
        Called after each epoch with a record dict; see :mod:`factorkit.models`.
    early_stopping : int or True, optional
        Patience in epochs on the validation RMSE (True means 3); needs
        ``fit(train, validation=...)``. The best epoch's parameters are kept.

    Attributes
    ----------
    user_factors_, item_factors_ : numpy.ndarray of float32, (n_users, k), (n_items, k)
    user_bias_, item_bias_ : numpy.ndarray of float32
        Zeros when ``biased=False``.
    global_mean_ : float
    history_ : pandas.DataFrame
        One row per epoch: ``epoch``, ``loss`` (the regularised objective per rating;
        squared errors are taken during the epoch, each before its update), ``val_rmse``
        with validation data, ``elapsed`` seconds.

    Notes
    -----
    The defaults were chosen by 5-fold cross-validation on MovieLens latest-small, where
    they reach an RMSE of 0.848 (Surprise's ``SVD`` defaults -- 20 epochs, learning rate
    0.005, regularization 0.02 -- give 0.873), fitting in a fraction of a second per fold,
    and on a 10M-rating synthetic set, where the adaptive schedule is ahead of libmf's at
    every epoch and of the per-epoch decay alone by most in the first ten epochs
    (docs/benchmarks.md, "SGD learning-rate schedule vs libmf"). Stronger regularization
    than Surprise's with a larger step converges faster and further.

    Users and items are stored in a random order chosen by ``random_state`` (the training
    layout), so ``user_map_``/``item_map_`` differ from the training data's maps; raw ids
    in and out are unaffected.

    ``partial_fit(new_data, epochs=None)`` solves new users and items by the per-row
    least-squares problem of :meth:`fold_in`, then runs ``epochs`` (default 5) SGD epochs
    over all ratings of the users that ``new_data`` touches, at the step size the next
    training epoch would have used (the adaptive schedule restarts its accumulators at
    1: they are not part of the fitted state); rows it does not touch keep their values.

    Examples
    --------
    >>> import factorkit as fk
    >>> data = fk.datasets.load_movielens_small()
    >>> train, test = fk.split.random(data, test_size=0.2, random_state=0)
    >>> model = fk.BiasedMF(random_state=0).fit(train)
    >>> round(fk.evaluate(model, test, metrics=["rmse"])["rmse"], 2)
    0.84
    >>> items, scores = model.recommend(1, k=3)
    >>> len(items)
    3
    """

    _partial_epochs: ClassVar[int] = 5
    _tags: ClassVar[dict[str, Any]] = {
        "iterative": True,
        "cli_name": "biased-mf",
        "search_space": {
            "factors": {"loguniform_int": [50, 200]},
            "epochs": {"randint": [20, 60]},
            "learning_rate": {"loguniform": [0.03, 0.2]},
            "regularization": {"loguniform": [0.05, 0.2]},
            "learning_rate_decay": {"uniform": [0.9, 0.99]},
        },
        "search_grid": {
            "factors": [50, 100, 200],
            "learning_rate": [0.05, 0.1],
            "regularization": [0.05, 0.1],
        },
    }
    _parameter_constraints: ClassVar[dict[str, Any]] = {
        "factors": Interval(int, 1, None),
        "epochs": Interval(int, 1, None),
        "learning_rate": Interval(float, 0, None, closed="neither"),
        "regularization": Interval(float, 0, None),
        "biased": Boolean(),
        "init_scale": Interval(float, 0, None),
        "learning_rate_decay": Interval(float, 0, 1, closed="right"),
        "learning_rate_schedule": Options(("adaptive", "decay")),
        **TRAINING_CONSTRAINTS,
    }

    def __init__(
        self,
        factors: int = 100,
        epochs: int = 30,
        learning_rate: float = 0.1,
        regularization: float = 0.1,
        biased: bool = True,
        init_scale: float = 0.1,
        learning_rate_decay: float = 0.95,
        learning_rate_schedule: str = "adaptive",
        random_state: int | np.random.Generator | None = None,
        n_threads: int | None = None,
        progress: bool = False,
        callbacks: Any = None,
        early_stopping: int | bool | None = None,
    ) -> None:
        self.factors = factors
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.biased = biased
        self.init_scale = init_scale
        self.learning_rate_decay = learning_rate_decay
        self.learning_rate_schedule = learning_rate_schedule
        self.random_state = random_state
        self.n_threads = n_threads
        self.progress = progress
        self.callbacks = callbacks
        self.early_stopping = early_stopping

    def fit(
        self,
        train: Interactions,
        validation: Interactions | None = None,
        *,
        sample_weight: Any = None,
        **backend: Any,
    ) -> BiasedMF:
        """Learn factors and biases from ``train``; returns ``self``.

        Parameters
        ----------
        train : Interactions
            Explicit ratings.
        validation : Interactions, optional
            Held-out ratings scored (RMSE) after every epoch; needed for
            ``early_stopping``.
        sample_weight : array-like of shape (len(train),), optional
            One finite weight >= 0 per rating, aligned with ``train`` (its canonical
            order, as :func:`factorkit.time_decay` returns). Each rating's term of the
            objective, its squared error and its share of the penalty, is multiplied by
            its weight, so every gradient from it is multiplied by ``w`` (the whole step
            is ``learning_rate * w`` under the ``"decay"`` schedule; weight 0: no update
            from that rating); ``mu`` is the weighted mean. Not on the Dask backend.
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
        rng = np.random.default_rng(self.random_state)
        trainer = _SGDTrainer(self, data, rng, validation, weights)
        self.history_ = fit_trainer(trainer, self.epochs)
        return self

    def _partial_update(self, ext: Extension, epochs: int) -> None:
        """Solve new rows, then SGD over the touched users' ratings (module docstring of
        :mod:`factorkit.models._partial`)."""
        with single_thread_blas():
            solve_rows(self, ext.new_users, "user")
            solve_rows(self, ext.new_items, "item")
        users = ext.touched_users
        ptr, items = gather_rows(self.seen_indptr_, self.seen_indices_, users)
        _, at = gather_rows(self.seen_indptr_, np.arange(len(self.seen_indices_)), users)
        rows = np.repeat(users, np.diff(ptr)).astype(np.int32)
        order = np.random.default_rng(self.random_state).permutation(len(rows))
        rows, items = rows[order], items[order].astype(np.int32)
        values = self.seen_values_[at[order]].astype(self.user_factors_.dtype)
        history = getattr(self, "history_", None)
        trained = 0 if history is None else len(history)
        lr = float(self.learning_rate) * float(self.learning_rate_decay) ** trained
        block_ptr = np.array([0, len(rows)], dtype=np.int64)
        P, Q, bu, bi = self.user_factors_, self.item_factors_, self.user_bias_, self.item_bias_
        no_weights, schedule = np.zeros(0, np.float32), np.zeros((1, 1), np.int64)
        reg, biased = float(self.regularization), bool(self.biased)
        adaptive = self.learning_rate_schedule == "adaptive"
        GP = np.ones((len(P), 2), dtype=np.float32)  # fresh accumulators (not fitted state)
        GQ = np.ones((len(Q), 2), dtype=np.float32)
        with untouched_rows_kept(self, ext), using_threads(1):
            for _ in range(epochs):
                if adaptive:
                    sgd_epoch_adaptive(
                        rows, items, values, no_weights, block_ptr, schedule, P, Q, bu, bi,
                        GP, GQ, self.global_mean_, lr, reg, biased, P.shape[1], np.zeros(1), 1,
                    )  # fmt: skip
                else:
                    sgd_epoch(
                        rows, items, values, no_weights, block_ptr, schedule, P, Q, bu, bi,
                        self.global_mean_, lr, reg, biased, np.zeros(1), 1,
                    )  # fmt: skip

    def _fold_in_regularization(self, n_ratings: int) -> float:
        # the SGD objective regularises once per rating: n * reg * |p|^2 for one user
        return float(self.regularization) * max(n_ratings, 1)


def _rows_values(data: Interactions, rows: np.ndarray) -> np.ndarray:
    """The values of the users ``rows`` in that order, each user's in canonical order.

    One CSR row gather (scipy's, 8 bytes per rating for its output) instead of gathering
    an ``arange`` of positions (int64 positions, offsets and sums: 40 bytes per rating at
    once, the peak of BiasedMF's fit before; docs/benchmarks.md, issue 11 item 5).
    """
    ptr = data.indptr.astype(np.int32) if len(data) < 2**31 else data.indptr
    csr = sp.csr_matrix((data.values, data.item_index, ptr), shape=data.shape, copy=False)
    return np.asarray(csr[np.asarray(rows, dtype=np.intp)].data, dtype=np.float32)


class _SGDTrainer(Trainer):
    """Lays the ratings out on the block grid (libmf's scheduling), trains on rows padded
    to :data:`_LANES` floats and cuts the padding off in :meth:`finalize`."""

    state_names = ("user_factors_", "item_factors_", "user_bias_", "item_bias_")

    def __init__(
        self,
        model: BiasedMF,
        data: Interactions,
        rng: np.random.Generator,
        validation: Any,
        weights: np.ndarray | None = None,
    ) -> None:
        super().__init__(model)
        self.rng = rng
        self.n_blocks = n_blocks = _n_blocks(model._n_threads)
        user_perm, user_group = sgd_partition(data.user_counts, n_blocks, rng)
        item_perm, item_group = sgd_partition(data.item_counts, n_blocks, rng)
        item_new = np.empty_like(item_perm)
        item_new[item_perm] = np.arange(len(item_perm))
        # the model's seen values are gathered in finalize, once the layout is freed: not
        # alive next to the layout during training (4 bytes per rating), nor the gather's
        # scratch next to the layout (docs/benchmarks.md, issue 11 item 5)
        self.data, self.user_perm = data, user_perm
        arranged = sgd_arrange(
            data.indptr, data.item_index, data.values, user_perm, item_new,
            user_group, item_group, n_blocks,
        )  # fmt: skip
        self.users, self.items, self.values, self.block_ptr = arranged[:4]
        # float32 weights laid out as the values are (the same compiled arrange), or
        # empty: the kernels' unweighted arithmetic
        self.weights = np.zeros(0, dtype=np.float32)
        if weights is not None:
            self.weights = sgd_arrange(
                data.indptr, data.item_index, weights.astype(np.float32), user_perm, item_new,
                user_group, item_group, n_blocks,
            )[2]  # fmt: skip
        # the model's positions are the training layout's
        model.user_map_ = data.user_map.subset(user_perm)
        model.item_map_ = data.item_map.subset(item_perm)
        model.seen_indptr_, model.seen_indices_ = arranged[4], arranged[5]
        if weights is None:
            user_counts, item_counts = data.user_counts, data.item_counts
            self.total = float(len(self.values))
            model.global_mean_ = float(self.values.mean(dtype=np.float64))
        else:  # the penalty counts each rating's share times its weight
            user_counts = np.bincount(data.user_index, weights=weights, minlength=data.n_users)
            item_counts = np.bincount(data.item_index, weights=weights, minlength=data.n_items)
            self.total = float(weights.sum())
            model.global_mean_ = float(np.average(data.values, weights=weights))
        self.user_counts = user_counts[user_perm].astype(np.float32)
        self.item_counts = item_counts[item_perm].astype(np.float32)
        self.k = k = int(model.factors)
        # Train on rows padded to a multiple of 32 floats: the kernel's vector loops then
        # need no remainder. Padding columns start at zero and stay zero (every update is
        # a multiple of the row itself and of the other row's same column), so they change
        # nothing; finalize cuts them off.
        k_pad = -(-k // _LANES) * _LANES
        if data.n_users / n_blocks * k_pad * 4 <= _INTERLEAVE_MAX_GROUP_BYTES:
            sgd_interleave(self.users, self.items, self.values, self.weights, self.block_ptr)
        scale = float(model.init_scale)
        model.user_factors_ = normal_factors(
            rng, data.n_users, k, scale, width=k_pad, n_threads=model._n_threads
        )
        model.item_factors_ = normal_factors(
            rng, data.n_items, k, scale, width=k_pad, n_threads=model._n_threads
        )
        model.user_bias_ = np.zeros(data.n_users, dtype=np.float32)
        model.item_bias_ = np.zeros(data.n_items, dtype=np.float32)
        self.val = None if validation is None else model._validation_positions(validation)
        self.has_validation = self.val is not None
        self.block_sse = np.zeros(n_blocks * n_blocks, dtype=np.float64)
        self.adaptive = model.learning_rate_schedule == "adaptive"
        if self.adaptive:  # per-row accumulators (factor row, bias), 1 before any update
            self.GP = np.ones((data.n_users, 2), dtype=np.float32)
            self.GQ = np.ones((data.n_items, 2), dtype=np.float32)
        threads = _threads_for(len(self.values), model._n_threads)
        # the epoch's bits do not depend on its worker count (the dataflow schedule,
        # kernels/sgd.py), so each epoch may run on fewer workers when fewer have been
        # faster lately (other processes hold the cores): speed only, never the result
        self.workers = AdaptiveWorkers(threads)
        # the epoch's workers run on run_tasks; the loop's using_threads (BLAS on one
        # thread) only when there are several
        self.n_threads = threads if threads > 1 else None

    def epoch(self, epoch: int) -> float:
        m = self.model
        P, Q, bu, bi = m.user_factors_, m.item_factors_, m.user_bias_, m.item_bias_
        lr0, decay = float(m.learning_rate), float(m.learning_rate_decay)
        reg, biased = float(m.regularization), bool(m.biased)
        schedule = sgd_schedule(self.n_blocks, self.rng)
        workers = self.workers.next()
        start, cpu = time.perf_counter(), time.process_time()
        if self.adaptive:
            sse = sgd_epoch_adaptive(
                self.users, self.items, self.values, self.weights, self.block_ptr,
                schedule, P, Q, bu, bi, self.GP, self.GQ,
                m.global_mean_, lr0 * decay**epoch, reg, biased, self.k, self.block_sse,
                workers,
            )  # fmt: skip
        else:
            sse = sgd_epoch(
                self.users, self.items, self.values, self.weights, self.block_ptr,
                schedule, P, Q, bu, bi,
                m.global_mean_, lr0 * decay**epoch, reg, biased, self.block_sse,
                workers,
            )  # fmt: skip
        self.workers.record(workers, time.perf_counter() - start, time.process_time() - cpu)
        penalty = sgd_penalty(self.user_counts, P, bu, biased) + sgd_penalty(
            self.item_counts, Q, bi, biased
        )
        return (sse + reg * penalty) / self.total

    def validate(self) -> float:
        return self.model._rmse_on(*self.val)

    def finalize(self) -> None:
        m = self.model
        m.user_factors_ = np.ascontiguousarray(m.user_factors_[:, : self.k])
        m.item_factors_ = np.ascontiguousarray(m.item_factors_[:, : self.k])
        self.users = self.items = self.values = self.weights = None  # the layout
        m.seen_values_ = _rows_values(self.data, self.user_perm)
        self.data = None
