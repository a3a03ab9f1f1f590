"""Argument checks shared by evaluate, cross_validate, the searches, tune and the
spectrum tools: one place for each, in the vocabulary of :mod:`factorkit._validation`."""

from __future__ import annotations

import numbers
from typing import Any

from factorkit._validation import Satisfies, check, check_params
from factorkit.base import Estimator
from factorkit.data.interactions import Interactions
from factorkit.exceptions import InvalidParameterError

__all__ = [
    "ESTIMATOR",
    "INTERACTIONS",
    "check_estimator",
    "check_estimator_params",
    "int_parameter",
    "is_int",
]


def is_int(value: Any) -> bool:
    """An integer, numpy integers included, but not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


ESTIMATOR = Satisfies(
    lambda v: isinstance(v, Estimator), "a factorkit estimator instance such as fk.BiasedMF()"
)
INTERACTIONS = Satisfies(
    lambda v: isinstance(v, Interactions),
    "an Interactions (from fk.read_csv, fk.Interactions.from_pandas, fk.split, ...)",
)


def check_estimator(value: Any, owner: str, name: str = "estimator") -> Estimator:
    """Return ``value`` when it is an estimator instance; a class gets its own hint."""
    if isinstance(value, type) and issubclass(value, Estimator):
        cls = value.__name__
        raise InvalidParameterError(
            f"{owner}: {name} must be a factorkit estimator instance such as {cls}(), not "
            f"the class {cls}; pass {cls}(...) with any fixed parameters (it is cloned for "
            "every fit)"
        )
    return check(value, ESTIMATOR, name, owner)


def _declared(estimator: Estimator) -> dict[str, Any]:
    # the class's declared constraint table (base.Estimator's one declaration per class)
    return dict(getattr(type(estimator), "_parameter_constraints", {}))


def check_estimator_params(model: Estimator) -> None:
    """Raise the estimator's own parameter error (as ``fit`` would) without fitting."""
    check_params(type(model).__name__, model.get_params(), _declared(model))


def int_parameter(estimator: Estimator, name: str) -> bool:
    """Whether ``estimator`` declares ``name`` as an integer parameter (``None`` allowed)."""
    constraint = _declared(estimator).get(name)
    constraint = getattr(constraint, "inner", constraint)  # NoneOr(...)
    return getattr(constraint, "kind", None) is int
