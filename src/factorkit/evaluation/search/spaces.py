"""Search spaces: the :class:`loguniform_int` distribution, JSON-spelled spaces
(:func:`parse_search_space`) and each model's built-in space (:func:`default_search_space`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from factorkit._validation import Interval, Options, check
from factorkit.base import Estimator, all_estimators, get_tags
from factorkit.exceptions import InvalidParameterError

__all__ = ["default_search_space", "loguniform_int", "parse_search_space"]


class loguniform_int:
    """Integers spread evenly on a log scale over ``[low, high]`` (both included).

    A distribution for :class:`RandomSearch` (it has ``rvs``), e.g. for ``factors``:
    ``loguniform_int(20, 200)`` draws 20..40 as often as 100..200.

    Examples
    --------
    >>> import numpy as np
    >>> from factorkit.evaluation.search import loguniform_int
    >>> draws = loguniform_int(20, 200).rvs(size=1000, random_state=0)
    >>> int(draws.min()) >= 20, int(draws.max()) <= 200
    (True, True)
    """

    def __init__(self, low: int, high: int) -> None:
        check(low, Interval(int, 1), "low", "loguniform_int")
        check(high, Interval(int, int(low)), "high", "loguniform_int")
        self.low, self.high = int(low), int(high)

    def rvs(self, size: Any = None, random_state: Any = None) -> Any:
        rng = np.random.default_rng(random_state)
        x = np.exp(rng.uniform(np.log(self.low), np.log(self.high + 1), size=size))
        out = np.clip(np.floor(x), self.low, self.high).astype(np.int64)
        return int(out) if size is None else out

    def __repr__(self) -> str:
        return f"loguniform_int({self.low}, {self.high})"


#: JSON spellings of distributions for :func:`parse_search_space` (and the CLI)
_DIST_SPECS = ("loguniform", "uniform", "randint", "loguniform_int")


def parse_search_space(space: Mapping[str, Any]) -> dict[str, Any]:
    """Turn a JSON-style search space into one :class:`RandomSearch` accepts.

    Each value is either a list of values (tried as given) or a one-key dict naming a
    distribution and its ``[low, high]``: ``{"loguniform": [0.001, 0.1]}``,
    ``{"uniform": [0.9, 1.0]}``, ``{"randint": [10, 50]}`` (both ends included) or
    ``{"loguniform_int": [20, 200]}``. A distribution object (anything with ``rvs``,
    such as ``scipy.stats.loguniform(1e-3, 1e-1)``) passes through unchanged, so a space
    may mix both spellings.

    Examples
    --------
    >>> from factorkit.evaluation.search import parse_search_space
    >>> space = parse_search_space({"factors": {"loguniform_int": [20, 200]}, "epochs": [20, 40]})
    >>> space["factors"], space["epochs"]
    (loguniform_int(20, 200), [20, 40])
    """
    from scipy import stats

    if not isinstance(space, Mapping):
        raise InvalidParameterError(
            "search space must be a JSON object of parameter -> list of values or "
            f"{{distribution: [low, high]}}; got {type(space).__name__}"
        )
    out: dict[str, Any] = {}
    for name, value in space.items():
        if isinstance(value, Mapping):
            if len(value) != 1 or next(iter(value)) not in _DIST_SPECS:
                raise InvalidParameterError(
                    f"search space {name!r}: a distribution is one key of "
                    f"{', '.join(_DIST_SPECS)} with [low, high], e.g. "
                    f'{{"loguniform": [0.001, 0.1]}}; got {dict(value)!r}'
                )
            kind, bounds = next(iter(value.items()))
            if (
                not isinstance(bounds, Sequence)
                or len(bounds) != 2
                or not all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in bounds)
                or not bounds[0] <= bounds[1]
            ):
                raise InvalidParameterError(
                    f"search space {name!r}: {kind} needs [low, high] with low <= high; "
                    f"got {bounds!r}"
                )
            lo, hi = bounds
            if kind == "loguniform":
                if lo <= 0:
                    raise InvalidParameterError(
                        f"search space {name!r}: loguniform needs low > 0; got {lo!r}"
                    )
                out[name] = stats.loguniform(lo, hi)
            elif kind == "uniform":
                out[name] = stats.uniform(lo, hi - lo)
            elif kind == "randint":
                out[name] = stats.randint(int(lo), int(hi) + 1)
            else:
                out[name] = loguniform_int(lo, hi)
        elif isinstance(value, (list, tuple)):
            out[name] = list(value)
        elif hasattr(value, "rvs"):
            out[name] = value
        else:
            raise InvalidParameterError(
                f"search space {name!r}: expected a list of values or a distribution such as "
                f'{{"loguniform": [0.001, 0.1]}}; got {value!r}. Write [{value!r}] for a '
                "fixed value."
            )
    return out


def default_search_space(estimator: Estimator, search: str = "random") -> dict[str, Any]:
    """The built-in search space of a model, for ``search="random"`` or ``"grid"``.

    Random spaces are distributions around the model's defaults (within a factor of
    about 2 to 4 either way; log-uniform where a parameter acts multiplicatively), since
    the defaults were themselves chosen by cross-validation; grids are small (at most 12
    settings). ``epochs`` is part of both, so drop it when
    using successive halving over epochs.

    Examples
    --------
    >>> import factorkit as fk
    >>> from factorkit.evaluation.search import default_search_space
    >>> sorted(default_search_space(fk.BiasedMF()))
    ['epochs', 'factors', 'learning_rate', 'learning_rate_decay', 'regularization']
    >>> default_search_space(fk.BiasedMF(), "grid")["factors"]
    [50, 100, 200]
    """
    check(search, Options(("random", "grid")), "search", "default_search_space")
    tags = get_tags(estimator)
    declared = tags.search_space if search == "random" else tags.search_grid
    if not declared:
        with_space = [
            name
            for name, cls in all_estimators()
            if (get_tags(cls).search_space if search == "random" else get_tags(cls).search_grid)
        ]
        raise InvalidParameterError(
            f"no built-in search space for {type(estimator).__name__}; pass one explicitly "
            f"(models with one: {', '.join(with_space)})"
        )
    if search == "grid":
        return {name: list(values) for name, values in declared.items()}
    return parse_search_space(declared)
