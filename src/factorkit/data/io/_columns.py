"""Column storage shared by the general CSV passes (pyarrow, pandas, careful): each
piece's columns go straight into compact preallocated arrays."""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from factorkit._lazy import pandas as pd
from factorkit.data.io._source import CsvFile

INT32 = np.iinfo(np.int32)


def raw_layout(src: CsvFile, cols: dict[str, int]) -> tuple[int, dict[str, int], list[int]]:
    """Columns as the parser sees them: "::" is parsed as ":" with empty columns between."""
    if src.sep != "::":
        return src.n_fields, dict(cols), []
    n_raw = 2 * src.n_fields - 1
    return n_raw, {r: 2 * p for r, p in cols.items()}, list(range(1, n_raw, 2))


class Parts:
    """Per-role column storage filled piece by piece, joined into a DataFrame at the end.

    Numeric columns go straight into one preallocated array each, sized from an estimate
    of the row count (pages never written cost no memory), so no list of pieces and no
    concatenation doubles the peak. Ids are stored as int32 when they fit. Text columns
    (and pyarrow timestamps) are kept as a list of pieces.
    """

    def __init__(self, src: CsvFile, roles: Any) -> None:
        self.src = src
        self.roles = list(roles)
        self.arrays: dict[str, np.ndarray] = {}
        self.pieces: dict[str, list[Any]] = {r: [] for r in self.roles}
        self.kinds: dict[str, str] = {}
        self.n: dict[str, int] = dict.fromkeys(self.roles, 0)
        self.capacity = src.estimate_rows()

    def add(self, role: str, values: Any, kind: str) -> bool:
        """Store one piece; False if its kind differs from the earlier pieces' (mixed)."""
        if self.kinds.setdefault(role, kind) != kind:
            return False
        if kind in ("arrow", "series"):
            self.pieces[role].append(values)
            self.n[role] += len(values)
            return True
        values = np.asarray(values)
        if values.dtype == np.uint64:
            return False  # ids beyond int64: the careful pass keeps them exact
        lo, hi = self.n[role], self.n[role] + len(values)
        arr = self.arrays.get(role)
        want = values.dtype
        if kind == "int" and len(values) and values.dtype.itemsize > 4:
            small = INT32.min <= values.min() and values.max() <= INT32.max
            want = np.dtype(np.int32 if small else np.int64)
        if arr is None:
            arr = np.empty(max(self.capacity, hi), dtype=want)
        else:
            want = np.promote_types(arr.dtype, want)
            if hi > len(arr) or want != arr.dtype:
                grown = np.empty(max(hi, len(arr) + len(arr) // 2), dtype=want)
                grown[:lo] = arr[:lo]
                arr = grown
        arr[lo:hi] = values
        self.arrays[role] = arr
        self.n[role] = hi
        return True

    def frame(self) -> pd.DataFrame | None:
        out = {}
        for role in self.roles:
            kind = self.kinds.get(role)
            if kind == "arrow":
                import pyarrow as pa

                chunks = [c for p in self.pieces.pop(role) for c in getattr(p, "chunks", [p])]
                col = pa.chunked_array(chunks).to_pandas()
            elif kind == "series":
                col = pd.concat(self.pieces.pop(role), ignore_index=True)
            else:
                values = self.arrays.pop(role)[: self.n[role]]
                if role == "rating" and not np.isfinite(values).all():
                    return None  # NaN / inf: the careful pass names the value exactly
                col = pd.Series(values, copy=False)
            out[self.src.labels[role]] = col
        return pd.DataFrame(out, copy=False)


class GuessFailed(Exception):
    """A value did not fit a column type guessed from the first record."""


INT_TEXT = re.compile(r"[+-]?\d{1,18}")


def guess_types(src: CsvFile, cols: dict[str, int]) -> dict[str, Any]:
    """Column dtypes read off the first record: int32 ids and int64 timestamps.

    Declaring them spares the parser's type inference and a pass to narrow int64 ids; a
    wrong guess only costs a second parse with inference.
    """
    types: dict[str, Any] = {}
    for role, pos in cols.items():
        text = src.sample[pos].strip() if pos < len(src.sample) else ""
        if role in ("user", "item", "timestamp") and INT_TEXT.fullmatch(text):
            if role == "timestamp":
                types[role] = np.dtype(np.int64)
            elif INT32.min <= int(text) <= INT32.max:
                types[role] = np.dtype(np.int32)
    return types
