"""The shared Gram and Cholesky kernels against NumPy."""

from __future__ import annotations

import numpy as np
import pytest

from factorkit.kernels.linalg import (
    GRAM_FLUSH_ROWS,
    cholesky_solve,
    gram_float64,
    gram_gemm,
    gram_update,
)

TOL = {np.float32: 2e-5, np.float64: 1e-12}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [0, 1, 7, 8, 19])
def test_gram_update_adds_the_weighted_gram_of_a_row_range(dtype, n):
    rng = np.random.default_rng(n)
    x = rng.standard_normal((n + 5, 6)).astype(dtype)
    w = rng.uniform(-1, 2, n + 5).astype(dtype)
    g = np.ones((6, 6), dtype=dtype)
    gram_update(x, w, 2, 2 + n, 6, g)
    rows = x[2 : 2 + n].astype(np.float64)
    expected = 1.0 + rows.T @ (w[2 : 2 + n, None] * rows)
    assert g.dtype == dtype
    np.testing.assert_allclose(g, expected, rtol=TOL[dtype], atol=TOL[dtype] * max(n, 1))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_unit_weights_give_the_plain_gram_exactly(dtype):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((8, 5)).astype(dtype)
    g1 = np.zeros((5, 5), dtype=dtype)
    g2 = np.zeros((5, 5), dtype=dtype)
    gram_update(x, np.ones(8, dtype), 0, 8, 5, g1)
    gram_update(x, np.ones(8, dtype) * 2, 0, 8, 5, g2)
    np.testing.assert_array_equal(2 * g1, g2)  # scaling by a power of two is exact


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gram_float64_is_float64_lower_triangle_in_blocks(dtype):
    """Over several flush blocks, float32 inputs sum to float64 accuracy per block."""
    rng = np.random.default_rng(2)
    n, d = 3 * GRAM_FLUSH_ROWS + 5, 9
    x = rng.standard_normal((n, d)).astype(dtype)
    w = rng.uniform(0.5, 3.0, n).astype(dtype)
    a = np.full((d, d), np.nan)
    g = np.empty((d, d), dtype=dtype)
    gram_float64(x, w, n, d, a, g)
    expected = x.astype(np.float64).T @ (w.astype(np.float64)[:, None] * x)
    lower = np.tril_indices(d)
    np.testing.assert_allclose(
        a[lower], expected[lower], rtol=1e-5 if dtype == np.float32 else 1e-12
    )
    assert np.isnan(a[np.triu_indices(d, 1)]).all()  # the upper triangle is not written


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [0, 1, 40, 3 * GRAM_FLUSH_ROWS + 5])
def test_gram_gemm_is_the_float64_lower_triangle_of_xw_t_x(dtype, n):
    """BLAS blocks, flushed into float64: the weighted Gram when ``xw`` is ``x`` scaled."""
    rng = np.random.default_rng(n)
    d = 9
    x = rng.standard_normal((n + 3, d)).astype(dtype)  # rows past n are not read
    w = rng.uniform(-1.0, 3.0, n + 3).astype(dtype)
    xw = (w[:, None] * x).astype(dtype)
    x[n:] = np.nan
    xw[n:] = np.nan
    a = np.full((d, d), np.nan)
    gram_gemm(xw, x, n, a, np.empty((d, d), dtype=dtype))
    rows = x[:n].astype(np.float64)
    expected = rows.T @ (w[:n].astype(np.float64)[:, None] * rows)
    lower = np.tril_indices(d)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(a[lower], expected[lower], rtol=tol, atol=tol * max(n, 1))
    assert np.isnan(a[np.triu_indices(d, 1)]).all()  # the upper triangle is not written


@pytest.mark.parametrize("m", [1, 2, 17, 66])
def test_cholesky_solve_matches_numpy(m):
    rng = np.random.default_rng(m)
    b = rng.standard_normal((m, m))
    a = b @ b.T + m * np.eye(m)
    rhs = rng.standard_normal(m)
    padded = np.full((m + 2, m + 2), np.nan)  # only a[:m, :m]'s lower triangle is read
    padded[:m, :m] = np.tril(a)
    low = np.empty((m + 2, m + 2))
    s = np.empty(m + 2)
    assert cholesky_solve(padded, m, rhs, low, s)
    np.testing.assert_allclose(s[:m], np.linalg.solve(a, rhs), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.tril(low[:m, :m]), np.linalg.cholesky(a), rtol=1e-10)


@pytest.mark.parametrize("m", [3, 66])
def test_cholesky_solve_in_float32_is_float64_to_float32_accuracy(m):
    """A float32 ``a`` (and ``low``) factorises in float32; the substitutions stay in
    ``rhs``'s float64, so the solution is float64's to float32 rounding."""
    rng = np.random.default_rng(m)
    b = rng.standard_normal((m, m))
    a = b @ b.T + m * np.eye(m)
    rhs = rng.standard_normal(m)
    low32 = np.empty((m, m), dtype=np.float32)
    s32 = np.empty(m)
    assert cholesky_solve(a.astype(np.float32), m, rhs, low32, s32)
    exact = np.linalg.solve(a, rhs)
    np.testing.assert_allclose(s32, exact, rtol=1e-4, atol=1e-5 * np.abs(exact).max())
    np.testing.assert_allclose(np.tril(low32), np.linalg.cholesky(a), rtol=1e-4, atol=1e-5)
    bad = np.eye(3, dtype=np.float32)
    bad[1, 1] = -1.0
    assert not cholesky_solve(bad, 3, np.ones(3), np.empty((3, 3), np.float32), np.empty(3))


@pytest.mark.parametrize("bad", [0.0, -1.0, np.nan])
def test_cholesky_solve_reports_a_matrix_that_is_not_positive_definite(bad):
    a = np.eye(3)
    a[1, 1] = bad
    assert not cholesky_solve(a, 3, np.ones(3), np.empty((3, 3)), np.empty(3))
