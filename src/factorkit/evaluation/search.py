"""Hyper-parameter search: :class:`GridSearch`, :class:`RandomSearch`, successive halving.

A search takes an estimator *instance*, clones it for every trial, sets one candidate's
parameters, fits it on each training split and scores it on the matching test split with
one metric (any name :func:`factorkit.evaluate` accepts). The best candidate is refitted
on all the data. How it works, with examples: ``docs/tuning.md``.

- Splits: ``cv=3`` (interaction-level k-fold, the folds of ``fk.split.kfold`` with the
  same seed, so scores match :func:`factorkit.cross_validate`), ``cv="holdout"`` (one
  ``fk.split.random`` split of ``validation_size``), or any iterable of
  ``(train, test)`` pairs.
- Direction: lower is better for ``rmse`` and ``mae``; higher for every ranking metric
  (``ndcg@10``, ``recall@20``, ``auc``, ...).
- Early stopping: when a candidate has ``early_stopping`` set, each training split is
  split again (``early_stopping_size`` of it, seeded) and the model is fitted as
  ``fit(train_part, validation=slice)``; the scoring split is never seen during training.
- Successive halving (``halving=True``): every candidate trains with a small budget of
  ``resource`` (``epochs`` by default), the best ``1/factor`` go on with ``factor``
  times more, until the survivors train with the full budget.
- Parallel trials (``n_jobs``): threads; each trial's ``n_threads`` is lowered so that
  ``n_jobs * n_threads`` stays within the cores.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from factorkit._threads import concurrent_launches_safe
from factorkit.base import Estimator, all_estimators, clone, get_tags
from factorkit.data.interactions import Interactions
from factorkit.evaluation.evaluate import evaluate
from factorkit.evaluation.ranking import parse_metrics
from factorkit.exceptions import (
    ConvergenceWarning,
    DivergenceError,
    FactorkitError,
    InvalidParameterError,
)

__all__ = [
    "GridSearch",
    "RandomSearch",
    "default_search_space",
    "greater_is_better",
    "loguniform_int",
    "parse_search_space",
]

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


# ---------------------------------------------------------------------- distributions
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
        if not (_is_int(low) and _is_int(high) and 1 <= low <= high):
            raise InvalidParameterError(
                f"loguniform_int: low and high must be ints with 1 <= low <= high; got "
                f"low={low!r}, high={high!r}"
            )
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
    ``{"loguniform_int": [20, 200]}``.

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
    if search not in ("random", "grid"):
        raise InvalidParameterError(f"search must be 'random' or 'grid'; got {search!r}")
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


# ---------------------------------------------------------------------- helpers
def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _plain(value: Any) -> Any:
    """numpy scalars -> Python scalars (clean reprs, JSON, validation)."""
    return value.item() if isinstance(value, np.generic) else value


def _int_constrained(estimator: Estimator, name: str) -> bool:
    constraint = type(estimator)._parameter_constraints.get(name)
    constraint = getattr(constraint, "inner", constraint)  # NoneOr(...)
    return getattr(constraint, "kind", None) is int


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return repr(value) if isinstance(value, str) else str(value)


def _show_params(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={_fmt(v)}" for k, v in params.items())


@dataclass
class _Trial:
    candidate: int
    split: int
    params: dict[str, Any]


# ---------------------------------------------------------------------- the search
class _BaseSearch:
    """Shared machinery of :class:`GridSearch` and :class:`RandomSearch`."""

    _space_arg: ClassVar[str] = "param_grid"

    # ------------------------------------------------------------------ params API
    @classmethod
    def _param_names(cls) -> list[str]:
        return Estimator._param_names.__func__(cls)

    get_params = Estimator.get_params

    def set_params(self, **params: Any) -> _BaseSearch:
        """Set constructor parameters; unknown names raise InvalidParameterError."""
        return Estimator.set_params(self, **params)

    def __repr__(self) -> str:
        return Estimator.__repr__(self)

    # ------------------------------------------------------------------ subclass hooks
    def _candidates(self, rng: np.random.Generator) -> list[dict[str, Any]]:
        raise NotImplementedError

    def _space(self) -> Any:
        return getattr(self, self._space_arg)

    # ------------------------------------------------------------------ checks
    @property
    def _name(self) -> str:
        return type(self).__name__

    def _fail(self, message: str) -> InvalidParameterError:
        return InvalidParameterError(f"{self._name}: {message}")

    def _check_estimator(self) -> None:
        est = self.estimator
        if isinstance(est, type):
            if issubclass(est, Estimator):
                raise self._fail(
                    f"estimator must be an instance such as {est.__name__}(), not the class "
                    f"{est.__name__}; pass {est.__name__}(...) with any fixed parameters (it "
                    "is cloned for every trial)"
                )
            raise self._fail(f"estimator must be a factorkit estimator instance; got {est!r}")
        if not isinstance(est, Estimator):
            raise self._fail(
                "estimator must be a factorkit estimator instance such as fk.BiasedMF(); "
                f"got {type(est).__name__}"
            )

    def _spaces(self) -> list[dict[str, Any]]:
        """The grid or distributions as a list of dicts, names checked against the model."""
        arg = self._space_arg
        space = self._space()
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
        valid = self.estimator._param_names()
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
        if isinstance(values, (str, bytes, Mapping)) or not isinstance(
            values, (Sequence, np.ndarray)
        ):
            raise self._fail(
                f"{arg}[{name!r}] must be a list of values; got {values!r}. Write "
                f"[{values!r}] for a single value."
            )
        if len(values) == 0:
            raise self._fail(f"{arg}[{name!r}] is empty; give at least one value")

    def _check_candidate(self, params: dict[str, Any]) -> None:
        model = clone(self.estimator).set_params(**params)
        try:
            model._validate_params()
        except InvalidParameterError as exc:
            raise self._fail(f"candidate {{{_show_params(params)}}}: {exc}") from None

    def _check_args(self) -> tuple[str, bool]:
        (spec,) = _single_metric(self._name, self.metric)
        for flag in ("refit", "progress", "halving"):
            if not isinstance(getattr(self, flag), (bool, np.bool_)):
                raise self._fail(f"{flag} must be True or False; got {getattr(self, flag)!r}")
        for arg in ("validation_size", "early_stopping_size"):
            v = getattr(self, arg)
            if not (isinstance(v, (float, int)) and not isinstance(v, bool) and 0 < v < 1):
                raise self._fail(f"{arg} must be a fraction in (0, 1); got {v!r}")
        if self.n_jobs is not None and not (
            _is_int(self.n_jobs) and (self.n_jobs >= 1 or self.n_jobs == -1)
        ):
            raise self._fail(
                f"n_jobs must be None, -1 (all cores) or an int >= 1; got {self.n_jobs!r}"
            )
        if not (isinstance(self.error_score, str) and self.error_score == "raise") and not (
            isinstance(self.error_score, float) and math.isnan(self.error_score)
        ):
            raise self._fail(f"error_score must be 'raise' or nan; got {self.error_score!r}")
        if self.halving:
            f = self.factor
            if not (isinstance(f, (int, float)) and not isinstance(f, bool) and f > 1):
                raise self._fail(f"factor must be a number > 1; got {f!r}")
            if not isinstance(self.resource, str) or not _int_constrained(
                self.estimator, self.resource
            ):
                raise self._fail(
                    f"resource must name an integer parameter of "
                    f"{type(self.estimator).__name__} such as 'epochs'; got {self.resource!r}"
                )
            for arg in ("min_resources", "max_resources"):
                v = getattr(self, arg)
                if v is not None and not (_is_int(v) and v >= 1):
                    raise self._fail(f"{arg} must be None or an int >= 1; got {v!r}")
        return spec.name, spec.kind not in _LOWER_IS_BETTER

    # ------------------------------------------------------------------ splits
    def _splits(self, data: Interactions) -> list[tuple[Interactions, Interactions]]:
        from factorkit.data.splits import kfold, random

        cv = self.cv
        if _is_int(cv):
            if cv < 2:
                raise self._fail(
                    f"cv must be an int >= 2 (folds), 'holdout' or an iterable of (train, "
                    f"test) pairs; got {cv!r}. Use cv='holdout' for a single split."
                )
            return list(kfold(data, k=int(cv), random_state=self._seed(0)))
        if isinstance(cv, str):
            if cv != "holdout":
                raise self._fail(
                    f"cv must be an int >= 2, 'holdout' or (train, test) pairs; got {cv!r}"
                )
            return [random(data, test_size=self.validation_size, random_state=self._seed(0))]
        if isinstance(cv, Iterable):
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
        raise self._fail(
            f"cv must be an int >= 2, 'holdout' or an iterable of (train, test) pairs; got {cv!r}"
        )

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
    def fit(self, data: Interactions) -> _BaseSearch:
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
        self._check_estimator()
        metric, higher = self._check_args()
        if not isinstance(data, Interactions):
            raise self._fail(f"fit expects an Interactions; got {type(data).__name__}")
        rs = self.random_state
        if isinstance(rs, np.random.Generator):
            self._base_seed = int(rs.integers(2**31))
        elif rs is None:
            self._base_seed = int(np.random.SeedSequence().generate_state(1)[0])
        elif _is_int(rs) and rs >= 0:
            self._base_seed = int(rs)
        else:
            raise self._fail(f"random_state must be None, an int >= 0 or a Generator; got {rs!r}")
        candidates = self._candidates(self._seed(1))
        for params in candidates:
            self._check_candidate(params)
        if self.halving:
            self._check_halving(candidates)
        splits = self._splits(data)
        self.metric_ = metric
        self.greater_is_better_ = higher
        self.n_splits_ = len(splits)
        self._es_cache: dict[int, tuple[Interactions, Interactions]] = {}
        self._lock = threading.Lock()
        n_jobs, trial_threads = self._parallelism()
        self.n_jobs_ = n_jobs
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        if self.halving:
            rounds = self._halving_rounds(len(candidates))
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
                    alive = self._survivors(alive, results, rounds[it + 1][1], higher)
        finally:
            bar.close()
        self.search_time_ = time.perf_counter() - start_wall
        self.search_cpu_time_ = time.process_time() - start_cpu
        self.cv_results_ = self._results_frame(rows, metric, higher)
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
                f"{self._name}: candidate {{{_show_params(params)}}} failed on split "
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

    # ------------------------------------------------------------------ halving
    def _check_halving(self, candidates: list[dict[str, Any]]) -> None:
        res = self.resource
        if any(res in c for c in candidates):
            raise self._fail(
                f"with halving=True, {res!r} is the resource the search grows itself; remove it "
                f"from {self._space_arg} and set the full budget with max_resources (default: "
                f"the estimator's {res})"
            )
        max_r = self._max_resources()
        min_r = self.min_resources
        if min_r is not None and min_r > max_r:
            raise self._fail(f"min_resources ({min_r}) must be <= max_resources ({max_r})")

    def _max_resources(self) -> int:
        if self.max_resources is not None:
            return int(self.max_resources)
        return int(self.estimator.get_params()[self.resource])

    def _halving_rounds(self, n_candidates: int) -> list[tuple[int, int]]:
        """[(resources, n_candidates)] per round; the last round uses ``max_resources``.

        As many rounds as it takes to narrow the candidates to fewer than ``factor``
        (``1 + floor(log_factor(n))``), but no more than the resource range allows.
        """
        f = float(self.factor)
        max_r = self._max_resources()
        min_r = 1 if self.min_resources is None else int(self.min_resources)
        n_required = 1 + math.floor(math.log(n_candidates) / math.log(f) + 1e-9)
        n_possible = 1 + math.floor(math.log(max_r / min_r) / math.log(f) + 1e-9)
        n_rounds = max(1, min(n_required, n_possible))
        rounds = []
        n = n_candidates
        for i in range(n_rounds):
            r = max_r if i == n_rounds - 1 else max(min_r, round(max_r / f ** (n_rounds - 1 - i)))
            rounds.append((int(r), n))
            n = max(1, math.ceil(n / f))
        return rounds

    def _survivors(
        self, alive: list[int], results: list[dict[str, Any]], keep: int, higher: bool
    ) -> list[int]:
        means = np.array([_nanmean(r["scores"]) for r in results])
        key = np.where(np.isnan(means), np.inf, -means if higher else means)
        order = np.argsort(key, kind="stable")[:keep]
        return [alive[i] for i in sorted(order)]

    # ------------------------------------------------------------------ results
    def _results_frame(self, rows: list[dict[str, Any]], metric: str, higher: bool) -> pd.DataFrame:
        names: list[str] = []
        for r in rows:
            for k in r["params"]:
                if k not in names:
                    names.append(k)
        records = []
        for r in rows:
            rec: dict[str, Any] = {}
            if "iter" in r:
                rec["iter"] = r["iter"]
                rec["n_resources"] = r["n_resources"]
            rec["candidate"] = r["candidate"]
            for k in names:
                rec[f"param_{k}"] = r["params"].get(k, np.nan)
            rec["params"] = r["params"]
            scores = r["scores"]
            for s, v in enumerate(scores):
                rec[f"split{s}_{metric}"] = v
            rec[f"mean_{metric}"] = _nanmean(scores)
            rec[f"std_{metric}"] = float(np.std(scores)) if np.isfinite(scores).all() else np.nan
            rec["mean_fit_time"] = float(np.mean(r["fit_times"]))
            rec["std_fit_time"] = float(np.std(r["fit_times"]))
            rec["mean_score_time"] = float(np.mean(r["score_times"]))
            epochs = r["epochs"]
            rec["mean_epochs"] = _nanmean(epochs)
            records.append(rec)
        frame = pd.DataFrame(records)
        mean = frame[f"mean_{metric}"]
        score_key = -mean if higher else mean
        if "iter" in frame:
            # later rounds rank first (they survived), then by score; failures last
            order = sorted(
                range(len(frame)),
                key=lambda i: (
                    math.isnan(mean.iloc[i]),
                    -frame["iter"].iloc[i],
                    score_key.iloc[i] if not math.isnan(mean.iloc[i]) else 0.0,
                ),
            )
            rank = np.empty(len(frame), dtype=np.int64)
            rank[order] = np.arange(1, len(frame) + 1)
            frame[f"rank_{metric}"] = rank
        else:
            frame[f"rank_{metric}"] = score_key.rank(method="min", na_option="bottom").astype(
                np.int64
            )
        return frame

    def summary(self, top: int | None = 10) -> pd.DataFrame:
        """The ``top`` settings, best first: rank, parameters, scores and timings.

        Columns: ``rank``, (``iter``, ``n_resources`` with halving), one column per
        searched parameter (with halving, the resource shows as ``n_resources``),
        ``mean_<metric>``, ``std_<metric>``, ``mean_fit_time`` and ``mean_epochs``
        (epochs actually trained, when the model records them). Ready to print with
        ``to_string``; the CLI's ``tune`` prints it.
        """
        if not hasattr(self, "cv_results_"):
            from factorkit.exceptions import NotFittedError

            raise NotFittedError(f"This {self._name} is not fitted yet; call fit(data) first.")
        m = self.metric_
        res = self.cv_results_.sort_values(f"rank_{m}", kind="stable")
        if top is not None:
            res = res.head(top)
        cols: dict[str, Any] = {"rank": res[f"rank_{m}"]}
        for c in ("iter", "n_resources"):
            if c in res:
                cols[c] = res[c]
        for c in res.columns:
            name = c[len("param_") :]
            if c.startswith("param_") and not ("n_resources" in res and name == self.resource):
                cols[name] = res[c]
        cols[f"mean_{m}"] = res[f"mean_{m}"]
        cols[f"std_{m}"] = res[f"std_{m}"]
        cols["mean_fit_time"] = res["mean_fit_time"]
        if res["mean_epochs"].notna().any():
            cols["mean_epochs"] = res["mean_epochs"]
        return pd.DataFrame(cols).reset_index(drop=True)


def _single_metric(owner: str, metric: Any) -> list:
    if not isinstance(metric, str):
        raise InvalidParameterError(
            f"{owner}: metric must be one metric name such as 'rmse' or 'ndcg@10'; got {metric!r}"
        )
    return parse_metrics([metric])


def _nanmean(values: np.ndarray) -> float:
    values = np.asarray(values, dtype=np.float64)
    return float(values.mean()) if np.isfinite(values).all() else float("nan")


_PARAMS_DOC = """
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


