"""The one linear-algebra module of the kernels: Gram matrices and Cholesky solves.

ALS (:mod:`factorkit.kernels.als`) and implicit ALS
(:mod:`factorkit.kernels.implicit_als`) solve one small symmetric positive definite
system per row. Both build it from the row's gathered factor rows with the same Gram
kernel and solve it with the same Cholesky:

- :func:`gram_update`: ``g += X^T diag(w) X`` over a range of rows of ``X``, in ``X``'s
  dtype (float32 by default), on the full square;
- :func:`gram_float64`: ``a = X^T diag(w) X`` in float64 (lower triangle valid), built
  from blocks of ``GRAM_FLUSH_ROWS`` rows, each summed by :func:`gram_update` in ``X``'s
  dtype and then added into ``a``: float32 rounding is bounded by one block's sum;
- :func:`gram_gemm`: ``a = XW^T X`` in float64 (lower triangle valid), for ``X`` and a
  row-scaled copy ``XW`` gathered into contiguous buffers: one BLAS GEMM per block of
  ``GRAM_FLUSH_ROWS`` rows, in ``X``'s dtype, added into ``a`` (the same rounding bound as
  :func:`gram_float64`, at GEMM speed; callers run under one BLAS thread);
- :func:`cholesky_solve`: ``a s = rhs`` for SPD ``a`` (lower triangle read; factorised in
  ``a``'s dtype: float64, or float32 where a caller asks for speed over accuracy),
  reporting a matrix that is not numerically positive definite instead of failing;
- :func:`nnls_solve`: the same system's quadratic minimised with the variables from
  ``first`` on held ``>= 0`` (non-negative ALS), by block principal pivoting on Cholesky
  solves of sub-systems.

Every function here runs on the calling thread and allocates nothing, so callers give each
parallel task its own scratch; results depend only on the inputs, never on the thread.
"""

from __future__ import annotations

import numpy as np

from factorkit.kernels._jit import SAFE_FASTMATH, jit

__all__ = [
    "GRAM_FLUSH_ROWS",
    "NNLS_CD_SWEEPS",
    "cholesky_solve",
    "gram_float64",
    "gram_gemm",
    "gram_update",
    "nnls_solve",
]

#: rows accumulated in the input dtype before a partial Gram is added into float64
GRAM_FLUSH_ROWS = 256

#: projected coordinate-descent sweeps of :func:`nnls_solve`'s fallback (reached only when
#: pivoting does not settle within its iteration bound)
NNLS_CD_SWEEPS = 200


@jit(fastmath=SAFE_FASTMATH)
def gram_update(x, w, lo, hi, d, g):  # pragma: no cover
    """``g[:d, :d] += sum_{j in [lo, hi)} w[j] x[j, :d] x[j, :d]^T`` (full square).

    Eight rows per pass, so that each load and store of ``g[p, :]`` feeds eight FMAs; the
    full square (rather than a triangle) keeps every inner loop the same length, so it
    vectorises cleanly, which more than pays for the doubled arithmetic. ``w[j] = 1``
    gives the plain ``X^T X`` exactly (multiplying by one is exact).
    """
    j = lo
    while j + 8 <= hi:
        for p in range(d):
            x0 = w[j] * x[j, p]
            x1 = w[j + 1] * x[j + 1, p]
            x2 = w[j + 2] * x[j + 2, p]
            x3 = w[j + 3] * x[j + 3, p]
            x4 = w[j + 4] * x[j + 4, p]
            x5 = w[j + 5] * x[j + 5, p]
            x6 = w[j + 6] * x[j + 6, p]
            x7 = w[j + 7] * x[j + 7, p]
            for q in range(d):
                g[p, q] += (
                    x0 * x[j, q]
                    + x1 * x[j + 1, q]
                    + x2 * x[j + 2, q]
                    + x3 * x[j + 3, q]
                    + x4 * x[j + 4, q]
                    + x5 * x[j + 5, q]
                    + x6 * x[j + 6, q]
                    + x7 * x[j + 7, q]
                )
        j += 8
    while j < hi:
        for p in range(d):
            xp = w[j] * x[j, p]
            for q in range(d):
                g[p, q] += xp * x[j, q]
        j += 1


@jit(fastmath=SAFE_FASTMATH)
def gram_float64(x, w, n, d, a, g):  # pragma: no cover
    """``a[:d, :d] = x[:n, :d]^T diag(w[:n]) x[:n, :d]`` in float64, lower triangle valid.

    ``g`` is a ``(d, d)`` scratch array of ``x``'s dtype: blocks of ``GRAM_FLUSH_ROWS``
    rows are summed there by :func:`gram_update` and added into ``a``, which bounds the
    rounding of a float32 ``x`` to one block's sum.
    """
    for p in range(d):
        for q in range(p + 1):
            a[p, q] = 0.0
    for lo in range(0, n, GRAM_FLUSH_ROWS):
        hi = min(n, lo + GRAM_FLUSH_ROWS)
        g[:d, :d] = 0.0
        gram_update(x, w, lo, hi, d, g)
        for p in range(d):
            for q in range(p + 1):
                a[p, q] += g[p, q]


