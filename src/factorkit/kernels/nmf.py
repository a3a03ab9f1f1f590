"""NMF and sparse low-rank kernels: coordinate descent sweeps, multiplicative updates and
sparse products.

Every kernel works on one side of the factorization, ``X ~ A @ B.T``: the caller swaps
the roles (``X.T``, ``Ht``, ``W``) to update the other side. Rows of ``A`` are
independent given ``B``, so the rows are cut into a fixed number of contiguous blocks
(balanced by stored entries, a count that depends on the data only, never on the thread
count) and the blocks run as GIL-free compiled tasks on Python threads
(:func:`factorkit._threads.run_tasks`): no parallel region to compile, no barrier that
spins on a busy machine. Call the wrappers under ``using_threads(n)``: they read the
thread count from numba and BLAS stays on one thread meanwhile.

The sparse half-steps are fused: a task forms row ``i``'s product ``X[i] @ B`` (and, for
the KL divergence or masked data, the model ``A[i] . B[j]`` at the row's entries) and
updates ``A[i]`` at once, so each half-step is one pass over the stored entries and
writes no ``(rows, k)`` intermediate. float32 and float64 arrays both compile; the caller
keeps one dtype throughout.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from factorkit._threads import run_tasks
from factorkit.kernels._jit import SAFE_FASTMATH, claim_next, count_done, jit
from factorkit.kernels._simd import (
    item,
    lanes,
    vadd,
    vcd_step,
    vdot,
    vfma,
    vfmav,
    vget,
    vload_col,
    vload_row,
    vmu_step,
    vscale,
    vsplat,
    vstore_col,
    vstore_row,
    vsub,
    vsum,
    vzero,
)

__all__ = [
    "NMF_TASKS",
    "csr_loss_terms",
    "csr_matmul_dense",
    "csr_sampled_dots",
    "dense_convert_scan",
    "dense_fused_buffer",
    "dense_iteration_buffers",
    "dense_loss",
    "mu_block",
    "nmf_cd_rows",
    "nmf_dense_cd_rows",
    "nmf_dense_fused_rows",
    "nmf_dense_iteration",
    "nmf_dense_mu_rows",
    "nmf_dense_other_side",
    "nmf_masked_cd_rows",
    "nmf_sparse_cd_rows",
    "nmf_sparse_mu_rows",
    "row_blocks",
    "sparse_bounds",
]

#: most row blocks per call (fixed, so results never depend on the thread count): enough
#: for one thread to take over the blocks of another that lost its core
NMF_TASKS = 32
#: fewest stored entries (plus rows) per block: below it a task's launch costs more than
#: its work
MIN_BLOCK_WORK = 8192
#: floor of denominators and of model values in KL ratios (scikit-learn's EPSILON)
EPS = float(np.finfo(np.float32).eps)
#: multiplicative-update modes of :func:`nmf_sparse_mu_rows`
MU_FROBENIUS, MU_FROBENIUS_MASKED, MU_KL, MU_KL_MASKED = 0, 1, 2, 3


def n_blocks(n_rows: int, work: int) -> int:
    """How many row blocks a call with ``work`` entries (plus rows) over ``n_rows`` uses."""
    return max(1, min(NMF_TASKS, n_rows, work // MIN_BLOCK_WORK))


def row_blocks(indptr: np.ndarray, n_tasks: int) -> np.ndarray:
    """Bounds of ``n_tasks`` contiguous row blocks of a CSR pattern, balanced by stored
    entries plus rows: block ``t`` is rows ``bounds[t]:bounds[t + 1]``."""
    n_rows = len(indptr) - 1
    cost = np.asarray(indptr, dtype=np.int64) + np.arange(n_rows + 1)
    targets = (cost[-1] * np.arange(n_tasks + 1)) // n_tasks
    return np.searchsorted(cost, targets, side="left").astype(np.int64)


def _threads() -> int:
    return numba.get_num_threads()


# ------------------------------------------------------------------------ row helpers
@jit(fastmath=SAFE_FASTMATH, nrt=False)
def _row_chunk(indptr, indices, data, B, i, c):  # pragma: no cover - compiled
    """``X[i] @ B[:, c:c + lanes]`` as a :class:`~factorkit.kernels._simd.Vec`: one
    multiply-add of a row segment of ``B`` per stored entry, the sums in registers (two
    independent chains hide the add latency; lanes past ``B``'s last column are 0)."""
    a0 = vzero(B)
    a1 = vzero(B)
    p = item(indptr, i)
    end = item(indptr, i + 1)
    while p + 1 < end:
        a0 = vfma(a0, item(data, p), vload_row(B, item(indices, p), c))
        a1 = vfma(a1, item(data, p + 1), vload_row(B, item(indices, p + 1), c))
        p += 2
    if p < end:
        a0 = vfma(a0, item(data, p), vload_row(B, item(indices, p), c))
    return vadd(a0, a1)


@jit(fastmath=SAFE_FASTMATH, nrt=False)
def _row_product(indptr, indices, data, B, i, out, r):  # pragma: no cover - compiled
    """``out[r] = X[i] @ B``: one pass over the row's entries per ``lanes`` components
    while k <= 2 lanes (32 float32, 16 float64); for wider ``B``, one pass that adds each
    entry's row of ``B`` to ``out[r]`` in memory (k = 110, a randomized SVD's block: 31
    ms in 7 vector passes against 26 ms, float64 90 against 43 ms)."""
    k = B.shape[1]
    if k <= 2 * lanes(B):
        for c in range(0, k, lanes(B)):
            vstore_row(out, r, c, _row_chunk(indptr, indices, data, B, i, c))
        return
    for t in range(k):
        out[r, t] = 0.0
    p = item(indptr, i)
    end = item(indptr, i + 1)
    while p + 1 < end:  # two entries per step: two independent chains per component
        j0 = item(indices, p)
        j1 = item(indices, p + 1)
        v0 = item(data, p)
        v1 = item(data, p + 1)
        for t in range(k):
            out[r, t] += v0 * B[j0, t] + v1 * B[j1, t]
        p += 2
    if p < end:
        j0 = item(indices, p)
        v0 = item(data, p)
        for t in range(k):
            out[r, t] += v0 * B[j0, t]


@jit(fastmath=SAFE_FASTMATH, nrt=False)
def _row_dot(A, i, B, j):  # pragma: no cover - compiled
    """``A[i] . B[j]``, accumulated in float64."""
    acc = 0.0
    for t in range(A.shape[1]):
        acc += A[i, t] * B[j, t]
    return acc


@jit(fastmath=SAFE_FASTMATH, nrt=False)
def _gradient(A, i, G, b, g):  # pragma: no cover - compiled
    """``g = G A[i] - b``."""
    k = A.shape[1]
    for t in range(k):
        s = -b[t]
        for r in range(k):
            s += G[t, r] * A[i, r]
        g[t] = s


@jit(fastmath=SAFE_FASTMATH, nrt=False)
def _cd_row(A, i, G, b, g):  # pragma: no cover - compiled
    """One coordinate-descent pass over ``A[i]`` for ``min 0.5 a^T G a - b . a, a >= 0``
    (``G`` symmetric); returns the row's projected-gradient violation (sum of |pg| before
    each move).

    The gradient ``g = G a - b`` (``g``: scratch of length k) is formed once and, when
    ``a_t`` moves by ``d``, updated by ``d G[t]``: k multiply-adds per coordinate that
    vectorise, instead of a k-term dot product whose sum every later coordinate waits
    for; no branch on whether ``a_t`` moved (mispredicted half the time at the bound).
    The same steps as recomputing each gradient, up to rounding.
    """
    k = A.shape[1]
    zero = A.dtype.type(0.0)
    _gradient(A, i, G, b, g)
    v = 0.0
    for t in range(k):
        grad = g[t]
        a = A[i, t]
        v += abs(min(zero, grad) if a == zero else grad)
        hess = G[t, t]
        if hess != zero:
            new = max(a - grad / hess, zero)
            A[i, t] = new
            d = new - a
            for r in range(k):
                g[r] += d * G[t, r]
    return v


@jit()
def _scratch(k, dtype):  # pragma: no cover - compiled
    """Four separate length-k buffers (separate allocations: the compiler may assume they
    do not overlap, and keeps the gradients in registers)."""
    return np.empty(k, dtype), np.empty(k, dtype), np.empty(k, dtype), np.empty(k, dtype)


@jit(fastmath=SAFE_FASTMATH, nrt=False)
def _cd_pair(A, i, j, G, b0, b1, g0, g1):  # pragma: no cover - compiled
    """:func:`_cd_row` on rows ``i`` and ``j`` in lockstep: each coordinate's step waits
    for the previous one (a division and an update), and two independent rows fill that
    wait (about 2x faster than one row at a time)."""
    k = A.shape[1]
    zero = A.dtype.type(0.0)
    for t in range(k):
        s0 = -b0[t]
        s1 = -b1[t]
        for r in range(k):
            s0 += G[t, r] * A[i, r]
            s1 += G[t, r] * A[j, r]
        g0[t] = s0
        g1[t] = s1
    v = 0.0
    for t in range(k):
        hess = G[t, t]
        a0 = A[i, t]
        a1 = A[j, t]
        gr0 = g0[t]
        gr1 = g1[t]
        v += abs(min(zero, gr0) if a0 == zero else gr0)
        v += abs(min(zero, gr1) if a1 == zero else gr1)
        if hess != zero:
            n0 = max(a0 - gr0 / hess, zero)
            n1 = max(a1 - gr1 / hess, zero)
            A[i, t] = n0
            A[j, t] = n1
            d0 = n0 - a0
            d1 = n1 - a1
            for r in range(k):
                g0[r] += d0 * G[t, r]
                g1[r] += d1 * G[t, r]
    return v


@jit(fastmath=SAFE_FASTMATH, nrt=False)
def _vec_gradient(A, i, G, b):  # pragma: no cover - compiled
    """``G A[i] - b`` as a Vec (k <= lanes; ``G`` symmetric, so its rows are columns)."""
    g = vscale(b, -1.0, 0.0)
    for r in range(A.shape[1]):
        g = vfma(g, A[i, r], vload_row(G, r, 0))
    return g


@jit(fastmath=SAFE_FASTMATH, nrt=False)
def _vec_cd_row(A, i, G, b):  # pragma: no cover - compiled
    """:func:`_cd_row` with ``b`` and the gradient held in one vector (k <= lanes)."""
    zero = A.dtype.type(0.0)
    g = _vec_gradient(A, i, G, b)
    v = 0.0
    for t in range(A.shape[1]):
        grad = vget(g, t)
        a = A[i, t]
        v += abs(min(zero, grad) if a == zero else grad)
        hess = G[t, t]
        if hess != zero:
            new = max(a - grad / hess, zero)
            A[i, t] = new
            g = vfma(g, new - a, vload_row(G, t, 0))
    return v


@jit(fastmath=SAFE_FASTMATH, nrt=False)
def _vec_cd_pair(A, i, j, G, b0, b1):  # pragma: no cover - compiled
    """:func:`_cd_pair` (rows ``i != j`` in lockstep) with ``b`` and the gradients held
    in vectors (k <= lanes): the same steps, in registers."""
    zero = A.dtype.type(0.0)
    g0 = _vec_gradient(A, i, G, b0)
    g1 = _vec_gradient(A, j, G, b1)
    v = 0.0
    for t in range(A.shape[1]):
        hess = G[t, t]
        a0 = A[i, t]
        a1 = A[j, t]
        gr0 = vget(g0, t)
        gr1 = vget(g1, t)
        v += abs(min(zero, gr0) if a0 == zero else gr0)
        v += abs(min(zero, gr1) if a1 == zero else gr1)
        if hess != zero:
            n0 = max(a0 - gr0 / hess, zero)
            n1 = max(a1 - gr1 / hess, zero)
            A[i, t] = n0
            A[j, t] = n1
            row = vload_row(G, t, 0)
            g0 = vfma(g0, n0 - a0, row)
            g1 = vfma(g1, n1 - a1, row)
    return v


@jit(fastmath=SAFE_FASTMATH, nrt=False)
def _lanes_cd(aT, gT, G):  # pragma: no cover - compiled
    """One CD pass over up to ``lanes`` rows at once, one row per vector lane: ``aT[t]``
    holds component ``t`` of each row and ``gT[t]`` starts as ``-b_t`` and ends as the
    gradient. The same steps as :func:`_cd_row` on each row (same order of components,
    same gradient updates, exact division), but the k-step dependency chain is paid once
    per ``lanes`` rows instead of once per row. Returns the lanes' violations."""
    k = aT.shape[0]
    for t in range(k):  # g = G a - b
        g = vload_row(gT, t, 0)
        for r in range(k):
            g = vfma(g, G[t, r], vload_row(aT, r, 0))
        vstore_row(gT, t, 0, g)
    viol = vzero(aT)
    for t in range(k):
        hess = G[t, t]
        a = vload_row(aT, t, 0)
        new, pg = vcd_step(a, vload_row(gT, t, 0), hess)
        viol = vadd(viol, pg)
        if hess != 0:
            vstore_row(aT, t, 0, new)
            d = vsub(new, a)
            for r in range(k):
                vstore_row(gT, r, 0, vfma(vload_row(gT, r, 0), G[t, r], d))
    return viol


@jit(fastmath=SAFE_FASTMATH, nrt=False)
def _mu_row(A, i, numer, denom, l1, l2, floor):  # pragma: no cover - compiled
    """``A[i] *= numer / (denom + l1 + l2 A[i])`` (zero denominators -> EPS); ``floor``:
    entries below float64's eps become 0 (scikit-learn's rule for H under KL)."""
    for t in range(A.shape[1]):
        d = denom[t] + l1 + l2 * A[i, t]
        if d == 0.0:
            d = EPS
        a = A[i, t] * (numer[t] / d)
        if floor and a < 2.220446049250313e-16:
            a = 0.0
        A[i, t] = a


# ------------------------------------------------------------------- sparse products
@jit(fastmath=SAFE_FASTMATH)
def _matmul_task(task, n_tasks, bounds, indptr, indices, data, B, out):  # pragma: no cover
    if B.shape[1] <= 2 * lanes(B):  # (the same as _row_product, without a call per row)
        for i in range(bounds[task], bounds[task + 1]):
            for c in range(0, B.shape[1], lanes(B)):
                vstore_row(out, i, c, _row_chunk(indptr, indices, data, B, i, c))
        return 0.0
    for i in range(bounds[task], bounds[task + 1]):
        _row_product(indptr, indices, data, B, i, out, i)
    return 0.0


def csr_matmul_dense(indptr, indices, data, B, out) -> None:
    """``out = X @ B`` for the CSR matrix ``X`` (indptr, indices, data) and dense ``B``.

    ``out`` is (n_rows, k) and is overwritten; each row is written by one task.
    """
    n_rows = len(indptr) - 1
    n_tasks = n_blocks(n_rows, (int(indptr[-1]) + n_rows) * max(1, B.shape[1]) // 8)
    bounds = row_blocks(indptr, n_tasks)
    run_tasks(_matmul_task, n_tasks, _threads(), bounds, indptr, indices, data, B, out)


@jit(fastmath=SAFE_FASTMATH)
def _dots_task(task, n_tasks, bounds, indptr, indices, W, Ht, out):  # pragma: no cover
    vectors = W.shape[1] <= lanes(W)
    for i in range(bounds[task], bounds[task + 1]):
        if vectors:  # W[i] in registers, one masked load of Ht[j] per entry
            w = vload_row(W, i, 0)
            for p in range(indptr[i], indptr[i + 1]):
                out[p] = vdot(w, vload_row(Ht, indices[p], 0))
        else:
            for p in range(indptr[i], indptr[i + 1]):
                out[p] = _row_dot(W, i, Ht, indices[p])
    return 0.0


def csr_sampled_dots(indptr, indices, W, Ht, out) -> None:
    """``out[p] = W[i] . Ht[j]`` for each stored entry ``p`` = (i, j) of a CSR pattern.

    The model's value at the observed entries only (a sampled dense-dense product).
    """
    n_rows = len(indptr) - 1
    n_tasks = n_blocks(n_rows, (int(indptr[-1]) + n_rows) * max(1, W.shape[1]) // 8)
    bounds = row_blocks(indptr, n_tasks)
    run_tasks(_dots_task, n_tasks, _threads(), bounds, indptr, indices, W, Ht, out)


@jit(fastmath=SAFE_FASTMATH)
def _loss_terms_task(task, n_tasks, bounds, indptr, indices, data, W, Ht, kl):  # pragma: no cover
    s0 = 0.0
    s1 = 0.0
    vectors = W.shape[1] <= lanes(W)
    for i in range(bounds[task], bounds[task + 1]):
        w = vload_row(W, i, 0)
        for p in range(item(indptr, i), item(indptr, i + 1)):
            j = item(indices, p)
            pred = np.float64(vdot(w, vload_row(Ht, j, 0)) if vectors else _row_dot(W, i, Ht, j))
            x = np.float64(item(data, p))
            if kl:
                if x > 0:
                    s0 += x * np.log(x / max(pred, EPS))
                s0 -= x
                s1 += pred
            else:
                s0 += x * x
                s1 += x * pred
    return s0, s1


def csr_loss_terms(indptr, indices, data, W, Ht, kl: bool) -> tuple[float, float]:
    """Sums over the stored entries ``(i, j)`` of a CSR matrix with ``p = W[i] . Ht[j]``,
    in float64 without temporaries: ``(sum x^2, sum x p)``, or for ``kl``
    ``(sum x log(x / max(p, EPS)) - x, sum p)``."""
    n_rows = len(indptr) - 1
    n_tasks = n_blocks(n_rows, (int(indptr[-1]) + n_rows) * max(1, W.shape[1]) // 8)
    bounds = row_blocks(indptr, n_tasks)
    parts = run_tasks(
        _loss_terms_task, n_tasks, _threads(), bounds, indptr, indices, data, W, Ht, kl
    )
    return math.fsum(p[0] for p in parts), math.fsum(p[1] for p in parts)


# ------------------------------------------------------------------ coordinate descent
@jit(fastmath=SAFE_FASTMATH)
def _cd_block(A, G, XB, l1):  # pragma: no cover - compiled
    """CD passes over the rows of ``A`` with ``b = XB[i] - l1``; returns the violation."""
    k = A.shape[1]
    b0 = np.empty(k, A.dtype)
    b1 = np.empty(k, A.dtype)
    g0 = np.empty(k, A.dtype)
    g1 = np.empty(k, A.dtype)
    v = 0.0
    n = A.shape[0]
    for i in range(0, n, 2):
        j = min(i + 1, n - 1)
        for t in range(k):
            b0[t] = XB[i, t] - l1
            b1[t] = XB[j, t] - l1
        if j > i:
            v += _cd_pair(A, i, j, G, b0, b1, g0, g1)
        else:
            v += _cd_row(A, i, G, b0, g0)
    return v


def _dense_cd_task(task, n_tasks, bounds, A, G, XB):
    lo, hi = bounds[task], bounds[task + 1]
    return _cd_block(A[lo:hi], G, XB[lo:hi], A.dtype.type(0.0))


def nmf_cd_rows(W, HHt, XHt) -> float:
    """One coordinate-descent sweep over every entry of ``W`` (Frobenius loss).

    Minimises ``0.5 ||X - W H||^2`` in each ``W[i, t]`` in turn, ``t = 0..k-1``, with
    ``HHt = H H^T`` (+ l2 on its diagonal) and ``XHt = X H^T`` (- l1), both fixed during
    the sweep. Row ``i`` reads and writes only ``W[i]``, so running rows in parallel gives
    the same result as the serial column-major order of Hsieh & Dhillon (2011).
    Returns the projected-gradient violation (sum of |pg|), the stopping statistic.
    """
    n_rows, k = W.shape
    n_tasks = n_blocks(n_rows, n_rows * k)
    bounds = np.linspace(0, n_rows, n_tasks + 1).astype(np.int64)
    parts = run_tasks(_dense_cd_task, n_tasks, _threads(), bounds, W, HHt, XHt)
    return math.fsum(parts)


@jit(fastmath=SAFE_FASTMATH)
def _sparse_cd_task(
    task, n_tasks, bounds, indptr, indices, data, A, B, G, l1
):  # pragma: no cover - compiled
    k = A.shape[1]
    v = 0.0
    hi = bounds[task + 1]
    n_lanes = lanes(A)
    if k <= n_lanes:  # products in registers; rows swept n_lanes at a time, one per lane
        aT = np.empty((k, n_lanes), A.dtype)
        bb = np.empty((n_lanes, k), A.dtype)
        gT = np.empty((k, n_lanes), A.dtype)
        viol = vzero(A)
        shift = vsplat(A, l1)
        for i0 in range(bounds[task], hi, n_lanes):
            n = min(n_lanes, hi - i0)  # lanes from n on: a = b = 0, which stay 0
            for r in range(n):
                vstore_row(bb, r, 0, _row_chunk(indptr, indices, data, B, i0 + r, 0))
            for t in range(k):  # transposed: component t of the n rows in one vector
                vstore_row(aT, t, 0, vload_col(A, i0, t, n))
                vstore_row(gT, t, 0, vsub(shift, vload_col(bb, 0, t, n)))
            viol = vadd(viol, _lanes_cd(aT, gT, G))
            for t in range(k):
                vstore_col(A, i0, t, n, vload_row(aT, t, 0))
        return vsum(viol)
    bb = np.empty((2, k), A.dtype)
    g0 = np.empty(k, A.dtype)
    g1 = np.empty(k, A.dtype)
    for i in range(bounds[task], hi, 2):
        j = min(i + 1, hi - 1)
        _row_product(indptr, indices, data, B, i, bb, 0)
        _row_product(indptr, indices, data, B, j, bb, 1)
        for t in range(k):
            bb[0, t] -= l1
            bb[1, t] -= l1
        if j > i:
            v += _cd_pair(A, i, j, G, bb[0], bb[1], g0, g1)
        else:
            v += _cd_row(A, i, G, bb[0], g0)
    return v


def sparse_bounds(indptr) -> np.ndarray:
    """The row blocks of the fused sparse half-steps over a CSR pattern (a function of
    the pattern only; callers that iterate may compute it once and pass it on)."""
    n_rows = len(indptr) - 1
    return row_blocks(indptr, n_blocks(n_rows, int(indptr[-1]) + n_rows))


def nmf_sparse_cd_rows(indptr, indices, data, A, B, G, l1, bounds=None) -> float:
    """:func:`nmf_cd_rows` fused with the product: row ``i``'s ``X[i] @ B`` is formed
    just before its sweep (``G = B^T B`` + l2 on the diagonal; ``l1`` a scalar of
    ``A``'s dtype). ``bounds``: :func:`sparse_bounds` of ``indptr`` (computed when
    None). Returns the violation."""
    bounds = sparse_bounds(indptr) if bounds is None else bounds
    parts = np.zeros(len(bounds) - 1)
    claim = np.zeros(1, np.int64)
    run_tasks(
        _sparse_cd_worker, _workers(bounds), _threads(),
        claim, parts, bounds, indptr, indices, data, A, B, G, l1,
    )  # fmt: skip
    return math.fsum(parts)


@jit(fastmath=SAFE_FASTMATH)
def _sparse_cd_worker(
    worker, n_workers, claim, parts, bounds, indptr, indices, data, A, B, G, l1
):  # pragma: no cover - compiled
    """Run blocks of :func:`_sparse_cd_task` claimed from ``claim`` until none are left;
    block ``t``'s violation goes to ``parts[t]`` (whichever thread ran it)."""
    n_tasks = len(bounds) - 1
    t = claim_next(claim)
    while t < n_tasks:
        parts[t] = _sparse_cd_task(t, n_tasks, bounds, indptr, indices, data, A, B, G, l1)
        t = claim_next(claim)
    return 0.0


def _workers(bounds) -> int:
    """Tasks of a half-step on :func:`run_tasks`: one per thread (each claims blocks in
    compiled code, see :func:`~factorkit.kernels._jit.claim_next`); a task that no thread
    has started when the blocks run out is run by the caller, and finds none."""
    return max(1, min(_threads(), len(bounds) - 1))


# ------------------------------------------------------------- multiplicative updates
@jit(fastmath=SAFE_FASTMATH, nrt=False)
def _mu_sums(indptr, indices, data, A, B, i, mode, numer, denom):  # pragma: no cover
    """Row ``i``'s sums over its stored entries for the modes that need the model there:
    masked Frobenius (``numer = X[i] B``, ``denom = sum_j (A[i].B[j]) B[j]``), KL
    (``numer = sum_j x_ij / max(A[i].B[j], EPS) B[j]``; masked: ``denom = sum_j B[j]``)."""
    k = A.shape[1]
    for t in range(k):
        numer[t] = 0.0
        denom[t] = 0.0
    for p in range(indptr[i], indptr[i + 1]):
        j = indices[p]
        x = data[p]
        pred = A.dtype.type(_row_dot(A, i, B, j))
        if mode == MU_FROBENIUS_MASKED:
            for t in range(k):
                numer[t] += x * B[j, t]
                denom[t] += pred * B[j, t]
        else:
            ratio = x / max(pred, EPS)
            for t in range(k):
                numer[t] += ratio * B[j, t]
            if mode == MU_KL_MASKED:
                for t in range(k):
                    denom[t] += B[j, t]


@jit(fastmath=SAFE_FASTMATH)
def _sparse_mu_task(
    task, n_tasks, bounds, indptr, indices, data, A, B, G, base, l1, l2, mode, floor
):  # pragma: no cover - compiled
    k = A.shape[1]
    numer = np.empty((1, k), dtype=A.dtype)
    denom = np.empty(k, dtype=A.dtype)
    vectors = mode == MU_FROBENIUS and k <= lanes(A)
    for i in range(bounds[task], bounds[task + 1]):
        if vectors:  # X[i] B and A[i] G in registers
            num = _row_chunk(indptr, indices, data, B, i, 0)
            den = _vec_gradient(A, i, G, vzero(A))
            for t in range(k):
                d = vget(den, t) + l1 + l2 * A[i, t]
                if d == 0.0:
                    d = EPS
                a = A[i, t] * (vget(num, t) / d)
                if floor and a < 2.220446049250313e-16:
                    a = 0.0
                A[i, t] = a
            continue
        if mode == MU_FROBENIUS:
            _row_product(indptr, indices, data, B, i, numer, 0)
            for t in range(k):
                d = 0.0
                for r in range(k):
                    d += G[t, r] * A[i, r]  # G symmetric: rows read contiguously
                denom[t] = d
        else:
            _mu_sums(indptr, indices, data, A, B, i, mode, numer[0], denom)
            if mode == MU_KL:
                for t in range(k):
                    denom[t] = base[t]
        _mu_row(A, i, numer[0], denom, l1, l2, floor)
    return 0.0


def nmf_sparse_mu_rows(
    indptr, indices, data, A, B, G, base, l1, l2, mode, floor, bounds=None
) -> None:
    """One multiplicative update of every row of ``A`` (scikit-learn's ``_multiplicative_
    update_w`` with gamma = 1), fused with its sparse products.

    ``mode``: :data:`MU_FROBENIUS` (``A *= X B / (A G)``, ``G = B^T B``, exactly
    symmetric), :data:`MU_FROBENIUS_MASKED` (the model summed over the row's observed
    entries only),
    :data:`MU_KL` (``A *= (X / AB^T) B / base``, ``base`` the column sums of ``B``) or
    :data:`MU_KL_MASKED` (``base`` summed over the observed entries). ``l1``, ``l2``:
    scalars of ``A``'s dtype added to the denominator (``l1 + l2 A``); ``floor``: zero the
    entries below float64's eps afterwards. ``bounds``: as :func:`nmf_sparse_cd_rows`.
    """
    bounds = sparse_bounds(indptr) if bounds is None else bounds
    claim = np.zeros(1, np.int64)
    run_tasks(
        _sparse_mu_worker, _workers(bounds), _threads(),
        claim, bounds, indptr, indices, data, A, B, G, base, l1, l2, mode, floor,
    )  # fmt: skip


@jit(fastmath=SAFE_FASTMATH)
def _sparse_mu_worker(
    worker, n_workers, claim, bounds, indptr, indices, data, A, B, G, base, l1, l2, mode, floor
):  # pragma: no cover - compiled
    """Run blocks of :func:`_sparse_mu_task` claimed from ``claim`` until none are left."""
    n_tasks = len(bounds) - 1
    t = claim_next(claim)
    while t < n_tasks:
        _sparse_mu_task(
            t, n_tasks, bounds, indptr, indices, data, A, B, G, base, l1, l2, mode, floor
        )
        t = claim_next(claim)
    return 0.0


@jit(fastmath=SAFE_FASTMATH)
def mu_block(A, numer, G, base, l1, l2, floor):  # pragma: no cover - compiled
    """Multiplicative update of the rows of ``A`` from a formed numerator block: the
    denominator is ``A[i] G`` when ``G`` is (k, k), else ``base`` (k,) for every row."""
    k = A.shape[1]
    denom = np.empty(k, dtype=A.dtype)
    gram = G.shape[0] > 0
    for i in range(A.shape[0]):
        for t in range(k):
            if gram:
                d = 0.0
                for r in range(k):
                    d += G[t, r] * A[i, r]  # G symmetric: rows read contiguously
                denom[t] = d
            else:
                denom[t] = base[t]
        _mu_row(A, i, numer[i], denom, l1, l2, floor)


# ------------------------------------------------------------------------ masked CD
@jit(fastmath=SAFE_FASTMATH)
def _masked_cd_task(
    task, n_tasks, indptr, indices, data, weights, W, Ht, l1, l2, l2_count, sweeps
):  # pragma: no cover - compiled
    """Rows ``task, task + n_tasks, ...`` of :func:`nmf_masked_cd_rows`."""
    n_rows = W.shape[0]
    k = W.shape[1]
    weighted = len(weights) > 0
    G = np.empty((k, k), dtype=W.dtype)
    b = np.empty(k, dtype=W.dtype)
    g = np.empty(k, dtype=W.dtype)
    viol = 0.0
    for i in range(task, n_rows, n_tasks):
        for t in range(k):
            b[t] = 0.0
            for r in range(k):
                G[t, r] = 0.0
        wsum = 0.0  # float64: the weighted count n_i
        for p in range(indptr[i], indptr[i + 1]):
            j = indices[p]
            c = weights[p] if weighted else W.dtype.type(1.0)
            wsum += c
            x = data[p] * c
            for t in range(k):
                ch = c * Ht[j, t]
                b[t] += x * Ht[j, t]
                for r in range(t, k):
                    G[t, r] += ch * Ht[j, r]
        for t in range(k):
            for r in range(t):
                G[t, r] = G[r, t]
            G[t, t] += l2 + l2_count * wsum
            b[t] -= l1
        for s in range(sweeps):
            v = _cd_row(W, i, G, b, g)
            if s == 0:
                viol += v
    return viol


def nmf_masked_cd_rows(indptr, indices, data, weights, W, Ht, l1, l2, l2_count, sweeps):
    """Coordinate descent on each row of ``W`` using only that row's observed entries.

    Row ``i`` solves ``min_{w >= 0} 0.5 sum_{j in obs(i)} c_ij (x_ij - w . h_j)^2 + l1
    |w|_1 + 0.5 (l2 + l2_count n_i) |w|^2`` (``n_i`` the row's observed count: ``l2_count``
    is a per-rating penalty, as SGD's weight decay) by ``sweeps`` passes of coordinate
    descent on its own k x k Gram matrix ``sum_j c_ij h_j h_j^T``: missing entries take
    no part in the objective (they are not zeros). ``weights`` holds ``c_ij`` aligned with
    ``data``, and then ``n_i = sum_j c_ij`` (an entry of weight 2 counts as two, in the
    loss and in the penalty); empty, every ``c_ij`` is 1. Rows are independent and dealt
    round-robin to the tasks (ratings per user are skewed). Returns the
    projected-gradient violation of the first pass.
    """
    n_rows = W.shape[0]
    n_tasks = n_blocks(n_rows, int(indptr[-1]) * W.shape[1] + n_rows)
    parts = run_tasks(
        _masked_cd_task, n_tasks, _threads(),
        indptr, indices, data, weights, W, Ht, l1, l2, l2_count, sweeps,
    )  # fmt: skip
    return math.fsum(parts)


# ---------------------------------------------------------------------- dense blocks
# Dense data: each task multiplies its block of rows with BLAS on its own thread (NumPy
# releases the GIL; BLAS is held to one thread by ``using_threads``), then updates the
# block in a compiled kernel. OpenBLAS's own threads synchronise at every call and, on a
# busy machine, wait for each other: a (2000 x 1000) @ (1000 x 10) product took 1.2 ms
# on one BLAS thread and 16 ms on two at load average 10 (docs/benchmarks.md, issue 12).
def _dense_bounds(n_rows: int, n_cols: int) -> np.ndarray:
    n_tasks = n_blocks(n_rows, n_rows * n_cols // 8)
    return np.linspace(0, n_rows, n_tasks + 1).astype(np.int64)


def _dense_cd_block_task(task, n_tasks, bounds, X, A, B, G, l1):
    lo, hi = bounds[task], bounds[task + 1]
    return _cd_block(A[lo:hi], G, X[lo:hi] @ B, l1)


def nmf_dense_cd_rows(X, A, B, G, l1) -> float:
    """One CD sweep of ``A`` for ``X ~ A B^T`` with ``X`` a dense array (or a transposed
    view of one): each block forms ``X[block] @ B`` and sweeps its rows. ``G = B^T B`` +
    l2 on the diagonal; ``l1`` a scalar of ``A``'s dtype. Returns the violation."""
    bounds = _dense_bounds(*X.shape)
    parts = run_tasks(_dense_cd_block_task, len(bounds) - 1, _threads(), bounds, X, A, B, G, l1)
    return math.fsum(parts)


def _dense_mu_task(task, n_tasks, bounds, X, A, B, G, base, l1, l2, kl, floor):
    lo, hi = bounds[task], bounds[task + 1]
    if kl:  # (X / max(A B^T, EPS)) B, one block of rows at a time
        P = A[lo:hi] @ B.T
        np.maximum(P, EPS, out=P)
        np.divide(X[lo:hi], P, out=P)
        numer = P @ B
    else:
        numer = X[lo:hi] @ B
    mu_block(A[lo:hi], numer, G, base, l1, l2, floor)
    return 0.0


def nmf_dense_mu_rows(X, A, B, G, base, l1, l2, kl, floor) -> None:
    """One multiplicative update of ``A`` for ``X ~ A B^T``, ``X`` dense (or a transposed
    view): Frobenius (``kl`` False: ``A *= X B / (A G)``) or KL (``A *= (X / AB^T) B /
    base``); arguments as :func:`nmf_sparse_mu_rows` (``G`` (0, 0) and ``base`` (0,) when
    unused)."""
    bounds = _dense_bounds(*X.shape)
    run_tasks(
        _dense_mu_task, len(bounds) - 1, _threads(), bounds, X, A, B, G, base, l1, l2, kl, floor
    )


@jit(fastmath=SAFE_FASTMATH)
def _loss_block(X, P, kl):  # pragma: no cover - compiled
    """``sum (x - p)^2`` or ``sum x log(x / max(p, EPS)) - x + p`` (0 log 0 = 0), in
    float64."""
    s = 0.0
    for i in range(X.shape[0]):
        for j in range(X.shape[1]):
            x = np.float64(X[i, j])
            p = np.float64(P[i, j])
            if kl:
                if x > 0:
                    s += x * np.log(x / max(p, EPS))
                s += p - x
            else:
                s += (x - p) * (x - p)
    return s


def _dense_loss_task(task, n_tasks, bounds, X, W, Ht, kl):
    lo, hi = bounds[task], bounds[task + 1]
    return _loss_block(X[lo:hi], W[lo:hi] @ Ht.T, kl)


@jit(fastmath=SAFE_FASTMATH)
def _frobenius_loss_task(task, n_tasks, X, W, H):  # pragma: no cover - compiled
    """``sum (x - W[i] . H[:, j])^2`` over block ``task`` of the rows: each row's model
    is formed in an (n,) buffer (k passes vectorised over the columns), each row's sum in
    X's dtype and the rows' sums in float64 (float32 row sums: 3e-8 relative to a
    float64 computation on the 2000 x 1000 benchmark)."""
    n_rows = X.shape[0]
    n = X.shape[1]
    k = W.shape[1]
    lo = n_rows * task // n_tasks
    hi = n_rows * (task + 1) // n_tasks
    pred = np.empty(n, X.dtype)
    s = 0.0
    for i in range(lo, hi):
        for j in range(n):
            pred[j] = 0.0
        for t in range(k):
            w = W[i, t]
            for j in range(n):
                pred[j] += w * H[t, j]
        r = X.dtype.type(0.0)  # one row's sum in X's dtype (vector lanes), then float64
        for j in range(n):
            d = X[i, j] - pred[j]
            r += d * d
        s += r
    return s


def dense_loss(X, W, Ht, kl: bool) -> float:
    """``0.5 ||X - W Ht^T||^2`` or ``KL(X || W Ht^T)`` for a C-ordered dense ``X``, one
    row (Frobenius, compiled) or block of rows (KL, with BLAS) of the model at a time,
    never the whole ``W Ht^T``."""
    if not kl:
        n_tasks = n_blocks(X.shape[0], X.size // 8)
        H = np.ascontiguousarray(Ht.T)
        parts = run_tasks(_frobenius_loss_task, n_tasks, _threads(), X, W, H)
        return 0.5 * math.fsum(parts)
    bounds = _dense_bounds(*X.shape)
    parts = run_tasks(_dense_loss_task, len(bounds) - 1, _threads(), bounds, X, W, Ht, kl)
    return math.fsum(parts)


# ------------------------------------------------------------- dense fused half-steps
# A dense iteration as one pass over X, block by block: the products X[lo:hi] @ B of a
# block of rows are formed, its rows of A updated, and, while the block is still in the
# L2 cache, its share of the other side's product A^T X (k x n) formed with the updated
# rows. The other side's half-step then needs no pass over X (scikit-learn forms X^T W
# with the *updated* W, so this is the same product). Both products are register-tiled
# GEMM kernels on 64-byte vectors (kernels/_simd.py): 4 rows x 5 components of sums over
# the columns for X B, 5 components x 64 columns over the block's rows for A^T X, which
# keeps the (k, n) partial product out of the inner loop. On 2000 x 1000 float32, k = 10,
# one thread: 0.53 and 0.38 ms (76 and 105 GFLOP/s; sgemm on a large square product
# reaches 100), against 1.0 ms for BLAS's X @ Ht and 1.3-2.1 ms for X.T @ W (thin
# products), and 0.82 + 0.55 ms for the earlier one-pass kernel that added each group of
# four rows into the partial product (a (k, n) load and store per four rows).
#: rows of X per block of the fused dense half-step (a fixed count: the partial sums,
#: hence the results, do not depend on the thread count)
DENSE_BLOCK_ROWS = 256


@jit(fastmath=SAFE_FASTMATH, nrt=False)
def _dots_tile(X, Bt, lo, hi, t, D):  # pragma: no cover - compiled
    """``D[i - lo, t:t + 5] = X[i] @ Bt[t:t + 5].T`` for the rows ``lo:hi``: 4 rows x 5
    components in 20 vector sums over the columns, 9 loads per 20 multiply-adds; the 5
    rows of ``Bt`` (20 KB at n = 1000, float32) stay in the L1 cache over the block while
    its rows stream from L2. A group of fewer than 4 rows repeats its last row."""
    n = X.shape[1]
    w = lanes(X)
    for i in range(lo, hi, 4):
        i1, i2, i3 = min(i + 1, hi - 1), min(i + 2, hi - 1), min(i + 3, hi - 1)
        s00 = s01 = s02 = s03 = s04 = vzero(X)
        s10 = s11 = s12 = s13 = s14 = vzero(X)
        s20 = s21 = s22 = s23 = s24 = vzero(X)
        s30 = s31 = s32 = s33 = s34 = vzero(X)
        for j in range(0, n, w):
            h0 = vload_row(Bt, t, j)
            h1 = vload_row(Bt, t + 1, j)
            h2 = vload_row(Bt, t + 2, j)
            h3 = vload_row(Bt, t + 3, j)
            h4 = vload_row(Bt, t + 4, j)
            x = vload_row(X, i, j)
            s00, s01, s02 = vfmav(s00, x, h0), vfmav(s01, x, h1), vfmav(s02, x, h2)
            s03, s04 = vfmav(s03, x, h3), vfmav(s04, x, h4)
            x = vload_row(X, i1, j)
            s10, s11, s12 = vfmav(s10, x, h0), vfmav(s11, x, h1), vfmav(s12, x, h2)
            s13, s14 = vfmav(s13, x, h3), vfmav(s14, x, h4)
            x = vload_row(X, i2, j)
            s20, s21, s22 = vfmav(s20, x, h0), vfmav(s21, x, h1), vfmav(s22, x, h2)
            s23, s24 = vfmav(s23, x, h3), vfmav(s24, x, h4)
            x = vload_row(X, i3, j)
            s30, s31, s32 = vfmav(s30, x, h0), vfmav(s31, x, h1), vfmav(s32, x, h2)
            s33, s34 = vfmav(s33, x, h3), vfmav(s34, x, h4)
        r = i - lo
        _store_sums5(D, r, t, s00, s01, s02, s03, s04)
        if i1 > i:
            _store_sums5(D, r + 1, t, s10, s11, s12, s13, s14)
        if i2 > i1:
            _store_sums5(D, r + 2, t, s20, s21, s22, s23, s24)
        if i3 > i2:
            _store_sums5(D, r + 3, t, s30, s31, s32, s33, s34)


@jit(nrt=False)
def _store_sums5(D, r, t, s0, s1, s2, s3, s4):  # pragma: no cover - compiled
    D[r, t] = vsum(s0)
    D[r, t + 1] = vsum(s1)
    D[r, t + 2] = vsum(s2)
    D[r, t + 3] = vsum(s3)
    D[r, t + 4] = vsum(s4)


@jit(fastmath=SAFE_FASTMATH, nrt=False)
def _dots_one(X, Bt, lo, hi, t, D):  # pragma: no cover - compiled
    """``D[i - lo, t] = X[i] @ Bt[t]`` for the rows ``lo:hi`` (the components past a
    multiple of 5), 4 rows at a time."""
    n = X.shape[1]
    w = lanes(X)
    for i in range(lo, hi, 4):
        i1, i2, i3 = min(i + 1, hi - 1), min(i + 2, hi - 1), min(i + 3, hi - 1)
        s0 = s1 = s2 = s3 = vzero(X)
        for j in range(0, n, w):
            h = vload_row(Bt, t, j)
            s0 = vfmav(s0, vload_row(X, i, j), h)
            s1 = vfmav(s1, vload_row(X, i1, j), h)
            s2 = vfmav(s2, vload_row(X, i2, j), h)
            s3 = vfmav(s3, vload_row(X, i3, j), h)
        r = i - lo
        D[r, t] = vsum(s0)
        if i1 > i:
            D[r + 1, t] = vsum(s1)
        if i2 > i1:
            D[r + 2, t] = vsum(s2)
        if i3 > i2:
            D[r + 3, t] = vsum(s3)


@jit(fastmath=SAFE_FASTMATH, nrt=False)
def _block_dots(X, Bt, lo, hi, k, D):  # pragma: no cover - compiled
    """``D[:hi - lo, :k] = X[lo:hi] @ Bt[:k].T``, 5 components per pass over the rows."""
    t = np.int64(0)  # not a literal: one signature for the tiles
    while t + 5 <= k:
        _dots_tile(X, Bt, lo, hi, t, D)
        t += 5
    while t < k:
        _dots_one(X, Bt, lo, hi, t, D)
        t += 1


@jit(fastmath=SAFE_FASTMATH, nrt=False)
def _outer_tile(X, A, lo, hi, t, P):  # pragma: no cover - compiled
    """``P[t:t + 5] = A[lo:hi, t:t + 5].T @ X[lo:hi]`` (``t + 5 <= k``): 5 components x
    4 vectors of columns held in 20 registers over the block's rows, 9 loads per 20
    multiply-adds, ``P`` written once."""
    n = X.shape[1]
    w = lanes(X)
    for j in range(0, n, 4 * w):
        s00 = s01 = s02 = s03 = vzero(X)
        s10 = s11 = s12 = s13 = vzero(X)
        s20 = s21 = s22 = s23 = vzero(X)
        s30 = s31 = s32 = s33 = vzero(X)
        s40 = s41 = s42 = s43 = vzero(X)
        for i in range(lo, hi):
            x0 = vload_row(X, i, j)
            x1 = vload_row(X, i, j + w)
            x2 = vload_row(X, i, j + 2 * w)
            x3 = vload_row(X, i, j + 3 * w)
            a = A[i, t]
            s00, s01 = vfma(s00, a, x0), vfma(s01, a, x1)
            s02, s03 = vfma(s02, a, x2), vfma(s03, a, x3)
            a = A[i, t + 1]
            s10, s11 = vfma(s10, a, x0), vfma(s11, a, x1)
            s12, s13 = vfma(s12, a, x2), vfma(s13, a, x3)
            a = A[i, t + 2]
            s20, s21 = vfma(s20, a, x0), vfma(s21, a, x1)
            s22, s23 = vfma(s22, a, x2), vfma(s23, a, x3)
            a = A[i, t + 3]
            s30, s31 = vfma(s30, a, x0), vfma(s31, a, x1)
            s32, s33 = vfma(s32, a, x2), vfma(s33, a, x3)
            a = A[i, t + 4]
            s40, s41 = vfma(s40, a, x0), vfma(s41, a, x1)
            s42, s43 = vfma(s42, a, x2), vfma(s43, a, x3)
        _store_tile4(P, t, j, w, s00, s01, s02, s03)
        _store_tile4(P, t + 1, j, w, s10, s11, s12, s13)
        _store_tile4(P, t + 2, j, w, s20, s21, s22, s23)
        _store_tile4(P, t + 3, j, w, s30, s31, s32, s33)
        _store_tile4(P, t + 4, j, w, s40, s41, s42, s43)


@jit(fastmath=SAFE_FASTMATH, nrt=False)
def _outer_row(X, A, lo, hi, t, P):  # pragma: no cover - compiled
    """``P[t] = A[lo:hi, t] @ X[lo:hi]``: one component (the remainder past a multiple
    of 5), 4 vectors of columns at a time."""
    n = X.shape[1]
    w = lanes(X)
    for j in range(0, n, 4 * w):
        s0 = s1 = s2 = s3 = vzero(X)
        for i in range(lo, hi):
            a = A[i, t]
            s0 = vfma(s0, a, vload_row(X, i, j))
            s1 = vfma(s1, a, vload_row(X, i, j + w))
            s2 = vfma(s2, a, vload_row(X, i, j + 2 * w))
            s3 = vfma(s3, a, vload_row(X, i, j + 3 * w))
        _store_tile4(P, t, j, w, s0, s1, s2, s3)


@jit(nrt=False)
def _store_tile4(P, t, j, w, s0, s1, s2, s3):  # pragma: no cover - compiled
    vstore_row(P, t, j, s0)
    vstore_row(P, t, j + w, s1)
    vstore_row(P, t, j + 2 * w, s2)
    vstore_row(P, t, j + 3 * w, s3)


@jit(fastmath=SAFE_FASTMATH, nrt=False)
def _block_outer(X, A, lo, hi, P):  # pragma: no cover - compiled
    """``P[:k] = A[lo:hi].T @ X[lo:hi]`` (rows of ``P`` past ``k`` left alone), after
    the block's rows of ``A`` are updated: ``X[lo:hi]`` is read again from the L2 cache,
    once per 5 components."""
    k = A.shape[1]
    t = np.int64(0)  # not a literal: one signature for the tiles
    while t + 5 <= k:
        _outer_tile(X, A, lo, hi, t, P)
        t += 5
    while t < k:
        _outer_row(X, A, lo, hi, t, P)
        t += 1


@jit(fastmath=SAFE_FASTMATH, nrt=False)
def _mu_gram_row(A, i, G, numer, denom, l1, l2):  # pragma: no cover - compiled
    """Frobenius multiplicative update of ``A[i]``: denominator ``G A[i]``."""
    k = A.shape[1]
    for t in range(k):
        d = 0.0
        for r in range(k):
            d += G[t, r] * A[i, r]  # G symmetric: rows read contiguously
        denom[t] = d
    _mu_row(A, i, numer, denom, l1, l2, False)


@jit(nrt=False)
def _copy_rows4(D, r, count, b0, b1, b2, b3):  # pragma: no cover - compiled
    """``b_q = D[r + q]`` for q < count (count <= 4)."""
    for t in range(D.shape[1]):
        b0[t] = D[r, t]
        if count > 1:
            b1[t] = D[r + 1, t]
        if count > 2:
            b2[t] = D[r + 2, t]
        if count > 3:
            b3[t] = D[r + 3, t]


@jit(fastmath=SAFE_FASTMATH)
def _dense_fused_block(X, A, Bt, G, l1, l2, cd, mu, lo, hi, P, accumulate):  # pragma: no cover
    """Rows ``lo:hi`` of :func:`nmf_dense_fused_rows`; returns their CD violation.
    ``cd``, ``mu``: one True, the other None (numba prunes a branch on a None argument
    when it compiles, not one on a bool: a MU fit compiles no CD code, and the other way
    round)."""
    k = A.shape[1]
    D = np.empty((hi - lo, k), A.dtype)
    _block_dots(X, Bt, lo, hi, k, D)
    v = 0.0
    if cd is not None:
        v = _cd_rows(A, lo, hi, G, D, l1)
    if mu is not None:
        _mu_rows(A, lo, hi, G, D, l1, l2)
    if accumulate:
        _block_outer(X, A, lo, hi, P)
    return v


@jit(fastmath=SAFE_FASTMATH)
def _cd_rows(A, lo, hi, G, D, l1):  # pragma: no cover - compiled
    """One CD sweep of the rows ``lo:hi`` of ``A`` from their products ``D[i - lo]``
    (``- l1``), rows in pairs (:func:`_cd_pair`); returns the violation."""
    k = A.shape[1]
    b0 = np.empty(k, A.dtype)
    b1 = np.empty(k, A.dtype)
    b2 = np.empty(k, A.dtype)
    b3 = np.empty(k, A.dtype)
    g0 = np.empty(k, A.dtype)
    g1 = np.empty(k, A.dtype)
    v = 0.0
    i = lo
    while i < hi:
        r = min(4, hi - i)
        _copy_rows4(D, i - lo, r, b0, b1, b2, b3)
        for t in range(k):
            b0[t] -= l1
            b1[t] -= l1
            b2[t] -= l1
            b3[t] -= l1
        if r >= 2:
            v += _cd_pair(A, i, i + 1, G, b0, b1, g0, g1)
        else:
            v += _cd_row(A, i, G, b0, g0)
        if r == 4:
            v += _cd_pair(A, i + 2, i + 3, G, b2, b3, g0, g1)
        elif r == 3:
            v += _cd_row(A, i + 2, G, b2, g0)
        i += r
    return v


@jit(fastmath=SAFE_FASTMATH, nrt=False)
def _gram_into(A, lo, hi, G):  # pragma: no cover - compiled
    """``G = A[lo:hi].T @ A[lo:hi]`` (k x k), exactly symmetric (the upper triangle
    mirrored), as the CD sweeps assume. Row ``t`` of ``G`` is one vector sum over the
    rows when ``k`` fits a vector (3 us for 256 x 10, against 15 us for the scalar
    triangle)."""
    k = A.shape[1]
    if k <= lanes(A):
        for t in range(k):
            s = vzero(A)
            for i in range(lo, hi):
                s = vfma(s, A[i, t], vload_row(A, i, 0))
            vstore_row(G, t, 0, s)
    else:
        for t in range(k):
            for r in range(t, k):
                s = 0.0
                for i in range(lo, hi):
                    s += A[i, t] * A[i, r]
                G[t, r] = s
    for t in range(k):
        for r in range(t):
            G[t, r] = G[r, t]


@jit(fastmath=SAFE_FASTMATH)
def _mu_rows(A, lo, hi, G, N, l1, l2):  # pragma: no cover - compiled
    """Frobenius multiplicative update of the rows ``lo:hi`` of ``A`` with numerators
    ``N[i - lo]`` and denominators ``A[i] G`` (+ l1 + l2 A[i]), one vector per row when
    ``k`` fits a vector (``G`` symmetric: its rows are its columns); else row by row."""
    k = A.shape[1]
    if k > lanes(A):
        denom = np.empty(k, A.dtype)
        for i in range(lo, hi):
            _mu_gram_row(A, i, G, N[i - lo], denom, l1, l2)
        return
    for i in range(lo, hi):
        d = vzero(A)
        for r in range(k):
            d = vfma(d, A[i, r], vload_row(G, r, 0))
        a = vmu_step(vload_row(A, i, 0), vload_row(N, i - lo, 0), d, l1, l2, EPS)
        vstore_row(A, i, 0, a)


@jit(fastmath=SAFE_FASTMATH)
def _dense_tail(P, GA, B, Bt, G, l1b, l2b, l2a, cd, mu):  # pragma: no cover - compiled
    """The end of :func:`nmf_dense_iteration`, after every block of ``A``: the other
    side's half-step on ``B`` (its Gram ``A^T A`` summed from the blocks' in block order,
    ``P`` as in :func:`nmf_dense_other_side`), then the next iteration's ``G = B^T B``
    (+ ``l2a`` on the diagonal for CD) and ``Bt[:k] = B.T``. Returns the CD violation."""
    k = B.shape[1]
    # row 0 and one task as an int64, not a literal 0: the callees' signatures are then
    # those of their other call sites (a literal argument is a separate compilation)
    first = np.int64(0)
    GB = np.zeros((k, k), B.dtype)
    for q in range(GA.shape[0]):
        for t in range(k):
            for r in range(k):
                GB[t, r] += GA[q, t, r]
    v = 0.0
    if cd is not None:
        for t in range(k):
            GB[t, t] += l2b
        v = _other_side_task(first, first + 1, P, B, GB, l1b, l2b, True)
    if mu is not None:
        # the numerators X^T A summed in block order, as rows; then one vector a row
        n = B.shape[0]
        for q in range(1, P.shape[0]):
            for t in range(k):
                for j in range(n):
                    P[0, t, j] += P[q, t, j]
        N = np.empty((n, k), B.dtype)
        for j in range(n):
            for t in range(k):
                N[j, t] = P[0, t, j]
        _mu_rows(B, first, n, GB, N, l1b, l2b)
    _gram_into(B, first, B.shape[0], G)
    if cd is not None:
        for t in range(k):
            G[t, t] += l2a
    for j in range(B.shape[0]):
        for t in range(k):
            Bt[t, j] = B[j, t]
    return v


@jit(fastmath=SAFE_FASTMATH)
def _dense_iteration_worker(
    worker, n_workers, counters, parts, X, A, B, Bt, G, P, GA, l1a, l2a, l1b, l2b, cd, mu
):  # pragma: no cover - compiled
    """Blocks of :func:`nmf_dense_iteration` claimed from ``counters[0:1]``, each counted
    done in ``counters[1:2]``; the thread that finishes the last block runs
    :func:`_dense_tail`, whose violation goes to ``parts[-1]``."""
    n_rows = A.shape[0]
    n_tasks = len(parts) - 1
    claim = counters[0:1]
    done = counters[1:2]
    t = claim_next(claim)
    while t < n_tasks:
        lo = t * DENSE_BLOCK_ROWS
        hi = min(n_rows, lo + DENSE_BLOCK_ROWS)
        parts[t] = _dense_fused_block(X, A, Bt, G, l1a, l2a, cd, mu, lo, hi, P[t], True)
        _gram_into(A, lo, hi, GA[t])
        if count_done(done) == n_tasks - 1:
            parts[n_tasks] = _dense_tail(P, GA, B, Bt, G, l1b, l2b, l2a, cd, mu)
        t = claim_next(claim)
    return 0.0


@jit(fastmath=SAFE_FASTMATH)
def _dense_fused_worker(
    worker, n_workers, claim, parts, X, A, Bt, G, l1, l2, cd, mu, P
):  # pragma: no cover - compiled
    """Run blocks of :data:`DENSE_BLOCK_ROWS` rows claimed from ``claim`` until none are
    left; block ``t``'s violation goes to ``parts[t]`` and its product to ``P[t]``."""
    n_rows = A.shape[0]
    n_tasks = len(parts)
    accumulate = P.shape[1] > 0
    t = claim_next(claim)
    while t < n_tasks:
        lo = t * DENSE_BLOCK_ROWS
        hi = min(n_rows, lo + DENSE_BLOCK_ROWS)
        Pt = P[t if accumulate else 0]
        parts[t] = _dense_fused_block(X, A, Bt, G, l1, l2, cd, mu, lo, hi, Pt, accumulate)
        t = claim_next(claim)
    return 0.0


@jit(fastmath=SAFE_FASTMATH)
def _other_side_task(task, n_tasks, P, A, G, l1, l2, cd):  # pragma: no cover - compiled
    """Rows ``lo:hi`` (block ``task`` of ``n_tasks``) of :func:`nmf_dense_other_side`."""
    k = A.shape[1]
    n = A.shape[0]
    lo = n * task // n_tasks
    hi = n * (task + 1) // n_tasks
    for q in range(1, P.shape[0]):  # into P[0], vectorised over the columns
        for t in range(k):
            for j in range(lo, hi):
                P[0, t, j] += P[q, t, j]
    b0 = np.empty(k, A.dtype)
    b1 = np.empty(k, A.dtype)
    g0 = np.empty(k, A.dtype)
    g1 = np.empty(k, A.dtype)
    v = 0.0
    for j in range(lo, hi, 2):
        i = min(j + 1, hi - 1)
        for t in range(k):
            b0[t] = P[0, t, j] - l1 if cd else P[0, t, j]
            b1[t] = P[0, t, i] - l1 if cd else P[0, t, i]
        if not cd:
            _mu_gram_row(A, j, G, b0, g0, l1, l2)
            if i > j:
                _mu_gram_row(A, i, G, b1, g0, l1, l2)
        elif i > j:  # two rows in lockstep, as the W half-step
            v += _cd_pair(A, j, i, G, b0, b1, g0, g1)
        else:
            v += _cd_row(A, j, G, b0, g0)
    return v


#: blocks of the other side's rows (fixed: the violation's sum does not depend on the
#: thread count)
OTHER_SIDE_TASKS = 4


def nmf_dense_other_side(P, A, G, l1, l2, cd) -> float:
    """The half-step after :func:`nmf_dense_fused_rows`: row ``j`` of ``A`` (n, k) is
    updated from ``b = sum_blocks P[:, :k, j]`` (``X^T B`` with the updated ``B``, summed
    in block order into ``P[0]``), by CD (``cd``: ``b - l1``, ``G`` + l2 on its
    diagonal; rows in pairs, as :func:`_cd_pair`) or the Frobenius multiplicative
    update; no (n, k) temporary. Returns the CD violation (0 for MU)."""
    n_tasks = max(1, min(OTHER_SIDE_TASKS, A.shape[0] // 256))
    parts = run_tasks(_other_side_task, n_tasks, _threads(), P, A, G, l1, l2, cd)
    return math.fsum(parts)


def dense_fused_buffer(n_rows: int, k: int, n: int, dtype) -> np.ndarray:
    """The partial products of :func:`nmf_dense_fused_rows` for ``X`` (n_rows, n) and
    ``k`` components: one (k rounded up to even, n) array per block of rows."""
    return np.zeros((-(-n_rows // DENSE_BLOCK_ROWS), -(-k // 2) * 2, n), dtype=dtype)


def nmf_dense_fused_rows(X, A, B, G, l1, l2, cd: bool, P=None) -> float:
    """One half-step of ``A`` for ``X ~ A B^T`` (``X`` a C-ordered dense array), CD
    (``cd``; ``G = B^T B`` + l2 on the diagonal, ``l1`` subtracted from the products) or
    Frobenius multiplicative update (``A *= X B / (A G + l1 + l2 A)``), fused with the
    next half-step's product: with ``P`` from :func:`dense_fused_buffer`,
    ``P.sum(axis=0)[:k]`` is afterwards ``A^T X`` with the *updated* ``A`` (None: not
    formed). ``l1``, ``l2``: scalars of ``A``'s dtype. Returns the CD violation (0 for
    MU)."""
    n_rows, k = A.shape
    n_tasks = -(-n_rows // DENSE_BLOCK_ROWS)
    Bt = np.zeros((-(-k // 2) * 2, X.shape[1]), dtype=A.dtype)
    Bt[:k] = B.T
    if P is None:
        P = np.zeros((1, 0, 0), dtype=A.dtype)
    parts = np.zeros(n_tasks)
    claim = np.zeros(1, np.int64)
    workers = max(1, min(_threads(), n_tasks))
    cd_on, mu_on = (True, None) if cd else (None, True)  # see _dense_fused_block
    run_tasks(
        _dense_fused_worker, workers, _threads(),
        claim, parts, X, A, Bt, G, l1, l2, cd_on, mu_on, P,
    )  # fmt: skip
    return math.fsum(parts)


def dense_iteration_buffers(X, A, B, l2a: float, cd: bool) -> tuple:
    """The state of :func:`nmf_dense_iteration` for ``X ~ A B^T`` from the current
    ``B``: ``(Bt, G, P, GA, parts, counters)``, ``Bt`` (k, n) = ``B.T``, ``G = B^T B``
    (+ ``l2a`` on the diagonal for CD), and per block of rows its partial ``A^T X``
    (``P``), its Gram ``A^T A`` (``GA``) and its violation (``parts``, one more for the
    other side's)."""
    n_rows, k = A.shape
    n_tasks = -(-n_rows // DENSE_BLOCK_ROWS)
    Bt = np.ascontiguousarray(B.T)
    G = B.T @ B  # SYRK: exactly symmetric
    if cd:
        G.flat[:: k + 1] += l2a
    P = dense_fused_buffer(n_rows, k, X.shape[1], A.dtype)
    GA = np.zeros((n_tasks, k, k), dtype=A.dtype)
    return Bt, G, P, GA, np.zeros(n_tasks + 1), np.zeros(2, np.int64)


def nmf_dense_iteration(X, A, B, buffers: tuple, l1a, l2a, l1b, l2b, cd: bool) -> float:
    """One iteration on ``X ~ A B^T`` (``X`` a C-ordered dense array): the half-step of
    ``A`` (:func:`nmf_dense_fused_rows`, with its product ``A^T X``), then ``B``'s
    (:func:`nmf_dense_other_side`), in one call on the threads: the thread that
    finishes the last block of ``A``'s rows runs ``B``'s half-step (0.05 ms for 1000 x 10)
    and forms the next iteration's ``B^T B`` and ``B.T`` in ``buffers`` (from
    :func:`dense_iteration_buffers`), so an iteration costs one dispatch and no Python
    array work. ``l1a``, ``l2a``, ``l1b``, ``l2b``: scalars of the dtype. Returns the CD
    violation (0 for MU), the sum of both half-steps'."""
    Bt, G, P, GA, parts, counters = buffers
    counters[:] = 0
    workers = max(1, min(_threads(), len(parts) - 1))
    run_tasks(
        _dense_iteration_worker, workers, _threads(),
        counters, parts, X, A, B, Bt, G, P, GA, l1a, l2a, l1b, l2b,
        *((True, None) if cd else (None, True)),  # see _dense_fused_block
    )  # fmt: skip
    return math.fsum(parts)


# ------------------------------------------------------------------ dense input scan
@jit()
def _scan_task(task, n_tasks, src, dst):  # pragma: no cover - compiled
    """Block ``task`` of the rows of :func:`dense_convert_scan`: copy and count."""
    n_rows = src.shape[0]
    copy = dst.shape[0] > 0
    lo = n_rows * task // n_tasks
    hi = n_rows * (task + 1) // n_tasks
    top = np.finfo(src.dtype).max
    bad = 0
    for i in range(lo, hi):
        for j in range(src.shape[1]):
            x = src[i, j]
            if copy:
                dst[i, j] = x
            # False for NaN: a branch-free count that vectorises
            bad += not (x >= 0 and x <= top)
    return bad


def dense_convert_scan(src: np.ndarray, dtype, n_threads: int = 1) -> tuple[np.ndarray, int]:
    """``src`` (2-D float ndarray) as a C-ordered array of ``dtype`` (a copy when the
    dtype or order differs, else ``src`` itself) and its count of entries that are not
    finite and non-negative (negative, NaN or infinite), on up to ``n_threads`` threads:
    one pass over the data instead of a cast, ``isfinite``, ``isnan`` and ``nanmin``
    (each a pass, the first three with a 2-D temporary)."""
    copy = src.dtype != dtype or not src.flags.c_contiguous
    dst = np.empty(src.shape if copy else (0, 0), dtype=dtype)
    n_tasks = max(1, min(NMF_TASKS, src.shape[0], src.size // 65536))
    parts = run_tasks(_scan_task, n_tasks, n_threads, src, dst)
    return (dst if copy else src), int(sum(parts))
