"""numba NMF kernels against NumPy references, float32 and float64."""

import numpy as np
import pytest
import scipy.sparse as sp

from factorkit._threads import using_threads
from factorkit.kernels import nmf
from factorkit.kernels.nmf import (
    csr_matmul_dense,
    csr_sampled_dots,
    nmf_cd_rows,
    nmf_masked_cd_rows,
)


def _cd_reference(W, HHt, XHt):
    """The serial order of scikit-learn's _update_cdnmf_fast: components outer, rows inner."""
    W = W.copy()
    viol = 0.0
    for t in range(W.shape[1]):
        for i in range(W.shape[0]):
            grad = -XHt[i, t] + HHt[t] @ W[i]
            viol += abs(min(0.0, grad) if W[i, t] == 0 else grad)
            if HHt[t, t] != 0:
                W[i, t] = max(W[i, t] - grad / HHt[t, t], 0.0)
    return W, viol


@pytest.fixture(params=[np.float32, np.float64])
def problem(request):
    dt = request.param
    rng = np.random.default_rng(0)
    X = sp.random(30, 20, density=0.3, format="csr", random_state=0, dtype=dt)
    X.sort_indices()
    return dt, X, rng.random((30, 4)).astype(dt), rng.random((20, 4)).astype(dt)


def test_sparse_products(problem):
    dt, X, W, Ht = problem
    out = np.empty((30, 4), dtype=dt)
    csr_matmul_dense(X.indptr, X.indices, X.data, Ht, out)
    np.testing.assert_allclose(out, X @ Ht, rtol=1e-5)
    dots = np.empty(X.nnz, dtype=dt)
    csr_sampled_dots(X.indptr, X.indices, W, Ht, dots)
    rows, cols = np.repeat(np.arange(30), np.diff(X.indptr)), X.indices
    np.testing.assert_allclose(dots, (W @ Ht.T)[rows, cols], rtol=1e-5)


def test_cd_rows_matches_serial_reference(problem):
    dt, X, W, Ht = problem
    HHt = (Ht.T @ Ht).astype(dt)
    XHt = (X @ Ht).astype(dt)
    want, viol = _cd_reference(W.astype(np.float64), HHt.astype(np.float64), XHt)
    got = W.copy()
    v = nmf_cd_rows(got, HHt, XHt)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    assert v == pytest.approx(viol, rel=1e-4)


def test_masked_cd_solves_each_rows_observed_problem(problem):
    dt, X, W, Ht = problem
    got = W.copy()
    no_weights = np.empty(0, dt)
    nmf_masked_cd_rows(
        X.indptr, X.indices, X.data, no_weights, got, Ht, dt(0.0), dt(0.06), dt(0.01), 200
    )
    # KKT conditions of min_{w>=0} 0.5 |x_obs - H_obs w|^2 + 0.5 (0.06 + 0.01 n) |w|^2
    for i in range(30):
        cols = X.indices[X.indptr[i] : X.indptr[i + 1]]
        if len(cols) == 0:
            continue
        H = Ht[cols].astype(np.float64)
        x = X.data[X.indptr[i] : X.indptr[i + 1]]
        grad = H.T @ (H @ got[i] - x) + (0.06 + 0.01 * len(cols)) * got[i]
        assert (got[i] >= 0).all()
        np.testing.assert_allclose(grad[got[i] > 0], 0.0, atol=1e-3)
        assert (grad[got[i] == 0] >= -1e-3).all()


