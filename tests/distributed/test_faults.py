"""Processes-mode LocalCluster: a worker killed mid-fit loses nothing; checkpoints resume."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

import factorkit as fk
from factorkit import distributed as fkd
from factorkit.exceptions import ModelFormatError

dd = pytest.importorskip("dask.dataframe")
pytest.importorskip("distributed")

PARAMS = dict(factors=8, epochs=4, regularization=0.1, random_state=0, n_threads=1)


@pytest.fixture(scope="module")
def pdata(process_client, ml_split, to_dask):
    return fkd.from_dask(to_dask(ml_split[0]), "user", "item", "rating", client=process_client)


@pytest.fixture(scope="module")
def reference(ml_split):
    return fk.ALS(**PARAMS).fit(ml_split[0])


def test_processes_mode_matches_one_machine(pdata, reference):
    model = fkd.fit(fk.ALS(**PARAMS), pdata)
    np.testing.assert_allclose(model.item_factors_, reference.item_factors_, atol=1e-4)


@pytest.mark.parametrize("exchange", ["broadcast", "routed"])
def test_worker_killed_mid_fit_does_not_lose_the_fit(pdata, process_client, reference, exchange):
    """Broadcast: the copies on the other worker survive. Routed: the factors the victim
    solved (the next out-blocks' sources) are lost with it; Dask replays their lineage, or
    the epoch reruns from the client's state."""
    pids = process_client.run(os.getpid)  # worker address -> process id
    victim = sorted(pids.items())[0][1]

    def kill_after_first_epoch(record):
        if record["epoch"] == 1:
            # the blocks held by this worker are lost with it; the nanny starts a fresh
            # worker and Dask recomputes the lost blocks from their lineage
            os.kill(victim, signal.SIGKILL)

    model = fk.ALS(**PARAMS, callbacks=kill_after_first_epoch)
    fkd.fit(model, pdata, exchange=exchange)
    assert victim not in process_client.run(os.getpid).values()
    assert len(model.history_) == PARAMS["epochs"]
    np.testing.assert_allclose(model.item_factors_, reference.item_factors_, atol=1e-4)
    np.testing.assert_allclose(model.user_factors_, reference.user_factors_, atol=1e-4)


def test_checkpoint_and_resume(pdata, reference, tmp_path):
    def stop_after_two(record):
        return record["epoch"] == 2  # as if the driver died after epoch 2

    first = fk.ALS(**PARAMS, callbacks=stop_after_two)
    fkd.fit(first, pdata, checkpoint_dir=tmp_path)
    assert (tmp_path / fkd._fit.CHECKPOINT_NAME).exists()
    assert not list(tmp_path.glob("*.tmp*"))  # written atomically: no leftovers
    resumed = fkd.fit(fk.ALS(**PARAMS), pdata, checkpoint_dir=tmp_path, resume=True)
    assert list(resumed.history_["epoch"]) == [1, 2, 3, 4]
    np.testing.assert_allclose(resumed.item_factors_, reference.item_factors_, atol=1e-4)
    np.testing.assert_allclose(resumed.history_["loss"], reference.history_["loss"], rtol=1e-6)
    other = fk.ALS(**{**PARAMS, "regularization": 0.2})
    with pytest.raises(ModelFormatError, match=r"was written by ALS with .*regularization.*0\.1"):
        fkd.fit(other, pdata, checkpoint_dir=tmp_path, resume=True)
