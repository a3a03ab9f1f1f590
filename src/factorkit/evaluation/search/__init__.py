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

Modules, one job each: ``spaces`` (distributions, JSON-spelled spaces, each model's
built-in space), ``grid`` and ``random`` (the two searches: constructor and candidates),
``halving`` (budget schedule and survivors), ``_base`` (checks, splits, trials, refit)
and ``_results`` (``cv_results_`` and ``summary``). :func:`factorkit.tune` builds on them.
"""

from factorkit.evaluation.search._base import greater_is_better
from factorkit.evaluation.search.grid import GridSearch
from factorkit.evaluation.search.random import RandomSearch
from factorkit.evaluation.search.spaces import (
    default_search_space,
    loguniform_int,
    parse_search_space,
)

__all__ = [
    "GridSearch",
    "RandomSearch",
    "default_search_space",
    "greater_is_better",
    "loguniform_int",
    "parse_search_space",
]
