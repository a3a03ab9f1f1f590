"""What an Interactions object and its build keep and allocate (issue 11 item 5).

The byte counts come from tracemalloc, which sees NumPy's allocations (not scratch
inside numba kernels), so they are exact for the arrays the Python code makes; the
bounds sit between what the code allocates now and what it allocated before the cuts.
"""

import tracemalloc

import numpy as np
import pandas as pd
import pytest

import factorkit as fk


@pytest.fixture(scope="module")
def shuffled():
    """200k distinct (user, item) pairs in random order, as int32 / float32 arrays."""
    rng = np.random.default_rng(0)
    pairs = rng.choice(2000 * 1000, size=200_000, replace=False)
    users, items = (pairs // 1000).astype(np.int32), (pairs % 1000).astype(np.int32)
    return users, items, rng.random(len(pairs)).astype(np.float32)


def _traced_peak(fn):
    """(result, peak bytes allocated while ``fn`` ran, bytes still held afterwards)."""
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        out = fn()
        now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return out, peak - start, now - start


def test_interactions_hold_8_bytes_per_interaction(shuffled):
    users, items, values = shuffled
    # compile first, on input as large as the measured one: the kernels pick paths by size,
    # and a compilation inside the traced window would count numba's own memory as held
    fk.Interactions.from_arrays(users, items, values)
    data, peak, held = _traced_peak(lambda: fk.Interactions.from_arrays(users, items, values))
    n = len(data)
    assert data.timestamps is None  # no timestamp column unless one was given
    # item positions and values, the users' CSR pointer and the small id maps (12 when
    # a user position per interaction was stored too)
    assert held / n < 8.5
    # the codes, the int32 permutation and sorted items (about 16; 40 once: a pandas
    # copy of the input and the codes next to the sort's output; 24 with int64 keys)
    assert peak / n < 20
    arrays = (data.user_index, data.item_index, data.values)
    assert [a.dtype for a in arrays] == [np.int32, np.int32, np.float32]


def test_user_index_is_made_from_indptr_on_first_read(shuffled):
    users, items, values = shuffled
    data = fk.Interactions.from_arrays(users[:5000], items[:5000], values[:5000])
    assert data._user_index is None  # only the CSR pointer is stored
    order = np.lexsort((items[:5000], users[:5000]))
    np.testing.assert_array_equal(data.user_map.to_ids(data.user_index), users[:5000][order])
    np.testing.assert_array_equal(data.item_map.to_ids(data.item_index), items[:5000][order])
    assert data.user_index is data.user_index  # kept once made
    assert not data.user_index.flags.writeable
    np.testing.assert_array_equal(np.diff(data.indptr), np.bincount(data.user_index))


def test_build_does_not_keep_or_freeze_the_callers_arrays():
    users = np.array([0, 0, 1, 2])  # already canonical: nothing to sort
    items = np.array([1, 2, 0, 1])
    values = np.array([1.0, 2.0, 3.0, 4.0], dtype=np.float32)
    stamps = np.array([10, 20, 30, 40], dtype=np.int64)
    data = fk.Interactions.from_arrays(users, items, values, timestamps=stamps)
    assert values.flags.writeable and stamps.flags.writeable
    values[0], stamps[0] = 99.0, 99
    assert data.values.tolist() == [1.0, 2.0, 3.0, 4.0]
    assert data.timestamps.tolist() == [10, 20, 30, 40]
    assert not data.values.flags.writeable


def test_duplicates_in_shuffled_input_keep_their_policies():
    """The sort drops the input codes early; duplicate handling rebuilds them in input
    order, so "last" keeps the later row and "error" names the right rows."""
    rng = np.random.default_rng(1)
    users = rng.integers(0, 30, 3000)
    items = rng.integers(0, 40, 3000)
    values = np.arange(3000, dtype=np.float64)
    last = fk.Interactions.from_arrays(users, items, values, duplicates="last").to_pandas()
    expected = (
        pd.DataFrame({"user": users, "item": items, "rating": values})
        .drop_duplicates(["user", "item"], keep="last")
        .sort_values(["user", "item"])
    )
    np.testing.assert_array_equal(last["rating"], expected["rating"].astype(np.float32))
    keys = pd.Series(users * 40 + items)
    first = int(np.flatnonzero(keys.duplicated(keep=False))[0])
    second = int(np.flatnonzero(keys == keys[first])[1])
    with pytest.raises(fk.exceptions.DataError, match=f"entry {first} and entry {second} both"):
        fk.Interactions.from_arrays(users, items, values)


def test_compact_is_the_object_itself_when_nothing_is_dropped(shuffled):
    users, items, values = shuffled
    data = fk.Interactions.from_arrays(users[:5000], items[:5000], values[:5000])
    assert data.compact() is data
    sub = data.select_users(data.user_ids.ids[:10])
    smaller = sub.compact()
    assert smaller is not sub and smaller.n_users == 10 and len(smaller) == len(sub)


def test_item_major_transposes_given_values_without_caching():
    data = fk.datasets.load_movielens_small()
    weights = np.linspace(0.5, 2.0, len(data))
    ptr, users, moved = data._item_major(weights)
    assert "_csc" not in data.__dict__  # nothing left behind on the data
    csc = data.to_csc()
    np.testing.assert_array_equal(ptr, csc.indptr)
    np.testing.assert_array_equal(users, csc.indices)
    # the weights follow their interactions: weight k belongs to interaction k
    order = data._item_major(np.arange(len(data), dtype=np.float64))[2].astype(np.int64)
    np.testing.assert_array_equal(moved, weights[order])
    np.testing.assert_array_equal(csc.data, data.values[order])
    cached = data._item_major()
    assert cached[1] is csc.indices and cached[2] is csc.data  # the cache, when it exists
