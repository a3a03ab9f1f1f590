"""SGD epoch for :func:`factorkit.decomposition.factorize` (small dense matrices)."""

from __future__ import annotations

from factorkit.kernels._jit import jit

__all__ = ["factorize_sgd_epoch"]


@jit()
def factorize_sgd_epoch(rows, cols, values, order, U, V, learning_rate, regularization):
    """One pass of stochastic gradient descent over the observed entries in ``order``.

    For entry (i, j): ``e = r_ij - U[i] . V[j]``, then ``U[i] += lr (e V[j] - reg U[i])``
    and ``V[j] += lr (e U[i] - reg V[j])`` with the old ``U[i]``. Serial: the matrices
    are small and the result is repeatable for a fixed ``order``. Returns the sum of
    squared errors seen during the pass.
    """
    k = U.shape[1]
    sse = 0.0
    for p in order:
        i = rows[p]
        j = cols[p]
        pred = 0.0
        for t in range(k):
            pred += U[i, t] * V[j, t]
        e = values[p] - pred
        sse += e * e
        for t in range(k):
            u = U[i, t]
            v = V[j, t]
            U[i, t] = u + learning_rate * (e * v - regularization * u)
            V[j, t] = v + learning_rate * (e * u - regularization * v)
    return sse
