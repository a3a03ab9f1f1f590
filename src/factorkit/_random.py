"""Seeding: one way to turn a user's ``random_state`` into a :class:`numpy.random.Generator`.

Kernels receive generators or explicit seeds; this is where the public ``random_state``
argument of data functions (splits, synthetic data) is checked and turned into one.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from factorkit._validation import Satisfies, check

__all__ = ["SEED", "make_rng"]


def _is_seed(value: Any) -> bool:
    if value is None or isinstance(
        value, (np.random.Generator, np.random.SeedSequence, np.random.BitGenerator)
    ):
        return True
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 0


#: what ``random_state`` may be (SeedSequence and BitGenerator are accepted silently)
SEED = Satisfies(_is_seed, "None, an int >= 0 or a numpy.random.Generator")


def make_rng(random_state: Any, owner: str) -> np.random.Generator:
    """A Generator from None, an int >= 0, a SeedSequence, a BitGenerator or a Generator;
    ``owner`` names the calling function in the error for anything else.

    Examples
    --------
    >>> int(make_rng(0, "f").integers(10)) == int(make_rng(0, "f").integers(10))
    True
    >>> make_rng(-1, "split.random")
    Traceback (most recent call last):
    ...
    factorkit.exceptions.InvalidParameterError: split.random: random_state must be None, an int >= 0 or a numpy.random.Generator; got -1
    """  # noqa: E501
    check(random_state, SEED, "random_state", owner)
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, numbers.Integral):
        return np.random.default_rng(int(random_state))
    return np.random.default_rng(random_state)
