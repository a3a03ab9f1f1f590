"""factorkit: matrix factorization for recommenders and low-rank modelling.

The public API is re-exported here; see ``docs/`` and the README for a tour.
"""

# _threads first: it sets the OpenMP wait policy before any kernel starts a thread
from factorkit import _threads  # noqa: F401  # isort: skip
from factorkit import datasets, evaluation, exceptions, report, split
from factorkit.base import Tags, all_estimators, get_tags
from factorkit.data import IdMap, Interactions
from factorkit.data.features import Features
from factorkit.data.io import read_csv, read_parquet
from factorkit.evaluation import GridSearch, RandomSearch, cross_validate, evaluate, tune
from factorkit.models import (
    ALS,
    BPR,
    BaselineOnly,
    BiasedMF,
    HybridMF,
    ImplicitALS,
    MostPopular,
    SVDpp,
    clone,
    content_regression,
)
from factorkit.onboarding import onboarding_items
from factorkit.persistence import load

__version__ = "0.1.0"

__all__ = [
    "ALS",
    "BPR",
    "BaselineOnly",
    "BiasedMF",
    "Features",
    "GridSearch",
    "HybridMF",
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
    "content_regression",
    "cross_validate",
    "datasets",
    "evaluate",
    "evaluation",
    "exceptions",
    "get_tags",
    "load",
    "onboarding_items",
    "read_csv",
    "read_parquet",
    "report",
    "split",
    "tune",
]


def __getattr__(name: str):
    # fk.serve needs the [serve] extra (FastAPI): import it only when asked for
    if name == "serve":
        import importlib

        return importlib.import_module("factorkit.serve")
    raise AttributeError(f"module 'factorkit' has no attribute {name!r}")
