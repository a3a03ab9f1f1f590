"""factorkit: matrix factorization for recommenders and low-rank modelling.

The public API is re-exported here; see ``docs/`` and the README for a tour.
"""

from factorkit import exceptions
from factorkit.data import IdMap, Interactions
from factorkit.evaluation import cross_validate, evaluate
from factorkit.models import BaselineOnly, clone
from factorkit.persistence import load

__version__ = "0.1.0"

__all__ = [
    "BaselineOnly",
    "IdMap",
    "Interactions",
    "__version__",
    "clone",
    "cross_validate",
    "evaluate",
    "exceptions",
    "load",
]
