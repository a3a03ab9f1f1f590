"""Short vectors for compiled kernels: one 64-byte register of float32 or float64.

numba has no vector type, and LLVM does not vectorise the loops that need one most: a
sparse row times a thin dense matrix, ``acc += x_ij * B[j]`` over a row's stored entries
with ``k`` (a run-time value, often 5-20) components. Written with a ``(k,)`` array as
the accumulator, every entry loads the accumulator, adds and stores it back, and the
next entry waits for that store (LLVM cannot keep it in registers: for all it knows the
accumulator may alias ``B``); with ``k`` scalar locals instead, LLVM vectorises the loop
over the entries with gathers. :class:`Vec` is a value held in one SIMD register (16
float32 or 8 float64 lanes; on CPUs with narrower registers LLVM splits it), so the
accumulator of such a loop stays in registers:

    for c in range(0, k, lanes(B)):
        acc = vzero(B)
        for p in range(indptr[i], indptr[i + 1]):
            acc = vfma(acc, data[p], vload_row(B, indices[p], c))
        vstore_row(out, i, c, acc)

Loads and stores of a row segment are masked to the row's length (LLVM's
``masked.load`` / ``masked.store``): lanes past the last column are neither read nor
written and load as zero, so ``k`` needs no padding. Rows are addressed as
``row * n_columns + column``: 2-D arrays must be C-contiguous (checked when the kernel
compiles). Each function is an ``@intrinsic``: it exists only inside compiled code.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, models, register_model

__all__ = [
    "Vec",
    "item",
    "lanes",
    "vadd",
    "vcd_step",
    "vdot",
    "vfma",
    "vfmav",
    "vget",
    "vload_col",
    "vload_row",
    "vmu_step",
    "vscale",
    "vset",
    "vsplat",
    "vstore_col",
    "vstore_row",
    "vsub",
    "vsum",
    "vzero",
]

#: bytes per vector: one AVX-512 register
VECTOR_BYTES = 64
_I32 = ir.IntType(32)


class Vec(types.Type):
    """A vector of ``VECTOR_BYTES // itemsize`` lanes of a float dtype (a numba type)."""

    def __init__(self, dtype: types.Float):
        self.dtype = dtype
        self.width = VECTOR_BYTES * 8 // dtype.bitwidth
        super().__init__(name=f"Vec({dtype} x {self.width})")


@register_model(Vec)
class _VecModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        element = dmm.lookup(fe_type.dtype).get_value_type()
        super().__init__(dmm, fe_type, ir.VectorType(element, fe_type.width))


def _float_array(arr, ndim: int) -> bool:
    return (
        isinstance(arr, types.Array)
        and arr.ndim == ndim
        and arr.layout == "C"
        and isinstance(arr.dtype, types.Float)
    )


def _suffix(vty: ir.VectorType) -> str:
    return f"v{vty.count}f{32 if isinstance(vty.element, ir.FloatType) else 64}"


def _splat(builder, vty: ir.VectorType, value):
    first = builder.insert_element(ir.Constant(vty, ir.Undefined), value, _I32(0))
    return builder.shuffle_vector(
        first, ir.Constant(vty, ir.Undefined), ir.Constant(ir.VectorType(_I32, vty.count), None)
    )


def _row_pointer(context, builder, sig, args):
    """Pointer to ``arr[row, col]`` and the lane mask ``col + lane < n_columns``."""
    arr = context.make_array(sig.args[0])(context, builder, args[0])
    n_cols = builder.extract_value(arr.shape, 1)
    row = context.cast(builder, args[1], sig.args[1], types.intp)
    col = context.cast(builder, args[2], sig.args[2], types.intp)
    pointer = builder.gep(arr.data, [builder.add(builder.mul(row, n_cols), col)])
    width = Vec(sig.args[0].dtype).width
    iota = ir.Constant(ir.VectorType(n_cols.type, width), list(range(width)))
    remaining = _splat(builder, ir.VectorType(n_cols.type, width), builder.sub(n_cols, col))
    return pointer, builder.icmp_signed("<", iota, remaining)


def _align(context, dtype) -> ir.Constant:
    return _I32(context.get_abi_sizeof(context.get_data_type(dtype)))


