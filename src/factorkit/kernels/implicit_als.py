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
  matrix is never formed. Cost per row: ``(cg_steps + 1) (k^2 + 2 n_r k)`` FMAs.
- :func:`implicit_als_cholesky_rows`: forms ``A`` and ``b`` and solves exactly by
  Cholesky (float64 factorisation). Cost per row: ``n_r k^2 + k^3 / 3``.

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
differed between threads (caught by the thread-count test).
"""

from __future__ import annotations

import numpy as np
from numba import prange

from factorkit.kernels._jit import SAFE_FASTMATH, jit

__all__ = [
    "IALS_TASKS",
    "implicit_als_cg_rows",
    "implicit_als_cholesky_rows",
    "implicit_als_confidence",
]

#: rows are dealt round-robin to this many tasks (balances skewed row lengths under
#: static scheduling; fixed so results never depend on the thread count)
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


@jit(fastmath=SAFE_FASTMATH)
def _symv(g, v, lam, out):  # pragma: no cover
    """``out = g v + lam v`` for symmetric ``g``, as a sum of ``g``'s rows scaled by ``v``.

    Four rows per pass and no horizontal reductions: every inner loop is a vertical FMA
    over contiguous memory (the row-times-vector form spends most of its time reducing
    each dot product's vector register).
    """
    k = len(v)
    for a in range(k):
        out[a] = lam * v[a]
    q = 0
    while q + 4 <= k:
        v0 = v[q]
        v1 = v[q + 1]
        v2 = v[q + 2]
        v3 = v[q + 3]
        for a in range(k):
            out[a] += v0 * g[q, a] + v1 * g[q + 1, a] + v2 * g[q + 2, a] + v3 * g[q + 3, a]
        q += 4
    while q < k:
        v0 = v[q]
        for a in range(k):
            out[a] += v0 * g[q, a]
        q += 1


@jit(fastmath=SAFE_FASTMATH)
def _cg_task(
    task, n_tasks, indptr, indices, conf, fixed, gram, w0, lam, cg_steps, out, out_gram
):  # pragma: no cover
    """Rows ``task, task + n_tasks, ...`` of :func:`implicit_als_cg_rows`; their objective.

    A separate function so numba's parfor pass cannot hoist the per-task buffers out of
    the parallel loop (it would share them between threads).
    """
    n_rows = len(indptr) - 1
    k = fixed.shape[1]
    dtype = fixed.dtype
    res = _aligned_empty(k, dtype)
    p = _aligned_empty(k, dtype)
    ap = _aligned_empty(k, dtype)
    # accumulators in the factor dtype, so float32 loops vectorise at full width
    zero = np.zeros(1, dtype=dtype)[0]
    obj = 0.0
    for r in range(task, n_rows, n_tasks):
        lo = indptr[r]
        hi = indptr[r + 1]
        lam_r = lam[r]
        x = out[r]
        # res = b - A x, accumulating b . x and sum c (the loss constant) on the way;
        # gram x comes precomputed for all rows at once (one GEMM, out_gram = out gram)
        for a in range(k):
            res[a] = -(out_gram[r, a] + lam_r * x[a])
        bx = 0.0
        csum = 0.0
        for j in range(lo, hi):
            c = conf[j]
            if c <= 0:
                continue
            i = indices[j]
            s = zero
            for q in range(k):
                s += fixed[i, q] * x[q]
            coef = c - (c - w0) * s
            for q in range(k):
                res[q] += coef * fixed[i, q]
            bx += c * s
            csum += c
        rs = zero
        for q in range(k):
            p[q] = res[q]
            rs += res[q] * res[q]
        for _ in range(cg_steps):
            if rs < 1e-20:
                break
            # ap = A p, bp = b . p
            _symv(gram, p, lam_r, ap)
            bp = 0.0
            for j in range(lo, hi):
                c = conf[j]
                if c <= 0:
                    continue
                i = indices[j]
                s = zero
                for q in range(k):
                    s += fixed[i, q] * p[q]
                coef = (c - w0) * s
                for q in range(k):
                    ap[q] += coef * fixed[i, q]
                bp += c * s
            pap = zero
            for q in range(k):
                pap += p[q] * ap[q]
            if not pap > 0.0:
                break
            step = rs / pap
            rs_new = zero
            for q in range(k):
                x[q] += step * p[q]
                res[q] -= step * ap[q]
                rs_new += res[q] * res[q]
            bx += step * bp
            beta = rs_new / rs
            for q in range(k):
                p[q] = res[q] + beta * p[q]
            rs = rs_new
        xr = zero
        for q in range(k):
            xr += x[q] * res[q]
        obj += csum - bx - xr
    return obj


@jit(parallel=True, fastmath=SAFE_FASTMATH)
def implicit_als_cg_rows(
    indptr, indices, conf, fixed, gram, w0, lam, cg_steps, out, out_gram
):  # pragma: no cover
    """Improve every row of ``out`` by ``cg_steps`` conjugate-gradient steps, in place.

    Parameters
    ----------
    indptr, indices : CSR structure of the rows being solved (``indices`` index rows of
        ``fixed``); conf : (nnz,) confidences (see the module docstring).
    fixed : (n_fixed, k) array, the fixed side's factors.
    gram : (k, k) array, ``w0 * fixed^T fixed`` (exactly symmetric).
    w0 : float, the unobserved weight; lam : (n_rows,) array of per-row penalties.
    cg_steps : int.
    out : (n_rows, k) array, read as the warm start and overwritten.
    out_gram : (n_rows, k) array, ``out @ gram`` before the call (a GEMM the caller does
        with BLAS, cheaper than each row's own product).

    Returns
    -------
    float
        ``sum_r L_r(x_r)`` at the new factors (see the module docstring).
    """
    n_rows = len(indptr) - 1
    n_tasks = min(IALS_TASKS, max(n_rows, 1))
    partial = np.zeros(n_tasks)
    for task in prange(n_tasks):
        partial[task] = _cg_task(
            task, n_tasks, indptr, indices, conf, fixed, gram, w0, lam, cg_steps, out, out_gram
        )
    total = 0.0
    for task in range(n_tasks):
        total += partial[task]
    return total


@jit(fastmath=SAFE_FASTMATH)
def _cholesky_solve(a, k, rhs, low, sol):  # pragma: no cover
    """Solve ``a sol = rhs`` for SPD ``a`` (float64; lower triangle of ``a`` read).

    Row-oriented Cholesky-Crout, so every inner loop is a contiguous dot product.
    Returns False when ``a`` is not numerically positive definite.
    """
    for j in range(k):
        for i in range(j, k):
            acc = a[i, j]
            for q in range(j):
                acc -= low[i, q] * low[j, q]
            if i == j:
                if not acc > 0.0:
                    return False
                low[j, j] = np.sqrt(acc)
            else:
                low[i, j] = acc / low[j, j]
    for i in range(k):
        acc = rhs[i]
        for q in range(i):
            acc -= low[i, q] * sol[q]
        sol[i] = acc / low[i, i]
    for i in range(k - 1, -1, -1):
        acc = sol[i]
        for q in range(i + 1, k):
            acc -= low[q, i] * sol[q]
        sol[i] = acc / low[i, i]
    return True


@jit(fastmath=SAFE_FASTMATH)
def _weighted_gram(fixed, indices, conf, w0, lo, hi, g):  # pragma: no cover
    """``g = sum_j (c_j - w0) y_j y_j^T`` over positives ``j`` in ``[lo, hi)`` (full square).

    Four rows per pass: each load/store of ``g[a, :]`` feeds four FMAs per element.
    """
    k = fixed.shape[1]
    g[:, :] = 0.0
    buf_i = np.empty(4, dtype=np.int64)
    buf_w = np.empty(4, dtype=g.dtype)
    n = 0
    for j in range(lo, hi + 1):
        if j < hi:
            c = conf[j]
            if c <= 0:
                continue
            buf_i[n] = indices[j]
            buf_w[n] = c - w0
            n += 1
            if n < 4:
                continue
        if n == 4:
            i0, i1, i2, i3 = buf_i[0], buf_i[1], buf_i[2], buf_i[3]
            w_0, w_1, w_2, w_3 = buf_w[0], buf_w[1], buf_w[2], buf_w[3]
            for a in range(k):
                v0 = w_0 * fixed[i0, a]
                v1 = w_1 * fixed[i1, a]
                v2 = w_2 * fixed[i2, a]
                v3 = w_3 * fixed[i3, a]
                for q in range(a + 1):
                    g[a, q] += (
                        v0 * fixed[i0, q]
                        + v1 * fixed[i1, q]
                        + v2 * fixed[i2, q]
                        + v3 * fixed[i3, q]
                    )
        else:
            for t in range(n):
                i0 = buf_i[t]
                w_0 = buf_w[t]
                for a in range(k):
                    v0 = w_0 * fixed[i0, a]
                    for q in range(a + 1):
                        g[a, q] += v0 * fixed[i0, q]
        n = 0


@jit(fastmath=SAFE_FASTMATH)
def _cholesky_task(
    task, n_tasks, indptr, indices, conf, fixed, gram, w0, lam, out
):  # pragma: no cover
    """Rows ``task, task + n_tasks, ...`` of :func:`implicit_als_cholesky_rows`."""
    n_rows = len(indptr) - 1
    k = fixed.shape[1]
    g = np.empty((k, k), dtype=fixed.dtype)
    a = np.empty((k, k))
    low = np.empty((k, k))
    rhs = np.empty(k)
    sol = np.empty(k)
    obj = 0.0
    for r in range(task, n_rows, n_tasks):
        lo = indptr[r]
        hi = indptr[r + 1]
        _weighted_gram(fixed, indices, conf, w0, lo, hi, g)
        for i in range(k):
            for q in range(i + 1):
                a[i, q] = np.float64(gram[i, q]) + np.float64(g[i, q])
            a[i, i] += lam[r]
            rhs[i] = 0.0
        csum = 0.0
        for j in range(lo, hi):
            c = conf[j]
            if c <= 0:
                continue
            i0 = indices[j]
            csum += c
            for q in range(k):
                rhs[q] += np.float64(c) * fixed[i0, q]
        if not _cholesky_solve(a, k, rhs, low, sol):
            out[r, 0] = np.nan
            obj = np.nan
            continue
        bx = 0.0
        for q in range(k):
            out[r, q] = sol[q]
            bx += rhs[q] * sol[q]
        obj += csum - bx
    return obj


@jit(parallel=True, fastmath=SAFE_FASTMATH)
def implicit_als_cholesky_rows(
    indptr, indices, conf, fixed, gram, w0, lam, out
):  # pragma: no cover
    """Solve every row's system exactly (Cholesky); arguments as :func:`implicit_als_cg_rows`.

    ``out`` is overwritten (not read). A row whose system is not positive definite (only
    possible with ``lam_r = 0``) gets NaN, so the caller can report it.
    """
    n_rows = len(indptr) - 1
    n_tasks = min(IALS_TASKS, max(n_rows, 1))
    partial = np.zeros(n_tasks)
    for task in prange(n_tasks):
        partial[task] = _cholesky_task(
            task, n_tasks, indptr, indices, conf, fixed, gram, w0, lam, out
        )
    total = 0.0
    for task in range(n_tasks):
        total += partial[task]
    return total