def test_masked_cd_weight_two_equals_the_entry_given_twice(problem):
    """A weight-2 entry is the same entry stored twice (loss and per-entry penalty); a
    weight-0 entry is no entry; weights of 1 are the unweighted solve."""
    dt, X, W, Ht = problem
    rng = np.random.default_rng(1)
    weights = rng.choice(np.array([0.0, 1.0, 2.0], dt), size=X.nnz)
    # reference: each entry repeated weight times, unweighted
    rows = np.repeat(np.arange(30), np.diff(X.indptr))
    reps = weights.astype(np.int64)
    # the repeated CSR built by hand (scipy would sum the duplicates)
    indptr = np.zeros(31, np.int64)
    np.cumsum(np.bincount(np.repeat(rows, reps), minlength=30), out=indptr[1:])
    indices = np.repeat(X.indices, reps).astype(X.indices.dtype)
    data = np.repeat(X.data, reps)
    args = (dt(0.0), dt(0.06), dt(0.01), 200)
    want = W.copy()
    v_want = nmf_masked_cd_rows(indptr, indices, data, np.empty(0, dt), want, Ht, *args)
    got = W.copy()
    v_got = nmf_masked_cd_rows(X.indptr, X.indices, X.data, weights, got, Ht, *args)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    assert v_got == pytest.approx(v_want, rel=1e-3)
    ones, plain = W.copy(), W.copy()
    nmf_masked_cd_rows(X.indptr, X.indices, X.data, np.ones(X.nnz, dt), ones, Ht, *args)
    nmf_masked_cd_rows(X.indptr, X.indices, X.data, np.empty(0, dt), plain, Ht, *args)
    np.testing.assert_allclose(ones, plain, rtol=1e-6, atol=1e-7)


# --- fused half-steps (float32, the dtype NMF and NonNegativeMF pass) -------------------
@pytest.fixture
def f32_problem():
    rng = np.random.default_rng(3)
    X = sp.random(70, 50, density=0.2, format="csr", random_state=3, dtype=np.float32)
    X.sort_indices()
    A = rng.random((70, 5)).astype(np.float32)
    B = rng.random((50, 5)).astype(np.float32)
    return X, A, B


def _mu_reference(X, A, B, mode, l1, l2):
    """scikit-learn's multiplicative update of A for X ~ A B^T, in float64 NumPy."""
    X64, A64, B64 = X.toarray().astype(np.float64), A.astype(np.float64), B.astype(np.float64)
    P = A64 @ B64.T
    obs = X.toarray() != 0  # the pattern: the masked modes' observed entries
    if mode == nmf.MU_FROBENIUS:
        numer, denom = X64 @ B64, A64 @ (B64.T @ B64)
    elif mode == nmf.MU_FROBENIUS_MASKED:
        numer, denom = X64 @ B64, np.where(obs, P, 0.0) @ B64
    else:
        ratio = np.where(obs, X64 / np.maximum(P, nmf.EPS), 0.0)
        numer = ratio @ B64
        denom = obs @ B64 if mode == nmf.MU_KL_MASKED else np.broadcast_to(B64.sum(0), A.shape)
    return A64 * numer / (denom + l1 + l2 * A64)


@pytest.mark.parametrize(
    "mode", [nmf.MU_FROBENIUS, nmf.MU_FROBENIUS_MASKED, nmf.MU_KL, nmf.MU_KL_MASKED]
)
def test_sparse_mu_rows_is_one_multiplicative_update(f32_problem, mode):
    X, A, B = f32_problem
    got = A.copy()
    G = B.T @ B
    base = B.sum(axis=0)
    l1, l2 = np.float32(0.01), np.float32(0.02)
    nmf.nmf_sparse_mu_rows(X.indptr, X.indices, X.data, got, B, G, base, l1, l2, mode, False)
    np.testing.assert_allclose(got, _mu_reference(X, A, B, mode, 0.01, 0.02), rtol=2e-4)


def test_dense_mu_rows_frobenius_and_kl(f32_problem):
    X, A, B = f32_problem
    D = X.toarray() + np.float32(0.05)  # dense: every entry observed
    Dsp = sp.csr_matrix(D)
    G, none = B.T @ B, np.empty(0, np.float32)
    zero, l2 = np.float32(0.0), np.float32(0.02)
    got = A.copy()
    nmf.nmf_dense_mu_rows(D, got, B, G, none, zero, l2, False, False)
    want = _mu_reference(Dsp, A, B, nmf.MU_FROBENIUS, 0.0, 0.02)
    np.testing.assert_allclose(got, want, rtol=2e-4)
    got = A.copy()
    nmf.nmf_dense_mu_rows(D, got, B, np.empty((0, 0), np.float32), B.sum(0), zero, l2, True, False)
    np.testing.assert_allclose(got, _mu_reference(Dsp, A, B, nmf.MU_KL, 0.0, 0.02), rtol=2e-4)
    # the H side reads X.T as a view: as a transposed copy (BLAS may round differently)
    view, copy = B.copy(), B.copy()
    nmf.nmf_dense_mu_rows(D.T, view, A, A.T @ A, none, zero, l2, False, False)
    nmf.nmf_dense_mu_rows(np.ascontiguousarray(D.T), copy, A, A.T @ A, none, zero, l2, False, False)
    np.testing.assert_allclose(view, copy, rtol=1e-6)


