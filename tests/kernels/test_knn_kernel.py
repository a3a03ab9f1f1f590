"""knn kernels against NumPy references on small random sparse matrices."""

import numpy as np
import pytest
import scipy.sparse as sp

from factorkit.kernels.knn import (
    knn_join_rows,
    knn_mirror,
    knn_neighbours,
    knn_pair_similarities,
    knn_predict_pairs,
    knn_predict_pairs_unordered,
    knn_scores_item,
    knn_scores_sum,
    knn_scores_user,
    knn_sort_rows,
)


def _random_csr(n_rows, n_cols, density, seed):
    m = sp.random(n_rows, n_cols, density=density, random_state=seed, format="csr")
    m.data = np.round(m.data * 4 + 1)
    m.sort_indices()
    return m


def _parts(m):
    return m.indptr.astype(np.int64), m.indices.astype(np.int32), m.data.astype(np.float64)


NO_WEIGHTS = np.empty(0, np.float64)


def _run_neighbours(x, kind, shrinkage, keep, n_threads=2, weights=None):
    """``weights``: a CSR of x's pattern holding each entry's weight (None: unweighted)."""
    t = x.T.tocsr()
    t.sort_indices()
    n = x.shape[0]
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
    out_idx = np.empty((n, keep), np.int32)
    out_sim = np.empty((n, keep), np.float32)
    counts = np.zeros(n, np.int64)
    q_w = t_w = NO_WEIGHTS
    if weights is not None:
        wt = weights.T.tocsr()
        wt.sort_indices()
        q_w, t_w = weights.data.astype(np.float64), wt.data.astype(np.float64)
    knn_neighbours(*_parts(x), q_w, np.arange(n, dtype=np.int64), norms, *_parts(t), t_w,
                   norms, n, kind, shrinkage, keep, out_idx, out_sim, counts,
                   n_threads)  # fmt: skip
    return out_idx, out_sim, counts


def _reference(x, kind, shrinkage, weights=None):
    d = x.toarray()
    wd = np.ones_like(d) if weights is None else weights.toarray()
    mask = d != 0
    n = len(d)
    sims = np.zeros((n, n))
    for a in range(n):
        for b in range(n):
            both = mask[a] & mask[b]
            support = both.sum()
            if a == b or support == 0:
                continue
            c = wd[a, both] * wd[b, both]  # a co-rating counts w_a w_b
            if kind == 0:
                sim = d[a] @ d[b] / (np.linalg.norm(d[a]) * np.linalg.norm(d[b]))
            elif kind == 1:
                sim = (
                    (c * d[a, both])
                    @ d[b, both]
                    / np.sqrt((c * d[a, both] ** 2).sum() * (c * d[b, both] ** 2).sum())
                )
            else:
                sim = 1.0 / (1.0 + (c * (d[a, both] - d[b, both]) ** 2).sum() / c.sum())
            sims[a, b] = sim * support / (support + shrinkage)
    return sims


@pytest.mark.parametrize("kind", [0, 1, 2])
def test_neighbours_match_dense_reference(kind):
    x = _random_csr(30, 25, 0.3, seed=kind)
    ref = _reference(x, kind, shrinkage=2.0)
    idx, sim, counts = _run_neighbours(x, kind, 2.0, keep=5)
    for a in range(30):
        positive = np.flatnonzero(ref[a] > 0)
        assert counts[a] == min(5, len(positive))
        expected = sorted(positive, key=lambda b: (-np.float32(ref[a, b]), b))[:5]
        np.testing.assert_array_equal(idx[a, : counts[a]], expected)
        np.testing.assert_allclose(sim[a, : counts[a]], ref[a, expected], rtol=1e-5)


@pytest.mark.parametrize("kind", [1, 2])
def test_weighted_neighbours_match_dense_reference(kind):
    x = _random_csr(30, 25, 0.3, seed=kind + 10)
    w = x.copy()
    w.data = np.random.default_rng(kind).choice([0.5, 1.0, 2.0, 3.0], size=x.nnz)
    ref = _reference(x, kind, shrinkage=2.0, weights=w)
    idx, sim, counts = _run_neighbours(x, kind, 2.0, keep=5, weights=w)
    for a in range(30):
        positive = np.flatnonzero(ref[a] > 0)
        assert counts[a] == min(5, len(positive))
        np.testing.assert_allclose(sim[a, : counts[a]], ref[a, idx[a, : counts[a]]], rtol=1e-5)
        top = np.sort(ref[a, positive])[::-1][: counts[a]]  # the best, most similar first
        np.testing.assert_allclose(sim[a, : counts[a]], top, rtol=1e-5)
    # unit weights are the unweighted similarities
    w.data[:] = 1.0
    plain = _run_neighbours(x, kind, 2.0, keep=5)
    ones = _run_neighbours(x, kind, 2.0, keep=5, weights=w)
    np.testing.assert_array_equal(ones[0], plain[0])
    np.testing.assert_allclose(ones[1], plain[1], rtol=1e-6)


