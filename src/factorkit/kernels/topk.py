"""Top-k selection over blocks of scores, excluding seen items; parallel over rows."""

from __future__ import annotations

import numpy as np
from numba import prange

from factorkit._threads import run_tasks
from factorkit.kernels._jit import jit

#: columns tested at once against the heap's floor before any of them is looked at
_CHUNK = 32


@jit()
def _topk_row(
    scores, r, seen_indptr, seen_indices, excluded, k, out_idx, out_val, skip
):  # pragma: no cover
    """Top-``k`` of row ``r`` into ``out_idx[r]``/``out_val[r]``; ``skip`` is scratch.

    One function (marking seen items, the chunked floor test, the heap, the sorted
    output) because the heap and its floor live across the chunk loop: helpers would
    pass them through memory on every chunk of the row.
    """
    n_cols = scores.shape[1]
    heap_v = np.empty(k, dtype=scores.dtype)
    heap_i = np.empty(k, dtype=np.int64)
    for p in range(seen_indptr[r], seen_indptr[r + 1]):
        skip[seen_indices[p]] = True
    size = 0
    # a score must beat the floor to enter: the heap's root once the heap is full (in the
    # scores' dtype, so the test below vectorises without conversions)
    floor = np.full(1, -np.inf, dtype=scores.dtype)[0]
    for c0 in range(0, n_cols, _CHUNK):
        c1 = min(c0 + _CHUNK, n_cols)
        # most chunks hold nothing above the floor: one vectorised test skips them
        hit = False
        for c in range(c0, c1):
            hit |= scores[r, c] > floor
        if not hit:
            continue
        for c in range(c0, c1):
            v = scores[r, c]
            if not v > floor or skip[c] or excluded[c]:  # also drops NaN: it never ranks
                continue
            if size < k:
                # sift up in a min-heap keyed by (value, -index)
                j = size
                size += 1
                while j > 0:
                    parent = (j - 1) // 2
                    if heap_v[parent] > v or (heap_v[parent] == v and heap_i[parent] < c):
                        heap_v[j] = heap_v[parent]
                        heap_i[j] = heap_i[parent]
                        j = parent
                    else:
                        break
                heap_v[j] = v
                heap_i[j] = c
            else:
                # beats the root (a later column with an equal score never does): replace
                # the root and sift down
                j = 0
                while True:
                    left = 2 * j + 1
                    if left >= size:
                        break
                    child = left
                    right = left + 1
                    if right < size and (
                        heap_v[right] < heap_v[left]
                        or (heap_v[right] == heap_v[left] and heap_i[right] > heap_i[left])
                    ):
                        child = right
                    if heap_v[child] < v or (heap_v[child] == v and heap_i[child] > c):
                        heap_v[j] = heap_v[child]
                        heap_i[j] = heap_i[child]
                        j = child
                    else:
                        break
                heap_v[j] = v
                heap_i[j] = c
            if size == k:
                floor = heap_v[0]
    for p in range(seen_indptr[r], seen_indptr[r + 1]):
        skip[seen_indices[p]] = False  # leave the scratch clean for the next row
    # sort the heap best first: (value desc, index asc)
    order = np.empty(size, dtype=np.int64)
    for a in range(size):
        order[a] = a
    for a in range(1, size):
        x = order[a]
        b = a - 1
        while b >= 0 and (
            heap_v[order[b]] < heap_v[x]
            or (heap_v[order[b]] == heap_v[x] and heap_i[order[b]] > heap_i[x])
        ):
            order[b + 1] = order[b]
            b -= 1
        order[b + 1] = x
    for a in range(k):
        if a < size:
            out_idx[r, a] = heap_i[order[a]]
            out_val[r, a] = heap_v[order[a]]
        else:
            out_idx[r, a] = -1
            out_val[r, a] = -np.inf


