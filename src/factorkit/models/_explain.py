"""Explanations: which of a user's items drove a score.

Two methods, chosen by what the model's fold-in is:

- ``"linear"`` (:class:`~factorkit.ImplicitALS`): the user's vector is the solution of a
  weighted least-squares system, ``x = A^-1 sum_j c_j y_j`` with
  ``A = w0 Y^T Y + sum_j (c_j - w0) y_j y_j^T + lambda I``, so the score of item ``i`` is
  exactly ``sum_j c_j (y_i^T A^-1 y_j)``: the contribution of item ``j`` is its term of
  that sum, and the contributions add up to the score. This is what ``implicit``'s
  ``AlternatingLeastSquares.explain`` reports.
- ``"leave-one-out"`` (every other model that can fold in): the contribution of item ``j``
  is the score with all the items minus the score folded in again without ``j``. It uses
  only the public ``fold_in`` and works for any model, but the contributions need not add
  up to the score.

Both re-solve the user from the items given (for a known user, by default their training
items), as ``implicit`` does from ``user_items``; the explained ``score`` is that re-solved
score, which equals ``recommend_new_user``'s score for the same items.
"""

from __future__ import annotations

import weakref
from typing import Any, NamedTuple

import numpy as np

from factorkit._threads import single_thread_blas
from factorkit.base import get_tags
from factorkit.exceptions import DataError

__all__ = ["Explanation", "explain", "explain_new_user"]


class Explanation(NamedTuple):
    """Why a user gets a score for ``item``.

    ``contributions`` lists ``(item, contribution)`` for each of the user's items, largest
    first; ``method`` is ``"linear"`` (contributions sum to ``score``) or
    ``"leave-one-out"``.
    """

    item: Any
    score: float
    contributions: list[tuple[Any, float]]
    method: str


def _is_linear(model: Any) -> bool:
    # the exact decomposition needs the implicit-ALS system; other models use leave-one-out
    from factorkit.models.implicit_als import ImplicitALS

    return isinstance(model, ImplicitALS) and hasattr(model, "item_factors_")


def _plain(x: Any) -> Any:
    return x.item() if isinstance(x, np.generic) else x


#: per model: ``[fingerprint, w0 * Y^T Y (float64), verified]``. The Gram is the costly
#: part of the system and the same for every user; ``verified`` records that this system
#: reproduced the model's own ``fold_in`` once (checked on first use). The fingerprint
#: (identity and shape of ``item_factors_``) changes when ``partial_fit`` adds items.
_GRAMS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _gram_entry(model: Any) -> list:
    y = model.item_factors_
    fingerprint = (id(y), y.shape)
    entry = _GRAMS.get(model)
    if entry is None or entry[0] != fingerprint:
        y64 = y.astype(np.float64)
        entry = [fingerprint, float(model.unobserved_weight) * (y64.T @ y64), None]
        _GRAMS[model] = entry
    return entry


def _implicit_system(model: Any, pos: np.ndarray, r: np.ndarray, gram: np.ndarray):
    """``(A, c)`` of ImplicitALS's fold-in for item positions ``pos`` with values ``r``.

    Mirrors ``ImplicitALS.fold_in`` (confidence, penalty and Gram term) from the model's
    public parameters; :func:`explain_new_user` checks the solution against ``fold_in``.
    """
    alpha = float(model.alpha)
    if model.confidence == "log":
        c = np.where(r > 0, 1.0 + alpha * np.log1p(np.maximum(r, 0) / float(model.epsilon)), 0.0)
    else:
        c = np.where(r > 0, 1.0 + alpha * r, 0.0)
    w0 = float(model.unobserved_weight)
    nu = float(model.regularization_exponent)
    lam = float(model.regularization)
    if nu != 0.0:
        lam *= (len(pos) + w0 * len(model.item_factors_)) ** nu
    q = model.item_factors_[pos].astype(np.float64)
    a = gram + q.T @ ((c - w0)[:, None] * q)
    a[np.diag_indices_from(a)] += lam
    return a, c


