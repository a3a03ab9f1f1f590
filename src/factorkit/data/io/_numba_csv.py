"""The common CSV layout -- integer ids, decimal ratings, integer timestamps, no quotes --
parsed by factorkit's own parallel kernel (:mod:`factorkit.kernels.parsing`)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from factorkit._lazy import pandas as pd
from factorkit._threads import max_threads
from factorkit.data.io import _source
from factorkit.data.io._source import CsvFile
from factorkit.kernels import parsing

_FIELD_CODES = {
    "user": parsing.FIELD_USER,
    "item": parsing.FIELD_ITEM,
    "rating": parsing.FIELD_RATING,
    "timestamp": parsing.FIELD_TIME,
}


def read(src: CsvFile, cols: dict[str, int]) -> pd.DataFrame | None:
    """The common case -- integer ids, decimal ratings, integer timestamps, no quotes --
    parsed by factorkit's own parallel kernel straight into the final column types.

    The file is read in pieces cut at line ends; each piece is split into chunks that all
    cores parse at once. None (the general readers take over) on anything else: text ids,
    dates, quotes, blank or malformed lines, ids beyond int32, compressed files.
    """
    if src.compression is not None:
        return None
    roles = np.zeros(src.n_fields, dtype=np.int8)
    for role, pos in cols.items():
        roles[pos] = _FIELD_CODES[role]
    sep0 = ord(src.sep[0])
    sep1 = ord(src.sep[1]) if len(src.sep) > 1 else -1
    capacity = src.estimate_rows()
    out = {
        "user": np.empty(capacity, dtype=np.int32),
        "item": np.empty(capacity, dtype=np.int32),
        "rating": np.empty(capacity if "rating" in cols else 0, dtype=np.float32),
        "timestamp": np.empty(capacity if "timestamp" in cols else 0, dtype=np.int64),
    }
    n_chunks = 4 * max_threads()
    buf = bytearray(min(_source.SEGMENT_BYTES, os.path.getsize(src.path)) + 2)
    size = len(buf) - 1  # one spare byte: a final line without its line end gets one
    arr = np.frombuffer(buf, dtype=np.uint8)
    status = np.empty(n_chunks, dtype=np.int8)
    counts = np.empty(n_chunks, dtype=np.int64)
    n = 0
    held = 0  # bytes at the start of buf carried over from the previous piece
    begin = -1
    with open(src.path, "rb") as f:
        while True:
            got = f.readinto(memoryview(buf)[held:size])
            end = held + got
            if begin < 0:  # the first piece: step over the header and blank lines above it
                begin = 0
                for _ in range(src.skip):
                    begin = buf.find(b"\n", begin, end) + 1
                    if begin == 0:
                        return None
            last = buf.rfind(b"\n", begin, end) + 1  # where the unfinished last line starts
            if _source.not_text(buf, begin, max(last, begin), end):
                raise _source.NotText
            if got == 0:
                if end == begin:
                    break
                buf[end] = 10
                cut = end + 1
            else:
                cut = last
                if cut == 0:
                    return None  # no line end in a whole piece: \r line ends
            starts, ends = _chunk_bounds(buf, begin, cut, n_chunks)
            parsing.csv_count_lines(arr, starts, ends, counts)
            first_rows = n + np.concatenate(([0], np.cumsum(counts[:-1])))
            total = int(counts.sum())
            if n + total > len(out["user"]):
                grow = max(n + total, len(out["user"]) * 3 // 2)
                out = {k: _grown(v, n, grow) if len(v) else v for k, v in out.items()}
            parsing.csv_parse_rows(
                arr, starts, ends, first_rows, sep0, sep1, roles,
                out["user"], out["item"], out["rating"], out["timestamp"], status,
            )  # fmt: skip
            if status.any():
                return None
            n += total
            held = end - cut if got else 0
            buf[:held] = buf[cut:end]
            begin = 0
            if not got:
                break
    if n == 0:
        return None
    frame = {}
    for role in cols:
        values = out[role][:n]
        frame[src.labels[role]] = pd.Series(values, copy=False)
    return pd.DataFrame(frame, copy=False)


def _chunk_bounds(buf: bytearray, begin: int, end: int, n_chunks: int) -> tuple[Any, Any]:
    """``n_chunks`` byte ranges covering ``buf[begin:end]``, each cut after a line end."""
    cuts = [begin]
    step = max(1, (end - begin) // n_chunks)
    for c in range(1, n_chunks):
        at = buf.find(b"\n", max(cuts[-1], begin + c * step), end) + 1
        cuts.append(at if at > 0 else end)
    cuts.append(end)
    bounds = np.array(cuts, dtype=np.int64)
    return bounds[:-1], bounds[1:]


def _grown(values: np.ndarray, n: int, size: int) -> np.ndarray:
    grown = np.empty(size, dtype=values.dtype)
    grown[:n] = values[:n]
    return grown
