"""HybridMF's alternating-least-squares loss (``loss="ials"``): the row products of the
implicit-ALS objective that the feature-embedding half-steps need.

With one side's effective vectors ``Y`` fixed (``n_fixed x k``), every row ``r`` of the
other side (its vector ``z_r``) has the quadratic objective of
:mod:`factorkit.kernels.implicit_als`,

    L_r(z) = sum_{j in S_r} c_j (1 - z . y_j)^2 + w0 sum_{j not in S_r} (z . y_j)^2
           = z^T A_r z - 2 b_r . z + sum_j c_j,
    A_r = G + sum_{j in S_r} (c_j - w0) y_j y_j^T,   b_r = sum_{j in S_r} c_j y_j,

with ``G = w0 Y^T Y`` (the Gram trick). HybridMF's ``z_r = e_r + x_r W`` (id embedding
plus feature embeddings) couples the rows through ``W``, so the feature step runs
conjugate gradient on ``W`` over all rows at once; each of its products ``A_r z_r`` for
every row is the dense ``Z G`` (one matrix product, by the caller) plus the sparse part
that :func:`ials_row_products` adds: one pass over the interactions, ``O(nnz k)``.

Rows are dealt round-robin to a fixed number of tasks (each row handled by one task,
from the same inputs), so results and the objective (per-task sums added in a fixed
order) do not depend on the thread count.
"""

from __future__ import annotations

import math

from factorkit._threads import run_tasks
from factorkit.kernels._jit import SAFE_FASTMATH, jit

__all__ = ["ials_row_products"]

#: rows are dealt round-robin to at most this many tasks (fixed: no thread dependence)
_TASKS = 64


@jit(fastmath=SAFE_FASTMATH)
def _products_task(
    task, n_tasks, indptr, indices, conf, fixed, w0, z, rhs, out
):  # pragma: no cover
    """Rows ``task, task + n_tasks, ...`` of :func:`ials_row_products`."""
    n_rows = len(indptr) - 1
    k = fixed.shape[1]
    obj = 0.0
    for r in range(task, n_rows, n_tasks):
        for j in range(indptr[r], indptr[r + 1]):
            c = conf[j]
            if c <= 0:
                continue
            i = indices[j]
            s = 0.0
            for q in range(k):
                s += fixed[i, q] * z[r, q]
            coef = (c - w0) * s - rhs * c
            for q in range(k):
                out[r, q] += coef * fixed[i, q]
            obj += (c - w0) * s * s - 2.0 * c * s + c
    return obj


def ials_row_products(indptr, indices, conf, fixed, w0, z, rhs, out, n_threads):
    """``out[r] += sum_j (c_j - w0) (y_j . z_r) y_j - rhs * b_r`` for every row, in place.

    With ``out = z G`` on entry this leaves ``A_r z_r - rhs * b_r`` in ``out``: the
    gradient of ``L_r / 2`` at ``z_r`` for ``rhs = 1``, the Hessian product ``A_r z_r``
    (a conjugate-gradient step's) for ``rhs = 0``.

    Parameters
    ----------
    indptr, indices : CSR structure of the rows (``indices`` index rows of ``fixed``).
    conf : (nnz,) float32 confidences; ``<= 0`` marks a stored non-positive (skipped).
    fixed : (n_fixed, k) float32, the other side's effective vectors.
    w0 : float, the unobserved cells' weight.
    z : (n_rows, k) float32, the rows' vectors (or CG directions).
    rhs : float, 1.0 or 0.0.
    out : (n_rows, k) float32, added to.
    n_threads : int.

    Returns
    -------
    float
        ``sum_r sum_j [(c_j - w0)(y_j . z_r)^2 - 2 c_j (y_j . z_r) + c_j]``: with ``z``
        the rows' vectors, ``sum_r L_r(z_r)`` less the Gram part ``sum_r z_r^T G z_r``.
    """
    n_rows = len(indptr) - 1
    n_tasks = max(1, min(_TASKS, n_rows))
    parts = run_tasks(
        _products_task, n_tasks, n_threads, indptr, indices, conf, fixed, w0, z, rhs, out
    )
    return math.fsum(parts)
