"""Thread and BLAS policy: how many threads a call uses, and who may start them.

Kernels never decide thread counts: callers resolve ``n_threads`` here and pass the
result down. Invariants:

- a numba parallel region runs with BLAS limited to one thread (:func:`using_threads`),
  so BLAS called from kernel threads never starts threads of its own;
- single-row paths (fold-in, one user's recommend, predict for a few pairs) run with one
  BLAS thread (:func:`single_thread_blas`): a multi-threaded solve of a 100x100 system
  costs more in hand-offs than it computes, and on a busy machine each hand-off waits for
  a core;
- GEMM-bound steps outside kernels take ``n_threads`` BLAS threads (:func:`blas_threads`);
- kernel threads that wait for each other (the end of every parallel region: SGD rounds,
  ALS half-steps) spin only briefly, then sleep (:data:`SPIN_COUNT`).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numba
from threadpoolctl import ThreadpoolController

#: GNU OpenMP (numba's "omp" threading layer) makes a thread that reaches the end of a
#: parallel region spin for 300,000 iterations before it sleeps. When other processes
#: compete for the cores, those spinning threads burn the time slices that the late
#: thread needs, and every region waits for it: a BiasedMF fit with 2 threads on 2 busy
#: cores ran 10-20x slower than with 1 thread. A short spin, then sleep, keeps the
#: parallel speed-up under contention. Set before numba loads its OpenMP runtime (it reads
#: the setting once); a user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT is left alone.
SPIN_COUNT = "1000"
if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    os.environ["GOMP_SPINCOUNT"] = SPIN_COUNT

__all__ = [
    "SPIN_COUNT",
    "blas_threads",
    "concurrent_launches_safe",
    "max_threads",
    "resolve_threads",
    "run_tasks",
    "single_thread_blas",
    "using_threads",
]


def max_threads() -> int:
    """Most threads numba may use here (NUMBA_NUM_THREADS, by default the core count)."""
    return int(numba.config.NUMBA_NUM_THREADS)


def resolve_threads(n_threads: int | None) -> int:
    """``None`` -> all cores; otherwise ``n_threads`` capped at what numba allows."""
    limit = max_threads()
    if n_threads is None:
        return max(1, min(limit, os.cpu_count() or 1))
    return max(1, min(int(n_threads), limit))


@functools.lru_cache(maxsize=1)
def _controller() -> ThreadpoolController:
    # Inspecting the loaded BLAS libraries is slow (milliseconds); do it once. numba's
    # np.dot calls SciPy's BLAS (its own OpenBLAS, loaded with scipy.linalg.cython_blas),
    # not NumPy's: load it first, or the controller would not see it and BLAS called
    # from kernel threads would start threads of its own.
    import scipy.linalg.cython_blas  # noqa: F401

    return ThreadpoolController()


@contextlib.contextmanager
def using_threads(n_threads: int) -> Iterator[None]:
    """Run numba parallel regions on ``n_threads`` and keep BLAS single-threaded meanwhile.

    BLAS inside a parallel kernel's neighbourhood would oversubscribe the cores.
    """
    previous = numba.get_num_threads()
    numba.set_num_threads(n_threads)
    try:
        with _controller().limit(limits=1, user_api="blas"):
            yield
    finally:
        numba.set_num_threads(previous)


@contextlib.contextmanager
def blas_threads(n_threads: int) -> Iterator[None]:
    """Let BLAS use ``n_threads`` (for GEMM-bound steps run outside numba kernels)."""
    with _controller().limit(limits=n_threads, user_api="blas"):
        yield


def single_thread_blas() -> contextlib.AbstractContextManager[None]:
    """BLAS on the calling thread only, for single-row paths (see the module invariants)."""
    return blas_threads(1)


def concurrent_launches_safe() -> bool:
    """Whether parallel kernels may be launched from several Python threads at once.

    numba's OpenMP and TBB threading layers allow it; the fallback "workqueue" layer
    aborts the process on concurrent launches.
    """
    from factorkit.kernels._jit import parallel_probe

    parallel_probe(2)
    return numba.threading_layer() != "workqueue"


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
_in_task = threading.local()


def _worker_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(
                max_workers=max(1, max_threads() - 1), thread_name_prefix="factorkit"
            )
        return _pool


def run_tasks(task: Callable[..., Any], n_tasks: int, n_threads: int, *args: Any) -> list[Any]:
    """``[task(t, n_tasks, *args) for t in range(n_tasks)]``, on up to ``n_threads`` threads.

    For compiled kernels that release the GIL (factorkit's are ``nogil``) and split their
    work into a fixed number of tasks: the calling thread and ``n_threads - 1`` pool
    threads take tasks one at a time from a shared counter until none are left. Compared
    with a numba ``prange`` over the tasks it has no barrier that spins (a thread that
    loses its core delays only the task it holds) and nothing to compile (a parallel
    region costs seconds of first-run compilation per kernel). Each task's result depends
    on its index only, never on the thread that ran it, so results are the same for any
    thread count. Called from inside a task, it runs serially (no nested pools).
    """
    results: list[Any] = [None] * n_tasks
    workers = min(max(1, int(n_threads)), n_tasks)
    if workers <= 1 or getattr(_in_task, "active", False):
        for t in range(n_tasks):
            results[t] = task(t, n_tasks, *args)
        return results
    claim = itertools.count()  # next() is atomic under the GIL
    finished = itertools.count(1)
    all_done = threading.Event()
    failed: list[BaseException] = []

    def work() -> None:
        _in_task.active = True
        try:
            while not failed:
                t = next(claim)
                if t >= n_tasks:
                    return
                results[t] = task(t, n_tasks, *args)
                if next(finished) == n_tasks:
                    all_done.set()
        except BaseException as exc:  # re-raised on the calling thread below
            failed.append(exc)
            all_done.set()
        finally:
            _in_task.active = False

    futures = [_worker_pool().submit(work) for _ in range(workers - 1)]
    work()
    # Wait for the tasks, not for the pool threads: on a busy machine a pool thread may
    # get a core only after the calling thread has run every task, and then has nothing
    # left to do; waiting for it to start (a time slice or more) would cost more than
    # the task split saves. It finds no task when it runs and returns.
    all_done.wait()
    if failed:
        for future in futures:
            future.result()
        raise failed[0]
    return results
