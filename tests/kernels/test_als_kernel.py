"""als_solve_rows against a NumPy reference (np.linalg.solve per row)."""

import numpy as np
import pytest
import scipy.sparse as sp

from factorkit._threads import resolve_threads, using_threads
from factorkit.kernels.als import als_solve_rows
from factorkit.kernels.linalg import GRAM_FLUSH_ROWS


def reference(indptr, indices, values, y, c, mu, lam, lam_b, weighted):
    """Per row: solve (X^T X + D) s = X^T t with X = [1, Y_j], t = r - mu - c_j."""
    n_rows, k = len(indptr) - 1, y.shape[1]
    factors, bias, obj = np.zeros((n_rows, k)), np.zeros(n_rows), 0.0
    for r in range(n_rows):
        idx = indices[indptr[r] : indptr[r + 1]]
        n = len(idx)
        if n == 0:
            continue
        x = np.hstack([np.ones((n, 1)), y[idx].astype(np.float64)])
        t = values[indptr[r] : indptr[r + 1]].astype(np.float64) - mu - c[idx]
        w = n if weighted else 1
        d = np.diag([lam_b * w] + [lam * w] * k)
        s = np.linalg.solve(x.T @ x + d, x.T @ t)
        bias[r], factors[r] = s[0], s[1:]
        obj += ((t - x @ s) ** 2).sum() + s @ d @ s
    return factors, bias, obj


def problem(n_rows, n_cols, density, k, dtype, seed=0):
    rng = np.random.default_rng(seed)
    m = sp.random(n_rows, n_cols, density=density, random_state=seed, format="csr")
    m.data = rng.integers(1, 6, m.nnz).astype(dtype)
    y = (rng.standard_normal((n_cols, k)) * 0.3).astype(dtype)
    c = (rng.standard_normal(n_cols) * 0.2).astype(dtype)
    return m.indptr.astype(np.int64), m.indices.astype(np.int32), m.data, y, c


def run(indptr, indices, values, y, c, mu, lam, lam_b, weighted):
    n_rows = len(indptr) - 1
    out_f = np.full((n_rows, y.shape[1]), 7.0, dtype=y.dtype)
    out_b = np.full(n_rows, 7.0, dtype=y.dtype)
    obj = als_solve_rows(
        indptr, indices, values, np.zeros(0), y, c, mu, lam, lam_b, weighted, out_f, out_b
    )
    return out_f, out_b, obj


# k=3: every row has more ratings than k+1 (primal Cholesky); k=40: most rows fewer (dual)
@pytest.mark.parametrize("k", [3, 12, 40])
@pytest.mark.parametrize("weighted", [True, False])
@pytest.mark.parametrize(("dtype", "tol"), [(np.float32, 2e-5), (np.float64, 1e-11)])
def test_matches_numpy_reference(k, weighted, dtype, tol):
    indptr, indices, values, y, c = problem(120, 90, 0.15, k, dtype)
    f, b, obj = run(indptr, indices, values, y, c, 3.5, 0.1, 0.05, weighted)
    f_ref, b_ref, obj_ref = reference(indptr, indices, values, y, c, 3.5, 0.1, 0.05, weighted)
    assert f.dtype == dtype and b.dtype == dtype
    np.testing.assert_allclose(f, f_ref, atol=tol)
    np.testing.assert_allclose(b, b_ref, atol=tol)
    assert obj == pytest.approx(obj_ref, rel=tol)


def test_primal_and_dual_paths_agree_around_the_switch():
    # rows with 1..30 ratings against k + 1 = 11 unknowns: both solvers are exercised
    rng = np.random.default_rng(3)
    counts = np.arange(1, 31)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    indices = np.concatenate([rng.choice(50, n, replace=False) for n in counts]).astype(np.int32)
    values = rng.uniform(1, 5, indptr[-1])
    y, c = rng.standard_normal((50, 10)), rng.standard_normal(50) * 0.1
    f, b, obj = run(indptr, indices, values, y, c, 3.0, 0.05, 0.2, True)
    f_ref, b_ref, obj_ref = reference(indptr, indices, values, y, c, 3.0, 0.05, 0.2, True)
    np.testing.assert_allclose(f, f_ref, atol=1e-10)
    np.testing.assert_allclose(b, b_ref, atol=1e-10)
    assert obj == pytest.approx(obj_ref, rel=1e-10)


def test_long_rows_span_several_float32_blocks():
    n = 3 * GRAM_FLUSH_ROWS + 5
    indptr, indices, values, y, c = problem(3, n, 1.0, 16, np.float32, seed=5)
    f, b, obj = run(indptr, indices, values, y, c, 3.0, 0.02, 0.02, True)
    f_ref, b_ref, obj_ref = reference(indptr, indices, values, y, c, 3.0, 0.02, 0.02, True)
    np.testing.assert_allclose(f, f_ref, atol=2e-5)
    np.testing.assert_allclose(b, b_ref, atol=2e-5)
    assert obj == pytest.approx(obj_ref, rel=1e-5)