def _inputs(model: Any, items: Any, ratings: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
    ids = np.atleast_1d(np.asarray(items, dtype=object if _has_str(items) else None))
    if ids.ndim != 1 or len(ids) == 0:
        raise DataError(f"{where}: items must be a non-empty list of item ids; got {items!r}")
    pos = model.item_map_.to_index(ids)
    if ratings is None:
        r = np.ones(len(pos))
    else:
        r = np.asarray(ratings, dtype=np.float64).reshape(-1)
        if len(r) != len(pos):
            raise DataError(
                f"{where}: {len(pos)} items but {len(r)} ratings; pass one rating per item"
            )
    return pos, r


def _has_str(items: Any) -> bool:
    return isinstance(items, str) or (
        isinstance(items, (list, tuple)) and any(isinstance(x, str) for x in items)
    )


def explain_new_user(model: Any, items: Any, ratings: Any = None, item: Any = None) -> Any:
    """Explain the score that a user who interacted with ``items`` gets for ``item``.

    Parameters
    ----------
    model : fitted model that can fold in
    items : list of raw item ids
        The user's items (as for ``model.fold_in``).
    ratings : list of float, optional
        One value per item (required by explicit-rating models).
    item : raw item id, or a list of them
        The item whose score is explained; for a list, one explanation per item (the
        user is solved once).

    Returns
    -------
    Explanation, or a list of them when ``item`` is a list
        See the module docstring for the two methods.

    Examples
    --------
    >>> import factorkit as fk
    >>> data = fk.datasets.load_movielens_small()
    >>> model = fk.ImplicitALS(factors=8, epochs=2, random_state=0).fit(data)
    >>> e = explain_new_user(model, [1, 50, 260], item=1196)
    >>> e.method, len(e.contributions)
    ('linear', 3)
    >>> bool(abs(sum(c for _, c in e.contributions) - e.score) < 1e-6)
    True
    """
    where = f"{type(model).__name__}.explain"
    pos, r = _inputs(model, items, ratings, where)
    many = isinstance(item, (list, tuple, np.ndarray))
    targets = model.item_map_.to_index(list(item) if many else [item])
    ids = model.item_map_.ids[pos]
    with single_thread_blas():
        scores, contrib, method = _contributions(model, ids, pos, r, targets)
    id_list = ids.tolist()
    out = [
        _explanation(raw, scores[t], id_list, contrib[t], method)
        for t, raw in enumerate(list(item) if many else [item])
    ]
    return out if many else out[0]


def _contributions(model: Any, ids: np.ndarray, pos: np.ndarray, r: np.ndarray, targets):
    """``(scores (T,), contributions (T, n), method)`` for target item positions."""
    entry = _gram_entry(model) if _is_linear(model) else None
    if entry is not None and entry[2] is not False:
        q = model.item_factors_[pos].astype(np.float64)
        a, c = _implicit_system(model, pos, r, entry[1])
        if entry[2] is None:  # first use: does this system reproduce the model's fold-in?
            solved = np.linalg.solve(a, q.T @ c)
            reference = model.fold_in(ids.tolist(), ratings=r).factors
            entry[2] = bool(np.allclose(solved, reference, rtol=1e-3, atol=1e-4))
        if entry[2]:
            # W = A^-1 Y_targets^T; contribution (t, j) = c_j * (q_j . w_t)
            w = np.linalg.solve(a, model.item_factors_[targets].astype(np.float64).T)
            contrib = (c[:, None] * (q @ w)).T
            return contrib.sum(axis=1), contrib, "linear"
        # this system does not match the model's fold-in: use the model-agnostic method
    n = len(ids)
    score = _scores(model, ids, r, targets)
    contrib = np.empty((len(targets), n))
    for j in range(n):
        keep = np.arange(n) != j
        if keep.any():
            without = _scores(model, ids[keep], r[keep], targets)
        else:
            without = _scores_of(model, np.zeros(model.item_factors_.shape[1]), 0.0, targets)
        contrib[:, j] = score - without
    return score, contrib, "leave-one-out"


def _scores(model: Any, ids: np.ndarray, r: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Ranking scores of item positions ``targets`` for a user folded in from ``ids``."""
    folded = model.fold_in(ids.tolist(), ratings=r)
    return _scores_of(model, folded.factors, folded.bias, targets)


def _scores_of(model: Any, factors: np.ndarray, bias: float, targets: np.ndarray) -> np.ndarray:
    scores = model.item_factors_[targets].astype(np.float64) @ factors.astype(np.float64)
    item_bias = getattr(model, "item_bias_", None)
    if item_bias is not None:
        scores += item_bias[targets]
    if _explicit(model):
        scores += float(model.global_mean_) + float(bias)
    return scores


def _explicit(model: Any) -> bool:
    return get_tags(model).explicit


def _explanation(item: Any, score: float, ids: list, contrib: np.ndarray, method: str):
    order = np.argsort(-contrib, kind="stable").tolist()
    values = contrib.tolist()
    pairs = [(ids[j], values[j]) for j in order]
    return Explanation(item=_plain(item), score=float(score), contributions=pairs, method=method)


def explain(
    model: Any, user: Any, item: Any, items: Any = None, ratings: Any = None
) -> Explanation:
    """Explain a known user's score for ``item`` by the items they interacted with.

    The user is re-solved from ``items`` and ``ratings`` (default: their training items
    and values, as the model keeps them in ``seen_values_``), exactly as
    :func:`explain_new_user` does.

    Examples
    --------
    >>> import factorkit as fk
    >>> data = fk.datasets.load_movielens_small().to_implicit(min_value=4.0)
    >>> model = fk.ImplicitALS(factors=8, epochs=2, random_state=0).fit(data)
    >>> e = explain(model, 1, 1196)
    >>> e.method, e.contributions[0][1] >= e.contributions[-1][1]
    ('linear', True)
    """
    where = f"{type(model).__name__}.explain"
    if items is None:
        u = int(model.user_map_.to_index([user])[0])
        lo, hi = int(model.seen_indptr_[u]), int(model.seen_indptr_[u + 1])
        if hi == lo:
            raise DataError(f"{where}: user {_plain(user)!r} has no training items to explain by")
        values = getattr(model, "seen_values_", None)
        if ratings is None and values is not None:
            ratings = values[lo:hi].astype(np.float64).tolist()
        elif ratings is None and _explicit(model):
            raise DataError(
                f"{where}: this {type(model).__name__} was loaded from a file without training "
                "ratings; pass items=[...] and ratings=[...] for the user"
            )
        items = model.item_map_.ids[model.seen_indices_[lo:hi]].tolist()
    else:
        model.user_map_.to_index([user])
    return explain_new_user(model, items, ratings, item)
