"""The general fast CSV pass with pandas' C parser in chunks, used when pyarrow is not
installed; None (the careful pass takes over) on anything irregular."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from factorkit._lazy import pandas as pd
from factorkit.data.io import _source
from factorkit.data.io._columns import Parts, guess_types, raw_layout
from factorkit.data.io._source import CsvFile


def read(src: CsvFile, cols: dict[str, int]) -> pd.DataFrame | None:
    """The columns as compact arrays; None when anything is irregular (binary data and
    lines without a line break included: the byte scan then names the line)."""
    guessed = guess_types(src, cols)
    try:
        result = _read_pandas(src, cols, guessed)
        if result is None and guessed:  # e.g. an id beyond int32 further down: infer instead
            result = _read_pandas(src, cols, {})
    except _source.NotText:
        return None
    return result


def _read_pandas(
    src: CsvFile, cols: dict[str, int], guessed: dict[str, Any]
) -> pd.DataFrame | None:
    n_raw, raw, gaps = raw_layout(src, cols)
    dtype: dict[int, Any] = {raw[role]: t for role, t in guessed.items()}
    if "rating" in raw:
        dtype[raw["rating"]] = np.float32
    parts = Parts(src, raw)
    try:
        with warnings.catch_warnings(), src.open_binary() as stream:
            warnings.simplefilter("error", pd.errors.ParserWarning)
            warnings.simplefilter("ignore", RuntimeWarning)  # float32 overflow: checked below
            chunks = pd.read_csv(
                stream,
                sep=src.sep[0],
                header=None,
                skiprows=src.skip,
                names=list(range(n_raw)),
                index_col=False,
                dtype=dtype,
                na_filter=False,
                skip_blank_lines=True,
                engine="c",
                encoding="utf-8",
                chunksize=_source.CHUNK_ROWS,
            )
            with chunks:
                for df in chunks:
                    if not _take_chunk(df, raw, gaps, n_raw, parts):
                        return None
    except (ValueError, UnicodeDecodeError, pd.errors.ParserWarning, OverflowError):
        return None  # ParserError is a ValueError
    return parts.frame()


def _take_chunk(
    df: pd.DataFrame, raw: dict[str, int], gaps: list[int], n_raw: int, parts: Parts
) -> bool:
    # With na_filter=False an empty field, or a field missing from a short line, is "",
    # which turns its column into text; numeric columns are complete.
    for k in range(n_raw):
        col = df[k]
        text = pd.api.types.is_string_dtype(col) or col.dtype == object
        if k in gaps:
            if not text or (col != "").any():
                return False
        elif text and (col == "").any():
            return False
    for role, k in raw.items():
        col = df[k]
        kind = col.dtype.kind
        if role in ("user", "item"):
            if kind in "iu":
                ok = parts.add(role, col.to_numpy(), "int")
            elif pd.api.types.is_string_dtype(col) or col.dtype == object:
                ok = parts.add(role, col, "series")
            else:
                return False  # ids that are not all integers are kept as text (careful pass)
        elif kind in "iu" and role == "timestamp":
            ok = parts.add(role, col.to_numpy(), "num")
        elif kind == "f":
            values = col.to_numpy()
            if role == "rating" and not np.isfinite(values).all():
                return False  # NaN / inf: the careful pass names the value exactly
            ok = parts.add(role, values, "num" if role == "timestamp" else "float")
        else:
            return False  # dates, booleans, text values: the careful pass decides
        if not ok:
            return False
    return True
