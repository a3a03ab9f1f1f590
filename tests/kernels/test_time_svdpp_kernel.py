"""time_svdpp kernel against a literal NumPy implementation of per-rating timeSVD++ SGD."""

import numpy as np
import pytest
import scipy.sparse as sp

from factorkit._threads import using_threads
from factorkit.kernels._jit import read_only
from factorkit.kernels.svdpp import svdpp_rating_order
from factorkit.kernels.time_svdpp import RATE_NAMES, time_svdpp_epoch

RATES = dict(
    lr=0.05,
    reg=0.03,
    lr_bias=0.04,
    reg_bias=0.02,
    lr_implicit=0.03,
    reg_implicit=0.05,
    lr_drift=0.01,
    reg_drift=0.5,
    reg_day=0.2,
    reg_bin=0.3,
)
N_BINS = 4


def _problem(dtype, n_users=30, n_items=20, density=0.4, k=4, seed=0):
    rng = np.random.default_rng(seed)
    mat = sp.random(n_users, n_items, density=density, format="csr", random_state=seed)
    mat.data = rng.integers(1, 6, len(mat.data)).astype(np.float64)
    mat.sort_indices()
    mat = sp.vstack([mat, sp.csr_matrix((1, n_items))]).tocsr()  # a user without ratings
    nnz = mat.nnz
    # per rating: a bin, a drift in [-3, 3] and a (user, day) slot; users own their slots
    user_of = np.repeat(np.arange(n_users + 1), np.diff(mat.indptr))
    day = rng.integers(0, 3, nnz)
    keys, slots = np.unique(user_of * 3 + day, return_inverse=True)
    per_rating = (
        rng.integers(0, N_BINS, nnz).astype(np.int32),
        rng.uniform(-3, 3, nnz).astype(dtype),
        slots.reshape(-1).astype(np.int64),
    )
    state = {
        "user_bias": rng.normal(0, 0.1, n_users + 1),
        "user_drift": rng.normal(0, 0.1, n_users + 1),
        "day_bias": rng.normal(0, 0.1, len(keys)),
        "item_bias": rng.normal(0, 0.1, n_items),
        "item_bin_bias": rng.normal(0, 0.1, (n_items, N_BINS)),
        "user_factors": rng.normal(0, 0.3, (n_users + 1, k)),
        "user_drift_factors": rng.normal(0, 0.1, (n_users + 1, k)),
        "item_factors": rng.normal(0, 0.3, (n_items, k)),
        "implicit_factors": rng.normal(0, 0.3, (n_items, k)),
    }
    state = {name: arr.astype(dtype) for name, arr in state.items()}
    csr = (mat.indptr.astype(np.int64), mat.indices.astype(np.int32), mat.data.astype(np.float32))
    return csr, per_rating, state


def _reference_epoch(csr, per_rating, user_order, rating_order, mu, s, rates, weights=None):
    """Per-rating SGD as in Koren (2009): the implicit sum is recomputed before every
    rating and every y_j of the user is updated after it. With ``weights`` every step of
    rating ``pos`` is ``weights[pos]`` times as long."""
    indptr, items, values = csr
    bins, devs, slots = per_rating
    bu, au, bt = s["user_bias"], s["user_drift"], s["day_bias"]
    bi, bib = s["item_bias"], s["item_bin_bias"]
    p, ap, q, y = (
        s["user_factors"],
        s["user_drift_factors"],
        s["item_factors"],
        s["implicit_factors"],
    )
    loss = 0.0
    for u in user_order:
        rated = items[indptr[u] : indptr[u + 1]]
        if len(rated) == 0:
            continue
        norm = 1.0 / np.sqrt(len(rated))
        for pos in rating_order[indptr[u] : indptr[u + 1]]:
            i, b, dev, t = items[pos], bins[pos], float(devs[pos]), slots[pos]
            w = 1.0 if weights is None else float(weights[pos])
            r = {name: rate * w if name.startswith("lr") else rate for name, rate in rates.items()}
            z = norm * y[rated].sum(axis=0)
            pu_t = p[u] + ap[u] * dev + z
            pred = mu + bu[u] + au[u] * dev + bt[t] + bi[i] + bib[i, b] + q[i] @ pu_t
            err = values[pos] - pred
            loss += w * err * err
            bu[u] += r["lr_bias"] * (err - r["reg_bias"] * bu[u])
            au[u] += r["lr_drift"] * (err * dev - r["reg_drift"] * au[u])
            bt[t] += r["lr_bias"] * (err - r["reg_day"] * bt[t])
            bi[i] += r["lr_bias"] * (err - r["reg_bias"] * bi[i])
            bib[i, b] += r["lr_bias"] * (err - r["reg_bin"] * bib[i, b])
            pu, apu, qi = p[u].copy(), ap[u].copy(), q[i].copy()
            p[u] += r["lr"] * (err * qi - r["reg"] * pu)
            ap[u] += r["lr_drift"] * (err * qi * dev - r["reg_drift"] * apu)
            q[i] += r["lr"] * (err * (pu + apu * dev + z) - r["reg"] * qi)
            y[rated] += r["lr_implicit"] * (err * norm * qi - r["reg_implicit"] * y[rated])
    return loss