def test_neighbours_do_not_depend_on_threads():
    x = _random_csr(40, 30, 0.3, seed=7)
    one = _run_neighbours(x, 1, 0.0, keep=8, n_threads=1)
    two = _run_neighbours(x, 1, 0.0, keep=8, n_threads=2)
    for a, b in zip(one, two, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(("kind", "weighted"), [(0, False), (1, True), (2, False), (2, True)])
def test_pairs_path_is_the_per_row_path(kind, weighted):
    """Each pair once, mirrored, radix-sorted rows: the same table as every row against
    every entity (rows long enough for the radix sort; integer values: many ties)."""
    x = _random_csr(70, 40, 0.3, seed=30 + kind)
    w = None
    if weighted:
        w = x.copy()
        w.data = np.random.default_rng(kind).choice([0.5, 1.0, 2.0], size=x.nnz)
    n = x.shape[0]
    idx, sim, counts = _run_neighbours(x, kind, 1.0, keep=n, weights=w)
    pos = x.copy()
    pos.data = np.arange(x.nnz, dtype=np.float64)
    t = pos.T.tocsr()
    t.sort_indices()
    after = np.empty(x.nnz, np.int64)
    after[t.data.astype(np.int64)] = np.arange(x.nnz)
    values = x.data.astype(np.float64)
    t_values = values[t.data.astype(np.int64)]
    q_w = t_w = NO_WEIGHTS
    if weighted:
        q_w = w.data.astype(np.float64)
        t_w = q_w[t.data.astype(np.int64)]
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
    bounds = np.array([0, 3, 30, 30, n], np.int64)  # uneven, one empty task
    parts = knn_pair_similarities(
        bounds, *_parts(x)[:2], values, q_w, after, t.indptr.astype(np.int64),
        t.indices.astype(np.int32), t_values, t_w, norms, kind, 1.0, 2,
    )  # fmt: skip
    indptr, indices, keys = knn_mirror(bounds, parts, 2)
    # a fit that keeps every row whole: only the mirrored pairs, the rest left in place,
    # joined back into the same rows
    again, (start, up_i, up_s) = knn_pair_similarities(
        bounds, *_parts(x)[:2], values, q_w, after, t.indptr.astype(np.int64),
        t.indices.astype(np.int32), t_values, t_w, norms, kind, 1.0, 2, with_rows=True,
    )  # fmt: skip
    lo_ptr, lo_idx, lo_keys = knn_mirror(bounds, again, 2, upper=False)
    up = np.concatenate([p[0] for p in again])
    joined = knn_join_rows(lo_ptr, lo_idx, np.invert(lo_keys).view(np.float32), start,
                           start + up, up_i, up_s, 2)  # fmt: skip
    for a, b in zip(joined, (indptr, indices, keys), strict=True):
        np.testing.assert_array_equal(a, b)
    knn_sort_rows(np.array([0, 50, n], np.int64), indptr, keys, indices, 2)
    sims = np.invert(keys).view(np.float32)
    assert counts.max() > 32  # the radix sort, not only the insertion sort, ran
    for a in range(n):
        np.testing.assert_array_equal(indices[indptr[a] : indptr[a + 1]], idx[a, : counts[a]])
        np.testing.assert_array_equal(sims[indptr[a] : indptr[a + 1]], sim[a, : counts[a]])


def _neighbour_csr(n, keep, seed):
    rng = np.random.default_rng(seed)
    indptr = np.zeros(n + 1, np.int64)
    indices, sims = [], []
    for r in range(n):
        nb = rng.choice([c for c in range(n) if c != r], size=keep, replace=False)
        indices.extend(nb)
        sims.extend(np.sort(rng.random(keep))[::-1])
        indptr[r + 1] = indptr[r] + keep
    return indptr, np.array(indices, np.int32), np.array(sims, np.float64)


def test_item_scores_and_pairs_are_the_k_nearest_voters():
    n_users, n_items, k = 8, 12, 3
    ratings = _random_csr(n_users, n_items, 0.4, seed=1)
    nbr = _neighbour_csr(n_items, 6, seed=2)
    avg = np.empty((n_users, n_items))
    found = np.empty((n_users, n_items), np.int32)
    knn_scores_item(*_parts(ratings), NO_WEIGHTS, *nbr, k, avg, found, 2)
    d = ratings.toarray()
    for u in range(n_users):
        for i in range(n_items):
            row = slice(nbr[0][i], nbr[0][i + 1])
            voters = [(j, s) for j, s in zip(nbr[1][row], nbr[2][row], strict=True) if d[u, j]]
            voters = voters[:k]
            assert found[u, i] == len(voters)
            if voters:
                expect = sum(s * d[u, j] for j, s in voters) / sum(s for _, s in voters)
                assert abs(avg[u, i] - expect) < 1e-9
    users, items = np.meshgrid(np.arange(n_users), np.arange(n_items), indexing="ij")
    out_avg = np.empty(users.size)
    out_found = np.empty(users.size, np.int32)
    knn_predict_pairs(items.ravel().astype(np.int64), users.ravel().astype(np.int64), *nbr,
                      *_parts(ratings), NO_WEIGHTS, n_items, k, out_avg, out_found,
                      2)  # fmt: skip
    np.testing.assert_allclose(out_avg, avg.ravel(), atol=1e-12)
    np.testing.assert_array_equal(out_found, found.ravel())


def test_user_scores_and_sums():
    n_users, n_items, k = 10, 7, 2
    ratings = _random_csr(n_users, n_items, 0.5, seed=3)
    nbr = _neighbour_csr(n_users, 4, seed=4)
    avg = np.empty((n_users, n_items))
    found = np.empty((n_users, n_items), np.int32)
    knn_scores_user(*nbr, *_parts(ratings), NO_WEIGHTS, k, avg, found, 2)
    d = ratings.toarray()
    for u in range(n_users):
        row = slice(nbr[0][u], nbr[0][u + 1])
        for i in range(n_items):
            voters = [(v, s) for v, s in zip(nbr[1][row], nbr[2][row], strict=True) if d[v, i]]
            voters = voters[:k]
            assert found[u, i] == len(voters)
            expect = (
                sum(s * d[v, i] for v, s in voters) / sum(s for _, s in voters) if voters else 0
            )
            assert abs(avg[u, i] - expect) < 1e-9
    out = np.empty((n_users, n_items))
    knn_scores_sum(*nbr, *_parts(ratings), out, 2)
    w = sp.csr_matrix((nbr[2], nbr[1], nbr[0]), shape=(n_users, n_users))
    np.testing.assert_allclose(out, (w @ ratings).toarray(), atol=1e-12)


def test_weighted_votes_count_sim_times_weight():
    """Each vote counts ``sim * w``: item scores, pairs and user scores."""
    n_users, n_items, k = 8, 12, 3
    ratings = _random_csr(n_users, n_items, 0.4, seed=5)
    w = ratings.copy()
    w.data = np.random.default_rng(6).uniform(0.1, 3.0, ratings.nnz)
    d, wd = ratings.toarray(), w.toarray()
    nbr = _neighbour_csr(n_items, 6, seed=7)
    avg = np.empty((n_users, n_items))
    found = np.empty((n_users, n_items), np.int32)
    knn_scores_item(*_parts(ratings), w.data, *nbr, k, avg, found, 2)
    for u in range(n_users):
        for i in range(n_items):
            row = slice(nbr[0][i], nbr[0][i + 1])
            voters = [(j, s) for j, s in zip(nbr[1][row], nbr[2][row], strict=True) if d[u, j]]
            voters = voters[:k]
            assert found[u, i] == len(voters)
            if voters:
                num = sum(s * wd[u, j] * d[u, j] for j, s in voters)
                assert abs(avg[u, i] - num / sum(s * wd[u, j] for j, s in voters)) < 1e-9
    users, items = np.meshgrid(np.arange(n_users), np.arange(n_items), indexing="ij")
    out_avg = np.empty(users.size)
    out_found = np.empty(users.size, np.int32)
    knn_predict_pairs(items.ravel().astype(np.int64), users.ravel().astype(np.int64), *nbr,
                      *_parts(ratings), w.data, n_items, k, out_avg, out_found,
                      2)  # fmt: skip
    np.testing.assert_allclose(out_avg, avg.ravel(), atol=1e-12)
    np.testing.assert_array_equal(out_found, found.ravel())
    # user-based: neighbours over users, the weights of the raters' ratings
    unbr = _neighbour_csr(n_users, 4, seed=8)
    uavg = np.empty((n_users, n_items))
    ufound = np.empty((n_users, n_items), np.int32)
    knn_scores_user(*unbr, *_parts(ratings), w.data, k, uavg, ufound, 2)
    for u in range(n_users):
        row = slice(unbr[0][u], unbr[0][u + 1])
        for i in range(n_items):
            voters = [(v, s) for v, s in zip(unbr[1][row], unbr[2][row], strict=True) if d[v, i]]
            voters = voters[:k]
            den = sum(s * wd[v, i] for v, s in voters)
            expect = sum(s * wd[v, i] * d[v, i] for v, s in voters) / den if voters else 0.0
            assert abs(uavg[u, i] - expect) < 1e-9


@pytest.mark.parametrize("weighted", [False, True])
def test_unordered_prediction_is_the_sorted_walk(weighted):
    """Rows in any order give knn_predict_pairs' result on the rows sorted (most similar
    first, ties lower position first), bit for bit: ties, similarities from 1e-7 to 1.5
    (every bucket of the prune, both ends clamped), a dense cluster of near-equal
    similarities (more candidates left than the insertion sort takes: the heap), fewer
    candidates than k, and targets repeated out of order. Each row comes in two parts (a
    CSR, then a span of a buffer with gaps), as a fit leaves them; knn_join_rows joins
    them back."""
    rng = np.random.default_rng(11)
    n_users, n_items = 30, 400
    ratings = _random_csr(n_users, n_items, 0.6, seed=12)
    weights = rng.uniform(0.1, 3.0, ratings.nnz) if weighted else NO_WEIGHTS
    indptr = np.zeros(n_items + 1, np.int64)
    indices, sims = [], []
    for r in range(n_items):
        size = int(rng.integers(0, n_items))
        nb = rng.choice(np.delete(np.arange(n_items), r), size=size, replace=False)
        kind = r % 4
        if kind == 0:  # ties: a few values
            s = rng.choice([0.25, 0.5, 1.0], size)
        elif kind == 1:  # near-equal: one bucket
            s = 0.7 + rng.integers(0, 50, size) * 1e-6
        elif kind == 2:  # every scale, both clamped ends
            s = 10.0 ** rng.uniform(-7, 0.18, size)
        else:
            s = rng.random(size) + 1e-3
        indices.extend(nb)  # position order does not matter: shuffled
        sims.extend(s)
        indptr[r + 1] = indptr[r] + size
    indices, sims = np.array(indices, np.int32), np.array(sims, np.float32)
    # two parts per row: the CSR of each row's head, its tail in a buffer with gaps
    cut = indptr[:-1] + (rng.random(n_items) * np.diff(indptr)).astype(np.int64)
    a_ptr = np.concatenate([[0], np.cumsum(cut - indptr[:-1])])
    head = np.concatenate([np.arange(indptr[r], cut[r]) for r in range(n_items)])
    gaps = rng.integers(0, 3, n_items)
    b_start = np.cumsum(np.concatenate([[0], (indptr[1:] - cut)[:-1]]) + gaps)
    b_end = b_start + (indptr[1:] - cut)
    b_idx = np.full(b_end[-1] + 2, -1, np.int32)
    b_sim = np.full(b_end[-1] + 2, np.nan, np.float32)
    for r in range(n_items):
        b_idx[b_start[r] : b_end[r]] = indices[cut[r] : indptr[r + 1]]
        b_sim[b_start[r] : b_end[r]] = sims[cut[r] : indptr[r + 1]]
    parts = (a_ptr, indices[head], sims[head], b_start, b_end, b_idx, b_sim)
    j_ptr, j_idx, j_keys = knn_join_rows(*parts, 2)
    np.testing.assert_array_equal(j_ptr, indptr)
    np.testing.assert_array_equal(j_idx, indices)
    np.testing.assert_array_equal(np.invert(j_keys).view(np.float32), sims)
    # the same table sorted as a fit sorts it: similarity descending, position ascending
    s_idx, s_sim = indices.copy(), sims.copy()
    for r in range(n_items):
        a, b = indptr[r], indptr[r + 1]
        order = np.lexsort((indices[a:b], -sims[a:b].astype(np.float64)))
        s_idx[a:b], s_sim[a:b] = indices[a:b][order], sims[a:b][order]
    targets = rng.integers(0, n_items, 3000).astype(np.int64)
    queries = rng.integers(0, n_users, 3000).astype(np.int64)
    for k in (1, 5, 40, 500):
        outs = []
        for predict, table in ((knn_predict_pairs, (indptr, s_idx, s_sim)),
                               (knn_predict_pairs_unordered, parts)):  # fmt: skip
            avg, found = np.empty(len(targets)), np.empty(len(targets), np.int32)
            predict(targets, queries, *table, *_parts(ratings)[:2], ratings.data - 3.0,
                    weights, n_items, k, avg, found, 2)  # fmt: skip
            outs.append((avg, found))
        np.testing.assert_array_equal(outs[0][0], outs[1][0])
        np.testing.assert_array_equal(outs[0][1], outs[1][1])
        assert (outs[1][1] == min(k, 40)).any()  # the k-limit binds for some pairs
