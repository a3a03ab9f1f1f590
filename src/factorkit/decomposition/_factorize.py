"""``factorize``: a small dense matrix with unknown entries -> (U, V, R_hat) in one call."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from factorkit._validation import (
    Boolean,
    Interval,
    NoneOr,
    Options,
    RandomState,
    Satisfies,
    validate_params,
)
from factorkit.decomposition._checks import as_matrix, check_rank
from factorkit.exceptions import DataError
from factorkit.kernels.factorize import factorize_sgd_epoch

__all__ = ["factorize"]

_DEFAULT_EPOCHS = {"als": 50, "sgd": 2000}


@validate_params(
    {
        "factors": Interval(int, 1),
        "missing": Satisfies(
            lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool),
            "a number or np.nan (the value that marks an unknown entry)",
        ),
        "method": Options(("als", "sgd")),
        "epochs": NoneOr(Interval(int, 1)),
        "regularization": Interval(float, 0),
        "learning_rate": Interval(float, 0, None, "neither"),
        "random_state": RandomState(),
        "progress": Boolean(),
    },
    owner="factorize",
)
def factorize(
    R: Any,
    factors: int = 2,
    *,
    missing: float = 0,
    method: str = "als",
    epochs: int | None = None,
    regularization: float = 0.02,
    learning_rate: float = 0.01,
    random_state: Any = 0,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Factorize ``R ~ U V^T`` on its known entries; ``R_hat`` fills in the unknown ones.

    Minimises ``sum_{known (i,j)} (r_ij - u_i . v_j)^2 + regularization (|U|^2 + |V|^2)``
    (per-entry weight decay for SGD). Entries equal to ``missing`` (``0`` or ``np.nan``)
    are unknown: they take no part in the loss. For small dense matrices (all in memory,
    float64); use the recommenders or :class:`NMF` for large data.

    Parameters
    ----------
    R : array-like (n_rows, n_columns)
    factors : int, default=2
    missing : float, default=0
        Marker of an unknown entry (``np.nan`` allowed).
    method : {"als", "sgd"}, default="als"
        Alternating least squares (each row's ridge regression in turn) or stochastic
        gradient descent (the classic tutorial algorithm).
    epochs : int, optional
        50 for ALS, 2000 for SGD by default.
    regularization, learning_rate : float
        L2 strength; SGD step size.
    random_state : int, Generator or None, default=0
    progress : bool, default=False
        Print the loss (squared error + penalty) and RMSE on the known entries per epoch.

    Returns
    -------
    U : ndarray (n_rows, factors)
    V : ndarray (n_columns, factors)
    R_hat : ndarray (n_rows, n_columns), ``U @ V.T``

    Examples
    --------
    >>> import numpy as np
    >>> import factorkit as fk
    >>> R = np.array([[5, 0, 4], [4, 2, 0], [0, 1, 2]])
    >>> U, V, R_hat = fk.factorize(R, factors=2, missing=0)
    >>> U.shape, V.shape, bool(abs(R_hat[0, 0] - 5) < 0.2)
    ((3, 2), (3, 2), True)
    """
    R = as_matrix(R, "factorize", name="R", dtype=np.float64, allow_nan=True, sparse=False)
    check_rank(factors, R.shape, "factorize")
    known = ~np.isnan(R) if np.isnan(missing) else (missing != R) & ~np.isnan(R)
    if np.isnan(R).any() and not np.isnan(missing):
        raise DataError(
            f"factorize: R contains NaN but missing={missing!r}; pass missing=np.nan to mark "
            "unknown entries with NaN."
        )
    if not known.any():
        raise DataError(f"factorize: R has no known entry (every entry equals {missing!r}).")
    rng = np.random.default_rng(random_state)
    m, n = R.shape
    rows, cols = np.nonzero(known)
    values = R[rows, cols]
    scale = np.sqrt(max(abs(values.mean()), 1e-12) / factors)
    U = rng.uniform(0.5, 1.5, (m, factors)) * scale
    V = rng.uniform(0.5, 1.5, (n, factors)) * scale
    epochs = _DEFAULT_EPOCHS[method] if epochs is None else epochs
    every = max(1, epochs // 10) if method == "sgd" else 1
    for epoch in range(1, epochs + 1):
        if method == "als":
            _als_side(U, V, known, R, regularization)
            _als_side(V, U, known.T, R.T, regularization)
        else:
            order = rng.permutation(len(values))
            factorize_sgd_epoch(rows, cols, values, order, U, V, learning_rate, regularization)
        if progress and (epoch % every == 0 or epoch == 1):
            err = values - np.einsum("ij,ij->i", U[rows], V[cols])
            sse = float(err @ err)
            loss = sse + regularization * float((U**2).sum() + (V**2).sum())
            rmse = np.sqrt(sse / len(values))
            print(f"epoch {epoch:>4}/{epochs}  loss {loss:.4f}  rmse {rmse:.4f}")
    return U, V, U @ V.T


def _als_side(A: np.ndarray, B: np.ndarray, known: np.ndarray, R: np.ndarray, reg: float):
    """Each row of ``A``: ridge regression of its known entries on the rows of ``B``."""
    k = A.shape[1]
    eye = reg * np.eye(k)
    for i in range(A.shape[0]):
        obs = known[i]
        if not obs.any():
            A[i] = 0.0  # nothing known about this row: predict 0 rather than noise
            continue
        Bo = B[obs]
        A[i] = np.linalg.solve(Bo.T @ Bo + eye, Bo.T @ R[i, obs])
