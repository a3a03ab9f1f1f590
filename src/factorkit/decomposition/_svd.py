"""Truncated SVD and PCA of dense and sparse matrices, with optional imputation.

One solver, :func:`randomized_svd` (Halko, Martinsson & Tropp 2011, the algorithm
scikit-learn's ``randomized_svd`` implements: oversampling, power iterations with LU or
QR normalisation), runs behind both classes; ``"lanczos"`` calls ARPACK through
``scipy.sparse.linalg.svds`` and ``"exact"`` LAPACK's ``gesdd``.
"""

from __future__ import annotations

import numbers
from typing import Any, ClassVar

import numpy as np
import scipy.linalg as la
import scipy.sparse as sp

from factorkit._threads import blas_threads, resolve_threads, single_thread_blas
from factorkit._validation import (
    Boolean,
    Interval,
    NoneOr,
    Options,
    RandomState,
    Satisfies,
    Threads,
    check,
)
from factorkit.base import Estimator
from factorkit.decomposition._checks import as_matrix, check_rank
from factorkit.decomposition._operator import MatrixOperator
from factorkit.exceptions import DataError, InvalidParameterError

__all__ = ["PCA", "TruncatedSVD", "randomized_svd"]


def _rng(random_state: Any) -> np.random.Generator:
    if isinstance(random_state, np.random.Generator):
        return random_state
    return np.random.default_rng(random_state)


def _normalize(Q: np.ndarray, how: str) -> np.ndarray:
    if how == "LU":
        return la.lu(Q, permute_l=True, check_finite=False)[0]
    if how == "QR":
        return la.qr(Q, mode="economic", check_finite=False)[0]
    return Q


