"""The careful CSV pass: the structure is checked line by line first, then the needed
columns are read as text and every value is checked, so the first bad one is named."""

from __future__ import annotations

from typing import Any

import numpy as np

from factorkit._lazy import pandas as pd
from factorkit.data.interactions import Interactions
from factorkit.data.io import _arrow_csv, _source
from factorkit.data.io._columns import Parts
from factorkit.data.io._source import CsvFile


def read(src: CsvFile, cols: dict[str, int], implicit: bool | None) -> pd.DataFrame:
    """Read the needed columns as text, in chunks, converting and checking each chunk.

    The structure is already checked. Each chunk goes through
    :meth:`Interactions.from_pandas` (duplicates aside, which need the whole file), so the
    first bad value raises with its message and line while memory stays bounded; the
    checked chunks are stored compactly like the fast path's.
    """
    kw: dict[str, Any] = {
        "header": None,
        "skiprows": src.skip,
        "names": list(range(src.n_fields)),
        "index_col": False,
        "usecols": sorted(cols.values()),
        "dtype": str,
        "keep_default_na": False,
        "na_values": [""],
        "skip_blank_lines": True,
        "encoding": "utf-8",
        "compression": src.pandas_compression,
    }
    if src.sep == "::":
        kw.update(sep="::", engine="python")
    else:
        kw.update(sep=src.sep, engine="c")
    labels = src.labels
    parts = Parts(src, cols)
    offset = 0
    with pd.read_csv(src.path, chunksize=_source.CHUNK_ROWS, **kw) as chunks:
        for chunk in chunks:
            frame = pd.DataFrame(
                {labels[role]: _convert(role, chunk[pos]) for role, pos in cols.items()}
            ).reset_index(drop=True)
            Interactions.from_pandas(
                frame,
                user=labels["user"],
                item=labels["item"],
                rating=labels.get("rating"),
                timestamp=labels.get("timestamp"),
                duplicates="last",
                implicit=implicit,
                _locator=lambda row, first=offset: src.locate(first + row),
                _source=src.name,
            )
            offset += len(frame)
            for role in cols:
                col = frame[labels[role]]
                if role == "rating":
                    values = pd.to_numeric(col).to_numpy(np.float64).astype(np.float32)
                    ok = parts.add(role, values, "float")
                elif role == "timestamp" and col.dtype.kind in "iuf":
                    ok = parts.add(role, col.to_numpy(), "num")
                elif role != "timestamp" and col.dtype.kind in "iu":
                    ok = parts.add(role, col.to_numpy(), "int")
                else:
                    ok = parts.add(role, col, "series")
                if not ok:  # ids of different kinds in different chunks: read as one
                    return _read_whole(src, cols, kw)
    result = parts.frame()
    assert result is not None  # values were checked
    return result


def _read_whole(src: CsvFile, cols: dict[str, int], kw: dict[str, Any]) -> pd.DataFrame:
    df = pd.read_csv(src.path, **kw)
    return pd.DataFrame(
        {src.labels[role]: _convert(role, df[pos]) for role, pos in cols.items()}, copy=False
    )


def _convert(role: str, col: pd.Series) -> pd.Series:
    """A text column as numbers where every value is one (else as _ids / _times say)."""
    if role in ("user", "item"):
        num = _cast(col, np.int64)
        return num if num is not None else _ids(col)
    if role == "timestamp":
        for dtype in (np.int64, np.float64):
            num = _cast(col, dtype)
            if num is not None:
                return num
        return _times(col)
    num = _cast(col, np.float64)
    return num if num is not None else col  # from_pandas names the value that is not one


def _cast(col: pd.Series, dtype: Any) -> pd.Series | None:
    """Text -> numbers in one vectorised pass (pyarrow's cast when available); None when
    some present value does not convert, or converts to NaN, so the slower pandas
    conversion and its messages take over. Missing values become NaN."""
    pa = _arrow_csv.arrow()
    if pa is None:
        try:
            values = col.astype(np.float64 if col.isna().any() else dtype).to_numpy()
        except (ValueError, TypeError, OverflowError):
            return None
    else:
        try:
            values = pa.compute.cast(pa.array(col), pa.from_numpy_dtype(dtype)).to_numpy(
                zero_copy_only=False
            )
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            return None
    if values.dtype.kind == "f" and (np.isnan(values) & col.notna().to_numpy()).any():
        return None  # a literal "nan": reported as text
    return pd.Series(values, index=col.index, name=col.name)


def _ids(col: pd.Series) -> pd.Series:
    """Integers when every id is an integer literal, else the text as is (missing: NaN)."""
    num = pd.to_numeric(col, errors="coerce")
    return num if num.dtype.kind in "iu" else col


def _times(col: pd.Series) -> pd.Series:
    """Numbers, or ISO 8601 date-times when every value is one; else the text (errors)."""
    num = pd.to_numeric(col, errors="coerce")
    if not (num.isna() & col.notna()).any():
        return num
    try:
        return pd.Series(pd.to_datetime(col, format="ISO8601"), index=col.index)
    except (ValueError, TypeError, OverflowError):
        return col
