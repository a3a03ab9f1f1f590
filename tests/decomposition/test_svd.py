import numpy as np
import pytest
import scipy.sparse as sp

from factorkit.decomposition import PCA, TruncatedSVD, randomized_svd
from factorkit.exceptions import DataError, InvalidParameterError, NotFittedError


@pytest.mark.parametrize("algorithm", ["randomized", "lanczos", "exact"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_singular_values_match_lapack(lowrank_noisy, algorithm, dtype):
    X = lowrank_noisy.astype(dtype)
    svd = TruncatedSVD(5, algorithm=algorithm, random_state=0).fit(X)
    exact = np.linalg.svd(lowrank_noisy, compute_uv=False)[:5]
    np.testing.assert_allclose(svd.singular_values_, exact, rtol=1e-4)
    assert svd.components_.dtype == dtype and svd.singular_values_.dtype == dtype


@pytest.mark.parametrize("algorithm", ["randomized", "lanczos"])
def test_sparse_input_gives_the_dense_answer(lowrank_noisy, algorithm):
    X = np.where(np.abs(lowrank_noisy) > 1.0, lowrank_noisy, 0.0)
    dense = TruncatedSVD(4, algorithm=algorithm, random_state=0).fit(X)
    sparse = TruncatedSVD(4, algorithm=algorithm, random_state=0).fit(sp.csr_matrix(X))
    np.testing.assert_allclose(sparse.singular_values_, dense.singular_values_, rtol=1e-5)
    np.testing.assert_allclose(np.abs(sparse.components_), np.abs(dense.components_), atol=1e-5)


def test_transform_inverse_and_explained_variance(lowrank_noisy):
    X = lowrank_noisy
    svd = TruncatedSVD(6, random_state=0)
    Z = svd.fit_transform(X)
    np.testing.assert_allclose(svd.transform(X), Z, atol=1e-8)
    # the definition scikit-learn uses: variance of each component / total column variance
    np.testing.assert_allclose(
        svd.explained_variance_ratio_, Z.var(axis=0) / X.var(axis=0).sum(), rtol=1e-10
    )
    err = np.linalg.norm(X - svd.inverse_transform(Z))
    s = np.linalg.svd(X, compute_uv=False)
    optimum = np.sqrt((s[6:] ** 2).sum())  # Eckart-Young: the noise left outside rank 6
    assert optimum <= err < 1.001 * optimum


def test_row_mean_imputation_sparse_equals_dense():
    rng = np.random.default_rng(3)
    R = rng.integers(1, 6, size=(40, 30)).astype(float)
    R[rng.random(R.shape) < 0.6] = 0.0
    dense_filled = R.copy()
    means = np.array([row[row > 0].mean() for row in R])
    for i in range(R.shape[0]):
        dense_filled[i, R[i] == 0] = means[i]
    want = np.linalg.svd(dense_filled, compute_uv=False)[:3]
    for X in (R, sp.csr_matrix(R)):
        svd = TruncatedSVD(3, algorithm="lanczos", missing_values=0, random_state=0).fit(X)
        np.testing.assert_allclose(svd.singular_values_, want, rtol=1e-6)
    nan = np.where(R == 0, np.nan, R)
    svd = TruncatedSVD(3, algorithm="exact", missing_values=np.nan).fit(nan)
    np.testing.assert_allclose(svd.singular_values_, want, rtol=1e-6)


@pytest.mark.parametrize("impute", ["column", "global"])
def test_column_and_global_imputation(impute):
    R = np.array([[1.0, np.nan, 3.0], [np.nan, 4.0, 5.0], [2.0, 6.0, np.nan], [3.0, 2.0, 1.0]])
    cols = np.nanmean(R, axis=0)
    fill = np.broadcast_to(cols, R.shape) if impute == "column" else np.nanmean(R)
    filled = np.where(np.isnan(R), fill, R)
    svd = TruncatedSVD(2, algorithm="exact", missing_values=np.nan, impute=impute)
    Z = svd.fit_transform(R)
    np.testing.assert_allclose(svd.singular_values_, np.linalg.svd(filled, compute_uv=False)[:2])
    np.testing.assert_allclose(svd.transform(R), Z, atol=1e-12)
    for X in (sp.csr_matrix(np.nan_to_num(R, nan=0.0)),):  # zeros missing, sparse, stays exact
        s = TruncatedSVD(2, algorithm="exact", missing_values=0, impute=impute).fit(X)
        assert np.all(np.isfinite(s.singular_values_))


def test_pca_matches_centred_svd_dense_and_sparse(lowrank_noisy):
    X = np.abs(lowrank_noisy)
    Xc = X - X.mean(axis=0)
    s = np.linalg.svd(Xc, compute_uv=False)
    for algorithm in ("exact", "randomized", "lanczos"):
        pca = PCA(4, algorithm=algorithm, random_state=0).fit(sp.csr_matrix(X))
        np.testing.assert_allclose(pca.singular_values_, s[:4], rtol=1e-4)
    pca = PCA(4).fit(X)
    np.testing.assert_allclose(pca.explained_variance_ratio_, s[:4] ** 2 / (s**2).sum(), rtol=1e-8)
    np.testing.assert_allclose(pca.explained_variance_, s[:4] ** 2 / (X.shape[0] - 1))


def test_pca_whitening_and_roundtrip(lowrank_noisy):
    X = lowrank_noisy
    pca = PCA(6, whiten=True, algorithm="exact")
    Z = pca.fit_transform(X)
    np.testing.assert_allclose(Z.std(axis=0, ddof=1), 1.0, rtol=1e-8)
    np.testing.assert_allclose(pca.transform(X), Z, atol=1e-8)
    back = pca.inverse_transform(Z)
    assert np.linalg.norm(back - X) / np.linalg.norm(X) < 0.02  # the noise, 0.01 per entry


def test_randomized_svd_function_float32():
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(300, 10)) @ rng.normal(size=(10, 200))).astype(np.float32)
    U, s, Vt = randomized_svd(X, 10, random_state=0)
    assert U.dtype == s.dtype == Vt.dtype == np.float32
    np.testing.assert_allclose(U * s @ Vt, X, atol=1e-3 * np.abs(X).max())
    np.testing.assert_allclose(U.T @ U, np.eye(10), atol=1e-4)


