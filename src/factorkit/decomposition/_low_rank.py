"""``low_rank``: keep a matrix or an image at a rank, an energy or a maximum error.

The optimal rank-k approximation in Frobenius norm is the truncated SVD (Eckart-Young);
the relative error of rank k is ``sqrt(1 - energy_k)`` with ``energy_k`` the share of
``sum s_i^2`` that the first k singular values hold, so all three criteria pick the rank
from the singular values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.linalg as la

from factorkit._threads import blas_threads, resolve_threads
from factorkit._validation import Boolean, Interval, NoneOr, RandomState, Threads, check
from factorkit.decomposition._checks import check_rank
from factorkit.decomposition._svd import randomized_svd
from factorkit.exceptions import DataError, InvalidParameterError

__all__ = ["LowRank", "LowRankReport", "low_rank", "rank_sweep"]

#: up to this min(m, n), the exact SVD (LAPACK gesdd) is cheap enough to always use
EXACT_LIMIT = 1024


@dataclass(frozen=True)
class LowRankReport:
    """What a low-rank approximation keeps and costs.

    ``storage_ratio`` is ``k (m + n) / (m n)``: the numbers stored by the factors over the
    numbers in the matrix (per channel for images). ``relative_error`` is
    ``||X - X_k||_F / ||X||_F`` and ``energy`` the share of ``||X||_F^2`` kept; ``psnr``
    (images only) is ``10 log10(peak^2 / MSE)`` of the reconstruction as saved.
    """

    shape: tuple[int, ...]
    rank: int
    storage_ratio: float
    relative_error: float
    energy: float
    psnr: float | None = None
    criterion: str = ""

    def __str__(self) -> str:
        shape = "x".join(str(s) for s in self.shape)
        psnr = f", PSNR {self.psnr:.2f} dB" if self.psnr is not None else ""
        return (
            f"{shape} at rank {self.rank} ({self.criterion}): storage ratio "
            f"{self.storage_ratio:.4f} ({1 / self.storage_ratio:.1f}x smaller), relative "
            f"error {self.relative_error:.4%}, energy kept {self.energy:.4%}{psnr}"
        )


@dataclass
class LowRank:
    """Factors of a low-rank approximation and its :class:`LowRankReport`.

    ``left`` is ``U diag(s)`` (m, k) and ``right`` is ``Vt`` (k, n); for an image with
    channels the arrays carry a leading channel axis. Unpacks as ``left, right, report``.
    """

    left: np.ndarray
    right: np.ndarray
    report: LowRankReport
    image: bool = False
    peak: float | None = None
    channels_last: bool = field(default=False, repr=False)
    out_dtype: Any = field(default=None, repr=False)

    def __iter__(self):
        return iter((self.left, self.right, self.report))

    def reconstruct(self) -> np.ndarray:
        """``left @ right`` in the input's layout. Images come back in their own dtype and
        range: the float result is rounded and limited to [0, peak], as any image writer
        must (the relative error in the report is of the unrounded result)."""
        X = _reconstruct(self.left, self.right, self.channels_last)
        if not self.image:
            return X
        X = np.clip(X, 0, self.peak)
        if np.issubdtype(np.dtype(self.out_dtype), np.integer):
            return np.rint(X).astype(self.out_dtype)
        return X.astype(self.out_dtype)


def _reconstruct(left: np.ndarray, right: np.ndarray, channels_last: bool) -> np.ndarray:
    X = left @ right
    return np.moveaxis(X, 0, -1) if channels_last else X


def low_rank(
    X: Any,
    *,
    rank: int | None = None,
    energy: float | None = None,
    max_error: float | None = None,
    image: bool | None = None,
    peak: float | None = None,
    random_state: Any = 0,
    n_threads: int | None = None,
) -> LowRank:
    """The best approximation of ``X`` at a rank, an energy or a maximum relative error.

    Give exactly one of ``rank`` (keep k singular triplets), ``energy`` (the smallest rank
    keeping at least this share of ``||X||_F^2``) or ``max_error`` (the smallest rank with
    relative Frobenius error at most this). ``X`` is a 2-D matrix (float32 stays float32)
    or an image: 2-D grey or 3-D ``(height, width, channels)``, each channel approximated
    at the same rank (the largest any channel needs).

    Parameters
    ----------
    image : bool, optional
        Treat ``X`` as an image (adds PSNR, reconstruct() returns its dtype). Default:
        3-D or integer input.
    peak : float, optional
        Largest possible pixel value for PSNR; default 255 for integer images, 1.0 for
        float images.

    Returns
    -------
    LowRank
        ``left``, ``right``, ``report`` (:class:`LowRankReport`), ``reconstruct()``.

    Examples
    --------
    >>> import numpy as np
    >>> import factorkit as fk
    >>> rng = np.random.default_rng(0)
    >>> X = (rng.normal(size=(100, 5)) @ rng.normal(size=(5, 80))).astype(np.float32)
    >>> approx = fk.low_rank(X, energy=0.999)
    >>> approx.report.rank, round(approx.report.storage_ratio, 4)
    (5, 0.1125)
    """
    owner = "low_rank"
    check(rank, NoneOr(Interval(int, 1)), "rank", owner)
    check(energy, NoneOr(Interval(float, 0, 1, "right")), "energy", owner)
    check(max_error, NoneOr(Interval(float, 0, 1, "left")), "max_error", owner)
    check(image, NoneOr(Boolean()), "image", owner)
    check(peak, NoneOr(Interval(float, 0, None, "neither")), "peak", owner)
    check(random_state, RandomState(), "random_state", owner)
    check(n_threads, Threads(), "n_threads", owner)
    given = [
        n
        for n, v in (("rank", rank), ("energy", energy), ("max_error", max_error))
        if v is not None
    ]
    if len(given) != 1:
        raise InvalidParameterError(
            f"{owner}: give exactly one of rank=, energy= or max_error=; got "
            f"{', '.join(given) if given else 'none'}."
        )
    arr, image, peak, channels_last = _as_image_or_matrix(X, image, peak, owner)
    dtype = np.float64 if arr.dtype == np.float64 else np.float32
    stack = arr.astype(dtype, copy=False)  # (channels, m, n)
    m, n = stack.shape[1:]
    if rank is not None:
        check_rank(rank, (m, n), owner, "rank")
    threads = resolve_threads(n_threads)
    total = np.array([float(np.sum(ch.astype(np.float64) ** 2)) for ch in stack])
    if rank is not None:
        k, criterion = rank, f"rank={rank}"
    else:
        target = energy if energy is not None else 1.0 - max_error**2
        criterion = f"energy>={energy}" if energy is not None else f"max_error<={max_error}"
    factors = []
    for ch, tot in zip(stack, total, strict=True):
        factors.append(
            _channel_svd(ch, rank if rank is not None else None, target if rank is None else 0.0,
                         tot, random_state, threads)
        )  # fmt: skip
    if rank is None:
        k = max(_rank_for(s, tot, target) for (_, s, _), tot in zip(factors, total, strict=True))
    return _assemble(X, arr, stack, factors, total, k, image, peak, channels_last, criterion)


def _assemble(X, arr, stack, factors, total, k, image, peak, channels_last, criterion):
    """The rank-``k`` :class:`LowRank` (factors, reconstruction error, PSNR) from each
    channel's singular triplets."""
    c, m, n = stack.shape
    dtype = stack.dtype
    left = np.stack([(U[:, :k] * s[:k]).astype(dtype) for U, s, _ in factors])
    right = np.stack([Vt[:k].astype(dtype) for _, _, Vt in factors])
    recon = left @ right
    diff = float(np.sum((recon.astype(np.float64) - stack) ** 2))
    norm2 = float(total.sum())
    rel = np.sqrt(diff / norm2) if norm2 > 0 else 0.0
    kept = float(sum((s[:k].astype(np.float64) ** 2).sum() for _, s, _ in factors))
    if not channels_last and c == 1:
        left, right = left[0], right[0]
    psnr = None
    if image:
        clipped = np.clip(recon.astype(np.float64), 0, peak)
        if np.issubdtype(arr.dtype, np.integer):
            clipped = np.rint(clipped)
        mse = float(np.mean((clipped - stack) ** 2))
        psnr = float("inf") if mse == 0 else 10 * np.log10(peak**2 / mse)
    report = LowRankReport(
        shape=tuple(np.shape(X)),
        rank=int(k),
        storage_ratio=k * (m + n) / (m * n),
        relative_error=float(rel),
        energy=kept / norm2 if norm2 > 0 else 1.0,
        psnr=psnr,
        criterion=criterion,
    )
    out_dtype = arr.dtype if image else dtype
    return LowRank(left, right, report, image, peak, channels_last, out_dtype)


