import numpy as np
import pytest

from factorkit._threads import max_threads, using_threads
from factorkit.kernels.sgd import (
    sgd_arrange,
    sgd_epoch,
    sgd_epoch_adaptive,
    sgd_interleave,
    sgd_partition,
    sgd_penalty,
    sgd_schedule,
)

#: no sample weights: every rating weight 1
NO_WEIGHTS = np.zeros(0, dtype=np.float32)


def reference_epoch(
    users, items, values, weights, block_ptr, schedule, P, Q, bu, bi, mu, lr, reg, biased
):
    """One SGD epoch in plain NumPy, blocks in schedule order, ratings in block order;
    rating ``n``'s step is ``lr * weights[n]`` (``lr`` when ``weights`` is empty)."""
    sse = 0.0
    for b in schedule.ravel():
        for n in range(block_ptr[b], block_ptr[b + 1]):
            u, i = users[n], items[n]
            w = float(weights[n]) if len(weights) else 1.0
            pred = mu + P[u] @ Q[i] + ((bu[u] + bi[i]) if biased else 0.0)
            e = values[n] - pred
            sse += float(w) * float(e) ** 2
            step = lr * w
            if biased:
                bu[u] += step * (e - reg * bu[u])
                bi[i] += step * (e - reg * bi[i])
            pu = P[u].copy()
            P[u] += step * (e * Q[i] - reg * pu)
            Q[i] += step * (e * pu - reg * Q[i])
    return sse


def problem(n_users=30, n_items=20, density=0.5, n_blocks=4, k=8, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    dense = rng.random((n_users, n_items)) < density
    u, i = np.nonzero(dense)  # canonical (user, item) order
    v = rng.integers(1, 6, len(u)).astype(dtype)
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(u, minlength=n_users), out=indptr[1:])
    uperm, ugroup = sgd_partition(np.bincount(u, minlength=n_users), n_blocks, rng)
    iperm, igroup = sgd_partition(np.bincount(i, minlength=n_items), n_blocks, rng)
    inew = np.empty_like(iperm)
    inew[iperm] = np.arange(n_items)
    arranged = sgd_arrange(indptr, i.astype(np.int32), v, uperm, inew, ugroup, igroup, n_blocks)
    P = (rng.standard_normal((n_users, k)) * 0.1).astype(dtype)
    Q = (rng.standard_normal((n_items, k)) * 0.1).astype(dtype)
    return dict(
        raw=(u, i, v, indptr),
        perms=(uperm, ugroup, iperm, igroup, inew),
        arranged=arranged,
        P=P,
        Q=Q,
        schedule=sgd_schedule(n_blocks, rng),
        n_blocks=n_blocks,
    )


