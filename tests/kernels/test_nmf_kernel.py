"""numba NMF kernels against NumPy references, float32 and float64."""

import numpy as np
import pytest
import scipy.sparse as sp

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
