"""Argument checks shared by the data-layer functions (synthetic data, splits).

Every check raises :class:`~factorkit.exceptions.InvalidParameterError` with one message
shape: ``"<function>: <argument> must be <expected>; got <value>"``.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any

import numpy as np

from factorkit.exceptions import InvalidParameterError


def show(value: Any) -> str:
    """A short, readable rendering of a user-supplied value for error messages."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (bool, int, float, str)) or value is None:
        text = repr(value)
    else:
        text = f"{type(value).__name__} {value!r}"
    return text if len(text) <= 80 else text[:77] + "..."


def fail(fn: str, name: str, expected: str, value: Any) -> InvalidParameterError:
    """The error for ``name`` of ``fn`` not being ``expected``."""
    return InvalidParameterError(f"{fn}: {name} must be {expected}; got {show(value)}")


def is_int(value: Any) -> bool:
    return isinstance(value, Integral) and not isinstance(value, (bool, np.bool_))


def is_real(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, (bool, np.bool_))


def check_int(value: Any, name: str, fn: str, *, low: int | None = None) -> int:
    """``value`` as an int, which must be ``>= low`` when given."""
    expected = "an int" if low is None else f"an int >= {low}"
    if not is_int(value) or (low is not None and value < low):
        raise fail(fn, name, expected, value)
    return int(value)


def check_real(
    value: Any,
    name: str,
    fn: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """``value`` as a finite float within the given (closed unless ``*_open``) bounds."""
    if low is not None and high is not None:
        expected = (
            f"a number in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        )
    elif low is not None:
        expected = f"a number {'>' if low_open else '>='} {low:g}"
    elif high is not None:
        expected = f"a number {'<' if high_open else '<='} {high:g}"
    else:
        expected = "a finite number"
    ok = is_real(value) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        raise fail(fn, name, expected, value)
    return float(value)


def check_bool(value: Any, name: str, fn: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise fail(fn, name, "True or False", value)
    return bool(value)


def make_rng(random_state: Any, fn: str) -> np.random.Generator:
    """A Generator from None, an int >= 0, a SeedSequence, a BitGenerator or a Generator."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    if random_state is None or isinstance(
        random_state, (np.random.SeedSequence, np.random.BitGenerator)
    ):
        return np.random.default_rng(random_state)
    if is_int(random_state) and random_state >= 0:
        return np.random.default_rng(int(random_state))
    raise fail(fn, "random_state", "None, an int >= 0 or a numpy.random.Generator", random_state)
