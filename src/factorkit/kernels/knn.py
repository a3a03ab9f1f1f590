"""Neighbour-model kernels: sparse similarities kept to the top neighbours, and scoring.

Every matrix is a CSR triple ``(indptr, indices, values)``. For an item-based model the
*entities* are items and the *other side* users; for a user-based model the reverse.
Kernels see positions and numbers only. Parallel loops split rows into contiguous chunks,
each with its own scratch; every output row is written by one chunk only, so there are
no races and results do not depend on the thread count.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from factorkit.kernels._jit import jit

__all__ = [
    "knn_neighbours",
    "knn_predict_pairs",
    "knn_scores_item",
    "knn_scores_sum",
    "knn_scores_user",
]


@jit(parallel=True)
def knn_neighbours(
    q_indptr, q_indices, q_values, q_weights, q_self, q_norms,
    t_indptr, t_indices, t_values, t_weights, t_norms, n_entities,
    kind, shrinkage, keep, out_idx, out_sim, out_count, n_threads,
):  # fmt: skip  # pragma: no cover - compiled
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
    shared raters.
    """
    n_rows = len(q_indptr) - 1
    n_chunks = max(1, min(n_rows, 4 * n_threads))
    # per entity [dot, sum xa^2, sum xb^2, support(, sum c)], interleaved: one cache line
    # per update
    width = 5 if len(t_weights) > 0 else 4
    accs = np.zeros((n_chunks, n_entities, width), np.float64)
    touched = np.empty((n_chunks, n_entities), np.int32)
    cand_v = np.empty((n_chunks, n_entities), np.float32)
    cand_i = np.empty((n_chunks, n_entities), np.int32)
    for c in prange(n_chunks):
        _neighbour_rows(
            c * n_rows // n_chunks, (c + 1) * n_rows // n_chunks,
            q_indptr, q_indices, q_values, q_weights, q_self, q_norms,
            t_indptr, t_indices, t_values, t_weights, t_norms, n_entities,
            kind, shrinkage, keep, out_idx, out_sim, out_count,
            accs[c], touched[c], cand_v[c], cand_i[c],
        )  # fmt: skip


@jit()
def _neighbour_rows(
    lo, hi, q_indptr, q_indices, q_values, q_weights, q_self, q_norms,
    t_indptr, t_indices, t_values, t_weights, t_norms, n_entities,
    kind, shrinkage, keep, out_idx, out_sim, out_count, acc, seen, cv, ci,
):  # fmt: skip  # pragma: no cover - compiled
    """Rows ``lo:hi`` of :func:`knn_neighbours`, with one chunk's scratch."""
    weighted = len(t_weights) > 0
    for r in range(lo, hi):
        n_touched = 0
        for p in range(q_indptr[r], q_indptr[r + 1]):
            u = q_indices[p]
            xa = q_values[p]
            wa = q_weights[p] if weighted else 1.0
            for s in range(t_indptr[u], t_indptr[u + 1]):
                b = t_indices[s]
                xb = t_values[s]
                if acc[b, 3] == 0:
                    seen[n_touched] = b
                    n_touched += 1
                if weighted:
                    c = wa * t_weights[s]
                    acc[b, 0] += c * xa * xb
                    acc[b, 4] += c
                    if kind != 0:
                        acc[b, 1] += c * xa * xa
                        acc[b, 2] += c * xb * xb
                else:
                    acc[b, 0] += xa * xb
                    if kind != 0:
                        acc[b, 1] += xa * xa
                        acc[b, 2] += xb * xb
                acc[b, 3] += 1.0
        # candidates in position order, so that ties keep the lower position
        if n_touched * 8 > n_entities:
            n_touched = 0
            for b in range(n_entities):
                if acc[b, 3] > 0:
                    seen[n_touched] = b
                    n_touched += 1
        else:
            seen[:n_touched].sort()
        size = 0
        for t in range(n_touched):
            b = seen[t]
            n = acc[b, 3]
            if kind == 2:
                mass = acc[b, 4] if weighted else n
                msd = max(0.0, acc[b, 1] + acc[b, 2] - 2.0 * acc[b, 0]) / mass
                sim = 1.0 / (1.0 + msd)
            else:
                denom = q_norms[r] * t_norms[b] if kind == 0 else np.sqrt(acc[b, 1] * acc[b, 2])
                sim = acc[b, 0] / denom if denom > 0 else 0.0
            if shrinkage > 0:
                sim *= n / (n + shrinkage)
            acc[b, 0] = 0.0
            acc[b, 1] = 0.0
            acc[b, 2] = 0.0
            acc[b, 3] = 0.0
            if weighted:
                acc[b, 4] = 0.0
            if sim > 0 and b != q_self[r]:
                cv[size] = sim
                ci[size] = b
                size += 1
        out_count[r] = _keep_best(cv, ci, size, keep, out_idx[r], out_sim[r])


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


