"""ImplicitALS: weighted matrix factorization of implicit feedback by alternating least
squares (Hu, Koren & Volinsky 2008), with conjugate-gradient or exact row solves."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from factorkit._threads import using_threads
from factorkit._validation import (
    TRAINING_CONSTRAINTS,
    Interval,
    Options,
)
from factorkit.data.interactions import Interactions
from factorkit.data.weights import check_sample_weight
from factorkit.exceptions import DataError
from factorkit.kernels._jit import read_only
from factorkit.kernels.implicit_als import (
    implicit_als_cg_rows,
    implicit_als_cholesky_rows,
    implicit_als_confidence,
)
from factorkit.models._backend import (
    fit_backend_options,
    fit_distributed,
    is_distributed,
    reject_distributed_weights,
)
from factorkit.models._factor import FactorModel, gather_rows
from factorkit.models._fold_in import FoldIn, FoldInMixin
from factorkit.models._init import normal_factors
from factorkit.models._partial import Extension, PartialFitMixin, item_major
from factorkit.models._recommend import RecommendMixin
from factorkit.models._similar import SimilarMixin
from factorkit.models._training import Trainer, fit_trainer

__all__ = ["ImplicitALS"]

#: cut-off of the ranking metric scored on validation data after every epoch
_VALIDATION_K = 20


class ImplicitALS(RecommendMixin, SimilarMixin, FoldInMixin, PartialFitMixin, FactorModel):
    """Implicit-feedback matrix factorization by weighted alternating least squares (iALS).

    Every (user, item) cell is a training example: interacted cells have preference 1
    and confidence ``c_ui``, all others preference 0 and weight ``w0``
    (``unobserved_weight``). The user factors ``x_u`` and item factors ``y_i`` minimise

    .. math::

        \\sum_{(u,i) \\in S} c_{ui} (1 - x_u \\cdot y_i)^2
        + w_0 \\sum_{(u,i) \\notin S} (x_u \\cdot y_i)^2
        + \\lambda \\sum_u (|I_u| + w_0 |I|)^{\\nu} \\|x_u\\|^2
        + \\lambda \\sum_i (|U_i| + w_0 |U|)^{\\nu} \\|y_i\\|^2

    with ``c_ui = 1 + alpha * r_ui`` (``confidence="linear"``) or ``1 + alpha * log(1 +
    r_ui / epsilon)`` (``"log"``), ``S`` the interactions with ``r_ui > 0``, ``|I_u|``
    the user's interaction count, ``|I|`` the number of items (``|U_i|``, ``|U|`` alike),
    ``lambda = regularization`` and ``nu = regularization_exponent``. With ``w0 = 1`` and
    ``nu = 0`` this is Hu, Koren & Volinsky, "Collaborative filtering for implicit
    feedback datasets" (ICDM 2008), and the objective of ``implicit``'s
    ``AlternatingLeastSquares``. ``nu > 0`` is the frequency-scaled regularisation of
    Rendle, Krichene, Zhang & Koren, "Revisiting the performance of iALS on item
    recommendation benchmarks" (RecSys 2022), whose ``alpha_0`` is ``w0`` here (their
    observed term is ``(1 - x . y)^2 + alpha_0 (x . y)^2``, ours ``c (1 - x . y)^2``;
    both give each observed cell a larger weight than an unobserved one).

    Training alternates exact-objective half-steps: all users with the items fixed, then
    all items with the users fixed, each row's ``k x k`` system using the Gram trick
    (``w0 Y^T Y`` computed once per half-step). ``solver="cg"`` takes ``cg_steps``
    conjugate-gradient steps per row warm-started from the current factors (Takacs,
    Pilaszy & Tikk, RecSys 2011), never forming the row's matrix; ``"cholesky"`` solves
    each row exactly. See :mod:`factorkit.kernels.implicit_als`.

    Parameters
    ----------
    factors : int, default 64
        Latent dimensions ``k``.
    epochs : int, default 15
        ALS iterations (each one user half-step and one item half-step).
    regularization : float, default 20.0
        ``lambda``. With ``regularization_exponent > 0`` the penalty grows with
        ``(count + w0 * n)^nu``, so much smaller values are appropriate (e.g. ``1e-3``
        for ``nu = 1`` on MovieLens-sized data).
    alpha : float, default 2.0
        Confidence slope: how much more an interaction weighs than an unobserved cell.
    confidence : {"linear", "log"}, default "linear"
        ``1 + alpha * r`` or ``1 + alpha * log(1 + r / epsilon)`` (for heavy-tailed counts).
    epsilon : float, default 1.0
        Scale of ``r`` in the log confidence.
    unobserved_weight : float, default 1.0
        ``w0``, the weight of every cell without an interaction.
    regularization_exponent : float, default 0.0
        ``nu``; 0 gives every row the same penalty ``lambda`` (Hu et al., ``implicit``),
        1 scales it with the row's frequency (Rendle et al.).
    solver : {"cg", "cholesky"}, default "cg"
        Conjugate gradient (fast, approximate per half-step, converges over epochs) or
        exact Cholesky solves (``O(k^3)`` per row; from ``factors >= 128`` on each system
        is factorised in float32, as ``implicit`` does at every size, float64 below).
    cg_steps : int, default 3
        Conjugate-gradient steps per row and half-step (``solver="cg"`` only).
    init_scale : float, default 0.01
        Standard deviation of the normal initialisation of the factors.
    random_state : None, int or numpy.random.Generator
        Seeds the initialisation. Results do not depend on ``n_threads``, and with a fixed
        seed they are bit-for-bit repeatable.
    n_threads : int, optional
        Threads for training and scoring; default all cores.
    progress : bool, default False
        Show a progress bar over epochs.
    callbacks : callable or list of callables, optional
        Called after each epoch with a record dict; see :mod:`factorkit.models`.
    early_stopping : int or True, optional
        Patience in epochs on the validation ranking loss ``1 - NDCG@20`` (True means 3);
        needs ``fit(train, validation=...)``. The best epoch's state is kept.

    Attributes
    ----------
    user_factors_ : numpy.ndarray of float32, (n_users, factors)
    item_factors_ : numpy.ndarray of float32, (n_items, factors)
    history_ : pandas.DataFrame
        One row per epoch: ``epoch``, ``loss`` (the objective above divided by the
        number of interactions, at the end of the epoch, exact for the current factors),
        ``val_ndcg_loss`` (``1 - NDCG@20`` of the validation items, training items
        excluded) with validation data, ``elapsed``.

    Notes
    -----
    Scores are ``x_u . y_i`` (no biases, no clipping); :meth:`predict` returns them and
    :meth:`recommend` ranks by them. Interactions with value 0 stay in the "seen" items
    that :meth:`recommend` leaves out but count as unobserved cells in the objective.
    ``fit(train, sample_weight=w)`` multiplies each confidence by its weight (``w_ui
    c_ui``; weight 0 likewise makes an unobserved but seen cell), e.g. with
    ``w = fk.time_decay(train, half_life="1y")`` to let recent interactions count more
    (docs/time.md, "Weights for implicit models").

    The defaults were picked by a small grid on MovieLens latest-small (ratings >= 4 as
    positives, per-user 20% holdout, seed 0), where they reach recall@20 0.267 and
    NDCG@20 0.267 (recommending the most popular unseen items: 0.149 and 0.150);
    ``regularization_exponent=1, regularization=0.01`` does as well (0.270 / 0.269).
    The best ``regularization`` grows with the data's interaction counts.
    ``ImplicitALS(alpha=a - 1, regularization=l)`` on binary data solves the same problem
    as ``implicit``'s ``AlternatingLeastSquares(alpha=a, regularization=l)``, whose
    confidence is ``alpha * r``.

    :meth:`fold_in` solves a new user's weighted least-squares problem exactly against
    the fixed item factors (well under a millisecond). ``partial_fit(new_data,
    epochs=None)`` appends new users and items and re-solves exactly every user and item
    that ``new_data`` touches against all their interactions (``epochs`` alternations of
    users then items, default 2); other rows keep their factors.

    Examples
    --------
    >>> import factorkit as fk
    >>> data = fk.datasets.load_movielens_small()
    >>> liked = data.take(data.values >= 4.0)
    >>> positives = fk.Interactions.from_arrays(
    ...     liked.user_map.to_ids(liked.user_index), liked.item_map.to_ids(liked.item_index)
    ... )
    >>> train, test = fk.split.per_user(positives, test_size=0.2, random_state=0)
    >>> model = fk.ImplicitALS(random_state=0).fit(train)
    >>> items, scores = model.recommend(1, k=5)
    >>> len(items)
    5
    >>> new_user = model.fold_in([1, 50, 260])
    >>> new_user.factors.shape
    (64,)
    >>> items, scores = model.recommend_new_user([1, 50, 260], k=3)
    >>> len(items)
    3
    """

    _tags: ClassVar[dict[str, Any]] = {
        "feedback": "implicit",
        "iterative": True,
        "cli_name": "implicit-als",
        "search_space": {
            "factors": {"loguniform_int": [32, 256]},
            "epochs": {"randint": [5, 30]},
            "regularization": {"loguniform": [1.0, 100.0]},
            "alpha": {"loguniform": [0.5, 10.0]},
        },
        "search_grid": {
            "factors": [32, 64, 128],
            "regularization": [1.0, 20.0],
            "alpha": [1.0, 5.0],
        },
    }
    _parameter_constraints: ClassVar[dict[str, Any]] = {
        "factors": Interval(int, 1, None),
        "epochs": Interval(int, 1, None),
        "regularization": Interval(float, 0, None),
        "alpha": Interval(float, 0, None),
        "confidence": Options(("linear", "log")),
        "epsilon": Interval(float, 0, None, closed="neither"),
        "unobserved_weight": Interval(float, 0, None, closed="neither"),
        "regularization_exponent": Interval(float, 0, None),
        "solver": Options(("cg", "cholesky")),
        "cg_steps": Interval(int, 1, None),
        "init_scale": Interval(float, 0, None, closed="neither"),
        **TRAINING_CONSTRAINTS,
    }

    def __init__(
        self,
        factors: int = 64,
        epochs: int = 15,
        regularization: float = 20.0,
        alpha: float = 2.0,
        confidence: str = "linear",
        epsilon: float = 1.0,
        unobserved_weight: float = 1.0,
        regularization_exponent: float = 0.0,
        solver: str = "cg",
        cg_steps: int = 3,
        init_scale: float = 0.01,
        random_state: Any = None,
        n_threads: int | None = None,
        progress: bool = False,
        callbacks: Any = None,
        early_stopping: int | bool | None = None,
    ) -> None:
        self.factors = factors
        self.epochs = epochs
        self.regularization = regularization
        self.alpha = alpha
        self.confidence = confidence
        self.epsilon = epsilon
        self.unobserved_weight = unobserved_weight
        self.regularization_exponent = regularization_exponent
        self.solver = solver
        self.cg_steps = cg_steps
        self.init_scale = init_scale
        self.random_state = random_state
        self.n_threads = n_threads
        self.progress = progress
        self.callbacks = callbacks
        self.early_stopping = early_stopping

    # ------------------------------------------------------------------ helpers
    def _confidence(self, values: np.ndarray) -> np.ndarray:
        """Per-interaction confidence (0 marks values <= 0, treated as unobserved)."""
        out = np.empty(len(values), dtype=np.float32)
        implicit_als_confidence(
            np.asarray(values, dtype=np.float32),
            np.float32(self.alpha),
            self.confidence == "log",
            np.float32(self.epsilon),
            out,
        )
        return out

    def _penalties(self, counts: np.ndarray, n_other: int) -> np.ndarray:
        """Per-row ``lambda * (count + w0 * n_other)^nu`` as float32."""
        nu = float(self.regularization_exponent)
        lam = float(self.regularization)
        if nu == 0.0:
            return np.full(len(counts), lam, dtype=np.float32)
        base = np.asarray(counts, dtype=np.float64) + float(self.unobserved_weight) * n_other
        return (lam * base**nu).astype(np.float32)

    def _gram(self, fixed: np.ndarray) -> np.ndarray:
        """``w0 * fixed^T fixed`` (float32, BLAS; single-threaded under using_threads, which
        keeps the result independent of the thread count), made exactly symmetric."""
        g = fixed.T @ fixed
        g = np.triu(g) + np.triu(g, 1).T
        g *= np.float32(self.unobserved_weight)
        return np.ascontiguousarray(g, dtype=np.float32)

    def _solve(
        self,
        indptr: np.ndarray,
        indices: np.ndarray,
        conf: np.ndarray,
        fixed: np.ndarray,
        lam: np.ndarray,
        out: np.ndarray,
        exact: bool = False,
    ) -> float:
        """One half-step: rows of ``out`` against ``fixed``; returns their objective."""
        gram = self._gram(fixed)
        w0 = np.float32(self.unobserved_weight)
        indptr, indices, conf, fixed, gram, lam = read_only(indptr, indices, conf, fixed, gram, lam)
        if exact or self.solver == "cholesky":
            return implicit_als_cholesky_rows(indptr, indices, conf, fixed, gram, w0, lam, out)
        return implicit_als_cg_rows(
            indptr, indices, conf, fixed, gram, w0, lam, int(self.cg_steps), out
        )

    @staticmethod
    def _check_values(data: Interactions, where: str) -> None:
        values = data.values
        if len(values) and not (values >= 0).all():
            j = int(np.flatnonzero(~(values >= 0))[0])
            raise DataError(
                f"ImplicitALS.{where}: interaction {j} has value {values[j]}; implicit feedback "
                "must be >= 0 (counts, clicks, play time). Drop or rescale negative values."
            )

    # ------------------------------------------------------------------ fitting
    def fit(
        self,
        train: Interactions,
        validation: Interactions | None = None,
        *,
        sample_weight: Any = None,
        **backend: Any,
    ) -> ImplicitALS:
        """Learn user and item factors from implicit feedback ``train``; returns ``self``.

        Parameters
        ----------
        train : Interactions
            Interactions with values >= 0 (1.0 for plain implicit data; counts or other
            strengths feed the confidence).
        validation : Interactions, optional
            Held-out interactions, scored after every epoch by ``1 - NDCG@20`` (training
            items excluded) for ``history_`` and ``early_stopping``.
        sample_weight : array-like of shape (len(train),), optional
            One finite weight >= 0 per interaction, aligned with ``train`` (its canonical
            order, as :func:`factorkit.time_decay` returns): the interaction's confidence
            becomes ``w * c_ui``, so weight 0 makes it an unobserved cell exactly as if
            it were removed, and weight 2 doubles its confidence. With
            ``regularization_exponent > 0`` the counts ``|I_u|`` and ``|U_i|`` become
            the sums of the row's weights, and ``history_``'s ``loss`` is divided by the
            sum of all weights. A weight-0 interaction still counts as seen:
            :meth:`recommend` leaves it out (the user did interact). ``partial_fit``
            does not keep the weights: rows it re-solves use weight 1 throughout.
            Not supported on distributed data yet.
        **backend
            For :class:`factorkit.distributed.DistributedInteractions` only:
            ``checkpoint_dir``, ``resume`` and ``exchange`` of
            :func:`factorkit.distributed.fit`, which trains on the data's Dask cluster.
        """
        if is_distributed(train):  # the data's type picks the backend
            reject_distributed_weights(self, sample_weight)
            return fit_distributed(self, train, validation, backend)
        fit_backend_options(self, backend)
        data = self._prepare_fit(train, validation)
        weights = check_sample_weight(sample_weight, data, "ImplicitALS.fit")
        self._check_values(data, "fit")
        rng = np.random.default_rng(self.random_state)
        k, scale = int(self.factors), float(self.init_scale)
        self.global_mean_ = 0.0
        self.user_bias_ = np.zeros(data.n_users, dtype=np.float32)
        self.item_bias_ = np.zeros(data.n_items, dtype=np.float32)
        self.user_factors_ = normal_factors(rng, data.n_users, k, scale, n_threads=self._n_threads)
        self.item_factors_ = normal_factors(rng, data.n_items, k, scale, n_threads=self._n_threads)
        self._item_gram = None
        trainer = _IALSTrainer(self, data, validation, weights)
        self.history_ = fit_trainer(trainer, self.epochs)
        self._item_gram = None
        return self

    # ------------------------------------------------------------------ new users
    def _item_gram_f64(self) -> np.ndarray:
        """``w0 * Y^T Y`` in float64, cached for :meth:`fold_in`."""
        if getattr(self, "_item_gram", None) is None:
            y = self.item_factors_.astype(np.float64)
            self._item_gram = float(self.unobserved_weight) * (y.T @ y)
        return self._item_gram

    def fold_in(self, items: Any, ratings: Any = None) -> FoldIn:
        """A new user's factors from their interactions, without refitting.

        Solves the user's weighted least-squares problem (the training objective for one
        user, same confidence weighting and penalty) exactly against the fixed item
        factors.

        Parameters
        ----------
        items : array-like
            Raw item ids the new user interacted with (all known to the model).
        ratings : array-like, optional
            Interaction strengths (>= 0), one per item; default 1.0 each.

        Returns
        -------
        FoldIn
            ``factors`` (float32, length ``factors``) and ``bias`` (always 0.0).
        """
        return super().fold_in(items, ratings)

    def _fold_in(self, pos: np.ndarray, r: np.ndarray) -> FoldIn:
        if not (r >= 0).all():
            raise DataError(
                f"ImplicitALS.fold_in: ratings must be >= 0 for implicit feedback; got {r}"
            )
        c = self._confidence(r).astype(np.float64)
        if not np.isfinite(c).all():
            j = int(np.argmax(~np.isfinite(c)))
            raise DataError(
                f"ImplicitALS.fold_in: ratings[{j}] = {float(r[j])!r} gives an infinite "
                f"confidence (1 + alpha * value with alpha={self.alpha}); pass values on the "
                "scale of the training data."
            )
        keep = c > 0
        q = self.item_factors_[pos[keep]].astype(np.float64)
        c = c[keep]
        w0 = float(self.unobserved_weight)
        lam = float(self._penalties(np.array([len(pos)]), len(self.item_map_))[0])
        a = self._item_gram_f64() + q.T @ ((c - w0)[:, None] * q)
        a[np.diag_indices_from(a)] += lam
        x = np.linalg.solve(a, q.T @ c)
        return FoldIn(factors=x.astype(np.float32), bias=0.0)

    # ------------------------------------------------------------------ incremental
    def _check_partial_data(self, new_data: Interactions) -> None:
        self._check_values(new_data, "partial_fit")

    def _partial_update(self, ext: Extension, epochs: int) -> None:
        """Exact re-solves of the touched users, then items, ``epochs`` times."""
        users_ptr, users_idx, users_val = (
            self.seen_indptr_,
            self.seen_indices_,
            self.seen_values_,
        )
        items_ptr, items_idx, items_val = item_major(self)
        n_users, n_items = len(self.user_map_), len(self.item_map_)
        sides = (
            (ext.touched_users, users_ptr, users_idx, users_val, "user_factors_", n_items),
            (ext.touched_items, items_ptr, items_idx, items_val, "item_factors_", n_users),
        )
        with using_threads(self._n_threads):
            for _ in range(epochs):
                for rows, ptr, idx, val, name, n_other in sides:
                    if not len(rows):
                        continue
                    sub_ptr, sub_idx = gather_rows(ptr, idx, rows)
                    _, at = gather_rows(ptr, np.arange(len(idx)), rows)
                    fixed = self.item_factors_ if name == "user_factors_" else self.user_factors_
                    own = getattr(self, name)
                    out = own[rows].copy()
                    lam = self._penalties(np.diff(sub_ptr), n_other)
                    conf = self._confidence(val[at])
                    self._solve(sub_ptr, sub_idx, conf, fixed, lam, out, exact=True)
                    own[rows] = out
        self._item_gram = None

    def _refresh_user_matrix(self) -> None:
        self._item_gram = None


# ---------------------------------------------------------------------- helpers
def _ndcg_at(model: ImplicitALS, users: np.ndarray, items: np.ndarray, k: int) -> float:
    """Mean NDCG@k over the known users with held-out items (positions; -1 = unknown),
    ranking all items except each user's training items. Held-out items unknown to the
    model count as relevant items that were not retrieved."""
    known = users >= 0
    users, items = users[known], items[known]
    if not len(users):
        return float("nan")
    uniq, inverse = np.unique(users, return_inverse=True)
    n_rel = np.minimum(np.bincount(inverse, minlength=len(uniq)), k)
    top, _ = model.top_items(
        uniq, k, exclude=gather_rows(model.seen_indptr_, model.seen_indices_, uniq)
    )
    n_items = len(model.item_map_)
    ok = items >= 0
    held_out = np.unique(inverse[ok].astype(np.int64) * n_items + items[ok])
    rows = np.arange(len(uniq), dtype=np.int64)[:, None]
    gains = np.isin(rows * n_items + top, held_out) & (top >= 0)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    idcg = np.cumsum(discounts)[n_rel - 1]
    return float(np.mean((gains @ discounts) / idcg))


def _squared_norms(x: np.ndarray, rows: int = 4096) -> np.ndarray:
    """Each row's ``|x_r|^2`` in float64, by blocks of ``rows`` rows: no float64 copy of
    the whole factor matrix (85 MB for 166k users at k=64) next to the fit's arrays."""
    out = np.empty(len(x), dtype=np.float64)
    for lo in range(0, len(x), rows):
        block = x[lo : lo + rows].astype(np.float64)
        out[lo : lo + rows] = np.einsum("ij,ij->i", block, block)
    return out


