"""The one shared numba decorator, and the prefetch, atomic and wait intrinsics of kernels.

Thread counts are resolved by :mod:`factorkit._threads`; kernels receive them.
"""

from __future__ import annotations

import platform
import sys

import numba
from llvmlite import ir
from numba import prange, types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = [
    "SAFE_FASTMATH",
    "claim_next",
    "compare_and_swap",
    "copy_row",
    "count_done",
    "fetch_add32",
    "futex_wait",
    "futex_wake",
    "jit",
    "load32",
    "load_acquire",
    "parallel_probe",
    "prefetch_item",
    "prefetch_row",
    "read_only",
    "store_release",
]


def jit(*, parallel: bool = False, fastmath: bool | set = False, nrt: bool = True):
    """``numba.njit`` with factorkit's defaults: cache=True, nogil=True.

    ``parallel`` is only for kernels that use ``prange``. ``fastmath`` may be a set of
    flags; kernels that detect divergence keep ``nnan``/``ninf`` off so NaN stays visible.
    ``nrt=False`` compiles without numba's reference counting, for small helpers that
    take arrays but allocate none, called once per row of a hot loop: with it, each call
    increments and decrements its arrays' reference counts (calls into the runtime that
    LLVM cannot remove, and that spill vector registers), which cost a sparse NMF
    half-step 0.2-0.3 ms of its 1.1 ms (docs/benchmarks.md, issue 12).
    """
    if not nrt:
        return numba.njit(cache=True, nogil=True, fastmath=fastmath, _nrt=False)
    return numba.njit(cache=True, nogil=True, parallel=parallel, fastmath=fastmath)


def read_only(*arrays):
    """Read-only views of ``arrays``, for a kernel's input arguments.

    numba compiles a kernel once per combination of argument types, and a read-only array
    is a different type from a writable one: a caller whose inputs are sometimes frozen
    (an ``Interactions``' cached arrays) and sometimes fresh (a converted copy) would
    compile the kernel twice. Passing every input through here makes one compilation.
    """
    views = []
    for a in arrays:
        view = a.view()
        view.flags.writeable = False
        views.append(view)
    return views


#: fastmath flags safe for kernels that must still see NaN/inf: reassociation lets LLVM
#: vectorise dot products; contraction allows FMA.
SAFE_FASTMATH = {"reassoc", "contract", "nsz", "arcp"}


@jit(parallel=True)
def parallel_probe(n):  # pragma: no cover - compiled
    """A trivial parallel region: launching it selects numba's threading layer."""
    total = 0
    for i in prange(n):
        total += i
    return total


@jit()
def copy_row(dst, src):  # pragma: no cover - compiled
    """``dst[:] = src`` for 1-D arrays of equal length, as a plain loop.

    Kernels copy rows with this instead of slice assignment: numba compiles slice
    assignment's shape-mismatch error message (string formatting of the shapes) into every
    kernel that uses it, seconds of first-run compilation for an error that the callers'
    equal lengths rule out.
    """
    for j in range(len(dst)):
        dst[j] = src[j]


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


@intrinsic
def claim_next(typingctx, counter):  # pragma: no cover - compiled
    """Atomically ``counter[0] += 1``; returns the value before (an int64 array).

    Lets the threads of one :func:`factorkit._threads.run_tasks` call share out blocks of
    work inside compiled code: each thread claims the next block until none are left,
    entering and leaving Python (and the GIL) once per call instead of once per block.
    """
    if not (
        isinstance(counter, types.Array) and counter.ndim == 1 and counter.dtype == types.int64
    ):
        return None

    def codegen(context, builder, signature, args):
        arr = context.make_array(signature.args[0])(context, builder, args[0])
        return builder.atomic_rmw("add", arr.data, ir.Constant(ir.IntType(64), 1), "monotonic")

    return types.int64(counter), codegen


