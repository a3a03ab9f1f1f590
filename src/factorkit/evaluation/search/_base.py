"""The machinery :class:`GridSearch` and :class:`RandomSearch` share.

Argument checks, splits (k-fold, holdout or given pairs), seeds, early-stopping slices,
trials run one at a time or in threads, scoring with :func:`factorkit.evaluate`, the
halving loop (schedule in :mod:`.halving`), the refit and the results table
(:mod:`._results`). A subclass adds its constructor and ``_candidates``.
"""

from __future__ import annotations

import math
import threading
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from factorkit._format import params_text
from factorkit._lazy import pandas as pd
from factorkit._lazy import tqdm
from factorkit._threads import concurrent_launches_safe
from factorkit._validation import (
    Boolean,
    Interval,
    NoneOr,
    RandomState,
    Satisfies,
    check,
    constraint_error,
)
from factorkit.base import Estimator, clone
from factorkit.data.interactions import Interactions
from factorkit.evaluation._checks import (
    INTERACTIONS,
    check_estimator,
    check_estimator_params,
    int_parameter,
    is_int,
)
from factorkit.evaluation.evaluate import evaluate
from factorkit.evaluation.ranking import parse_metrics
from factorkit.evaluation.search import halving
from factorkit.evaluation.search._results import nanmean, results_frame, summary_frame
from factorkit.exceptions import (
    ConvergenceWarning,
    DivergenceError,
    FactorkitError,
    InvalidParameterError,
    NotFittedError,
)

__all__ = ["PARAMS_DOC", "SEARCH_CONSTRAINTS", "BaseSearch", "greater_is_better"]

#: metrics for which a lower value is better; every other metric is maximised
_LOWER_IS_BETTER = frozenset({"rmse", "mae"})


def greater_is_better(metric: str) -> bool:
    """Whether a higher value of ``metric`` is better (ranking metrics) or not (errors).

    Examples
    --------
    >>> from factorkit.evaluation.search import greater_is_better
    >>> greater_is_better("rmse"), greater_is_better("ndcg@10"), greater_is_better("auc")
    (False, True, True)
    """
    (spec,) = parse_metrics([metric])
    return spec.kind not in _LOWER_IS_BETTER


def _fraction() -> Interval:
    return Interval(float, 0, 1, closed="neither")


#: constructor arguments of both searches, checked when ``fit`` starts
SEARCH_CONSTRAINTS: dict[str, Any] = {
    "metric": Satisfies(
        lambda v: isinstance(v, str), "one metric name such as 'rmse' or 'ndcg@10'"
    ),
    "validation_size": _fraction(),
    "early_stopping_size": _fraction(),
    "refit": Boolean(),
    "random_state": RandomState(),
    "n_jobs": NoneOr(
        Satisfies(lambda v: is_int(v) and (v >= 1 or v == -1), "-1 (all cores) or an int >= 1")
    ),
    "progress": Boolean(),
    "halving": Boolean(),
    "error_score": Satisfies(
        lambda v: (isinstance(v, str) and v == "raise") or (isinstance(v, float) and math.isnan(v)),
        "'raise' or nan",
    ),
}
#: ... and with ``halving=True``
HALVING_CONSTRAINTS: dict[str, Any] = {
    "factor": Interval(float, 1, None, closed="neither"),
    "min_resources": NoneOr(Interval(int, 1)),
    "max_resources": NoneOr(Interval(int, 1)),
}
_CV = Satisfies(
    lambda v: (
        (is_int(v) and v >= 2)
        or v == "holdout"
        or (isinstance(v, Iterable) and not isinstance(v, (str, bytes)))
    ),
    "an int >= 2 (folds), 'holdout' or an iterable of (train, test) pairs",
)


@dataclass
class _Trial:
    candidate: int
    split: int
    params: dict[str, Any]