@intrinsic
def item(typingctx, arr, index):  # pragma: no cover - compiled
    """``arr[index]`` of a contiguous 1-D array, for ``0 <= index < len(arr)`` only.

    numba's ``arr[index]`` with a signed index first maps a negative index to
    ``index + len(arr)`` (a compare and two conditional moves); in a loop of a few
    instructions per stored entry that is a third of the work (``X[i] @ B``: 1.05 ->
    0.74 ms for 775k entries). Loops over CSR ranges ``indptr[i]:indptr[i + 1]`` never
    index below 0.
    """
    if not (isinstance(arr, types.Array) and arr.ndim == 1 and arr.layout == "C"):
        return None
    if not isinstance(index, types.Integer):
        return None

    def codegen(context, builder, sig, args):
        a = context.make_array(sig.args[0])(context, builder, args[0])
        offset = context.cast(builder, args[1], sig.args[1], types.intp)
        return builder.load(builder.gep(a.data, [offset]))

    return arr.dtype(arr, index), codegen


@intrinsic
def lanes(typingctx, arr):  # pragma: no cover - compiled
    """Lanes of a :class:`Vec` of ``arr``'s dtype (a compile-time constant)."""
    if not (isinstance(arr, types.Array) and isinstance(arr.dtype, types.Float)):
        return None
    width = Vec(arr.dtype).width

    def codegen(context, builder, sig, args):
        return context.get_constant(types.intp, width)

    return types.intp(arr), codegen


@intrinsic
def vzero(typingctx, arr):  # pragma: no cover - compiled
    """A :class:`Vec` of zeros of ``arr``'s dtype."""
    if not (isinstance(arr, types.Array) and isinstance(arr.dtype, types.Float)):
        return None

    def codegen(context, builder, sig, args):
        return ir.Constant(context.get_value_type(sig.return_type), None)

    return Vec(arr.dtype)(arr), codegen


@intrinsic
def vsplat(typingctx, arr, value):  # pragma: no cover - compiled
    """A :class:`Vec` of ``arr``'s dtype with every lane ``value``."""
    if not (isinstance(arr, types.Array) and isinstance(arr.dtype, types.Float)):
        return None

    def codegen(context, builder, sig, args):
        scalar = context.cast(builder, args[1], sig.args[1], sig.return_type.dtype)
        return _splat(builder, context.get_value_type(sig.return_type), scalar)

    return Vec(arr.dtype)(arr, value), codegen


@intrinsic
def vload_row(typingctx, arr, row, col):  # pragma: no cover - compiled
    """``arr[row, col:col + lanes]`` of a C-ordered 2-D float array; lanes past the
    row's end are zero (and not read)."""
    if not _float_array(arr, 2):
        return None

    def codegen(context, builder, sig, args):
        pointer, mask = _row_pointer(context, builder, sig, args)
        vty = context.get_value_type(sig.return_type)
        fnty = ir.FunctionType(vty, [pointer.type, _I32, mask.type, vty])
        fn = cgutils.get_or_insert_function(
            builder.module, fnty, f"llvm.masked.load.{_suffix(vty)}.p0"
        )
        align = _align(context, sig.args[0].dtype)
        return builder.call(fn, [pointer, align, mask, ir.Constant(vty, None)])

    return Vec(arr.dtype)(arr, row, col), codegen


@intrinsic
def vstore_row(typingctx, arr, row, col, vec):  # pragma: no cover - compiled
    """``arr[row, col:col + lanes] = vec``, the lanes past the row's end left alone."""
    if not (_float_array(arr, 2) and isinstance(vec, Vec) and vec.dtype == arr.dtype):
        return None

    def codegen(context, builder, sig, args):
        pointer, mask = _row_pointer(context, builder, sig, args)
        vty = args[3].type
        fnty = ir.FunctionType(ir.VoidType(), [vty, pointer.type, _I32, mask.type])
        fn = cgutils.get_or_insert_function(
            builder.module, fnty, f"llvm.masked.store.{_suffix(vty)}.p0"
        )
        builder.call(fn, [args[3], pointer, _align(context, sig.args[0].dtype), mask])
        return context.get_dummy_value()

    return types.void(arr, row, col, vec), codegen


@intrinsic
def vfma(typingctx, acc, scale, vec):  # pragma: no cover - compiled
    """``acc + scale * vec`` (one fused multiply-add per lane)."""
    if not (isinstance(acc, Vec) and acc == vec and isinstance(scale, types.Number)):
        return None

    def codegen(context, builder, sig, args):
        vty = args[0].type
        factor = _splat(builder, vty, context.cast(builder, args[1], sig.args[1], acc.dtype))
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(vty, [vty, vty, vty]), f"llvm.fma.{_suffix(vty)}"
        )
        return builder.call(fn, [factor, args[2], args[0]])

    return acc(acc, scale, vec), codegen


