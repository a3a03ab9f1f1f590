"""Per-user ranking metrics: top-k list metrics and AUC, parallel over users.

Metric codes used by :func:`ranking_topk_metrics` (see ``docs/metrics.md`` for the
formulas): 0 precision, 1 recall, 2 ndcg, 3 map, 4 mrr, 5 hit_rate.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from factorkit.kernels._jit import jit

PRECISION, RECALL, NDCG, MAP, MRR, HIT_RATE = 0, 1, 2, 3, 4, 5


@jit(parallel=True)
def ranking_topk_metrics(
    topk_idx, rel_indptr, rel_indices, n_relevant, codes, ks, out
):  # pragma: no cover
    """Top-k metrics of every user (row) from their recommendation list.

    ``topk_idx`` (n_users x K, int64) holds each user's recommended item positions, best
    first, padded with -1. ``rel_indptr``/``rel_indices`` is a CSR structure (one row per
    user) of the user's relevant item positions, sorted ascending within each row.
    ``n_relevant`` (n_users) counts each user's relevant items *including* those that
    cannot be recommended (unknown to the model), so it may exceed the CSR row length; it
    must be >= 1. ``codes``/``ks`` (one entry per requested metric) name the metric (see
    the module docstring) and its cut-off ``k <= K``. ``out`` (n_users x n_metrics,
    float64) receives the values.
    """
    n_users, width = topk_idx.shape
    n_metrics = len(codes)
    for u in prange(n_users):
        lo = rel_indptr[u]
        hi = rel_indptr[u + 1]
        hit = np.zeros(width, dtype=np.bool_)
        for j in range(width):
            c = topk_idx[u, j]
            if c < 0:
                continue
            # binary search in the user's sorted relevant positions
            a = lo
            b = hi
            while a < b:
                mid = (a + b) // 2
                if rel_indices[mid] < c:
                    a = mid + 1
                else:
                    b = mid
            hit[j] = a < hi and rel_indices[a] == c
        n_rel = n_relevant[u]
        for m in range(n_metrics):
            code = codes[m]
            k = ks[m]
            value = 0.0
            if code in (PRECISION, RECALL, HIT_RATE):
                hits = 0
                for j in range(k):
                    if hit[j]:
                        hits += 1
                if code == PRECISION:
                    value = hits / k
                elif code == RECALL:
                    value = hits / n_rel
                else:
                    value = 1.0 if hits > 0 else 0.0
            elif code == NDCG:
                dcg = 0.0
                for j in range(k):
                    if hit[j]:
                        dcg += 1.0 / np.log2(j + 2.0)
                ideal = 0.0
                for j in range(min(k, n_rel)):
                    ideal += 1.0 / np.log2(j + 2.0)
                value = dcg / ideal
            elif code == MAP:
                hits = 0
                total = 0.0
                for j in range(k):
                    if hit[j]:
                        hits += 1
                        total += hits / (j + 1.0)
                value = total / min(k, n_rel)
            elif code == MRR:
                for j in range(k):
                    if hit[j]:
                        value = 1.0 / (j + 1.0)
                        break
            out[u, m] = value


@jit(parallel=True)
def ranking_auc(
    scores, seen_indptr, seen_indices, rel_indptr, rel_indices, n_relevant, out
):  # pragma: no cover
    """Per-row AUC of relevant against non-relevant candidate columns of ``scores``.

    ``scores`` is a block (n_rows x n_cols) of ranking scores. Candidates of row ``r``
    are the columns not listed in its row of the CSR structure ``seen_indptr``/
    ``seen_indices`` (the user's training items). ``rel_indptr``/``rel_indices`` (CSR, one
    row per score row) lists the relevant candidate columns; ``n_relevant[r]`` counts
    all relevant items, including those with no column (unknown to the model): they rank
    below every candidate and so lose every pair. Ties count half; NaN scores rank as
    -inf. Cost per row: O(n_cols log n_relevant). ``out[r]`` = (won pairs + ties / 2) /
    (n_relevant * n_negative), or NaN when the row has no non-relevant candidate.
    """
    n_rows, n_cols = scores.shape
    for r in prange(n_rows):
        skip = np.zeros(n_cols, dtype=np.bool_)
        for p in range(seen_indptr[r], seen_indptr[r + 1]):
            skip[seen_indices[p]] = True
        # sorted scores of the relevant candidates
        n_pos = rel_indptr[r + 1] - rel_indptr[r]
        pos_vals = np.empty(n_pos, dtype=np.float64)
        for p in range(n_pos):
            c = rel_indices[rel_indptr[r] + p]
            v = scores[r, c]
            pos_vals[p] = v if v == v else -np.inf
            skip[c] = True
        pos_vals.sort()
        # each non-relevant candidate: count relevant scores above it (and tied with it)
        won = 0.0
        n_neg = 0
        for c in range(n_cols):
            if skip[c]:
                continue
            n_neg += 1
            v = scores[r, c]
            if v != v:
                v = -np.inf
            a = 0  # first relevant score >= v
            b = n_pos
            while a < b:
                mid = (a + b) // 2
                if pos_vals[mid] < v:
                    a = mid + 1
                else:
                    b = mid
            e = a  # first relevant score > v
            b = n_pos
            while e < b:
                mid = (e + b) // 2
                if pos_vals[mid] <= v:
                    e = mid + 1
                else:
                    b = mid
            won += (n_pos - e) + 0.5 * (e - a)
        if n_neg == 0 or n_relevant[r] == 0:
            out[r] = np.nan
        else:
            out[r] = won / (n_relevant[r] * float(n_neg))