def test_bad_input_messages():
    X = np.ones((5, 4))
    with pytest.raises(InvalidParameterError, match=r"factors=5 is larger than .* = 4 for a 5x4"):
        TruncatedSVD(5).fit(X)
    with pytest.raises(DataError, match=r"must be a 2-D matrix; got 1-D input of shape \(4,\)"):
        TruncatedSVD(1).fit(np.ones(4))
    with pytest.raises(DataError, match=r"is empty \(shape \(0, 3\)\)"):
        PCA(1).fit(np.ones((0, 3)))
    with pytest.raises(DataError, match=r"must hold numbers .* got dtype <U1"):
        TruncatedSVD(1).fit(np.array([["a", "b"], ["c", "d"]]))
    bad = X.copy()
    bad[2, 1] = np.inf
    with pytest.raises(DataError, match=r"1 non-finite value\(s\), the first inf at \(2, 1\)"):
        TruncatedSVD(1).fit(bad)
    with pytest.raises(DataError, match=r"non-finite .* first nan at \(2, 1\)"):
        TruncatedSVD(1).fit(np.where(bad == np.inf, np.nan, bad))
    with pytest.raises(InvalidParameterError, match="'lanczos' needs factors < min"):
        TruncatedSVD(4, algorithm="lanczos").fit(X)
    with pytest.raises(InvalidParameterError, match="The 'algorithm' parameter of TruncatedSVD"):
        TruncatedSVD(1, algorithm="arpack").fit(X)
    with pytest.raises(NotFittedError, match="not fitted yet"):
        TruncatedSVD(1).transform(X)
    svd = TruncatedSVD(2, random_state=0).fit(np.random.default_rng(0).random((6, 4)))
    with pytest.raises(DataError, match="X has 3 columns but the model was fitted on 4"):
        svd.transform(np.ones((2, 3)))
    with pytest.raises(DataError, match="no observed entry"):
        TruncatedSVD(1, missing_values=0).fit(np.zeros((3, 3)))