@intrinsic
def count_done(typingctx, counter):  # pragma: no cover - compiled
    """Atomically ``counter[0] += 1`` with acquire-release ordering; returns the value
    before (an int64 array).

    A thread that finishes a block of work counts it here; the one that reads
    ``n_blocks - 1`` finished the last block and sees every other thread's writes made
    before their counts (release on each increment, acquire on the last), so it can run
    the step that needs all blocks (:func:`factorkit.kernels.nmf.nmf_dense_iteration`)
    without a barrier.
    """
    if not (
        isinstance(counter, types.Array) and counter.ndim == 1 and counter.dtype == types.int64
    ):
        return None

    def codegen(context, builder, signature, args):
        arr = context.make_array(signature.args[0])(context, builder, args[0])
        return builder.atomic_rmw("add", arr.data, ir.Constant(ir.IntType(64), 1), "acq_rel")

    return types.int64(counter), codegen


def _int64_slot(context, builder, signature, args):
    """Pointer to ``array[index]`` of a 1-D int64 array (the atomics' operand)."""
    arr = context.make_array(signature.args[0])(context, builder, args[0])
    index = context.cast(builder, args[1], signature.args[1], types.intp)
    return builder.gep(arr.data, [index])


def _is_int64_vector(array):
    return isinstance(array, types.Array) and array.ndim == 1 and array.dtype == types.int64


