"""Integer ids -> dense codes, and (row, column) pairs -> row-major sorted order.

These build :class:`~factorkit.data.Interactions` from raw columns: codes in sorted id
order by table lookup (mark the ids present, number them, look them up), then the
permutation that sorts the pairs by row and, within a row, by column, stably, so that
repeated pairs stay in input order next to each other: a counting sort by row into an
int32 permutation, then each row sorted in cache. Scratch: the permutation and the
sorted columns (4 bytes per pair each), which are also the output.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from factorkit.kernels._jit import jit

__all__ = [
    "ids_lookup",
    "ids_mark",
    "pairs_sort_within_rows",
    "rows_counting_order",
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


@jit()
def rows_counting_order(rows, row_ptr, order):  # pragma: no cover - compiled
    """``order`` = the positions ``j`` grouped by ``rows[j]``, in input order within a row
    (a stable counting sort; ``row_ptr`` holds the cumulative counts of ``rows``).

    One pass that reads ``rows`` and writes ``order``: no key array (the int64 keys of a
    comparison or radix sort would cost 8 bytes per pair, twice the output).
    """
    fill = row_ptr[:-1].copy()
    for j in range(len(rows)):
        r = rows[j]
        order[fill[r]] = j
        fill[r] += 1


@jit(parallel=True)
def pairs_sort_within_rows(indptr, cols, order, cols_out):  # pragma: no cover - compiled
    """Sort each row's pairs by column, stably; returns whether a (row, column) pair repeats.

    On entry ``order[indptr[r]:indptr[r + 1]]`` holds row ``r``'s input positions in
    increasing order (:func:`rows_counting_order`). On exit ``cols_out[t]`` is
    ``cols[order[t]]`` and each row runs in column order, ties in input order. A row out
    of order is sorted through ``col << 32 | position`` keys of its own (a row's worth
    of scratch per thread). Positions must be < 2**31.
    """
    n_rows = len(indptr) - 1
    repeats = np.zeros(n_rows, dtype=np.bool_)
    for r in prange(n_rows):
        a = indptr[r]
        b = indptr[r + 1]
        ordered = True
        for t in range(a, b):
            cols_out[t] = cols[order[t]]
            if t > a and cols_out[t] <= cols_out[t - 1]:
                ordered = False
        if not ordered:
            keys = np.empty(b - a, dtype=np.int64)
            for t in range(a, b):
                keys[t - a] = (np.int64(cols_out[t]) << 32) | order[t]
            keys.sort()
            for t in range(a, b):
                cols_out[t] = keys[t - a] >> 32
                order[t] = keys[t - a] & 0xFFFFFFFF
            for t in range(a + 1, b):
                if cols_out[t] == cols_out[t - 1]:
                    repeats[r] = True
    return repeats.any()


@jit(parallel=True)
def take(values, order, out):  # pragma: no cover - compiled
    """``out[j] = values[order[j]]``, in parallel (NumPy's fancy indexing is serial)."""
    for j in prange(len(order)):
        out[j] = values[order[j]]
