"""HybridMF: users and items as the sum of their id and feature embeddings (LightFM's
model family), trained with a ranking loss or, on ratings, the squared loss; cold start
from features; and
:func:`content_regression`, the collective variant for fitted ALS-family models."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from factorkit._threads import single_thread_blas
from factorkit._validation import TRAINING_CONSTRAINTS, Boolean, Interval, NoneOr, Options
from factorkit.data.features import Features, align_features
from factorkit.data.idmap import IdMap
from factorkit.data.interactions import Interactions
from factorkit.data.weights import check_sample_weight
from factorkit.exceptions import DataError, NotFittedError, UnknownIdError
from factorkit.kernels.bpr import bpr_alias_table
from factorkit.kernels.hybrid import hybrid_epoch, hybrid_squared_epoch
from factorkit.models._factor import FactorModel
from factorkit.models._fold_in import FoldIn, FoldInMixin, pairwise_logistic_solve
from factorkit.models._hybrid_als import ALSTrainer, fold_in_ials, pairwise_validation_loss
from factorkit.models._init import normal_factors
from factorkit.models._recommend import RecommendMixin, candidate_mask, check_k, to_item_ids
from factorkit.models._similar import SimilarMixin
from factorkit.models._training import Trainer, run_trainer

__all__ = ["ContentRegression", "HybridMF", "content_regression"]

_MAX_TRIES = 32
_FOLD_IN_PAIRS_PER_ITEM = 32
_FOLD_IN_MAX_PAIRS = 2048
_FOLD_IN_SEED = 20150901
#: the ranking losses' kernel codes; "squared" has its own kernel
_LOSSES = {"bpr": 0, "warp": 1, "softmax": 2}
#: what ``epochs``, ``learning_rate``, ``regularization`` and ``max_sampled`` of None
#: mean, per loss
#: (measured on MovieLens small: docs/benchmarks.md, HybridMF; docs/cold-start.md)
LOSS_DEFAULTS = {
    "bpr": {"epochs": 100, "learning_rate": 0.05, "regularization": 0.01, "max_sampled": 10},
    "warp": {"epochs": 50, "learning_rate": 0.01, "regularization": 0.01, "max_sampled": 10},
    "softmax": {"epochs": 50, "learning_rate": 0.01, "regularization": 0.03, "max_sampled": 30},
    "squared": {"epochs": 20, "learning_rate": 0.01, "regularization": 0.02, "max_sampled": 10},
    # alternating least squares: no learning rate, no sampling; alpha is its confidence slope
    "ials": {
        "epochs": 15,
        "learning_rate": None,
        "regularization": 20.0,
        "max_sampled": 10,
        "alpha": 2.0,
        "feature_regularization": 60.0,
    },
}
_NO_TRACE = np.empty((0, 3), dtype=np.int64)
#: the arrays the epochs train (snapshotted at the best epoch by the loop)
_TRAINED = (
    "user_id_factors_",
    "item_id_factors_",
    "item_id_bias_",
    "feature_user_factors_",
    "feature_item_factors_",
    "feature_item_bias_",
)
#: what the squared loss trains besides: the user biases (ranking losses have none)
_TRAINED_SQUARED = (*_TRAINED, "user_id_bias_", "feature_user_bias_")


class HybridMF(RecommendMixin, SimilarMixin, FoldInMixin, FactorModel):
    """Hybrid matrix factorization with side features, for implicit feedback or ratings.

    A user's vector is its id embedding plus the weighted sum of its features'
    embeddings, ``p_u = e_u + sum_f x_uf E_f``; an item's vector ``q_i`` and bias
    ``b_i = c_i + sum_f x_if c_f`` likewise; ``score(u, i) = p_u . q_i + b_i`` (the model
    of LightFM, Kula 2015). Trained by parallel SGD on a ranking loss: ``"bpr"`` (one
    sampled negative per positive, as :class:`~factorkit.BPR`), ``"warp"``
    (negatives drawn until one outranks the positive, the step weighted by the rank
    that implies) or ``"softmax"`` (a sampled softmax: the positive against
    ``max_sampled`` uniform negatives at once; the most accurate of the three on warm
    users and items, at about 7x the fit time of ``"warp"``). Items (and users)
    described by features but absent from the interactions join the model's vocabulary
    with vectors from their features alone, so ``recommend``, ``predict`` and
    ``similar_items`` cover them; items arriving after ``fit`` are scored with
    :meth:`score_new_items`, new users with
    :meth:`recommend_new_user` (items, features or both). ``fit(train,
    sample_weight=w)`` draws the positives in proportion to ``w``, as
    :class:`~factorkit.BPR` does.

    With ``loss="squared"`` it is a rating model: ``predict(u, i) = mu + b_u + b_i + p_u .
    q_i``, with a user bias ``b_u`` built as the item's (id part plus feature parts) and
    ``mu`` the (weighted) mean training rating, fitted by SGD on the squared error of
    every rating (``sample_weight`` multiplies each rating's step). Predictions are
    clipped to the training rating scale, ``fk.get_tags(model).feedback`` is
    "explicit" (for the instance; the class's default loss ranks), rating metrics
    apply, ``recommend`` ranks by predicted rating, ``fold_in`` takes ratings, and a
    cold item or user is rated from ``mu``, its feature biases and feature embeddings.
    Implicit data is refused with this loss.

    With ``loss="ials"`` the same representation (without biases) is fitted to the
    implicit-ALS objective of :class:`~factorkit.ImplicitALS` (Hu, Koren & Volinsky 2008):
    every (user, item) cell of the training users and items is an example, a positive
    with confidence ``1 + alpha * r``, every other cell with weight 1, plus
    ``regularization`` times the id embeddings' squared norms and
    ``feature_regularization`` times the feature embeddings'. Trained by alternating
    least squares, no sampling: each half-step solves every user's (item's) vector with
    the other side fixed (conjugate gradient on its least-squares system, the features
    acting as a prior centred on ``x_u W``), then the feature embeddings by a ridge
    regression of those vectors on the features. Without features it is
    :class:`~factorkit.ImplicitALS`; with MovieLens small's item features it is the most
    accurate loss on warm users and items (recall@20 0.275 against ImplicitALS's 0.269
    and ``"softmax"``'s 0.245, 5 of 5 seeds) and on cold items (0.138; 0.146 with
    ``feature_regularization=20``), in about a second. ``fold_in`` solves a new user's
    least-squares problem exactly, ``sample_weight`` multiplies each confidence (weight
    0 makes the cell unobserved), and the interaction values are strengths ``r >= 0``
    (1.0 for a plain positive). Users and items known only by their features are not
    cells of the objective (as the ranking losses never draw them as negatives).

    Parameters
    ----------
    factors : int, default 64
        Embedding width.
    epochs : int, optional
        Passes; each draws one sample per training interaction. None (the default)
        takes the loss's default: 100 for ``"bpr"``, 50 for ``"warp"`` and
        ``"softmax"``, 20 for ``"squared"``; with ``"ials"`` alternations of a user and
        an item half-step, 15 by default.
    loss : {"bpr", "warp", "softmax", "squared", "ials"}, default "bpr"
        A ranking loss for implicit feedback, the squared error of ratings, or the
        implicit-ALS weighted squared loss over all cells (implicit feedback).
    learning_rate : float, optional
        SGD step size of id embeddings, feature embeddings and biases. None takes the
        loss's default: 0.05 for ``"bpr"``, 0.01 for ``"warp"`` (its steps are larger:
        0.05 overfits, warm recall@20 0.157 against 0.242 at 0.01 on MovieLens small),
        0.01 for ``"softmax"`` and 0.01 for ``"squared"``; ``"ials"`` takes no steps
        and does not use it.
    regularization : float, optional
        L2 penalty applied with every step to each embedding it touches. None takes
        the loss's default: 0.01 for ``"bpr"`` and ``"warp"``, 0.03 for ``"softmax"``
        (each negative is a step, so items are touched far more often), 0.02 for
        ``"squared"``. The per-loss defaults were measured on MovieLens small
        (docs/benchmarks.md, HybridMF; docs/cold-start.md: with ``"squared"`` test
        RMSE 0.827 where the ranking losses' settings overfit to 0.90). With ``"ials"``
        the penalty ``lambda`` on the id embeddings' squared norms (20.0, as
        :class:`~factorkit.ImplicitALS`).
    item_bias : bool, default True
        Learn item biases (id and feature parts); with ``loss="squared"`` also the user
        biases (the ranking losses have none: a user's bias does not change a ranking).
        ``loss="ials"`` has no biases (its objective is ImplicitALS's) and ignores it.
    user_identity, item_identity : bool, default True
        Give each user / item its own id embedding besides its features. Without it a
        side is represented by its features alone (a user or item without features then
        has a zero vector); setting ``item_identity=False`` makes warm and cold items
        share one representation, which can help cold start.
    max_sampled : int, optional
        WARP: negative draws per positive before giving up; softmax: the negatives each
        positive is stepped against. None (the default) takes the loss's: 10 for
        ``"warp"`` (and the losses that do not use it), 30 for ``"softmax"`` (10 gave
        warm recall@20 0.241, 30 0.245, 50 0.248 on one MovieLens small split at
        2.5x the time). Before the softmax loss the default was the integer 10;
        model files saved then load with that value, which is the same setting.
    init_scale : float, default 0.1
        Standard deviation of the normal initialisation, divided by ``sqrt(factors)``.
        Id embeddings of items without interactions start (and stay) at zero.
    random_state, n_threads, progress, callbacks, early_stopping
        As for :class:`~factorkit.BPR` (``early_stopping`` watches the BPR loss of the
        validation positives, with every loss). With ``"ials"`` results do not depend
        on ``n_threads`` and repeat bit for bit for a fixed seed.
    alpha : float, optional
        ``loss="ials"`` only: the confidence slope, ``c = 1 + alpha * r`` for a positive
        of value ``r`` (as :class:`~factorkit.ImplicitALS`'s ``alpha``). None takes 2.0.
    feature_regularization : float, optional
        ``loss="ials"`` only: the penalty on the feature embeddings' squared norms (the
        other losses use ``regularization`` for them). None takes 60.0, picked on
        MovieLens small splits apart from the reported ones: against 20.0 (the id
        penalty) it gave warm recall@20 +0.004 over seeds 0-4, and cold items -0.008
        (docs/benchmarks.md, HybridMF); pass 20.0 when cold items matter most.

    Attributes
    ----------
    user_factors_, item_factors_ : numpy.ndarray of float32
        The effective vectors ``p_u`` and ``q_i`` (id plus features), used for scoring.
    item_bias_ : numpy.ndarray of float32
        Effective ``b_i``.
    user_bias_, global_mean_ : numpy.ndarray of float32, float
        Effective ``b_u`` and ``mu`` (``loss="squared"``; zeros otherwise);
        ``feature_user_bias_`` the user features' bias parts.
    feature_user_factors_, feature_item_factors_ : numpy.ndarray of float32
        One embedding per feature (rows follow ``feature_user_names_`` /
        ``feature_item_names_``); ``feature_item_bias_`` the features' bias parts.
    n_cold_items_ : int
        Items in ``item_map_`` that had features but no training interactions (the last
        ones).
    history_ : pandas.DataFrame
        ``epoch``, ``loss`` (mean loss per sample), ``elapsed``, ``accuracy`` (share of
        samples already ranked right). With ``loss="squared"``: ``loss`` is the weighted
        mean squared error of the ratings, each taken before its step, and validation
        adds ``val_rmse`` (no ``accuracy``). With ``loss="ials"``: ``loss`` is the whole
        objective (penalties included) at the end of the epoch divided by the number
        (the summed weights) of the interactions (no ``accuracy``).

    Examples
    --------
    >>> import factorkit as fk
    >>> data = fk.datasets.load_movielens_small().to_implicit(min_value=4.0)
    >>> features = fk.datasets.load_movielens_small_item_features()
    >>> model = fk.HybridMF(factors=16, epochs=3, random_state=0)
    >>> model = model.fit(data, item_features=features)
    >>> items, scores = model.recommend(1, k=5)
    >>> len(items), model.n_cold_items_ > 0
    (5, True)
    >>> import pandas as pd
    >>> new = pd.DataFrame({"movieId": [-1], "genres": ["Animation|Comedy"], "tags": [["pixar"]],
    ...                     "year": [2025]})
    >>> model.score_new_items(features.transform(new), users=[1, 2]).shape
    (2, 1)
    >>> items, _ = model.recommend_new_user([1, 50, 260], k=3)
    >>> len(items)
    3

    Ratings, with ``loss="squared"``:

    >>> ratings = fk.datasets.load_movielens_small()
    >>> train, test = fk.split.random(ratings, test_size=0.2, random_state=0)
    >>> rated = fk.HybridMF(loss="squared", factors=16, epochs=5, learning_rate=0.01,
    ...                     regularization=0.02, random_state=0)
    >>> rated = rated.fit(train, item_features=features)
    >>> fk.get_tags(rated).feedback
    'explicit'
    >>> bool(fk.evaluate(rated, test, metrics=["rmse"])["rmse"] < 0.9)
    True

    The implicit-ALS objective over the same representation, with ``loss="ials"``:

    >>> als = fk.HybridMF(loss="ials", factors=16, epochs=5, random_state=0)
    >>> als = als.fit(data, item_features=features)
    >>> als.recommend_new_user([1, 50, 260], k=3)[0].shape
    (3,)
    >>> als.score_new_items(features.transform(new), users=[1, 2]).shape
    (2, 1)
    """

    _tags: ClassVar[dict[str, Any]] = {
        "feedback": "implicit",
        "iterative": True,
        "cli_name": "hybrid-mf",
        "search_space": {
            "factors": {"loguniform_int": [16, 128]},
            "epochs": {"randint": [30, 150]},
            "learning_rate": {"loguniform": [0.01, 0.1]},
            "regularization": {"loguniform": [1e-3, 0.05]},
        },
        "search_grid": {
            "factors": [32, 64],
            "learning_rate": [0.02, 0.05],
            "regularization": [0.001, 0.01, 0.03],
        },
    }
    _parameter_constraints: ClassVar[dict[str, Any]] = {
        "factors": Interval(int, 1, None),
        "epochs": NoneOr(Interval(int, 1, None)),
        "loss": Options(("bpr", "warp", "softmax", "squared", "ials")),
        "learning_rate": NoneOr(Interval(float, 0, None, closed="neither")),
        "regularization": NoneOr(Interval(float, 0, None)),
        "item_bias": Boolean(),
        "user_identity": Boolean(),
        "item_identity": Boolean(),
        "max_sampled": NoneOr(Interval(int, 1, None)),
        "init_scale": Interval(float, 0, None, closed="neither"),
        **TRAINING_CONSTRAINTS,
        "alpha": NoneOr(Interval(float, 0, None)),
        "feature_regularization": NoneOr(Interval(float, 0, None)),
    }
    _state_arrays: ClassVar[tuple[str, ...]] = (
        *FactorModel._state_arrays,
        "feature_user_factors_",
        "feature_item_factors_",
        "feature_item_bias_",
        "feature_user_bias_",
        "feature_user_names_",
        "feature_item_names_",
    )
    _state_scalars: ClassVar[tuple[str, ...]] = (*FactorModel._state_scalars, "n_cold_items_")

    def __init__(
        self,
        factors: int = 64,
        epochs: int | None = None,
        loss: str = "bpr",
        learning_rate: float | None = None,
        regularization: float | None = None,
        item_bias: bool = True,
        user_identity: bool = True,
        item_identity: bool = True,
        max_sampled: int | None = None,
        init_scale: float = 0.1,
        random_state: Any = None,
        n_threads: int | None = None,
        progress: bool = False,
        callbacks: Any = None,
        early_stopping: int | bool | None = None,
        alpha: float | None = None,
        feature_regularization: float | None = None,
    ) -> None:
        self.factors = factors
        self.epochs = epochs
        self.loss = loss
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.item_bias = item_bias
        self.user_identity = user_identity
        self.item_identity = item_identity
        self.max_sampled = max_sampled
        self.init_scale = init_scale
        self.random_state = random_state
        self.n_threads = n_threads
        self.progress = progress
        self.callbacks = callbacks
        self.early_stopping = early_stopping
        self.alpha = alpha
        self.feature_regularization = feature_regularization

    # ------------------------------------------------------------------ fitting
    def fit(
        self,
        train: Interactions,
        user_features: Features | None = None,
        item_features: Features | None = None,
        validation: Interactions | None = None,
        *,
        sample_weight: Any = None,
    ) -> HybridMF:
        """Learn id and feature embeddings from ``train``; returns ``self``.

        Parameters
        ----------
        train : Interactions
            Positive interactions (values are not used); with ``loss="squared"``
            explicit ratings; with ``loss="ials"`` interaction strengths ``r >= 0``
            (confidence ``1 + alpha * r``; 0 is not a positive).
        user_features, item_features : Features, optional
            Side features (:class:`~factorkit.Features`, ``kind`` "user" / "item").
            Rows are matched to ``train``'s ids by raw id: ids of ``train`` without a row
            have no features; ids with a row but no interactions are added to the model
            (cold start) with vectors from their features alone.
        validation : Interactions, optional
            Held-out positives for ``history_``'s ``val_loss`` and ``early_stopping``
            (held-out ratings and ``val_rmse`` with ``loss="squared"``).
        sample_weight : array-like of shape (len(train),), optional
            One finite weight >= 0 per interaction, aligned with ``train`` (its canonical
            order, as :func:`factorkit.time_decay` returns). The ranking losses sample, so
            the weight enters as in :class:`~factorkit.BPR`: positives are drawn in
            proportion to it (the expected step is that of the weighted loss), weight 0
            is never drawn as a positive but is still never a negative for its user, an
            epoch draws one sample per interaction of positive weight, and only the
            ratios of the weights matter. With ``loss="squared"`` the weight multiplies
            each rating's whole step (and weights ``mu``): weight 0 takes no step and
            does not count in ``mu``, weight 2 steps twice as far (the ratings are not
            resampled, and every rating, weighted or not, is visited once an epoch).
            With ``loss="ials"`` the weight multiplies the interaction's confidence,
            as :class:`~factorkit.ImplicitALS`'s: weight 0 makes the cell unobserved,
            exactly as if the interaction were removed (it still counts as seen).
        """
        data = self._prepare_fit(train, validation)
        name = f"{type(self).__name__}.fit"
        squared = self.loss == "squared"
        if squared and data.implicit:
            raise DataError(
                f"{name}: loss='squared' fits ratings, but train is implicit feedback (its "
                "values are not ratings); pass explicit ratings (e.g. Interactions.from_pandas"
                "(df, rating=...)) or use loss='bpr' or loss='warp' for implicit data"
            )
        if self.loss == "ials" and len(data.values) and not (data.values >= 0).all():
            j = int(np.flatnonzero(~(data.values >= 0))[0])
            raise DataError(
                f"{name}: interaction {j} has value {data.values[j]}; loss='ials' reads values "
                "as interaction strengths, which must be >= 0 (counts, clicks, 1.0 for a "
                "positive). Drop or rescale negative values."
            )
        weights = check_sample_weight(sample_weight, data, name)
        self.user_map_, xu, names_u = _extend(self.user_map_, user_features, "user", name)
        self.item_map_, xi, names_i = _extend(self.item_map_, item_features, "item", name)
        n_users, n_items = len(self.user_map_), len(self.item_map_)
        n_train_users, n_train_items = data.n_users, data.n_items
        if n_users > n_train_users:  # feature-only users: no interactions
            extra = np.zeros(n_users - n_train_users, dtype=np.int64)
            self.seen_indptr_ = np.concatenate([self.seen_indptr_, extra + self.seen_indptr_[-1]])
        self.n_cold_items_ = n_items - n_train_items
        self.feature_user_names_ = names_u
        self.feature_item_names_ = names_i
        self._xu, self._xi = xu, xi
        rng = np.random.default_rng(self.random_state)
        self._rng = rng
        k = int(self.factors)
        scale = float(self.init_scale) / np.sqrt(k)
        n_threads = self._n_threads

        def init(rows: int, active: int | None = None) -> np.ndarray:
            if rows == 0:
                return np.zeros((0, k), dtype=np.float32)
            out = normal_factors(rng, rows, k, scale, np.float32, n_threads=n_threads)
            if active is not None:
                out[active:] = 0.0  # cold rows are never trained: they hold no id signal
            return out

        self.user_id_factors_ = (
            init(n_users, n_train_users)
            if self.user_identity
            else np.zeros((n_users, k), np.float32)
        )
        self.item_id_factors_ = (
            init(n_items, n_train_items)
            if self.item_identity
            else np.zeros((n_items, k), np.float32)
        )
        self.item_id_bias_ = np.zeros(n_items, dtype=np.float32)
        self.feature_user_factors_ = init(len(names_u))
        self.feature_item_factors_ = init(len(names_i))
        self.feature_item_bias_ = np.zeros(len(names_i), dtype=np.float32)
        # user biases: trained by the squared loss only (they cancel out of a ranking)
        self.user_id_bias_ = np.zeros(n_users, dtype=np.float32)
        self.feature_user_bias_ = np.zeros(len(names_u), dtype=np.float32)
        self.global_mean_ = 0.0  # the squared loss's trainer sets it
        self._gram_cache = None
        trainer = self._trainer(weights, validation, rng, n_train_users, n_train_items)
        self._combine()
        self.history_ = run_trainer(trainer, int(self._setting("epochs")))
        if self.loss in _LOSSES:
            self.history_["accuracy"] = trainer.stats[: len(self.history_)]
        del self._xu, self._xi
        return self

    def _trainer(
        self,
        weights: np.ndarray | None,
        validation: Any,
        rng: Any,
        n_train_users: int,
        n_train_items: int,
    ) -> Trainer:
        """The loss's trainer, with the validation data it scores."""
        if self.loss == "ials":
            trainer = ALSTrainer(self, n_train_users, n_train_items, weights, _TRAINED)
            if validation is not None:
                trainer.val = _validation_triples(self, validation, rng, n_train_items)
        elif self.loss == "squared":
            trainer: Trainer = _SquaredTrainer(self, weights)
            if validation is not None:
                trainer.val = self._validation_positions(validation)
        else:
            trainer = _HybridTrainer(self, n_train_items, weights)
            if validation is not None:
                trainer.val = _validation_triples(self, validation, rng, n_train_items)
        trainer.has_validation = validation is not None
        return trainer

    def _setting(self, name: str) -> Any:
        """``epochs``, ``learning_rate``, ``regularization``, ``max_sampled`` or ``alpha``
        (``loss="ials"``): as set, or the loss's default (:data:`LOSS_DEFAULTS`) when
        None."""
        value = getattr(self, name)
        return LOSS_DEFAULTS[self.loss][name] if value is None else value

    def _instance_tags(self) -> dict[str, Any]:
        # the loss decides the kind of model: squared fits (and predicts) ratings
        return {"feedback": "explicit"} if self.loss == "squared" else {}

    def _combine(self) -> None:
        """Effective vectors and biases from the id and feature parts."""
        self.user_factors_ = self.user_id_factors_ + _times(self._xu, self.feature_user_factors_)
        self.item_factors_ = self.item_id_factors_ + _times(self._xi, self.feature_item_factors_)
        bias = _times(self._xi, self.feature_item_bias_[:, None])[:, 0]
        self.item_bias_ = (self.item_id_bias_ + bias).astype(np.float32)
        bias = _times(self._xu, self.feature_user_bias_[:, None])[:, 0]
        self.user_bias_ = (self.user_id_bias_ + bias).astype(np.float32)

    # ------------------------------------------------------------------ cold start
    def _feature_rows(self, features: Any, kind: str, where: str) -> sp.csr_matrix:
        """Rows of ``features`` (a Features, or one row as an array) on this vocabulary."""
        names = getattr(self, f"feature_{kind}_names_")
        if len(names) == 0:
            raise DataError(
                f"{where}: this {type(self).__name__} was fitted without {kind} features; "
                f"pass {kind}_features=... to fit to score {kind}s by their features "
                f"(without them, new {kind}s get the model's fallback: "
                + (
                    "recommend_new_user(items) folds a user in from their items)"
                    if kind == "user"
                    else "the item's bias is unknown and it ranks by nothing)"
                )
            )
        if isinstance(features, Features):
            if features.kind != kind:
                raise DataError(f"{where}: expected {kind} features; got {features.kind} features")
            features.check_vocabulary(names, where)
            return features.matrix
        row = np.asarray(features, dtype=np.float64)
        if row.ndim == 1:
            row = row[None, :]
        if row.ndim != 2 or row.shape[1] != len(names):
            raise DataError(
                f"{where}: a {kind} feature row must have {len(names)} values (one per "
                f"feature of the model's vocabulary); got shape {np.shape(features)}. Build "
                f"it with the training features' transform(df)"
            )
        if not np.isfinite(row).all():
            raise DataError(f"{where}: {kind} features hold NaN or infinite values")
        return sp.csr_matrix(row.astype(np.float32))

    def item_vectors(self, features: Features) -> tuple[np.ndarray, np.ndarray]:
        """``(vectors, biases)`` of items from their features alone (new items)."""
        self._check_fitted("item_vectors")
        x = self._feature_rows(features, "item", f"{type(self).__name__}.item_vectors")
        return _times(x, self.feature_item_factors_), _times(x, self.feature_item_bias_[:, None])[
            :, 0
        ]

    def score_new_items(self, features: Features, users: Any = None) -> np.ndarray:
        """Scores of items known only by their features, for known users.

        Ranking scores with ``loss="bpr"`` / ``"warp"``; with ``loss="squared"`` predicted
        ratings ``mu + b_u + b_i + p_u . q_i`` (not clipped, as ``recommend`` returns them).

        Parameters
        ----------
        features : Features
            Item features built on the training features' vocabulary (``transform``);
            their ids need not be known to the model.
        users : raw id or array-like, optional
            Training users (default: all, in ``user_map_`` order).

        Returns
        -------
        numpy.ndarray of float32
            ``(n_users, features.n_ids)``; 1-D for a single user. Columns follow
            ``features.ids``.
        """
        vectors, bias = self.item_vectors(features)
        single = users is not None and np.ndim(users) == 0
        pos = np.arange(len(self.user_map_)) if users is None else self.user_map_.to_index(users)
        scores = self.user_factors_[pos].astype(np.float32) @ vectors.T.astype(np.float32)
        scores += bias.astype(np.float32)
        if self._rating_model():  # predicted ratings, as recommend returns them
            scores += (self.global_mean_ + self.user_bias_[pos])[:, None].astype(np.float32)
        return scores[0] if single else scores

    # ------------------------------------------------------------------ new users
    def fold_in(self, items: Any = None, ratings: Any = None, features: Any = None) -> FoldIn:
        """A new user's vector from the items they liked, their features, or both.

        The feature part is ``sum_f x_uf E_f``; given items, the id part minimises the
        BPR objective of this user with the item vectors fixed (Newton's method on a
        fixed, seeded sample of negatives, as :meth:`factorkit.BPR.fold_in`), on top of
        the feature part. With ``loss="ials"`` the user's term of the training objective
        is minimised exactly (``(A + lambda I) p = b + lambda s``, ``s`` the feature part:
        the implicit-ALS system with the features as a prior, ``ratings`` the
        interaction strengths, default 1). With ``loss="squared"`` the user's ratings
        are fitted instead:
        regularised least squares on the id bias and id vector (as
        :meth:`factorkit.BiasedMF.fold_in`), on top of the feature vector and feature
        bias ``sum_f x_uf c_f``.

        Parameters
        ----------
        items : array-like, optional
            Raw item ids the user interacted with (known to the model).
        ratings : array-like, optional
            With ``loss="squared"``: one rating per item (required with ``items``).
            Otherwise accepted for API symmetry and not used (every item is a positive).
        features : Features or array-like, optional
            The user's feature row (one row of ``transform(df)`` of the training user
            features, or an array with one value per feature).
        """
        self._check_fitted("fold_in")
        where = f"{type(self).__name__}.fold_in"
        if items is None and features is None:
            raise DataError(f"{where}: pass items=[...], features=... or both")
        offset = np.zeros(self.item_factors_.shape[1])
        bias = 0.0
        with single_thread_blas():
            if features is not None:
                x = self._feature_rows(features, "user", where)
                if x.shape[0] != 1:
                    raise DataError(
                        f"{where}: features must describe one user; got {x.shape[0]} rows"
                    )
                offset = _times(x, self.feature_user_factors_)[0].astype(np.float64)
                bias = float(_times(x, self.feature_user_bias_[:, None])[0, 0])
            if items is None or len(np.atleast_1d(items)) == 0:
                return FoldIn(factors=offset.astype(np.float32), bias=bias)
            pos, r = self._fold_in_inputs(items, ratings)
            if self._rating_model():
                return self._solve_user_ratings(pos, r, offset, bias)
            if self.loss == "ials":
                if not (r >= 0).all():
                    raise DataError(
                        f"{where}: ratings must be >= 0 with loss='ials' (interaction "
                        f"strengths); got {r}"
                    )
                return FoldIn(factors=fold_in_ials(self, pos, r, offset), bias=0.0)
            return FoldIn(factors=self._solve_user(pos, offset), bias=0.0)

    def recommend_new_user(
        self,
        items: Any = None,
        ratings: Any = None,
        k: int = 10,
        exclude_seen: bool = True,
        exclude_items: Any = None,
        candidates: Any = None,
        features: Any = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items for a user unseen in training, from items, features or both.

        See :meth:`fold_in`; the other arguments are those of
        :meth:`factorkit.models.FoldInMixin.recommend_new_user`.
        """
        folded = self.fold_in(items, ratings, features=features)
        k = check_k(k, "recommend_new_user")
        excluded = candidate_mask(self, exclude_items, candidates)
        if exclude_seen and items is not None and len(np.atleast_1d(items)):
            excluded[self.item_map_.to_index(items)] = True
        with single_thread_blas():
            idx, val = self._topk(
                folded.factors[None, :],
                k,
                np.zeros(2, dtype=np.int64),
                np.empty(0, dtype=np.int32),
                excluded,
                item_bias=self.item_bias_,
            )
        if self._rating_model():  # predicted ratings, as recommend returns them
            val += np.float32(self.global_mean_ + folded.bias)
        return to_item_ids(self, idx, val, single=True)

    def _solve_user(self, pos: np.ndarray, offset: np.ndarray) -> np.ndarray:
        """Newton on the user's BPR objective, ``p = offset + w``, ``w`` regularised."""
        n_items = self.item_factors_.shape[0]
        n_warm = n_items - int(self.n_cold_items_)
        rng = np.random.default_rng(_FOLD_IN_SEED)
        positive = np.zeros(n_warm, dtype=np.bool_)
        positive[pos[pos < n_warm]] = True
        candidates = np.flatnonzero(~positive)
        if len(candidates) == 0:
            return offset.astype(np.float32)
        n_pairs = max(len(pos), min(len(pos) * _FOLD_IN_PAIRS_PER_ITEM, _FOLD_IN_MAX_PAIRS))
        i = pos[np.arange(n_pairs) % len(pos)]
        j = candidates[rng.integers(0, len(candidates), n_pairs)]
        d = self.item_factors_[i].astype(np.float64) - self.item_factors_[j]
        c = self.item_bias_[i].astype(np.float64) - self.item_bias_[j] + d @ offset
        lam = max(float(self._setting("regularization")), 1e-6)

        return (offset + pairwise_logistic_solve(d, c, lam)).astype(np.float32)

    def _solve_user_ratings(
        self, pos: np.ndarray, r: np.ndarray, offset: np.ndarray, bias: float
    ) -> FoldIn:
        """Ridge on the user's ratings (squared loss): ``p = offset + w``, ``b = bias +
        c``, with ``[c, w]`` regularised as the SGD objective does (once per rating)."""
        q = self.item_factors_[pos].astype(np.float64)
        y = r - self.global_mean_ - self.item_bias_[pos] - bias - q @ offset
        biased = bool(self.item_bias)
        x = np.hstack([np.ones((len(pos), 1)), q]) if biased else q
        lam = max(float(self._setting("regularization")), 1e-6) * len(pos)
        sol = np.linalg.solve(x.T @ x + lam * np.eye(x.shape[1]), x.T @ y)
        if biased:
            return FoldIn((offset + sol[1:]).astype(np.float32), bias + float(sol[0]))
        return FoldIn((offset + sol).astype(np.float32), bias)

    def _ials_gram(self) -> np.ndarray:
        """``Q^T Q`` over the training items (float64), cached for ``fold_in``."""
        if getattr(self, "_gram_cache", None) is None:
            q = self.item_factors_[: len(self.item_map_) - int(self.n_cold_items_)]
            q = q.astype(np.float64)
            self._gram_cache = q.T @ q
        return self._gram_cache

    def _after_set_state(self) -> None:
        super()._after_set_state()
        self._gram_cache = None
        for name in ("feature_user_names_", "feature_item_names_"):
            setattr(self, name, np.asarray(getattr(self, name)).astype(str))
        if getattr(self, "feature_user_bias_", None) is None:  # saved before loss="squared"
            self.feature_user_bias_ = np.zeros(len(self.feature_user_names_), np.float32)
        self.n_cold_items_ = int(self.n_cold_items_)


def _times(x: sp.csr_matrix, factors: np.ndarray) -> np.ndarray:
    """``x @ factors`` as float32 (zeros when there are no features)."""
    if factors.shape[0] == 0:
        return np.zeros((x.shape[0], factors.shape[1]), dtype=np.float32)
    return np.asarray(x @ factors, dtype=np.float32)


def _extend(
    ids: IdMap, features: Features | None, kind: str, where: str
) -> tuple[IdMap, sp.csr_matrix | None, np.ndarray]:
    """The vocabulary grown by ids that have features but no interactions, the features
    aligned to it, and the feature names."""
    if features is None:
        return ids, sp.csr_matrix((len(ids), 0), dtype=np.float32), np.empty(0, dtype=str)
    if not isinstance(features, Features):
        raise DataError(
            f"{where}: {kind}_features must be a factorkit Features; got "
            f"{type(features).__name__}. Build one with fk.Features.from_pandas(df, id=...)"
        )
    try:
        known = features.ids.lookup(ids.ids)
    except UnknownIdError as exc:
        raise DataError(
            f"{where}: the {kind}_features ids do not match the training {kind} ids ({exc})"
        ) from None
    if len(ids) and (known < 0).all():
        raise DataError(
            f"{where}: none of the {len(ids)} training {kind} ids has a row in {kind}_features "
            f"(whose ids look like {features.ids.ids[:3].tolist()}); build the features with "
            f"the same {kind} ids as the interactions"
        )
    in_train = ids.lookup(features.ids.ids) >= 0
    extra = features.ids.ids[~in_train]
    if len(extra):
        grown = np.concatenate([np.asarray(ids.ids, dtype=object), extra.astype(object)])
        if ids.ids.dtype.kind in "iu" and features.ids.ids.dtype.kind in "iu":
            grown = grown.astype(np.int64)
        ids = IdMap(grown, kind=kind)
    x = align_features(features, ids, kind, where)
    return ids, sp.csr_matrix(x, dtype=np.float32), features.names.copy()


def _validation_triples(model: HybridMF, validation: Interactions, rng, n_items: int):
    u, i, _ = model._validation_positions(validation)
    keep = (u >= 0) & (i >= 0) & (i < n_items)
    u, i = u[keep], i[keep]
    j = rng.integers(0, n_items, len(u))
    return u, i, j


class _HybridTrainer(Trainer):
    """``hybrid_epoch`` over the training positives."""

    state_names = _TRAINED
    metric = "loss"

    def __init__(
        self, model: HybridMF, n_train_items: int, weights: np.ndarray | None = None
    ) -> None:
        super().__init__(model)
        self.n_threads = model._n_threads
        self.n_items = n_train_items
        n_users = len(model.user_map_)
        self.indptr = np.ascontiguousarray(model.seen_indptr_, dtype=np.int64).copy()
        self.indices = np.ascontiguousarray(model.seen_indices_, dtype=np.int32).copy()
        # weighted positives: an alias table over the entries (aligned with the seen
        # arrays, fit's data order); empty arrays keep the unweighted draws bit for bit
        self.n_samples = len(self.indices)
        self.entry_prob = np.empty(0, dtype=np.float64)
        self.entry_alias = np.empty(0, dtype=np.int32)
        if weights is not None:
            self.entry_prob, self.entry_alias = bpr_alias_table(weights)
            self.n_samples = int(np.count_nonzero(weights))
        self.users = np.repeat(np.arange(n_users, dtype=np.int32), np.diff(self.indptr))
        self.xu = _csr_parts(model._xu)
        self.xi = _csr_parts(model._xi)
        self.loss_kind = _LOSSES[model.loss]
        lr = np.float32(model._setting("learning_rate"))
        self.lr = lr
        self.lr_user_id = lr if model.user_identity else np.float32(0.0)
        self.lr_item_id = lr if model.item_identity else np.float32(0.0)
        self.lr_bias = lr if model.item_bias else np.float32(0.0)
        self.reg = np.float32(model._setting("regularization"))
        self.stats: list[float] = []
        self.val = None

    def epoch(self, epoch: int) -> float:
        m = self.model
        n = self.n_samples
        seeds = m._rng.integers(0, np.iinfo(np.uint64).max, self.n_threads, dtype=np.uint64)
        loss, correct, skipped = hybrid_epoch(
            self.users, self.indices, self.indptr, self.indices, self.n_items,
            self.entry_prob, self.entry_alias, seeds, n, _MAX_TRIES, self.loss_kind,
            int(m._setting("max_sampled")),
            m.user_id_factors_, m.feature_user_factors_, *self.xu,
            m.item_id_factors_, m.feature_item_factors_, *self.xi,
            m.item_id_bias_, m.feature_item_bias_,
            self.lr_user_id, self.lr_item_id, self.lr, self.reg, self.lr_bias, _NO_TRACE,
        )  # fmt: skip
        used = max(n - skipped, 1)
        self.stats.append(correct / used)
        return loss / used

    def validate(self) -> float:
        return pairwise_validation_loss(self.model, self.val)

    def finalize(self) -> None:
        self.model._combine()


class _SquaredTrainer(Trainer):
    """``hybrid_squared_epoch`` over the training ratings (``loss="squared"``)."""

    state_names = _TRAINED_SQUARED
    metric = "rmse"

    def __init__(self, model: HybridMF, weights: np.ndarray | None = None) -> None:
        super().__init__(model)
        self.n_threads = model._n_threads
        indptr = np.asarray(model.seen_indptr_, dtype=np.int64)
        self.users = np.repeat(np.arange(len(indptr) - 1, dtype=np.int32), np.diff(indptr))
        self.items = np.ascontiguousarray(model.seen_indices_, dtype=np.int32).copy()
        self.values = np.ascontiguousarray(model.seen_values_, dtype=np.float32).copy()
        n = len(self.values)
        values = np.asarray(model.seen_values_, dtype=np.float64)
        model.global_mean_ = float(np.average(values, weights=weights))
        if weights is None:
            self.weights = np.ones(n, dtype=np.float32)
        else:
            self.weights = np.ascontiguousarray(weights, dtype=np.float32)
        self.total_weight = max(float(self.weights.sum(dtype=np.float64)), 1e-300)
        self.order = np.empty(n, dtype=np.int64)
        self.xu = _csr_parts(model._xu)
        self.xi = _csr_parts(model._xi)
        lr = np.float32(model._setting("learning_rate"))
        self.lr = lr
        self.lr_user_id = lr if model.user_identity else np.float32(0.0)
        self.lr_item_id = lr if model.item_identity else np.float32(0.0)
        self.lr_bias = lr if model.item_bias else np.float32(0.0)
        self.reg = np.float32(model._setting("regularization"))
        self.val = None

    def epoch(self, epoch: int) -> float:
        m = self.model
        seeds = m._rng.integers(0, np.iinfo(np.uint64).max, self.n_threads, dtype=np.uint64)
        sse = hybrid_squared_epoch(
            self.users, self.items, self.values, self.weights, seeds, self.order,
            float(m.global_mean_),
            m.user_id_factors_, m.feature_user_factors_, *self.xu,
            m.user_id_bias_, m.feature_user_bias_,
            m.item_id_factors_, m.feature_item_factors_, *self.xi,
            m.item_id_bias_, m.feature_item_bias_,
            self.lr_user_id, self.lr_item_id, self.lr, self.reg, self.lr_bias,
        )  # fmt: skip
        return sse / self.total_weight

    def validate(self) -> float:
        self.model._combine()
        return self.model._rmse_on(*self.val)

    def finalize(self) -> None:
        self.model._combine()


def _csr_parts(x: sp.csr_matrix):
    """(indptr, indices, data) of the feature rows, typed for the kernel."""
    return (
        np.ascontiguousarray(x.indptr, dtype=np.int64),
        np.ascontiguousarray(x.indices, dtype=np.int32),
        np.ascontiguousarray(x.data, dtype=np.float32),
    )


# ---------------------------------------------------------------------- regression variant
class ContentRegression:
    """Item factors of a fitted model regressed on item features (see
    :func:`content_regression`)."""

    def __init__(self, model: Any, names: np.ndarray, coef: np.ndarray, bias_coef: np.ndarray):
        self.model = model
        self.feature_item_names_ = names
        self.coef_ = coef
        self.bias_coef_ = bias_coef

    def item_vectors(self, features: Features) -> tuple[np.ndarray, np.ndarray]:
        """``(factors, biases)`` predicted for items from their features alone."""
        if not isinstance(features, Features):
            raise DataError(
                f"ContentRegression.item_vectors: features must be a Features; got "
                f"{type(features).__name__}"
            )
        features.check_vocabulary(self.feature_item_names_, "ContentRegression.item_vectors")
        x = _with_intercept(features.matrix)
        return np.asarray(x @ self.coef_, np.float32), np.asarray(x @ self.bias_coef_, np.float32)

    def score_new_items(self, features: Features, users: Any = None) -> np.ndarray:
        """Ranking scores ``(n_users, n_new_items)`` of new items for the model's users
        (as :meth:`HybridMF.score_new_items`)."""
        vectors, bias = self.item_vectors(features)
        m = self.model
        single = users is not None and np.ndim(users) == 0
        pos = np.arange(len(m.user_map_)) if users is None else m.user_map_.to_index(users)
        scores = m.user_factors_[pos].astype(np.float32) @ vectors.T + bias
        return scores[0] if single else scores


def content_regression(
    model: Any, item_features: Features, regularization: float = 1.0
) -> ContentRegression:
    """Fit a ridge regression from item features to a fitted model's item factors.

    The collective / content-regression route to cold start for ALS-family models
    (:class:`~factorkit.ALS`, :class:`~factorkit.ImplicitALS`, :class:`~factorkit.BPR`,
    ...): ``q_i ~ W^T [x_i, 1]`` (and ``b_i`` alike) over the model's training items
    that have features, solved in closed form, so a brand-new item gets factors from its
    features alone (:meth:`ContentRegression.item_vectors`,
    :meth:`ContentRegression.score_new_items`).

    Parameters
    ----------
    model : fitted model with item factors
    item_features : Features
        Item features; rows are matched to the model's items by raw id.
    regularization : float, default 1.0
        Ridge penalty on ``W`` (not on the intercept).

    Examples
    --------
    >>> import pandas as pd
    >>> import factorkit as fk
    >>> data = fk.Interactions.from_arrays(["a", "a", "b", "b", "c"], [1, 2, 2, 3, 1])
    >>> df = pd.DataFrame({"item": [1, 2, 3, 4], "genre": ["x", "y", "y", "x"]})
    >>> features = fk.Features.from_pandas(df, id="item")
    >>> als = fk.ImplicitALS(factors=2, epochs=2, random_state=0).fit(data)
    >>> reg = fk.content_regression(als, features, regularization=1.0)
    >>> new = features.transform(pd.DataFrame({"item": [9], "genre": ["y"]}))
    >>> reg.item_vectors(new)[0].shape, reg.score_new_items(new, users=["a", "b"]).shape
    ((1, 2), (2, 1))
    """
    factors = getattr(model, "item_factors_", None)
    if factors is None:
        raise NotFittedError(
            f"content_regression: {type(model).__name__} is not fitted or has no item "
            "factors; pass a fitted model with item factors (ALS, ImplicitALS, BPR, ...)"
        )
    if not isinstance(item_features, Features) or item_features.kind != "item":
        raise DataError(
            "content_regression: item_features must be item Features; build them with "
            "fk.Features.from_pandas(df, id=..., kind='item')"
        )
    if not (isinstance(regularization, (int, float)) and regularization >= 0):
        raise DataError(
            f"content_regression: regularization must be a number >= 0; got {regularization!r}"
        )
    pos = item_features.ids.lookup(model.item_map_.ids)
    rows = np.flatnonzero(pos >= 0)
    if len(rows) == 0:
        raise DataError(
            "content_regression: none of the model's items has a row in item_features; build "
            "the features with the same item ids as the training data"
        )
    x = _with_intercept(item_features.matrix[pos[rows]])
    y = np.hstack([factors[rows], np.asarray(model.item_bias_)[rows, None]]).astype(np.float64)
    gram = (x.T @ x).toarray()
    penalty = np.full(x.shape[1], float(regularization))
    penalty[-1] = 0.0  # the intercept is not shrunk
    coef = np.linalg.solve(gram + np.diag(penalty) + 1e-9 * np.eye(len(penalty)), x.T @ y)
    return ContentRegression(model, item_features.names.copy(), coef[:, :-1], coef[:, -1])


def _with_intercept(x: sp.spmatrix) -> sp.csr_matrix:
    return sp.hstack([x, np.ones((x.shape[0], 1), np.float32)], format="csr")
