"""FoldInMixin: a new user's representation without refitting (``fold_in``,
``recommend_new_user``); declares ``can_fold_in``.

Both are single-row paths: they run with one BLAS thread
(:func:`factorkit._threads.single_thread_blas`), since a threaded solve of a small system
costs more in hand-offs than it computes, and far more on a busy machine. A model
customises the solve by overriding ``_fold_in(item_positions, ratings) -> FoldIn``; the
default solves the regularised least-squares problem of one user against the fixed item
factors and biases, with the hooks ``_fold_in_regularization(n)``,
``_fold_in_offset(item_positions)`` and ``_ridge_solve(gram, rhs)``.
"""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple

import numpy as np

from factorkit._threads import single_thread_blas
from factorkit.exceptions import DataError
from factorkit.models._explain import explain, explain_new_user
from factorkit.models._recommend import candidate_mask, check_k, to_item_ids

__all__ = ["FoldIn", "FoldInMixin"]


#: the largest finite float32, the factors' dtype
_FLOAT32_MAX = float(np.finfo(np.float32).max)


class FoldIn(NamedTuple):
    """A new user's learned representation: latent ``factors`` and ``bias``."""

    factors: np.ndarray
    bias: float


class FoldInMixin:
    """``fold_in`` and ``recommend_new_user`` for users unseen in training.

    Examples
    --------
    >>> import factorkit as fk
    >>> data = fk.Interactions.from_arrays(["a", "a", "b"], [1, 2, 2], [5.0, 3.0, 4.0])
    >>> model = fk.BaselineOnly(epochs=2).fit(data)
    >>> round(model.fold_in([1], ratings=[5.0]).bias, 3)
    0.125
    """

    _tags: ClassVar[dict[str, Any]] = {"can_fold_in": True}

    def explain(self, user: Any, item: Any, items: Any = None, ratings: Any = None):
        """Which of ``user``'s items drove their score for ``item``.

        For ImplicitALS the exact split of the score over the user's items through the
        user's solve (the contributions add up to the score, as ``implicit`` reports);
        for the other models leave-one-out fold-ins. See
        :mod:`factorkit.models._explain` for both methods.

        Returns
        -------
        Explanation
            ``(item, score, contributions, method)``; contributions largest first.
        """
        return explain(self, user, item, items, ratings)

    def explain_new_user(self, items: Any, ratings: Any = None, item: Any = None):
        """:meth:`explain` for a user the model has never seen, given their items."""
        return explain_new_user(self, items, ratings, item)

    def fold_in(self, items: Any, ratings: Any = None) -> FoldIn:
        """A new user's factors and bias from a few rated items, without refitting.

        Solves the model's training problem for one user with the item parameters held
        fixed (for rating models: regularised least squares on ``[b_u, p_u]``).

        Parameters
        ----------
        items : array-like
            Raw item ids the new user rated (all must be known to the model).
        ratings : array-like, optional
            One value per item (required for explicit-rating models; implicit models
            default to 1.0 each).

        Returns
        -------
        FoldIn
            ``factors`` (the user's effective vector, as used for scoring) and ``bias``.
        """
        self._check_fitted("fold_in")
        pos, r = self._fold_in_inputs(items, ratings)
        with single_thread_blas():
            return self._fold_in(pos, r)

    def _fold_in(self, pos: np.ndarray, r: np.ndarray) -> FoldIn:
        q = self.item_factors_[pos].astype(np.float64)
        offset = self._fold_in_offset(pos)
        lam = self._fold_in_regularization(len(pos))
        y = r - self.global_mean_ - self.item_bias_[pos] - q @ offset
        biased = self._uses_bias()
        x = np.hstack([np.ones((len(pos), 1)), q]) if biased else q
        sol = self._ridge_solve(x.T @ x + lam * np.eye(x.shape[1]), x.T @ y)
        if biased:
            return FoldIn(factors=(sol[1:] + offset).astype(np.float32), bias=float(sol[0]))
        return FoldIn(factors=(sol + offset).astype(np.float32), bias=0.0)

    def _fold_in_regularization(self, n_ratings: int) -> float:
        return float(self.regularization)

    def _ridge_solve(self, gram: np.ndarray, rhs: np.ndarray) -> np.ndarray:
        """One row's regularised normal equations ``gram sol = rhs`` (``fold_in`` and
        ``partial_fit``); a model with constrained factors overrides it (ALS
        ``nonnegative``)."""
        return np.linalg.solve(gram, rhs)

    def _fold_in_offset(self, item_pos: np.ndarray) -> np.ndarray:
        """Part of the user vector fixed by the items themselves (SVD++'s implicit term)."""
        return np.zeros(self.item_factors_.shape[1], dtype=np.float64)

    def _uses_bias(self) -> bool:
        return bool(getattr(self, "biased", True)) and self._rating_model()

    def _fold_in_inputs(self, items: Any, ratings: Any) -> tuple[np.ndarray, np.ndarray]:
        name = type(self).__name__
        pos = self.item_map_.to_index(items)
        if len(pos) == 0:
            raise DataError(f"{name}.fold_in: items is empty; pass at least one rated item")
        if len(np.unique(pos)) != len(pos):
            raise DataError(f"{name}.fold_in: items holds repeated ids; pass each item once")
        if ratings is None:
            if self._rating_model():
                raise DataError(
                    f"{name}.fold_in: ratings are required for an explicit-rating model; "
                    "pass ratings=[...] with one rating per item"
                )
            r = np.ones(len(pos))
        else:
            r = np.asarray(ratings, dtype=np.float64).reshape(-1)
            if len(r) != len(pos):
                raise DataError(
                    f"{name}.fold_in: {len(pos)} items but {len(r)} ratings; pass one rating "
                    "per item"
                )
            if not np.isfinite(r).all():
                raise DataError(f"{name}.fold_in: ratings must be finite numbers; got {r}")
            big = np.abs(r) > _FLOAT32_MAX  # the factors are float32: these become inf
            if big.any():
                raise DataError(
                    f"{name}.fold_in: ratings must be within float32's range (|r| <= 3.4e38) "
                    f"to be solved against float32 factors; ratings[{int(np.argmax(big))}] is "
                    f"{float(r[np.argmax(big)])!r}. Rescale them as the training data was."
                )
        return pos, r

    def recommend_new_user(
        self,
        items: Any,
        ratings: Any = None,
        k: int = 10,
        exclude_seen: bool = True,
        exclude_items: Any = None,
        candidates: Any = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Fold a new user in from a few interactions and return their top-``k`` items.

        The given items are left out when ``exclude_seen`` is true; ``exclude_items`` and
        ``candidates`` (raw item ids) work as ``exclude_items`` and ``items`` of
        ``recommend``. Returns 1-D ``(item_ids, scores)``.
        """
        folded = self.fold_in(items, ratings)
        k = check_k(k, "recommend_new_user")
        excluded = candidate_mask(self, exclude_items, candidates)
        if exclude_seen:
            excluded[self.item_map_.to_index(items)] = True
        with single_thread_blas():
            idx, val = self._topk(
                folded.factors[None, :],
                k,
                np.zeros(2, dtype=np.int64),
                np.empty(0, dtype=np.int32),
                excluded,
                item_bias=self._item_bias_for_ranking(),
            )
        if self._rating_model():
            val += np.float32(self.global_mean_ + folded.bias)
        return to_item_ids(self, idx, val, single=True)


def pairwise_logistic_solve(d: np.ndarray, c: np.ndarray, lam: float) -> np.ndarray:
    """The minimiser ``w`` of ``mean(log(1 + exp(-(d w + c)))) + lam / 2 |w|^2``.

    The BPR objective of one user over sampled (positive, negative) pairs: row ``r`` of
    ``d`` is ``q_pos - q_neg``, ``c[r]`` the pair's bias difference (plus any fixed part
    of the score). Damped Newton with Armijo backtracking; strictly convex for
    ``lam > 0``, so it converges in a few steps. Returns float64.
    """
    n_pairs, k = d.shape

    def objective(w: np.ndarray) -> float:
        return float(np.mean(np.logaddexp(0.0, -(d @ w + c))) + 0.5 * lam * w @ w)

    w = np.zeros(k)
    value = objective(w)
    for _ in range(50):
        s = 0.5 * (1.0 + np.tanh(0.5 * (d @ w + c)))  # sigma, overflow-free
        grad = -(d.T @ (1.0 - s)) / n_pairs + lam * w
        hess = (d.T * (s * (1.0 - s))) @ d / n_pairs + lam * np.eye(k)
        direction = np.linalg.solve(hess, grad)
        decrease = float(grad @ direction)
        if decrease < 1e-12:
            break
        t = 1.0
        while t > 1e-8:  # backtracking (Armijo)
            trial = w - t * direction
            trial_value = objective(trial)
            if trial_value <= value - 1e-4 * t * decrease:
                break
            t *= 0.5
        w, value = trial, trial_value
    return w
