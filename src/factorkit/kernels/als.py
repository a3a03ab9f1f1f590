"""Alternating least squares: solve every row's ridge problem with biases, in parallel.

One half-step of biased ALS fixes one side's factors ``Y`` and biases ``c`` and, for every
row ``r`` of the other side (a user, or an item), solves

    min_s  sum_j (t_j - x_j . s)^2 + lam_b * s_0^2 + lam * |s_1:|^2

over ``s = [b_r, x_r]``, where ``j`` runs over the row's ratings, ``x_j = [1, Y_j]`` and
``t_j = rating - mu - c_j``. The normal equations ``(X^T X + diag(lam_b, lam, ..)) s =
X^T t`` are ``(k+1) x (k+1)``; with weighted regularisation (ALS-WR) ``lam`` and ``lam_b``
are multiplied by the row's rating count ``n``.

With per-rating weights ``w_j`` (``fit``'s ``sample_weight``) the squared errors are
``sum_j w_j (t_j - x_j . s)^2`` and weighted regularisation uses ``n = sum_j w_j``, so a
weight-0 rating is exactly a missing one and weight 2 exactly a duplicated one: the
primal Gram is ``X^T W X`` (``w_j x_j`` against ``x_j``), the dual one scales rows and
targets by ``sqrt(w_j)``.

Two exact ways to solve it, picked per row by cost:

- primal (``n >= k + 1``): build the Gram ``X^T X`` (``2 n (k+1)^2`` flops as a GEMM on
  the full square) and solve by Cholesky (``(k+1)^3 / 3`` flops);
- dual (``n < k + 1``, the long tail): by the push-through identity
  ``s = D^-1 X^T (I + X D^-1 X^T)^-1 t`` with ``D = diag(lam_b, lam, ..)``, an ``n x n``
  Cholesky, costing ``2 n^2 k + n^3 / 3`` flops (``Y Y^T`` as a GEMM on the full square).
  Needs ``lam_b > 0`` and ``lam > 0``.

Both Grams are BLAS matrix products of the row's fixed-side factor rows gathered into a
contiguous buffer (:func:`factorkit.kernels.linalg.gram_gemm`: in the factor dtype, in
blocks added into float64, which bounds float32 rounding to one block's sum); call with
BLAS on one thread (``using_threads``), as every row is one task's. The Cholesky
(:func:`factorkit.kernels.linalg.cholesky_solve`) and the systems are float64; inputs
and outputs are float32 (or float64). Figures: docs/benchmarks.md, "Explicit ALS".

Rows are independent, so the result does not depend on the thread
count; per-task partial objectives are summed in a fixed order, so the returned objective
is bit-for-bit repeatable too.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from factorkit.kernels._jit import SAFE_FASTMATH, jit
from factorkit.kernels.linalg import cholesky_solve, gram_gemm

__all__ = ["ALS_TASKS", "als_solve_rows"]

#: rows are dealt round-robin to this many tasks (balances skewed row lengths under numba's
#: static scheduling; fixed so that results never depend on the thread count)
ALS_TASKS = 256


@jit(fastmath=SAFE_FASTMATH)
def _solve_task(
    task,
    n_tasks,
    n_rows,
    indptr,
    indices,
    values,
    weights,
    fixed_factors,
    fixed_bias,
    global_mean,
    regularization,
    bias_regularization,
    weighted,
    out_factors,
    out_bias,
):  # pragma: no cover
    """Rows ``task, task + n_tasks, ...`` of :func:`als_solve_rows`; returns their objective.

    A row's fixed-side factor rows are gathered into a contiguous buffer and its Gram is
    BLAS matrix products (:func:`~factorkit.kernels.linalg.gram_gemm`): ``X^T X`` for a
    primal row (``x`` holds ``[1, Y_j]``), ``Y Y^T`` for a dual one (``y`` holds
    ``Y_j``). A separate function so that numba's parfor pass cannot hoist the per-task
    buffers out of the parallel loop (it would share them between threads). Long because
    the primal and dual paths share the task's buffers and the per-row loop; split
    further, each helper would take a dozen arrays and allocate its own scratch.
    """
    k = fixed_factors.shape[1]
    d = k + 1
    dtype = fixed_factors.dtype
    dual_ok = regularization > 0.0 and bias_regularization > 0.0
    has_w = len(weights) > 0
    # buffers sized for this task's longest row
    cap = 0
    for r in range(task, n_rows, n_tasks):
        cap = max(cap, indptr[r + 1] - indptr[r])
    x = np.empty((cap, d), dtype=dtype)
    xw = np.empty((cap if has_w else 0, d), dtype=dtype)  # weighted rows w_j x_j
    y = np.empty((min(cap, d), k), dtype=dtype)
    h_flat = np.empty(d * d, dtype=dtype)  # a dual row's (n, n) Gram, n < d
    t = np.empty(cap)
    sw = np.empty(cap if has_w else 0)  # sqrt(w_j) of a dual row
    a = np.empty((d, d))
    low = np.empty((d, d))
    rhs = np.empty(d)
    s = np.empty(d)
    z = np.empty(d)
    g = np.empty((d, d), dtype=dtype)
    obj = 0.0
    for r in range(task, n_rows, n_tasks):
        lo = indptr[r]
        n = indptr[r + 1] - lo
        wsum = 0.0
        if has_w:
            for j in range(n):
                wsum += weights[lo + j]
        if n == 0 or (has_w and wsum == 0.0):
            # no ratings, or only weight-0 ones: as if the row had none
            out_bias[r] = 0.0
            for p in range(k):
                out_factors[r, p] = 0.0
            continue
        # unweighted rows keep the integer count, so results are those of before weights
        if has_w:
            lam = regularization * wsum if weighted else regularization
            lam_b = bias_regularization * wsum if weighted else bias_regularization
        else:
            lam = regularization * n if weighted else regularization
            lam_b = bias_regularization * n if weighted else bias_regularization
        for j in range(n):
            t[j] = values[lo + j] - global_mean - fixed_bias[indices[lo + j]]
        if dual_ok and n < d:
            # dual: (I + Y Y^T / lam + 1 / lam_b) w = t, s = D^-1 X^T w, objective t . w;
            # weighted, the same with rows x_j and targets t_j scaled by sqrt(w_j)
            for j in range(n):
                col = indices[lo + j]
                for p in range(k):
                    y[j, p] = fixed_factors[col, p]
            h = h_flat[: n * n].reshape(n, n)
            yn = y[:n]
            np.dot(yn, yn.T, h)
            inv_lam = 1.0 / lam
            inv_lam_b = 1.0 / lam_b
            if has_w:
                for j in range(n):
                    sw[j] = np.sqrt(weights[lo + j])
                    t[j] *= sw[j]
                for i in range(n):
                    for j in range(i + 1):
                        a[i, j] = (np.float64(h[i, j]) * inv_lam + inv_lam_b) * (sw[i] * sw[j])
                    a[i, i] += 1.0
            else:
                for i in range(n):
                    for j in range(i + 1):
                        a[i, j] = np.float64(h[i, j]) * inv_lam + inv_lam_b
                    a[i, i] += 1.0
            ok = cholesky_solve(a, n, t, low, s)
            if not ok:
                out_bias[r] = np.nan
                out_factors[r, 0] = np.nan
                obj = np.nan
                continue
            for p in range(d):
                z[p] = 0.0
            tw = 0.0
            for j in range(n):
                wj = s[j]
                tw += t[j] * wj
                if has_w:
                    wj *= sw[j]
                z[0] += wj
                for p in range(k):
                    z[p + 1] += wj * y[j, p]
            out_bias[r] = z[0] * inv_lam_b
            for p in range(k):
                out_factors[r, p] = z[p + 1] * inv_lam
            obj += tw
        else:
            for j in range(n):
                col = indices[lo + j]
                x[j, 0] = 1.0
                for p in range(k):
                    x[j, p + 1] = fixed_factors[col, p]
            if has_w:
                # X^T W X and X^T W t: the Gram of w_j x_j against x_j
                for j in range(n):
                    wj = weights[lo + j]
                    for p in range(d):
                        xw[j, p] = wj * x[j, p]
                gram_gemm(xw, x, n, a, g)
            else:
                gram_gemm(x, x, n, a, g)
            tt = 0.0
            for p in range(d):
                rhs[p] = 0.0
            for j in range(n):
                tj = t[j]
                if has_w:
                    wt = weights[lo + j] * tj
                    tt += wt * tj
                    for p in range(d):
                        rhs[p] += wt * x[j, p]
                else:
                    tt += tj * tj
                    for p in range(d):
                        rhs[p] += tj * x[j, p]
            a[0, 0] += lam_b
            for p in range(1, d):
                a[p, p] += lam
            ok = cholesky_solve(a, d, rhs, low, s)
            if not ok:
                out_bias[r] = np.nan
                out_factors[r, 0] = np.nan
                obj = np.nan
                continue
            sr = 0.0
            for p in range(d):
                sr += s[p] * rhs[p]
            out_bias[r] = s[0]
            for p in range(k):
                out_factors[r, p] = s[p + 1]
            obj += tt - sr
    return obj


@jit(parallel=True, fastmath=SAFE_FASTMATH)
def als_solve_rows(
    indptr,
    indices,
    values,
    weights,
    fixed_factors,
    fixed_bias,
    global_mean,
    regularization,
    bias_regularization,
    weighted,
    out_factors,
    out_bias,
):  # pragma: no cover
    """Solve every row's biased ridge problem against the fixed side; returns the objective.

    Parameters
    ----------
    indptr, indices, values : CSR structure of the rows being solved (``indices`` index
        rows of ``fixed_factors``).
    weights : float64 array, (nnz,) or (0,)
        Each rating's weight (aligned with ``values``, finite and >= 0), or empty for
        all 1 (then the arithmetic is exactly the unweighted one). Rows whose weights are
        all 0 are solved as rows without ratings.
    fixed_factors : (n_fixed, k) array; fixed_bias : (n_fixed,) array.
    global_mean : float; regularization, bias_regularization : float (``lam``, ``lam_b``).
    weighted : bool
        Multiply both by each row's rating count (ALS-WR; the sum of its weights when
        ``weights`` is given).
    out_factors : (n_rows, k) array, out_bias : (n_rows,) array
        Overwritten with the solutions. Rows without ratings get zeros; rows whose system
        is not positive definite get NaN (so the caller can report divergence).

    Returns
    -------
    float
        ``sum_r [ sum_j w_j (t_j - x_j . s_r)^2 + lam_b b_r^2 + lam |x_r|^2 ]``: the squared
        error of the solved side's ratings plus that side's penalty (the other side's
        penalty is the caller's to add).
    """
    n_rows = len(indptr) - 1
    # int64 arguments, not the unsigned prange index nor the literal constant: each
    # distinct argument type is one more compilation of the task function
    n_tasks = np.int64(ALS_TASKS)
    partial = np.zeros(n_tasks)
    for task in prange(n_tasks):
        partial[task] = _solve_task(
            np.int64(task),
            n_tasks,
            n_rows,
            indptr,
            indices,
            values,
            weights,
            fixed_factors,
            fixed_bias,
            global_mean,
            regularization,
            bias_regularization,
            weighted,
            out_factors,
            out_bias,
        )
    total = 0.0
    for task in range(n_tasks):
        total += partial[task]
    return total
