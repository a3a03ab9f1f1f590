"""A matrix as products only: dense, or sparse plus rank-one terms (imputed or centred).

Imputing the row means of a sparse matrix whose zeros are missing, or centring it for
PCA, would make it dense. Written as ``S + sum_r a_r b_r^T`` (``S`` sparse with the same
pattern) it keeps its size, and the randomized and Lanczos SVDs only need products with
it and its transpose.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from factorkit._threads import blas_threads, using_threads
from factorkit.kernels.nmf import csr_matmul_dense

__all__ = ["PARALLEL_MIN_WORK", "MatrixOperator"]

#: below this many multiply-adds per product (stored entries x columns), kernels run on
#: one thread: a parallel launch costs more than the work, and far more on a busy machine
#: where the second thread waits for a core.
PARALLEL_MIN_WORK = 2_000_000


class MatrixOperator:
    """``X = S + sum_r a_r b_r^T`` with ``S`` a dense array or a CSR matrix.

    ``matmat(B)`` is ``X @ B`` and ``rmatmat(B)`` is ``X.T @ B``; sparse products run on
    ``n_threads`` numba threads (a CSR copy of ``S.T`` is kept for ``rmatmat``), dense
    ones on ``n_threads`` BLAS threads.
    """

    def __init__(self, S, n_threads: int, terms=()):
        self.S = S
        self.sparse = sp.issparse(S)
        self.dtype = S.dtype
        self.shape = S.shape
        self.n_threads = n_threads
        self.terms = [
            (np.asarray(a, dtype=self.dtype), np.asarray(b, dtype=self.dtype)) for a, b in terms
        ]
        self._ST = None

    def _sparse_product(self, S, B):
        B = np.ascontiguousarray(B, dtype=self.dtype)
        out = np.empty((S.shape[0], B.shape[1]), dtype=self.dtype)
        threads = self.n_threads if S.nnz * B.shape[1] >= PARALLEL_MIN_WORK else 1
        with using_threads(threads):
            csr_matmul_dense(S.indptr, S.indices, S.data, B, out)
        return out

    def matmat(self, B: np.ndarray) -> np.ndarray:
        if self.sparse:
            out = self._sparse_product(self.S, B)
        else:
            with blas_threads(self.n_threads):
                out = self.S @ B
        for a, b in self.terms:
            out += np.outer(a, b @ B)
        return out

    def rmatmat(self, B: np.ndarray) -> np.ndarray:
        if self.sparse:
            if self._ST is None:
                self._ST = sp.csr_matrix(self.S.T)
            out = self._sparse_product(self._ST, B)
        else:
            with blas_threads(self.n_threads):
                out = self.S.T @ B
        for a, b in self.terms:
            out += np.outer(b, a @ B)
        return out

    @property
    def T(self) -> MatrixOperator:
        op = MatrixOperator.__new__(MatrixOperator)
        op.S = self._ST if self._ST is not None else (self.S.T.tocsr() if self.sparse else self.S.T)
        op._ST = self.S
        op.sparse, op.dtype, op.n_threads = self.sparse, self.dtype, self.n_threads
        op.shape = (self.shape[1], self.shape[0])
        op.terms = [(b, a) for a, b in self.terms]
        return op

    def toarray(self) -> np.ndarray:
        X = self.S.toarray() if self.sparse else np.array(self.S)
        for a, b in self.terms:
            X += np.outer(a, b)
        return X

    def column_moments(self) -> tuple[np.ndarray, np.ndarray]:
        """Column sums and column sums of squares, without forming the matrix."""
        S = self.S
        if self.sparse:
            sums = np.asarray(S.sum(axis=0), dtype=np.float64).ravel()
            sq = np.asarray(S.multiply(S).sum(axis=0), dtype=np.float64).ravel()
        else:
            S64 = S.astype(np.float64, copy=False)
            sums = S64.sum(axis=0)
            sq = np.einsum("ij,ij->j", S64, S64)
        # the rank-one terms' cross products with S and with each other
        for r, (a, b) in enumerate(self.terms):
            a64, b64 = a.astype(np.float64), b.astype(np.float64)
            Sa = np.asarray(S.T @ a64, dtype=np.float64).ravel()
            sums += a64.sum() * b64
            sq += 2 * b64 * Sa + b64**2 * (a64 @ a64)
            for a2, b2 in self.terms[:r]:
                sq += 2 * b64 * b2.astype(np.float64) * (a64 @ a2.astype(np.float64))
        return sums, sq

    def column_variances(self, ddof: int = 0) -> np.ndarray:
        n = self.shape[0]
        sums, sq = self.column_moments()
        mean = sums / n
        return np.maximum(sq - n * mean**2, 0.0) / max(n - ddof, 1)

    def frobenius_sq(self) -> float:
        return float(self.column_moments()[1].sum())
