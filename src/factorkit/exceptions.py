"""Every error and warning type raised by factorkit.

All errors derive from :class:`FactorkitError`, so ``except fk.exceptions.FactorkitError``
catches anything factorkit raises on purpose. Messages name the argument, file or line,
what was expected, what was given, and how to fix it.
"""

from __future__ import annotations

__all__ = [
    "ClusterError",
    "ConvergenceWarning",
    "DataError",
    "DataWarning",
    "DivergenceError",
    "FactorkitError",
    "InvalidParameterError",
    "ModelFormatError",
    "NotFittedError",
    "UnknownIdError",
]


class FactorkitError(Exception):
    """Base class of every error factorkit raises."""


class DataError(FactorkitError, ValueError):
    """Input data is malformed: bad values, missing columns, duplicates, bad lines."""


class NotFittedError(FactorkitError, AttributeError):
    """A method that needs a fitted model was called before ``fit``."""


class InvalidParameterError(FactorkitError, ValueError):
    """A constructor or function argument is outside its allowed range."""


class UnknownIdError(FactorkitError, KeyError):
    """A raw user or item id is not known to the model or data set."""

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return str(self.args[0]) if self.args else ""


class ModelFormatError(FactorkitError, ValueError):
    """A saved model file is corrupted, truncated, foreign or from an unsupported version."""


class DivergenceError(FactorkitError, FloatingPointError):
    """Training produced NaN or infinite values; the message names the parameter to lower."""


class ClusterError(FactorkitError, RuntimeError):
    """The Dask cluster could not be reached, timed out, or lost work it cannot redo."""


class ConvergenceWarning(UserWarning):
    """Training stopped before converging, or converged suspiciously."""


class DataWarning(UserWarning):
    """Input data is usable but probably not what was intended."""