# float32, as the models run (float64 would compile a variant nobody uses)
@pytest.mark.parametrize("dtype, rtol", [(np.float32, 2e-5)])
@pytest.mark.parametrize("biased", [True, False])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_sgd_epoch_matches_numpy_reference(dtype, rtol, biased, n_threads):
    """On the calling thread (one thread) and on the thread pool."""
    pb = problem(dtype=dtype)
    users, items, values, block_ptr, _, _ = pb["arranged"]
    P, Q = pb["P"], pb["Q"]
    bu = np.zeros(len(P), dtype=dtype)
    bi = np.zeros(len(Q), dtype=dtype)
    P2, Q2, bu2, bi2 = P.copy(), Q.copy(), bu.copy(), bi.copy()
    args = (users, items, values, NO_WEIGHTS, block_ptr, pb["schedule"])
    for _ in range(2):  # two epochs: the second starts from non-zero biases
        scratch = np.zeros(pb["n_blocks"] ** 2)
        with using_threads(n_threads):
            sse = sgd_epoch(*args, P, Q, bu, bi, 3.0, 0.05, 0.1, biased, scratch, n_threads)
        ref = reference_epoch(*args, P2, Q2, bu2, bi2, dtype(3.0), dtype(0.05), dtype(0.1), biased)
        assert sse == pytest.approx(ref, rel=rtol * 10)
    np.testing.assert_allclose(P, P2, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(Q, Q2, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(bu, bu2, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(bi, bi2, rtol=rtol, atol=rtol)
    if not biased:
        assert not bu.any() and not bi.any()


@pytest.mark.skipif(max_threads() < 2, reason="needs 2 threads")
def test_sgd_epoch_is_identical_on_any_thread_count():
    """One worker on the calling thread, or 2, 3 or 7 workers claiming ready blocks in
    whatever order the timing gives (7 on a 2-core machine: workers wait for blocks held
    by threads that have no core): same bits."""
    results = []
    for n_threads in (1, 2, 3, 7, 1):
        pb = problem(n_users=300, n_items=200, density=0.2, n_blocks=8, k=16, seed=3)
        users, items, values, block_ptr, _, _ = pb["arranged"]
        args = (users, items, values, NO_WEIGHTS, block_ptr, pb["schedule"])
        P, Q = pb["P"], pb["Q"]
        bu, bi = np.zeros(len(P), np.float32), np.zeros(len(Q), np.float32)
        with using_threads(min(n_threads, max_threads())):  # workers need no numba pool
            sses = [
                sgd_epoch(*args, P, Q, bu, bi, 3.0, 0.02, 0.05, True, np.zeros(64), n_threads)
                for _ in range(3)
            ]
        results.append((sses, P, Q, bu, bi))
    for other in results[1:]:
        assert other[0] == results[0][0]
        for a, b in zip(other[1:], results[0][1:], strict=True):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("n_blocks, n_threads", [(1, 4), (2, 9)])
def test_sgd_epoch_with_more_workers_than_blocks(n_blocks, n_threads):
    """Workers that find nothing to claim return; the epoch finishes and matches the
    one-worker result bit for bit."""
    results = []
    for threads in (1, n_threads):
        pb = problem(n_blocks=n_blocks, seed=5)
        users, items, values, block_ptr, _, _ = pb["arranged"]
        args = (users, items, values, NO_WEIGHTS, block_ptr, pb["schedule"])
        P, Q = pb["P"], pb["Q"]
        bu, bi = np.zeros(len(P), np.float32), np.zeros(len(Q), np.float32)
        scratch = np.full(n_blocks**2, np.nan)
        sse = sgd_epoch(*args, P, Q, bu, bi, 3.0, 0.02, 0.05, True, scratch, threads)
        assert np.isfinite(scratch).all()  # every block ran
        results.append((sse, P, Q, bu, bi))
    assert results[0][0] == results[1][0]
    for a, b in zip(results[0][1:], results[1][1:], strict=True):
        np.testing.assert_array_equal(a, b)


def test_sgd_schedule_dependencies_are_each_groups_previous_block():
    """Each block waits for exactly the blocks before it in its row group and its column
    group, so a group meets its blocks in schedule order whoever runs them."""
    from factorkit.kernels.sgd import _predecessors

    B = 5
    schedule = sgd_schedule(B, np.random.default_rng(0))
    pred = _predecessors(schedule, B)
    flat = schedule.ravel()
    for e, b in enumerate(flat):
        earlier = flat[:e]
        rows = np.flatnonzero(earlier // B == b // B)
        cols = np.flatnonzero(earlier % B == b % B)
        assert pred[e, 0] == (rows[-1] if len(rows) else -1)
        assert pred[e, 1] == (cols[-1] if len(cols) else -1)
    # a round's blocks share no group: each waits only on the round before
    assert (pred[:B] == -1).all()
    assert ((pred[B:] // B) == (np.arange(B, B * B) // B - 1)[:, None]).all()


@pytest.mark.skipif(max_threads() < 2, reason="needs 2 threads")
def test_sgd_epoch_workers_honour_dependencies_under_stress():
    """Many small blocks, many epochs, more workers than cores: any block run before its
    row's or column's previous block would change the bits."""
    pb = problem(n_users=200, n_items=150, density=0.3, n_blocks=12, k=8, seed=11)
    users, items, values, block_ptr, _, _ = pb["arranged"]
    rng = np.random.default_rng(0)
    schedules = [sgd_schedule(12, rng) for _ in range(20)]
    results = []
    for threads in (1, 4):
        P, Q = pb["P"].copy(), pb["Q"].copy()
        bu, bi = np.zeros(len(P), np.float32), np.zeros(len(Q), np.float32)
        scratch = np.zeros(144)
        args = (users, items, values, NO_WEIGHTS, block_ptr)
        sses = [
            sgd_epoch(*args, sch, P, Q, bu, bi, 3.0, 0.02, 0.05, True, scratch, threads)
            for sch in schedules
        ]
        results.append((sses, P, Q, bu, bi))
    assert results[0][0] == results[1][0]
    for a, b in zip(results[0][1:], results[1][1:], strict=True):
        np.testing.assert_array_equal(a, b)


def test_sgd_epoch_lets_nan_through():
    pb = problem()
    users, items, values, block_ptr, _, _ = pb["arranged"]
    args = (users, items, values, NO_WEIGHTS, block_ptr, pb["schedule"])
    P, Q = pb["P"], pb["Q"]
    bu, bi = np.zeros(len(P), np.float32), np.zeros(len(Q), np.float32)
    sse = 0.0
    for _ in range(5):
        sse = sgd_epoch(*args, P, Q, bu, bi, 3.0, 1e4, 0.0, True, np.zeros(16), 1)
    assert not np.isfinite(sse)
    assert not np.isfinite(P).all()


def test_sgd_arrange_groups_ratings_by_block():
    pb = problem(n_blocks=4)
    u, i, v, _ = pb["raw"]
    uperm, ugroup, _, igroup, inew = pb["perms"]
    users, items, values, block_ptr, seen_indptr, seen_indices = pb["arranged"]
    B = pb["n_blocks"]
    unew = np.empty_like(uperm)
    unew[uperm] = np.arange(len(uperm))
    # same ratings, relabelled
    got = sorted(zip(users.tolist(), items.tolist(), values.tolist(), strict=True))
    want = sorted(zip(unew[u].tolist(), inew[i].tolist(), v.tolist(), strict=True))
    assert got == want
    assert block_ptr[0] == 0 and block_ptr[-1] == len(u) and (np.diff(block_ptr) >= 0).all()
    for b in range(B * B):
        lo, hi = block_ptr[b], block_ptr[b + 1]
        assert (ugroup[users[lo:hi]] == b // B).all()
        assert (igroup[items[lo:hi]] == b % B).all()
        assert (np.diff(users[lo:hi]) >= 0).all()  # by user within a block
    # the seen structure in the new labels
    for nu in range(len(uperm)):
        old = uperm[nu]
        row = np.sort(seen_indices[seen_indptr[nu] : seen_indptr[nu + 1]])
        np.testing.assert_array_equal(row, np.sort(inew[i[u == old]]))


def test_sgd_partition_balances_counts():
    rng = np.random.default_rng(0)
    counts = rng.integers(1, 50, 1000)
    perm, group = sgd_partition(counts, 8, rng)
    assert sorted(perm.tolist()) == list(range(1000))
    assert (np.diff(group) >= 0).all() and group[0] == 0 and group[-1] == 7
    totals = np.bincount(group, weights=counts[perm])
    assert totals.max() - totals.min() <= 2 * counts.max()


def test_sgd_schedule_rounds_are_conflict_free():
    B = 6
    s = sgd_schedule(B, np.random.default_rng(1))
    assert s.shape == (B, B)
    assert sorted(s.ravel().tolist()) == list(range(B * B))  # every block once
    for rnd in s:
        assert len(set((rnd // B).tolist())) == B  # no shared row group
        assert len(set((rnd % B).tolist())) == B  # no shared column group


@pytest.mark.parametrize("biased", [True, False])
def test_sgd_penalty_matches_numpy(biased):
    rng = np.random.default_rng(0)
    factors = rng.normal(size=(50, 7)).astype(np.float32)
    bias = rng.normal(size=50).astype(np.float32)
    counts = rng.integers(1, 30, 50).astype(np.float32)
    f64 = factors.astype(np.float64)
    expected = counts @ ((f64 * f64).sum(axis=1) + (bias.astype(np.float64) ** 2 if biased else 0))
    assert sgd_penalty(counts, factors, bias, biased) == pytest.approx(expected, rel=1e-6)


def test_sgd_interleave_deals_each_block_round_robin_over_users():
    users = np.array([0, 0, 0, 1, 2, 2, 5, 5, 5, 5], dtype=np.int32)
    items = np.arange(10, dtype=np.int32)
    values = np.arange(10, dtype=np.float32) / 2
    block_ptr = np.array([0, 6, 6, 10], dtype=np.int64)  # blocks of 6, 0 and 4 ratings
    weights = values + 1
    sgd_interleave(users, items, values, weights, block_ptr)
    assert users.tolist() == [0, 1, 2, 0, 2, 0, 5, 5, 5, 5]
    assert items.tolist() == [0, 3, 4, 1, 5, 2, 6, 7, 8, 9]  # each user's order kept
    np.testing.assert_array_equal(values, items / 2)  # values travel with their rating
    np.testing.assert_array_equal(weights, items / 2 + 1)  # and so do weights


def test_weighted_sgd_epoch_matches_numpy_reference():
    """Each rating's step is lr * w: weight 0 leaves everything it touches unchanged."""
    pb = problem(dtype=np.float32)
    users, items, values, block_ptr, _, _ = pb["arranged"]
    weights = np.random.default_rng(4).uniform(0, 2, len(values)).astype(np.float32)
    weights[users == users[0]] = 0.0  # one user's ratings all weigh nothing
    P, Q = pb["P"], pb["Q"]
    bu, bi = np.zeros(len(P), np.float32), np.zeros(len(Q), np.float32)
    P0 = P.copy()
    P2, Q2, bu2, bi2 = P.copy(), Q.copy(), bu.copy(), bi.copy()
    args = (users, items, values, weights, block_ptr, pb["schedule"])
    for _ in range(2):
        sse = sgd_epoch(*args, P, Q, bu, bi, 3.0, 0.05, 0.1, True, np.zeros(16), 1)
        ref = reference_epoch(*args, P2, Q2, bu2, bi2, 3.0, 0.05, 0.1, True)
        assert sse == pytest.approx(ref, rel=2e-5)
    for got, want in ((P, P2), (Q, Q2), (bu, bu2), (bi, bi2)):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5)
    np.testing.assert_array_equal(P[users[0]], P0[users[0]])
    assert bu[users[0]] == 0.0


def reference_adaptive_epoch(
    users, items, values, weights, block_ptr, schedule, P, Q, bu, bi, GP, GQ, mu, lr, reg,
    biased, k,
):  # fmt: skip
    """libmf's per-row AdaGrad epoch in plain NumPy (float64 sums), ratings in block order:
    step ``lr / sqrt(G)`` with the row's ``G`` from before the rating, then ``G`` grows by
    the squared gradient averaged over the ``k`` real coordinates (biases: their own)."""
    sse = 0.0
    for b in schedule.ravel():
        for n in range(block_ptr[b], block_ptr[b + 1]):
            u, i = users[n], items[n]
            w = float(weights[n]) if len(weights) else 1.0
            pred = mu + P[u] @ Q[i] + ((bu[u] + bi[i]) if biased else 0.0)
            e = float(values[n] - pred)
            sse += w * e**2
            if w == 0.0:
                continue
            if biased:
                gu, gi = w * (e - reg * bu[u]), w * (e - reg * bi[i])
                bu[u] += lr / np.sqrt(GP[u, 1]) * gu
                bi[i] += lr / np.sqrt(GQ[i, 1]) * gi
                GP[u, 1] += gu * gu
                GQ[i, 1] += gi * gi
            gp = w * (e * Q[i].astype(np.float64) - reg * P[u])
            gq = w * (e * P[u].astype(np.float64) - reg * Q[i])
            P[u] += lr / np.sqrt(GP[u, 0]) * gp
            Q[i] += lr / np.sqrt(GQ[i, 0]) * gq
            GP[u, 0] += (gp @ gp) / k
            GQ[i, 0] += (gq @ gq) / k
    return sse


def adaptive_state(pb, pad=0):
    """Factors (with ``pad`` zero columns), zero biases and unit accumulators."""
    P = np.pad(pb["P"], ((0, 0), (0, pad)))
    Q = np.pad(pb["Q"], ((0, 0), (0, pad)))
    n_u, n_i = len(P), len(Q)
    return [
        P, Q, np.zeros(n_u, np.float32), np.zeros(n_i, np.float32),
        np.ones((n_u, 2), np.float32), np.ones((n_i, 2), np.float32),
    ]  # fmt: skip


@pytest.mark.parametrize("biased", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
def test_adaptive_sgd_epoch_matches_numpy_reference(biased, weighted):
    """Padding columns stay zero and do not count in the accumulators' average."""
    pb = problem()
    users, items, values, block_ptr, _, _ = pb["arranged"]
    weights = NO_WEIGHTS
    if weighted:
        weights = np.random.default_rng(4).uniform(0, 2, len(values)).astype(np.float32)
        weights[users == users[0]] = 0.0
    args = (users, items, values, weights, block_ptr, pb["schedule"])
    k = pb["P"].shape[1]
    got = adaptive_state(pb, pad=8)
    want = [a.astype(np.float64) for a in adaptive_state(pb)]
    for _ in range(3):  # later epochs start from grown accumulators and non-zero biases
        sse = sgd_epoch_adaptive(*args, *got, 3.0, 0.1, 0.05, biased, k, np.zeros(16), 1)
        ref = reference_adaptive_epoch(*args, *want, 3.0, 0.1, 0.05, biased, k)
        assert sse == pytest.approx(ref, rel=1e-4)
    assert not got[0][:, k:].any() and not got[1][:, k:].any()
    got[0], got[1] = got[0][:, :k], got[1][:, :k]
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert (got[4] > 1).any() and (got[5] > 1).any()
    if not biased:
        assert not got[2].any() and not got[3].any() and (got[4][:, 1] == 1).all()
    if weighted:
        np.testing.assert_array_equal(got[4][users[0]], [1.0, 1.0])


@pytest.mark.skipif(max_threads() < 2, reason="needs 2 threads")
def test_adaptive_sgd_epoch_is_identical_on_any_thread_count():
    results = []
    for n_threads in (1, 2, 5, 1):
        pb = problem(n_users=300, n_items=200, density=0.2, n_blocks=8, k=16, seed=3)
        users, items, values, block_ptr, _, _ = pb["arranged"]
        args = (users, items, values, NO_WEIGHTS, block_ptr, pb["schedule"])
        state = adaptive_state(pb)
        with using_threads(min(n_threads, max_threads())):
            sses = [
                sgd_epoch_adaptive(*args, *state, 3.0, 0.1, 0.05, True, 16, np.zeros(64), n_threads)
                for _ in range(3)
            ]
        results.append((sses, *state))
    for other in results[1:]:
        assert other[0] == results[0][0]
        for a, b in zip(other[1:], results[0][1:], strict=True):
            np.testing.assert_array_equal(a, b)
