"""The one shared numba decorator and thread control for every kernel."""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator

import numba
from llvmlite import ir
from numba import prange, types
from numba.core import cgutils
from numba.extending import intrinsic
from threadpoolctl import ThreadpoolController

__all__ = [
    "jit",
    "max_threads",
    "prefetch_item",
    "prefetch_row",
    "resolve_threads",
    "using_threads",
]


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
    # Inspecting the loaded BLAS libraries is slow (milliseconds); do it once. numba's
    # np.dot calls SciPy's BLAS (its own OpenBLAS, loaded with scipy.linalg.cython_blas),
    # not NumPy's: load it first, or the controller would not see it and BLAS called
    # from kernel threads would start threads of its own (2 kernel threads ran 3x slower).
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


_CACHE_LINE = 64


def _prefetch_fn(builder):
    i8p = ir.IntType(8).as_pointer()
    i32 = ir.IntType(32)
    fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
    return cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch")


def _prefetch_call(builder, fn, pointer):
    i32 = ir.IntType(32)
    # read (0), keep in all cache levels (3), data cache (1)
    builder.call(fn, [builder.bitcast(pointer, ir.IntType(8).as_pointer()), i32(0), i32(3), i32(1)])


@intrinsic
def prefetch_item(typingctx, array, index):  # pragma: no cover - compiled
    """Ask the CPU to start loading ``array[index]`` (1-D, contiguous) into cache.

    A hint like :func:`prefetch_row`, for one element.
    """
    if not (isinstance(array, types.Array) and array.ndim == 1 and array.layout == "C"):
        return None
    if not isinstance(index, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        array_type, index_type = signature.args
        arr = context.make_array(array_type)(context, builder, args[0])
        offset = context.cast(builder, args[1], index_type, types.intp)
        _prefetch_call(builder, _prefetch_fn(builder), builder.gep(arr.data, [offset]))
        return context.get_dummy_value()

    return types.void(array, index), codegen


@intrinsic
def prefetch_row(typingctx, array, row):  # pragma: no cover - compiled
    """Ask the CPU to start loading row ``row`` of the C-ordered 2-D ``array`` into cache.

    A hint (LLVM's ``llvm.prefetch``: read, keep in all cache levels), one per cache line
    of the row; it never faults and changes no result. Kernels bound by memory latency
    (random rows of large factor matrices) issue it a few samples ahead of the row's use,
    so that the loads overlap instead of stalling one after another.
    """
    if not (isinstance(array, types.Array) and array.ndim == 2 and array.layout == "C"):
        return None
    if not isinstance(row, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        array_type, row_type = signature.args
        arr = context.make_array(array_type)(context, builder, args[0])
        n_cols = builder.extract_value(arr.shape, 1)
        start = builder.mul(context.cast(builder, args[1], row_type, types.intp), n_cols)
        item = context.get_abi_sizeof(context.get_data_type(array_type.dtype))
        step = max(1, _CACHE_LINE // item)
        fn = _prefetch_fn(builder)
        n_lines = builder.udiv(
            builder.add(n_cols, ir.Constant(n_cols.type, step - 1)), ir.Constant(n_cols.type, step)
        )
        with cgutils.for_range(builder, n_lines) as loop:
            offset = builder.add(start, builder.mul(loop.index, ir.Constant(n_cols.type, step)))
            _prefetch_call(builder, fn, builder.gep(arr.data, [offset]))
        return context.get_dummy_value()

    return types.void(array, row), codegen
