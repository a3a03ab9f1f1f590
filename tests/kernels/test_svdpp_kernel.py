"""svdpp kernels against a literal NumPy implementation of per-rating SVD++ SGD."""

import numpy as np
import pytest
import scipy.sparse as sp

from factorkit._threads import using_threads
from factorkit.kernels.svdpp import svdpp_epoch, svdpp_rating_order, svdpp_user_vectors

RATES = dict(lr=0.05, reg=0.03, lr_bias=0.04, reg_bias=0.02, lr_implicit=0.03, reg_implicit=0.05)


def _problem(dtype, n_users=30, n_items=20, density=0.4, k=4, seed=0):
    rng = np.random.default_rng(seed)
    mat = sp.random(
        n_users, n_items, density=density, format="csr", random_state=seed, dtype=np.float64
    )
    mat.data = rng.integers(1, 6, len(mat.data)).astype(np.float64)
    mat.sort_indices()
    # one user without ratings: the kernel must skip it
    mat = sp.vstack([mat, sp.csr_matrix((1, n_items))]).tocsr()
    state = {
        "user_bias": rng.normal(0, 0.1, n_users + 1),
        "item_bias": rng.normal(0, 0.1, n_items),
        "user_factors": rng.normal(0, 0.3, (n_users + 1, k)),
        "item_factors": rng.normal(0, 0.3, (n_items, k)),
        "implicit_factors": rng.normal(0, 0.3, (n_items, k)),
    }
    state = {name: arr.astype(dtype) for name, arr in state.items()}
    return (
        mat.indptr.astype(np.int64),
        mat.indices.astype(np.int32),
        mat.data.astype(np.float32),
        state,
    )


def _reference_epoch(indptr, items, values, user_order, rating_order, mu, s, r, weights=None):
    """Per-rating SGD exactly as in Koren (2008) / Surprise: the implicit sum is
    recomputed before every rating and every y_j of the user is updated after it. With
    ``weights`` every step of rating ``pos`` is ``weights[pos]`` times as long."""
    bu, bi = s["user_bias"], s["item_bias"]
    p, q, y = s["user_factors"], s["item_factors"], s["implicit_factors"]
    loss = 0.0
    for u in user_order:
        rated = items[indptr[u] : indptr[u + 1]]
        if len(rated) == 0:
            continue
        norm = 1.0 / np.sqrt(len(rated))
        for pos in rating_order[indptr[u] : indptr[u + 1]]:
            i, value = items[pos], values[pos]
            w = 1.0 if weights is None else float(weights[pos])
            z = norm * y[rated].sum(axis=0)
            err = value - (mu + bu[u] + bi[i] + q[i] @ (p[u] + z))
            loss += w * err * err
            bu[u] += w * r["lr_bias"] * (err - r["reg_bias"] * bu[u])
            bi[i] += w * r["lr_bias"] * (err - r["reg_bias"] * bi[i])
            pu, qi = p[u].copy(), q[i].copy()
            p[u] += w * r["lr"] * (err * qi - r["reg"] * pu)
            q[i] += w * r["lr"] * (err * (pu + z) - r["reg"] * qi)
            y[rated] += w * r["lr_implicit"] * (err * norm * qi - r["reg_implicit"] * y[rated])
    return loss


def _run_kernel(
    indptr, items, values, user_order, seed, mu, state, dtype, n_threads=1, weights=None
):
    t = np.dtype(dtype).type
    weights = np.zeros(0, dtype) if weights is None else weights.astype(dtype)
    with using_threads(n_threads):
        return svdpp_epoch(
            indptr,
            items,
            values,
            weights,
            user_order,
            np.uint64(seed),
            t(mu),
            state["user_bias"],
            state["item_bias"],
            state["user_factors"],
            state["item_factors"],
            state["implicit_factors"],
            *(t(RATES[name]) for name in RATES),
        )


