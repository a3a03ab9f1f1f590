"""Estimators. One module per model family on :class:`FactorModel` (fitted state,
``predict``, the scoring and state protocols) plus the capability mixins it supports:
:class:`RecommendMixin`, :class:`SimilarMixin`, :class:`FoldInMixin`,
:class:`PartialFitMixin`. Iterative models run a :class:`Trainer` through
:func:`run_trainer`. See ``docs/architecture.md``.

Callbacks: every iterative model calls each of its ``callbacks`` after every epoch with a
dict holding ``epoch`` (1-based), ``loss`` (training objective), ``val_<metric>`` when
validation data was given to ``fit``, ``elapsed`` seconds and ``model``. A callback that
returns True stops training after that epoch.
"""

from factorkit.base import Estimator, clone
from factorkit.models._factor import FactorModel
from factorkit.models._fold_in import FoldIn, FoldInMixin
from factorkit.models._init import normal_factors
from factorkit.models._partial import PartialFitMixin
from factorkit.models._recommend import RecommendMixin
from factorkit.models._similar import SimilarMixin
from factorkit.models._training import Trainer, run_trainer
from factorkit.models.als import ALS
from factorkit.models.baseline import BaselineOnly
from factorkit.models.bpr import BPR
from factorkit.models.hybrid import ContentRegression, HybridMF, content_regression
from factorkit.models.implicit_als import ImplicitALS
from factorkit.models.knn import ImplicitItemKNN, ImplicitUserKNN, ItemKNN, UserKNN
from factorkit.models.popular import MostPopular
from factorkit.models.sgd import BiasedMF
from factorkit.models.svdpp import SVDpp
from factorkit.models.time_svdpp import TimeSVDpp

__all__ = [
    "ALS",
    "BPR",
    "BaselineOnly",
    "BiasedMF",
    "ContentRegression",
    "Estimator",
    "FactorModel",
    "FoldIn",
    "FoldInMixin",
    "HybridMF",
    "ImplicitALS",
    "ImplicitItemKNN",
    "ImplicitUserKNN",
    "ItemKNN",
    "MostPopular",
    "PartialFitMixin",
    "RecommendMixin",
    "SVDpp",
    "SimilarMixin",
    "TimeSVDpp",
    "Trainer",
    "UserKNN",
    "clone",
    "content_regression",
    "normal_factors",
    "run_trainer",
]
