"""Declared parameter constraints and the one function that checks them.

Each estimator declares ``_parameter_constraints``: a mapping from parameter name to a
constraint. ``validate_params`` checks every parameter in ``fit`` and raises
:class:`InvalidParameterError` with the constraint in the message, e.g.
``The 'factors' parameter of BiasedMF must be an int >= 1; got 0.``
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from factorkit.exceptions import InvalidParameterError

__all__ = [
    "LOOP_CONSTRAINTS",
    "TRAINING_CONSTRAINTS",
    "Boolean",
    "Callables",
    "Interval",
    "NoneOr",
    "Options",
    "RandomState",
    "Threads",
    "validate_params",
]


@dataclass(frozen=True)
class Interval:
    """A real or integer number in a range; ``None`` bounds are open-ended."""

    kind: type  # int or float
    low: float | None = None
    high: float | None = None
    closed: str = "both"  # "both", "left", "right", "neither"

    def accepts(self, value: Any) -> bool:
        if isinstance(value, bool):
            return False
        if self.kind is int:
            if not isinstance(value, numbers.Integral):
                return False
        elif not isinstance(value, numbers.Real) or not np.isfinite(value):
            return False
        lo_ok = self.low is None or (
            value >= self.low if self.closed in ("both", "left") else value > self.low
        )
        hi_ok = self.high is None or (
            value <= self.high if self.closed in ("both", "right") else value < self.high
        )
        return bool(lo_ok and hi_ok)

    def describe(self) -> str:
        noun = "an int" if self.kind is int else "a number"
        lo_op = ">=" if self.closed in ("both", "left") else ">"
        hi_op = "<=" if self.closed in ("both", "right") else "<"
        if self.low is not None and self.high is not None:
            lb = "[" if lo_op == ">=" else "("
            rb = "]" if hi_op == "<=" else ")"
            return f"{noun} in {lb}{_num(self.low)}, {_num(self.high)}{rb}"
        if self.low is not None:
            return f"{noun} {lo_op} {_num(self.low)}"
        if self.high is not None:
            return f"{noun} {hi_op} {_num(self.high)}"
        return noun


@dataclass(frozen=True)
class Options:
    """One of a fixed set of values."""

    values: tuple

    def accepts(self, value: Any) -> bool:
        return any(value == v and type(value) is type(v) for v in self.values)

    def describe(self) -> str:
        return "one of " + ", ".join(repr(v) for v in self.values)


@dataclass(frozen=True)
class Boolean:
    def accepts(self, value: Any) -> bool:
        return isinstance(value, (bool, np.bool_))

    def describe(self) -> str:
        return "a bool"


@dataclass(frozen=True)
class RandomState:
    """None, a non-negative int seed, or a numpy Generator."""

    def accepts(self, value: Any) -> bool:
        if value is None or isinstance(value, np.random.Generator):
            return True
        return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 0

    def describe(self) -> str:
        return "None, an int >= 0 or a numpy.random.Generator"


@dataclass(frozen=True)
class Threads:
    """None (all cores) or an int >= 1."""

    def accepts(self, value: Any) -> bool:
        return value is None or (
            isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 1
        )

    def describe(self) -> str:
        return "None (all cores) or an int >= 1"


@dataclass(frozen=True)
class Callables:
    """None or a sequence of callables."""

    def accepts(self, value: Any) -> bool:
        if value is None or callable(value):
            return True
        return isinstance(value, Sequence) and all(callable(v) for v in value)

    def describe(self) -> str:
        return "None, a callable or a list of callables"


@dataclass(frozen=True)
class NoneOr:
    """None or whatever ``inner`` accepts."""

    inner: Any

    def accepts(self, value: Any) -> bool:
        return value is None or self.inner.accepts(value)

    def describe(self) -> str:
        return f"None or {self.inner.describe()}"


@dataclass(frozen=True)
class Satisfies:
    """A free-form check with its own description."""

    check: Callable[[Any], bool]
    description: str

    def accepts(self, value: Any) -> bool:
        return bool(self.check(value))

    def describe(self) -> str:
        return self.description


def validate_params(owner: str, params: Mapping[str, Any], constraints: Mapping[str, Any]) -> None:
    """Raise :class:`InvalidParameterError` for the first parameter outside its constraint."""
    for name, constraint in constraints.items():
        if name not in params:
            continue
        value = params[name]
        if not constraint.accepts(value):
            raise InvalidParameterError(
                f"The {name!r} parameter of {owner} must be {constraint.describe()}; got {value!r}."
            )


def _num(x: float) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


#: constraints of the training-loop parameters every iterative model shares
LOOP_CONSTRAINTS: dict[str, Any] = {
    "progress": Boolean(),
    "callbacks": Callables(),
    "early_stopping": NoneOr(
        Satisfies(
            lambda v: (
                v is True
                or (isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 1)
            ),
            "True or an int >= 1 (patience in epochs)",
        )
    ),
}
#: ... plus seeding and threads, for models that have randomness and parallel kernels
TRAINING_CONSTRAINTS: dict[str, Any] = {
    "random_state": RandomState(),
    "n_threads": Threads(),
    **LOOP_CONSTRAINTS,
}