@intrinsic
def load_acquire(typingctx, array, index):  # pragma: no cover - compiled
    """``array[index]`` (1-D int64) read atomically with acquire ordering.

    Pairs with :func:`store_release`: whatever the storing thread wrote before its
    release store is visible to this thread after it reads the stored value.
    """
    if not (_is_int64_vector(array) and isinstance(index, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        slot = _int64_slot(context, builder, signature, args)
        return builder.load_atomic(slot, "acquire", 8)

    return types.int64(array, index), codegen


@intrinsic
def store_release(typingctx, array, index, value):  # pragma: no cover - compiled
    """``array[index] = value`` (1-D int64) written atomically with release ordering:
    every write this thread made before it is visible to a thread that reads ``value``
    with :func:`load_acquire`."""
    if not (
        _is_int64_vector(array)
        and isinstance(index, types.Integer)
        and isinstance(value, types.Integer)
    ):
        return None

    def codegen(context, builder, signature, args):
        slot = _int64_slot(context, builder, signature, args[:2])
        val = context.cast(builder, args[2], signature.args[2], types.int64)
        builder.store_atomic(val, slot, "release", 8)
        return context.get_dummy_value()

    return types.void(array, index, value), codegen


@intrinsic
def compare_and_swap(typingctx, array, index, expected, new):  # pragma: no cover - compiled
    """Atomically: if ``array[index] == expected``, set it to ``new``; returns whether it
    did (1-D int64; acquire-release ordering, so a claim made through it sees the writes
    published before the value it replaced)."""
    if not (
        _is_int64_vector(array)
        and isinstance(index, types.Integer)
        and isinstance(expected, types.Integer)
        and isinstance(new, types.Integer)
    ):
        return None

    def codegen(context, builder, signature, args):
        slot = _int64_slot(context, builder, signature, args[:2])
        old = context.cast(builder, args[2], signature.args[2], types.int64)
        val = context.cast(builder, args[3], signature.args[3], types.int64)
        pair = builder.cmpxchg(slot, old, val, "acq_rel", "acquire")
        return builder.extract_value(pair, 1)

    return types.boolean(array, index, expected, new), codegen


#: Linux's futex system call number on the architectures where it is known; elsewhere
#: (-1) a wait yields the core instead
_SYS_FUTEX = (
    {"x86_64": 202, "amd64": 202, "aarch64": 98, "arm64": 98}.get(platform.machine().lower(), -1)
    if sys.platform.startswith("linux")
    else -1
)
#: the C library's "give up the core" call
_YIELD = "SwitchToThread" if sys.platform == "win32" else "sched_yield"
_FUTEX_WAIT_PRIVATE = 128
_FUTEX_WAKE_PRIVATE = 129
#: longest single futex sleep: a safety net (a missed wake costs this much, never a hang)
_FUTEX_TIMEOUT_NS = 1_000_000


def _int32_slot(context, builder, signature, args):
    arr = context.make_array(signature.args[0])(context, builder, args[0])
    index = context.cast(builder, args[1], signature.args[1], types.intp)
    return builder.gep(arr.data, [index])


def _is_int32_vector(array):
    return isinstance(array, types.Array) and array.ndim == 1 and array.dtype == types.int32


def _syscall(builder, *values):
    i64 = ir.IntType(64)
    fnty = ir.FunctionType(i64, [i64], var_arg=True)
    fn = cgutils.get_or_insert_function(builder.module, fnty, "syscall")
    return builder.call(fn, [ir.Constant(i64, _SYS_FUTEX), *values])


@intrinsic
def futex_wait(typingctx, array, index, expected):  # pragma: no cover - compiled
    """Sleep while ``array[index]`` (1-D int32, shared between threads) equals
    ``expected``, until :func:`futex_wake` on the same slot or at most 1 ms; returns at
    once if it differs. Linux's futex (private), so a waiting thread uses no CPU; where
    the system call is not available (not Linux, or an architecture whose number is not
    listed) it yields the core (``sched_yield``, Windows' ``SwitchToThread``) instead.
    Both are linked by name from the C library, so cached kernels carry no
    process-specific address."""
    if not (
        _is_int32_vector(array)
        and isinstance(index, types.Integer)
        and isinstance(expected, types.Integer)
    ):
        return None

    def codegen(context, builder, signature, args):
        i64 = ir.IntType(64)
        if _SYS_FUTEX < 0:
            fnty = ir.FunctionType(ir.IntType(32), [])
            builder.call(cgutils.get_or_insert_function(builder.module, fnty, _YIELD), [])
            return context.get_dummy_value()
        slot = _int32_slot(context, builder, signature, args[:2])
        val = context.cast(builder, args[2], signature.args[2], types.int64)
        spec = cgutils.alloca_once(builder, ir.ArrayType(i64, 2))
        builder.store(ir.Constant(ir.ArrayType(i64, 2), [0, _FUTEX_TIMEOUT_NS]), spec)
        _syscall(
            builder,
            builder.ptrtoint(slot, i64),
            ir.Constant(i64, _FUTEX_WAIT_PRIVATE),
            val,
            builder.ptrtoint(spec, i64),
            ir.Constant(i64, 0),
            ir.Constant(i64, 0),
        )
        return context.get_dummy_value()

    return types.void(array, index, expected), codegen


@intrinsic
def futex_wake(typingctx, array, index):  # pragma: no cover - compiled
    """Wake every thread sleeping in :func:`futex_wait` on ``array[index]`` (1-D int32)."""
    if not (_is_int32_vector(array) and isinstance(index, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        if _SYS_FUTEX < 0:
            return context.get_dummy_value()
        i64 = ir.IntType(64)
        slot = _int32_slot(context, builder, signature, args[:2])
        _syscall(
            builder,
            builder.ptrtoint(slot, i64),
            ir.Constant(i64, _FUTEX_WAKE_PRIVATE),
            ir.Constant(i64, 2**31 - 1),
            ir.Constant(i64, 0),
            ir.Constant(i64, 0),
            ir.Constant(i64, 0),
        )
        return context.get_dummy_value()

    return types.void(array, index), codegen


@intrinsic
def fetch_add32(typingctx, array, index, value):  # pragma: no cover - compiled
    """Atomically ``array[index] += value`` (1-D int32, sequentially consistent);
    returns the value before."""
    if not (
        _is_int32_vector(array)
        and isinstance(index, types.Integer)
        and isinstance(value, types.Integer)
    ):
        return None

    def codegen(context, builder, signature, args):
        slot = _int32_slot(context, builder, signature, args[:2])
        val = context.cast(builder, args[2], signature.args[2], types.int32)
        return builder.atomic_rmw("add", slot, val, "seq_cst")

    return types.int32(array, index, value), codegen


@intrinsic
def load32(typingctx, array, index):  # pragma: no cover - compiled
    """``array[index]`` (1-D int32) read atomically, sequentially consistent."""
    if not (_is_int32_vector(array) and isinstance(index, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        return builder.load_atomic(_int32_slot(context, builder, signature, args), "seq_cst", 4)

    return types.int32(array, index), codegen
