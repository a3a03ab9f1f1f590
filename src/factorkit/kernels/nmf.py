"""NMF and sparse low-rank kernels: coordinate descent sweeps and sparse products.

Every kernel works on one side of the factorization, ``X ~ W @ Ht.T``: the caller swaps
the roles (``X.T``, ``Ht``, ``W``) to update the other side. Rows of ``W`` are independent
given ``Ht``, so every kernel runs one row per ``prange`` iteration and has no races.
float32 and float64 arrays both compile; the caller keeps one dtype throughout.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from factorkit.kernels._jit import SAFE_FASTMATH, jit

__all__ = [
    "csr_matmul_dense",
    "csr_sampled_dots",
    "nmf_cd_rows",
    "nmf_masked_cd_rows",
]


@jit(parallel=True, fastmath=SAFE_FASTMATH)
def csr_matmul_dense(indptr, indices, data, B, out):  # pragma: no cover - compiled
    """``out = X @ B`` for the CSR matrix ``X`` (indptr, indices, data) and dense ``B``.

    ``out`` is (n_rows, k) and is overwritten; rows of ``out`` are written by one thread.
    """
    n_rows = out.shape[0]
    k = out.shape[1]
    for i in prange(n_rows):
        for t in range(k):
            out[i, t] = 0.0
        for p in range(indptr[i], indptr[i + 1]):
            j = indices[p]
            v = data[p]
            for t in range(k):
                out[i, t] += v * B[j, t]


@jit(parallel=True, fastmath=SAFE_FASTMATH)
def csr_sampled_dots(indptr, indices, W, Ht, out):  # pragma: no cover - compiled
    """``out[p] = W[i] . Ht[j]`` for each stored entry ``p`` = (i, j) of a CSR pattern.

    The model's value at the observed entries only (a sampled dense-dense product).
    """
    n_rows = W.shape[0]
    k = W.shape[1]
    for i in prange(n_rows):
        for p in range(indptr[i], indptr[i + 1]):
            j = indices[p]
            acc = 0.0
            for t in range(k):
                acc += W[i, t] * Ht[j, t]
            out[p] = acc


@jit(parallel=True, fastmath=SAFE_FASTMATH)
def nmf_cd_rows(W, HHt, XHt):  # pragma: no cover - compiled
    """One coordinate-descent sweep over every entry of ``W`` (Frobenius loss).

    Minimises ``0.5 ||X - W H||^2`` in each ``W[i, t]`` in turn, ``t = 0..k-1``, with
    ``HHt = H H^T`` (+ l2 on its diagonal) and ``XHt = X H^T`` (- l1), both fixed during
    the sweep. Row ``i`` reads and writes only ``W[i]``, so running rows in parallel gives
    the same result as the serial column-major order of Hsieh & Dhillon (2011).
    Returns the projected-gradient violation (sum of |pg|), the stopping statistic.
    """
    n_rows = W.shape[0]
    k = W.shape[1]
    viol = np.zeros(n_rows, dtype=np.float64)
    for i in prange(n_rows):
        v = 0.0
        for t in range(k):
            grad = -XHt[i, t]
            for r in range(k):
                grad += HHt[t, r] * W[i, r]
            pg = min(0.0, grad) if W[i, t] == 0.0 else grad
            v += abs(pg)
            hess = HHt[t, t]
            if hess != 0.0:
                W[i, t] = max(W[i, t] - grad / hess, 0.0)
        viol[i] = v
    return viol.sum()


@jit(parallel=True, fastmath=SAFE_FASTMATH)
def nmf_masked_cd_rows(
    indptr, indices, data, weights, W, Ht, l1, l2, l2_count, sweeps
):  # pragma: no cover - compiled
    """Coordinate descent on each row of ``W`` using only that row's observed entries.

    Row ``i`` solves ``min_{w >= 0} 0.5 sum_{j in obs(i)} c_ij (x_ij - w . h_j)^2 + l1
    |w|_1 + 0.5 (l2 + l2_count n_i) |w|^2`` (``n_i`` the row's observed count: ``l2_count``
    is a per-rating penalty, as SGD's weight decay) by ``sweeps`` passes of coordinate
    descent on its own k x k Gram matrix ``sum_j c_ij h_j h_j^T``: missing entries take
    no part in the objective (they are not zeros). ``weights`` holds ``c_ij`` aligned with
    ``data``, and then ``n_i = sum_j c_ij`` (an entry of weight 2 counts as two, in the
    loss and in the penalty); empty, every ``c_ij`` is 1 and the arithmetic is the
    unweighted one (same dtype, so no second compilation). Rows are independent.
    Returns the projected-gradient violation.
    """
    n_rows = W.shape[0]
    k = W.shape[1]
    weighted = len(weights) > 0
    viol = np.zeros(n_rows, dtype=np.float64)
    for i in prange(n_rows):
        G = np.zeros((k, k), dtype=W.dtype)
        b = np.zeros(k, dtype=W.dtype)
        wsum = 0.0  # float64: the weighted count n_i
        for p in range(indptr[i], indptr[i + 1]):
            j = indices[p]
            x = data[p]
            if weighted:
                c = weights[p]
                wsum += c
                for t in range(k):
                    h = Ht[j, t]
                    ch = c * h
                    b[t] += x * ch
                    for r in range(t, k):
                        G[t, r] += ch * Ht[j, r]
            else:
                for t in range(k):
                    h = Ht[j, t]
                    b[t] += x * h
                    for r in range(t, k):
                        G[t, r] += h * Ht[j, r]
        for t in range(k):
            for r in range(t):
                G[t, r] = G[r, t]
            if weighted:
                G[t, t] += l2 + l2_count * wsum
            else:
                G[t, t] += l2 + l2_count * (indptr[i + 1] - indptr[i])
            b[t] -= l1
        v = 0.0
        for s in range(sweeps):
            for t in range(k):
                grad = -b[t]
                for r in range(k):
                    grad += G[t, r] * W[i, r]
                if s == 0:
                    pg = min(0.0, grad) if W[i, t] == 0.0 else grad
                    v += abs(pg)
                hess = G[t, t]
                if hess != 0.0:
                    W[i, t] = max(W[i, t] - grad / hess, 0.0)
        viol[i] = v
    return viol.sum()
