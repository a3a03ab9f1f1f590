"""factorkit: matrix factorization for recommenders and low-rank modelling.

The public API is re-exported here; see ``docs/`` and the README for a tour.
"""

from factorkit import datasets, decomposition, evaluation, exceptions, report, split
from factorkit.data import IdMap, Interactions
from factorkit.data.readers import read_csv, read_parquet
from factorkit.decomposition import factorize, low_rank
from factorkit.evaluation import GridSearch, RandomSearch, cross_validate, evaluate
from factorkit.models import (
    ALS,
    BPR,
    BaselineOnly,
    BiasedMF,
    ImplicitALS,
    MostPopular,
    SVDpp,
    clone,
)
from factorkit.models.nonnegative_mf import NonNegativeMF
from factorkit.models.pure_svd import PureSVD
from factorkit.persistence import load

__version__ = "0.1.0"

__all__ = [
    "ALS",
    "BPR",
    "BaselineOnly",
    "BiasedMF",
    "GridSearch",
    "IdMap",
    "ImplicitALS",
    "Interactions",
    "MostPopular",
    "NonNegativeMF",
    "PureSVD",
    "RandomSearch",
    "SVDpp",
    "__version__",
    "clone",
    "cross_validate",
    "datasets",
    "decomposition",
    "evaluate",
    "evaluation",
    "exceptions",
    "factorize",
    "load",
    "low_rank",
    "read_csv",
    "read_parquet",
    "report",
    "split",
]
