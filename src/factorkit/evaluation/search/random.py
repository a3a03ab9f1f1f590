"""RandomSearch: ``n_iter`` settings sampled from distributions or lists."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from factorkit._format import plain
from factorkit._validation import Interval
from factorkit.base import Estimator
from factorkit.data.interactions import Interactions
from factorkit.evaluation._checks import int_parameter
from factorkit.evaluation.search._base import PARAMS_DOC, SEARCH_CONSTRAINTS, BaseSearch
from factorkit.evaluation.search.grid import grid_candidates

__all__ = ["RandomSearch"]


class RandomSearch(BaseSearch):
    __doc__ = (
        """Search over ``n_iter`` settings sampled at random, scored by cross-validation.

    Parameters
    ----------
    estimator : estimator instance
        The model with its fixed parameters; cloned for every trial.
    param_distributions : dict or list of dicts
        Parameter name -> a distribution with ``rvs`` (``scipy.stats.loguniform(1e-3,
        1e-1)``, :class:`loguniform_int`) or a list of values (drawn uniformly). Floats
        drawn for an integer parameter (such as ``factors``) are rounded. When every
        entry is a list, settings are drawn without repetition (at most the grid's size).
        With a list of dicts, each setting first picks one dict at random.
    n_iter : int, default 10
        Number of settings.
"""
        + PARAMS_DOC
        + """
    See Also
    --------
    GridSearch : every combination of a grid.
    default_search_space : the built-in distributions per model, used by the CLI.

    Examples
    --------
    >>> import factorkit as fk
    >>> from scipy.stats import loguniform
    >>> data, _ = fk.datasets.make_ratings(n_users=100, n_items=50, n_ratings=2000,
    ...                                    random_state=0)
    >>> space = {"factors": [5, 10, 20], "regularization": loguniform(0.01, 0.3)}
    >>> from factorkit.evaluation.search import RandomSearch
    >>> search = RandomSearch(fk.BiasedMF(epochs=10, random_state=0), space,
    ...                       n_iter=4, cv="holdout", random_state=0).fit(data)
    >>> len(search.cv_results_)
    4
    >>> search.best_params_["factors"] in (5, 10, 20)
    True
    >>> list(search.summary(top=2).columns)
    ['rank', 'factors', 'regularization', 'mean_rmse', 'std_rmse', 'mean_fit_time', 'mean_epochs']
    """
    )

    _space_arg = "param_distributions"
    _takes_distributions = True
    _constraints: ClassVar[dict[str, Any]] = {**SEARCH_CONSTRAINTS, "n_iter": Interval(int, 1)}

    def __init__(
        self,
        estimator: Estimator,
        param_distributions: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        *,
        n_iter: int = 10,
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
        self.param_distributions = param_distributions
        self.n_iter = n_iter
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
        spaces = self._spaces()
        n_iter = int(self.n_iter)
        if all(not hasattr(v, "rvs") for s in spaces for v in s.values()):
            grid = grid_candidates(spaces)
            if n_iter >= len(grid):
                return grid
            picks = rng.choice(len(grid), size=n_iter, replace=False)
            return [grid[i] for i in sorted(picks)]
        out = []
        for _ in range(n_iter):
            space = spaces[int(rng.integers(len(spaces)))] if len(spaces) > 1 else spaces[0]
            params = {}
            for name, dist in space.items():
                if hasattr(dist, "rvs"):
                    value = plain(dist.rvs(random_state=rng))
                else:
                    value = plain(dist[int(rng.integers(len(dist)))])
                if (
                    isinstance(value, float)
                    and math.isfinite(value)
                    and int_parameter(self.estimator, name)
                ):
                    value = round(value)
                params[name] = value
            out.append(params)
        return out
