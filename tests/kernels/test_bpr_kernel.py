"""bpr kernels against a literal NumPy implementation of BPR's SGD step, and the sampler."""

import numpy as np
import pytest
import scipy.sparse as sp

from factorkit._threads import using_threads
from factorkit.kernels.bpr import bpr_alias_table, bpr_epoch, bpr_samples

NO_ALIAS = (np.empty(0, dtype=np.float64), np.empty(0, dtype=np.int32))
MAX_TRIES = 100


def _positives(n_users=40, n_items=30, density=0.5, seed=0, full_user=True):
    """A random users x items positive structure, sorted rows; optionally one user who
    holds every item (no negative exists for them) and one with none."""
    mat = sp.random(n_users, n_items, density=density, format="csr", random_state=seed)
    mat.data[:] = 1.0
    rows = [mat]
    if full_user:
        rows.append(sp.csr_matrix(np.ones((1, n_items))))
    rows.append(sp.csr_matrix((1, n_items)))
    mat = sp.vstack(rows).tocsr()
    mat.sort_indices()
    indptr = mat.indptr.astype(np.int64)
    indices = mat.indices.astype(np.int32)
    users = np.repeat(np.arange(mat.shape[0], dtype=np.int32), np.diff(indptr))
    return users, indices, indptr, indices, mat.shape


def _state(shape, k, dtype, seed=1):
    rng = np.random.default_rng(seed)
    return (
        rng.normal(0, 0.3, (shape[0], k)).astype(dtype),
        rng.normal(0, 0.3, (shape[1], k)).astype(dtype),
        rng.normal(0, 0.1, shape[1]).astype(dtype),
    )


def _reference(triples, p, q, b, lr, reg, lr_b, reg_b, user_start=0, item_start=0):
    """BPR SGD (Rendle et al. 2009) on the given triples, in order, in float64."""
    p, q, b = p.astype(np.float64), q.astype(np.float64), b.astype(np.float64)
    loss, correct, skipped = 0.0, 0, 0
    for u, i, j in zip(*triples, strict=True):
        if j < 0:
            skipped += 1
            continue
        x = p[u] @ (q[i] - q[j]) + b[i] - b[j]
        loss += np.log1p(np.exp(-x))
        correct += int(x > 0)
        z = 1.0 / (1.0 + np.exp(x))
        pu, qi, qj = p[u].copy(), q[i].copy(), q[j].copy()
        if u >= user_start:
            p[u] = pu + lr * (z * (qi - qj) - reg * pu)
        if i >= item_start:
            q[i] = qi + lr * (z * pu - reg * qi)
            b[i] += lr_b * (z - reg_b * b[i])
        if j >= item_start:
            q[j] = qj + lr * (-z * pu - reg * qj)
            b[j] += lr_b * (-z - reg_b * b[j])
    return p, q, b, loss, correct, skipped


def _run_epoch(data, shape, state, seeds, n_samples, dtype, alias=NO_ALIAS, starts=(0, 0)):
    t = np.dtype(dtype).type
    p, q, b = state
    return bpr_epoch(
        *data,
        shape[1],
        *alias,
        *NO_ALIAS,
        np.asarray(seeds, dtype=np.uint64),
        n_samples,
        MAX_TRIES,
        p,
        q,
        b,
        t(0.05),
        t(0.01),
        t(0.03),
        t(0.02),
        *starts,
    )


# float32, as the models run (float64 would compile a variant nobody uses); the
# reference runs in float64
@pytest.mark.parametrize("dtype", [np.float32])
def test_epoch_matches_numpy_reference_on_the_same_triples(dtype):
    *data, shape = _positives()
    n_samples = 3000
    triples = bpr_samples(
        *data, shape[1], *NO_ALIAS, *NO_ALIAS, np.array([7], np.uint64), n_samples, 100
    )
    state = _state(shape, 5, dtype)
    ref = _reference(triples, *state, 0.05, 0.01, 0.03, 0.02)
    with using_threads(1):
        loss, correct, skipped = _run_epoch(data, shape, state, [7], n_samples, dtype)
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    for got, want in zip(state, ref[:3], strict=True):
        np.testing.assert_allclose(got, want, **tol)
    assert loss == pytest.approx(ref[3], rel=1e-4 if dtype == np.float32 else 1e-10)
    assert (correct, skipped) == (ref[4], ref[5])
    assert skipped > 0  # the user holding every item


