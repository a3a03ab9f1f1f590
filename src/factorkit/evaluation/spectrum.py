"""Rank selection: the singular value spectrum of a rating matrix and metric-versus-factors.

Two ways to choose ``factors``, as the tutorials teach them:

- :func:`singular_value_spectrum`: how much of the (mean-centred) rating matrix's energy
  the first ``k`` components hold; a knee or a cumulative-energy target suggests a rank.
- :func:`factors_curve`: refit an estimator at several ``factors`` and score each on
  held-out data; the held-out metric is what finally decides.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from factorkit._lazy import pandas as pd
from factorkit._validation import Boolean, Interval, Options, Satisfies, check, validate_params
from factorkit.data.interactions import Interactions
from factorkit.evaluation._checks import check_estimator, is_int
from factorkit.exceptions import DataError, InvalidParameterError

__all__ = ["factors_curve", "singular_value_spectrum"]

CENTERS = ("global", "user", "item", None)
#: matrices with at most this many cells (or too few columns for ARPACK) use a dense SVD
_DENSE_CELLS = 2_000_000


@validate_params(
    {"k": Interval(int, 1), "center": Options(CENTERS)}, owner="singular_value_spectrum"
)
def singular_value_spectrum(
    data: Any,
    k: int = 100,
    center: str | None = "global",
    random_state: int | None = 0,
) -> pd.DataFrame:
    """Leading singular values of the mean-centred users x items rating matrix.

    Centring touches observed entries only: missing cells stay zero, as in the sparse
    "SVD of the rating matrix" the tutorials start from. ``"global"`` subtracts the mean
    rating, ``"user"`` each user's mean, ``"item"`` each item's mean, and ``None``
    nothing (use it for implicit feedback).

    Parameters
    ----------
    data : Interactions, scipy.sparse matrix or 2-D array
        The ratings. A sparse matrix's stored entries are the observed ones; every entry
        of a dense array is observed.
    k : int, default 100
        Number of components; at most ``min(n_rows, n_cols)`` are returned.
    center : {"global", "user", "item", None}, default "global"
        Which mean to subtract from the observed entries.
    random_state : int, optional
        Seed of the ARPACK start vector (large matrices only), for repeatable results.

    Returns
    -------
    pandas.DataFrame
        One row per component, largest first: ``component`` (1-based),
        ``singular_value``, ``explained_energy`` (``s**2`` over the squared Frobenius
        norm of the whole centred matrix, so the column sums to 1 only when ``k`` covers
        the full rank) and ``cumulative_energy``.

    Notes
    -----
    Small matrices (or ``k`` close to the smaller dimension) use ``numpy.linalg.svd``;
    others use ``scipy.sparse.linalg.svds`` (ARPACK), which never densifies the matrix.

    Examples
    --------
    >>> import factorkit as fk
    >>> data = fk.datasets.load_movielens_small()
    >>> from factorkit.evaluation.spectrum import singular_value_spectrum
    >>> spec = singular_value_spectrum(data, k=20, center="user")
    >>> list(spec.columns)
    ['component', 'singular_value', 'explained_energy', 'cumulative_energy']
    >>> len(spec), bool(spec["singular_value"].is_monotonic_decreasing)
    (20, True)
    >>> import numpy as np
    >>> x = np.outer([1.0, 2.0, 3.0], [1.0, 0.0, 1.0])  # rank one
    >>> spec = singular_value_spectrum(x, k=3, center=None)
    >>> spec["explained_energy"].round(6).tolist()
    [1.0, 0.0, 0.0]
    """
    matrix = _centred(_as_matrix(data), center)
    n_rows, n_cols = matrix.shape
    if min(n_rows, n_cols) == 0:
        raise DataError(
            f"singular_value_spectrum: the matrix is empty ({n_rows} x {n_cols}); pass ratings"
        )
    k = int(min(k, n_rows, n_cols))
    total = float(matrix.multiply(matrix).sum())
    if k >= min(n_rows, n_cols) - 1 or n_rows * n_cols <= _DENSE_CELLS:
        values = np.linalg.svd(matrix.toarray(), compute_uv=False)[:k]
    else:
        from scipy.sparse.linalg import svds

        rng = np.random.default_rng(random_state)
        v0 = rng.uniform(-1.0, 1.0, size=min(n_rows, n_cols))
        values = svds(matrix, k=k, return_singular_vectors=False, v0=v0)
        values = np.sort(values)[::-1]
    values = np.maximum(values, 0.0)
    energy = values**2 / total if total > 0 else np.zeros_like(values)
    return pd.DataFrame(
        {
            "component": np.arange(1, k + 1),
            "singular_value": values,
            "explained_energy": energy,
            "cumulative_energy": np.cumsum(energy),
        }
    )


def _as_matrix(data: Any) -> sp.csr_matrix:
    if isinstance(data, Interactions):
        return data.to_csr().astype(np.float64)
    if sp.issparse(data):
        m = sp.csr_matrix(data, dtype=np.float64, copy=True)
        m.sum_duplicates()
        return m
    if isinstance(data, (np.ndarray, list, pd.DataFrame)):
        arr = np.asarray(data, dtype=np.float64)
        if arr.ndim != 2:
            raise DataError(
                f"singular_value_spectrum: a dense matrix must be 2-D; got shape {arr.shape}"
            )
        if not np.isfinite(arr).all():
            raise DataError(
                "singular_value_spectrum: the dense matrix holds NaN or infinite values; pass "
                "a scipy.sparse matrix for missing entries"
            )
        # every cell of a dense array counts as observed, zeros included
        rows, cols = np.indices(arr.shape)
        return sp.csr_matrix((arr.ravel(), (rows.ravel(), cols.ravel())), shape=arr.shape)
    raise DataError(
        "singular_value_spectrum: data must be an Interactions, a scipy.sparse matrix or a "
        f"2-D array; got {type(data).__name__}"
    )


def _centred(m: sp.csr_matrix, center: str | None) -> sp.csr_matrix:
    if center is None or m.nnz == 0:
        return m
    m = m.copy()
    if center == "global":
        m.data -= m.data.mean()
        return m
    if center == "user":
        counts = np.diff(m.indptr)
        sums = np.add.reduceat(m.data, m.indptr[:-1]) if m.nnz else np.zeros(len(counts))
        means = np.where(counts > 0, sums / np.maximum(counts, 1), 0.0)
        m.data -= np.repeat(means, counts)
        return m
    counts = np.bincount(m.indices, minlength=m.shape[1])
    sums = np.bincount(m.indices, weights=m.data, minlength=m.shape[1])
    means = np.where(counts > 0, sums / np.maximum(counts, 1), 0.0)
    m.data -= means[m.indices]
    return m


#: a non-empty list of ranks
_RANKS = Satisfies(
    lambda v: isinstance(v, list) and len(v) > 0 and all(is_int(f) and f >= 1 for f in v),
    "a non-empty list of ints >= 1",
)


@validate_params({"train_score": Boolean()}, owner="factors_curve")
def factors_curve(
    estimator: Any,
    train: Interactions,
    test: Interactions,
    factors: Sequence[int] = (5, 10, 20, 50, 100),
    metric: str = "rmse",
    train_score: bool = False,
) -> pd.DataFrame:
    """Held-out ``metric`` of ``estimator`` refitted at each number of ``factors``.

    Each point fits a clone of ``estimator`` with only ``factors`` changed, on ``train``,
    and scores it with :func:`factorkit.evaluate` on ``test``.

    Parameters
    ----------
    estimator : estimator instance
        Any factorkit estimator with a ``factors`` parameter; it stays unfitted.
    train, test : Interactions
    factors : sequence of int
        The ranks to try (each >= 1).
    metric : str, default "rmse"
        A metric name accepted by :func:`factorkit.evaluate` (``"rmse"``, ``"ndcg@10"``...).
    train_score : bool, default False
        Also score each model on ``train`` (column ``train_<metric>``), to show where
        extra factors stop helping held-out data and only fit the training set. Meant for
        rating metrics: ranking metrics on the training data leave nothing to rank.

    Returns
    -------
    pandas.DataFrame
        Columns ``factors``, ``<metric>`` [, ``train_<metric>``], ``fit_time`` (seconds),
        one row per value of ``factors`` in the order given.

    Examples
    --------
    >>> import factorkit as fk
    >>> data = fk.datasets.load_movielens_small()
    >>> train, test = fk.split.random(data, test_size=0.2, random_state=0)
    >>> from factorkit.evaluation.spectrum import factors_curve
    >>> curve = factors_curve(
    ...     fk.BiasedMF(epochs=5, random_state=0), train, test, factors=[2, 8]
    ... )
    >>> list(curve.columns), curve["factors"].tolist()
    (['factors', 'rmse', 'fit_time'], [2, 8])
    """
    from factorkit.base import clone
    from factorkit.evaluation.evaluate import evaluate
    from factorkit.evaluation.ranking import parse_metrics

    metric = parse_metrics([metric])[0].name

    check_estimator(estimator, "factors_curve")
    if "factors" not in estimator.get_params():
        raise InvalidParameterError(
            f"factors_curve: {type(estimator).__name__} has no 'factors' parameter; pass a "
            "latent-factor model such as fk.BiasedMF()"
        )
    if is_int(factors):
        factors = [int(factors)]
    if isinstance(factors, (tuple, range, np.ndarray)):
        factors = list(factors)
    values = check(factors, _RANKS, "factors", "factors_curve")
    rows = []
    for f in values:
        model = clone(estimator).set_params(factors=int(f))
        t0 = time.perf_counter()
        model.fit(train)
        fit_time = time.perf_counter() - t0
        row: dict[str, Any] = {"factors": int(f)}
        row[metric] = evaluate(model, test, metrics=[metric], train=train)[metric]
        if train_score:
            row[f"train_{metric}"] = evaluate(model, train, metrics=[metric])[metric]
        row["fit_time"] = fit_time
        rows.append(row)
    return pd.DataFrame(rows)
