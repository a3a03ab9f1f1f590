"""Metrics, evaluate(), cross_validate(), searches and tune().

Rating metrics (``rmse``, ``mae``) and ranking metrics (``precision@k``, ``recall@k``,
``ndcg@k``, ``map@k``, ``mrr@k``, ``hit_rate@k``, ``auc``, ``coverage@k``) are all
reached through :func:`evaluate` by name; see ``docs/metrics.md`` for the definitions.
"""

from factorkit.evaluation.evaluate import CrossValidationResult, cross_validate, evaluate
from factorkit.evaluation.metrics import mae, rmse
from factorkit.evaluation.ranking import MetricSpec, available_metrics, parse_metrics
from factorkit.evaluation.search import GridSearch, RandomSearch, default_search_space
from factorkit.evaluation.spectrum import factors_curve, singular_value_spectrum
from factorkit.evaluation.tune import TuneResult, tune

__all__ = [
    "CrossValidationResult",
    "GridSearch",
    "MetricSpec",
    "RandomSearch",
    "TuneResult",
    "available_metrics",
    "cross_validate",
    "default_search_space",
    "evaluate",
    "factors_curve",
    "mae",
    "parse_metrics",
    "rmse",
    "singular_value_spectrum",
    "tune",
]