@jit(fastmath=SAFE_FASTMATH)
def gram_gemm(xw, x, n, a, g):  # pragma: no cover
    """``a = xw[:n]^T x[:n]`` in float64, lower triangle valid, by BLAS matrix products.

    ``x`` and ``xw`` are C-ordered ``(>= n, d)`` arrays of one dtype (``xw`` is ``x``
    itself for a plain Gram, or ``x`` with rows scaled by weights); ``g`` is a ``(d, d)``
    scratch of that dtype. Each block of ``GRAM_FLUSH_ROWS`` rows is one GEMM into ``g``,
    then added into ``a``: float32 rounding is bounded by one block's sum, as in
    :func:`gram_float64`, while the products run at BLAS speed (several times the
    hand-written loops: docs/benchmarks.md, "Kernel design notes"). The GEMM runs on the
    calling thread when BLAS is held to one thread (``using_threads``); its result does not
    depend on where the buffers lie (GEMM packs its operands).
    """
    d = x.shape[1]
    for p in range(d):
        for q in range(p + 1):
            a[p, q] = 0.0
    for lo in range(0, n, GRAM_FLUSH_ROWS):
        hi = min(n, lo + GRAM_FLUSH_ROWS)
        np.dot(xw[lo:hi].T, x[lo:hi], g)
        for p in range(d):
            for q in range(p + 1):
                a[p, q] += g[p, q]


@jit(fastmath=SAFE_FASTMATH)
def cholesky_solve(a, m, rhs, low, s):  # pragma: no cover
    """Solve ``a[:m, :m] s = rhs[:m]`` for SPD ``a`` (lower triangle read).

    The factorisation runs in ``a``'s dtype, which ``low`` shares: float64 everywhere by
    default; float32 (with float64 ``rhs`` and ``s``, so the substitutions stay float64)
    where a caller trades accuracy for speed (ImplicitALS at large ``k``:
    ``implicit_als_cholesky_rows``). ``low`` (at least ``m x m``) receives the lower
    Cholesky factor ``L`` (``a = L L^T``), column by column; then ``s`` by forward and
    back substitution. Returns False, with ``s`` undefined, when a pivot is not positive
    (``a`` is not numerically positive definite, or holds NaN): callers turn that into
    NaN results so that divergence shows.

    A column's entries are computed eight rows at a time, so that each load of ``L[j, :]``
    feeds eight independent dot products (one at a time is bound by the latency of its
    reduction: about 2x slower at ``m = 65``; four at a time 10-20% slower at ``m = 129,
    257``). Each entry's arithmetic is unchanged.
    """
    one = a.dtype.type(1.0)  # the factorisation runs in a's dtype (float64 or float32)
    for j in range(m):
        acc = a[j, j]
        for p in range(j):
            acc -= low[j, p] * low[j, p]
        if not acc > 0.0:
            return False
        ljj = np.sqrt(acc)
        low[j, j] = ljj
        inv = one / ljj
        i = j + 1
        while i + 8 <= m:
            c0 = a[i, j]
            c1 = a[i + 1, j]
            c2 = a[i + 2, j]
            c3 = a[i + 3, j]
            c4 = a[i + 4, j]
            c5 = a[i + 5, j]
            c6 = a[i + 6, j]
            c7 = a[i + 7, j]
            for p in range(j):
                lj = low[j, p]
                c0 -= low[i, p] * lj
                c1 -= low[i + 1, p] * lj
                c2 -= low[i + 2, p] * lj
                c3 -= low[i + 3, p] * lj
                c4 -= low[i + 4, p] * lj
                c5 -= low[i + 5, p] * lj
                c6 -= low[i + 6, p] * lj
                c7 -= low[i + 7, p] * lj
            low[i, j] = c0 * inv
            low[i + 1, j] = c1 * inv
            low[i + 2, j] = c2 * inv
            low[i + 3, j] = c3 * inv
            low[i + 4, j] = c4 * inv
            low[i + 5, j] = c5 * inv
            low[i + 6, j] = c6 * inv
            low[i + 7, j] = c7 * inv
            i += 8
        while i < m:
            acc2 = a[i, j]
            for p in range(j):
                acc2 -= low[i, p] * low[j, p]
            low[i, j] = acc2 * inv
            i += 1
    # the substitutions in rhs's dtype (names of their own: numba types a name once)
    for i in range(m):
        v = rhs[i]
        for p in range(i):
            v -= low[i, p] * s[p]
        s[i] = v / low[i, i]
    for i in range(m - 1, -1, -1):
        v = s[i]
        for p in range(i + 1, m):
            v -= low[p, i] * s[p]
        s[i] = v / low[i, i]
    return True


