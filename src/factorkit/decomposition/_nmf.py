"""Non-negative matrix factorization ``X ~ W H`` on dense, sparse and partly observed data.

One solver, :func:`non_negative_factorization`, runs behind the :class:`NMF` class, as in
scikit-learn's ``decomposition/_nmf.py``:

- ``solver="cd"``: coordinate descent (Hsieh & Dhillon 2011), Frobenius loss;
- ``solver="mu"``: multiplicative updates (Lee & Seung 2001), Frobenius or KL loss.

Three data layouts share the solvers: dense (BLAS products), sparse (every entry
observed, implicit zeros are zeros; numba sparse products) and *masked* (NaN entries of a
dense array, or the entries an explicit ``mask`` leaves out, take no part in the loss:
the observed entries are held as a CSR pattern and each row solves its own problem).
The objective and the regularization scaling are scikit-learn's: ``0.5 ||X - WH||^2``
(or the KL divergence) ``+ alpha_W * l1_ratio * n_columns * |W|_1 + 0.5 * alpha_W *
(1 - l1_ratio) * n_columns * ||W||^2`` and the same for ``H`` with ``alpha_H`` and
``n_rows``.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from factorkit._threads import resolve_threads, using_threads
from factorkit._validation import (
    Boolean,
    Interval,
    Options,
    RandomState,
    Satisfies,
    Threads,
    check_params,
)
from factorkit.base import Estimator
from factorkit.decomposition._checks import as_matrix, check_nonnegative, check_rank
from factorkit.decomposition._operator import PARALLEL_MIN_WORK, MatrixOperator
from factorkit.decomposition._svd import _fit_imputation, _impute, _rng, randomized_svd
from factorkit.exceptions import ConvergenceWarning, DataError, InvalidParameterError
from factorkit.kernels.nmf import (
    MU_FROBENIUS,
    MU_FROBENIUS_MASKED,
    MU_KL,
    MU_KL_MASKED,
    csr_loss_terms,
    csr_sampled_dots,
    dense_convert_scan,
    dense_iteration_buffers,
    dense_loss,
    nmf_dense_cd_rows,
    nmf_dense_fused_rows,
    nmf_dense_iteration,
    nmf_dense_mu_rows,
    nmf_masked_cd_rows,
    nmf_sparse_cd_rows,
    nmf_sparse_mu_rows,
    sparse_bounds,
)

__all__ = ["NMF", "non_negative_factorization"]

#: floor of denominators and of model values in KL ratios (scikit-learn's EPSILON)
EPS = float(np.finfo(np.float32).eps)
#: coordinate-descent passes per row and half-iteration on masked data: the row's k x k
#: Gram matrix costs O(nnz_row k^2) to build and a pass only O(k^2), so extra passes are
#: nearly free and speed up convergence per iteration.
MASKED_SWEEPS = 3

_DTYPE = Satisfies(
    lambda v: v in (np.float32, np.float64, "float32", "float64"),
    "numpy.float32 or numpy.float64",
)
_CONSTRAINTS: dict[str, Any] = {
    "factors": Interval(int, 1),
    "init": Options(("nndsvd", "nndsvda", "random", "custom")),
    "solver": Options(("cd", "mu")),
    "loss": Options(("frobenius", "kl")),
    "tol": Interval(float, 0),
    "max_iter": Interval(int, 1),
    "alpha_W": Interval(float, 0),
    "alpha_H": Satisfies(
        lambda v: (
            v == "same" or (isinstance(v, numbers.Real) and not isinstance(v, bool) and v >= 0)
        ),
        "'same' or a number >= 0",
    ),
    "l1_ratio": Interval(float, 0, 1),
    "random_state": RandomState(),
    "n_threads": Threads(),
    "dtype": _DTYPE,
    "verbose": Boolean(),
}


# --------------------------------------------------------------------------------- data
@dataclass
class _Data:
    """The matrix in the layout the solvers use.

    ``kind`` is "dense", "sparse" (all entries observed) or "masked" (only the CSR
    pattern's entries observed). ``X`` is the ndarray or the CSR matrix of observed
    values; ``XT`` its transpose as CSR (for the ``H`` half-step). ``w`` / ``wT``: the
    masked entries' loss weights aligned with ``X.data`` / ``XT.data`` (None: all 1).
    """

    kind: str
    X: Any
    XT: Any
    shape: tuple[int, int]
    dtype: np.dtype
    w: Any = None
    wT: Any = None

    @property
    def observed_mean(self) -> float:
        if self.kind == "dense":
            return float(self.X.mean(dtype=np.float64))
        if self.kind == "sparse":
            return float(self.X.data.sum(dtype=np.float64) / (self.shape[0] * self.shape[1]))
        return float(self.X.data.mean(dtype=np.float64)) if self.X.nnz else 0.0


def _prepare(
    X: Any, mask: Any, owner: str, dtype: Any, weights: Any = None, threads: int = 1
) -> _Data:
    """Validate ``X`` (and ``mask``) and build the solver layout.

    NaN in a dense ``X`` marks a missing entry; so does a False entry of ``mask``.
    Observed entries must be finite and non-negative. ``weights`` (with ``mask`` only;
    internal, checked by the caller: finite, >= 0): a sparse matrix whose values at the
    observed entries weight their squared errors; an entry of weight 0 is left out, as
    if the mask were False there.
    """
    dtype = np.dtype(dtype)
    dense_nan = not sp.issparse(X)
    if mask is not None:
        X = as_matrix(X, owner, dtype=dtype, allow_nan=True)
        M = mask.toarray() if sp.issparse(mask) else np.asarray(mask)
        if M.shape != X.shape:
            raise DataError(f"{owner}: mask must have the shape of X, {X.shape}; got {M.shape}.")
        if M.dtype != np.bool_:
            raise DataError(
                f"{owner}: mask must be a boolean array (True = observed); got dtype "
                f"{M.dtype}. Pass e.g. mask=(R > 0)."
            )
        rows, cols = np.nonzero(M)
        values = np.asarray(X[rows, cols], dtype=dtype).ravel() if sp.issparse(X) else X[rows, cols]
        bad = ~np.isfinite(values)
        if bad.any():
            p = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{owner}: X has {int(bad.sum())} non-finite value(s) at observed (mask=True) "
                f"entries, the first at row {rows[p]}, column {cols[p]}. Set mask False there."
            )
        if weights is not None:
            w = np.asarray(weights[rows, cols], dtype=dtype).ravel()
            keep = w > 0
            rows, cols, values, w = rows[keep], cols[keep], values[keep], w[keep]
            wm = sp.csr_matrix((w, (rows, cols)), shape=X.shape, dtype=dtype)
        obs = sp.csr_matrix((values, (rows, cols)), shape=X.shape, dtype=dtype)
        data = _masked(obs, X.shape, dtype, owner)
        if weights is not None:
            wm.sort_indices()  # same pattern as obs, so the same order
            data.w, data.wT = wm.data, sp.csr_matrix(wm.T).data
        return data
    if (
        isinstance(X, np.ndarray) and X.ndim == 2 and X.size > 0
        and X.dtype.type in (np.float32, np.float64)
    ):  # fmt: skip
        # the common dense case in one compiled pass (cast, finiteness, NaN and sign);
        # anything else goes through the checks below, which name the bad entries
        Y, n_bad = dense_convert_scan(X, dtype, threads)
        if n_bad == 0:
            return _Data("dense", Y, None, Y.shape, dtype)
    X = as_matrix(X, owner, dtype=dtype, allow_nan=dense_nan)
    if not sp.issparse(X):
        nan = np.isnan(X)
        if nan.any():
            rows, cols = np.nonzero(~nan)
            obs = sp.csr_matrix((X[rows, cols], (rows, cols)), shape=X.shape, dtype=dtype)
            return _masked(obs, X.shape, dtype, owner)
        check_nonnegative(X, owner)
        # C order: the kernels take blocks of rows (X) and of columns (X.T) as views
        return _Data("dense", np.ascontiguousarray(X), None, X.shape, dtype)
    check_nonnegative(X, owner)
    X.sort_indices()
    return _Data("sparse", X, sp.csr_matrix(X.T), X.shape, dtype)


def _masked(obs: sp.csr_matrix, shape: tuple, dtype: np.dtype, owner: str) -> _Data:
    obs.sort_indices()
    if obs.nnz == 0:
        raise DataError(f"{owner}: X has no observed entry; every entry is NaN or masked out.")
    check_nonnegative(obs, owner)
    return _Data("masked", obs, sp.csr_matrix(obs.T), shape, dtype)


# --------------------------------------------------------------------------------- init
def _initialize(data: _Data, k: int, init: str, rng: np.random.Generator, threads: int):
    """scikit-learn's NMF initializations: NNDSVD (Boutsidis & Gallopoulos 2008), NNDSVDa
    (zeros replaced by the mean) or scaled random. Masked data is SVD-initialized from the
    matrix with its missing entries replaced by column means."""
    m, n = data.shape
    dtype = data.dtype
    mean = data.observed_mean
    if init == "random":
        avg = np.sqrt(mean / k)
        H = np.abs(avg * rng.standard_normal((k, n))).astype(dtype)
        W = np.abs(avg * rng.standard_normal((m, k))).astype(dtype)
        return W, H
    if data.kind == "masked":
        state = _fit_imputation(data.X, 0.0, "column")
        op = _impute(data.X, 0.0, "column", state, threads)
    else:
        op = MatrixOperator(data.X, threads)
    U, S, V = randomized_svd(op, k, random_state=rng, n_threads=threads)
    W = np.zeros((m, k), dtype=dtype)
    H = np.zeros((k, n), dtype=dtype)
    W[:, 0] = np.sqrt(S[0]) * np.abs(U[:, 0])
    H[0] = np.sqrt(S[0]) * np.abs(V[0])
    for j in range(1, k):
        x, y = U[:, j], V[j]
        xp, yp = np.maximum(x, 0), np.maximum(y, 0)
        xn, yn = np.abs(np.minimum(x, 0)), np.abs(np.minimum(y, 0))
        xpn, ypn, xnn, ynn = (np.linalg.norm(v) for v in (xp, yp, xn, yn))
        mp, mn = xpn * ypn, xnn * ynn
        if mp > mn:
            u, v, sigma = xp / xpn, yp / ypn, mp
        else:
            u, v, sigma = xn / xnn, yn / ynn, mn
        lbd = np.sqrt(S[j] * sigma)
        W[:, j] = lbd * u
        H[j] = lbd * v
    W[W < 1e-6] = 0
    H[H < 1e-6] = 0
    if init == "nndsvda":
        W[W == 0] = mean
        H[H == 0] = mean
    return W, H


# --------------------------------------------------------------------------------- loss
def _loss(data: _Data, W: np.ndarray, Ht: np.ndarray, loss: str, threads: int) -> float:
    """The data term only (no regularization): 0.5 ||X - WH||^2 or KL(X || WH), over the
    observed entries. Called under ``using_threads(threads)``."""
    X = data.X
    if data.kind == "dense":
        return dense_loss(X, W, Ht, loss == "kl")
    if data.kind == "sparse":  # every entry observed: sums over the stored ones, fused
        terms, other = csr_loss_terms(X.indptr, X.indices, X.data, W, Ht, loss == "kl")
        W64, H64 = W.astype(np.float64), Ht.astype(np.float64)
        if loss == "kl":  # + sum of the model over every entry
            return terms + float(W64.sum(axis=0) @ H64.sum(axis=0))
        # ||X||^2 - 2 <X, WH> + ||WH||^2, the last as tr((W^T W)(H H^T))
        sq = terms - 2 * other + float(np.sum((W64.T @ W64) * (H64.T @ H64)))
        return 0.5 * max(sq, 0.0)
    pred = np.empty(X.nnz, dtype=data.dtype)
    csr_sampled_dots(X.indptr, X.indices, W, Ht, pred)
    if loss == "frobenius":
        sq = (X.data.astype(np.float64) - pred) ** 2
        return 0.5 * float(np.sum(sq if data.w is None else data.w * sq))
    return _kl_terms(X.data, pred) + float(pred.sum(dtype=np.float64))


def _kl_terms(x: np.ndarray, y: np.ndarray) -> float:
    """sum x log(x / y) - x over the given entries (0 log 0 = 0)."""
    x = x.astype(np.float64)
    y = np.maximum(y.astype(np.float64), EPS)
    pos = x > 0
    return float(np.sum(x[pos] * np.log(x[pos] / y[pos])) - x.sum())


# ------------------------------------------------------------------------------ updates
def _half_step(side: str, data: _Data, A: np.ndarray, B: np.ndarray, opts: dict) -> float:
    """Update ``A`` in place with ``B`` fixed, where ``X ~ A B^T`` for side "W" and
    ``X^T ~ A B^T`` for side "H". Returns the CD violation (0 for MU).

    Each half-step is one pass over ``X``: the kernels form each block of rows' products
    and update it at once (:mod:`factorkit.kernels.nmf`). Called under
    ``using_threads(opts["threads"])``, entered once per fit: the thread and BLAS limits
    cost tens of microseconds to set, a few percent of a sparse half-step."""
    X = data.X if side == "W" else (data.XT if data.kind != "dense" else data.X.T)
    dt = A.dtype.type
    l1, l2 = dt(opts["l1_" + side]), dt(opts["l2_" + side])
    kl = opts["loss"] == "kl"
    floor = kl and side == "H"  # scikit-learn's stability floor for beta <= 1
    if opts["solver"] == "cd" and data.kind == "masked":
        w = data.w if side == "W" else data.wT
        return nmf_masked_cd_rows(
            X.indptr, X.indices, X.data, np.empty(0, dtype=A.dtype) if w is None else w,
            A, B, l1, l2, dt(opts["l2_count"]), MASKED_SWEEPS,
        )  # fmt: skip
    G = _gram(B) if opts["solver"] == "cd" or not kl else np.empty((0, 0), dtype=A.dtype)
    if opts["solver"] == "cd":
        G.flat[:: G.shape[0] + 1] += l2
        if data.kind == "dense":
            return nmf_dense_cd_rows(X, A, B, G, l1)
        bounds = _bounds(opts, side, X)
        return nmf_sparse_cd_rows(X.indptr, X.indices, X.data, A, B, G, l1, bounds)
    base = B.sum(axis=0) if kl else np.empty(0, dtype=A.dtype)
    if data.kind == "dense":
        nmf_dense_mu_rows(X, A, B, G, base, l1, l2, kl, floor)
    else:
        masked = data.kind == "masked"
        mode = (MU_KL_MASKED if masked else MU_KL) if kl else (
            MU_FROBENIUS_MASKED if masked else MU_FROBENIUS
        )  # fmt: skip
        nmf_sparse_mu_rows(
            X.indptr, X.indices, X.data, A, B, G, base, l1, l2, mode, floor, _bounds(opts, side, X)
        )
    return 0.0


def _dense_iteration(data: _Data, W: np.ndarray, Ht: np.ndarray, opts: dict, update_H: bool):
    """One iteration (W half-step, then H's) on dense data with the Frobenius loss, in
    one pass over ``X``: the W half-step also forms ``W^T X`` with the updated ``W``,
    the product the H half-step needs, so that half-step touches only k x n arrays
    (:func:`~factorkit.kernels.nmf.nmf_dense_iteration`: one call per iteration, its
    buffers kept for the fit in ``opts``). The same updates, in the same order, as two
    half-steps; returns the CD violation (0 for MU)."""
    cd = opts["solver"] == "cd"
    dt = W.dtype.type
    l1, l2 = dt(opts["l1_W"]), dt(opts["l2_W"])
    if not update_H:  # H fixed: W's half-step alone
        G = _gram(Ht)
        if cd:
            G.flat[:: G.shape[0] + 1] += l2
        return nmf_dense_fused_rows(data.X, W, Ht, G, l1, l2, cd)
    buffers = opts.get("dense_buffers")
    if buffers is None:
        buffers = opts["dense_buffers"] = dense_iteration_buffers(data.X, W, Ht, l2, cd)
    l1_H, l2_H = dt(opts["l1_H"]), dt(opts["l2_H"])
    return nmf_dense_iteration(data.X, W, Ht, buffers, l1, l2, l1_H, l2_H, cd)


def _bounds(opts: dict, side: str, X: Any) -> np.ndarray:
    """The row blocks of ``X``'s sparse half-steps, computed once per fit and side."""
    key = "bounds_" + side
    if key not in opts:
        opts[key] = sparse_bounds(X.indptr)
    return opts[key]


def _gram(B: np.ndarray) -> np.ndarray:
    """``B^T B`` (k x k): a thin product, on one BLAS thread (see randomized_svd; the
    caller's ``using_threads`` holds BLAS to one thread).

    NumPy computes ``B.T @ B`` with SYRK, so it is exactly symmetric, as the CD kernels'
    gradient updates assume."""
    return B.T @ B


# ------------------------------------------------------------------------------- solver
def non_negative_factorization(
    X: Any,
    W: np.ndarray | None = None,
    H: np.ndarray | None = None,
    factors: int = 2,
    *,
    init: str = "nndsvda",
    update_H: bool = True,
    solver: str = "cd",
    loss: str = "frobenius",
    tol: float = 1e-4,
    max_iter: int = 200,
    alpha_W: float = 0.0,
    alpha_H: float | str = "same",
    l1_ratio: float = 0.0,
    mask: Any = None,
    random_state: Any = None,
    n_threads: int | None = None,
    dtype: Any = np.float32,
    verbose: bool = False,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Find non-negative ``W`` (n_rows, factors) and ``H`` (factors, n_columns), ``X ~ WH``.

    The function behind :class:`NMF`; see it for the parameters. ``init="custom"`` starts
    from the given ``W`` and ``H``; ``update_H=False`` keeps ``H`` fixed and solves for
    ``W`` (``transform``). NaN entries of a dense ``X``, and entries where ``mask`` is
    False, are missing: they take no part in the loss. Returns ``(W, H, n_iter)``.

    Examples
    --------
    >>> import numpy as np
    >>> from factorkit.decomposition import non_negative_factorization
    >>> X = np.array([[1.0, 1.0, 0.0], [2.0, 2.0, 0.0], [0.0, 0.0, 3.0]])
    >>> W, H, n_iter = non_negative_factorization(X, factors=2, random_state=0)
    >>> bool(np.allclose(W @ H, X, atol=1e-3))
    True
    """
    owner = "non_negative_factorization"
    params = {
        "factors": factors, "init": init, "solver": solver, "loss": loss, "tol": tol,
        "max_iter": max_iter, "alpha_W": alpha_W, "alpha_H": alpha_H, "l1_ratio": l1_ratio,
        "random_state": random_state, "n_threads": n_threads, "dtype": dtype,
        "verbose": verbose,
    }  # fmt: skip
    check_params(owner, params, _CONSTRAINTS)
    return _fit(X, W, H, params, update_H, mask, owner)[:3]


def _fit(X, W, H, p: dict, update_H: bool, mask: Any, owner: str):
    """Validate, initialize and iterate; the body of the function and of NMF.fit.

    Returns ``(W, H, n_iter, loss)``, ``loss`` the final data term (computed only when
    ``p["with_loss"]``, else None)."""
    if p["solver"] == "cd" and p["loss"] != "frobenius":
        raise InvalidParameterError(
            f"{owner}: solver='cd' supports loss='frobenius' only; got loss={p['loss']!r}. "
            "Use solver='mu' for the KL divergence."
        )
    data = _prepare(X, mask, owner, p["dtype"], p.get("weights"), resolve_threads(p["n_threads"]))
    if p.get("weights") is not None and (mask is None or p["solver"] != "cd"):
        raise InvalidParameterError(f"{owner}: entry weights need a mask and solver='cd'")
    k = p["factors"]
    m, n = data.shape
    check_rank(k, data.shape, owner)
    threads = resolve_threads(p["n_threads"])
    entries = data.X.size if data.kind == "dense" else data.X.nnz
    if entries * k < PARALLEL_MIN_WORK:
        threads = 1
    rng = _rng(p["random_state"])
    dtype = data.dtype
    if not update_H:
        H = _check_factor(H, (k, n), "H", owner, dtype)
        if p["init"] == "custom":
            W = _check_factor(W, (m, k), "W", owner, dtype)
        elif p["solver"] == "mu":
            W = np.full((m, k), np.sqrt(data.observed_mean / k), dtype=dtype)
        else:
            W = np.zeros((m, k), dtype=dtype)
    elif p["init"] == "custom":
        W = _check_factor(W, (m, k), "W", owner, dtype)
        H = _check_factor(H, (k, n), "H", owner, dtype)
    else:
        W, H = _initialize(data, k, p["init"], rng, threads)
    alpha_H = p["alpha_W"] if p["alpha_H"] == "same" else p["alpha_H"]
    r = p["l1_ratio"]
    opts = {
        "solver": p["solver"], "loss": p["loss"], "threads": threads,
        "l1_W": n * p["alpha_W"] * r, "l2_W": n * p["alpha_W"] * (1 - r),
        "l1_H": m * alpha_H * r, "l2_H": m * alpha_H * (1 - r),
        # masked CD only: a ridge per observed entry (NonNegativeMF's weight decay)
        "l2_count": p.get("l2_count", 0.0),
    }  # fmt: skip
    Ht = np.ascontiguousarray(H.T)
    with using_threads(threads):
        n_iter = _iterate(data, W, Ht, opts, p, update_H)
        loss = _loss(data, W, Ht, p["loss"], threads) if p.get("with_loss") else None
    if n_iter == p["max_iter"] and p["tol"] > 0:
        import warnings

        warnings.warn(
            f"{owner}: reached max_iter={p['max_iter']} before the tolerance tol={p['tol']}; "
            "increase max_iter or tol.",
            ConvergenceWarning,
            stacklevel=3,
        )
    return W, np.ascontiguousarray(Ht.T), n_iter, loss


def _iterate(data: _Data, W, Ht, opts: dict, p: dict, update_H: bool) -> int:
    """The outer loop: alternate W and H half-steps; stop as scikit-learn does (CD: the
    projected-gradient violation falls below ``tol`` times the first one; MU: the loss,
    checked every 10 iterations, improves by less than ``tol`` times the initial loss)."""
    threads = opts["threads"]
    first = previous = None
    if p["solver"] == "mu" and p["tol"] > 0:
        first = previous = _loss(data, W, Ht, p["loss"], threads)
    n_iter = 0
    fused = data.kind == "dense" and p["loss"] == "frobenius"
    for n_iter in range(1, p["max_iter"] + 1):
        if fused:
            violation = _dense_iteration(data, W, Ht, opts, update_H)
        else:
            violation = _half_step("W", data, W, Ht, opts)
            if update_H:
                violation += _half_step("H", data, Ht, W, opts)
        if p["solver"] == "cd":
            if n_iter == 1:
                first = violation
            if p["verbose"]:
                print(f"iteration {n_iter}: violation {violation / max(first, 1e-300):.3e}")
            if first == 0 or violation / first <= p["tol"]:
                break
        elif n_iter % 10 == 0 and (p["tol"] > 0 or p["verbose"]):
            err = _loss(data, W, Ht, p["loss"], threads)
            if p["verbose"]:
                print(f"iteration {n_iter}: loss {err:.6g}")
            if p["tol"] > 0 and first is not None and (previous - err) / first < p["tol"]:
                break
            previous = err
    return n_iter


def _check_factor(A: Any, shape: tuple, name: str, owner: str, dtype) -> np.ndarray:
    if A is None:
        raise InvalidParameterError(
            f"{owner}: init='custom' (or update_H=False) needs {name}; pass an array of "
            f"shape {shape}."
        )
    A = as_matrix(A, owner, name=name, dtype=dtype, sparse=False)
    if A.shape != shape:
        raise DataError(f"{owner}: {name} must have shape {shape}; got {A.shape}.")
    check_nonnegative(A, owner, name)
    return np.array(A, dtype=dtype, order="C")


class NMF(Estimator):
    """Non-negative matrix factorization ``X ~ W H`` (dense, sparse, or with missing entries).

    Parameters
    ----------
    factors : int, default=2
        Number of components (<= min(n_rows, n_columns)).
    init : {"nndsvda", "nndsvd", "random", "custom"}, default="nndsvda"
        Initialization; NNDSVD's zeros stay zero under ``solver="mu"``, hence NNDSVDa
        (zeros replaced by the data mean) by default. ``"custom"``: pass ``W`` and ``H``
        to :meth:`fit`.
    solver : {"cd", "mu"}, default="cd"
        Coordinate descent (Frobenius) or multiplicative updates (Frobenius or KL).
    loss : {"frobenius", "kl"}, default="frobenius"
        ``0.5 ||X - WH||^2`` or the generalized Kullback-Leibler divergence.
    tol : float, default=1e-4
        Relative stopping tolerance (0: run ``max_iter`` iterations).
    max_iter : int, default=200
    alpha_W, alpha_H, l1_ratio :
        Regularization, as scikit-learn's: strength on ``W`` (and ``H``; ``"same"`` copies
        ``alpha_W``), ``l1_ratio`` the share that is L1 (the rest is L2).
    random_state, n_threads :
        Seed (SVD and random init) and thread count (None: all cores).
    dtype : numpy.float32 or numpy.float64, default=numpy.float32
        Working precision of the factors and kernels.
    verbose : bool, default=False
        Print the CD violation each iteration, or the MU loss every 10 iterations.

    Attributes
    ----------
    components_ : ndarray (factors, n_columns)
        ``H``.
    reconstruction_err_ : float
        ``||X - WH||_F`` over the observed entries (``sqrt(2 KL)`` for loss="kl").
    n_iter_ : int

    Missing entries: NaN in a dense ``X``, or False in ``fit(X, mask=...)``, are left out
    of the loss (not treated as zero), so ``W @ H`` predicts them.

    Examples
    --------
    >>> import numpy as np
    >>> import factorkit as fk
    >>> rng = np.random.default_rng(0)
    >>> X = rng.random((30, 3)) @ rng.random((3, 20))
    >>> model = fk.decomposition.NMF(factors=3, max_iter=500, random_state=0)
    >>> W = model.fit_transform(X)
    >>> W.shape, model.components_.shape, bool(model.reconstruction_err_ < 0.05)
    ((30, 3), (3, 20), True)
    """

    _parameter_constraints: ClassVar[dict[str, Any]] = _CONSTRAINTS
    _fitted_marker: ClassVar[str] = "components_"
    #: read by factorkit.get_tags / fk.all_estimators("decomposition")
    _tags: ClassVar[dict[str, Any]] = {"kind": "decomposition"}

    def __init__(
        self,
        factors: int = 2,
        *,
        init: str = "nndsvda",
        solver: str = "cd",
        loss: str = "frobenius",
        tol: float = 1e-4,
        max_iter: int = 200,
        alpha_W: float = 0.0,
        alpha_H: float | str = "same",
        l1_ratio: float = 0.0,
        random_state: Any = None,
        n_threads: int | None = None,
        dtype: Any = np.float32,
        verbose: bool = False,
    ):
        self.factors = factors
        self.init = init
        self.solver = solver
        self.loss = loss
        self.tol = tol
        self.max_iter = max_iter
        self.alpha_W = alpha_W
        self.alpha_H = alpha_H
        self.l1_ratio = l1_ratio
        self.random_state = random_state
        self.n_threads = n_threads
        self.dtype = dtype
        self.verbose = verbose

    def fit(self, X: Any, y: Any = None, *, W=None, H=None, mask: Any = None) -> NMF:
        """Fit on ``X``; ``mask`` (bool, True = observed) marks the entries in the loss."""
        self.fit_transform(X, W=W, H=H, mask=mask)
        return self

    def fit_transform(self, X: Any, y: Any = None, *, W=None, H=None, mask: Any = None):
        """Fit and return ``W``."""
        self._validate_params()
        owner = type(self).__name__
        params = {**self.get_params(), "with_loss": True}
        W, H, n_iter, err = _fit(X, W, H, params, True, mask, owner)
        self.components_ = H
        self.n_components_ = H.shape[0]
        self.n_features_in_ = H.shape[1]
        self.n_iter_ = n_iter
        self.reconstruction_err_ = float(np.sqrt(2 * max(err, 0.0)))
        return W

    def transform(self, X: Any, *, mask: Any = None) -> np.ndarray:
        """``W`` for new rows with ``H = components_`` fixed (missing entries allowed)."""
        self._check_fitted("transform")
        owner = type(self).__name__
        p = {**self.get_params(), "init": "nndsvda"}
        W = _fit(X, None, self.components_, p, False, mask, owner)[0]
        return W

    def inverse_transform(self, W: Any) -> np.ndarray:
        """``W @ components_``: the reconstruction, missing entries predicted."""
        self._check_fitted("inverse_transform")
        W = as_matrix(W, type(self).__name__, name="W", dtype=self.components_.dtype)
        if W.shape[1] != self.components_.shape[0]:
            raise DataError(
                f"{type(self).__name__}: W must have {self.components_.shape[0]} columns; "
                f"got {W.shape[1]}."
            )
        return W @ self.components_
