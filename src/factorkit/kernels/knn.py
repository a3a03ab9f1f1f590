"""Neighbour-model kernels: sparse similarities kept to the top neighbours, and scoring.

Every matrix is a CSR triple ``(indptr, indices, values)``. For an item-based model the
*entities* are items and the *other side* users; for a user-based model the reverse.
Kernels see positions and numbers only. Work is split into a fixed list of tasks over
contiguous rows, each with its own scratch, run on Python threads by
:func:`factorkit._threads.run_tasks` (no parallel region to compile, no spinning under
contention); every output row is written by one task only, so there are no races and
results do not depend on the thread count.

Two ways to the neighbour table. :func:`knn_neighbours` compares query rows with every
entity, one row at a time, and keeps each row's best ``keep`` (any query: a new user,
the other side's ``similar_*``). A fit, whose queries are the entities themselves, can
instead compute each pair once (:func:`knn_pair_similarities`: row ``r`` against the
entities after it only, half the co-rating work), mirror the pairs into full rows
(:func:`knn_mirror`) and order each row by similarity (:func:`knn_sort_rows`, a radix
sort): no heap, and no dense ``rows x keep`` output. Both give the same similarities
(the same sums in the same order) and the same order (most similar first, ties: lower
position first). A rating fit that keeps every neighbour stops before the sort, and
mirrors only the pairs' transposed half (``knn_mirror(..., upper=False)``): rating
prediction reads such rows in two parts and in any order
(:func:`knn_predict_pairs_unordered`, the same bits), and :func:`knn_join_rows` then
:func:`knn_sort_rows` give the table when something else needs it.
"""

from __future__ import annotations

import numpy as np

from factorkit._threads import run_tasks
from factorkit.kernels._jit import jit

__all__ = [
    "knn_join_rows",
    "knn_mirror",
    "knn_neighbours",
    "knn_pair_similarities",
    "knn_predict_pairs",
    "knn_predict_pairs_unordered",
    "knn_scores_item",
    "knn_scores_sum",
    "knn_scores_user",
    "knn_sort_rows",
]


# ---------------------------------------------------------------------- similarities
@jit()
def _width(kind, weighted):  # pragma: no cover - compiled
    """Columns of an entity's accumulator (see :func:`_add`)."""
    return 2 + (1 if weighted else 0) + (2 if kind == 1 else 0)


@jit()
def _add(acc, b, xa, xb, c, kind, weighted):  # pragma: no cover - compiled
    """Add one co-rating ``(xa, xb)`` of weight ``c`` to entity ``b``'s accumulator.

    Columns: 0 the dot product ``sum c xa xb`` (MSD: ``sum c (xa - xb)^2``, as Surprise
    sums it), 1 the number of shared raters, then ``sum c`` (weighted only), then ``sum
    c xa^2`` and ``sum c xb^2`` (``kind`` 1 only): as few as the similarity needs, so
    that the accumulators of every entity stay in cache.
    """
    if kind == 2:
        d = xa - xb
        acc[b, 0] += c * d * d
    else:
        acc[b, 0] += c * xa * xb
    acc[b, 1] += 1.0
    if weighted:
        acc[b, 2] += c
    if kind == 1:
        j = 3 if weighted else 2
        acc[b, j] += c * xa * xa
        acc[b, j + 1] += c * xb * xb


@jit()
def _finish(acc, b, kind, weighted, shrinkage, norms):  # pragma: no cover - compiled
    """Entity ``b``'s similarity from its accumulator (see :func:`knn_neighbours`), which
    is reset to zero; ``norms`` is the product of the two whole-vector norms (kind 0)."""
    n = acc[b, 1]
    if kind == 2:
        mass = acc[b, 2] if weighted else n
        sim = 1.0 / (1.0 + acc[b, 0] / mass)
    elif kind == 1:
        j = 3 if weighted else 2
        denom = np.sqrt(acc[b, j] * acc[b, j + 1])
        sim = acc[b, 0] / denom if denom > 0 else 0.0
    else:
        sim = acc[b, 0] / norms if norms > 0 else 0.0
    if shrinkage > 0:
        sim *= n / (n + shrinkage)
    for j in range(acc.shape[1]):
        acc[b, j] = 0.0
    return sim


def knn_neighbours(
    q_indptr, q_indices, q_values, q_weights, q_self, q_norms,
    t_indptr, t_indices, t_values, t_weights, t_norms, n_entities,
    kind, shrinkage, keep, out_idx, out_sim, out_count, n_threads,
):  # fmt: skip
    """Top-``keep`` positive similarities of each query row against every entity.

    Query row ``r`` is a sparse vector over the other side (``q_*``; for fitting, the
    entities' own rows). ``t_*`` is the other-side-major matrix (row ``u``: the entities
    ``u`` touched, with values). The similarity of ``r`` and entity ``b`` is, by ``kind``:
    0, ``dot / (q_norms[r] * t_norms[b])`` (whole vectors: implicit's cosine; ones for a
    plain dot product); 1, ``dot / (norm_r * norm_b)`` with the norms taken over the
    shared support only (Surprise's cosine and Pearson); 2, ``1 / (1 + msd)`` with
    ``msd`` the mean squared difference over the shared support (Surprise's MSD). It is
    shrunk by ``n / (n + shrinkage)`` (``n``: size of the shared support). Entity
    ``q_self[r]`` (-1: none) is left out; only similarities > 0 are kept. Row ``r``'s
    neighbours go to ``out_idx[r, :out_count[r]]``/``out_sim``, most similar first (ties:
    lower position first).

    ``q_weights`` / ``t_weights`` (aligned with ``q_values`` / ``t_values``; both empty:
    unweighted) weight each co-rating by the product of its two weights ``c = w_a w_b``
    (as often as the pair would occur were each rating repeated by its weight): the dot
    product and the norms become ``sum c xa xb``, ``sum c xa^2``, ``sum c xb^2`` and
    MSD's mean is over ``sum c``. The support ``n`` of the shrinkage stays the number of
    shared raters. ``n_threads``: resolved thread count.
    """
    n_rows = len(q_indptr) - 1
    n_tasks = max(1, min(n_rows, 4 * n_threads))
    arrays = (
        q_indptr, q_indices, q_values, q_weights, q_self, q_norms, t_indptr, t_indices,
        t_values, t_weights, t_norms, out_idx, out_sim, out_count,
    )  # fmt: skip
    task = _NEIGHBOURS_TASKS[int(kind), len(t_weights) > 0]
    run_tasks(task, n_tasks, n_threads, arrays, n_entities, shrinkage, keep)


