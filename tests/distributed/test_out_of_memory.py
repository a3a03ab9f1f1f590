"""A worker that runs out of memory: a ClusterError naming the block, the worker, what
it needed and the fix, in bounded time; never a KilledWorker traceback, never a hang.

A real processes-mode LocalCluster with a nanny and a small ``memory_limit``; the kill at
``memory_limit * distributed.worker.memory.terminate`` is Dask's own mechanism, polled
more often here so the test ends sooner.
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

#: a worker may use this much (it takes about 300 MiB with factorkit's kernels loaded);
#: the item factors below take 244 MiB per copy: a broadcast copy fits, the block's own
#: copy of the rows it reads on top does not
MEMORY_LIMIT = 700 * 2**20
N_ITEMS, FACTORS = 40_000, 1_600


@pytest.fixture(scope="module")
def small_worker():
    config = {
        "distributed.worker.memory.terminate": 0.95,
        "distributed.worker.memory.pause": False,  # a paused worker would only wait
        "distributed.worker.memory.spill": False,
        "distributed.worker.memory.target": False,
        "distributed.worker.memory.monitor-interval": "20ms",
        # a task whose worker dies is not retried on a fresh worker: the first death
        # ends it (KilledWorker); Dask's default, 3 retries, is the last test
        "distributed.scheduler.allowed-failures": 0,
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
        users = np.repeat(np.arange(100), 400)
        frame = pd.DataFrame(
            {"u": users, "i": np.arange(len(users)) % N_ITEMS, "r": np.ones(len(users))}
        )
        data = fkd.from_dask(
            dd.from_pandas(frame, npartitions=2), "u", "i", "r", client=client, n_blocks=1
        )
        yield data, cluster
        client.close()
        cluster.close()


def _fit(data, factors=FACTORS):
    model = fk.ALS(factors=factors, epochs=1, random_state=0, n_threads=1)
    start = time.perf_counter()
    with pytest.raises(fkd.ClusterError) as info:
        fkd.fit(model, data, exchange="broadcast")
    return str(info.value), time.perf_counter() - start


def test_block_that_cannot_fit_is_refused_before_sending(small_worker):
    # 3,000 factors: a copy is 458 MiB, so the task's 916 MiB exceed the 665 MiB a worker
    # may use whatever it holds already (the check subtracts what it uses now)
    message, elapsed = _fit(small_worker[0], factors=3_000)
    assert message.startswith(
        "ALS user half-step: user block 0 of 1 (users 0..99, 40,000 interactions; its task "
        "needs about 91"
    )
    assert "a broadcast copy of all 40,000 item factors" in message
    assert "but worker tcp://127.0.0.1:" in message
    assert "left (memory_limit 700 MiB, killed at 0.95 of that" in message
    assert "use more workers or more blocks (n_blocks= on the reader)" in message
    assert 'exchange="routed" sends each block only the rows it reads' in message
    assert elapsed < 10


def test_worker_killed_for_memory_ends_the_fit_naming_the_block(small_worker, monkeypatch):
    """Past the estimate (switched off here), the nanny kills the worker mid-task: the fit
    ends with a ClusterError naming the block, the worker and the fix, not KilledWorker
    or a hang."""
    monkeypatch.setattr(fkd._als._HalfSteps, "check_memory", lambda self: None)
    message, elapsed = _fit(small_worker[0])
    assert message.startswith(
        "ALS user half-step: user block 0 of 1 (users 0..99, 40,000 interactions; its task "
        "needs about 490 MiB: a broadcast copy of all 40,000 item factors"
    )
    assert "killed the worker that ran it 1 time(s) (last tcp://127.0.0.1:" in message
    assert "each worker may use 700 MiB (memory_limit), and its nanny kills it at 0.95" in message
    assert "more workers or more blocks (n_blocks= on the reader)" in message
    assert "KilledWorker" not in message
    assert elapsed < 60, f"the error took {elapsed:.0f} s"


def test_workers_dying_on_every_retry_end_the_fit(small_worker, monkeypatch):
    """With Dask's default retries the task's inputs die with its worker, so Dask never
    reports KilledWorker; the epoch retry sees a worker die twice in a row and stops."""
    data, cluster = small_worker
    monkeypatch.setattr(fkd._als._HalfSteps, "check_memory", lambda self: None)
    monkeypatch.setattr(cluster.scheduler, "allowed_failures", 3)
    data.workers = fkd._cluster.worker_addresses(data.client, 30)  # the last test's died
    message, elapsed = _fit(data)
    assert message.startswith(
        "epoch 1: workers died in two tries in a row during the ALS user half-step (lost "
        "tcp://127.0.0.1:"
    )
    assert "the lost workers ran user block 0 of 1 (users 0..99, 40,000 interactions" in message
    assert "each worker may use 700 MiB (memory_limit)" in message
    assert "more workers or more blocks (n_blocks= on the reader)" in message
    assert elapsed < 120, f"the error took {elapsed:.0f} s"