@jit(parallel=True)
def knn_predict_pairs(
    targets, queries, nbr_indptr, nbr_indices, nbr_sims,
    lk_indptr, lk_indices, lk_residuals, lk_weights, n_cols, k, out_avg, out_found, n_threads,
):  # fmt: skip  # pragma: no cover - compiled
    """Weighted average of neighbours' residuals for (target, query) pairs.

    For pair ``p``: walk the neighbours of entity ``targets[p]`` (most similar first) and
    keep the first ``k`` that have a value in row ``queries[p]`` of the lookup CSR
    (``n_cols`` columns); ``out_avg[p] = sum(sim * residual) / sum(sim)`` over them and
    ``out_found[p]`` their number (0: no neighbour voted, ``out_avg`` is 0). Pairs sorted
    by query are fastest: each query's row is spread into a dense marker once per run.
    ``lk_weights`` (aligned with ``lk_residuals``; empty: all 1) weight each vote:
    ``sum(sim * w * residual) / sum(sim * w)``.
    """
    n = len(targets)
    n_chunks = max(1, min(n, 4 * n_threads))
    weighted = len(lk_weights) > 0
    marks = np.full((n_chunks, n_cols), np.nan)
    wmarks = np.zeros((n_chunks, n_cols if weighted else 0))
    for c in prange(n_chunks):
        mark = marks[c]
        wmark = wmarks[c]
        current = -1
        for p in range(c * n // n_chunks, (c + 1) * n // n_chunks):
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
            t = targets[p]
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
            out_avg[p] = num / den if den > 0 else 0.0
            out_found[p] = found
        if current >= 0:
            for s in range(lk_indptr[current], lk_indptr[current + 1]):
                mark[lk_indices[s]] = np.nan


@jit(parallel=True)
def knn_scores_item(
    row_indptr, row_indices, row_residuals, row_weights, nbr_indptr, nbr_indices, nbr_sims,
    k, out_avg, out_found, n_threads,
):  # fmt: skip  # pragma: no cover - compiled
    """Item-based averages for every item of each row (a user's rated items).

    Row ``r`` holds a user's items and residuals (``row_*``). For each item ``i``, the
    first ``k`` neighbours of ``i`` (most similar first) that the user rated vote:
    ``out_avg[r, i] = sum(sim * residual) / sum(sim)`` and ``out_found[r, i]`` their
    number (0 and 0 when none). ``row_weights`` (aligned with ``row_residuals``; empty:
    all 1) weight each vote: ``sum(sim * w * residual) / sum(sim * w)``.
    """
    n_rows, n_items = out_avg.shape
    n_chunks = max(1, min(n_rows, 4 * n_threads))
    weighted = len(row_weights) > 0
    marks = np.full((n_chunks, n_items), np.nan, np.float64)
    wmarks = np.zeros((n_chunks, n_items if weighted else 0), np.float64)
    for c in prange(n_chunks):
        mark = marks[c]
        wmark = wmarks[c]
        for r in range(c * n_rows // n_chunks, (c + 1) * n_rows // n_chunks):
            for p in range(row_indptr[r], row_indptr[r + 1]):
                mark[row_indices[p]] = row_residuals[p]
                if weighted:
                    wmark[row_indices[p]] = row_weights[p]
            for i in range(n_items):
                num = 0.0
                den = 0.0
                found = 0
                for s in range(nbr_indptr[i], nbr_indptr[i + 1]):
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
                out_avg[r, i] = num / den if den > 0 else 0.0
                out_found[r, i] = found
            for p in range(row_indptr[r], row_indptr[r + 1]):
                mark[row_indices[p]] = np.nan


@jit(parallel=True)
def knn_scores_user(
    nbr_indptr, nbr_indices, nbr_sims, r_indptr, r_indices, r_residuals, r_weights,
    k, out_avg, out_found, n_threads,
):  # fmt: skip  # pragma: no cover - compiled
    """User-based averages for every item of each row (a user's neighbours).

    Row ``r`` lists the user's neighbours, most similar first (``nbr_*``); ``r_*`` is the
    user-major matrix of residuals. Walking the neighbours in order, each item keeps the
    votes of its first ``k`` raters among them: ``out_avg[r, i] = sum(sim * residual) /
    sum(sim)``, ``out_found[r, i]`` their number. ``r_weights`` (aligned with
    ``r_residuals``; empty: all 1) weight each vote: ``sum(sim * w * residual) / sum(sim
    * w)``.
    """
    n_rows, n_items = out_avg.shape
    weighted = len(r_weights) > 0
    n_chunks = max(1, min(n_rows, 4 * n_threads))
    dens = np.zeros((n_chunks, n_items), np.float64)
    for c in prange(n_chunks):
        den = dens[c]
        for r in range(c * n_rows // n_chunks, (c + 1) * n_rows // n_chunks):
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


@jit(parallel=True)
def knn_scores_sum(
    src_indptr, src_indices, src_weights, m_indptr, m_indices, m_values, out, n_threads
):  # pragma: no cover - compiled
    """``out[r] = sum_s weight_s * M[source_s]`` over row ``r``'s sources (sparse x sparse).

    Implicit item-based scoring (sources: the user's items with their values, ``M``: the
    neighbour matrix) and user-based scoring (sources: the user's neighbours with their
    similarities, ``M``: the user-major interactions).
    """
    n_rows = out.shape[0]
    n_chunks = max(1, min(n_rows, 4 * n_threads))
    for c in prange(n_chunks):
        for r in range(c * n_rows // n_chunks, (c + 1) * n_rows // n_chunks):
            row = out[r]
            row[:] = 0.0
            for s in range(src_indptr[r], src_indptr[r + 1]):
                j = src_indices[s]
                w = src_weights[s]
                for p in range(m_indptr[j], m_indptr[j + 1]):
                    row[m_indices[p]] += w * m_values[p]