class BaseSearch:
    """Shared machinery of :class:`GridSearch` and :class:`RandomSearch`."""

    #: name of the constructor argument holding the space, and whether it takes
    #: distributions (``rvs``) besides lists of values
    _space_arg: ClassVar[str] = "param_grid"
    _takes_distributions: ClassVar[bool] = False
    _constraints: ClassVar[dict[str, Any]] = SEARCH_CONSTRAINTS

    # ------------------------------------------------------------------ params API
    @classmethod
    def _param_names(cls) -> list[str]:
        return Estimator._param_names.__func__(cls)

    get_params = Estimator.get_params

    def set_params(self, **params: Any) -> BaseSearch:
        """Set constructor parameters; unknown names raise InvalidParameterError."""
        return Estimator.set_params(self, **params)

    def __repr__(self) -> str:
        return Estimator.__repr__(self)

    # ------------------------------------------------------------------ subclass hook
    def _candidates(self, rng: np.random.Generator) -> list[dict[str, Any]]:
        raise NotImplementedError

    # ------------------------------------------------------------------ checks
    @property
    def _name(self) -> str:
        return type(self).__name__

    def _fail(self, message: str) -> InvalidParameterError:
        return InvalidParameterError(f"{self._name}: {message}")

    def _spaces(self) -> list[dict[str, Any]]:
        """The grid or distributions as a list of dicts, names checked against the model."""
        arg = self._space_arg
        space = getattr(self, arg)
        if isinstance(space, Mapping):
            spaces = [space]
        elif isinstance(space, Sequence) and not isinstance(space, str):
            spaces = list(space)
        else:
            raise self._fail(
                f"{arg} must be a dict of parameter name -> values (or a list of such dicts); "
                f"got {type(space).__name__}"
            )
        if not spaces or any(not isinstance(s, Mapping) for s in spaces):
            raise self._fail(
                f"{arg} must be a non-empty dict of parameter name -> values, e.g. "
                "{'factors': [50, 100]}; got " + repr(space)
            )
        valid = list(self.estimator.get_params())
        for s in spaces:
            if not s:
                raise self._fail(
                    f"{arg} is empty; give at least one parameter with its values, e.g. "
                    "{'factors': [50, 100]}"
                )
            for name, values in s.items():
                if name not in valid:
                    raise self._fail(
                        f"{type(self.estimator).__name__} has no parameter {name!r} (in "
                        f"{arg}); valid parameters are {', '.join(valid)}"
                    )
                self._check_values(name, values)
        return [dict(s) for s in spaces]

    def _check_values(self, name: str, values: Any) -> None:
        arg = self._space_arg
        if self._takes_distributions and hasattr(values, "rvs"):
            return
        if isinstance(values, (str, bytes, Mapping)) or not isinstance(
            values, (Sequence, np.ndarray)
        ):
            expected = "a list of values"
            if self._takes_distributions:
                expected = (
                    "a distribution with rvs (e.g. scipy.stats.loguniform(1e-3, 1e-1)) or "
                    "a list of values"
                )
            raise self._fail(
                f"{arg}[{name!r}] must be {expected}; got {values!r}. Write [{values!r}] for "
                "a single value."
            )
        if len(values) == 0:
            raise self._fail(f"{arg}[{name!r}] is empty; give at least one value")

    def _check_candidate(self, params: dict[str, Any]) -> None:
        model = clone(self.estimator).set_params(**params)
        try:
            check_estimator_params(model)
        except InvalidParameterError as exc:
            raise self._fail(f"candidate {{{params_text(params)}}}: {exc}") from None

    def _check_args(self) -> tuple[str, bool]:
        """Check the constructor arguments; return (canonical metric, greater is better)."""
        check_estimator(self.estimator, self._name)
        for name, constraint in self._constraints.items():
            check(getattr(self, name), constraint, name, self._name)
        if not self.halving:
            return self._metric()
        for name, constraint in HALVING_CONSTRAINTS.items():
            check(getattr(self, name), constraint, name, self._name)
        if not (isinstance(self.resource, str) and int_parameter(self.estimator, self.resource)):
            raise self._fail(
                f"resource must be the name of an integer parameter of "
                f"{type(self.estimator).__name__} such as 'epochs'; got {self.resource!r}"
            )
        return self._metric()

    def _metric(self) -> tuple[str, bool]:
        (spec,) = parse_metrics([self.metric])
        return spec.name, spec.kind not in _LOWER_IS_BETTER

    def _splits(self, data: Interactions) -> list[tuple[Interactions, Interactions]]:
        from factorkit.data.splits import kfold, random

        cv = self.cv
        if is_int(cv) and cv < 2:
            error = constraint_error(self._name, "cv", _CV.describe(), cv)
            raise InvalidParameterError(f"{error}. Use cv='holdout' for a single split.")
        check(cv, _CV, "cv", self._name)
        if is_int(cv):
            return list(kfold(data, k=int(cv), random_state=self._seed(0)))
        if cv == "holdout":
            return [random(data, test_size=self.validation_size, random_state=self._seed(0))]
        splits = list(cv)
        ok = splits and all(
            isinstance(s, (tuple, list))
            and len(s) == 2
            and all(isinstance(x, Interactions) for x in s)
            for s in splits
        )
        if not ok:
            raise self._fail(
                "cv as an iterable must give (train, test) pairs of Interactions, e.g. "
                "fk.split.kfold(data, k=3) or [fk.split.random(data, test_size=0.2)]"
            )
        return [tuple(s) for s in splits]

    def _seed(self, stream: int) -> Any:
        """Seed for one random stream: 0 folds, 1 sampling, 3 + split early stopping (2 refit).

        With an int ``random_state`` the folds use it as given (the folds of
        ``fk.split.kfold(data, k, random_state)``); the other streams derive from it.
        """
        if stream == 0:
            return self._base_seed
        return np.random.default_rng([self._base_seed, stream])

    def _early_stopping_slice(
        self, s: int, train: Interactions
    ) -> tuple[Interactions, Interactions]:
        from factorkit.data.splits import random

        with self._lock:
            if s not in self._es_cache:
                self._es_cache[s] = random(
                    train, test_size=self.early_stopping_size, random_state=self._seed(3 + s)
                )
            return self._es_cache[s]

    # ------------------------------------------------------------------ fitting
    def fit(self, data: Interactions) -> BaseSearch:
        """Run the search on ``data`` and (with ``refit``) fit the best model on all of it.

        Parameters
        ----------
        data : Interactions
            Everything available for tuning; keep a test set outside it to report an
            honest final score.

        Returns
        -------
        self
        """
        metric, higher = self._check_args()
        check(data, INTERACTIONS, "data", f"{self._name}.fit")
        self._base_seed = _base_seed(self.random_state)
        candidates = self._candidates(self._seed(1))
        for params in candidates:
            self._check_candidate(params)
        if self.halving:
            halving.check_halving(
                self._name,
                self._space_arg,
                self.resource,
                candidates,
                self.min_resources,
                self._max_resources(),
            )
        splits = self._splits(data)
        self.metric_ = metric
        self.greater_is_better_ = higher
        self.n_splits_ = len(splits)
        self._es_cache: dict[int, tuple[Interactions, Interactions]] = {}
        self._lock = threading.Lock()
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        rows = self._search(candidates, splits, metric, higher)
        self.search_time_ = time.perf_counter() - start_wall
        self.search_cpu_time_ = time.process_time() - start_cpu
        self.cv_results_ = results_frame(rows, metric, higher)
        self.n_candidates_ = len(candidates)
        if self.cv_results_[f"mean_{metric}"].isna().all():
            raise FactorkitError(
                f"{self._name}: every candidate failed to train (diverged); narrow the "
                f"search space (e.g. lower learning_rate). {self.n_candidates_} candidates tried."
            )
        self.best_index_ = int(self.cv_results_[f"rank_{metric}"].idxmin())
        best = self.cv_results_.loc[self.best_index_]
        self.best_params_ = dict(best["params"])
        self.best_score_ = float(best[f"mean_{metric}"])
        if self.refit:
            model = clone(self.estimator).set_params(**self.best_params_)
            t0 = time.perf_counter()
            self._fit_one(model, data, split_index=-1)
            self.refit_time_ = time.perf_counter() - t0
            self.best_estimator_ = model
        self._es_cache.clear()  # the early-stopping slices are not needed any more
        return self

    def _search(
        self,
        candidates: list[dict[str, Any]],
        splits: list[tuple[Interactions, Interactions]],
        metric: str,
        higher: bool,
    ) -> list[dict[str, Any]]:
        """Score every candidate (every round's survivors, with halving): result rows."""
        n_jobs, trial_threads = self._parallelism()
        self.n_jobs_ = n_jobs
        if self.halving:
            rounds = halving.halving_rounds(
                len(candidates), self.factor, self.min_resources, self._max_resources()
            )
        else:
            rounds = [(None, len(candidates))]
        total = sum(n for _, n in rounds)
        bar = tqdm(total=total, desc=self._name, unit="setting", disable=not self.progress)
        rows: list[dict[str, Any]] = []
        alive = list(range(len(candidates)))
        try:
            for it, (resources, _) in enumerate(rounds):
                params_now = []
                for c in alive:
                    p = dict(candidates[c])
                    if resources is not None:
                        p[self.resource] = resources
                    params_now.append(p)
                results = self._run_round(
                    alive, params_now, splits, metric, trial_threads, n_jobs, bar
                )
                for c, p, res in zip(alive, params_now, results, strict=True):
                    row = {"candidate": c, "params": p, **res}
                    if self.halving:
                        row = {"iter": it, "n_resources": resources, **row}
                    rows.append(row)
                if it + 1 < len(rounds):
                    means = np.array([nanmean(r["scores"]) for r in results])
                    alive = halving.survivors(alive, means, rounds[it + 1][1], higher)
        finally:
            bar.close()
        return rows

    def _max_resources(self) -> int:
        if self.max_resources is not None:
            return int(self.max_resources)
        return int(self.estimator.get_params()[self.resource])

    def _parallelism(self) -> tuple[int, int | None]:
        """(n_jobs, n_threads per trial or None to leave the estimator's own)."""
        from factorkit._threads import resolve_threads

        cores = resolve_threads(None)
        if self.n_jobs is None or self.n_jobs == 1:
            return 1, None
        n_jobs = cores if self.n_jobs == -1 else min(int(self.n_jobs), cores)
        if n_jobs <= 1:
            return 1, None
        if not concurrent_launches_safe():
            warnings.warn(
                f"{self._name}: numba's 'workqueue' threading layer cannot run trials in "
                "parallel; running them one at a time (install tbb or use OpenMP for n_jobs)",
                RuntimeWarning,
                stacklevel=3,
            )
            return 1, None
        if "n_threads" not in self.estimator.get_params():
            return n_jobs, None
        per_trial = max(1, cores // n_jobs)
        own = self.estimator.get_params()["n_threads"]
        return n_jobs, per_trial if own is None else min(int(own), per_trial)

    def _run_round(
        self,
        alive: list[int],
        params_now: list[dict[str, Any]],
        splits: list[tuple[Interactions, Interactions]],
        metric: str,
        trial_threads: int | None,
        n_jobs: int,
        bar: Any,
    ) -> list[dict[str, Any]]:
        trials = [
            _Trial(c, s, p)
            for c, p in zip(alive, params_now, strict=True)
            for s in range(len(splits))
        ]
        outcomes: dict[tuple[int, int], dict[str, float]] = {}
        done_splits: dict[int, int] = dict.fromkeys(alive, 0)

        def run(trial: _Trial) -> tuple[_Trial, dict[str, float]]:
            train, test = splits[trial.split]
            return trial, self._score_one(
                trial.params, trial.split, train, test, metric, trial_threads
            )

        def record(trial: _Trial, out: dict[str, float]) -> None:
            outcomes[(trial.candidate, trial.split)] = out
            done_splits[trial.candidate] += 1
            if done_splits[trial.candidate] == len(splits):
                bar.update(1)

        if n_jobs <= 1:
            for t in trials:
                record(*run(t))
        else:
            with ThreadPoolExecutor(max_workers=n_jobs) as pool:
                for t, out in pool.map(run, trials):
                    record(t, out)
        results = []
        for c in alive:
            per = [outcomes[(c, s)] for s in range(len(splits))]
            results.append(
                {
                    "scores": np.array([o["score"] for o in per]),
                    "fit_times": np.array([o["fit_time"] for o in per]),
                    "score_times": np.array([o["score_time"] for o in per]),
                    "epochs": np.array([o["epochs"] for o in per]),
                }
            )
        return results

    def _uses_early_stopping(self, model: Estimator) -> bool:
        es = model.get_params().get("early_stopping")
        return es is not None and es is not False

    def _fit_one(self, model: Estimator, train: Interactions, split_index: int) -> None:
        if self._uses_early_stopping(model):
            part, valid = self._early_stopping_slice(split_index, train)
            model.fit(part, validation=valid)
        else:
            model.fit(train)

    def _score_one(
        self,
        params: dict[str, Any],
        split_index: int,
        train: Interactions,
        test: Interactions,
        metric: str,
        trial_threads: int | None,
    ) -> dict[str, float]:
        model = clone(self.estimator).set_params(**params)
        if trial_threads is not None and "n_threads" not in params:
            model.set_params(n_threads=trial_threads)
        t0 = time.perf_counter()
        try:
            self._fit_one(model, train, split_index)
        except DivergenceError as exc:
            if isinstance(self.error_score, str):
                raise
            warnings.warn(
                f"{self._name}: candidate {{{params_text(params)}}} failed on split "
                f"{split_index} and scores nan: {exc}",
                ConvergenceWarning,
                stacklevel=2,
            )
            return {
                "score": float("nan"),
                "fit_time": time.perf_counter() - t0,
                "score_time": 0.0,
                "epochs": float("nan"),
            }
        t1 = time.perf_counter()
        score = evaluate(
            model,
            test,
            metrics=[metric],
            train=train,
            relevance_threshold=self.relevance_threshold,
        )[metric]
        t2 = time.perf_counter()
        history = getattr(model, "history_", None)
        epochs = float(len(history)) if isinstance(history, pd.DataFrame) else float("nan")
        return {"score": float(score), "fit_time": t1 - t0, "score_time": t2 - t1, "epochs": epochs}

    # ------------------------------------------------------------------ results
    def summary(self, top: int | None = 10) -> pd.DataFrame:
        """The ``top`` settings, best first: rank, parameters, scores and timings.

        Columns: ``rank``, (``iter``, ``n_resources`` with halving), one column per
        searched parameter (with halving, the resource shows as ``n_resources``),
        ``mean_<metric>``, ``std_<metric>``, ``mean_fit_time`` and ``mean_epochs``
        (epochs actually trained, when the model records them). Ready to print with
        ``to_string``; the CLI's ``tune`` prints it.
        """
        if not hasattr(self, "cv_results_"):
            raise NotFittedError(f"This {self._name} is not fitted yet; call fit(data) first.")
        return summary_frame(self.cv_results_, self.metric_, self.resource, top)


def _base_seed(random_state: Any) -> int:
    """The int every random stream of a search derives from (already checked)."""
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(2**31))
    if random_state is None:
        return int(np.random.SeedSequence().generate_state(1)[0])
    return int(random_state)


