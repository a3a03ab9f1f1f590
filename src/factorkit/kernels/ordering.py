"""Integer ids -> dense codes, and (row, column) pairs -> row-major sorted order.

These build :class:`~factorkit.data.Interactions` from raw columns: codes in sorted id
order by table lookup (mark the ids present, number them, look them up), then the
permutation that sorts the pairs by row and, within a row, by column, stably, so that
repeated pairs stay in input order next to each other.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from factorkit.kernels._jit import jit

__all__ = [
    "ids_lookup",
    "ids_mark",
    "pairs_bucket_rows",
    "pairs_sort_rows",
    "sorted_nondecreasing",
]


@jit(parallel=True)
def ids_mark(values, lo, present):  # pragma: no cover - compiled
    """``present[v - lo] = 1`` for every ``v`` in ``values``.

    Threads may write the same slot at once; they all write 1, so the race is harmless.
    """
    for j in prange(len(values)):
        present[values[j] - lo] = 1


@jit(parallel=True)
def ids_lookup(values, lo, table, codes):  # pragma: no cover - compiled
    """``codes[j] = table[values[j] - lo]``."""
    for j in prange(len(values)):
        codes[j] = table[values[j] - lo]


@jit()
def sorted_nondecreasing(a):  # pragma: no cover - compiled
    """Whether ``a[j] <= a[j + 1]`` throughout."""
    for j in range(1, len(a)):
        if a[j] < a[j - 1]:
            return False
    return True


@jit()
def pairs_bucket_rows(rows, indptr, order):  # pragma: no cover - compiled
    """Stable counting sort: ``order`` lists input positions grouped by row.

    ``indptr`` is the usual CSR row pointer (row ``r`` owns ``indptr[r]:indptr[r + 1]``).
    """
    fill = indptr[:-1].copy()
    for j in range(len(rows)):
        r = rows[j]
        order[fill[r]] = j
        fill[r] += 1


@jit(parallel=True)
def pairs_sort_rows(indptr, order, cols, rows_out, cols_out):  # pragma: no cover - compiled
    """Sort each row's entries by column, stably; returns whether a pair repeats.

    On entry ``order[indptr[r]:indptr[r + 1]]`` holds row ``r``'s input positions in input
    order; on exit they are sorted by ``cols`` (ties keep input order), ``cols_out`` holds
    the sorted columns and ``rows_out`` the row of every entry. Positions must be < 2**32.
    """
    n_rows = len(indptr) - 1
    repeats = np.zeros(n_rows, dtype=np.bool_)
    for r in prange(n_rows):
        a = indptr[r]
        b = indptr[r + 1]
        in_order = True
        for j in range(a, b):
            rows_out[j] = r
            cols_out[j] = cols[order[j]]
            if j > a and cols_out[j] <= cols_out[j - 1]:
                in_order = False
        if in_order:
            continue
        keys = np.empty(b - a, dtype=np.int64)
        for j in range(a, b):
            keys[j - a] = (np.int64(cols_out[j]) << 32) | np.int64(order[j])
        keys.sort()
        for t in range(b - a):
            j = a + t
            order[j] = keys[t] & 0xFFFFFFFF
            cols_out[j] = keys[t] >> 32
            if t > 0 and cols_out[j] == cols_out[j - 1]:
                repeats[r] = True
    return repeats.any()
