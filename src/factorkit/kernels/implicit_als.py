"""Implicit-feedback ALS (Hu, Koren & Volinsky 2008): solve every row's weighted ridge problem.

One half-step fixes one side's factors ``Y`` (``n_fixed x k``) and, for every row ``r``
of the other side (a user, or an item), solves the normal equations of

    L_r(x) = sum_{j in S_r} c_j (1 - x . y_j)^2 + w0 sum_{j not in S_r} (x . y_j)^2
             + lam_r |x|^2

where ``S_r`` are the row's positive interactions, ``c_j`` their confidences and ``w0``
the weight of every other (unobserved) cell. Writing ``G = w0 Y^T Y`` (the Gram trick,
computed once per half-step by the caller), the system is

    A x = b,   A = G + sum_{j in S_r} (c_j - w0) y_j y_j^T + lam_r I,   b = sum_{j in S_r} c_j y_j

so a row costs ``O(n_r k)`` plus the ``k x k`` terms, never ``O(n_fixed k)``.

Inputs per interaction are confidences ``conf`` (``c_j >= 1`` for positives; ``0`` marks a
stored non-positive interaction, which is then treated exactly like an unobserved cell).

Two solvers:

- :func:`implicit_als_cg_rows`: ``cg_steps`` conjugate-gradient steps per row, warm-started
  from the row's current factors (Takacs, Pilaszy & Tikk, RecSys 2011). ``A p`` is
  computed as ``G p + lam_r p + sum_j (c_j - w0)(y_j . p) y_j``: the row's ``k x k``
  matrix is never formed. Cost per row: ``(cg_steps + 1) (k^2 + 2 n_r k)`` FMAs, the
  ``k^2`` part as one matrix product per step for a block of rows run in lockstep.
- :func:`implicit_als_cholesky_rows`: forms ``A`` and ``b`` and solves exactly by
  Cholesky, both from :mod:`factorkit.kernels.linalg` (Gram ``xw^T x`` of the row's
  gathered positives as BLAS matrix products in the factor dtype, in blocks added into
  float64; float64 factorisation, float32 for float32 factors at ``k >=
  CHOLESKY_FLOAT32_MIN_FACTORS``). Cost per row: ``2 n_r k^2 + k^3 / 3`` (the Gram as a
  GEMM on the full square).

Both return the objective ``sum_r L_r(x_r)`` at the new factors, at almost no extra cost:
``L_r(x) = sum c_j - 2 b . x + x^T A x``, and with the residual ``res = b - A x`` that CG
keeps anyway, ``L_r(x) = sum c_j - b . x - x . res``; ``b . x`` is tracked as a scalar
(``b . x_new = b . x_old + sum_t a_t b . p_t`` with ``b . p_t`` accumulated alongside
``A p_t``). For Cholesky ``res = 0``. The fixed side's penalty is the caller's to add.

Rows are dealt round-robin to a fixed number of tasks, each with its own scratch
buffers (no allocation per row), and each row is solved by one thread from the same
inputs, so results do not depend on the thread count; per-task objectives are summed in
a fixed order, so the objective is bit-for-bit repeatable too. No races. The scratch
vectors are 64-byte aligned: LLVM's vectorised reductions peel up to an alignment
boundary, so with wherever-the-allocator-put-it buffers the last bits of a row's result
would differ between threads.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from factorkit._threads import run_tasks
from factorkit.kernels._jit import SAFE_FASTMATH, copy_row, jit
from factorkit.kernels.linalg import cholesky_solve, gram_gemm

__all__ = [
    "CG_MAX_BLOCK_ROWS",
    "CG_MIN_BLOCK_ROWS",
    "CHOLESKY_FLOAT32_MIN_FACTORS",
    "IALS_TASKS",
    "implicit_als_cg_rows",
    "implicit_als_cholesky_rows",
    "implicit_als_confidence",
]

#: rows are dealt round-robin to this many tasks (balances skewed row lengths; fixed so
#: results never depend on the thread count)
IALS_TASKS = 256


@jit(fastmath=SAFE_FASTMATH)
def implicit_als_confidence(values, alpha, log_scale, epsilon, out):  # pragma: no cover
    """``out = 1 + alpha * r`` (linear) or ``1 + alpha * log(1 + r / epsilon)`` (log).

    Values ``<= 0`` get confidence 0, which the solvers read as "not a positive".
    """
    for j in range(len(values)):
        r = values[j]
        if r > 0:
            if log_scale:
                out[j] = 1.0 + alpha * np.log1p(r / epsilon)
            else:
                out[j] = 1.0 + alpha * r
        else:
            out[j] = 0.0


@jit()
def _aligned_empty(n, dtype):  # pragma: no cover
    """An uninitialised 1-D array whose data starts on a 64-byte boundary.

    LLVM's vectorised reductions peel iterations up to an alignment boundary, so the
    summation order (and the float result) would depend on where the allocator put a
    scratch buffer: aligning them keeps results independent of thread and run.
    """
    buf = np.empty(n + 64, dtype=dtype)
    size = buf.itemsize
    off = ((64 - buf.ctypes.data % 64) % 64) // size
    return buf[off : off + n]


@jit()
def _aligned_rows(m, k, dtype):  # pragma: no cover
    """An uninitialised C-ordered ``(m, k)`` array starting on a 64-byte boundary."""
    return _aligned_empty(m * k, dtype).reshape(m, k)


@jit(fastmath=SAFE_FASTMATH)
def _sparse_product(fixed, indices, conf, lo, hi, w0, v, acc):  # pragma: no cover
    """``acc += sum_j (c_j - w0) (y_j . v) y_j`` over the row's positives; returns
    ``sum_j c_j (y_j . v)`` (``b . v``)."""
    k = fixed.shape[1]
    zero = acc.dtype.type(0.0)
    bv = 0.0
    for j in range(lo, hi):
        c = conf[j]
        if c <= 0:
            continue
        i = indices[j]
        s = zero
        for q in range(k):
            s += fixed[i, q] * v[q]
        coef = (c - w0) * s
        for q in range(k):
            acc[q] += coef * fixed[i, q]
        bv += c * s
    return bv


@jit(fastmath=SAFE_FASTMATH)
def _cg_task(
    task, n_tasks, indptr, indices, conf, fixed, gram, w0, lam, cg_steps, out
):  # pragma: no cover
    """Rows ``task, task + n_tasks, ...`` of :func:`implicit_als_cg_rows`, in lockstep;
    their objective.

    The rows are gathered, up to ``CG_MAX_BLOCK_ROWS`` at a time, into a block ``x`` and
    each CG step's dense products ``G p`` for all of them are one matrix product (BLAS,
    on this thread), where a row at a time would be a matrix-vector product bound by
    memory bandwidth. One task of :func:`~factorkit._threads.run_tasks`. Long because
    the lockstep CG state (residuals, directions, step sizes of every row in the block)
    lives across its steps in this one frame.
    """
    n_rows = len(indptr) - 1
    k = fixed.shape[1]
    dtype = fixed.dtype
    m_all = (n_rows - task + n_tasks - 1) // n_tasks
    if m_all <= 0:
        return 0.0
    size = min(m_all, CG_MAX_BLOCK_ROWS)
    x_all = _aligned_rows(size, k, dtype)
    res_all = _aligned_rows(size, k, dtype)
    p_all = _aligned_rows(size, k, dtype)
    ap_all = _aligned_rows(size, k, dtype)
    rs = np.zeros(size, dtype=dtype)
    bx = np.zeros(size)
    active = np.ones(size, dtype=np.bool_)
    zero = np.zeros(1, dtype=dtype)[0]  # accumulators in the factor dtype: float32 loops
    # vectorise at full width
    obj = 0.0
    # the task's rows, a block at a time: the block's four (rows x k) buffers stay in cache
    for j0 in range(0, m_all, size):
        m = min(size, m_all - j0)
        first = task + j0 * n_tasks  # row of the block's first entry; then every n_tasks
        x = x_all[:m]
        res = res_all[:m]
        p = p_all[:m]
        ap = ap_all[:m]
        active[:] = True
        bx[:] = 0.0
        for t in range(m):
            copy_row(x[t], out[first + t * n_tasks])
        np.dot(x, gram, ap)
        # res = b - A x = sum_j c_j y_j - (G x + lam x + sum_j (c_j - w0)(y_j . x) y_j)
        for t in range(m):
            r = first + t * n_tasks
            lam_r = lam[r]
            for q in range(k):
                res[t, q] = -(ap[t, q] + lam_r * x[t, q])
            csum = 0.0
            for j in range(indptr[r], indptr[r + 1]):
                c = conf[j]
                if c <= 0:
                    continue
                i = indices[j]
                s = zero
                for q in range(k):
                    s += fixed[i, q] * x[t, q]
                coef = c - (c - w0) * s
                for q in range(k):
                    res[t, q] += coef * fixed[i, q]
                bx[t] += c * s
                csum += c
            obj += csum
            acc = zero
            for q in range(k):
                p[t, q] = res[t, q]
                acc += res[t, q] * res[t, q]
            rs[t] = acc
        for _ in range(cg_steps):
            np.dot(p, gram, ap)  # finished rows ride along; their p no longer changes
            for t in range(m):
                if not active[t]:
                    continue
                if rs[t] < 1e-20:
                    active[t] = False
                    continue
                r = first + t * n_tasks
                lam_r = lam[r]
                for q in range(k):
                    ap[t, q] += lam_r * p[t, q]
                bp = _sparse_product(
                    fixed, indices, conf, indptr[r], indptr[r + 1], w0, p[t], ap[t]
                )
                pap = zero
                for q in range(k):
                    pap += p[t, q] * ap[t, q]
                if not pap > 0.0:
                    active[t] = False
                    continue
                step = rs[t] / pap
                rs_new = zero
                for q in range(k):
                    x[t, q] += step * p[t, q]
                    res[t, q] -= step * ap[t, q]
                    rs_new += res[t, q] * res[t, q]
                bx[t] += step * bp
                beta = rs_new / rs[t]
                for q in range(k):
                    p[t, q] = res[t, q] + beta * p[t, q]
                rs[t] = rs_new
        for t in range(m):
            xr = zero
            for q in range(k):
                xr += x[t, q] * res[t, q]
            obj -= bx[t] + xr
            copy_row(out[first + t * n_tasks], x[t])
    return obj


#: rows per CG task at least: a task's ``G p`` products for a block of its rows are one
#: matrix product, efficient from a few dozen rows on
CG_MIN_BLOCK_ROWS = 48
#: rows per block at most: the block's four (rows x k) buffers must stay in L2, or the
#: per-row sparse products stream them from memory (docs/benchmarks.md, "Kernel design
#: notes")
CG_MAX_BLOCK_ROWS = 64


def implicit_als_cg_rows(indptr, indices, conf, fixed, gram, w0, lam, cg_steps, out):
    """Improve every row of ``out`` by ``cg_steps`` conjugate-gradient steps, in place.

    Rows are dealt round-robin to at most ``IALS_TASKS`` tasks of at least
    ``CG_MIN_BLOCK_ROWS`` rows (a count that depends on the rows only, never on the
    threads); a task runs CG on its rows in lockstep, so that ``G p`` for all of them is
    one matrix product. Call it under ``using_threads(n)``: the tasks (compiled, GIL-free)
    run on ``n`` Python threads (:func:`factorkit._threads.run_tasks`) with BLAS on one
    thread each.

    Parameters
    ----------
    indptr, indices : CSR structure of the rows being solved (``indices`` index rows of
        ``fixed``); conf : (nnz,) confidences (see the module docstring).
    fixed : (n_fixed, k) array, the fixed side's factors.
    gram : (k, k) C-ordered array, ``w0 * fixed^T fixed`` (exactly symmetric).
    w0 : float, the unobserved weight; lam : (n_rows,) array of per-row penalties.
    cg_steps : int.
    out : (n_rows, k) array, read as the warm start and overwritten.

    Returns
    -------
    float
        ``sum_r L_r(x_r)`` at the new factors (see the module docstring).
    """
    n_rows = len(indptr) - 1
    n_tasks = max(1, min(IALS_TASKS, n_rows // CG_MIN_BLOCK_ROWS))
    parts = run_tasks(
        _cg_task, n_tasks, numba.get_num_threads(),
        indptr, indices, conf, fixed, gram, w0, lam, cg_steps, out,
    )  # fmt: skip
    return math.fsum(parts)


@jit(fastmath=SAFE_FASTMATH)
def _cholesky_task(
    task, n_tasks, indptr, indices, conf, fixed, gram, w0, lam, precision, out
):  # pragma: no cover
    """Rows ``task, task + n_tasks, ...`` of :func:`implicit_als_cholesky_rows`.

    A row's positives are gathered into ``x`` and, scaled by their weights ``c_j - w0``,
    into ``xw``, so that its Gram ``xw^T x`` is BLAS matrix products
    (:func:`~factorkit.kernels.linalg.gram_gemm`). The system is assembled and factorised
    in ``precision``'s dtype (an empty array: float64, or float32 at large ``k``); the
    right-hand side and the substitutions stay float64.
    """
    n_rows = len(indptr) - 1
    k = fixed.shape[1]
    cap = 0
    for r in range(task, n_rows, n_tasks):
        cap = max(cap, indptr[r + 1] - indptr[r])
    x = np.empty((cap, k), dtype=fixed.dtype)
    xw = np.empty((cap, k), dtype=fixed.dtype)
    g = np.empty((k, k), dtype=fixed.dtype)
    a = np.empty((k, k), dtype=precision.dtype)
    low = np.empty((k, k), dtype=precision.dtype)
    rhs = np.empty(k)
    sol = np.empty(k)
    obj = 0.0
    for r in range(task, n_rows, n_tasks):
        for i in range(k):
            rhs[i] = 0.0
        csum = 0.0
        n = 0
        for j in range(indptr[r], indptr[r + 1]):
            c = conf[j]
            if c <= 0:
                continue
            i0 = indices[j]
            csum += c
            wn = c - w0
            for q in range(k):
                x[n, q] = fixed[i0, q]
                xw[n, q] = wn * fixed[i0, q]
                rhs[q] += np.float64(c) * fixed[i0, q]
            n += 1
        gram_gemm(xw, x, n, a, g)
        for i in range(k):
            for q in range(i + 1):
                a[i, q] += np.float64(gram[i, q])
            a[i, i] += lam[r]
        if not cholesky_solve(a, k, rhs, low, sol):
            out[r, 0] = np.nan
            obj = np.nan
            continue
        bx = 0.0
        for q in range(k):
            out[r, q] = sol[q]
            bx += rhs[q] * sol[q]
        obj += csum - bx
    return obj


#: from this many factors on, float32 factors' systems are assembled and factorised in
#: float32 (``k^3 / 3`` flops a row at twice the SIMD width: 1.6x faster at k = 256, the
#: same at k = 64, where float64 is kept; implicit factorises in float32 at every k).
#: Results then differ from float64's in the last float32 bits, not in loss or recall
#: beyond noise (docs/benchmarks.md, "The exact Cholesky solver after the GEMM Gram").
CHOLESKY_FLOAT32_MIN_FACTORS = 128


def implicit_als_cholesky_rows(
    indptr, indices, conf, fixed, gram, w0, lam, out, float32_min_factors=None
):
    """Solve every row's system exactly (Cholesky); arguments as :func:`implicit_als_cg_rows`.

    ``out`` is overwritten (not read). A row whose system is not positive definite (only
    possible with ``lam_r = 0``) gets NaN, so the caller can report it. With float32
    ``fixed`` and at least ``float32_min_factors`` factors (default
    ``CHOLESKY_FLOAT32_MIN_FACTORS``) each system is assembled and factorised in float32;
    otherwise in float64. Each precision is its own compiled signature, compiled on first
    use only.
    """
    n_rows = len(indptr) - 1
    n_tasks = min(IALS_TASKS, max(n_rows, 1))
    if float32_min_factors is None:
        float32_min_factors = CHOLESKY_FLOAT32_MIN_FACTORS
    single = fixed.dtype == np.float32 and fixed.shape[1] >= float32_min_factors
    precision = np.empty(0, dtype=np.float32 if single else np.float64)
    parts = run_tasks(
        _cholesky_task, n_tasks, numba.get_num_threads(),
        indptr, indices, conf, fixed, gram, w0, lam, precision, out,
    )  # fmt: skip
    return math.fsum(parts)