@jit(parallel=True)
def topk_scores(
    scores, seen_indptr, seen_indices, excluded, k, out_idx, out_val
):  # pragma: no cover
    """Select the ``k`` best columns of each row of ``scores`` (n_rows x n_cols).

    ``seen_indptr``/``seen_indices`` is a CSR structure (one row per score row) of columns
    to skip for that row; ``excluded`` (bool, n_cols) marks columns skipped for every row.
    Results go to ``out_idx`` (int64) / ``out_val`` (same dtype as scores), best first.
    Rows with fewer than ``k`` candidates are padded with index -1 and value -inf.
    Ties are broken by the lower column index, so results are deterministic.
    Rows are split into up to 64 contiguous chunks, each with its own scratch, which the
    thread pool shares out.
    """
    n_rows, n_cols = scores.shape
    n_chunks = max(1, min(n_rows, 64))
    # scratch made outside the parallel loop: numba may hoist allocations out of a prange
    # body, and each chunk needs its own
    skips = np.zeros((n_chunks, n_cols), dtype=np.bool_)
    for t in prange(n_chunks):
        lo = t * n_rows // n_chunks
        hi = (t + 1) * n_rows // n_chunks
        for r in range(lo, hi):
            _topk_row(scores, r, seen_indptr, seen_indices, excluded, k, out_idx, out_val, skips[t])


@jit()
def _topk_factors_task(
    t,
    n_tasks,
    block_rows,
    user_vecs,
    item_t,
    item_bias,
    seen_indptr,
    seen_indices,
    excluded,
    k,
    out_idx,
    out_val,
):  # pragma: no cover
    """Blocks ``t * n_blocks // n_tasks ...`` of :func:`topk_factors`, with this task's own
    scratch (a separate function, so numba cannot hoist it out of the parallel loop)."""
    n_rows = user_vecs.shape[0]
    n_cols = item_t.shape[1]
    n_blocks = (n_rows + block_rows - 1) // block_rows
    scores = np.empty((block_rows, n_cols), dtype=user_vecs.dtype)
    skip = np.zeros(n_cols, dtype=np.bool_)
    for b in range(t * n_blocks // n_tasks, (t + 1) * n_blocks // n_tasks):
        lo = b * block_rows
        hi = min(n_rows, lo + block_rows)
        block = scores[: hi - lo]
        np.dot(user_vecs[lo:hi], item_t, block)
        if len(item_bias):
            for r in range(hi - lo):
                for c in range(n_cols):
                    block[r, c] += item_bias[c]
        ptr = seen_indptr[lo : hi + 1]
        for r in range(hi - lo):
            _topk_row(
                block, r, ptr, seen_indices, excluded, k, out_idx[lo:hi], out_val[lo:hi], skip
            )


def topk_factors(
    user_vecs,
    item_t,
    item_bias,
    block_rows,
    seen_indptr,
    seen_indices,
    excluded,
    k,
    out_idx,
    out_val,
    n_threads,
):
    """Top-``k`` items of every user straight from the factors.

    Scores ``user_vecs @ item_t + item_bias`` (``item_t`` is the item factors transposed,
    C- or Fortran-ordered, e.g. the ``.T`` view of C-ordered factors; ``item_bias`` may be
    empty) are computed ``block_rows`` users at a time, one block per task: the block's
    matrix product (BLAS, on the task's thread: call with BLAS limited to one thread, as
    ``using_threads`` does) and its top-k selection run back to back while the block is
    in cache, and only one block per thread is ever held. ``seen_indptr`` (n_rows + 1) /
    ``seen_indices``, ``excluded``, ``k``, ``out_idx`` and ``out_val``: as in
    :func:`topk_scores`. ``n_threads`` is the resolved thread count.

    A plain function: the tasks (compiled, GIL-free) run on Python threads
    (:func:`factorkit._threads.run_tasks`), which costs no parallel-region compilation
    and never spins. With one thread, or fewer than two blocks of rows (one user's
    ``recommend``, a new user's), the one task runs on the calling thread. Each row is
    selected by one task either way, so the result does not depend on the path taken.
    """
    n_rows = user_vecs.shape[0]
    args = (
        block_rows, user_vecs, item_t, item_bias, seen_indptr, seen_indices, excluded, k,
        out_idx, out_val,
    )  # fmt: skip
    if n_threads <= 1 or n_rows < 2 * block_rows:
        _topk_factors_task(0, 1, *args)
        return
    n_tasks = min((n_rows + block_rows - 1) // block_rows, 64)
    run_tasks(_topk_factors_task, n_tasks, n_threads, *args)
