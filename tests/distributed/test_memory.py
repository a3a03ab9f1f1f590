"""A worker that runs out of memory: a ClusterError naming the block, the worker and the
fix, in bounded time; never a KilledWorker traceback, never a hang.

A real processes-mode LocalCluster with a nanny and a small ``memory_limit``; the nanny's
kill threshold (``distributed.worker.memory.terminate``) is Dask's own mechanism, only
polled more often here so the test ends in seconds.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

import factorkit as fk
from factorkit import distributed as fkd

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")
dask = pytest.importorskip("dask")

#: the worker may use this much; the factors broadcast to it take about half of it, and
#: the block's task copies the rows it references on top: more than the worker may use
MEMORY_LIMIT = 800 * 2**20
N_ITEMS, FACTORS = 50_000, 2_000  # 50,000 x 2,001 float32 = 382 MiB per copy


@pytest.fixture(scope="module")
def small_worker():
    config = {
        "distributed.worker.memory.terminate": 0.95,
        "distributed.worker.memory.pause": False,  # a paused worker would only wait
        "distributed.worker.memory.spill": False,
        "distributed.worker.memory.target": False,
        "distributed.worker.memory.monitor-interval": "20ms",
        "distributed.scheduler.allowed-failures": 1,  # retried once on a fresh worker
    }
    with dask.config.set(config):
        cluster = distributed.LocalCluster(
            n_workers=1,
            threads_per_worker=1,
            processes=True,
            memory_limit=MEMORY_LIMIT,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            env={"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"},
        )
        client = distributed.Client(cluster, set_as_default=False)
        yield client
        client.close()
        cluster.close()


def test_worker_out_of_memory_names_the_block_and_the_fix(small_worker):
    users = np.repeat(np.arange(100), 500)
    items = np.arange(len(users)) % N_ITEMS
    frame = pd.DataFrame({"u": users, "i": items, "r": np.ones(len(users), np.float32)})
    data = fkd.from_dask(
        dd.from_pandas(frame, npartitions=2), "u", "i", "r", client=small_worker, n_blocks=1
    )
    model = fk.ALS(factors=FACTORS, epochs=1, random_state=0, n_threads=1)
    start = time.perf_counter()
    with pytest.raises(fkd.ClusterError) as info:
        fkd.fit(model, data, exchange="broadcast")
    elapsed = time.perf_counter() - start
    message = str(info.value)
    assert "ALS user half-step: user block 0 of 1 (users 0..99, 50,000 interactions" in message
    assert "a broadcast copy of all 50,000 item factors" in message
    assert "killed the worker that ran it 2 time(s) (last tcp://127.0.0.1:" in message
    assert "each worker may use 800 MiB (memory_limit)" in message
    assert "more workers or more blocks (n_blocks=" in message
    assert "KilledWorker" not in message
    assert elapsed < 60, f"the error took {elapsed:.0f} s"
