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

With ``nonnegative`` (Spark's ``nonnegative=True``) the factors ``s_1:`` are held ``>= 0``
(the bias ``s_0`` stays free): every row takes the primal path and its normal equations
are solved as a non-negative least squares problem by
:func:`factorkit.kernels.linalg.nnls_solve` (block principal pivoting, warm-started from
the row's current factors: a few Cholesky solves of sub-systems, exact up to rounding).
That solver lives in a task function of its own, so it compiles only when a model asks
for non-negative factors.

Both Grams are BLAS matrix products of the row's fixed-side factor rows gathered into a
contiguous buffer (:func:`factorkit.kernels.linalg.gram_gemm`: in the factor dtype, in
blocks added into float64, which bounds float32 rounding to one block's sum); call with
BLAS on one thread (``using_threads``), as every row is one task's. The Cholesky
(:func:`factorkit.kernels.linalg.cholesky_solve`) and the systems are float64; inputs
and outputs are float32 (or float64). Figures: docs/benchmarks.md, "Explicit ALS".

Rows are dealt round-robin to a fixed list of tasks run by
:func:`factorkit._threads.run_tasks` (compiled, GIL-free task functions on Python threads:
no parallel region to compile). Rows are independent, so the result does not depend on
the thread count; per-task partial objectives are summed in task order, so the returned
objective is bit-for-bit repeatable too.
"""

from __future__ import annotations

import numba
import numpy as np

from factorkit._threads import run_tasks
from factorkit.kernels._jit import SAFE_FASTMATH, jit, read_only
from factorkit.kernels.linalg import cholesky_solve, gram_gemm, nnls_solve

__all__ = ["ALS_MIN_TASK_ROWS", "ALS_TASKS", "als_solve_rows"]

#: rows are dealt round-robin to at most this many tasks (balances skewed row lengths; a
#: count that depends on the rows only, so results never depend on the thread count)
ALS_TASKS = 256
#: rows per task at least: each task is one Python call of a compiled function (some
#: microseconds) and allocates its buffers, which a few rows would not repay
ALS_MIN_TASK_ROWS = 64


@jit()
def _task_capacity(task, n_tasks, n_rows, indptr):  # pragma: no cover
    """The longest row among rows ``task, task + n_tasks, ...``: the task's buffer size."""
    cap = 0
    for r in range(task, n_rows, n_tasks):
        cap = max(cap, indptr[r + 1] - indptr[r])
    return cap


@jit(fastmath=SAFE_FASTMATH)
def _row_targets(
    r, indptr, indices, values, weights, fixed_bias, global_mean, regularization,
    bias_regularization, weighted, t,
):  # fmt: skip  # pragma: no cover
    """Row ``r``'s targets ``t_j = rating - mu - c_j`` into ``t``; returns
    ``(n, lam, lam_b)``, with ``n = 0`` for a row to solve as empty (no ratings, or only
    weight-0 ones)."""
    lo = indptr[r]
    n = indptr[r + 1] - lo
    has_w = len(weights) > 0
    wsum = 0.0
    if has_w:
        for j in range(n):
            wsum += weights[lo + j]
    if n == 0 or (has_w and wsum == 0.0):
        return 0, 0.0, 0.0
    # unweighted rows keep the integer count, so results are those of before weights
    count = wsum if has_w else np.float64(n)
    lam = regularization * count if weighted else regularization
    lam_b = bias_regularization * count if weighted else bias_regularization
    for j in range(n):
        t[j] = values[lo + j] - global_mean - fixed_bias[indices[lo + j]]
    return n, lam, lam_b


@jit(fastmath=SAFE_FASTMATH)
def _primal_system(
    lo, n, indices, weights, fixed_factors, t, lam, lam_b, x, xw, a, g, rhs
):  # pragma: no cover
    """The primal normal equations of a row with ratings ``lo .. lo + n - 1``.

    Gathers ``x_j = [1, Y_j]`` into ``x`` (and ``w_j x_j`` into ``xw`` when weighted),
    sets ``a = X^T W X + diag(lam_b, lam, ..)`` (float64, lower triangle valid, by
    :func:`~factorkit.kernels.linalg.gram_gemm`) and ``rhs = X^T W t``; returns
    ``t^T W t``.
    """
    k = fixed_factors.shape[1]
    d = k + 1
    has_w = len(weights) > 0
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
    return tt


@jit()
def _store_row(r, s, out_factors, out_bias):  # pragma: no cover
    """``[b_r, x_r] = s``."""
    out_bias[r] = s[0]
    for p in range(out_factors.shape[1]):
        out_factors[r, p] = s[p + 1]


@jit()
def _clear_row(r, value, out_factors, out_bias):  # pragma: no cover
    """Row ``r`` of a row without ratings (``value`` 0) or of a failed solve (NaN, first
    entries only: enough for the caller's divergence check)."""
    out_bias[r] = value
    if value == 0.0:
        for p in range(out_factors.shape[1]):
            out_factors[r, p] = 0.0
    else:
        out_factors[r, 0] = value


@jit(fastmath=SAFE_FASTMATH)
def _solve_task(
    task, n_tasks, indptr, indices, values, weights, fixed_factors, fixed_bias,
    global_mean, regularization, bias_regularization, weighted, out_factors, out_bias,
):  # fmt: skip  # pragma: no cover
    """Rows ``task, task + n_tasks, ...`` of :func:`als_solve_rows`, unconstrained;
    returns their objective.

    A row takes the primal path (the system :func:`_primal_system` builds, written out
    here, then Cholesky) or, when it has fewer ratings than unknowns, the dual: its
    gathered factor rows ``y`` (``Y_j``) give the ``n x n`` Gram ``Y Y^T`` as one BLAS
    product. One task of :func:`~factorkit._threads.run_tasks`, with its own buffers,
    sized for its longest row. Long because the primal and dual paths share the task's
    buffers and the per-row loop.
    """
    n_rows = len(indptr) - 1
    k = fixed_factors.shape[1]
    d = k + 1
    dtype = fixed_factors.dtype
    dual_ok = regularization > 0.0 and bias_regularization > 0.0
    has_w = len(weights) > 0
    # the helpers _task_capacity, _clear_row and _store_row written out in this task: each
    # call of a jitted function is one more function for numba to compile on first run
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
        # _row_targets and _primal_system written out on this, the default path: the
        # buffers stay local, so LLVM sees that they are distinct (with the calls a fit
        # took 0-10% more CPU time on a loaded machine; compilation took the same)
        lo = indptr[r]
        n = indptr[r + 1] - lo
        wsum = 0.0
        if has_w:
            for j in range(n):
                wsum += weights[lo + j]
        if n == 0 or (has_w and wsum == 0.0):
            out_bias[r] = 0.0
            for p in range(k):
                out_factors[r, p] = 0.0
            continue
        count = wsum if has_w else np.float64(n)
        lam = regularization * count if weighted else regularization
        lam_b = bias_regularization * count if weighted else bias_regularization
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
            if not cholesky_solve(a, n, t, low, s):
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
            if not cholesky_solve(a, d, rhs, low, s):
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
            # at the optimum s . (A s - rhs) = 0, so |t - X s|^2 + penalty
            # = tt - 2 s . rhs + s^T A s = tt - s . rhs
            obj += tt - sr
    return obj


@jit(fastmath=SAFE_FASTMATH)
def _nonnegative_task(
    task, n_tasks, indptr, indices, values, weights, fixed_factors, fixed_bias,
    global_mean, regularization, bias_regularization, weighted, out_factors, out_bias,
):  # fmt: skip  # pragma: no cover
    """Rows ``task, task + n_tasks, ...`` of :func:`als_solve_rows` with ``nonnegative``;
    returns their objective.

    Every row takes the primal path: the dual solves for one multiplier per rating, where
    the bounds on the factors are no simple bounds. A kernel of its own so that the NNLS
    solver compiles only when a model asks for it (seconds of first-run compilation).
    """
    n_rows = len(indptr) - 1
    k = fixed_factors.shape[1]
    d = k + 1
    dtype = fixed_factors.dtype
    has_w = len(weights) > 0
    cap = _task_capacity(task, n_tasks, n_rows, indptr)
    x = np.empty((cap, d), dtype=dtype)
    xw = np.empty((cap if has_w else 0, d), dtype=dtype)
    t = np.empty(cap)
    a = np.empty((d, d))
    low = np.empty((d, d))
    rhs = np.empty(d)
    s = np.empty(d)
    z = np.empty(d)
    g = np.empty((d, d), dtype=dtype)
    free = np.empty(2 * d, dtype=np.int64)  # the active-set scratch
    sub = np.empty((d, d))
    sub_rhs = np.empty(d)
    obj = 0.0
    for r in range(task, n_rows, n_tasks):
        n, lam, lam_b = _row_targets(
            r, indptr, indices, values, weights, fixed_bias, global_mean, regularization,
            bias_regularization, weighted, t,
        )  # fmt: skip
        if n == 0:
            _clear_row(r, 0.0, out_factors, out_bias)
            continue
        tt = _primal_system(
            indptr[r], n, indices, weights, fixed_factors, t, lam, lam_b, x, xw, a, g, rhs
        )
        # the row's current factors (feasible: zeros, the initial draw's absolute values,
        # or the last half-step's) pick the first free set; after an epoch or two few
        # zeros change, so the first sub-solve is small and usually the last. The bias
        # (index 0) is always free.
        s[0] = 0.0
        for p in range(k):
            s[p + 1] = out_factors[r, p]
        if nnls_solve(a, d, 1, rhs, s, 4 * d + 10, free, sub, sub_rhs, z, low) < 0:
            _clear_row(r, np.nan, out_factors, out_bias)
            obj = np.nan
            continue
        sr = 0.0
        for p in range(d):
            sr += s[p] * rhs[p]
        _store_row(r, s, out_factors, out_bias)
        # s . (A s - rhs) = 0 at the constrained optimum too (the gradient is zero on the
        # free variables, the others are zero): the objective is tt - s . rhs
        obj += tt - sr
    return obj


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
    nonnegative,
    out_factors,
    out_bias,
):
    """Solve every row's biased ridge problem against the fixed side; returns the objective.

    Rows are dealt round-robin to ``ALS_TASKS`` tasks (fewer for fewer than
    ``ALS_TASKS * ALS_MIN_TASK_ROWS`` rows; compiled, GIL-free) that run on
    ``numba.get_num_threads()`` Python threads (:func:`factorkit._threads.run_tasks`):
    call it under ``using_threads(n)``, which also holds BLAS to one thread per task.

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
    nonnegative : bool
        Hold every factor ``>= 0`` (biases stay free): every row takes the primal path
        and is solved by :func:`~factorkit.kernels.linalg.nnls_solve` on its normal
        matrix, warm-started from the row's current factors (so ``out_factors`` must hold
        feasible ones). Runs a kernel of its own, compiled on first use.
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
    task = _nonnegative_task if nonnegative else _solve_task
    # read-only views: the user side's arrays come frozen from Interactions, the item
    # side's are a fresh transposition, and numba compiles once per argument type: without
    # them the task compiled twice per fit (about 2 s of a first fit's 6, in CPU time)
    indptr, indices, values, weights, fixed_bias = read_only(
        indptr, indices, values, weights, fixed_bias
    )
    n_tasks = max(1, min(ALS_TASKS, (len(indptr) - 1) // ALS_MIN_TASK_ROWS))
    # one compiled signature: float arguments as Python floats, flags as Python bools
    parts = run_tasks(
        task, n_tasks, numba.get_num_threads(),
        indptr, indices, values, weights, fixed_factors, fixed_bias, float(global_mean),
        float(regularization), float(bias_regularization), bool(weighted),
        out_factors, out_bias,
    )  # fmt: skip
    total = 0.0
    for part in parts:  # in task order: the objective is bit-for-bit repeatable
        total += part
    return total
