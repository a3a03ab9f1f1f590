"""Input checks shared by the decomposition estimators and functions.

Bad input is never coerced silently: each error names the argument, what was expected,
what was given and how to fix it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from factorkit.exceptions import DataError, InvalidParameterError

__all__ = ["as_matrix", "check_nonnegative", "check_rank", "float_dtype", "sparse_csr"]

_FLOATS = (np.float32, np.float64)


def float_dtype(X: Any, dtype: Any) -> np.dtype:
    """The working dtype: ``dtype`` when given, else float64 input stays float64 and
    everything else (float32, ints, bools, float16) becomes float32."""
    if dtype is not None:
        dt = np.dtype(dtype)
        if dt.type not in _FLOATS:
            raise InvalidParameterError(
                f"dtype must be numpy.float32 or numpy.float64; got {dt}. Pass dtype=None "
                "to keep float64 input and use float32 otherwise."
            )
        return dt
    return np.dtype(np.float64) if X.dtype == np.float64 else np.dtype(np.float32)


def as_matrix(
    X: Any,
    owner: str,
    *,
    name: str = "X",
    dtype: Any = None,
    allow_nan: bool = False,
    sparse: bool = True,
) -> np.ndarray | sp.csr_matrix:
    """``X`` as a 2-D float ndarray or CSR matrix of the working dtype.

    Empty, 1-D and >2-D input, non-numeric dtypes and non-finite values (NaN allowed only
    when ``allow_nan``, i.e. NaN marks a missing entry) raise :class:`DataError`.
    """
    if sp.issparse(X):
        if not sparse:
            raise DataError(
                f"{owner}: {name} must be a dense array here; got a scipy.sparse "
                f"{X.format} matrix. Convert it with {name}.toarray()."
            )
        if X.ndim != 2:
            raise DataError(f"{owner}: {name} must be 2-D; got shape {X.shape}")
        kind = X.dtype.kind
    else:
        if isinstance(X, np.ndarray):
            arr = X
        else:
            try:
                arr = np.asarray(X)
            except (TypeError, ValueError) as exc:  # ragged lists
                raise DataError(
                    f"{owner}: {name} must be a 2-D array of numbers; could not read it as one "
                    f"({exc}). Pass a rectangular list of lists or a numpy array."
                ) from None
        if arr.ndim != 2:
            raise DataError(
                f"{owner}: {name} must be a 2-D matrix; got {arr.ndim}-D input of shape "
                f"{arr.shape}. Reshape it, e.g. {name}.reshape(1, -1) for a single row."
            )
        X = arr
        kind = arr.dtype.kind
    if kind not in "biuf":
        raise DataError(
            f"{owner}: {name} must hold numbers (bool, int or float); got dtype {X.dtype}. "
            f"Convert it, e.g. np.asarray({name}, dtype=np.float32)."
        )
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise DataError(
            f"{owner}: {name} is empty (shape {X.shape}); it needs at least one row and one column."
        )
    dt = float_dtype(X, dtype)
    if sp.issparse(X):
        X = sp.csr_matrix(X, dtype=dt, copy=False)
        X.sum_duplicates()
        values = X.data
    else:
        X = np.ascontiguousarray(X, dtype=dt)
        values = X
    finite = np.isfinite(values)
    if not finite.all():
        bad = ~finite & ~np.isnan(values) if allow_nan else ~finite
        if bad.any():
            where = _position(X, np.flatnonzero(bad.ravel())[0])
            value = values.ravel()[np.flatnonzero(bad.ravel())[0]]
            hint = (
                "Only NaN may mark a missing entry."
                if allow_nan
                else "Replace them, or mark missing entries with NaN where the estimator "
                "supports it (NMF, TruncatedSVD(missing_values=np.nan), factorize)."
            )
            raise DataError(
                f"{owner}: {name} has {int(bad.sum())} non-finite value(s), the first "
                f"{value} at {where}. {hint}"
            )
    return X


def _position(X: Any, flat: int) -> tuple[int, int]:
    if sp.issparse(X):
        row = int(np.searchsorted(X.indptr, flat, side="right") - 1)
        return row, int(X.indices[flat])
    return tuple(int(v) for v in np.unravel_index(flat, X.shape))


def check_nonnegative(X: Any, owner: str, name: str = "X") -> None:
    """Raise a DataError naming the smallest value and where it is when ``X`` has a
    negative entry (NaN, a missing entry, is ignored)."""
    values = X.data if sp.issparse(X) else X
    if values.size == 0:
        return
    smallest = np.nanmin(values) if values.size else 0.0
    if smallest < 0:
        flat = int(np.nanargmin(values.ravel()))
        where = _position(X, flat)
        n_neg = int(np.sum(values < 0))
        raise DataError(
            f"{owner}: {name} must be non-negative; it has {n_neg} negative value(s), the "
            f"smallest {smallest:g} at row {where[0]}, column {where[1]}. Shift or clip "
            "the data yourself (e.g. X - X.min()), or use TruncatedSVD, which allows "
            "negative values."
        )


def check_rank(k: int, shape: tuple[int, int], owner: str, name: str = "factors") -> None:
    """``k`` must not exceed min(m, n)."""
    limit = min(shape)
    if k > limit:
        raise InvalidParameterError(
            f"{owner}: {name}={k} is larger than min(n_rows, n_columns) = {limit} for a "
            f"{shape[0]}x{shape[1]} matrix; pass {name} <= {limit}."
        )


def sparse_csr(X: sp.spmatrix) -> sp.csr_matrix:
    """CSR with int32/int64 indices, sorted, as the kernels expect."""
    X = sp.csr_matrix(X)
    if not X.has_sorted_indices:
        X.sort_indices()
    return X