@jit()
def _neighbours_task(
    task, n_tasks, arrays, n_entities, shrinkage, keep, kind, weighted
):  # pragma: no cover - compiled
    """Rows ``task * n_rows // n_tasks ...`` of :func:`knn_neighbours`, with this task's
    own scratch (an accumulator row per entity, interleaved: one cache line per update).

    Compiled once per similarity: the ``_neighbours_*`` entry points pass ``kind`` and
    ``weighted`` as constants, which numba types as literals and specialises this
    function and its helpers on, so that a fit compiles only its own similarity and the
    accumulator's width and every branch on the similarity are constants of the code
    (about twice as fast as testing them per co-rating). Called with run-time values it
    would still be correct, one slower compilation for all."""
    q_indptr, q_indices, q_values, q_weights, q_self, q_norms = arrays[:6]
    t_indptr, t_indices, t_values, t_weights, t_norms = arrays[6:11]
    out_idx, out_sim, out_count = arrays[11:]
    n_rows = len(q_indptr) - 1
    acc = np.zeros((n_entities, _width(kind, weighted)), np.float64)
    seen = np.empty(n_entities, np.uint32)  # uint32: the radix sort of knn_sort_rows
    cv = np.empty(n_entities, np.float32)
    ci = np.empty(n_entities, np.int32)
    tmp = np.empty(n_entities, np.uint32)
    tmp_v = np.empty(n_entities, np.int32)
    hist = np.empty((4, 256), np.int64)
    for r in range(task * n_rows // n_tasks, (task + 1) * n_rows // n_tasks):
        co = 0  # co-ratings of this row: what decides how to find the touched entities
        for p in range(q_indptr[r], q_indptr[r + 1]):
            co += t_indptr[q_indices[p] + 1] - t_indptr[q_indices[p]]
        dense = _DENSE * co > n_entities
        n_touched = np.int64(0)  # not the literal 0: one compilation of the callees
        for p in range(q_indptr[r], q_indptr[r + 1]):
            u = q_indices[p]
            xa = q_values[p]
            wa = q_weights[p] if weighted else 1.0
            n_touched = _accumulate(acc, seen, n_touched, dense, t_indices, t_values,
                                    t_weights, t_indptr[u], t_indptr[u + 1], xa, wa, kind,
                                    weighted)  # fmt: skip
        n_touched = _in_order(acc, seen, n_touched, dense, 0, n_entities, tmp, ci, tmp_v, hist)
        size = 0
        for t in range(n_touched):
            b = seen[t]
            sim = _finish(acc, b, kind, weighted, shrinkage, q_norms[r] * t_norms[b])
            if sim > 0 and b != q_self[r]:
                cv[size] = sim
                ci[size] = b
                size += 1
        out_count[r] = _keep_best(cv, ci, size, keep, out_idx[r], out_sim[r])


#: a row whose co-ratings times this exceed the entities it can meet finds the touched
#: ones by a scan of the accumulators (no test per co-rating, whose outcome - first
#: touch or not - the branch predictor cannot guess); fewer, by a list and a radix sort
_DENSE = 4


@jit()
def _accumulate(
    acc, seen, n_touched, dense, t_indices, t_values, t_weights, lo, hi, xa, wa, kind, weighted
):  # pragma: no cover - compiled
    """Add the co-ratings ``t_*[lo:hi]`` with ``(xa, wa)`` to the accumulators; unless
    ``dense``, append the entities touched for the first time to ``seen``. Returns the
    number in ``seen``."""
    if dense:
        for s in range(lo, hi):
            _add(acc, t_indices[s], xa, t_values[s], wa * t_weights[s] if weighted else 1.0,
                 kind, weighted)  # fmt: skip
        return n_touched
    for s in range(lo, hi):
        b = t_indices[s]
        if acc[b, 1] == 0:
            seen[n_touched] = b
            n_touched += 1
        _add(acc, b, xa, t_values[s], wa * t_weights[s] if weighted else 1.0, kind, weighted)
    return n_touched


@jit()
def _in_order(acc, seen, n_touched, dense, lo, hi, tmp, vals, tmp_v, hist):  # pragma: no cover
    """Put the touched entities (all in ``lo:hi``) in ``seen``, in position order, so that
    ties keep the lower position; returns their number. ``dense``: a branch-free scan of
    the accumulators; else ``seen[:n_touched]`` holds them, radix-sorted here (``tmp``,
    ``vals``, ``tmp_v``: scratch; the sort carries ``vals`` along, unused, so that it is
    the one compiled sort of :func:`knn_sort_rows`)."""
    if dense:
        n_touched = 0
        for b in range(lo, hi):
            seen[n_touched] = b
            n_touched += acc[b, 1] > 0
    else:
        _radix_sort(seen, vals, n_touched, tmp, tmp_v, hist)
    return n_touched


def knn_pair_similarities(
    bounds, indptr, indices, values, weights, after, t_indptr, t_indices, t_values,
    t_weights, norms, kind, shrinkage, n_threads, with_rows=False,
):  # fmt: skip
    """Each pair of entities once: the positive similarities of row ``r`` with the
    entities ``b > r``, for every row.

    The entity-major matrix (``indptr``, ``indices``, ``values``, ``weights``) and its
    transpose (``t_*``), as :func:`knn_neighbours`' query and ``t_*`` when the queries are
    the entities themselves; ``after[p]`` is the position in ``t_indices`` of entry ``p``
    (so that ``t_indices[after[p] + 1 : t_indptr[u + 1]]`` are the entities after ``r``
    that rated ``u``); ``norms``: the entities' norms (kind 0). Similarities as in
    :func:`knn_neighbours` (the same sums, in the same order). Rows are split into tasks
    at ``bounds`` (``bounds[0] = 0``, ``bounds[-1]`` = the number of rows; equal work per
    task, since early rows have more pairs). Returns one ``(counts, indices, sims, below)``
    per task: its rows' numbers of pairs, their partners (ascending within a row) and
    float32 similarities, row after row, and how many of its pairs each entity is the
    partner in (what :func:`knn_mirror` needs to place them).

    Each task has room for every pair it can meet, bounded by its co-ratings and by the
    triangle. ``with_rows``: the tasks write into one NumPy buffer and the call also
    returns ``(start, indices, sims)``, row ``r``'s pairs being ``indices[start[r] :
    start[r] + counts of r]`` in it (the rows in place, gaps between the tasks' shares),
    for a caller that keeps them. NumPy asks for transparent huge pages: first touching
    the buffer costs a few dozen page faults, not one per 4 KiB page as the tasks' own
    arrays do (about 0.06 s of system time on a MovieLens small item fold), but each
    task's share is resident in whole 2 MiB pages (up to 4 MiB more per task).
    """
    bounds = np.asarray(bounds, np.int64)
    n = len(indptr) - 1
    # the co-ratings of each entry with the entities after its row, summed per task
    co = t_indptr[np.asarray(indices, np.int64) + 1] - after - 1
    co_cum = np.concatenate([[0], np.cumsum(co)])
    cap_co = np.diff(co_cum[indptr[bounds]])
    tri_cum = np.concatenate([[0], np.cumsum(np.arange(n - 1, -1, -1, dtype=np.int64))])
    cap_tri = np.diff(tri_cum[bounds])
    offsets = np.zeros(len(bounds), np.int64)
    np.cumsum(np.minimum(cap_co, cap_tri), out=offsets[1:])
    out_i = np.empty(offsets[-1] if with_rows else 0, np.int32)
    out_s = np.empty(offsets[-1] if with_rows else 0, np.float32)
    arrays = (bounds, indptr, indices, values, weights, after, t_indptr, t_indices, t_values,
              t_weights, norms, out_i, out_s, offsets)  # fmt: skip
    task = _PAIRS_TASKS[int(kind), len(t_weights) > 0]
    results = run_tasks(task, len(bounds) - 1, n_threads, arrays, shrinkage)
    parts = [(counts, idx[:size], sims[:size], below)
             for counts, size, below, idx, sims in results]  # fmt: skip
    if not with_rows:
        return parts
    start = np.empty(n, np.int64)
    for t, (counts, *_) in enumerate(results):
        start[bounds[t] : bounds[t + 1]] = offsets[t] + np.cumsum(counts) - counts
    return parts, (start, out_i, out_s)


@jit()
def _pairs_task(task, n_tasks, arrays, shrinkage, kind, weighted):  # pragma: no cover
    """Rows ``bounds[task]:bounds[task + 1]`` of :func:`knn_pair_similarities`; compiled
    once per similarity, as :func:`_neighbours_task`."""
    bounds, indptr, indices, values, weights, after = arrays[:6]
    t_indptr, t_indices, t_values, t_weights, norms, all_i, all_s, offsets = arrays[6:]
    lo, hi = bounds[task], bounds[task + 1]
    n = len(indptr) - 1
    # this task's room: every pair it can meet (see knn_pair_similarities)
    if len(all_i):
        out_i = all_i[offsets[task] : offsets[task + 1]]
        out_s = all_s[offsets[task] : offsets[task + 1]]
    else:
        out_i = np.empty(offsets[task + 1] - offsets[task], np.int32)
        out_s = np.empty(offsets[task + 1] - offsets[task], np.float32)
    counts = np.zeros(hi - lo, np.int64)
    below = np.zeros(n, np.int64)  # pairs per partner: the mirrored rows' share of this task
    acc = np.zeros((n, _width(kind, weighted)), np.float64)
    seen = np.empty(n, np.uint32)  # uint32: the radix sort of knn_sort_rows
    tmp = np.empty(n, np.uint32)
    vals = np.empty(n, np.int32)
    tmp_v = np.empty(n, np.int32)
    hist = np.empty((4, 256), np.int64)
    size = 0
    for r in range(lo, hi):
        co = 0
        for p in range(indptr[r], indptr[r + 1]):
            co += t_indptr[indices[p] + 1] - after[p] - 1
        dense = _DENSE * co > n - r - 1
        n_touched = np.int64(0)  # not the literal 0: one compilation of the callees
        for p in range(indptr[r], indptr[r + 1]):
            u = indices[p]
            wa = weights[p] if weighted else 1.0
            n_touched = _accumulate(acc, seen, n_touched, dense, t_indices, t_values,
                                    t_weights, after[p] + 1, t_indptr[u + 1], values[p], wa,
                                    kind, weighted)  # fmt: skip
        n_touched = _in_order(acc, seen, n_touched, dense, r + 1, n, tmp, vals, tmp_v, hist)
        start = size
        for t in range(n_touched):
            b = seen[t]
            sim = _finish(acc, b, kind, weighted, shrinkage, norms[r] * norms[b])
            if sim > 0:
                out_i[size] = b
                out_s[size] = sim
                below[b] += 1
                size += 1
        counts[r - lo] = size - start
    return counts, size, below, out_i, out_s


def knn_mirror(bounds, parts, n_threads, upper=True):
    """Full neighbour rows from each pair once: ``(indptr, indices, keys)``.

    ``parts`` and ``bounds``: :func:`knn_pair_similarities`' result and task bounds.
    Pair ``(r, b)``, ``b > r``, goes to row ``r`` and, mirrored, to row ``b``; each row
    holds its partners before it, then those after it, so that every row comes out in
    ascending position order. ``keys`` are the bit complements of the float32
    similarities (uint32; for positive floats, ascending keys are descending
    similarities: :func:`knn_sort_rows` orders by them). The parts are placed in
    ``n_threads`` groups of consecutive parts, each at offsets that the groups before it
    leave free: no group writes where another does. ``upper`` False: only the mirrored
    pairs (row ``b`` holds its partners before it), half the writes, for a caller that
    keeps the pairs' own rows where :func:`knn_pair_similarities` left them.
    """
    n = int(bounds[-1])
    keep_upper = bool(upper)
    below = np.stack([part[3] for part in parts]) if parts else np.zeros((0, n), np.int64)
    upper = np.concatenate([part[0] for part in parts]) if parts else np.zeros(0, np.int64)
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(below.sum(axis=0) + (upper if keep_upper else 0), out=indptr[1:])
    # task t's first free slot in row b: after the lower pairs of the tasks before it
    starts = indptr[:-1] + np.cumsum(below, axis=0) - below
    indices = np.empty(indptr[-1], np.int32)
    keys = np.empty(indptr[-1], np.uint32)

    # groups of consecutive parts with about equal numbers of pairs (the parts' work
    # was balanced for the pair pass, not for this one)
    n_groups = max(1, min(len(parts), n_threads))
    pairs = np.cumsum([len(part[1]) for part in parts], dtype=np.int64)
    total = pairs[-1] if len(pairs) else 0
    # group g starts at its first part past g / n_groups of the pairs (parts without
    # pairs before it have nothing to place)
    first = np.searchsorted(pairs, total * np.arange(n_groups) / n_groups, "right")
    first = np.append(first, len(parts)).astype(np.int64)

    def task(g, n_groups):
        # consecutive parts in one pass over the output: one part's pairs per row are
        # few, and every part's pass touches most of the output's cache lines
        if first[g] >= first[g + 1]:
            return
        fill = starts[first[g]]  # this group's own row of ``starts``
        for t in range(first[g], first[g + 1]):
            counts, idx, sims, _ = parts[t]
            _mirror_task(bounds[t], counts, idx, sims.view(np.uint32), indptr, fill, indices,
                         keys, keep_upper)  # fmt: skip

    run_tasks(task, n_groups, n_threads)
    return indptr, indices, keys


@jit()
def _mirror_task(lo, counts, idx, bits, indptr, fill, out_idx, out_key, upper):  # pragma: no cover
    """One task's pairs of :func:`knn_mirror` (rows ``lo ...``; ``bits``: the float32
    similarities' bit patterns; ``fill``: its next free slot in each row; ``upper``:
    also each pair's own row)."""
    p = 0
    for j in range(len(counts)):
        r = lo + j
        base = indptr[r + 1] - counts[j]
        for q in range(counts[j]):
            b = idx[p]
            key = np.uint32(0xFFFFFFFF) - bits[p]
            out_idx[fill[b]] = r
            out_key[fill[b]] = key
            fill[b] += 1
            if upper:
                out_idx[base + q] = b
                out_key[base + q] = key
            p += 1


def knn_join_rows(a_indptr, a_indices, a_sims, b_start, b_end, b_indices, b_sims, n_threads):
    """Rows made of two parts: row ``r`` of the CSR ``a_*`` then ``b_indices[b_start[r] :
    b_end[r]]`` (with ``b_sims``): ``(indptr, indices, keys)`` as :func:`knn_mirror`
    returns them (``keys``: the similarities' bit complements). :func:`knn_mirror` with
    ``upper=False`` and :func:`knn_pair_similarities`' rows give the parts; the rows
    come out in position order."""
    n = len(a_indptr) - 1
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.diff(a_indptr) + (b_end - b_start), out=indptr[1:])
    indices = np.empty(indptr[-1], np.int32)
    keys = np.empty(indptr[-1], np.uint32)
    run_tasks(_join_task, max(1, min(n, 4 * n_threads)), n_threads, a_indptr, a_indices,
              a_sims.view(np.uint32), b_start, b_end, b_indices, b_sims.view(np.uint32),
              indptr, indices, keys)  # fmt: skip
    return indptr, indices, keys