def test_fused_cd_matches_product_then_sweep(f32_problem):
    X, A, B = f32_problem
    G = B.T @ B
    G.flat[::6] += np.float32(0.1)  # l2 on the diagonal
    l1 = np.float32(0.05)
    want = A.copy()
    v_want = nmf_cd_rows(want, G, (X @ B) - l1)
    sparse = A.copy()
    v_sparse = nmf.nmf_sparse_cd_rows(X.indptr, X.indices, X.data, sparse, B, G, l1)
    dense = A.copy()
    v_dense = nmf.nmf_dense_cd_rows(X.toarray(), dense, B, G, l1)
    np.testing.assert_allclose(sparse, want, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(dense, want, rtol=1e-5, atol=1e-7)
    assert v_sparse == pytest.approx(v_want, rel=1e-5)
    assert v_dense == pytest.approx(v_want, rel=1e-5)


def test_dense_loss(f32_problem):
    X, A, B = f32_problem
    D = X.toarray() + np.float32(0.05)
    P = A.astype(np.float64) @ B.T.astype(np.float64)
    assert nmf.dense_loss(D, A, B, False) == pytest.approx(0.5 * np.sum((D - P) ** 2), rel=1e-5)
    kl = np.sum(D * np.log(D / P) - D + P)
    assert nmf.dense_loss(D, A, B, True) == pytest.approx(kl, rel=1e-5)


def test_results_do_not_depend_on_the_thread_count():
    """Blocks depend on the data only: one thread and two give the same bits."""
    X = sp.random(3000, 400, density=0.05, format="csr", random_state=0, dtype=np.float32)
    X.sort_indices()
    rng = np.random.default_rng(0)
    A, B = rng.random((3000, 6), dtype=np.float32), rng.random((400, 6), dtype=np.float32)
    out = []
    for threads in (1, 2):
        got = A.copy()
        with using_threads(threads):
            v = nmf.nmf_sparse_cd_rows(X.indptr, X.indices, X.data, got, B, B.T @ B, np.float32(0))
            ws = np.ones(X.nnz, np.float32)
            nmf_masked_cd_rows(X.indptr, X.indices, X.data, ws, got, B, *[np.float32(0)] * 3, 2)
        out.append((got, v))
    np.testing.assert_array_equal(out[0][0], out[1][0])
    assert out[0][1] == out[1][1]


@pytest.mark.parametrize(
    ("dt", "k"),
    # one vector register holds 16 float32 or 8 float64 components: within one, exactly
    # one, wider than one (a partial second vector), wider than two (no vectors)
    [
        (np.float32, 3),
        (np.float32, 16),
        (np.float32, 19),
        (np.float32, 37),
        (np.float64, 8),
        (np.float64, 11),
        (np.float64, 17),
    ],
)
def test_fused_half_steps_for_any_number_of_components(dt, k):
    rng = np.random.default_rng(k)
    X = sp.random(71, 40, density=0.25, format="csr", random_state=k, dtype=dt)  # odd rows
    X.sort_indices()
    A, B = rng.random((71, k)).astype(dt), rng.random((40, k)).astype(dt)
    out = np.empty((71, k), dt)
    csr_matmul_dense(X.indptr, X.indices, X.data, B, out)
    np.testing.assert_allclose(out, X @ B, rtol=1e-5)
    dots = np.empty(X.nnz, dt)
    csr_sampled_dots(X.indptr, X.indices, A, B, dots)
    rows = np.repeat(np.arange(71), np.diff(X.indptr))
    np.testing.assert_allclose(dots, (A @ B.T)[rows, X.indices], rtol=1e-5)
    x, p = X.data.astype(np.float64), (A.astype(np.float64) @ B.T)[rows, X.indices]
    terms = nmf.csr_loss_terms(X.indptr, X.indices, X.data, A, B, False)
    np.testing.assert_allclose(terms, (x @ x, x @ p), rtol=1e-5)
    terms = nmf.csr_loss_terms(X.indptr, X.indices, X.data, A, B, True)
    np.testing.assert_allclose(terms, (np.sum(x * np.log(x / p) - x), p.sum()), rtol=1e-5)
    G = B.T @ B
    G.flat[:: k + 1] += dt(0.1)
    l1 = dt(0.05)
    want = A.copy()
    v_want = nmf_cd_rows(want, G, (X @ B) - l1)
    got = A.copy()
    v_got = nmf.nmf_sparse_cd_rows(X.indptr, X.indices, X.data, got, B, G, l1)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    assert v_got == pytest.approx(v_want, rel=1e-4)
    got = A.copy()
    l2 = dt(0.02)
    nmf.nmf_sparse_mu_rows(
        X.indptr, X.indices, X.data, got, B, B.T @ B, np.empty(0, dt), l1, l2, nmf.MU_FROBENIUS,
        False,
    )  # fmt: skip
    want = _mu_reference(X, A, B, nmf.MU_FROBENIUS, 0.05, 0.02)
    np.testing.assert_allclose(got, want, rtol=2e-4)


@pytest.mark.parametrize(("dt", "k"), [(np.float32, 10), (np.float32, 3), (np.float64, 7)])
def test_dense_fused_iteration_matches_two_half_steps(dt, k):
    """One pass over dense X updates A and forms A^T X with the updated A; the other
    side's update from it equals a half-step on X^T. Rows: more than two blocks, and a
    last block whose length is not a multiple of four; odd k pads the products."""
    rng = np.random.default_rng(k)
    m, n = 2 * nmf.DENSE_BLOCK_ROWS + 45, 37
    D = rng.random((m, n)).astype(dt)
    A, B = rng.random((m, k)).astype(dt), rng.random((n, k)).astype(dt)
    l1, l2 = dt(0.05), dt(0.1)
    G = B.T @ B
    G.flat[:: k + 1] += l2
    want = A.copy()
    v_want = nmf_cd_rows(want, G, D @ B - l1)
    got = A.copy()
    P = nmf.dense_fused_buffer(m, k, n, dt)
    v_got = nmf.nmf_dense_fused_rows(D, got, B, G, l1, l2, True, P)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    assert v_got == pytest.approx(v_want, rel=1e-4)
    np.testing.assert_allclose(P.sum(axis=0)[:k], got.T @ D, rtol=1e-5)
    # the other side, from the partial products: CD, then the multiplicative update
    GA = got.T @ got
    GA.flat[:: k + 1] += l2
    side_want, side_got = B.copy(), B.copy()
    v_want = nmf_cd_rows(side_want, GA, D.T @ got - l1)
    v_got = nmf.nmf_dense_other_side(P.copy(), side_got, GA, l1, l2, True)
    np.testing.assert_allclose(side_got, side_want, rtol=1e-4, atol=1e-6)
    assert v_got == pytest.approx(v_want, rel=1e-4)
    mu = A.copy()
    nmf.nmf_dense_fused_rows(D, mu, B, B.T @ B, l1, l2, False, P)
    Dsp = sp.csr_matrix(D)
    want = _mu_reference(Dsp, A, B, nmf.MU_FROBENIUS, 0.05, 0.1)
    np.testing.assert_allclose(mu, want, rtol=2e-4)
    side = B.copy()
    nmf.nmf_dense_other_side(P, side, mu.T @ mu, l1, l2, False)
    want = _mu_reference(sp.csr_matrix(D.T), B, mu, nmf.MU_FROBENIUS, 0.05, 0.1)
    np.testing.assert_allclose(side, want, rtol=2e-4)


def test_dense_fused_results_do_not_depend_on_the_thread_count():
    rng = np.random.default_rng(1)
    D = rng.random((700, 90), dtype=np.float32)
    A, B = rng.random((700, 6), dtype=np.float32), rng.random((90, 6), dtype=np.float32)
    out = []
    for threads in (1, 2):
        got, P = A.copy(), nmf.dense_fused_buffer(700, 6, 90, np.float32)
        with using_threads(threads):
            v = nmf.nmf_dense_fused_rows(D, got, B, B.T @ B, np.float32(0), np.float32(0), True, P)
        out.append((got, v, P))
    np.testing.assert_array_equal(out[0][0], out[1][0])
    np.testing.assert_array_equal(out[0][2], out[1][2])
    assert out[0][1] == out[1][1]


@pytest.mark.parametrize(
    ("dt", "k", "cd"),
    [(np.float32, 10, False), (np.float32, 10, True), (np.float32, 3, False),
     (np.float64, 7, True), (np.float32, 20, False)],
)  # fmt: skip
def test_dense_iteration_matches_the_two_half_steps(dt, k, cd):
    """One call per iteration (the last block's thread runs the other side) gives the
    two half-steps' results, leaves the next iteration's B^T and B^T B (+ l2) in its
    buffers, and the same bits on 1 and 2 threads. k = 10: two tiles of 5 components;
    3: the one-component remainder; 20: past a float32 vector (row-by-row updates)."""
    rng = np.random.default_rng(k)
    m, n = 2 * nmf.DENSE_BLOCK_ROWS + 45, 75
    D = rng.random((m, n)).astype(dt)
    A, B = rng.random((m, k)).astype(dt), rng.random((n, k)).astype(dt)
    l1a, l2a, l1b, l2b = dt(0.05), dt(0.1), dt(0.02), dt(0.3)
    want_A, want_B = A.copy(), B.copy()
    G = want_B.T @ want_B
    if cd:
        G.flat[:: k + 1] += l2a
    P = nmf.dense_fused_buffer(m, k, n, dt)
    v_want = nmf.nmf_dense_fused_rows(D, want_A, want_B, G, l1a, l2a, cd, P)
    GA = want_A.T @ want_A
    if cd:
        GA.flat[:: k + 1] += l2b
    v_want += nmf.nmf_dense_other_side(P, want_B, GA, l1b, l2b, cd)
    out = []
    for threads in (1, 2):
        got_A, got_B = A.copy(), B.copy()
        buffers = nmf.dense_iteration_buffers(D, got_A, got_B, l2a, cd)
        with using_threads(threads):
            v = nmf.nmf_dense_iteration(D, got_A, got_B, buffers, l1a, l2a, l1b, l2b, cd)
        out.append((got_A, got_B, v))
        np.testing.assert_allclose(got_A, want_A, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(got_B, want_B, rtol=1e-4, atol=1e-6)
        assert v == pytest.approx(v_want, rel=1e-4, abs=1e-9)
        Bt, G_next = buffers[0], buffers[1]
        np.testing.assert_array_equal(Bt[:k], got_B.T)
        want_G = got_B.T @ got_B
        if cd:
            want_G.flat[:: k + 1] += l2a
        np.testing.assert_allclose(G_next, want_G, rtol=1e-5)
        np.testing.assert_array_equal(G_next, G_next.T)
    for a, b in zip(out[0], out[1], strict=True):
        np.testing.assert_array_equal(a, b)


def test_dense_convert_scan_counts_what_the_checks_reject():
    rng = np.random.default_rng(0)
    X = rng.random((300, 500))  # float64, C order
    Y, bad = nmf.dense_convert_scan(X, np.float32, 2)
    assert bad == 0 and Y.dtype == np.float32 and Y.flags.c_contiguous
    np.testing.assert_array_equal(Y, X.astype(np.float32))
    Y32, _ = nmf.dense_convert_scan(Y, np.float32)
    assert Y32 is Y  # already the working layout: no copy
    F, _ = nmf.dense_convert_scan(np.asfortranarray(X), np.float64)
    assert F.flags.c_contiguous and np.array_equal(F, X)
    X[3, 4], X[100, 7], X[299, 499] = -0.5, np.nan, np.inf
    assert nmf.dense_convert_scan(X, np.float32, 2)[1] == 3
