"""Bad input to the distributed path: clear errors naming the partition or the address,
never a hang."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

import factorkit as fk
from factorkit import distributed as fkd
from factorkit.exceptions import DataError, InvalidParameterError

dd = pytest.importorskip("dask.dataframe")
pytest.importorskip("distributed")


def _ddf(parts: list[pd.DataFrame]) -> Any:
    return dd.concat([dd.from_pandas(p, npartitions=1) for p in parts])


def test_missing_column(thread_client):
    ddf = _ddf([pd.DataFrame({"u": [1], "i": [2], "r": [3.0]})])
    with pytest.raises(
        DataError,
        match=r"rating column 'rating' not found; the columns are "
        r"\['u', 'i', 'r'\]\. Pass rating=",
    ):
        fkd.from_dask(ddf, "u", "i", "rating", client=thread_client)


def test_mixed_id_types_across_partitions(thread_client):
    a = pd.DataFrame({"u": [1, 2], "i": [1, 2], "r": [1.0, 2.0]})
    b = pd.DataFrame({"u": ["x", "y"], "i": [1, 2], "r": [1.0, 2.0]})
    with pytest.raises(
        DataError,
        match=r"user ids are integers in partition 0 \(e\.g\. 1\) but "
        r"strings in partition 1 \(e\.g\. 'x'\)",
    ):
        fkd.from_dask(_ddf([a, b]), "u", "i", "r", client=thread_client)


def test_duplicate_pairs_across_partitions(thread_client):
    a = pd.DataFrame({"u": [1, 2], "i": [10, 20], "r": [1.0, 2.0]})
    b = pd.DataFrame({"u": [3, 2], "i": [10, 20], "r": [1.0, 5.0]})
    msg = r"user 2 and item 20 appear in partition 0 and in partition 1; each \(user, item\)"
    with pytest.raises(DataError, match=msg):
        fkd.from_dask(_ddf([a, b]), "u", "i", "r", client=thread_client)


def test_bad_values_name_the_partition_and_row(thread_client):
    a = pd.DataFrame({"u": [1, 2], "i": [10, 20], "r": [1.0, 2.0]})
    b = pd.DataFrame({"u": [3, 4], "i": [10, 20], "r": [1.0, float("nan")]})
    with pytest.raises(DataError, match=r"partition 1 row 1: r is nan; every r must be a finite"):
        fkd.from_dask(_ddf([a, b]), "u", "i", "r", client=thread_client)
    c = pd.DataFrame({"u": [3, None], "i": [10, 20], "r": [1.0, 2.0]})
    with pytest.raises(DataError, match=r"partition 1 row 1: user id is missing"):
        fkd.from_dask(_ddf([a, c]), "u", "i", "r", client=thread_client)


def test_unreachable_scheduler_names_the_address():
    with pytest.raises(
        fkd.ClusterError,
        match=r"could not reach the Dask scheduler at "
        r"'tcp://127\.0\.0\.1:9' within 1 s",
    ):
        fkd.get_client("tcp://127.0.0.1:9", timeout=1)


def test_timeout_names_the_step_and_address(thread_client):
    import time

    from factorkit.distributed._cluster import wait_all

    fut = thread_client.submit(time.sleep, 3, pure=False)
    with pytest.raises(
        fkd.ClusterError,
        match=r"slow step: no result after 0\.2 s from the "
        r"Dask cluster at inproc://",
    ):
        wait_all([fut], 0.2, "slow step", thread_client)


def test_fit_rejects_local_data_and_unsupported_models(thread_client):
    data = fk.datasets.load_movielens_small()
    with pytest.raises(
        DataError,
        match=r"data must be a DistributedInteractions; got "
        r"Interactions",
    ):
        fkd.fit(fk.ALS(), data)
    ddata = fkd.from_dask(
        _ddf([pd.DataFrame({"u": [1, 2], "i": [1, 2], "r": [1.0, 2.0]})]),
        "u",
        "i",
        "r",
        client=thread_client,
    )
    with pytest.raises(InvalidParameterError, match=r"BPR has no distributed trainer"):
        fkd.fit(fk.BPR(), ddata)
    with pytest.raises(InvalidParameterError, match=r"exchange must be one of"):
        fkd.fit(fk.ALS(), ddata, exchange="p2p")
    with pytest.raises(InvalidParameterError, match=r"resume=True needs checkpoint_dir"):
        fkd.fit(fk.ALS(), ddata, resume=True)
    with pytest.raises(
        InvalidParameterError, match=r"The 'factors' parameter of ALS must be an int >= 1; got 0"
    ):
        fkd.fit(fk.ALS(factors=0), ddata)


def test_readers_build_on_the_workers(thread_client, tmp_path):
    data = fk.datasets.load_movielens_small()
    df = data.to_pandas()
    (tmp_path / "pq").mkdir()
    half = len(df) // 2
    df.iloc[:half].to_parquet(tmp_path / "pq" / "part-0.parquet", index=False)
    df.iloc[half:].to_parquet(tmp_path / "pq" / "part-1.parquet", index=False)
    df.to_csv(tmp_path / "ratings.csv", index=False)
    for ddata in (
        fkd.read_parquet(tmp_path / "pq", "user", "item", "rating", client=thread_client),
        fkd.read_csv(tmp_path / "ratings.csv", "user", "item", "rating", client=thread_client),
    ):
        assert ddata.nnz == len(data)
        assert ddata.user_map == data.user_map and ddata.item_map == data.item_map
    with pytest.raises(DataError, match=r"read_parquet: cannot read .*missing"):
        fkd.read_parquet(tmp_path / "missing", client=thread_client)


def test_implicit_als_rejects_negative_values(thread_client):
    ddata = fkd.from_dask(
        _ddf([pd.DataFrame({"u": [1, 2], "i": [1, 2], "r": [1.0, -2.0]})]),
        "u",
        "i",
        "r",
        client=thread_client,
    )
    with pytest.raises(DataError, match=r"holds the value -2; implicit feedback must be >= 0"):
        fkd.fit(fk.ImplicitALS(), ddata)
