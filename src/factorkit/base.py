"""Estimator base: parameters, cloning, fitted checks, declared tags and the ONE registry.

The scikit-learn contract adapted to users and items: ``__init__`` only stores its
arguments, ``fit`` validates them against the class's ``_parameter_constraints`` and
returns ``self``, learned state ends in ``_``.

Capabilities are declared, not probed: each class (and each capability mixin) sets
``_tags``, a dict of :class:`Tags` fields; :func:`get_tags` merges them along the class
hierarchy. A tag that a parameter decides (HybridMF's ``loss="squared"`` makes it a
rating model) is declared by the instance's ``_instance_tags()``, merged last when
``get_tags`` is given an instance (a class gives its default parameters' tags). Every
public estimator class registers itself when defined; :func:`all_estimators` lists them.
The CLI, search, reports, the check suite and persistence read tags and the registry,
never private attributes.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from factorkit._validation import check_params
from factorkit.exceptions import InvalidParameterError, NotFittedError

__all__ = ["Estimator", "Tags", "all_estimators", "clone", "get_tags", "model_class"]

_REGISTRY: dict[str, type[Estimator]] = {}


@dataclass(frozen=True)
class Tags:
    """What an estimator is and can do, as its class declares it.

    Attributes
    ----------
    kind : {"recommender", "decomposition"}
        Recommenders fit :class:`~factorkit.Interactions`; decompositions fit a matrix.
    feedback : {"explicit", "implicit"}
        Whether the model predicts ratings (scores clipped to the training rating
        scale; rating metrics apply) or ranks items from implicit feedback. A parameter
        may decide it (HybridMF's ``loss``): ask an instance, not the class.
    has_factors : bool
        Users and items have latent factor vectors (``user_factors_``/``item_factors_``)
        that similarity can use; declared with ``can_find_similar`` by ``SimilarMixin``
        (the neighbour models find similar items from their similarities and declare
        it False).
    can_recommend, can_find_similar, can_fold_in, can_partial_fit : bool
        Which capability methods the class has (``recommend``; ``similar_items``;
        ``fold_in``/``recommend_new_user``; ``partial_fit``). Set by the mixins that give
        those methods.
    iterative : bool
        Trained epoch by epoch (``epochs``, callbacks, early stopping apply).
    requires_timestamps : bool
        ``fit`` needs interaction timestamps.
    cli_name : str or None
        The name used by ``factorkit ... --model NAME``; None keeps it off the CLI.
    search_space : mapping
        Default random-search space in the JSON spelling of
        :func:`factorkit.evaluation.search.parse_search_space` (``{"factors":
        {"loguniform_int": [50, 200]}, ...}``): distributions around the defaults.
    search_grid : mapping
        Default grid: parameter -> list of values (at most about 12 settings).
    """

    kind: str = "recommender"
    feedback: str = "explicit"
    has_factors: bool = False
    can_recommend: bool = False
    can_find_similar: bool = False
    can_fold_in: bool = False
    can_partial_fit: bool = False
    iterative: bool = False
    requires_timestamps: bool = False
    cli_name: str | None = None
    search_space: Mapping[str, Any] = field(default_factory=dict)
    search_grid: Mapping[str, Any] = field(default_factory=dict)

    @property
    def explicit(self) -> bool:
        """True for rating models (``feedback == "explicit"``)."""
        return self.feedback == "explicit"


_TAG_FIELDS = frozenset(f.name for f in dataclasses.fields(Tags))


class Estimator:
    """Base of every factorkit model: get_params / set_params / clone / repr.

    Subclasses list every constructor argument explicitly in ``__init__`` and store each
    one unchanged under the same name. ``_parameter_constraints`` declares each
    parameter's allowed values once; :meth:`_validate_params` checks them in ``fit``.
    """

    _parameter_constraints: ClassVar[dict[str, Any]] = {}
    #: attribute whose presence means "fitted"
    _fitted_marker: ClassVar[str] = "user_map_"
    #: this class's own tag declarations (merged along the MRO by :func:`get_tags`)
    _tags: ClassVar[dict[str, Any]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        unknown = set(cls.__dict__.get("_tags", {})) - _TAG_FIELDS
        if unknown:  # a typo in a declaration is a bug in the class, caught at import
            raise TypeError(f"{cls.__name__}._tags has unknown tag(s) {sorted(unknown)}")
        if not cls.__name__.startswith("_") and not cls.__dict__.get("_abstract", False):
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

    def _instance_tags(self) -> dict[str, Any]:
        """Tags this instance's parameters decide, over the class's (none by default)."""
        return {}

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


def get_tags(estimator: Estimator | type[Estimator]) -> Tags:
    """The declared :class:`Tags` of an estimator instance or class.

    For an instance, tags that its parameters decide (``_instance_tags()``) override the
    class's: ``fk.get_tags(fk.HybridMF(loss="squared")).feedback`` is "explicit".

    Examples
    --------
    >>> import factorkit as fk
    >>> tags = fk.get_tags(fk.ImplicitALS())
    >>> tags.feedback, tags.has_factors, tags.can_fold_in, tags.cli_name
    ('implicit', True, True, 'implicit-als')
    >>> fk.get_tags(fk.BaselineOnly).can_find_similar
    False
    >>> fk.get_tags(fk.HybridMF).feedback, fk.get_tags(fk.HybridMF(loss="squared")).feedback
    ('implicit', 'explicit')
    """
    cls = estimator if isinstance(estimator, type) else type(estimator)
    if not (isinstance(cls, type) and issubclass(cls, Estimator)):
        raise InvalidParameterError(
            f"get_tags expects a factorkit estimator or estimator class; got {cls.__name__}"
        )
    merged: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        merged.update(klass.__dict__.get("_tags", {}))
    if not isinstance(estimator, type):
        merged.update(estimator._instance_tags())
    return Tags(**merged)


def all_estimators(kind: str | None = None) -> list[tuple[str, type[Estimator]]]:
    """Every registered public estimator as ``(name, class)``, sorted by name.

    Parameters
    ----------
    kind : {"recommender", "decomposition"}, optional
        Keep only estimators of this :attr:`Tags.kind`.

    Examples
    --------
    >>> import factorkit as fk
    >>> names = [name for name, _ in fk.all_estimators("recommender")]
    >>> "BiasedMF" in names and "ImplicitALS" in names
    True
    """
    items = sorted(_REGISTRY.items())
    if kind is not None:
        items = [(n, c) for n, c in items if get_tags(c).kind == kind]
    return items


def estimator_for_cli(name: str) -> type[Estimator]:
    """The estimator whose ``cli_name`` tag is ``name``; raises KeyError otherwise."""
    for _, cls in all_estimators():
        if get_tags(cls).cli_name == name:
            return cls
    raise KeyError(name)