def test_rows_without_ratings_get_zeros():
    indptr = np.array([0, 0, 2, 2], dtype=np.int64)
    indices = np.array([0, 1], dtype=np.int32)
    values = np.array([4.0, 2.0], dtype=np.float32)
    y = np.ones((2, 4), dtype=np.float32)
    f, b, _ = run(indptr, indices, values, y, np.zeros(2, np.float32), 3.0, 0.1, 0.1, True)
    assert (f[[0, 2]] == 0).all() and (b[[0, 2]] == 0).all()
    assert np.isfinite(f[1]).all()


def test_singular_system_gives_nan_objective():
    # no regularisation and one rating against 3 unknowns: not positive definite
    indptr = np.array([0, 1], dtype=np.int64)
    y = np.ones((1, 2))
    f, _, obj = run(indptr, np.zeros(1, np.int32), np.ones(1), y, np.zeros(1), 0.0, 0, 0, False)
    assert np.isnan(obj) and np.isnan(f[0, 0])


def test_result_does_not_depend_on_thread_count():
    indptr, indices, values, y, c = problem(400, 300, 0.05, 16, np.float32, seed=2)
    results = []
    for n_threads in (1, 2):
        with using_threads(resolve_threads(n_threads)):
            results.append(run(indptr, indices, values, y, c, 3.5, 0.1, 0.1, True))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])
    assert results[0][2] == results[1][2]


def weighted_reference(indptr, indices, values, w, y, c, mu, lam, lam_b, weighted):
    """Per row: (X^T W X + D) s = X^T W t, D scaled by the row's weight sum (ALS-WR)."""
    n_rows, k = len(indptr) - 1, y.shape[1]
    factors, bias, obj = np.zeros((n_rows, k)), np.zeros(n_rows), 0.0
    for r in range(n_rows):
        sl = slice(indptr[r], indptr[r + 1])
        idx, wr = indices[sl], w[sl]
        if wr.sum() == 0:
            continue
        x = np.hstack([np.ones((len(idx), 1)), y[idx].astype(np.float64)])
        t = values[sl].astype(np.float64) - mu - c[idx]
        scale = wr.sum() if weighted else 1
        d = np.diag([lam_b * scale] + [lam * scale] * k)
        s = np.linalg.solve(x.T @ (wr[:, None] * x) + d, x.T @ (wr * t))
        bias[r], factors[r] = s[0], s[1:]
        obj += (wr * (t - x @ s) ** 2).sum() + s @ d @ s
    return factors, bias, obj


# k=3: primal rows only; k=40: mostly dual rows
@pytest.mark.parametrize("k", [3, 40])
@pytest.mark.parametrize("weighted", [True, False])
def test_weights_match_numpy_reference(k, weighted):
    indptr, indices, values, y, c = problem(120, 90, 0.15, k, np.float64)
    w = np.random.default_rng(1).uniform(0, 3, len(values))
    w[::7] = 0.0
    w[indptr[5] : indptr[6]] = 0.0  # a row whose every weight is 0 is a row without ratings
    f, b = np.full((120, k), 7.0), np.full(120, 7.0)
    obj = als_solve_rows(indptr, indices, values, w, y, c, 3.5, 0.1, 0.05, weighted, f, b)
    f_ref, b_ref, obj_ref = weighted_reference(
        indptr, indices, values, w, y, c, 3.5, 0.1, 0.05, weighted
    )
    np.testing.assert_allclose(f, f_ref, atol=1e-10)
    np.testing.assert_allclose(b, b_ref, atol=1e-10)
    assert obj == pytest.approx(obj_ref, rel=1e-10)
    assert not f[5].any() and b[5] == 0.0


@pytest.mark.parametrize("k", [3, 40])
def test_integer_weights_equal_repeated_and_removed_ratings(k):
    """Weight 2 solves exactly what the rating listed twice solves, weight 0 what the
    rating left out solves (ALS-WR's count included): the objective is a sum over ratings."""
    indptr, indices, values, y, c = problem(60, 90, 0.15, k, np.float64, seed=2)
    w = np.random.default_rng(2).integers(0, 3, len(values)).astype(np.float64)
    w[indptr[:-1]] = 1.0  # every row keeps a rating
    reps = w.astype(np.int64)
    rows = np.repeat(np.arange(60), np.diff(indptr))
    ex_rows = np.repeat(rows, reps)
    ex_ptr = np.concatenate([[0], np.cumsum(np.bincount(ex_rows, minlength=60))]).astype(np.int64)
    ex_idx, ex_val = np.repeat(indices, reps), np.repeat(values, reps)
    f, b, obj = np.zeros((60, k)), np.zeros(60), 0.0
    obj = als_solve_rows(indptr, indices, values, w, y, c, 3.0, 0.1, 0.1, True, f, b)
    f_ex, b_ex, obj_ex = run(ex_ptr, ex_idx, ex_val, y, c, 3.0, 0.1, 0.1, True)
    np.testing.assert_allclose(f, f_ex, atol=1e-10)
    np.testing.assert_allclose(b, b_ex, atol=1e-10)
    assert obj == pytest.approx(obj_ex, rel=1e-10)
