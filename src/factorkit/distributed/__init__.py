"""Scale out on Dask (the ``dask`` extra): distributed interactions and trainers.

``fk.distributed.read_parquet`` / ``read_csv`` / ``from_dask`` build
:class:`DistributedInteractions` on the workers (never collecting the interactions on the
client); :func:`fit` trains :class:`~factorkit.ALS`, :class:`~factorkit.ImplicitALS`
(block ALS with factorkit's kernels on every worker: the same factors as one machine) and
:class:`~factorkit.BiasedMF` (stratified distributed SGD) on them, returning an ordinary
fitted model; :func:`recommend_all` and :func:`evaluate` run batch work on the workers.
See ``docs/distributed.md``.
"""

from factorkit.distributed._als import BROADCAST_LIMIT_BYTES
from factorkit.distributed._batch import (
    evaluate,
    item_factors_frame,
    recommend_all,
    recommend_all_items,
    user_factors_frame,
)
from factorkit.distributed._cluster import DEFAULT_TIMEOUT, ClusterError, get_client
from factorkit.distributed._data import DistributedInteractions, from_dask, read_csv, read_parquet
from factorkit.distributed._fit import fit

__all__ = [
    "BROADCAST_LIMIT_BYTES",
    "DEFAULT_TIMEOUT",
    "ClusterError",
    "DistributedInteractions",
    "evaluate",
    "fit",
    "from_dask",
    "get_client",
    "item_factors_frame",
    "read_csv",
    "read_parquet",
    "recommend_all",
    "recommend_all_items",
    "user_factors_frame",
]