@intrinsic
def vfmav(typingctx, acc, a, b):  # pragma: no cover - compiled
    """``acc + a * b``, lane by lane (one fused multiply-add per lane)."""
    if not (isinstance(acc, Vec) and acc == a and acc == b):
        return None

    def codegen(context, builder, sig, args):
        vty = args[0].type
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(vty, [vty, vty, vty]), f"llvm.fma.{_suffix(vty)}"
        )
        return builder.call(fn, [args[1], args[2], args[0]])

    return acc(acc, a, b), codegen


@intrinsic
def vadd(typingctx, a, b):  # pragma: no cover - compiled
    """``a + b``, lane by lane."""
    if not (isinstance(a, Vec) and a == b):
        return None

    def codegen(context, builder, sig, args):
        return builder.fadd(args[0], args[1])

    return a(a, b), codegen


@intrinsic
def vscale(typingctx, vec, scale, shift):  # pragma: no cover - compiled
    """``scale * vec + shift`` (scalars broadcast to every lane)."""
    if not (
        isinstance(vec, Vec) and isinstance(scale, types.Number) and isinstance(shift, types.Number)
    ):
        return None

    def codegen(context, builder, sig, args):
        vty = args[0].type
        a = _splat(builder, vty, context.cast(builder, args[1], sig.args[1], vec.dtype))
        b = _splat(builder, vty, context.cast(builder, args[2], sig.args[2], vec.dtype))
        return builder.fadd(builder.fmul(a, args[0]), b)

    return vec(vec, scale, shift), codegen


