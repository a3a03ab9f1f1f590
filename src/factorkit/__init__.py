"""factorkit: matrix factorization for recommenders and low-rank modelling.

The public API is re-exported here; see ``docs/`` and the README for a tour.
"""

# _threads first: it sets the OpenMP wait policy before any kernel starts a thread
from factorkit import _threads  # noqa: F401  # isort: skip
from factorkit import datasets, decomposition, distributed, evaluation, exceptions, report, split
from factorkit.base import Tags, all_estimators, get_tags
from factorkit.data import IdMap, Interactions
from factorkit.data.features import Features
from factorkit.data.io import read_csv, read_parquet
from factorkit.data.weights import time_decay
from factorkit.decomposition import factorize, low_rank
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
from factorkit.models.knn import ImplicitItemKNN, ImplicitUserKNN, ItemKNN, UserKNN
from factorkit.models.nonnegative_mf import NonNegativeMF
from factorkit.models.pure_svd import PureSVD
from factorkit.models.time_svdpp import TimeSVDpp
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
    "ImplicitItemKNN",
    "ImplicitUserKNN",
    "Interactions",
    "ItemKNN",
    "MostPopular",
    "NonNegativeMF",
    "PureSVD",
    "RandomSearch",
    "SVDpp",
    "Tags",
    "TimeSVDpp",
    "UserKNN",
    "__version__",
    "all_estimators",
    "clone",
    "content_regression",
    "cross_validate",
    "datasets",
    "decomposition",
    "distributed",
    "evaluate",
    "evaluation",
    "exceptions",
    "factorize",
    "get_tags",
    "load",
    "low_rank",
    "onboarding_items",
    "read_csv",
    "read_parquet",
    "report",
    "split",
    "time_decay",
    "tune",
]


def __getattr__(name: str):
    # fk.serve needs the [serve] extra (FastAPI): import it only when asked for
    if name == "serve":
        import importlib

        return importlib.import_module("factorkit.serve")
    raise AttributeError(f"module 'factorkit' has no attribute {name!r}")
