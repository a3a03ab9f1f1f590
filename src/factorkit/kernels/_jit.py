"""The one shared numba decorator and thread control for every kernel."""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator

import numba
from numba import prange
from threadpoolctl import ThreadpoolController

__all__ = ["jit", "max_threads", "resolve_threads", "using_threads"]


def jit(*, parallel: bool = False, fastmath: bool | set = False):
    """``numba.njit`` with factorkit's defaults: cache=True, nogil=True.

    ``parallel`` is only for kernels that use ``prange``. ``fastmath`` may be a set of
    flags; kernels that detect divergence keep ``nnan``/``ninf`` off so NaN stays visible.
    """
    return numba.njit(cache=True, nogil=True, parallel=parallel, fastmath=fastmath)


#: fastmath flags safe for kernels that must still see NaN/inf: reassociation lets LLVM
#: vectorise dot products; contraction allows FMA.
SAFE_FASTMATH = {"reassoc", "contract", "nsz", "arcp"}


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
    # Inspecting the loaded BLAS libraries is slow (milliseconds); do it once.
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


@jit(parallel=True)
def _parallel_probe(n):  # pragma: no cover - compiled
    total = 0
    for i in prange(n):
        total += i
    return total


def concurrent_launches_safe() -> bool:
    """Whether parallel kernels may be launched from several Python threads at once.

    numba's OpenMP and TBB threading layers allow it; the fallback "workqueue" layer
    aborts the process on concurrent launches.
    """
    _parallel_probe(2)
    return numba.threading_layer() != "workqueue"
