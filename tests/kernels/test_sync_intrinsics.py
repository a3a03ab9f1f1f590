"""The atomics and the futex wait of kernels/_jit.py, which the SGD epoch's workers use."""

import threading
import time

import numpy as np

from factorkit.kernels._jit import (
    _SYS_FUTEX,
    compare_and_swap,
    fetch_add32,
    futex_wait,
    futex_wake,
    jit,
    load32,
    load_acquire,
    store_release,
)


@jit()
def _atomics(a):  # pragma: no cover - compiled
    before = load_acquire(a, 0)
    store_release(a, 1, before + 5)
    won = compare_and_swap(a, 2, 7, 9)
    lost = compare_and_swap(a, 3, 7, 9)
    return before, won, lost


def test_load_store_and_compare_and_swap():
    a = np.array([3, 0, 7, 8], dtype=np.int64)
    assert _atomics(a) == (3, True, False)
    np.testing.assert_array_equal(a, [3, 8, 9, 8])  # the losing swap left a[3] alone


@jit()
def _claim_all(claimed, out, who):  # pragma: no cover - compiled
    for e in range(len(claimed)):
        if compare_and_swap(claimed, e, 0, 1):
            out[e] = who
    return 0


def test_compare_and_swap_claims_each_slot_once_across_threads():
    claimed = np.zeros(200_000, dtype=np.int64)
    out = np.zeros(len(claimed), dtype=np.int64)
    threads = [threading.Thread(target=_claim_all, args=(claimed, out, w)) for w in (1, 2, 3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (claimed == 1).all() and np.isin(out, [1, 2, 3]).all()


@jit()
def _wait(sync, expected):  # pragma: no cover - compiled
    futex_wait(sync, 0, expected)
    return load32(sync, 0)


@jit()
def _wake(sync):  # pragma: no cover - compiled
    before = fetch_add32(sync, 0, 1)
    futex_wake(sync, 0)
    return before


def test_futex_wait_sleeps_while_the_value_matches_and_wakes_on_a_change():
    sync = np.zeros(4, dtype=np.int32)
    _wait(sync, 1)  # compile (returns at once: 0 != 1)
    _wake(np.zeros(4, dtype=np.int32))
    t0 = time.perf_counter()
    assert _wait(sync, 1) == 0
    assert time.perf_counter() - t0 < 0.5
    if _SYS_FUTEX >= 0:  # Linux: nobody wakes it, so it sleeps until its 1 ms timeout
        t0 = time.perf_counter()
        _wait(sync, 0)
        assert time.perf_counter() - t0 >= 0.0008
    # a sleeper sees another thread's increment (woken, or at its next timeout)
    waker = threading.Timer(0.01, _wake, args=(sync,))
    waker.start()
    while _wait(sync, 0) == 0:
        pass
    waker.join()
    assert sync[0] == 1