def _run_kernel(csr, per_rating, user_order, seed, mu, state, dtype, n_threads=1, weights=None):
    t = np.dtype(dtype).type
    rates = np.array([RATES[name] for name in RATE_NAMES], dtype=dtype)
    weights = np.zeros(0, dtype) if weights is None else weights.astype(dtype)
    with using_threads(n_threads):
        return time_svdpp_epoch(
            *read_only(*csr),  # as the models pass them: one compiled variant
            weights,
            *per_rating,
            user_order,
            np.uint64(seed),
            t(mu),
            state["user_bias"],
            state["user_drift"],
            state["day_bias"],
            state["item_bias"],
            state["item_bin_bias"],
            state["user_factors"],
            state["user_drift_factors"],
            state["item_factors"],
            state["implicit_factors"],
            rates,
        )


def test_rate_names_cover_the_reference():
    assert set(RATE_NAMES) == set(RATES)


# float32, as the models run (float64 would compile a variant nobody uses); the reference
# runs in float64
@pytest.mark.parametrize(("dtype", "rtol"), [(np.float32, 3e-4)])
def test_epoch_matches_per_rating_reference(dtype, rtol):
    csr, per_rating, state = _problem(dtype)
    user_order = np.random.default_rng(1).permutation(len(csr[0]) - 1).astype(np.int64)
    seed, mu = 12345, 3.1
    ref = {name: arr.astype(np.float64) for name, arr in state.items()}
    rating_order = svdpp_rating_order(csr[0], np.uint64(seed))
    for _ in range(2):  # two epochs: the second starts from updated state
        ref_loss = _reference_epoch(csr, per_rating, user_order, rating_order, mu, ref, RATES)
        loss = _run_kernel(csr, per_rating, user_order, seed, mu, state, dtype)
        assert loss == pytest.approx(ref_loss, rel=rtol)
        for name in state:
            assert state[name].dtype == dtype
            np.testing.assert_allclose(state[name], ref[name], rtol=rtol, atol=rtol, err_msg=name)


def test_weighted_epoch_matches_per_rating_reference():
    """Weighted steps through the closed-form implicit update: weight 0 skips a rating."""
    csr, per_rating, state = _problem(np.float32)
    weights = np.random.default_rng(2).uniform(0, 2, len(csr[2])).astype(np.float32)
    weights[::5] = 0.0
    user_order = np.random.default_rng(1).permutation(len(csr[0]) - 1).astype(np.int64)
    ref = {name: arr.astype(np.float64) for name, arr in state.items()}
    rating_order = svdpp_rating_order(csr[0], np.uint64(7))
    for _ in range(2):
        ref_loss = _reference_epoch(
            csr, per_rating, user_order, rating_order, 3.1, ref, RATES, weights
        )
        loss = _run_kernel(csr, per_rating, user_order, 7, 3.1, state, np.float32, weights=weights)
        assert loss == pytest.approx(ref_loss, rel=3e-4)
        for name in state:
            np.testing.assert_allclose(state[name], ref[name], rtol=3e-4, atol=3e-4, err_msg=name)


def test_epoch_single_thread_is_bit_for_bit_repeatable():
    results = []
    for _ in range(2):
        csr, per_rating, state = _problem(np.float32, n_users=200, n_items=50)
        order = np.random.default_rng(3).permutation(len(csr[0]) - 1).astype(np.int64)
        loss = _run_kernel(csr, per_rating, order, 7, 3.0, state, np.float32)
        results.append((loss, state))
    assert results[0][0] == results[1][0]
    for name in results[0][1]:
        np.testing.assert_array_equal(results[0][1][name], results[1][1][name])


def test_epoch_hogwild_two_threads_stays_close():
    csr, per_rating, state = _problem(np.float32, n_users=400, n_items=60, density=0.2)
    serial = {name: arr.copy() for name, arr in state.items()}
    order = np.arange(len(csr[0]) - 1, dtype=np.int64)
    loss1 = _run_kernel(csr, per_rating, order, 5, 3.0, serial, np.float32, n_threads=1)
    loss2 = _run_kernel(csr, per_rating, order, 5, 3.0, state, np.float32, n_threads=2)
    assert loss2 == pytest.approx(loss1, rel=0.05)
    for name in state:
        assert np.isfinite(state[name]).all()