def _flip_signs(U: np.ndarray, Vt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic signs: the largest-magnitude entry of each row of ``Vt`` is positive
    (scikit-learn's ``svd_flip(u_based_decision=False)``)."""
    cols = np.argmax(np.abs(Vt), axis=1)
    signs = np.sign(Vt[np.arange(Vt.shape[0]), cols])
    signs[signs == 0] = 1
    return U * signs, Vt * signs[:, None]


def randomized_svd(
    X: Any,
    factors: int,
    *,
    n_oversamples: int = 10,
    n_iter: int | str = "auto",
    power_iteration_normalizer: str = "auto",
    random_state: Any = None,
    n_threads: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rank-``factors`` SVD ``X ~ U diag(s) Vt`` by randomized range finding.

    ``X`` is an ndarray, a scipy.sparse matrix or a :class:`MatrixOperator`; float32
    stays float32. ``n_iter="auto"`` and ``power_iteration_normalizer="auto"`` follow
    scikit-learn (7 iterations when ``factors`` < 10% of min(m, n), else 4; LU when more
    than 2 iterations, else QR), so the two give the same accuracy for the same settings.

    Examples
    --------
    >>> import numpy as np
    >>> from factorkit.decomposition import randomized_svd
    >>> X = np.random.default_rng(0).random((50, 40)).astype(np.float32)
    >>> U, s, Vt = randomized_svd(X, 3, random_state=0)
    >>> U.shape, s.shape, Vt.shape, s.dtype
    ((50, 3), (3,), (3, 40), dtype('float32'))
    >>> bool(np.allclose(s, np.linalg.svd(X, compute_uv=False)[:3], rtol=1e-4))
    True
    """
    check(factors, Interval(int, 1), "factors", "randomized_svd")
    check(n_oversamples, Interval(int, 0), "n_oversamples", "randomized_svd")
    check(
        n_iter,
        Satisfies(
            lambda v: v == "auto" or (isinstance(v, numbers.Integral) and v >= 0),
            "'auto' or an int >= 0",
        ),
        "n_iter",
        "randomized_svd",
    )
    check(
        power_iteration_normalizer,
        Options(("auto", "QR", "LU", "none")),
        "power_iteration_normalizer",
        "randomized_svd",
    )
    threads = resolve_threads(n_threads)
    if not isinstance(X, MatrixOperator):
        X = MatrixOperator(as_matrix(X, "randomized_svd"), threads)
    check_rank(factors, X.shape, "randomized_svd")
    m, n = X.shape
    if n_iter == "auto":
        n_iter = 7 if factors < 0.1 * min(m, n) else 4
    how = power_iteration_normalizer
    if how == "auto":
        how = "QR" if n_iter <= 2 else "LU"
    transpose = m < n  # range-find on the smaller side, as scikit-learn does
    A = X.T if transpose else X
    size = min(factors + n_oversamples, min(m, n))
    rng = _rng(random_state)
    Q = rng.standard_normal((A.shape[1], size)).astype(A.dtype)
    # The products with A (GEMMs or sparse kernels) take the threads; the factorizations
    # of the thin (n x size) blocks are small and run on one BLAS thread, where a team of
    # BLAS threads would cost more in hand-offs than they compute (much more when the
    # cores are busy: measured 0.25 s instead of 10 ms for an LU of 3000 x 110).
    for _ in range(n_iter):
        Y = A.matmat(Q)
        with single_thread_blas():
            Q = _normalize(Y, how)
        Y = A.rmatmat(Q)
        with single_thread_blas():
            Q = _normalize(Y, how)
    Y = A.matmat(Q)
    with single_thread_blas():
        Q = la.qr(Y, mode="economic", check_finite=False)[0]
    B = A.rmatmat(Q).T  # Q^T A, (size, n)
    with single_thread_blas():
        Uh, s, Vt = la.svd(B, full_matrices=False, check_finite=False, lapack_driver="gesdd")
        U = Q @ Uh
    U, s, Vt = U[:, :factors], s[:factors], Vt[:factors]
    if transpose:
        U, Vt = Vt.T, U.T
    U, Vt = _flip_signs(U, Vt)
    return (
        np.ascontiguousarray(U, dtype=A.dtype),
        s.astype(A.dtype),
        np.ascontiguousarray(Vt, dtype=A.dtype),
    )


def _svd(op: MatrixOperator, factors: int, algorithm: str, est: Any) -> tuple:
    """Rank-``factors`` SVD of the operator with the estimator's algorithm settings."""
    if algorithm == "randomized":
        return randomized_svd(
            op,
            factors,
            n_oversamples=est.n_oversamples,
            n_iter=est.n_iter,
            power_iteration_normalizer=est.power_iteration_normalizer,
            random_state=est.random_state,
            n_threads=op.n_threads,
        )
    if algorithm == "exact":
        with blas_threads(op.n_threads):
            U, s, Vt = la.svd(
                op.toarray(), full_matrices=False, check_finite=False, lapack_driver="gesdd"
            )
        U, Vt = _flip_signs(U[:, :factors], Vt[:factors])
        return U.astype(op.dtype), s[:factors].astype(op.dtype), Vt.astype(op.dtype)
    # lanczos: ARPACK on the operator
    from scipy.sparse.linalg import LinearOperator, svds

    if factors >= min(op.shape):
        raise InvalidParameterError(
            f"{type(est).__name__}: algorithm='lanczos' needs factors < min(n_rows, "
            f"n_columns) = {min(op.shape)}; got factors={factors}. Use algorithm='exact'."
        )
    lin = LinearOperator(
        op.shape,
        matvec=lambda v: op.matmat(v.reshape(-1, 1)).ravel(),
        matmat=op.matmat,
        rmatvec=lambda v: op.rmatmat(v.reshape(-1, 1)).ravel(),
        rmatmat=op.rmatmat,
        dtype=op.dtype,
    )
    rng = _rng(est.random_state)
    v0 = rng.uniform(-1, 1, min(op.shape)).astype(op.dtype)
    with blas_threads(op.n_threads):
        U, s, Vt = svds(lin, k=factors, tol=est.tol, v0=v0, solver="arpack")
    order = np.argsort(s)[::-1]
    U, Vt = _flip_signs(U[:, order], Vt[order])
    return U.astype(op.dtype), s[order].astype(op.dtype), Vt.astype(op.dtype)


# ------------------------------------------------------------------ missing-entry imputation
def _missing_mask(values: np.ndarray, marker: float) -> np.ndarray:
    return np.isnan(values) if np.isnan(marker) else values == marker


def _fit_imputation(X: Any, marker: float, how: str) -> dict[str, Any]:
    """Observed-entry means: per column (``column``), overall (``global``); row means are
    taken from each matrix being transformed. A row or column with no observed entry
    falls back to the global mean."""
    obs_sum, obs_count = _observed_sums(X, marker, axis=0)
    total = obs_count.sum()
    if total == 0:
        raise DataError(
            f"X has no observed entry: every value equals missing_values={marker!r}. "
            "Pass the matrix with its observed values, or another missing_values."
        )
    glob = float(obs_sum.sum() / total)
    state = {"global": glob}
    if how == "column":
        with np.errstate(invalid="ignore", divide="ignore"):
            col = np.where(obs_count > 0, obs_sum / np.maximum(obs_count, 1), glob)
        state["column"] = col
    return state


def _observed_sums(X: Any, marker: float, axis: int) -> tuple[np.ndarray, np.ndarray]:
    m, n = X.shape
    if sp.issparse(X):
        data = X.data
        miss = _missing_mask(data, marker)
        keep = np.where(miss, 0.0, data.astype(np.float64))
        coo = sp.csr_matrix((keep, X.indices, X.indptr), shape=X.shape)
        stored_miss = sp.csr_matrix((miss.astype(np.float64), X.indices, X.indptr), shape=X.shape)
        sums = np.asarray(coo.sum(axis=axis)).ravel()
        n_missing = np.asarray(stored_miss.sum(axis=axis)).ravel()
        if marker == 0:  # implicit zeros are missing too
            counts = np.diff(X.indptr) if axis == 1 else np.bincount(X.indices, minlength=n)
            counts = counts - n_missing
        else:
            counts = (n if axis == 1 else m) - n_missing
        return sums, counts.astype(np.float64)
    miss = _missing_mask(X, marker)
    keep = np.where(miss, 0.0, X.astype(np.float64))
    return keep.sum(axis=axis), (~miss).sum(axis=axis).astype(np.float64)


def _impute(X: Any, marker: float, how: str, state: dict, n_threads: int) -> MatrixOperator:
    """The matrix with its missing entries replaced by the chosen means, as an operator."""
    m, n = X.shape
    glob = state["global"]
    if how == "row":
        sums, counts = _observed_sums(X, marker, axis=1)
        fill = np.where(counts > 0, sums / np.maximum(counts, 1), glob)
    elif how == "column":
        fill = state["column"]
    else:
        fill = None
    dtype = X.dtype
    if not sp.issparse(X):
        miss = _missing_mask(X, marker)
        Xf = X.copy()
        if how == "row":
            Xf[miss] = np.broadcast_to(fill[:, None], X.shape)[miss]
        elif how == "column":
            Xf[miss] = np.broadcast_to(fill[None, :], X.shape)[miss]
        else:
            Xf[miss] = glob
        return MatrixOperator(Xf, n_threads)
    X = X.copy()
    rows = np.repeat(np.arange(m), np.diff(X.indptr))
    miss = _missing_mask(X.data, marker)
    if how == "row":
        per_entry, a, b = fill[rows], fill, np.ones(n)
    elif how == "column":
        per_entry, a, b = fill[X.indices], np.ones(m), fill
    else:
        per_entry, a, b = np.full(X.nnz, glob), np.ones(m), np.full(n, glob)
    if marker == 0:
        # X_imputed = observed values where stored, the fill elsewhere
        #           = (stored - fill at stored positions) + fill everywhere (rank one)
        X.data = np.where(miss, 0.0, X.data - per_entry).astype(dtype)
        return MatrixOperator(X, n_threads, terms=[(a, b)])
    X.data = np.where(miss, per_entry, X.data).astype(dtype)
    return MatrixOperator(X, n_threads)


_MISSING = NoneOr(
    Satisfies(
        lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool) and not np.isinf(v),
        "a number or np.nan (the value that marks a missing entry)",
    )
)
_SVD_COMMON: dict[str, Any] = {
    "factors": Interval(int, 1),
    "n_iter": Interval(int, 0),
    "n_oversamples": Interval(int, 0),
    "power_iteration_normalizer": Options(("auto", "QR", "LU", "none")),
    "tol": Interval(float, 0),
    "random_state": RandomState(),
    "n_threads": Threads(),
    "dtype": Satisfies(
        lambda v: v is None or v in (np.float32, np.float64, "float32", "float64"),
        "None, numpy.float32 or numpy.float64",
    ),
}


class TruncatedSVD(Estimator):
    """Rank-``factors`` SVD of a dense or sparse matrix, scikit-learn style.

    ``X ~ U diag(s) Vt``: :meth:`transform` gives ``X @ Vt.T`` (``U diag(s)`` for the
    training matrix), :meth:`inverse_transform` maps back with ``Vt``. The data is not
    centred (use :class:`PCA` for that), so sparse input stays sparse.

    Parameters
    ----------
    factors : int, default=2
        Number of singular triplets kept (<= min(n_rows, n_columns)).
    algorithm : {"randomized", "lanczos", "exact"}, default="randomized"
        ``"randomized"`` (Halko et al., scikit-learn's default), ``"lanczos"`` (ARPACK,
        as ``scipy.sparse.linalg.svds``) or ``"exact"`` (LAPACK ``gesdd`` on the dense
        matrix; for small matrices).
    n_iter, n_oversamples, power_iteration_normalizer :
        Randomized-solver settings, with scikit-learn's defaults (5, 10, "auto").
    missing_values : float or None, default=None
        Value marking a missing entry (``np.nan``, or ``0`` for "unknown" ratings, where a
        sparse matrix's implicit zeros are missing too). Missing entries are replaced by
        the ``impute`` means before the SVD; a sparse matrix stays sparse.
    impute : {"row", "column", "global"}, default="row"
        Which observed-entry mean replaces a missing entry (rows or columns with no
        observed entry take the global mean).
    tol : float, default=0.0
        ARPACK tolerance (``lanczos`` only; 0 means machine precision).
    random_state, n_threads :
        Seed and thread count (None: all cores).
    dtype : {None, numpy.float32, numpy.float64}, default=None
        Working precision; None keeps float64 input and uses float32 for everything else.

    Attributes
    ----------
    components_ : ndarray (factors, n_columns)
    singular_values_ : ndarray (factors,)
    explained_variance_, explained_variance_ratio_ : ndarray (factors,)
        Variance of each component of the transformed training data, and its share of
        the total column variance (of the imputed matrix).

    Examples
    --------
    >>> import numpy as np
    >>> import factorkit as fk
    >>> X = np.random.default_rng(0).random((60, 30))
    >>> svd = fk.decomposition.TruncatedSVD(factors=5, random_state=0)
    >>> Z = svd.fit_transform(X)
    >>> Z.shape, svd.components_.shape
    ((60, 5), (5, 30))
    >>> bool(np.allclose(svd.singular_values_, np.linalg.svd(X, compute_uv=False)[:5]))
    True
    """

    _parameter_constraints: ClassVar[dict[str, Any]] = {
        **_SVD_COMMON,
        "algorithm": Options(("randomized", "lanczos", "exact")),
        "missing_values": _MISSING,
        "impute": Options(("row", "column", "global")),
    }
    _fitted_marker: ClassVar[str] = "components_"
    #: read by factorkit.get_tags / fk.all_estimators("decomposition")
    _tags: ClassVar[dict[str, Any]] = {"kind": "decomposition"}

    def __init__(
        self,
        factors: int = 2,
        *,
        algorithm: str = "randomized",
        n_iter: int = 5,
        n_oversamples: int = 10,
        power_iteration_normalizer: str = "auto",
        missing_values: float | None = None,
        impute: str = "row",
        tol: float = 0.0,
        random_state: Any = None,
        n_threads: int | None = None,
        dtype: Any = None,
    ):
        self.factors = factors
        self.algorithm = algorithm
        self.n_iter = n_iter
        self.n_oversamples = n_oversamples
        self.power_iteration_normalizer = power_iteration_normalizer
        self.missing_values = missing_values
        self.impute = impute
        self.tol = tol
        self.random_state = random_state
        self.n_threads = n_threads
        self.dtype = dtype

    def _operator(self, X: Any, fit: bool) -> MatrixOperator:
        owner = type(self).__name__
        marker = self.missing_values
        nan_marks = marker is not None and np.isnan(marker)
        X = as_matrix(X, owner, dtype=self.dtype, allow_nan=nan_marks)
        if not fit and X.shape[1] != self.n_features_in_:
            raise DataError(
                f"{owner}: X has {X.shape[1]} columns but the model was fitted on "
                f"{self.n_features_in_}; pass a matrix with {self.n_features_in_} columns."
            )
        threads = resolve_threads(self.n_threads)
        if marker is None:
            return MatrixOperator(X, threads)
        if fit:
            self._impute_state = _fit_imputation(X, marker, self.impute)
        return _impute(X, marker, self.impute, self._impute_state, threads)

    def fit(self, X: Any, y: Any = None) -> TruncatedSVD:
        """Fit on ``X`` (ndarray or scipy.sparse, shape (n_rows, n_columns))."""
        self.fit_transform(X)
        return self

    def fit_transform(self, X: Any, y: Any = None) -> np.ndarray:
        """Fit and return ``U diag(s)``, the training rows in component space."""
        self._validate_params()
        op = self._operator(X, fit=True)
        check_rank(self.factors, op.shape, type(self).__name__)
        U, s, Vt = _svd(op, self.factors, self.algorithm, self)
        Z = U * s
        self.n_features_in_ = op.shape[1]
        self.singular_values_ = s
        self.explained_variance_ = np.var(Z, axis=0).astype(op.dtype)
        total = op.column_variances().sum()
        self.explained_variance_ratio_ = (self.explained_variance_ / total).astype(op.dtype)
        self.components_ = Vt
        return Z

    def transform(self, X: Any) -> np.ndarray:
        """``X @ components_.T`` (after the fitted imputation, if any)."""
        self._check_fitted("transform")
        op = self._operator(X, fit=False)
        return op.matmat(self.components_.T.astype(op.dtype))

    def inverse_transform(self, Z: Any) -> np.ndarray:
        """Map component-space rows back: ``Z @ components_``."""
        self._check_fitted("inverse_transform")
        Z = as_matrix(Z, type(self).__name__, name="Z", dtype=self.components_.dtype)
        _check_width(Z, self.components_.shape[0], type(self).__name__)
        return Z @ self.components_


def _check_width(Z: Any, k: int, owner: str) -> None:
    if Z.shape[1] != k:
        raise DataError(f"{owner}: Z must have {k} columns (one per component); got {Z.shape[1]}.")


class PCA(Estimator):
    """Principal component analysis: the truncated SVD of the column-centred matrix.

    Sparse input is centred implicitly (``X - 1 mean^T`` is never formed).

    Parameters
    ----------
    factors : int, default=2
        Number of components.
    algorithm : {"auto", "randomized", "lanczos", "exact"}, default="auto"
        ``"auto"``: exact for matrices up to 500 on their longer side or when factors is
        over 80% of min(n_rows, n_columns), randomized otherwise.
    whiten : bool, default=False
        Scale the transformed components to unit variance.
    n_iter, n_oversamples, power_iteration_normalizer, tol, random_state, n_threads, dtype :
        As for :class:`TruncatedSVD`; ``n_iter="auto"`` is not offered (default 5).

    Attributes
    ----------
    mean_ : ndarray (n_columns,)
    components_ : ndarray (factors, n_columns)
    singular_values_, explained_variance_, explained_variance_ratio_ : ndarray (factors,)
        ``explained_variance_ = s**2 / (n_rows - 1)``; the ratio is its share of the total
        variance.

    Examples
    --------
    >>> import numpy as np
    >>> import factorkit as fk
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 2)) @ rng.normal(size=(2, 10)) + 5.0
    >>> pca = fk.decomposition.PCA(factors=2).fit(X)
    >>> round(float(pca.explained_variance_ratio_.sum()), 4)
    1.0
    """

    _parameter_constraints: ClassVar[dict[str, Any]] = {
        **_SVD_COMMON,
        "algorithm": Options(("auto", "randomized", "lanczos", "exact")),
        "whiten": Boolean(),
    }
    _fitted_marker: ClassVar[str] = "components_"
    #: read by factorkit.get_tags / fk.all_estimators("decomposition")
    _tags: ClassVar[dict[str, Any]] = {"kind": "decomposition"}

    def __init__(
        self,
        factors: int = 2,
        *,
        algorithm: str = "auto",
        whiten: bool = False,
        n_iter: int = 5,
        n_oversamples: int = 10,
        power_iteration_normalizer: str = "auto",
        tol: float = 0.0,
        random_state: Any = None,
        n_threads: int | None = None,
        dtype: Any = None,
    ):
        self.factors = factors
        self.algorithm = algorithm
        self.whiten = whiten
        self.n_iter = n_iter
        self.n_oversamples = n_oversamples
        self.power_iteration_normalizer = power_iteration_normalizer
        self.tol = tol
        self.random_state = random_state
        self.n_threads = n_threads
        self.dtype = dtype

    def _centred(self, X: Any) -> MatrixOperator:
        threads = resolve_threads(self.n_threads)
        mean = self.mean_.astype(X.dtype)
        if sp.issparse(X):
            return MatrixOperator(X, threads, terms=[(-np.ones(X.shape[0]), mean)])
        return MatrixOperator(X - mean, threads)

    def fit(self, X: Any, y: Any = None) -> PCA:
        """Fit on ``X`` (ndarray or scipy.sparse)."""
        self.fit_transform(X)
        return self

    def fit_transform(self, X: Any, y: Any = None) -> np.ndarray:
        """Fit and return the training rows in component space."""
        self._validate_params()
        owner = type(self).__name__
        X = as_matrix(X, owner, dtype=self.dtype)
        check_rank(self.factors, X.shape, owner)
        m, n = X.shape
        self.mean_ = np.asarray(X.mean(axis=0), dtype=X.dtype).ravel()
        op = self._centred(X)
        algorithm = self.algorithm
        if algorithm == "auto":
            small = max(m, n) <= 500 or self.factors > 0.8 * min(m, n)
            algorithm = "exact" if small else "randomized"
        U, s, Vt = _svd(op, self.factors, algorithm, self)
        self.n_features_in_ = n
        self.components_ = Vt
        self.singular_values_ = s
        self.explained_variance_ = (s.astype(np.float64) ** 2 / max(m - 1, 1)).astype(X.dtype)
        total = op.column_variances(ddof=1).sum()
        self.explained_variance_ratio_ = (self.explained_variance_ / total).astype(X.dtype)
        Z = U * s
        if self.whiten:
            Z = Z / np.sqrt(self.explained_variance_)
        return Z.astype(X.dtype)

    def transform(self, X: Any) -> np.ndarray:
        """Centre with the fitted mean and project on the components."""
        self._check_fitted("transform")
        owner = type(self).__name__
        X = as_matrix(X, owner, dtype=self.components_.dtype)
        if X.shape[1] != self.n_features_in_:
            raise DataError(
                f"{owner}: X has {X.shape[1]} columns but the model was fitted on "
                f"{self.n_features_in_}; pass a matrix with {self.n_features_in_} columns."
            )
        Z = self._centred(X).matmat(self.components_.T)
        if self.whiten:
            Z = Z / np.sqrt(self.explained_variance_)
        return Z

    def inverse_transform(self, Z: Any) -> np.ndarray:
        """Back to the original space: ``Z @ components_ + mean_`` (undoing whitening)."""
        self._check_fitted("inverse_transform")
        Z = as_matrix(Z, type(self).__name__, name="Z", dtype=self.components_.dtype)
        _check_width(Z, self.components_.shape[0], type(self).__name__)
        if self.whiten:
            Z = Z * np.sqrt(self.explained_variance_)
        return Z @ self.components_ + self.mean_