class GridSearch(_BaseSearch):
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
        + _PARAMS_DOC
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
        out = []
        for space in self._spaces():
            names = list(space)
            for combo in itertools.product(*(list(space[n]) for n in names)):
                out.append({n: _plain(v) for n, v in zip(names, combo, strict=True)})
        return out


class RandomSearch(_BaseSearch):
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
        + _PARAMS_DOC
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

    def _check_values(self, name: str, values: Any) -> None:
        if hasattr(values, "rvs"):
            return
        if isinstance(values, (str, bytes, Mapping)) or not isinstance(
            values, (Sequence, np.ndarray)
        ):
            raise self._fail(
                f"param_distributions[{name!r}] must be a distribution with rvs (e.g. "
                f"scipy.stats.loguniform(1e-3, 1e-1)) or a list of values; got {values!r}"
            )
        if len(values) == 0:
            raise self._fail(f"param_distributions[{name!r}] is empty; give at least one value")

    def _candidates(self, rng: np.random.Generator) -> list[dict[str, Any]]:
        if not (_is_int(self.n_iter) and self.n_iter >= 1):
            raise self._fail(f"n_iter must be an int >= 1; got {self.n_iter!r}")
        spaces = self._spaces()
        n_iter = int(self.n_iter)
        if all(not hasattr(v, "rvs") for s in spaces for v in s.values()):
            grid = GridSearch(self.estimator, spaces)._candidates(rng)
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
                    value = _plain(dist.rvs(random_state=rng))
                else:
                    value = _plain(dist[int(rng.integers(len(dist)))])
                if (
                    isinstance(value, float)
                    and math.isfinite(value)
                    and _int_constrained(self.estimator, name)
                ):
                    value = round(value)
                params[name] = value
            out.append(params)
        return out