@pytest.mark.parametrize(("dtype", "rtol"), [(np.float64, 1e-9), (np.float32, 2e-4)])
def test_epoch_matches_per_rating_reference(dtype, rtol):
    indptr, items, values, state = _problem(dtype)
    user_order = np.random.default_rng(1).permutation(len(indptr) - 1).astype(np.int64)
    seed, mu = 12345, 3.1
    ref = {name: arr.astype(np.float64) for name, arr in state.items()}
    rating_order = svdpp_rating_order(indptr, np.uint64(seed))
    for _ in range(2):  # two epochs: the second starts from updated state
        ref_loss = _reference_epoch(
            indptr, items, values.astype(np.float64), user_order, rating_order, mu, ref, RATES
        )
        loss = _run_kernel(indptr, items, values, user_order, seed, mu, state, dtype)
        assert loss == pytest.approx(ref_loss, rel=rtol)
        for name in state:
            assert state[name].dtype == dtype
            np.testing.assert_allclose(state[name], ref[name], rtol=rtol, atol=rtol, err_msg=name)


def test_weighted_epoch_matches_per_rating_reference():
    """Weighted steps through the closed-form implicit update: weight 0 skips a rating."""
    indptr, items, values, state = _problem(np.float64)
    weights = np.random.default_rng(2).uniform(0, 2, len(values))
    weights[::5] = 0.0
    user_order = np.random.default_rng(1).permutation(len(indptr) - 1).astype(np.int64)
    ref = {name: arr.copy() for name, arr in state.items()}
    rating_order = svdpp_rating_order(indptr, np.uint64(7))
    for _ in range(2):
        ref_loss = _reference_epoch(
            indptr, items, values.astype(np.float64), user_order, rating_order, 3.1, ref, RATES,
            weights,
        )  # fmt: skip
        loss = _run_kernel(
            indptr, items, values, user_order, 7, 3.1, state, np.float64, weights=weights
        )
        assert loss == pytest.approx(ref_loss, rel=1e-9)
        for name in state:
            np.testing.assert_allclose(state[name], ref[name], rtol=1e-9, atol=1e-9, err_msg=name)


def test_epoch_single_thread_is_bit_for_bit_repeatable():
    results = []
    for _ in range(2):
        indptr, items, values, state = _problem(np.float32, n_users=200, n_items=50)
        order = np.random.default_rng(3).permutation(len(indptr) - 1).astype(np.int64)
        loss = _run_kernel(indptr, items, values, order, 7, 3.0, state, np.float32)
        results.append((loss, state))
    assert results[0][0] == results[1][0]
    for name in results[0][1]:
        np.testing.assert_array_equal(results[0][1][name], results[1][1][name])


def test_epoch_hogwild_two_threads_stays_close():
    indptr, items, values, state = _problem(np.float64, n_users=400, n_items=60, density=0.2)
    serial = {name: arr.copy() for name, arr in state.items()}
    order = np.arange(len(indptr) - 1, dtype=np.int64)
    loss1 = _run_kernel(indptr, items, values, order, 5, 3.0, serial, np.float64, n_threads=1)
    loss2 = _run_kernel(indptr, items, values, order, 5, 3.0, state, np.float64, n_threads=2)
    # races and a different visiting order change details, not the outcome
    assert loss2 == pytest.approx(loss1, rel=0.05)
    for name in state:
        assert np.isfinite(state[name]).all()


def test_rating_order_shuffles_within_rows():
    indptr = np.array([0, 0, 1, 5, 12, 40], dtype=np.int64)
    a = svdpp_rating_order(indptr, np.uint64(1))
    b = svdpp_rating_order(indptr, np.uint64(2))
    for row in range(len(indptr) - 1):
        seg = a[indptr[row] : indptr[row + 1]]
        np.testing.assert_array_equal(np.sort(seg), np.arange(indptr[row], indptr[row + 1]))
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(a, svdpp_rating_order(indptr, np.uint64(1)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_user_vectors_match_numpy(dtype):
    indptr, items, _, state = _problem(dtype)
    p, y = state["user_factors"], state["implicit_factors"]
    out = np.empty_like(p)
    svdpp_user_vectors(indptr, items, p, y, out)
    expected = p.astype(np.float64).copy()
    for u in range(len(indptr) - 1):
        rated = items[indptr[u] : indptr[u + 1]]
        if len(rated):
            expected[u] += y[rated].astype(np.float64).sum(axis=0) / np.sqrt(len(rated))
    np.testing.assert_allclose(out, expected, rtol=1e-5 if dtype == np.float32 else 1e-12)