@intrinsic
def vget(typingctx, vec, lane):  # pragma: no cover - compiled
    """Lane ``lane`` of ``vec`` (0 <= lane < lanes)."""
    if not (isinstance(vec, Vec) and isinstance(lane, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        return builder.extract_element(args[0], args[1])

    return vec.dtype(vec, lane), codegen


@intrinsic
def vset(typingctx, vec, lane, value):  # pragma: no cover - compiled
    """``vec`` with lane ``lane`` replaced by ``value``."""
    if not (
        isinstance(vec, Vec) and isinstance(lane, types.Integer) and isinstance(value, types.Number)
    ):
        return None

    def codegen(context, builder, sig, args):
        scalar = context.cast(builder, args[2], sig.args[2], vec.dtype)
        return builder.insert_element(args[0], scalar, args[1])

    return vec(vec, lane, value), codegen


@intrinsic
def vsum(typingctx, vec):  # pragma: no cover - compiled
    """The sum of the lanes (in any order)."""
    if not isinstance(vec, Vec):
        return None

    def codegen(context, builder, sig, args):
        vty = args[0].type
        fn = cgutils.get_or_insert_function(
            builder.module,
            ir.FunctionType(vty.element, [vty.element, vty]),
            f"llvm.vector.reduce.fadd.{_suffix(vty)}",
        )
        return builder.call(fn, [ir.Constant(vty.element, 0.0), args[0]], fastmath=("reassoc",))

    return vec.dtype(vec), codegen


@intrinsic
def vdot(typingctx, a, b):  # pragma: no cover - compiled
    """``sum(a * b)`` over the lanes (in any order)."""
    if not (isinstance(a, Vec) and a == b):
        return None

    def codegen(context, builder, sig, args):
        vty = args[0].type
        fn = cgutils.get_or_insert_function(
            builder.module,
            ir.FunctionType(vty.element, [vty.element, vty]),
            f"llvm.vector.reduce.fadd.{_suffix(vty)}",
        )
        product = builder.fmul(args[0], args[1])
        return builder.call(fn, [ir.Constant(vty.element, 0.0), product], fastmath=("reassoc",))

    return a.dtype(a, b), codegen


@intrinsic
def vcd_step(typingctx, a, grad, hess):  # pragma: no cover - compiled
    """One coordinate-descent step per lane for ``min 0.5 hess a^2 + grad a, a >= 0``
    around the current ``a``: ``(max(a - grad / hess, 0), |pg|)``, ``pg`` the projected
    gradient (``min(grad, 0)`` where ``a == 0``, else ``grad``). An exact division, as
    the scalar steps."""
    if not (isinstance(a, Vec) and a == grad and isinstance(hess, types.Float)):
        return None

    def codegen(context, builder, sig, args):
        vty = args[0].type
        zero = ir.Constant(vty, None)
        h = _splat(builder, vty, context.cast(builder, args[2], sig.args[2], a.dtype))
        moved = builder.fsub(args[0], builder.fdiv(args[1], h))
        new = builder.select(builder.fcmp_ordered(">", moved, zero), moved, zero)
        low = builder.select(builder.fcmp_ordered("<", args[1], zero), args[1], zero)
        pg = builder.select(builder.fcmp_ordered("==", args[0], zero), low, args[1])
        fabs = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(vty, [vty]), f"llvm.fabs.{_suffix(vty)}"
        )
        return context.make_tuple(builder, sig.return_type, [new, builder.call(fabs, [pg])])

    return types.UniTuple(a, 2)(a, grad, hess), codegen


@intrinsic
def vmu_step(typingctx, a, numer, denom, l1, l2, eps):  # pragma: no cover - compiled
    """One multiplicative update per lane: ``a * (numer / d)``, ``d = denom + l1 + l2 a``
    (a zero ``d`` replaced by ``eps``), as the scalar rows of the NMF kernels."""
    if not (isinstance(a, Vec) and a == numer and a == denom):
        return None
    if not all(isinstance(x, types.Number) for x in (l1, l2, eps)):
        return None

    def codegen(context, builder, sig, args):
        vty = args[0].type
        cast = [context.cast(builder, args[q], sig.args[q], a.dtype) for q in (3, 4, 5)]
        l1v, l2v, epsv = (_splat(builder, vty, x) for x in cast)
        d = builder.fadd(builder.fadd(args[2], l1v), builder.fmul(l2v, args[0]))
        d = builder.select(builder.fcmp_ordered("==", d, ir.Constant(vty, None)), epsv, d)
        return builder.fmul(args[0], builder.fdiv(args[1], d))

    return a(a, numer, denom, l1, l2, eps), codegen


@intrinsic
def vsub(typingctx, a, b):  # pragma: no cover - compiled
    """``a - b``, lane by lane."""
    if not (isinstance(a, Vec) and a == b):
        return None

    def codegen(context, builder, sig, args):
        return builder.fsub(args[0], args[1])

    return a(a, b), codegen


def _column_pointers(context, builder, sig, args):
    """Pointers to ``arr[row + l, col]`` for each lane ``l`` and the count of rows."""
    arr = context.make_array(sig.args[0])(context, builder, args[0])
    n_cols = builder.extract_value(arr.shape, 1)
    row = context.cast(builder, args[1], sig.args[1], types.intp)
    col = context.cast(builder, args[2], sig.args[2], types.intp)
    count = context.cast(builder, args[3], sig.args[3], types.intp)
    start = builder.add(builder.mul(row, n_cols), col)
    width = Vec(sig.args[0].dtype).width
    return [
        builder.gep(arr.data, [builder.add(start, builder.mul(n_cols, n_cols.type(lane)))])
        for lane in range(width)
    ], count


@intrinsic
def vload_col(typingctx, arr, row, col, count):  # pragma: no cover - compiled
    """``arr[row:row + count, col]`` of a C-ordered 2-D float array as a vector (lane
    ``l`` holds row ``row + l``; lanes from ``count`` on are zero and not read)."""
    if not (_float_array(arr, 2) and all(isinstance(a, types.Integer) for a in (row, col, count))):
        return None

    def codegen(context, builder, sig, args):
        pointers, count = _column_pointers(context, builder, sig, args)
        vty = context.get_value_type(sig.return_type)
        vec = ir.Constant(vty, None)
        value = cgutils.alloca_once(builder, vty.element)  # in the entry block
        for lane, pointer in enumerate(pointers):
            builder.store(ir.Constant(vty.element, 0.0), value)
            with builder.if_then(builder.icmp_signed(">", count, count.type(lane))):
                builder.store(builder.load(pointer), value)
            vec = builder.insert_element(vec, builder.load(value), _I32(lane))
        return vec

    return Vec(arr.dtype)(arr, row, col, count), codegen


@intrinsic
def vstore_col(typingctx, arr, row, col, count, vec):  # pragma: no cover - compiled
    """``arr[row:row + count, col] = vec[:count]`` (the inverse of :func:`vload_col`)."""
    if not (_float_array(arr, 2) and isinstance(vec, Vec) and vec.dtype == arr.dtype):
        return None

    def codegen(context, builder, sig, args):
        pointers, count = _column_pointers(context, builder, sig, args)
        for lane, pointer in enumerate(pointers):
            with builder.if_then(builder.icmp_signed(">", count, count.type(lane))):
                builder.store(builder.extract_element(args[4], _I32(lane)), pointer)
        return context.get_dummy_value()

    return types.void(arr, row, col, count, vec), codegen