@jit()
def _join_task(
    task, n_tasks, a_indptr, a_indices, a_bits, b_start, b_end, b_indices, b_bits, indptr,
    indices, keys,
):  # fmt: skip  # pragma: no cover - compiled
    """Rows ``task * n // n_tasks ...`` of :func:`knn_join_rows`."""
    n = len(a_indptr) - 1
    for r in range(task * n // n_tasks, (task + 1) * n // n_tasks):
        o = indptr[r]
        for s in range(a_indptr[r], a_indptr[r + 1]):
            indices[o] = a_indices[s]
            keys[o] = np.uint32(0xFFFFFFFF) - a_bits[s]
            o += 1
        for s in range(b_start[r], b_end[r]):
            indices[o] = b_indices[s]
            keys[o] = np.uint32(0xFFFFFFFF) - b_bits[s]
            o += 1


def knn_sort_rows(bounds, indptr, keys, indices, n_threads):
    """Sort each CSR row by ``keys`` (uint32) ascending, in place, carrying ``indices``;
    stable (rows in position order keep equal keys in position order). With ``keys`` the
    bit-complement of positive float32 similarities, rows come out most similar first.
    Rows are split into tasks at ``bounds``."""
    run_tasks(_sort_task, len(bounds) - 1, n_threads, bounds, indptr, keys, indices)


@jit()
def _sort_task(task, n_tasks, bounds, indptr, keys, indices):  # pragma: no cover - compiled
    """Rows ``bounds[task]:bounds[task + 1]`` of :func:`knn_sort_rows`."""
    lo, hi = bounds[task], bounds[task + 1]
    longest = 0
    for r in range(lo, hi):
        longest = max(longest, indptr[r + 1] - indptr[r])
    tmp_k = np.empty(longest, np.uint32)
    tmp_v = np.empty(longest, np.int32)
    hist = np.empty((4, 256), np.int64)
    for r in range(lo, hi):
        a, b = indptr[r], indptr[r + 1]
        _radix_sort(keys[a:b], indices[a:b], b - a, tmp_k, tmp_v, hist)


@jit()
def _radix_sort(keys, vals, m, tmp_k, tmp_v, hist):  # pragma: no cover - compiled
    """Stable ascending sort of ``keys[:m]`` (unsigned integers below 2^32), carrying
    ``vals[:m]``; ``tmp_*`` and ``hist`` (4 x 256) are scratch.

    Least significant byte first, skipping the bytes that every key shares (positions
    below 65,536 have two; similarities in (0, 1] share most of their exponent);
    insertion sort for short rows. Hand-written: numba's sorts cost seconds of
    first-run compilation. One signature for every caller (callers without values
    carry scratch): each extra specialisation costs about a second of it."""
    if m <= 32:
        for j in range(1, m):
            k = keys[j]
            v = vals[j]
            i = j - 1
            while i >= 0 and keys[i] > k:
                keys[i + 1] = keys[i]
                vals[i + 1] = vals[i]
                i -= 1
            keys[i + 1] = k
            vals[i + 1] = v
        return
    for d in range(4):
        for b in range(256):
            hist[d, b] = 0
    for j in range(m):  # every byte's histogram in one read
        k = keys[j]
        hist[0, k & 255] += 1
        hist[1, (k >> 8) & 255] += 1
        hist[2, (k >> 16) & 255] += 1
        hist[3, (k >> 24) & 255] += 1
    in_tmp = False
    for d in range(4):
        shift = 8 * d
        offsets = hist[d]
        if offsets[(keys[0] >> shift) & 255] == m:
            continue  # every key has this byte: nothing moves
        total = 0
        for b in range(256):
            c = offsets[b]
            offsets[b] = total
            total += c
        if in_tmp:
            _scatter(tmp_k, tmp_v, keys, vals, m, shift, offsets)
        else:
            _scatter(keys, vals, tmp_k, tmp_v, m, shift, offsets)
        in_tmp = not in_tmp
    if in_tmp:  # element loops: an array slice copy compiles numba's shape-error path
        for j in range(m):
            keys[j] = tmp_k[j]
            vals[j] = tmp_v[j]


@jit()
def _scatter(src_k, src_v, dst_k, dst_v, m, shift, offsets):  # pragma: no cover - compiled
    for j in range(m):
        d = (src_k[j] >> shift) & 255
        dst_k[offsets[d]] = src_k[j]
        dst_v[offsets[d]] = src_v[j]
        offsets[d] += 1


@jit()
def _worse(v_a, i_a, v_b, i_b):  # pragma: no cover - compiled
    """Candidate ``a`` ranks below ``b``: lower similarity, or equal and a later position."""
    return v_a < v_b or (v_a == v_b and i_a > i_b)


@jit()
def _sift_down(vals, idx, j, size):  # pragma: no cover - compiled
    """Restore the min-heap (worst candidate at the root) below position ``j``."""
    v = vals[j]
    c = idx[j]
    while True:
        child = 2 * j + 1
        if child >= size:
            break
        if child + 1 < size and _worse(vals[child + 1], idx[child + 1], vals[child], idx[child]):
            child += 1
        if not _worse(vals[child], idx[child], v, c):
            break
        vals[j] = vals[child]
        idx[j] = idx[child]
        j = child
    vals[j] = v
    idx[j] = c


#: buckets of :func:`_bucket`; candidate sets left above this size after
#: :func:`_prune` are ordered by a heap, smaller ones by insertion
_N_BUCKETS, _SORT_SMALL = 257, 96


@jit()
def _bucket(b):  # pragma: no cover - compiled
    """A bucket in ``0 .. 256`` of a positive float32 with bits ``b``, non-decreasing in
    its value: the exponent and 4 mantissa bits of values in [2^-16, 2) (one bucket for
    each 1/16 of an octave), the smaller ones in bucket 0, the larger in 256."""
    q = np.int64(b >> 19) - 1776  # 1776 = 111 << 4: exponent of 2^-16, mantissa 0
    return 0 if q < 0 else (256 if q > 256 else q)


@jit()
def _prune(cv, ci, bits, size, k, counts):  # pragma: no cover - compiled
    """Drop, in place and keeping the order of the rest, candidates that cannot be among
    the ``k`` most similar: those in a lower bucket (:func:`_bucket`) than the ``k``-th
    best's, whose values are all below it. Returns how many are left (``>= k``)."""
    for b in range(_N_BUCKETS):
        counts[b] = 0
    for j in range(size):
        counts[_bucket(bits[j])] += 1
    above = 0
    b = _N_BUCKETS - 1
    while above + counts[b] < k:
        above += counts[b]
        b -= 1
    m = 0
    for j in range(size):
        if _bucket(bits[j]) >= b:
            cv[m] = cv[j]
            ci[m] = ci[j]
            m += 1
    return m


@jit()
def _sort_small(cv, ci, size):  # pragma: no cover - compiled
    """Stable insertion sort of ``cv[:size]`` descending, carrying ``ci``."""
    for j in range(1, size):
        v = cv[j]
        c = ci[j]
        i = j - 1
        while i >= 0 and cv[i] < v:
            cv[i + 1] = cv[i]
            ci[i + 1] = ci[i]
            i -= 1
        cv[i + 1] = v
        ci[i + 1] = c


@jit()
def _keep_best(cv, ci, size, keep, out_idx, out_sim):  # pragma: no cover - compiled
    """Write the best ``min(size, keep)`` candidates ``cv[:size]``/``ci[:size]`` to
    ``out_idx``/``out_sim``, most similar first (ties: lower position first); returns
    their number.

    A min-heap of the best so far, built in place in the prefix of ``cv``/``ci`` (the
    heap never grows past the candidate being read), then emptied worst first into the
    output's tail. Hand-written rather than ``np.partition`` + ``np.argsort``: those cost
    seconds of first-run compilation and this is the kernel's only use of them.
    """
    m = 0
    for t in range(size):
        v = cv[t]
        c = ci[t]
        if m < keep:
            j = m  # sift up
            m += 1
            while j > 0:
                parent = (j - 1) // 2
                if not _worse(v, c, cv[parent], ci[parent]):
                    break
                cv[j] = cv[parent]
                ci[j] = ci[parent]
                j = parent
            cv[j] = v
            ci[j] = c
        elif _worse(cv[0], ci[0], v, c):
            cv[0] = v
            ci[0] = c
            _sift_down(cv, ci, 0, m)
    for last in range(m - 1, -1, -1):
        out_idx[last] = ci[0]
        out_sim[last] = cv[0]
        cv[0] = cv[last]
        ci[0] = ci[last]
        _sift_down(cv, ci, 0, last)
    return m


# The similarity kernels' entry points, one per (kind, weighted): each passes its two
# constants on, which numba types as literals: only the similarity a call needs is
# compiled, specialised on them (no numba.literally needed).
@jit()
def _neighbours_dot(task, n_tasks, arrays, n_entities, shrinkage, keep):  # pragma: no cover
    _neighbours_task(task, n_tasks, arrays, n_entities, shrinkage, keep, 0, False)


@jit()
def _neighbours_dot_w(task, n_tasks, arrays, n_entities, shrinkage, keep):  # pragma: no cover
    _neighbours_task(task, n_tasks, arrays, n_entities, shrinkage, keep, 0, True)


@jit()
def _neighbours_shared(task, n_tasks, arrays, n_entities, shrinkage, keep):  # pragma: no cover
    _neighbours_task(task, n_tasks, arrays, n_entities, shrinkage, keep, 1, False)


@jit()
def _neighbours_shared_w(task, n_tasks, arrays, n_entities, shrinkage, keep):  # pragma: no cover
    _neighbours_task(task, n_tasks, arrays, n_entities, shrinkage, keep, 1, True)


@jit()
def _neighbours_msd(task, n_tasks, arrays, n_entities, shrinkage, keep):  # pragma: no cover
    _neighbours_task(task, n_tasks, arrays, n_entities, shrinkage, keep, 2, False)


@jit()
def _neighbours_msd_w(task, n_tasks, arrays, n_entities, shrinkage, keep):  # pragma: no cover
    _neighbours_task(task, n_tasks, arrays, n_entities, shrinkage, keep, 2, True)


@jit()
def _pairs_dot(task, n_tasks, arrays, shrinkage):  # pragma: no cover - compiled
    return _pairs_task(task, n_tasks, arrays, shrinkage, 0, False)


@jit()
def _pairs_dot_w(task, n_tasks, arrays, shrinkage):  # pragma: no cover - compiled
    return _pairs_task(task, n_tasks, arrays, shrinkage, 0, True)


@jit()
def _pairs_shared(task, n_tasks, arrays, shrinkage):  # pragma: no cover - compiled
    return _pairs_task(task, n_tasks, arrays, shrinkage, 1, False)


@jit()
def _pairs_shared_w(task, n_tasks, arrays, shrinkage):  # pragma: no cover - compiled
    return _pairs_task(task, n_tasks, arrays, shrinkage, 1, True)


@jit()
def _pairs_msd(task, n_tasks, arrays, shrinkage):  # pragma: no cover - compiled
    return _pairs_task(task, n_tasks, arrays, shrinkage, 2, False)


@jit()
def _pairs_msd_w(task, n_tasks, arrays, shrinkage):  # pragma: no cover - compiled
    return _pairs_task(task, n_tasks, arrays, shrinkage, 2, True)


_NEIGHBOURS_TASKS = {
    (0, False): _neighbours_dot,
    (0, True): _neighbours_dot_w,
    (1, False): _neighbours_shared,
    (1, True): _neighbours_shared_w,
    (2, False): _neighbours_msd,
    (2, True): _neighbours_msd_w,
}
_PAIRS_TASKS = {
    (0, False): _pairs_dot,
    (0, True): _pairs_dot_w,
    (1, False): _pairs_shared,
    (1, True): _pairs_shared_w,
    (2, False): _pairs_msd,
    (2, True): _pairs_msd_w,
}


# ---------------------------------------------------------------------- scoring
def knn_predict_pairs(
    targets, queries, nbr_indptr, nbr_indices, nbr_sims,
    lk_indptr, lk_indices, lk_residuals, lk_weights, n_cols, k, out_avg, out_found, n_threads,
):  # fmt: skip
    """Weighted average of neighbours' residuals for (target, query) pairs.

    For pair ``p``: walk the neighbours of entity ``targets[p]`` (most similar first) and
    keep the first ``k`` that have a value in row ``queries[p]`` of the lookup CSR
    (``n_cols`` columns); ``out_avg[p] = sum(sim * residual) / sum(sim)`` over them and
    ``out_found[p]`` their number (0: no neighbour voted, ``out_avg`` is 0). Pairs sorted
    by query are fastest: each query's row is spread into a dense marker once per run.
    ``lk_weights`` (aligned with ``lk_residuals``; empty: all 1) weight each vote:
    ``sum(sim * w * residual) / sum(sim * w)``.
    """
    n_tasks = max(1, min(len(targets), 4 * n_threads))
    run_tasks(
        _predict_pairs_task, n_tasks, n_threads, targets, queries, nbr_indptr, nbr_indices,
        nbr_sims, lk_indptr, lk_indices, lk_residuals, lk_weights, n_cols, k, out_avg,
        out_found,
    )  # fmt: skip


@jit()
def _neighbour_vote(
    t, nbr_indptr, nbr_indices, nbr_sims, mark, wmark, weighted, k
):  # pragma: no cover
    """``(similarity-weighted mean of the marked values, votes)`` over target ``t``'s first
    ``k`` neighbours whose value is marked (not NaN); a mean of 0.0 without any vote.
    With ``weighted``, each vote's similarity is scaled by the neighbour's mark weight."""
    num = 0.0
    den = 0.0
    found = 0
    for s in range(nbr_indptr[t], nbr_indptr[t + 1]):
        v = mark[nbr_indices[s]]
        if v == v:
            if weighted:
                sw = nbr_sims[s] * wmark[nbr_indices[s]]
                num += sw * v
                den += sw
            else:
                num += nbr_sims[s] * v
                den += nbr_sims[s]
            found += 1
            if found == k:
                break
    return (num / den if den > 0 else 0.0), found


@jit()
def _predict_pairs_task(
    task, n_tasks, targets, queries, nbr_indptr, nbr_indices, nbr_sims,
    lk_indptr, lk_indices, lk_residuals, lk_weights, n_cols, k, out_avg, out_found,
):  # fmt: skip  # pragma: no cover - compiled
    """Pairs ``task * n // n_tasks ...`` of :func:`knn_predict_pairs`."""
    n = len(targets)
    weighted = len(lk_weights) > 0
    mark = np.full(n_cols, np.nan)
    wmark = np.zeros(n_cols if weighted else 0)
    current = -1
    for p in range(task * n // n_tasks, (task + 1) * n // n_tasks):
        q = queries[p]
        if q != current:
            if current >= 0:
                for s in range(lk_indptr[current], lk_indptr[current + 1]):
                    mark[lk_indices[s]] = np.nan
            for s in range(lk_indptr[q], lk_indptr[q + 1]):
                mark[lk_indices[s]] = lk_residuals[s]
                if weighted:
                    wmark[lk_indices[s]] = lk_weights[s]
            current = q
        out_avg[p], out_found[p] = _neighbour_vote(
            targets[p], nbr_indptr, nbr_indices, nbr_sims, mark, wmark, weighted, k
        )


def knn_predict_pairs_unordered(
    targets, queries, nbr_indptr, nbr_indices, nbr_sims, up_start, up_end, up_indices,
    up_sims, lk_indptr, lk_indices, lk_residuals, lk_weights, n_entities, k, out_avg,
    out_found, n_threads,
):  # fmt: skip
    """:func:`knn_predict_pairs` for neighbour rows in any order (a fit's unsorted rows).

    The same votes (the ``k`` most similar neighbours of ``targets[p]`` that have a
    value in row ``queries[p]``, ties: lower position first) summed in the same order
    (most similar first), so the same bits as :func:`knn_predict_pairs` on the rows
    sorted. Where that walks a sorted row until ``k`` voted, this spreads the target's
    row into a dense similarity array (once per run of equal targets: pairs sorted by
    target are fastest), reads the similarity of each entity in the query's row and keeps
    the best ``k`` in a heap (read in position order, a candidate enters a full heap only
    if strictly more similar than its worst). The lookup rows (``lk_*``) must be sorted by position
    (ties in the heap are broken by the entry's place in the row). ``n_entities``: the
    number of neighbour rows. A target's row may come in two parts (:func:`knn_join_rows`):
    the CSR ``nbr_*``, then ``up_indices[up_start[t] : up_end[t]]`` with ``up_sims`` (a
    fit's mirrored pairs and its pairs in place, so that the table is never joined on
    this path); ``up_start == up_end``: one part.
    """
    n_tasks = max(1, min(len(targets), 4 * n_threads))
    run_tasks(
        _predict_unordered_task, n_tasks, n_threads, targets, queries, nbr_indptr,
        nbr_indices, nbr_sims, up_start, up_end, up_indices, up_sims, lk_indptr, lk_indices,
        lk_residuals, lk_weights, n_entities, k, out_avg, out_found,
    )  # fmt: skip


@jit()
def _predict_unordered_task(
    task, n_tasks, targets, queries, nbr_indptr, nbr_indices, nbr_sims, up_start, up_end,
    up_indices, up_sims, lk_indptr, lk_indices, lk_residuals, lk_weights, n_entities, k,
    out_avg, out_found,
):  # fmt: skip  # pragma: no cover - compiled
    """Pairs ``task * n // n_tasks ...`` of :func:`knn_predict_pairs_unordered`."""
    n = len(targets)
    weighted = len(lk_weights) > 0
    row = np.zeros(n_entities, np.float32)  # the current target's similarities; 0: none
    longest = 0
    for q in range(len(lk_indptr) - 1):
        longest = max(longest, lk_indptr[q + 1] - lk_indptr[q])
    cv = np.empty(longest + 1, np.float32)  # candidates: similarity, place in the row
    ci = np.empty(longest + 1, np.int32)
    bits = cv.view(np.uint32)
    counts = np.empty(_N_BUCKETS, np.int64)
    best_i = np.empty(max(k, 1), np.int32)
    best_s = np.empty(max(k, 1), np.float32)
    current = -1
    for p in range(task * n // n_tasks, (task + 1) * n // n_tasks):
        t = targets[p]
        if t != current:
            if current >= 0:
                for s in range(nbr_indptr[current], nbr_indptr[current + 1]):
                    row[nbr_indices[s]] = 0.0
                for s in range(up_start[current], up_end[current]):
                    row[up_indices[s]] = 0.0
            for s in range(nbr_indptr[t], nbr_indptr[t + 1]):
                row[nbr_indices[s]] = nbr_sims[s]
            for s in range(up_start[t], up_end[t]):
                row[up_indices[s]] = up_sims[s]
            current = t
        base = lk_indptr[queries[p]]
        size = 0
        for s in range(base, lk_indptr[queries[p] + 1]):
            sim = row[lk_indices[s]]
            if sim > 0:  # kept similarities are > 0; the target itself is not kept
                cv[size] = sim
                ci[size] = s - base
                size += 1
        if size > k:
            size = _prune(cv, ci, bits, size, k, counts)
        if size > _SORT_SMALL:
            m = _keep_best(cv, ci, size, k, best_i, best_s)
        else:
            m = min(size, k)
            _sort_small(cv, ci, size)
            for j in range(m):
                best_i[j] = ci[j]
                best_s[j] = cv[j]
        num = 0.0
        den = 0.0
        for j in range(m):  # most similar first: knn_predict_pairs' order of summation
            s = base + best_i[j]
            if weighted:
                sw = best_s[j] * lk_weights[s]
                num += sw * lk_residuals[s]
                den += sw
            else:
                num += best_s[j] * lk_residuals[s]
                den += best_s[j]
        out_avg[p] = num / den if den > 0 else 0.0
        out_found[p] = m


def knn_scores_item(
    row_indptr, row_indices, row_residuals, row_weights, nbr_indptr, nbr_indices, nbr_sims,
    k, out_avg, out_found, n_threads,
):  # fmt: skip
    """Item-based averages for every item of each row (a user's rated items).

    Row ``r`` holds a user's items and residuals (``row_*``). For each item ``i``, the
    first ``k`` neighbours of ``i`` (most similar first) that the user rated vote:
    ``out_avg[r, i] = sum(sim * residual) / sum(sim)`` and ``out_found[r, i]`` their
    number (0 and 0 when none). ``row_weights`` (aligned with ``row_residuals``; empty:
    all 1) weight each vote: ``sum(sim * w * residual) / sum(sim * w)``.
    """
    n_tasks = max(1, min(out_avg.shape[0], 4 * n_threads))
    run_tasks(
        _scores_item_task, n_tasks, n_threads, row_indptr, row_indices, row_residuals,
        row_weights, nbr_indptr, nbr_indices, nbr_sims, k, out_avg, out_found,
    )  # fmt: skip


@jit()
def _scores_item_task(
    task, n_tasks, row_indptr, row_indices, row_residuals, row_weights, nbr_indptr,
    nbr_indices, nbr_sims, k, out_avg, out_found,
):  # fmt: skip  # pragma: no cover - compiled
    """Rows ``task * n_rows // n_tasks ...`` of :func:`knn_scores_item`."""
    n_rows, n_items = out_avg.shape
    weighted = len(row_weights) > 0
    mark = np.full(n_items, np.nan, np.float64)
    wmark = np.zeros(n_items if weighted else 0, np.float64)
    for r in range(task * n_rows // n_tasks, (task + 1) * n_rows // n_tasks):
        for p in range(row_indptr[r], row_indptr[r + 1]):
            mark[row_indices[p]] = row_residuals[p]
            if weighted:
                wmark[row_indices[p]] = row_weights[p]
        for i in range(n_items):
            out_avg[r, i], out_found[r, i] = _neighbour_vote(
                i, nbr_indptr, nbr_indices, nbr_sims, mark, wmark, weighted, k
            )
        for p in range(row_indptr[r], row_indptr[r + 1]):
            mark[row_indices[p]] = np.nan


def knn_scores_user(
    nbr_indptr, nbr_indices, nbr_sims, r_indptr, r_indices, r_residuals, r_weights,
    k, out_avg, out_found, n_threads,
):  # fmt: skip
    """User-based averages for every item of each row (a user's neighbours).

    Row ``r`` lists the user's neighbours, most similar first (``nbr_*``); ``r_*`` is the
    user-major matrix of residuals. Walking the neighbours in order, each item keeps the
    votes of its first ``k`` raters among them: ``out_avg[r, i] = sum(sim * residual) /
    sum(sim)``, ``out_found[r, i]`` their number. ``r_weights`` (aligned with
    ``r_residuals``; empty: all 1) weight each vote: ``sum(sim * w * residual) / sum(sim
    * w)``.
    """
    n_tasks = max(1, min(out_avg.shape[0], 4 * n_threads))
    run_tasks(
        _scores_user_task, n_tasks, n_threads, nbr_indptr, nbr_indices, nbr_sims, r_indptr,
        r_indices, r_residuals, r_weights, k, out_avg, out_found,
    )  # fmt: skip


@jit()
def _scores_user_task(
    task, n_tasks, nbr_indptr, nbr_indices, nbr_sims, r_indptr, r_indices, r_residuals,
    r_weights, k, out_avg, out_found,
):  # fmt: skip  # pragma: no cover - compiled
    """Rows ``task * n_rows // n_tasks ...`` of :func:`knn_scores_user`."""
    n_rows, n_items = out_avg.shape
    weighted = len(r_weights) > 0
    den = np.zeros(n_items, np.float64)
    for r in range(task * n_rows // n_tasks, (task + 1) * n_rows // n_tasks):
        num = out_avg[r]
        found = out_found[r]
        num[:] = 0.0
        found[:] = 0
        den[:] = 0.0
        for s in range(nbr_indptr[r], nbr_indptr[r + 1]):
            v = nbr_indices[s]
            sim = nbr_sims[s]
            for p in range(r_indptr[v], r_indptr[v + 1]):
                i = r_indices[p]
                if found[i] < k:
                    if weighted:
                        sw = sim * r_weights[p]
                        num[i] += sw * r_residuals[p]
                        den[i] += sw
                    else:
                        num[i] += sim * r_residuals[p]
                        den[i] += sim
                    found[i] += 1
        for i in range(n_items):
            num[i] = num[i] / den[i] if den[i] > 0 else 0.0


def knn_scores_sum(
    src_indptr, src_indices, src_weights, m_indptr, m_indices, m_values, out, n_threads
):
    """``out[r] = sum_s weight_s * M[source_s]`` over row ``r``'s sources (sparse x sparse).

    Implicit item-based scoring (sources: the user's items with their values, ``M``: the
    neighbour matrix) and user-based scoring (sources: the user's neighbours with their
    similarities, ``M``: the user-major interactions).
    """
    n_tasks = max(1, min(out.shape[0], 4 * n_threads))
    run_tasks(
        _scores_sum_task, n_tasks, n_threads, src_indptr, src_indices, src_weights, m_indptr,
        m_indices, m_values, out,
    )  # fmt: skip


@jit()
def _scores_sum_task(
    task, n_tasks, src_indptr, src_indices, src_weights, m_indptr, m_indices, m_values, out
):  # pragma: no cover - compiled
    """Rows ``task * n_rows // n_tasks ...`` of :func:`knn_scores_sum`."""
    n_rows = out.shape[0]
    for r in range(task * n_rows // n_tasks, (task + 1) * n_rows // n_tasks):
        row = out[r]
        row[:] = 0.0
        for s in range(src_indptr[r], src_indptr[r + 1]):
            j = src_indices[s]
            w = src_weights[s]
            for p in range(m_indptr[j], m_indptr[j + 1]):
                row[m_indices[p]] += w * m_values[p]
