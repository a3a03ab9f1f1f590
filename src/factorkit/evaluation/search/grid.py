"""GridSearch: every combination of a grid of parameter values."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from factorkit._format import plain
from factorkit.base import Estimator
from factorkit.data.interactions import Interactions
from factorkit.evaluation.search._base import PARAMS_DOC, BaseSearch

__all__ = ["GridSearch", "grid_candidates"]


class GridSearch(BaseSearch):
    __doc__ = (
        """Exhaustive search over a grid of parameter values, scored by cross-validation.

    Parameters
    ----------
    estimator : estimator instance
        The model with its fixed parameters, e.g. ``fk.BiasedMF(epochs=20)``; cloned for
        every trial (pass an instance, not a class).
    param_grid : dict or list of dicts
        Parameter name -> list of values; every combination is tried. A list of dicts
        searches each grid in turn.
"""
        + PARAMS_DOC
        + """
    See Also
    --------
    RandomSearch : samples settings from distributions; better for more than 2 parameters.

    Examples
    --------
    >>> import factorkit as fk
    >>> data, _ = fk.datasets.make_ratings(n_users=100, n_items=50, n_ratings=2000,
    ...                                    random_state=0)
    >>> from factorkit.evaluation.search import GridSearch
    >>> search = GridSearch(fk.BiasedMF(epochs=10, random_state=0),
    ...                     {"factors": [5, 10], "regularization": [0.02, 0.1]},
    ...                     cv=3, metric="rmse").fit(data)
    >>> len(search.cv_results_)
    4
    >>> sorted(search.best_params_)
    ['factors', 'regularization']
    >>> bool(search.best_score_ == search.cv_results_["mean_rmse"].min())
    True
    >>> search.best_estimator_.predict([0], [0]).shape
    (1,)
    """
    )

    _space_arg = "param_grid"

    def __init__(
        self,
        estimator: Estimator,
        param_grid: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Sequence[Any]]],
        *,
        cv: int | str | Iterable[tuple[Interactions, Interactions]] = 3,
        metric: str = "rmse",
        validation_size: float = 0.2,
        early_stopping_size: float = 0.1,
        refit: bool = True,
        random_state: int | np.random.Generator | None = 0,
        n_jobs: int | None = None,
        progress: bool = False,
        halving: bool = False,
        factor: float = 3,
        resource: str = "epochs",
        min_resources: int | None = None,
        max_resources: int | None = None,
        relevance_threshold: float | None = None,
        error_score: Any = np.nan,
    ) -> None:
        self.estimator = estimator
        self.param_grid = param_grid
        self.cv = cv
        self.metric = metric
        self.validation_size = validation_size
        self.early_stopping_size = early_stopping_size
        self.refit = refit
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.progress = progress
        self.halving = halving
        self.factor = factor
        self.resource = resource
        self.min_resources = min_resources
        self.max_resources = max_resources
        self.relevance_threshold = relevance_threshold
        self.error_score = error_score

    def _candidates(self, rng: np.random.Generator) -> list[dict[str, Any]]:
        return grid_candidates(self._spaces())


def grid_candidates(spaces: Sequence[Mapping[str, Sequence[Any]]]) -> list[dict[str, Any]]:
    """Every combination of each grid in turn (numpy scalars made plain).

    >>> grid_candidates([{"factors": [5, 10], "epochs": [20]}, {"epochs": [40]}])
    [{'factors': 5, 'epochs': 20}, {'factors': 10, 'epochs': 20}, {'epochs': 40}]
    """
    out = []
    for space in spaces:
        names = list(space)
        for combo in itertools.product(*(list(space[n]) for n in names)):
            out.append({n: plain(v) for n, v in zip(names, combo, strict=True)})
    return out
