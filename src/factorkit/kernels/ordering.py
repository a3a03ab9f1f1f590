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
    "pairs_keys_in_place",
    "pairs_radix_keys",
    "pairs_sort_rows",
    "sorted_nondecreasing",
    "take",
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


@jit(parallel=True)
def pairs_keys_in_place(cols, keys):  # pragma: no cover - compiled
    """``keys[j] = cols[j] << 32 | j``: the pairs' sort keys when rows already run in order."""
    for j in prange(len(cols)):
        keys[j] = (np.int64(cols[j]) << 32) | j


@jit()
def pairs_radix_keys(rows, cols, row_ptr, col_ptr, keys):  # pragma: no cover - compiled
    """Row-major sort keys ``cols[j] << 32 | j`` for pairs in any order: two stable
    counting sorts, by column then by row, each reading one stream and writing one.

    ``row_ptr`` / ``col_ptr`` are the cumulative counts of ``rows`` / ``cols`` (CSR
    pointers). On exit row ``r``'s keys fill ``keys[row_ptr[r]:row_ptr[r + 1]]`` in
    column order, ties in input order: :func:`pairs_sort_rows` then only decodes them.
    """
    by_col = np.empty(len(rows), dtype=np.int64)  # row << 32 | position, grouped by column
    fill = col_ptr[:-1].copy()
    for j in range(len(rows)):
        c = cols[j]
        by_col[fill[c]] = (np.int64(rows[j]) << 32) | j
        fill[c] += 1
    fill = row_ptr[:-1].copy()
    for c in range(len(col_ptr) - 1):
        high = np.int64(c) << 32
        for t in range(col_ptr[c], col_ptr[c + 1]):
            r = by_col[t] >> 32
            keys[fill[r]] = high | (by_col[t] & 0xFFFFFFFF)
            fill[r] += 1


@jit(parallel=True)
def pairs_sort_rows(indptr, keys, order, rows_out, cols_out):  # pragma: no cover - compiled
    """Sort each row's keys; returns whether a (row, column) pair repeats.

    On entry ``keys[indptr[r]:indptr[r + 1]]`` holds row ``r``'s ``col << 32 | position``
    keys; on exit they are sorted, so ties in the column keep input order (the position
    breaks them). ``order`` gets the input positions in sorted order, ``cols_out`` the
    columns and ``rows_out`` the row of every entry. Positions must be < 2**32.
    """
    n_rows = len(indptr) - 1
    repeats = np.zeros(n_rows, dtype=np.bool_)
    for r in prange(n_rows):
        a = indptr[r]
        b = indptr[r + 1]
        for j in range(a + 1, b):
            if keys[j] < keys[j - 1]:
                keys[a:b].sort()
                break
        for j in range(a, b):
            rows_out[j] = r
            order[j] = keys[j] & 0xFFFFFFFF
            cols_out[j] = keys[j] >> 32
            if j > a and cols_out[j] == cols_out[j - 1]:
                repeats[r] = True
    return repeats.any()


@jit(parallel=True)
def take(values, order, out):  # pragma: no cover - compiled
    """``out[j] = values[order[j]]``, in parallel (NumPy's fancy indexing is serial)."""
    for j in prange(len(order)):
        out[j] = values[order[j]]
