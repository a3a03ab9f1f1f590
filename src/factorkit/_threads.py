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
  ALS half-steps) spin only briefly, then sleep (:data:`SPIN_COUNT`);
- a repeated step whose result does not depend on its worker count (BiasedMF's SGD
  epoch; BPR's and SVD++'s Hogwild epochs, whose streams or chunks are fixed by
  ``n_threads``) may run on fewer
  workers than ``n_threads`` when fewer have been faster lately, i.e. when other
  processes hold the cores (:class:`AdaptiveWorkers`); a step whose result depends on
  the count never adapts.
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
    "AdaptiveWorkers",
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


class AdaptiveWorkers:
    """How many workers each call of a repeated parallel step gets: ``n_threads``, or one
    when one has lately been faster.

    Only for steps whose result is the same for any worker count (BiasedMF's dataflow
    SGD epoch, bit for bit), or whose multi-threaded result is not repeatable anyway and
    whose work split does not follow the worker count (BPR's and SVD++'s Hogwild epochs:
    their random streams or user chunks are fixed by ``n_threads``; one worker runs the
    same samples, only the interleaving of updates differs). The choice changes the
    speed, never what a fit computes: a fixed seed and thread count give the same bits
    on a quiet or a busy machine wherever they did before. Why: when other processes
    hold the cores, a step whose workers depend on each other's progress (SGD blocks wait
    for the previous blocks of their rows and columns) or share one epoch's work runs at
    the pace of a thread that lost its core, and one thread (which never waits for
    anyone) is faster (docs/benchmarks.md, issue 11 item 1).

    Policy: the first ``warmup`` calls run ``n_threads`` workers untimed (first touches
    of memory and caches). Then a call on ``n_threads`` workers is timed; if its threads
    held their cores (process CPU time at least ``busy`` times workers times wall time,
    when the caller reports CPU time) they are kept, otherwise one worker is timed too
    (a probe) and the faster count is kept. The other count is probed again when the
    kept count's smoothed time drifts by more than a factor ``drift`` from the time it
    was chosen at (the load changed), at most every ``min_gap`` calls, and kept if it
    beats that smoothed time; a drift of ``n_threads`` workers that still held their
    cores (a clock change) only resets the reference. On a quiet machine no call runs on
    fewer workers.

    Parameters
    ----------
    n_threads : int
        The most workers (the resolved ``n_threads``).
    warmup, busy, drift, min_gap
        As above.

    Examples
    --------
    >>> import time
    >>> workers = AdaptiveWorkers(2)
    >>> for _ in range(6):
    ...     n = workers.next()
    ...     start = time.perf_counter()
    ...     _ = sum(range(1000 * n))  # the step (here slower with more workers)
    ...     workers.record(n, time.perf_counter() - start)
    >>> workers.next()
    1
    """

    def __init__(
        self,
        n_threads: int,
        *,
        warmup: int = 1,
        busy: float = 0.8,
        drift: float = 1.3,
        min_gap: int = 4,
    ) -> None:
        self.n_threads = max(1, int(n_threads))
        self.warmup, self.busy = int(warmup), float(busy)
        self.drift, self.min_gap = float(drift), int(min_gap)
        self.calls = 0
        self.kept = self.n_threads  # the count in use between probes
        self.reference = 0.0  # the kept count's time when it was chosen
        self.smoothed = 0.0  # the kept count's recent times, exponentially smoothed
        self.since_probe = 0
        self.probe: int | None = None  # the count the next call times, if any

    def next(self) -> int:
        """The worker count for the next call."""
        if self.n_threads == 1 or self.calls < self.warmup:
            return self.n_threads
        return self.probe if self.probe is not None else self.kept

    def record(self, workers: int, seconds: float, cpu_seconds: float | None = None) -> None:
        """Report how long the call given ``workers`` took: wall ``seconds`` and, when
        known, the process's CPU seconds over the call (all threads)."""
        self.calls += 1
        if self.n_threads == 1 or self.calls <= self.warmup:
            return
        held = (
            workers > 1 and cpu_seconds is not None and cpu_seconds >= self.busy * workers * seconds
        )
        if self.probe is not None:  # a probe finished: keep the faster count
            # against the kept count's smoothed time, not its latest one: a probe follows
            # a drift, often one slow call, which alone would favour switching
            self.probe = None
            if seconds < self.smoothed:
                self.kept = workers
                self._choose(seconds)
            else:
                self._choose(self.smoothed)
        elif self.reference == 0.0:  # the first timed call, on n_threads workers
            self._choose(seconds)
            if not held:
                self.probe = 1
        else:
            self.since_probe += 1
            self.smoothed = 0.5 * self.smoothed + 0.5 * seconds
            ratio = self.smoothed / self.reference
            if self.since_probe >= self.min_gap and not (1 / self.drift <= ratio <= self.drift):
                if held:  # the threads had their cores: nothing to learn from one
                    self._choose(self.smoothed)
                else:
                    self.probe = 1 if self.kept == self.n_threads else self.n_threads

    def _choose(self, seconds: float) -> None:
        self.reference = self.smoothed = seconds
        self.since_probe = 0