# no fastmath: with reassociation LLVM vectorises every reduction here, which made the
# ALS row kernel that inlines this compile about 3 s (CPU) longer for no measurable speed
@jit()
def nnls_solve(a, m, first, rhs, s, max_rounds, free, sub, sub_rhs, sub_s, low):  # pragma: no cover
    """Minimise ``s^T a s / 2 - rhs . s`` subject to ``s[first:m] >= 0``, in place in ``s``.

    ``a[:m, :m]`` is SPD (float64, lower triangle read): the normal matrix of a ridge
    problem, so this is its non-negative least squares. On entry the positive entries of
    ``s[:m]`` are the first guess of the free set ``F`` (variables ``< first`` are always
    free): the ALS kernel passes the row's current factors, ``fold_in`` the unconstrained
    solution. Any guess reaches the same (unique) minimiser; a good one saves rounds.

    Block principal pivoting (Kim and Park, SIAM J. Sci. Comput. 2011): solve
    ``a_FF s_F = rhs_F`` by :func:`cholesky_solve` with ``s = 0`` off ``F``, then swap
    every KKT violator (``s_i < 0`` in ``F``, gradient ``(a s - rhs)_i < -tol`` off it)
    between the sets; when the number of violators has not fallen for three rounds, swap
    only the largest-index one (Murty's rule, which ends in finitely many steps for an SPD
    ``a``). It stops with the KKT conditions met: ``s_i >= 0`` and gradient ``0`` (to
    rounding) on ``F``, ``s_i = 0`` and gradient ``>= -tol`` off it,
    ``tol = 1e-10 max |rhs|``; so it is exact up to the Cholesky's rounding, typically
    after one to three solves (at most three on MovieLens small, k=50, started from the
    unconstrained solution). After ``max_rounds`` rounds without settling (callers pass
    ``4 m + 10``; not seen on real data) the iterate is clipped to ``>= 0`` and polished
    by ``NNLS_CD_SWEEPS`` sweeps of projected coordinate descent, which keep it feasible
    and never increase the objective.

    Scratch: ``free`` (int64, ``>= 2 m``), ``sub``, ``low`` (float64, ``>= m x m``),
    ``sub_rhs``, ``sub_s`` (float64, ``>= m``); nothing is allocated. Returns the number of
    Cholesky solves (``> 0``), ``0`` when the fallback ran, or ``-1`` when a sub-system was
    not numerically positive definite (``s`` is then undefined; callers report NaN).
    """
    tol = 0.0
    for i in range(m):
        tol = max(tol, abs(rhs[i]))
    tol *= 1e-10
    for i in range(m):
        free[i] = 1 if i < first or s[i] > 0.0 else 0
    best = m + 1  # fewest violators seen
    backup = 3  # full swaps left before Murty's single swap
    for it in range(max_rounds):
        # free[m:m + nf] lists the free variables in increasing order, so that the
        # sub-system's lower triangle is read from a's
        nf = 0
        for i in range(m):
            if free[i]:
                free[m + nf] = i
                nf += 1
        for p in range(nf):
            ip = free[m + p]
            sub_rhs[p] = rhs[ip]
            for q in range(p + 1):
                sub[p, q] = a[ip, free[m + q]]
        if not cholesky_solve(sub, nf, sub_rhs, low, sub_s):
            return -1
        for i in range(m):
            s[i] = 0.0
        for p in range(nf):
            s[free[m + p]] = sub_s[p]
        # sub_rhs is free again: it marks this round's violators
        n_viol = 0
        last = -1
        for i in range(first, m):
            if free[i]:
                bad = s[i] < 0.0
            else:  # s is zero off the free set: the gradient sums over it only
                grad = -rhs[i]
                for p in range(nf):
                    j = free[m + p]
                    grad += (a[i, j] if i >= j else a[j, i]) * sub_s[p]
                bad = grad < -tol
            sub_rhs[i] = 1.0 if bad else 0.0
            if bad:
                n_viol += 1
                last = i
        if n_viol == 0:
            return it + 1
        if n_viol < best:
            best = n_viol
            backup = 3
        elif backup > 0:
            backup -= 1
        else:
            free[last] = 1 - free[last]
            continue
        for i in range(first, m):
            if sub_rhs[i] > 0.0:
                free[i] = 1 - free[i]
    for i in range(first, m):
        s[i] = max(s[i], 0.0)
    for _ in range(NNLS_CD_SWEEPS):
        for i in range(m):
            grad = -rhs[i]
            for j in range(m):
                grad += (a[i, j] if i >= j else a[j, i]) * s[j]
            step = s[i] - grad / a[i, i]
            s[i] = max(step, 0.0) if i >= first else step
    return 0
