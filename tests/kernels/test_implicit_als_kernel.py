"""implicit_als kernels against a NumPy reference (an exact dense solve per row)."""

import itertools

import numpy as np
import pytest
import scipy.sparse as sp

from factorkit._threads import using_threads
from factorkit.kernels._jit import read_only
from factorkit.kernels.implicit_als import (
    CHOLESKY_FLOAT32_MIN_FACTORS,
    implicit_als_cg_rows,
    implicit_als_cholesky_rows,
    implicit_als_confidence,
)


def reference(indptr, indices, conf, y, w0, lam):
    """Per row, the dense weighted problem: c_j on positives, w0 on every other column.

    Solves (Y^T C Y + lam I) x = Y^T C p with C, p spelled out over all n_fixed columns,
    and returns the factors and sum_r [sum_j C_j (p_j - x . y_j)^2 + lam |x|^2].
    """
    n_rows, (n_fixed, k) = len(indptr) - 1, y.shape
    y = y.astype(np.float64)
    out, obj = np.zeros((n_rows, k)), 0.0
    for r in range(n_rows):
        cw = np.full(n_fixed, float(w0))
        pref = np.zeros(n_fixed)
        for j in range(indptr[r], indptr[r + 1]):
            if conf[j] > 0:
                cw[indices[j]] = conf[j]
                pref[indices[j]] = 1.0
        a = y.T @ (cw[:, None] * y) + lam[r] * np.eye(k)
        x = np.linalg.solve(a, y.T @ (cw * pref))
        out[r] = x
        obj += (cw * (pref - y @ x) ** 2).sum() + lam[r] * x @ x
    return out, obj


def problem(n_rows, n_cols, density, k, dtype, seed=0, alpha=2.0):
    rng = np.random.default_rng(seed)
    m = sp.random(n_rows, n_cols, density=density, random_state=seed, format="csr")
    m.data = rng.integers(1, 6, m.nnz).astype(np.float32)
    m.data[::7] = 0.0  # stored non-positives: treated as unobserved
    # one empty row
    m = sp.vstack([m, sp.csr_matrix((1, n_cols))]).tocsr()
    conf = np.empty(m.nnz, dtype=dtype)
    implicit_als_confidence(m.data.astype(dtype), dtype(alpha), False, dtype(1.0), conf)
    y = (rng.standard_normal((n_cols, k)) * 0.3).astype(dtype)
    lam = (0.1 + rng.random(n_rows + 1)).astype(dtype)
    # read-only, as ImplicitALS passes them: the tests run the models' compiled variant
    return tuple(read_only(m.indptr.astype(np.int64), m.indices.astype(np.int32), conf, y, lam))


def gram(y, w0):
    g = (w0 * (y.astype(np.float64).T @ y.astype(np.float64))).astype(y.dtype)
    return read_only(g)[0]


def test_confidence_linear_and_log():
    v = np.array([0.0, 1.0, 3.0, -1.0], dtype=np.float32)
    out = np.empty(4, dtype=np.float32)
    implicit_als_confidence(v, np.float32(2.0), False, np.float32(1.0), out)
    np.testing.assert_allclose(out, [0.0, 3.0, 7.0, 0.0])
    implicit_als_confidence(v, np.float32(2.0), True, np.float32(0.5), out)
    np.testing.assert_allclose(out, [0.0, 1 + 2 * np.log(3.0), 1 + 2 * np.log(7.0), 0.0], rtol=1e-6)


@pytest.mark.parametrize("k", [3, 17, 40])
@pytest.mark.parametrize("w0", [1.0, 0.3])
# float32 only, as the models run (float64 would compile a variant nobody uses)
@pytest.mark.parametrize(("dtype", "tol"), [(np.float32, 5e-4)])
def test_cholesky_matches_reference(k, w0, dtype, tol):
    indptr, indices, conf, y, lam = problem(60, 50, 0.2, k, dtype)
    out = np.full((len(indptr) - 1, k), 7.0, dtype=dtype)
    obj = implicit_als_cholesky_rows(indptr, indices, conf, y, gram(y, w0), dtype(w0), lam, out)
    ref, ref_obj = reference(indptr, indices, conf, y, w0, lam)
    assert out.dtype == dtype
    np.testing.assert_allclose(out, ref, atol=tol, rtol=tol)
    assert obj == pytest.approx(ref_obj, rel=tol)
    np.testing.assert_array_equal(out[-1], 0.0)  # empty row -> zero vector