def rank_sweep(
    X: Any, ranks: Any, *, image: bool | None = None, peak: float | None = None,
    random_state: Any = 0, n_threads: int | None = None,
) -> list[LowRankReport]:  # fmt: skip
    """The :class:`LowRankReport` of ``X`` at each of ``ranks``, from one SVD per channel
    (the largest rank's), e.g. to choose a rank or to plot error against storage.

    Examples
    --------
    >>> import numpy as np
    >>> import factorkit as fk
    >>> X = np.random.default_rng(0).random((40, 30))
    >>> [r.rank for r in fk.decomposition.rank_sweep(X, [1, 5, 10])]
    [1, 5, 10]
    """
    owner = "rank_sweep"
    ranks = sorted({int(check(r, Interval(int, 1), "ranks", owner)) for r in ranks})
    if not ranks:
        raise InvalidParameterError(f"{owner}: ranks is empty; pass e.g. [1, 10, 50].")
    arr, image, peak, channels_last = _as_image_or_matrix(X, image, peak, owner)
    stack = arr.astype(np.float64 if arr.dtype == np.float64 else np.float32, copy=False)
    check_rank(ranks[-1], stack.shape[1:], owner, "rank")
    threads = resolve_threads(n_threads)
    total = np.array([float(np.sum(ch.astype(np.float64) ** 2)) for ch in stack])
    factors = [
        _channel_svd(ch, ranks[-1], 0.0, tot, random_state, threads)
        for ch, tot in zip(stack, total, strict=True)
    ]
    return [
        _assemble(X, arr, stack, factors, total, k, image, peak, channels_last, f"rank={k}").report
        for k in ranks
    ]