def test_frozen_rows_are_not_updated():
    *data, shape = _positives(full_user=False)
    state = _state(shape, 4, np.float32)
    before = [a.copy() for a in state]
    starts = (20, 15)
    triples = bpr_samples(
        *data, shape[1], *NO_ALIAS, *NO_ALIAS, np.array([3], np.uint64), 2000, 100
    )
    ref = _reference(triples, *state, 0.05, 0.01, 0.03, 0.02, *starts)
    with using_threads(1):
        _run_epoch(data, shape, state, [3], 2000, np.float32, starts=starts)
    p, q, b = state
    np.testing.assert_array_equal(p[:20], before[0][:20])
    np.testing.assert_array_equal(q[:15], before[1][:15])
    np.testing.assert_array_equal(b[:15], before[2][:15])
    assert not np.array_equal(p[20:], before[0][20:])
    for got, want in zip(state, ref[:3], strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("popularity", [False, True])
def test_negatives_are_never_positives(popularity):
    *data, shape = _positives(n_users=50, n_items=25, density=0.8, seed=3)
    indptr, indices = data[2], data[3]
    alias = NO_ALIAS
    if popularity:
        alias = bpr_alias_table(np.bincount(indices, minlength=shape[1]).astype(np.float64))
    seeds = np.array([1, 2, 3], dtype=np.uint64)
    users, pos, neg = bpr_samples(*data, shape[1], *alias, *NO_ALIAS, seeds, 20000, MAX_TRIES)
    rows = [set(indices[indptr[u] : indptr[u + 1]].tolist()) for u in range(shape[0])]
    full = np.array([len(r) == shape[1] for r in rows])  # users holding every item
    assert full[shape[0] - 2] and full.sum() < 5
    for u, i, j in zip(users, pos, neg, strict=True):
        assert i in rows[u]
        if full[u]:
            assert j == -1
        else:
            assert 0 <= j < shape[1] and j not in rows[u]
    # at 80% density a few draws are rejected per sample, yet nobody else is skipped
    assert (neg[~full[users]] >= 0).all()
    assert len(set(neg[neg >= 0].tolist())) > shape[1] // 2


def test_samples_depend_on_seeds_not_on_threads():
    *data, shape = _positives()
    seeds = np.array([11, 12, 13, 14], dtype=np.uint64)
    with using_threads(1):
        one = bpr_samples(*data, shape[1], *NO_ALIAS, *NO_ALIAS, seeds, 999, MAX_TRIES)
    with using_threads(2):
        two = bpr_samples(*data, shape[1], *NO_ALIAS, *NO_ALIAS, seeds, 999, MAX_TRIES)
    for a, b in zip(one, two, strict=True):
        np.testing.assert_array_equal(a, b)
    other = bpr_samples(*data, shape[1], *NO_ALIAS, *NO_ALIAS, seeds + np.uint64(1), 999, MAX_TRIES)
    assert not np.array_equal(one[2], other[2])
    # positives are drawn uniformly over interactions
    counts = np.bincount(one[0], minlength=shape[0])
    assert counts[-1] == 0 and counts[-2] > counts[:-2].mean()


def test_epoch_is_repeatable_with_one_stream_and_learns_with_several():
    *data, shape = _positives()
    runs = []
    for _ in range(2):
        state = _state(shape, 8, np.float32)
        with using_threads(1):
            stats = _run_epoch(data, shape, state, [5], 5000, np.float32)
        runs.append((state, stats))
    for a, b in zip(runs[0][0], runs[1][0], strict=True):
        np.testing.assert_array_equal(a, b)
    assert runs[0][1] == runs[1][1]
    state = _state(shape, 8, np.float32)
    n = len(data[0])
    with using_threads(2):
        first = _run_epoch(data, shape, state, [1, 2], n, np.float32)
        for epoch in range(30):
            last = _run_epoch(data, shape, state, [3 + epoch, 100 + epoch], n, np.float32)
    assert last[0] < 0.7 * first[0]  # summed loss over (about) the same number of triples
    assert np.isfinite(state[0]).all() and np.isfinite(state[1]).all()


def test_alias_table_gives_the_exact_distribution_and_samples_follow_it():
    rng = np.random.default_rng(0)
    weights = rng.pareto(1.0, 50) + 0.01
    weights[[3, 17]] = 0.0
    prob, alias = bpr_alias_table(weights)
    n = len(weights)
    implied = prob.copy()
    np.add.at(implied, alias, 1.0 - prob)
    np.testing.assert_allclose(implied / n, weights / weights.sum(), atol=1e-12)
    # the sampler draws from it (no positives here, so nothing is rejected)
    indptr = np.array([0, 1], dtype=np.int64)
    indices = np.array([n], dtype=np.int32)  # the only positive lies outside the items
    users = np.zeros(1, dtype=np.int32)
    seeds = np.array([9], dtype=np.uint64)
    _, _, neg = bpr_samples(
        users, indices, indptr, indices, n, prob, alias, *NO_ALIAS, seeds, 200_000, 1
    )
    freq = np.bincount(neg, minlength=n) / len(neg)
    np.testing.assert_allclose(freq, weights / weights.sum(), atol=0.004)
    assert freq[3] == 0 and freq[17] == 0


def test_exact_fallback_draws_uniformly_from_the_missing_items():
    n_items = 12
    row = np.array([0, 1, 2, 4, 5, 7, 8, 9, 11], dtype=np.int32)  # missing: 3, 6, 10
    indptr = np.array([0, len(row)], dtype=np.int64)
    users = np.zeros(len(row), dtype=np.int32)
    seeds = np.array([4], dtype=np.uint64)
    # max_tries=0: every negative comes from the walk along the row
    _, _, neg = bpr_samples(
        users, row, indptr, row, n_items, *NO_ALIAS, *NO_ALIAS, seeds, 30_000, 0
    )
    freq = np.bincount(neg, minlength=n_items) / len(neg)
    np.testing.assert_allclose(freq[[3, 6, 10]], 1 / 3, atol=0.015)
    assert freq.sum() == pytest.approx(freq[[3, 6, 10]].sum())


def test_weighted_entries_follow_the_weights_and_weight_zero_is_never_drawn():
    """``fit``'s sample_weight: positives drawn in proportion to their weights."""
    *data, shape = _positives(n_users=20, n_items=15, full_user=False)
    users, items = data[0], data[1]
    rng = np.random.default_rng(5)
    weights = rng.uniform(0.1, 2.0, len(items))
    weights[::4] = 0.0
    seeds = np.array([11], dtype=np.uint64)
    u, i, _ = bpr_samples(*data, shape[1], *NO_ALIAS, *bpr_alias_table(weights), seeds, 200_000, 8)
    keys = users.astype(np.int64) * shape[1] + items
    drawn = np.searchsorted(keys, u * shape[1] + i)
    assert np.array_equal(keys[drawn], u * shape[1] + i)
    freq = np.bincount(drawn, minlength=len(keys)) / len(drawn)
    assert freq[weights == 0].sum() == 0
    np.testing.assert_allclose(freq, weights / weights.sum(), atol=0.003)
    # equal weights: the alias table keeps every uniform draw, the triples are unchanged
    plain = bpr_samples(*data, shape[1], *NO_ALIAS, *NO_ALIAS, seeds, 5000, 8)
    ones = bpr_alias_table(np.ones(len(items)))
    same = bpr_samples(*data, shape[1], *NO_ALIAS, *ones, seeds, 5000, 8)
    for a, b in zip(plain, same, strict=True):
        np.testing.assert_array_equal(a, b)
