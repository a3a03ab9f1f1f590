"""Real Dask LocalClusters for the distributed tests: one per mode, shared by the session.

Workers get one thread and one numba thread each (NUMBA_NUM_THREADS=1), or two workers
on a small machine would oversubscribe its cores.
"""

from __future__ import annotations

from typing import Any

import pytest

import factorkit as fk

try:
    import dask.dataframe as dd

    from distributed import Client, LocalCluster
except ImportError:  # without the dask extra every test here skips (see the modules)
    dd = Client = LocalCluster = None


def _client(processes: bool):
    extra = (
        {"env": {"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}, "host": "127.0.0.1"}
        if processes
        else {}
    )
    cluster = LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=processes,
        dashboard_address="127.0.0.1:0",
        **extra,
    )
    client = Client(cluster, set_as_default=False)
    return cluster, client


@pytest.fixture(scope="session")
def thread_client():
    cluster, client = _client(processes=False)
    yield client
    client.close()
    cluster.close()


@pytest.fixture(scope="session")
def process_client():
    cluster, client = _client(processes=True)
    yield client
    client.close()
    cluster.close()


@pytest.fixture(scope="session")
def ml_split():
    data = fk.datasets.load_movielens_small()
    return fk.split.random(data, test_size=0.2, random_state=0)


def _to_dask(inter: fk.Interactions, npartitions: int = 3) -> Any:
    """The interactions as a shuffled Dask DataFrame (columns user, item, rating)."""
    df = inter.to_pandas().sample(frac=1.0, random_state=1).reset_index(drop=True)
    return dd.from_pandas(df, npartitions=npartitions)


@pytest.fixture(scope="session")
def to_dask():
    return _to_dask