def test_zero_time_terms_reduce_to_svdpp():
    """With the time terms at zero and their steps at zero (drift, and the bias step that
    also moves the day and bin offsets), an epoch is exactly SVD++'s."""
    from factorkit.kernels.svdpp import svdpp_epoch

    csr, per_rating, state = _problem(np.float32)
    csr = tuple(read_only(*csr))  # as the models pass them
    for name in ("user_drift", "day_bias", "item_bin_bias", "user_drift_factors"):
        state[name][:] = 0
    twin = {name: arr.copy() for name, arr in state.items()}
    order = np.arange(len(csr[0]) - 1, dtype=np.int64)
    rates = dict(RATES, lr_drift=0.0, lr_bias=0.0)
    with using_threads(1):
        loss = time_svdpp_epoch(
            *csr, np.zeros(0, np.float32), *per_rating, order, np.uint64(3), np.float32(3.0),
            state["user_bias"], state["user_drift"], state["day_bias"], state["item_bias"],
            state["item_bin_bias"], state["user_factors"], state["user_drift_factors"],
            state["item_factors"], state["implicit_factors"],
            np.array([rates[n] for n in RATE_NAMES], dtype=np.float32),
        )  # fmt: skip
        ref = svdpp_epoch(
            *csr, np.zeros(0, np.float32), order, np.uint64(3), np.float32(3.0),
            twin["user_bias"], twin["item_bias"], twin["user_factors"], twin["item_factors"],
            twin["implicit_factors"],
            *(np.float32(rates[n]) for n in ("lr", "reg")), np.float32(0.0),
            *(np.float32(rates[n]) for n in ("reg_bias", "lr_implicit", "reg_implicit")),
        )  # fmt: skip
    assert loss == pytest.approx(ref, rel=1e-5)
    for name in ("user_factors", "item_factors", "implicit_factors"):
        np.testing.assert_allclose(state[name], twin[name], rtol=1e-5, atol=1e-6, err_msg=name)
    for name in ("user_drift", "day_bias", "item_bin_bias", "user_drift_factors"):
        assert not state[name].any(), name


def test_tasks_visit_every_user_once_whatever_the_threads():
    """Users who share no item share no state, so the 64 tasks of a two-thread epoch must
    give exactly the one-thread result: each user visited once, by one task."""
    n_users, per_user, k = 150, 3, 4
    rng = np.random.default_rng(4)
    indptr = np.arange(0, n_users * per_user + 1, per_user, dtype=np.int64)
    items = np.arange(n_users * per_user, dtype=np.int32)  # user u rates items 3u..3u+2
    values = rng.integers(1, 6, len(items)).astype(np.float32)
    csr = (indptr, items, values)
    nnz, n_items = len(items), len(items)
    per_rating = (
        rng.integers(0, N_BINS, nnz).astype(np.int32),
        rng.uniform(-3, 3, nnz).astype(np.float32),
        np.arange(nnz, dtype=np.int64),  # one day slot per rating, owned by its user
    )
    shapes = {
        "user_bias": (n_users,),
        "user_drift": (n_users,),
        "day_bias": (nnz,),
        "item_bias": (n_items,),
        "item_bin_bias": (n_items, N_BINS),
        "user_factors": (n_users, k),
        "user_drift_factors": (n_users, k),
        "item_factors": (n_items, k),
        "implicit_factors": (n_items, k),
    }
    state = {name: rng.normal(0, 0.1, shape).astype(np.float32) for name, shape in shapes.items()}
    twin = {name: arr.copy() for name, arr in state.items()}
    start = {name: arr.copy() for name, arr in state.items()}
    order = rng.permutation(n_users).astype(np.int64)
    loss1 = _run_kernel(csr, per_rating, order, 9, 3.0, state, np.float32, n_threads=1)
    loss2 = _run_kernel(csr, per_rating, order, 9, 3.0, twin, np.float32, n_threads=2)
    assert loss2 == pytest.approx(loss1, rel=1e-12)  # partial sums in another grouping
    for name in state:
        np.testing.assert_array_equal(state[name], twin[name], err_msg=name)
    for name in state:  # every user was trained: all their rows and slots moved
        moved = np.abs(state[name] - start[name]).reshape(len(state[name]), -1).max(axis=1)
        assert (moved > 0).all(), name
