"""tune(): search a model's hyper-parameters and compare the result with its defaults.

One call does what ``factorkit tune`` does: hold out a test set the search never sees,
run a :class:`~factorkit.evaluation.search.RandomSearch` or
:class:`~factorkit.evaluation.search.GridSearch` on the rest (the model's built-in space
unless one is given), refit the best setting, and score it and the model with its
default parameters on the held-out test set.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from factorkit._lazy import pandas as pd
from factorkit._validation import (
    Boolean,
    Interval,
    NoneOr,
    Options,
    Satisfies,
    check,
    validate_params,
)
from factorkit.base import Estimator, clone, get_tags
from factorkit.data.interactions import Interactions
from factorkit.evaluation._checks import INTERACTIONS, check_estimator
from factorkit.evaluation.evaluate import evaluate
from factorkit.evaluation.search import (
    GridSearch,
    RandomSearch,
    default_search_space,
    greater_is_better,
    parse_search_space,
)
from factorkit.exceptions import InvalidParameterError

__all__ = ["TuneResult", "tune"]


@dataclass(repr=False)
class TuneResult:
    """What :func:`tune` found and measured.

    Attributes
    ----------
    search : GridSearch or RandomSearch
        The fitted search (``cv_results_``, ``summary()``, ``best_params_``...).
    metric : str
        Canonical name of the metric optimised and reported.
    greater_is_better : bool
        Its direction.
    tuned_score, default_score : float
        Held-out ``metric`` of the best setting (refitted on all of ``tune_set``) and of
        the model with its parameters as given (fitted on ``tune_set`` too).
    default_model : estimator
        That model, fitted.
    tune_set, test : Interactions
        The data the search saw, and the held-out test set it never saw.
    test_split : str
        How ``test`` was held out: ``"random"`` (rating metrics) or ``"per user"``
        (ranking metrics: each user keeps training items).
    test_size : float
        Its share of the data; ``random_state`` its seed.
    random_state : int or None
    wall_time, cpu_time : float
        Seconds (wall, and CPU over all threads) of the whole call.
    """

    search: Any
    metric: str
    greater_is_better: bool
    tuned_score: float
    default_score: float
    default_model: Estimator
    tune_set: Interactions
    test: Interactions
    test_split: str
    test_size: float
    random_state: Any
    wall_time: float
    cpu_time: float

    @property
    def best_params(self) -> dict[str, Any]:
        """The best setting found (``search.best_params_``)."""
        return dict(self.search.best_params_)

    @property
    def best_estimator(self) -> Estimator:
        """The best setting refitted on all of ``tune_set``."""
        return self.search.best_estimator_

    @property
    def model_name(self) -> str:
        return type(self.default_model).__name__

    @property
    def n_tune(self) -> int:
        return len(self.tune_set)

    @property
    def n_test(self) -> int:
        return len(self.test)

    @property
    def gain(self) -> float:
        """How much better tuned is than defaults, in metric units (> 0: better)."""
        diff = self.tuned_score - self.default_score
        return diff if self.greater_is_better else -diff

    @property
    def relative_gain(self) -> float:
        """:attr:`gain` as a share of the default score (nan when that is 0)."""
        return self.gain / abs(self.default_score) if self.default_score else float("nan")

    @property
    def split_description(self) -> str:
        """One line saying how the test set was held out, for reports."""
        return (
            f"{self.test_split} split, {self.test_size:g} of the data held out as test "
            f"({self.n_test:,} interactions), seed {self.random_state}; the search never "
            f"saw it"
        )

    def __repr__(self) -> str:
        return (
            f"TuneResult({self.model_name}, {self.metric} on {self.n_test:,} held-out "
            f"interactions: tuned {self.tuned_score:.4f}, defaults {self.default_score:.4f}; "
            f"{len(self.search.cv_results_)} settings searched)"
        )

    def table(self, top: int | None = 10) -> pd.DataFrame:
        """The ``top`` settings of the search, best first (``search.summary``)."""
        return self.search.summary(top=top)

    def comparison(self) -> pd.DataFrame:
        """Held-out score of the tuned and the default model, one row each."""
        return pd.DataFrame(
            {
                "model": ["tuned", "defaults"],
                self.metric: [self.tuned_score, self.default_score],
                "parameters": [repr(self.best_estimator), repr(self.default_model)],
            }
        )


def _space_constraint() -> Satisfies:
    return Satisfies(
        lambda v: (
            isinstance(v, Mapping)
            or (isinstance(v, Sequence) and not isinstance(v, str) and len(v) > 0)
        ),
        "None (the model's built-in space), a dict of parameter -> values or "
        "distribution, or a list of such dicts",
    )


@validate_params(
    {
        "search": Options(("random", "grid")),
        "param_space": NoneOr(_space_constraint()),
        "metric": NoneOr(Satisfies(lambda v: isinstance(v, str), "a metric name")),
        "test_size": Interval(float, 0, 1, closed="neither"),
        "halving": Boolean(),
        "progress": Boolean(),
    },
    owner="tune",
)
def tune(
    model: Estimator,
    data: Interactions,
    *,
    search: str = "random",
    param_space: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
    n_iter: int = 30,
    cv: int | str = 3,
    validation_size: float = 0.2,
    metric: str | None = None,
    test_size: float = 0.2,
    fixed: Iterable[str] | None = None,
    halving: bool = False,
    factor: float = 3,
    random_state: int | None = 0,
    n_jobs: int | None = 1,
    progress: bool = False,
) -> TuneResult:
    """Tune ``model`` on ``data`` and compare it with its defaults on held-out data.

    1. Hold out ``test_size`` of ``data`` (``fk.split.random`` for rating metrics,
       ``fk.split.per_user`` for ranking metrics, seeded by ``random_state``).
    2. Search the rest with ``search`` over ``param_space`` (default: the model's
       built-in space, :func:`~factorkit.evaluation.search.default_search_space`, less
       the ``fixed`` parameters), scoring by ``cv``; refit the best setting on it.
    3. Score the tuned model and ``model`` as given (fitted on the same data) on the
       held-out test set.

    Parameters
    ----------
    model : estimator instance
        The model with any parameters to keep; cloned, never fitted itself. Its own
        progress bar is turned off (the search has one).
    data : Interactions
    search : {"random", "grid"}, default "random"
    param_space : dict or list of dicts, optional
        Parameter -> list of values, a distribution (``rvs``) or its JSON spelling
        (``{"loguniform": [0.001, 0.1]}``, see
        :func:`~factorkit.evaluation.search.parse_search_space`). A grid takes lists only.
    n_iter : int, default 30
        Settings drawn by a random search.
    cv : int or "holdout", default 3
        Folds scoring each setting, or one split of ``validation_size``.
    validation_size : float, default 0.2
        With ``cv="holdout"``.
    metric : str, optional
        Default: ``"rmse"`` for explicit-feedback models, ``"ndcg@10"`` for implicit ones
        (the model's ``feedback`` tag).
    test_size : float, default 0.2
        Share of ``data`` held out as the test set.
    fixed : iterable of str, optional
        Parameters left out of the built-in space (kept at the model's value). Default:
        the parameters whose value differs from the class's default.
    halving : bool, default False
        Successive halving over ``epochs`` (dropped from the built-in space).
    factor : float, default 3
        Halving's reduction factor.
    random_state : int, optional
        Seed of the test split, the folds and the sampling.
    n_jobs : int, optional
        Trials at once (-1: one per core).
    progress : bool, default False
        A progress bar over the settings.

    Returns
    -------
    TuneResult

    Examples
    --------
    >>> import factorkit as fk
    >>> data, _ = fk.datasets.make_ratings(n_users=60, n_items=40, n_ratings=1500,
    ...                                    random_state=0)
    >>> result = fk.tune(fk.BaselineOnly(), data, n_iter=3, cv="holdout")
    >>> result.metric, result.test_split, result.n_test
    ('rmse', 'random', 300)
    >>> sorted(result.best_params)
    ['epochs', 'regularization', 'user_regularization']
    >>> list(result.comparison()["model"])
    ['tuned', 'defaults']
    """
    started = time.perf_counter(), time.process_time()
    check_estimator(model, "tune", name="model")
    check(data, INTERACTIONS, "data", "tune")
    base = clone(model)
    if "progress" in base.get_params():
        base.set_params(progress=False)
    metric = metric or ("rmse" if get_tags(base).explicit else "ndcg@10")
    higher = greater_is_better(metric)
    from factorkit.data import splits

    # the test set comes first: the search never sees it, both models are scored on it
    splitter = splits.per_user if higher else splits.random
    tune_set, test = splitter(data, test_size=test_size, random_state=random_state)
    space = _space(model, base, search, param_space, fixed, halving)
    common: dict[str, Any] = {
        "cv": cv,
        "validation_size": validation_size,
        "metric": metric,
        "random_state": random_state,
        "n_jobs": n_jobs,
        "progress": progress,
        "halving": halving,
        "factor": factor,
    }
    if search == "grid":
        fitted = GridSearch(base, space, **common)
    else:
        fitted = RandomSearch(base, space, n_iter=n_iter, **common)
    fitted.fit(tune_set)
    tuned = evaluate(fitted.best_estimator_, test, metrics=[metric], train=tune_set)
    default_model = clone(base).fit(tune_set)
    default = evaluate(default_model, test, metrics=[metric], train=tune_set)
    return TuneResult(
        search=fitted,
        metric=fitted.metric_,
        greater_is_better=higher,
        tuned_score=float(tuned[fitted.metric_]),
        default_score=float(default[fitted.metric_]),
        default_model=default_model,
        tune_set=tune_set,
        test=test,
        test_split="per user" if higher else "random",
        test_size=test_size,
        random_state=random_state,
        wall_time=time.perf_counter() - started[0],
        cpu_time=time.process_time() - started[1],
    )


def _space(
    model: Estimator,
    base: Estimator,
    search: str,
    param_space: Any,
    fixed: Iterable[str] | None,
    halving: bool,
) -> Any:
    """The space to search: ``param_space`` parsed, or the built-in one less ``fixed``."""
    if param_space is not None:
        spaces = [param_space] if isinstance(param_space, Mapping) else list(param_space)
        if search == "grid":
            for space in spaces:
                for name, value in dict(space).items():
                    if isinstance(value, Mapping) or hasattr(value, "rvs"):
                        raise InvalidParameterError(
                            f"tune: search='grid' takes lists of values; {name!r} is a "
                            "distribution (use search='random' for distributions)"
                        )
        parsed = [parse_search_space(s) for s in spaces]
        return parsed[0] if isinstance(param_space, Mapping) else parsed
    keep = set(_changed_params(model) if fixed is None else fixed)
    space = default_search_space(base, search)
    space = {k: v for k, v in space.items() if k not in keep}
    if halving:
        space.pop("epochs", None)
    if not space:
        raise InvalidParameterError(
            f"tune: every parameter of {type(base).__name__}'s built-in search space is fixed "
            f"(fixed: {', '.join(sorted(keep))}); fix fewer parameters or pass param_space"
        )
    return space


def _changed_params(model: Estimator) -> list[str]:
    """Parameters whose value differs from the constructor's default."""
    defaults = {
        name: p.default
        for name, p in inspect.signature(type(model).__init__).parameters.items()
        if p.default is not inspect.Parameter.empty
    }
    changed = []
    for name, value in model.get_params().items():
        default = defaults.get(name, inspect.Parameter.empty)
        try:
            same = value is default or bool(value == default)
        except Exception:  # arrays and the like: treat as set by the user
            same = False
        if not same:
            changed.append(name)
    return changed
