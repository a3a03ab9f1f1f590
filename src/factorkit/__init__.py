"""factorkit: matrix factorization for recommenders and low-rank modelling.

The public API is re-exported here; see ``docs/`` and the README for a tour.
"""

from factorkit import datasets, distributed, evaluation, exceptions, report, split
from factorkit.base import Tags, all_estimators, get_tags
from factorkit.data import IdMap, Interactions
from factorkit.data.readers import read_csv, read_parquet
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
    "RandomSearch",
    "SVDpp",
    "Tags",
    "__version__",
    "all_estimators",
    "clone",
    "cross_validate",
    "datasets",
    "distributed",
    "evaluate",
    "evaluation",
    "exceptions",
    "get_tags",
    "load",
    "read_csv",
    "read_parquet",
    "report",
    "split",
]
