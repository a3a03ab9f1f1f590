"""Estimators. One module per model family; all share :class:`FactorModel` behaviour.

Callbacks: every iterative model calls each of its ``callbacks`` after every epoch with a
dict holding ``epoch`` (1-based), ``loss`` (training objective), ``val_<metric>`` when
validation data was given to ``fit``, ``elapsed`` seconds and ``model``. A callback that
returns True stops training after that epoch.
"""

from factorkit.base import Estimator, clone
from factorkit.models._factor import FactorModel, FoldIn
from factorkit.models.als import ALS
from factorkit.models.baseline import BaselineOnly
from factorkit.models.bpr import BPR
from factorkit.models.implicit_als import ImplicitALS
from factorkit.models.popular import MostPopular
from factorkit.models.sgd import BiasedMF
from factorkit.models.svdpp import SVDpp

__all__ = [
    "ALS",
    "BPR",
    "BaselineOnly",
    "BiasedMF",
    "Estimator",
    "FactorModel",
    "FoldIn",
    "ImplicitALS",
    "MostPopular",
    "SVDpp",
    "clone",
]
