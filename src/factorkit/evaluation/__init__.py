"""Metrics, evaluate() and cross_validate()."""

from factorkit.evaluation.evaluate import CrossValidationResult, cross_validate, evaluate
from factorkit.evaluation.metrics import mae, rmse

__all__ = ["CrossValidationResult", "cross_validate", "evaluate", "mae", "rmse"]
