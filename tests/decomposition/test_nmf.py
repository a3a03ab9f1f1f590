import numpy as np
import pytest
import scipy.sparse as sp

from factorkit.decomposition import NMF, non_negative_factorization
from factorkit.exceptions import ConvergenceWarning, DataError, InvalidParameterError

pytestmark = pytest.mark.filterwarnings("ignore::factorkit.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def small_nonneg():
    rng = np.random.default_rng(4)
    return rng.random((60, 4)) @ rng.random((4, 40))


def test_masked_nmf_recovers_hidden_entries(nonneg_lowrank):
    """Rank-5 500x400 from half of its entries: RMSE on the hidden half < 5% of their std."""
    X = nonneg_lowrank
    hidden = np.random.default_rng(2).random(X.shape) < 0.5
    model = NMF(5, max_iter=60, tol=0, random_state=0)
    W = model.fit_transform(np.where(hidden, np.nan, X))
    R = model.inverse_transform(W)
    rmse = np.sqrt(np.mean((R[hidden] - X[hidden]) ** 2))
    assert rmse < 0.05 * X[hidden].std()
    # treating the hidden entries as zeros instead fails badly: they are not zeros
    zeros = NMF(5, max_iter=60, tol=0, random_state=0)
    Rz = zeros.inverse_transform(zeros.fit_transform(np.where(hidden, 0.0, X)))
    assert np.sqrt(np.mean((Rz[hidden] - X[hidden]) ** 2)) > 10 * rmse


def test_nan_and_explicit_mask_agree(small_nonneg):
    X = small_nonneg
    observed = np.random.default_rng(5).random(X.shape) < 0.7
    a = NMF(4, max_iter=30, tol=0, random_state=0).fit(np.where(observed, X, np.nan))
    b = NMF(4, max_iter=30, tol=0, random_state=0).fit(np.where(observed, X, -1.0), mask=observed)
    c = NMF(4, max_iter=30, tol=0, random_state=0).fit(sp.csr_matrix(X), mask=observed)
    np.testing.assert_allclose(a.components_, b.components_, rtol=1e-5)
    np.testing.assert_allclose(a.components_, c.components_, rtol=1e-5, atol=1e-6)
    assert a.reconstruction_err_ == pytest.approx(b.reconstruction_err_, rel=1e-5)


@pytest.mark.parametrize(
    ("solver", "loss"), [("cd", "frobenius"), ("mu", "frobenius"), ("mu", "kl")]
)
def test_solvers_fit_dense_and_sparse_alike(small_nonneg, solver, loss):
    X = np.where(small_nonneg > 0.6, small_nonneg, 0.0)
    kw = {"solver": solver, "loss": loss, "max_iter": 40, "tol": 0, "random_state": 0}
    dense = NMF(4, **kw).fit(X)
    sparse = NMF(4, **kw).fit(sp.csr_matrix(X))
    assert dense.components_.dtype == np.float32
    assert sparse.reconstruction_err_ == pytest.approx(dense.reconstruction_err_, rel=1e-3)
    short = NMF(4, **{**kw, "max_iter": 2}).fit(X)
    assert dense.reconstruction_err_ < short.reconstruction_err_
    assert (dense.components_ >= 0).all()


def test_reconstruction_err_is_the_frobenius_norm(small_nonneg):
    model = NMF(3, max_iter=50, random_state=0, dtype=np.float64)
    W = model.fit_transform(small_nonneg)
    assert W.dtype == np.float64
    want = np.linalg.norm(small_nonneg - W @ model.components_)
    assert model.reconstruction_err_ == pytest.approx(want, rel=1e-6)


def test_transform_new_rows(small_nonneg):
    X = small_nonneg
    model = NMF(4, max_iter=300, tol=1e-6, random_state=0).fit(X[:50])
    W_new = model.transform(X[50:])
    err = np.linalg.norm(X[50:] - W_new @ model.components_) / np.linalg.norm(X[50:])
    assert err < 0.02
    part = np.where(np.random.default_rng(0).random((10, 40)) < 0.3, np.nan, X[50:])
    W_part = model.transform(part)  # missing entries in new rows too
    assert np.linalg.norm(X[50:] - W_part @ model.components_) / np.linalg.norm(X[50:]) < 0.05


def test_l1_regularization_makes_factors_sparser(small_nonneg):
    plain = NMF(4, max_iter=100, random_state=0).fit_transform(small_nonneg)
    l1 = NMF(4, max_iter=100, random_state=0, alpha_W=0.01, l1_ratio=1.0)
    W = l1.fit_transform(small_nonneg)
    assert (W == 0).sum() > (plain == 0).sum()


@pytest.mark.parametrize("init", ["nndsvd", "nndsvda", "random"])
def test_inits(small_nonneg, init):
    W, H, _ = non_negative_factorization(
        small_nonneg, factors=4, init=init, max_iter=300, random_state=0
    )
    assert np.linalg.norm(small_nonneg - W @ H) / np.linalg.norm(small_nonneg) < 0.05


def test_custom_init_and_fixed_H(small_nonneg):
    rng = np.random.default_rng(0)
    W0, H0 = rng.random((60, 4)), rng.random((4, 40))
    _, H, _ = non_negative_factorization(small_nonneg, W0, H0, 4, init="custom", max_iter=5)
    assert not np.allclose(H, H0)
    _, H, _ = non_negative_factorization(small_nonneg, None, H0, 4, update_H=False, max_iter=5)
    np.testing.assert_array_equal(H, H0.astype(np.float32))


def test_bad_input_messages(small_nonneg):
    X = small_nonneg.copy()
    X[7, 3] = -2.5
    X[9, 1] = -0.5
    with pytest.raises(
        DataError, match=r"2 negative value\(s\), the smallest -2.5 at row 7, column 3"
    ):
        NMF(2).fit(X)
    with pytest.raises(DataError, match=r"smallest -2.5 at row 7, column 3"):
        NMF(2).fit(sp.csr_matrix(X))
    Y = small_nonneg.copy()
    Y[1, 2] = np.inf
    with pytest.raises(DataError, match=r"non-finite value\(s\), the first inf at \(1, 2\)"):
        NMF(2).fit(Y)
    Y[1, 2] = np.nan
    with pytest.raises(DataError, match="non-finite"):
        NMF(2).fit(sp.csr_matrix(Y))  # NaN in sparse data: no mask says it is missing
    with pytest.raises(DataError, match=r"at observed \(mask=True\) entries, the first at row 1"):
        NMF(2).fit(Y, mask=np.ones(Y.shape, dtype=bool))
    with pytest.raises(DataError, match="mask must have the shape of X"):
        NMF(2).fit(small_nonneg, mask=np.ones((3, 3), dtype=bool))
    with pytest.raises(DataError, match="mask must be a boolean array"):
        NMF(2).fit(small_nonneg, mask=np.ones(small_nonneg.shape))
    with pytest.raises(InvalidParameterError, match="factors=41 is larger than"):
        NMF(41).fit(small_nonneg)
    with pytest.raises(InvalidParameterError, match="solver='cd' supports loss='frobenius' only"):
        NMF(2, loss="kl").fit(small_nonneg)
    with pytest.raises(InvalidParameterError, match="The 'solver' parameter of NMF"):
        NMF(2, solver="als").fit(small_nonneg)
    with pytest.raises(InvalidParameterError, match=r"init='custom' .* needs W"):
        NMF(2, init="custom").fit(small_nonneg)
    with pytest.raises(DataError, match="no observed entry"):
        NMF(1).fit(np.full((3, 3), np.nan))
    with pytest.raises(DataError, match="must be a 2-D matrix; got 1-D"):
        NMF(1).fit(np.ones(5))


def test_max_iter_before_tol_warns(small_nonneg):
    with pytest.warns(ConvergenceWarning, match="reached max_iter=2 before the tolerance"):
        NMF(2, max_iter=2, tol=1e-9).fit(small_nonneg)
