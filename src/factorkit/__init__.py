"""factorkit: matrix factorization for recommenders and low-rank modelling.

The public API is re-exported here; see ``docs/`` and the README for a tour.
"""

from factorkit import exceptions
from factorkit.data import IdMap, Interactions

__version__ = "0.1.0"

__all__ = ["IdMap", "Interactions", "__version__", "exceptions"]
