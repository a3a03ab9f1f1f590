"""Which items to ask a new visitor about first: popular, and spread over the factor space.

A new user's vector is folded in by a regularised least-squares solve over the items they
rate, so what the ratings tell the model is governed by ``A = lambda I + sum_j q_j q_j^T``
over the asked items ``j``: the more ``A`` grows in every direction (the larger
``log det A``), the smaller the uncertainty of the solved vector (D-optimal design). An
item the visitor does not know tells nothing, so each candidate's information gain is
weighted by its popularity. The greedy choice below adds, one at a time, the candidate
with the largest ``popularity^beta * log(1 + q_j^T A^-1 q_j)`` (the gain in ``log det A``
of asking ``j``), updating ``A^-1`` by Sherman-Morrison.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from factorkit._validation import Interval, validate_params
from factorkit.exceptions import NotFittedError

__all__ = ["onboarding_items"]


@validate_params(
    {"n": Interval(int, 1), "candidates": Interval(int, 1), "beta": Interval(float, 0, None)},
    owner="onboarding_items",
)
def onboarding_items(
    model: Any, n: int = 20, candidates: int = 500, beta: float = 0.5
) -> np.ndarray:
    """Raw ids of ``n`` items to ask a new visitor about before their first rating.

    Parameters
    ----------
    model : fitted factorkit model
        Popularity comes from the training interactions the model keeps for
        ``exclude_seen``; models without item factors get the most popular items.
    n : int, default 20
        Number of items (fewer if the model knows fewer).
    candidates : int, default 500
        Only the ``candidates`` most popular items are considered: items few visitors
        know are useless to ask about, however informative.
    beta : float, default 0.5
        Weight of popularity against spread (0: spread only among the candidates).

    Returns
    -------
    numpy.ndarray of raw item ids, in the order chosen (most informative first).

    Examples
    --------
    >>> import factorkit as fk
    >>> data = fk.datasets.load_movielens_small()
    >>> model = fk.ImplicitALS(factors=8, epochs=2, random_state=0).fit(data)
    >>> items = fk.onboarding_items(model, n=5)
    >>> len(items), len(set(items.tolist()))
    (5, 5)
    """
    if not hasattr(model, "item_map_"):
        raise NotFittedError(
            f"This {type(model).__name__} is not fitted yet; call fit(train) before "
            "onboarding_items."
        )
    popularity = item_popularity(model)
    order = np.argsort(-popularity, kind="stable")
    pool = order[: max(int(candidates), int(n))]
    pool = pool[popularity[pool] > 0] if (popularity[pool] > 0).sum() >= n else pool
    n = min(int(n), len(pool))
    factors = getattr(model, "item_factors_", None)
    if factors is None or factors.shape[1] == 0:
        return model.item_map_.ids[pool[:n]]
    q = factors[pool].astype(np.float64)
    # scale so the prior (identity) is comparable with one typical item's outer product
    scale = np.median(np.einsum("ij,ij->i", q, q))
    q /= np.sqrt(scale) if scale > 0 else 1.0
    weight = (popularity[pool] / popularity[pool].max()) ** float(beta) if beta else 1.0
    a_inv = np.eye(q.shape[1])
    chosen: list[int] = []
    available = np.ones(len(pool), dtype=bool)
    for _ in range(n):
        # leverage q_j^T A^-1 q_j of every candidate, against the items chosen so far
        leverage = np.einsum("ij,jk,ik->i", q, a_inv, q)
        gain = weight * np.log1p(np.maximum(leverage, 0.0))
        gain[~available] = -np.inf
        best = int(np.argmax(gain))
        chosen.append(best)
        available[best] = False
        v = a_inv @ q[best]
        a_inv -= np.outer(v, v) / (1.0 + q[best] @ v)
    return model.item_map_.ids[pool[chosen]]


def item_popularity(model: Any) -> np.ndarray:
    """Training interactions per item (in the model's item order), from its seen structure."""
    n_items = len(model.item_map_)
    seen = getattr(model, "seen_indices_", None)
    if seen is None:
        return np.ones(n_items)
    return np.bincount(np.asarray(seen), minlength=n_items).astype(np.float64)