class _IALSTrainer(Trainer):
    """Each epoch: all users against the fixed items, then all items against the users."""

    state_names = ("user_factors_", "item_factors_")
    metric = "ndcg_loss"
    diverge_hint = "regularization"

    def __init__(
        self,
        model: ImplicitALS,
        data: Interactions,
        validation: Any,
        weights: np.ndarray | None = None,
    ) -> None:
        super().__init__(model)
        # Memory: the user side reads the data's own arrays; the fit adds one confidence
        # per interaction and the item side's (user position, confidence) pairs, made by
        # transposing the confidences themselves (no CSC of the values, no cache left on
        # ``data``): 12 bytes per interaction (docs/benchmarks.md, issue 11 item 5).
        self.indptr_u = np.asarray(data.indptr, dtype=np.int64)
        self.items_u = np.asarray(data.item_index, dtype=np.int32)
        self.conf_u = model._confidence(data.values)
        if weights is not None:
            # c = w * c_ui (the product in float64, rounded to float32); w = 0 gives c = 0,
            # which the kernels read as "not a positive": an unobserved cell, as if removed
            self.conf_u = (self.conf_u * weights).astype(np.float32)
        self.indptr_i, self.users_i, self.conf_i = data._item_major(self.conf_u)
        counts_u, counts_i = np.diff(self.indptr_u), np.diff(self.indptr_i)
        if weights is not None:
            # frequency-scaled penalties count each interaction by its weight
            counts_u = np.bincount(data.user_index, weights, minlength=data.n_users)
            counts_i = np.bincount(data.item_index, weights, minlength=data.n_items)
        self.lam_u = model._penalties(counts_u, data.n_items)
        self.lam_i = model._penalties(counts_i, data.n_users)
        self.n = len(data) if weights is None else float(weights.sum())
        # one thread setting for the whole loop (setting it costs milliseconds per call)
        self.n_threads = model._n_threads
        self.val = None if validation is None else model._validation_positions(validation)
        self.has_validation = self.val is not None

    def epoch(self, epoch: int) -> float:
        m = self.model
        m._solve(
            self.indptr_u, self.items_u, self.conf_u, m.item_factors_, self.lam_u,
            m.user_factors_,
        )  # fmt: skip
        obj = m._solve(
            self.indptr_i, self.users_i, self.conf_i, m.user_factors_, self.lam_i,
            m.item_factors_,
        )  # fmt: skip
        obj += float(_squared_norms(m.user_factors_) @ self.lam_u.astype(np.float64))
        return obj / self.n

    def validate(self) -> float:
        return 1.0 - _ndcg_at(self.model, *self.val[:2], _VALIDATION_K)