def test_cholesky_in_float32_matches_float64_and_the_reference():
    """From ``float32_min_factors`` factors on (``CHOLESKY_FLOAT32_MIN_FACTORS`` by
    default, 1 here to keep the test small) systems are factorised in float32: the
    factors agree with the float64 path's to float32 accuracy, the objective too."""
    indptr, indices, conf, y, lam = problem(60, 50, 0.2, 17, np.float32)
    g, w0 = gram(y, 0.3), np.float32(0.3)
    n_rows = len(indptr) - 1
    out64 = np.full((n_rows, 17), 7.0, dtype=np.float32)
    out32 = out64.copy()
    obj64 = implicit_als_cholesky_rows(indptr, indices, conf, y, g, w0, lam, out64)
    obj32 = implicit_als_cholesky_rows(
        indptr, indices, conf, y, g, w0, lam, out32, float32_min_factors=1
    )
    assert CHOLESKY_FLOAT32_MIN_FACTORS > 17  # the default call above ran float64
    assert not np.array_equal(out32, out64)  # the float32 path did run
    np.testing.assert_allclose(out32, out64, rtol=1e-4, atol=1e-5)
    assert obj32 == pytest.approx(obj64, rel=1e-5)
    ref, _ = reference(indptr, indices, conf, y, 0.3, lam)
    np.testing.assert_allclose(out32, ref, atol=5e-4, rtol=5e-4)
    np.testing.assert_array_equal(out32[-1], 0.0)  # empty row -> zero vector


@pytest.mark.parametrize("k", [3, 17])
@pytest.mark.parametrize(("dtype", "tol"), [(np.float32, 2e-3)])
def test_cg_converges_to_exact_solution(k, dtype, tol):
    indptr, indices, conf, y, lam = problem(60, 50, 0.2, k, dtype)
    rng = np.random.default_rng(1)
    out = (rng.standard_normal((len(indptr) - 1, k)) * 0.1).astype(dtype)
    g = gram(y, 1.0)
    obj = implicit_als_cg_rows(indptr, indices, conf, y, g, dtype(1.0), lam, 3 * k, out)
    ref, ref_obj = reference(indptr, indices, conf, y, 1.0, lam)
    np.testing.assert_allclose(out, ref, atol=tol, rtol=tol)
    assert obj == pytest.approx(ref_obj, rel=tol)


def test_cg_objective_is_exact_for_its_iterate():
    """A few CG steps: the returned objective is L(x) at the returned (inexact) x."""
    indptr, indices, conf, y, lam = problem(40, 30, 0.3, 8, np.float32)
    rng = np.random.default_rng(2)
    out = (rng.standard_normal((len(indptr) - 1, 8)) * 0.1).astype(np.float32)
    w0 = np.float32(0.5)
    obj = implicit_als_cg_rows(indptr, indices, conf, y, gram(y, 0.5), w0, lam, 2, out)
    y, out = y.astype(np.float64), out.astype(np.float64)
    expect = 0.0
    for r in range(len(indptr) - 1):
        cw = np.full(30, 0.5)
        pref = np.zeros(30)
        for j in range(indptr[r], indptr[r + 1]):
            if conf[j] > 0:
                cw[indices[j]], pref[indices[j]] = conf[j], 1.0
        expect += (cw * (pref - y @ out[r]) ** 2).sum() + lam[r] * out[r] @ out[r]
    assert obj == pytest.approx(expect, rel=1e-5)


def test_cg_steps_decrease_the_objective_monotonically():
    indptr, indices, conf, y, lam = problem(80, 60, 0.2, 16, np.float32, seed=3)
    start = (np.random.default_rng(0).standard_normal((len(indptr) - 1, 16)) * 0.1).astype(
        np.float32
    )
    g = gram(y, 1.0)
    objs = []
    for steps in (0, 1, 2, 4, 8):
        out = start.copy()
        objs.append(
            implicit_als_cg_rows(indptr, indices, conf, y, g, np.float32(1.0), lam, steps, out)
        )
    assert all(b < a for a, b in itertools.pairwise(objs)), objs


@pytest.mark.parametrize("solver", ["cg", "cholesky"])
def test_thread_count_does_not_change_results(solver):
    indptr, indices, conf, y, lam = problem(700, 200, 0.05, 24, np.float32, seed=4)
    g = gram(y, 1.0)
    start = np.random.default_rng(0).standard_normal((len(indptr) - 1, 24)).astype(np.float32)
    results = []
    for threads in (1, 2):
        out = start.copy()
        with using_threads(threads):
            if solver == "cg":
                obj = implicit_als_cg_rows(indptr, indices, conf, y, g, np.float32(1), lam, 3, out)
            else:
                obj = implicit_als_cholesky_rows(
                    indptr, indices, conf, y, g, np.float32(1), lam, out
                )
        results.append((out, obj))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    assert results[0][1] == results[1][1]
