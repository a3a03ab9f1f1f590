"""Random initial factors, drawn fast."""

from __future__ import annotations

import numpy as np

from factorkit._threads import resolve_threads
from factorkit.kernels.random import random_normal_fill

__all__ = ["normal_factors"]


def normal_factors(
    rng: np.random.Generator,
    n_rows: int,
    k: int,
    scale: float,
    dtype: type = np.float32,
    width: int | None = None,
    n_threads: int | None = None,
) -> np.ndarray:
    """``(n_rows, width)`` array whose first ``k`` columns are N(0, scale**2), rest zero.

    Drawn in parallel by :func:`factorkit.kernels.random.random_normal_fill` from a seed
    taken from ``rng``, so the result depends on ``rng``'s state only (not on
    ``n_threads``, the threads that draw it).

    Examples
    --------
    >>> import numpy as np
    >>> x = normal_factors(np.random.default_rng(0), 1000, 50, scale=0.1, width=64)
    >>> x.shape, x.dtype, bool(np.all(x[:, 50:] == 0)), round(float(x[:, :50].std()), 2)
    ((1000, 64), dtype('float32'), True, 0.1)
    """
    width = k if width is None else width
    out = np.zeros((n_rows, width), dtype=dtype) if width > k else np.empty((n_rows, k), dtype)
    seed = int(rng.integers(0, 2**63))
    threads = None if n_threads is None else resolve_threads(n_threads)
    return random_normal_fill(out, seed, scale, columns=k, n_threads=threads)
