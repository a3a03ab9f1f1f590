"""The general fast CSV pass with pyarrow's multithreaded reader, on pieces of the file
cut at line ends; None (the careful pass takes over) on anything irregular."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from typing import Any

from factorkit._lazy import pandas as pd
from factorkit.data.io import _source
from factorkit.data.io._columns import GuessFailed, Parts, guess_types, raw_layout
from factorkit.data.io._source import CsvFile


def arrow() -> Any:
    """pyarrow, with its csv and compute modules loaded; None when it is not installed."""
    try:
        import pyarrow
        import pyarrow.compute
        import pyarrow.csv
    except ImportError:
        return None
    return pyarrow


def read(src: CsvFile, cols: dict[str, int]) -> pd.DataFrame | None:
    """The columns as compact arrays; None when anything is irregular (binary data and
    lines without a line break included: the byte scan then names the line)."""
    try:
        try:
            return _read_arrow(src, cols, guess_types(src, cols))
        except GuessFailed:  # e.g. an id beyond int32 further down: infer the types instead
            return _read_arrow(src, cols, {})
    except _source.NotText:
        return None


def _read_arrow(src: CsvFile, cols: dict[str, int], guessed: dict[str, Any]) -> pd.DataFrame | None:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    n_raw, raw, gaps = raw_layout(src, cols)
    names = [f"f{k}" for k in range(n_raw)]
    types: dict[str, Any] = {names[k]: pa.null() for k in gaps}
    types.update({names[raw[r]]: pa.from_numpy_dtype(t) for r, t in guessed.items()})
    if "rating" in raw:
        types[names[raw["rating"]]] = pa.float32()
    options = {
        "parse_options": pacsv.ParseOptions(
            delimiter=src.sep[0], quote_char='"', double_quote=True, escape_char=False
        ),
        "convert_options": pacsv.ConvertOptions(
            include_columns=[names[k] for k in sorted(raw.values())] + [names[k] for k in gaps],
            column_types=types,
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
        ),
        "memory_pool": pa.system_memory_pool(),
    }
    for segmented in (True, False):
        parts = Parts(src, raw)
        try:
            with contextlib.ExitStack() as stack:
                if segmented:
                    pieces: Any = _arrow_segments(src, names, options)
                else:  # a stream, so that the compression is the one told by the content
                    pieces = pacsv.open_csv(
                        stack.enter_context(src.open_binary()),
                        read_options=pacsv.ReadOptions(
                            column_names=names, skip_rows=src.skip, block_size=_source.BLOCK_BYTES
                        ),
                        **options,
                    )
                for piece in pieces:
                    for role, k in raw.items():
                        col = piece.column(names[k])
                        for chunk in getattr(col, "chunks", [col]):
                            if not _take_arrow(parts, role, chunk):
                                return None
        except _NotSegmentable:
            continue
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, UnicodeDecodeError) as exc:
            if guessed and re.search(r"conversion error to u?int(32|64)", str(exc)):
                raise GuessFailed from None
            return None  # a malformed line or a value of another type
        return parts.frame()
    return None  # pragma: no cover - the serial reader never raises _NotSegmentable


class _NotSegmentable(Exception):
    """The file cannot be cut at line ends safely (quotes, compression, CR line ends)."""


def _arrow_segments(src: CsvFile, names: list[str], options: dict[str, Any]) -> Iterator[Any]:
    """Tables of consecutive pieces of the file, each cut at a line end and parsed by
    pyarrow's multithreaded reader, so that only one piece's worth is in memory at once.

    Cutting at a newline is only safe when no quoted field can span lines: a piece with
    a ``"`` in it raises :class:`_NotSegmentable` (the caller then reads serially).
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    if src.compression is not None:
        raise _NotSegmentable
    first = True
    buf = bytearray(min(_source.SEGMENT_BYTES, os.path.getsize(src.path) + 1))
    view = memoryview(buf)
    held = 0  # bytes at the start of buf carried over from the previous piece
    with open(src.path, "rb") as f:
        while True:
            if held == len(buf):
                raise _NotSegmentable  # no \n in a whole piece: \r line ends, or huge lines
            got = f.readinto(view[held:])
            end = held + got
            if end == 0:
                return
            last = buf.rfind(b"\n", 0, end) + 1  # where the unfinished last line starts
            if _source.not_text(buf, 0, last, end):
                raise _source.NotText
            cut = last if got else end
            if cut == 0:
                held = end
                continue
            if buf.find(b'"', 0, cut) >= 0:
                raise _NotSegmentable
            # pyarrow copies what it parses, so buf can be refilled once this returns.
            table = pacsv.read_csv(
                pa.BufferReader(pa.py_buffer(view[:cut])),
                read_options=pacsv.ReadOptions(
                    column_names=names, skip_rows=src.skip if first else 0
                ),
                **options,
            )
            first = False
            held = end - cut
            buf[:held] = buf[cut:end]
            yield table


def _take_arrow(parts: Parts, role: str, col: Any) -> bool:
    """Store one pyarrow column piece; False when it needs the careful pass."""
    import pyarrow as pa

    typ = col.type
    if col.null_count:
        return False  # an empty field: the careful pass names it
    if pa.types.is_integer(typ) and role in ("user", "item"):
        return parts.add(role, col.to_numpy(), "int")
    if (pa.types.is_int64(typ) or pa.types.is_float64(typ)) and role == "timestamp":
        return parts.add(role, col.to_numpy(), "num")
    if pa.types.is_float32(typ) and role == "rating":
        return parts.add(role, col.to_numpy(), "float")
    if (pa.types.is_string(typ) and role in ("user", "item")) or (
        pa.types.is_timestamp(typ) and role == "timestamp"
    ):
        return parts.add(role, col, "arrow")
    return False  # dates as ids, booleans, ...: decided by the careful pass
