"""One vocabulary of argument constraints, for estimator classes and for functions.

A constraint object (:class:`Interval`, :class:`Options`, :class:`Boolean`, ...) says
what a value may be, in words (``describe``) and as a test (``accepts``). Two ways use
the same objects and the same message builder (:func:`constraint_error`):

- each estimator declares ``_parameter_constraints`` (name -> constraint); ``fit``
  checks them with :func:`check_params`, and an error reads
  ``The 'factors' parameter of BiasedMF must be an int >= 1; got 0.``
- a public function is wrapped by :func:`validate_params` (the decorator, as
  scikit-learn's ``validate_params``), or checks one value with :func:`check`; an error
  reads ``split.random: test_size must be a number in (0, 1); got 1.5``.

Every message names the argument, what was expected and what was given.
"""

from __future__ import annotations

import functools
import inspect
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
    "Satisfies",
    "Threads",
    "check",
    "check_params",
    "constraint_error",
    "show",
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


def show(value: Any) -> str:
    """A short, readable rendering of a user-supplied value for error messages."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (bool, int, float, str)) or value is None:
        text = repr(value)
    else:
        text = f"{type(value).__name__} {value!r}"
    return text if len(text) <= 80 else text[:77] + "..."


def constraint_error(
    owner: str, name: str, expected: str, value: Any, *, parameter_of: bool = False
) -> InvalidParameterError:
    """The one message shape for a value outside its constraint.

    ``parameter_of=True`` words it for an estimator's constructor parameter (``owner`` is
    the class name); otherwise for a function argument (``owner`` is how the user calls
    the function, e.g. ``"split.random"``).
    """
    if parameter_of:
        return InvalidParameterError(
            f"The {name!r} parameter of {owner} must be {expected}; got {value!r}."
        )
    return InvalidParameterError(f"{owner}: {name} must be {expected}; got {show(value)}")


def check_params(owner: str, params: Mapping[str, Any], constraints: Mapping[str, Any]) -> None:
    """Raise :class:`InvalidParameterError` for the first estimator parameter outside its
    constraint (the class-parameter wording of :func:`constraint_error`)."""
    for name, constraint in constraints.items():
        if name in params and not constraint.accepts(params[name]):
            raise constraint_error(
                owner, name, constraint.describe(), params[name], parameter_of=True
            )


def check(value: Any, constraint: Any, name: str, owner: str) -> Any:
    """Return ``value`` when ``constraint`` accepts it, else raise the function-argument
    error naming ``owner`` and ``name``.

    Examples
    --------
    >>> check(3, Interval(int, 1), "k", "recommend")
    3
    >>> check(0, Interval(int, 1), "k", "recommend")
    Traceback (most recent call last):
    ...
    factorkit.exceptions.InvalidParameterError: recommend: k must be an int >= 1; got 0
    """
    if not constraint.accepts(value):
        raise constraint_error(owner, name, constraint.describe(), value)
    return value


def validate_params(
    constraints: Mapping[str, Any], *, owner: str | None = None
) -> Callable[[Callable], Callable]:
    """Decorator: check a function's arguments against ``constraints`` on every call.

    ``owner`` is the name shown in messages (default: the function's qualified name).
    Arguments not listed are not checked; the function's own defaults are checked too,
    so a wrong default is caught by the first test that calls it.

    Examples
    --------
    >>> @validate_params({"k": Interval(int, 1)}, owner="top")
    ... def top(values, k=10):
    ...     return sorted(values)[-k:]
    >>> top([3, 1, 2], k=2)
    [2, 3]
    >>> top([3, 1, 2], k=0)
    Traceback (most recent call last):
    ...
    factorkit.exceptions.InvalidParameterError: top: k must be an int >= 1; got 0
    """

    def decorate(func: Callable) -> Callable:
        signature = inspect.signature(func)
        unknown = set(constraints) - set(signature.parameters)
        if unknown:  # a programming error in factorkit itself, caught at import
            raise TypeError(f"{func.__qualname__} has no argument(s) {sorted(unknown)}")
        name = owner or func.__qualname__

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            for arg, constraint in constraints.items():
                check(bound.arguments[arg], constraint, arg, name)
            return func(*args, **kwargs)

        return wrapper

    return decorate


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