#: the parameter and attribute sections both searches' docstrings share
PARAMS_DOC = """
    cv : int, "holdout" or iterable of (train, test), default 3
        Folds of interaction-level k-fold (``fk.split.kfold`` with ``random_state``),
        one random split of ``validation_size`` (``"holdout"``), or the splits themselves.
    metric : str, default "rmse"
        Any one metric :func:`factorkit.evaluate` accepts. Lower is better for ``rmse``
        and ``mae``, higher for ranking metrics (``"ndcg@10"``, ``"auc"``, ...).
    validation_size : float, default 0.2
        Share of the data held out with ``cv="holdout"``.
    early_stopping_size : float, default 0.1
        With ``early_stopping`` set on the estimator (or in the grid), the share of each
        training split held out as ``fit(..., validation=...)``; the model trains on the
        rest and the scoring split stays unseen. The refit does the same on all the data.
    refit : bool, default True
        Fit the best candidate on all of ``data`` as ``best_estimator_``.
    random_state : int, numpy.random.Generator or None, default 0
        Seed of the folds, the candidates' sampling and the early-stopping slices (the
        estimator's own ``random_state`` is left as given).
    n_jobs : int, optional
        Trials run at once, in threads (-1: one per core). Each trial's ``n_threads`` is
        lowered so that ``n_jobs * n_threads`` does not exceed the cores.
    progress : bool, default False
        A progress bar over the settings.
    halving : bool, default False
        Successive halving: train every candidate with a small ``resource`` budget, keep
        the best ``1/factor``, multiply the budget by ``factor``, until the survivors
        train with ``max_resources``.
    factor : float, default 3
        Halving's reduction factor.
    resource : str, default "epochs"
        The integer parameter halving grows; it must not be searched.
    min_resources, max_resources : int, optional
        Halving's budget range. Default: 1, and the estimator's value of ``resource``.
    relevance_threshold : float, optional
        Passed to :func:`factorkit.evaluate` (ranking metrics).
    error_score : "raise" or nan, default nan
        A candidate whose training diverges scores nan (with a ConvergenceWarning) and
        ranks last; ``"raise"`` re-raises the error.

    Attributes
    ----------
    cv_results_ : pandas.DataFrame
        One row per candidate (per candidate and round with halving, plus ``iter`` and
        ``n_resources``): ``candidate``, ``param_<name>`` per parameter, ``params``
        (dict), ``split<i>_<metric>``, ``mean_<metric>``, ``std_<metric>``,
        ``rank_<metric>`` (1 is best; with halving, the last round ranks first),
        ``mean_fit_time``, ``std_fit_time``, ``mean_score_time`` and ``mean_epochs``
        (epochs actually trained, which early stopping can cut short).
    best_index_ : int
        Row of ``cv_results_`` holding the best candidate.
    best_params_ : dict
        Its parameters (with halving, including the final ``resource`` budget).
    best_score_ : float
        Its mean score over the splits.
    best_estimator_ : estimator
        A clone with ``best_params_`` fitted on all the data (``refit=True``).
    metric_ : str
        The canonical metric name; ``greater_is_better_`` its direction.
    n_candidates_, n_splits_ : int
    search_time_, search_cpu_time_, refit_time_ : float
        Wall and CPU seconds of the search (all threads), and of the refit.
"""
