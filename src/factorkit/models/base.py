"""Estimator base: parameters, cloning, fitted checks and the model registry.

The scikit-learn contract adapted to users and items: ``__init__`` only stores its
arguments, ``fit`` validates them against the class's ``_parameter_constraints`` and
returns ``self``, learned state ends in ``_``.
"""

from __future__ import annotations

import copy
import inspect
from typing import Any, ClassVar

from factorkit._validation import check_params
from factorkit.exceptions import InvalidParameterError, NotFittedError

__all__ = ["Estimator", "clone", "model_class"]

_REGISTRY: dict[str, type[Estimator]] = {}


class Estimator:
    """Base of every factorkit model: get_params / set_params / clone / repr.

    Subclasses list every constructor argument explicitly in ``__init__`` and store each
    one unchanged under the same name. ``_parameter_constraints`` declares each
    parameter's allowed values once; :meth:`_validate_params` checks them in ``fit``.
    """

    _parameter_constraints: ClassVar[dict[str, Any]] = {}
    #: attribute whose presence means "fitted"
    _fitted_marker: ClassVar[str] = "user_map_"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("_"):
            _REGISTRY[cls.__name__] = cls

    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [
            name
            for name, p in sig.parameters.items()
            if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]

    def get_params(self, deep: bool = False) -> dict[str, Any]:
        """Constructor parameters as a dict (``deep`` is accepted for scikit-learn parity)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> Estimator:
        """Set constructor parameters; unknown names raise InvalidParameterError."""
        valid = self._param_names()
        for name, value in params.items():
            if name not in valid:
                raise InvalidParameterError(
                    f"{type(self).__name__} has no parameter {name!r}; valid parameters are "
                    f"{', '.join(valid)}"
                )
            setattr(self, name, value)
        return self

    def _validate_params(self) -> None:
        check_params(type(self).__name__, self.get_params(), self._parameter_constraints)

    def _is_fitted(self) -> bool:
        return hasattr(self, self._fitted_marker)

    def _check_fitted(self, method: str = "this method") -> None:
        if not self._is_fitted():
            raise NotFittedError(
                f"This {type(self).__name__} is not fitted yet; call fit(train) before {method}."
            )

    def __repr__(self) -> str:
        defaults = {
            name: p.default
            for name, p in inspect.signature(type(self).__init__).parameters.items()
            if p.default is not inspect.Parameter.empty
        }
        shown = []
        for name, value in self.get_params().items():
            default = defaults.get(name, inspect.Parameter.empty)
            try:
                same = value is default or bool(value == default)
            except Exception:
                same = False
            if not same:
                shown.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(shown)})"


def clone(estimator: Estimator) -> Estimator:
    """A new unfitted estimator with the same parameters (parameters are deep-copied,
    except callables such as callbacks, which are shared)."""
    if not isinstance(estimator, Estimator):
        raise InvalidParameterError(
            f"clone expects a factorkit estimator instance; got {type(estimator).__name__}. "
            "Pass an instance such as fk.BiasedMF(), not the class."
        )
    params = {
        k: (v if callable(v) or _is_callable_list(v) else copy.deepcopy(v))
        for k, v in estimator.get_params().items()
    }
    return type(estimator)(**params)


def _is_callable_list(v: Any) -> bool:
    return isinstance(v, (list, tuple)) and any(callable(x) for x in v)


def model_class(name: str) -> type[Estimator]:
    """The registered estimator class called ``name`` (used when loading saved models)."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(name) from None
