"""A person-readable summary of an Interactions: counts, density, activity, histogram."""

from __future__ import annotations

import numpy as np

from factorkit.data.interactions import Interactions

__all__ = ["summarize"]


def _stats(counts: np.ndarray) -> str:
    counts = counts[counts > 0]
    if not len(counts):
        return "none"
    return (
        f"min {counts.min()}, median {np.median(counts):g}, mean {counts.mean():.1f}, "
        f"max {counts.max()}"
    )


def summarize(data: Interactions, name: str = "data", width: int = 40) -> str:
    """Multi-line text summary of ``data`` (what ``factorkit demo`` prints first).

    Examples
    --------
    >>> import factorkit as fk
    >>> from factorkit.data.summary import summarize
    >>> print(summarize(fk.Interactions.from_arrays([1, 1, 2], [1, 2, 1], [4.0, 5.0, 3.0])))
    ... # doctest: +NORMALIZE_WHITESPACE
    data: 2 users x 2 items, 3 ratings, density 75.000%
    ratings per user: min 1, median 1.5, mean 1.5, max 2
    ratings per item: min 1, median 1.5, mean 1.5, max 2
    rating histogram:
        3 | ######################################## 1
        4 | ######################################## 1
        5 | ######################################## 1
    """
    kind = "interactions" if data.implicit else "ratings"
    lines = [
        f"{name}: {data.n_users:,} users x {data.n_items:,} items, {len(data):,} {kind}, "
        f"density {data.density:.3%}",
        f"{kind} per user: {_stats(data.user_counts)}",
        f"{kind} per item: {_stats(data.item_counts)}",
    ]
    values, counts = np.unique(data.values, return_counts=True)
    if 0 < len(values) <= 20:
        lines.append(f"{'value' if data.implicit else 'rating'} histogram:")
        top = counts.max()
        for v, c in zip(values, counts, strict=True):
            bar = "#" * max(1, round(width * c / top))
            lines.append(f"  {v:>4g} | {bar} {c:,}")
    elif len(values):
        lo, hi = data.rating_scale
        lines.append(f"values: {len(values):,} distinct in [{lo:g}, {hi:g}]")
    if data.has_timestamps and len(data):
        lo, hi = data.timestamps.min(), data.timestamps.max()
        when = ""
        if data.timestamps.dtype.kind in "iu" and lo >= 1e8 and hi <= 4e9:
            first, last = (np.datetime64(int(t), "s").astype("datetime64[D]") for t in (lo, hi))
            when = f" ({first} .. {last}, read as Unix seconds)"
        lines.append(f"timestamps: {lo} .. {hi}{when}")
    return "\n".join(lines)