def _as_image_or_matrix(X: Any, image: bool | None, peak: float | None, owner: str):
    try:
        arr = np.asarray(X)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{owner}: X must be a 2-D matrix or an image array ({exc}).") from None
    if arr.dtype.kind not in "biuf":
        raise DataError(
            f"{owner}: X must hold numbers; got dtype {arr.dtype}. Convert it with "
            "np.asarray(X, dtype=np.float32)."
        )
    if arr.ndim not in (2, 3) or arr.size == 0:
        raise DataError(
            f"{owner}: X must be a non-empty 2-D matrix or a 3-D (height, width, channels) "
            f"image; got shape {arr.shape}."
        )
    if not np.isfinite(arr).all():
        raise DataError(
            f"{owner}: X has {int((~np.isfinite(arr)).sum())} non-finite value(s); low_rank "
            "needs every entry. Impute them first (TruncatedSVD(missing_values=np.nan))."
        )
    if image is None:
        image = arr.ndim == 3 or arr.dtype.kind in "biu"
    if arr.ndim == 3 and not image:
        raise DataError(f"{owner}: 3-D input is an image; pass image=True or a 2-D matrix.")
    if image and peak is None:
        peak = 255.0 if arr.dtype.kind in "biu" else 1.0
    channels_last = arr.ndim == 3
    stack = np.moveaxis(arr, -1, 0) if channels_last else arr[None]
    return stack, bool(image), peak, channels_last


def _channel_svd(X: np.ndarray, rank: int | None, target: float, total: float, seed, threads):
    """Singular triplets of one channel: enough for ``rank``, or for the energy target.

    Small matrices (min side <= EXACT_LIMIT) get LAPACK's full SVD. Larger ones get
    randomized SVDs of doubling size until the target is met, then exact as a last
    resort; the rank-k factors are within rounding of the optimum either way.
    """
    m, n = X.shape
    if min(m, n) <= EXACT_LIMIT:
        with blas_threads(threads):
            U, s, Vt = la.svd(X, full_matrices=False, check_finite=False, lapack_driver="gesdd")
        return U, s, Vt
    if rank is not None:
        return randomized_svd(X, rank, random_state=seed, n_threads=threads)
    k = 64
    while k < min(m, n) // 4:
        U, s, Vt = randomized_svd(X, k, random_state=seed, n_threads=threads)
        if _rank_for(s, total, target, strict=True) is not None:
            return U, s, Vt
        k *= 2
    with blas_threads(threads):
        return la.svd(X, full_matrices=False, check_finite=False, lapack_driver="gesdd")


def _rank_for(s: np.ndarray, total: float, target: float, strict: bool = False):
    """Smallest k with sum(s[:k]^2) >= target * total (``None`` if ``strict`` and no k
    among these singular values reaches it; otherwise all of them)."""
    if total == 0:
        return 1
    cum = np.cumsum(s.astype(np.float64) ** 2) / total
    hit = np.flatnonzero(cum >= target - 1e-12)
    if hit.size:
        return int(hit[0]) + 1
    return None if strict else len(s)
