"""Successive halving: the budget schedule and the survivors of each round.

Every candidate first trains with a small budget of ``resource`` (``epochs`` by
default); the best ``1/factor`` go on with ``factor`` times more, until the survivors
train with the full budget. Both searches do this with ``halving=True``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from factorkit.exceptions import InvalidParameterError

__all__ = ["check_halving", "halving_rounds", "survivors"]


def check_halving(
    owner: str,
    space_arg: str,
    resource: str,
    candidates: Sequence[Mapping[str, Any]],
    min_resources: int | None,
    max_resources: int,
) -> None:
    """The resource must not be searched, and its range must not be empty."""
    if any(resource in c for c in candidates):
        raise InvalidParameterError(
            f"{owner}: with halving=True, {resource!r} is the resource the search grows "
            f"itself; remove it from {space_arg} and set the full budget with max_resources "
            f"(default: the estimator's {resource})"
        )
    if min_resources is not None and min_resources > max_resources:
        raise InvalidParameterError(
            f"{owner}: min_resources ({min_resources}) must be <= max_resources ({max_resources})"
        )


def halving_rounds(
    n_candidates: int, factor: float, min_resources: int | None, max_resources: int
) -> list[tuple[int, int]]:
    """[(resources, n_candidates)] per round; the last round uses ``max_resources``.

    As many rounds as it takes to narrow the candidates to fewer than ``factor``
    (``1 + floor(log_factor(n))``), but no more than the resource range allows.

    Examples
    --------
    >>> halving_rounds(27, 3, None, 27)
    [(1, 27), (3, 9), (9, 3), (27, 1)]
    >>> halving_rounds(10, 2, 5, 20)
    [(5, 10), (10, 5), (20, 3)]
    """
    f = float(factor)
    min_r = 1 if min_resources is None else int(min_resources)
    n_required = 1 + math.floor(math.log(n_candidates) / math.log(f) + 1e-9)
    n_possible = 1 + math.floor(math.log(max_resources / min_r) / math.log(f) + 1e-9)
    n_rounds = max(1, min(n_required, n_possible))
    rounds = []
    n = n_candidates
    for i in range(n_rounds):
        last = i == n_rounds - 1
        r = max_resources if last else max(min_r, round(max_resources / f ** (n_rounds - 1 - i)))
        rounds.append((int(r), n))
        n = max(1, math.ceil(n / f))
    return rounds


def survivors(alive: list[int], means: np.ndarray, keep: int, higher: bool) -> list[int]:
    """The ``keep`` best of ``alive`` by mean score (failures, nan, last), in their order."""
    means = np.asarray(means, dtype=np.float64)
    key = np.where(np.isnan(means), np.inf, -means if higher else means)
    order = np.argsort(key, kind="stable")[:keep]
    return [alive[i] for i in sorted(order)]
