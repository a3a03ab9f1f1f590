"""Readers: ratings files (CSV, Parquet) -> :class:`~factorkit.data.Interactions`.

Both readers are strict: every malformed line, missing value or value of the wrong kind
raises :class:`~factorkit.exceptions.DataError` naming the file, the line (CSV) or row
(Parquet), the field, what was expected and how to fix it. Nothing is silently dropped or
coerced.

How :func:`read_csv` stays fast, lean and exact at once:

* The common layout (integer ids, decimal numbers, no quotes) is parsed by factorkit's
  own kernel (:mod:`factorkit.kernels.parsing`): pieces of the file cut at line ends, each
  split into chunks that all cores parse at once straight into the final column types.
* Other layouts get a general fast pass with strict column types (pyarrow's
  multithreaded CSV reader on pieces of the file cut at line ends when pyarrow is
  installed; pandas' C parser in chunks otherwise) that stores each piece's columns at once
  in compact arrays (int32 ids where they fit, float32 values), so the peak memory stays
  near the size of the final arrays. Both fast passes give up on any irregular input: a
  wrong number of fields, an empty field, a value of another type, NaN or inf.
* Only then does the careful pass run: it checks the structure line by line (field
  counts, quoting, encoding), reads the columns as text and lets
  :meth:`Interactions.from_pandas` name the first bad value.
* Line numbers are worked out only when an error has to name one, by rescanning the
  file, so blank lines and quoted line breaks never shift them and well-formed files pay
  nothing for them.
"""

from __future__ import annotations

import bisect
import csv
import importlib
import io
import os
import re
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from factorkit._threads import max_threads
from factorkit.data.interactions import DUPLICATE_POLICIES, Interactions
from factorkit.exceptions import DataError, InvalidParameterError
from factorkit.kernels import parsing

__all__ = ["read_csv", "read_parquet"]

#: Field separators read_csv understands; "::" is the MovieLens 1M / 10M ``.dat`` format.
SEPARATORS = (",", "\t", ";", "|", " ", "::")
_SEP_WORDS = {
    ",": "comma",
    "\t": "tab",
    ";": "semicolon",
    "|": "pipe",
    " ": "space",
    "::": "'::'",
}
_SEP_PLURAL = {
    ",": "commas",
    "\t": "tabs",
    ";": "semicolons",
    "|": "'|'",
    " ": "spaces",
    "::": "'::'",
}
_SURROGATE = re.compile("[\udc80-\udcff]")


# ====================================================================== read_csv
def read_csv(
    path: str | os.PathLike[str],
    user: str | int = "userId",
    item: str | int = "movieId",
    rating: str | int | None = "rating",
    timestamp: str | int | None = None,
    *,
    sep: str = ",",
    header: bool = True,
    duplicates: str = "error",
    implicit: bool | None = None,
    item_metadata: pd.DataFrame | None = None,
) -> Interactions:
    """Read a ratings (or implicit feedback) file with one interaction per line.

    Parameters
    ----------
    path : str or os.PathLike
        The file. ``.gz``, ``.bz2`` and ``.xz`` files are decompressed on the fly.
    user, item : str or int
        The columns holding raw user and item ids (integers or strings): header names, or
        0-based column positions. With ``header=False`` they must be positions.
    rating : str, int or None
        The column of numeric values. ``None`` means implicit feedback: every listed
        (user, item) pair gets the value 1.0.
    timestamp : str, int or None
        Optional column of timestamps: Unix times (numbers) or ISO 8601 date-times, which
        become Unix seconds.
    sep : {",", "\\t", ";", "|", " ", "::"}
        Field separator. ``"::"`` reads the MovieLens 1M / 10M ``.dat`` files.
    header : bool
        Whether the first non-blank line holds the column names.
    duplicates : {"error", "last", "mean", "sum"}
        What to do with repeated (user, item) pairs; the default raises, naming both
        lines.
    implicit : bool, optional
        Whether the values are implicit feedback (counts, clicks; must be >= 0). Defaults
        to ``rating is None``.
    item_metadata : pandas.DataFrame, optional
        Per-item information (titles, genres) indexed by raw item id, kept on the result.

    Returns
    -------
    Interactions

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    factorkit.exceptions.DataError
        On any malformed content: the message names the file, the line, the field, what
        was expected and the fix, e.g. ``ratings.csv line 3: rating 'abc' is not a number``.
    factorkit.exceptions.InvalidParameterError
        On an unsupported ``sep`` or ``duplicates`` policy, or column arguments of the
        wrong kind.

    Notes
    -----
    Blank lines (empty, or spaces and tabs only) are skipped, as in :func:`pandas.read_csv`;
    line numbers in messages are physical line numbers of the file, counting from 1.
    Ids that are all integers are read as integers; otherwise ids are kept as the strings
    in the file. Fields may be quoted with ``"``.

    Examples
    --------
    >>> import os, tempfile
    >>> import factorkit as fk
    >>> path = os.path.join(tempfile.mkdtemp(), "ratings.csv")
    >>> with open(path, "w") as f:
    ...     _ = f.write("userId,movieId,rating,timestamp\\n"
    ...                 "1,10,4.0,964982703\\n1,20,3.5,964981247\\n2,10,5.0,964982224\\n")
    >>> data = fk.read_csv(path, timestamp="timestamp")
    >>> data.n_users, data.n_items, len(data)
    (2, 2, 3)
    >>> data.to_pandas()
       user  item  rating  timestamp
    0     1    10     4.0  964982703
    1     1    20     3.5  964981247
    2     2    10     5.0  964982224

    Errors name the line:

    >>> with open(path, "a") as f:
    ...     _ = f.write("2,20,abc,964982224\\n")
    >>> fk.read_csv(path)
    Traceback (most recent call last):
    ...
    factorkit.exceptions.DataError: ratings.csv line 5: rating 'abc' is not a number
    """
    src = _CsvFile(path, sep, header)
    if duplicates not in DUPLICATE_POLICIES:
        raise InvalidParameterError(
            f"duplicates must be one of {list(DUPLICATE_POLICIES)}; got {duplicates!r}"
        )
    cols = src.resolve({"user": user, "item": item, "rating": rating, "timestamp": timestamp})
    df = _read_fast(src, cols)
    if df is None:
        src.line_map()  # raises DataError on the first malformed line
        df = _read_careful(src, cols, implicit)
    return Interactions.from_pandas(
        df,
        user=src.labels["user"],
        item=src.labels["item"],
        rating=src.labels.get("rating"),
        timestamp=src.labels.get("timestamp"),
        duplicates=duplicates,  # type: ignore[arg-type]
        implicit=implicit,
        item_metadata=item_metadata,
        _locator=src.locate,
        _source=src.name,
    )


class _CsvFile:
    """One CSV file: its header, column layout, and (on demand) record -> line numbers."""

    def __init__(self, path: Any, sep: str, header: bool) -> None:
        if not isinstance(path, (str, os.PathLike)):
            raise InvalidParameterError(
                f"read_csv expects a file path (str or os.PathLike); got {type(path).__name__}. "
                "For data already in memory use Interactions.from_pandas(pandas.read_csv(...))."
            )
        if sep not in SEPARATORS:
            raise InvalidParameterError(
                f"sep must be one of {', '.join(repr(s) for s in SEPARATORS)}; got {sep!r}"
            )
        if not isinstance(header, (bool, np.bool_)):
            raise InvalidParameterError(f"header must be True or False; got {header!r}")
        self.path = os.fspath(path)
        self.name = os.path.basename(self.path) or self.path
        self.sep = sep
        self.header = bool(header)
        self.compression = _compression(self.path)
        if not os.path.exists(self.path):
            raise FileNotFoundError(
                f"{self.name}: no such file: {os.path.abspath(self.path)!r}; check the path "
                f"(relative paths start at the working directory {os.getcwd()!r})"
            )
        if os.path.isdir(self.path):
            raise IsADirectoryError(f"{self.path!r} is a directory; pass the path of a file")
        if os.path.getsize(self.path) == 0:
            raise DataError(
                f"{self.name} is empty (0 bytes); expected "
                + ("a header line, then " if self.header else "")
                + "one line per interaction"
            )
        self._read_head()
        self._lines: _LineMap | None = None
        self.labels: dict[str, str] = {}

    # ------------------------------------------------------------------ header
    def _read_head(self) -> None:
        """Find the first non-blank line (the header, or the first record) and the next."""
        first = first_no = sample = None
        skip = 0
        with self.open_text(errors="surrogateescape") as f:
            for no, line in enumerate(_check_utf8(f, self.name), start=1):
                if self._is_blank(line):
                    continue
                if first is None:
                    first, first_no = line, no
                    if not self.header:
                        sample = line
                        break
                else:
                    sample = line
                    break
            else:
                if first is None:
                    raise DataError(
                        f"{self.name} has no data: it holds only blank lines; expected "
                        + ("a header line, then " if self.header else "")
                        + "one line per interaction"
                    )
                if self.header:
                    raise DataError(
                        f"{self.name} has a header line but no data lines; expected one line "
                        "per interaction after the header"
                    )
        assert first is not None and first_no is not None
        if self.header:
            skip = first_no
        self.head_line = first.rstrip("\r\n")
        self.fields = self._split(self.head_line, first_no)
        self.n_fields = len(self.fields)
        self.skip = skip  # physical lines before the first data line that parsers skip
        try:  # the first record, to guess column types from
            self.sample = self._split(sample.rstrip("\r\n"), 0) if sample else []
        except DataError:
            self.sample = []

    def _split(self, line: str, line_no: int) -> list[str]:
        if self.sep == "::":
            return line.split("::")
        try:
            return next(csv.reader([line], delimiter=self.sep, strict=True))
        except (csv.Error, StopIteration) as exc:
            raise DataError(f"{self.name} line {line_no}: malformed quoting ({exc})") from None

    def _is_blank(self, line: str) -> bool:
        return not line.strip(_blank_chars(self.sep))

    def open_text(self, errors: str = "strict") -> io.TextIOBase:
        """The file as text (UTF-8, BOM dropped), lines ending at \\n, \\r\\n or \\r."""
        kw: dict[str, Any] = {"encoding": "utf-8-sig", "errors": errors, "newline": ""}
        if self.compression is None:
            return open(self.path, **kw)
        module = importlib.import_module(self.compression)
        return module.open(self.path, "rt", **kw)

    def estimate_rows(self) -> int:
        """A generous guess of the number of data lines, from the size of the first ones."""
        if self.compression is not None:
            return 1 << 20
        size = os.path.getsize(self.path)
        with open(self.path, "rb") as f:
            head = f.read(1 << 16)
        lines = head.count(b"\n") or head.count(b"\r") or 1
        return int(size / (len(head) / lines) * 1.1) + 1024

    # ------------------------------------------------------------------ columns
    def resolve(self, wanted: dict[str, Any]) -> dict[str, int]:
        """Role -> 0-based column position; sets ``self.labels`` (role -> column label)."""
        positions: dict[str, int] = {}
        for role, spec in wanted.items():
            if spec is None:
                if role in ("user", "item"):
                    raise InvalidParameterError(f"{role} must name the {role} id column; got None")
                continue
            if isinstance(spec, (bool, np.bool_)) or not isinstance(spec, (str, int, np.integer)):
                raise InvalidParameterError(
                    f"{role} must be a column name (str) or a 0-based column position (int); "
                    f"got {spec!r}"
                )
            if isinstance(spec, str):
                if not self.header:
                    raise InvalidParameterError(
                        f"with header=False, {role} must be a 0-based column position (int); "
                        f"got {spec!r}. For example user=0, item=1, rating=2."
                    )
                matches = [k for k, f in enumerate(self.fields) if f == spec]
                if not matches:
                    raise DataError(
                        f"{self.name}: {role} column {spec!r} not found; the header has "
                        f"{self._columns_text()}.{self._sep_hint()} Pass {role}=<one of the "
                        "column names>, or header=False and 0-based column positions."
                    )
                if len(matches) > 1:
                    raise DataError(
                        f"{self.name}: {role} column {spec!r} appears {len(matches)} times in "
                        f"the header (positions {matches}); pass {role}=<position> to choose one"
                    )
                pos = matches[0]
            else:
                pos = int(spec)
                if not 0 <= pos < self.n_fields:
                    raise DataError(
                        f"{self.name}: {role} column position {pos} is out of range; the "
                        f"{'header' if self.header else 'first line'} has {self.n_fields} "
                        f"field{'s' if self.n_fields != 1 else ''} (positions 0.."
                        f"{self.n_fields - 1}).{self._sep_hint()}"
                    )
            for other, p in positions.items():
                if p == pos:
                    raise InvalidParameterError(
                        f"{other} and {role} both name column {self._label(pos)!r}; each role "
                        "needs its own column"
                    )
            positions[role] = pos
        # Labels name the field in error messages: the header name, or "column 2".
        for role, pos in positions.items():
            self.labels[role] = self._label(pos)
        if len(set(self.labels.values())) < len(self.labels):
            for role, pos in positions.items():
                self.labels[role] = f"{self._label(pos)} (column {pos})"
        return positions

    def _label(self, pos: int) -> str:
        return self.fields[pos] if self.header else f"column {pos}"

    def _columns_text(self) -> str:
        shown = self.fields[:20]
        more = f" and {len(self.fields) - 20} more" if len(self.fields) > 20 else ""
        n = len(self.fields)
        return f"{n} column{'s' if n != 1 else ''}: {shown}{more}"

    def _sep_hint(self) -> str:
        """' The file looks tab-separated; pass sep='\\t'.' when another sep fits better."""
        if self.n_fields > 1:
            return ""
        line = self.head_line
        for cand in ("::", "\t", ";", "|", ",", " "):
            if cand != self.sep and len(line.split(cand)) > 1 and line.split(cand)[0] != "":
                return f" The file looks {_SEP_WORDS[cand]}-separated; pass sep={cand!r}."
        return ""

    # ------------------------------------------------------------------ line numbers
    def locate(self, row: int) -> str:
        """``"ratings.csv line 17"`` for the 0-based data record ``row``."""
        return f"{self.name} line {self.line_map().line(row)}"

    def line_map(self) -> _LineMap:
        """Scan the file once (error path only); raises DataError on malformed lines."""
        if self._lines is None:
            self._lines = self._scan()
        return self._lines

    def _wrong_fields(self, line_no: int, got: int) -> DataError:
        n, sep = self.n_fields, self.sep
        hint = " (a field may contain '::')" if sep == "::" and got > n else ""
        return DataError(
            f"{self.name} line {line_no}: expected {n} field{'s' if n != 1 else ''} (as in "
            f"{'the header' if self.header else 'the first line'}), got {got}{hint}; every "
            f"line needs one value per column, separated by {_SEP_PLURAL[sep]}. Fix or "
            "remove that line."
        )

    def _scan(self) -> _LineMap:
        """Check every line's field count, quoting and encoding; map records to lines."""
        fast = self._scan_bytes()
        if fast is not None:
            return fast
        n, sep, name = self.n_fields, self.sep, self.name
        blank = _blank_chars(sep)
        starts: list[int] = []  # record index where the record -> line offset changes
        lines: list[int] = []
        rec = 0
        expected = self.skip + 1  # the line the next record starts on if nothing shifts
        wrong = self._wrong_fields

        with self.open_text(errors="surrogateescape") as f:
            checked = _check_utf8(f, name)
            for _ in range(self.skip):
                next(checked, None)
            if sep == "::":
                for line_no, line in enumerate(checked, start=self.skip + 1):
                    if not line.strip(blank):
                        continue
                    got = line.count("::") + 1
                    if got != n:
                        raise wrong(line_no, got)
                    if line_no != expected:
                        starts.append(rec)
                        lines.append(line_no)
                    rec += 1
                    expected = line_no + 1
            else:
                counter = _LineCounter(checked, self.skip)
                reader = csv.reader(counter, delimiter=sep, strict=True)
                while True:
                    first_line = counter.line_no + 1
                    try:
                        record = next(reader)
                    except StopIteration:
                        break
                    except csv.Error as exc:
                        raise DataError(
                            f"{name} line {first_line}: malformed quoting ({exc}); a quoted "
                            'field must end with a closing " followed by the separator or the '
                            'end of the line, and a " inside one is written ""'
                        ) from None
                    got = len(record)
                    if got <= 1 and (not record or not record[0].strip(blank)):
                        continue  # blank line
                    if got != n:
                        raise wrong(first_line, got)
                    if first_line != expected:
                        starts.append(rec)
                        lines.append(first_line)
                    rec += 1
                    expected = counter.line_no + 1
        return _LineMap(self.skip + 1, starts, lines, rec)

    def _scan_bytes(self) -> _LineMap | None:
        """The same scan, vectorised over bytes, for the common case: an uncompressed file
        without quotes, with \\n or \\r\\n line ends and a one-character separator.
        None when that does not hold (the line-by-line scan then runs)."""
        if self.compression is not None or self.sep == "::":
            return None
        n, skip = self.n_fields, self.skip
        sep_byte = ord(self.sep)
        not_text = np.zeros(256, dtype=bool)
        not_text[[ord(c) for c in _blank_chars(self.sep)]] = True
        starts: list[int] = []
        lines: list[int] = []
        rec = 0
        done = 0  # physical lines before the current piece
        expected = skip + 1
        carry = b""
        with open(self.path, "rb") as f:
            while True:
                block = f.read(_SCAN_BYTES)
                data = carry + block if carry else block
                if not data:
                    break
                cut = data.rfind(b"\n") + 1 if block else len(data)
                if cut == 0:
                    carry = data
                    continue
                piece, carry = data[:cut], data[cut:]
                if not block and not piece.endswith(b"\n"):
                    piece += b"\n"  # a last line without a line end
                if b'"' in piece:
                    return None
                try:
                    piece.decode("utf-8")
                except UnicodeDecodeError as exc:
                    start = piece.rfind(b"\n", 0, exc.start) + 1
                    column = len(piece[start : exc.start].decode("utf-8")) + 1
                    line_no = done + piece.count(b"\n", 0, exc.start) + 1
                    raise DataError(
                        f"{self.name} line {line_no}: not "
                        f"valid UTF-8 text (byte 0x{piece[exc.start]:02x} at character "
                        f"{column}); save the file as UTF-8"
                    ) from None
                a = np.frombuffer(piece, dtype=np.uint8)
                cr = np.flatnonzero(a == 13)
                if len(cr) and (a[cr + 1] != 10).any():
                    return None  # a line ending in a lone \r
                ends = np.flatnonzero(a == 10)
                begins = np.concatenate(([0], ends[:-1] + 1))
                fields = np.add.reduceat(a == sep_byte, begins, dtype=np.int64) + 1
                text = np.add.reduceat(~not_text[a], begins, dtype=np.int64)
                line_nos = np.arange(done + 1, done + len(ends) + 1)
                done += len(ends)
                keep = (text > 0) & (line_nos > skip)
                line_nos, fields = line_nos[keep], fields[keep]
                bad = np.flatnonzero(fields != n)
                if len(bad):
                    raise self._wrong_fields(int(line_nos[bad[0]]), int(fields[bad[0]]))
                if len(line_nos):
                    prev = np.concatenate(([expected], line_nos[:-1] + 1))
                    for k in np.flatnonzero(line_nos != prev):
                        starts.append(rec + int(k))
                        lines.append(int(line_nos[k]))
                    rec += len(line_nos)
                    expected = int(line_nos[-1]) + 1
        return _LineMap(skip + 1, starts, lines, rec)


class _LineMap:
    """Record index -> physical line number, stored as the few points where they shift."""

    def __init__(self, first_line: int, starts: list[int], lines: list[int], n: int) -> None:
        self.first_line = first_line
        self.starts = starts
        self.lines = lines
        self.n_records = n

    def line(self, row: int) -> int:
        k = bisect.bisect_right(self.starts, row) - 1
        if k < 0:
            return self.first_line + row
        return self.lines[k] + (row - self.starts[k])


class _LineCounter:
    """Iterator over lines that counts them, so csv.reader's records get line numbers."""

    def __init__(self, lines: Iterator[str], skipped: int) -> None:
        self._lines = lines
        self.line_no = skipped

    def __iter__(self) -> _LineCounter:
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        self.line_no += 1
        return line


def _check_utf8(lines: Iterator[str], name: str) -> Iterator[str]:
    """Pass lines through, raising DataError on the first one that is not valid UTF-8."""
    for no, line in enumerate(lines, start=1):
        if not line.isascii():
            bad = _SURROGATE.search(line)
            if bad:
                raise DataError(
                    f"{name} line {no}: not valid UTF-8 text (byte "
                    f"0x{ord(bad.group()) - 0xDC00:02x} at character {bad.start() + 1}); "
                    "save the file as UTF-8"
                )
        yield line


def _blank_chars(sep: str) -> str:
    """Characters a blank line may consist of: spaces and tabs, unless one is the sep."""
    return "".join(c for c in " \t\r\n" if c not in sep)


def _compression(path: str) -> str | None:
    lower = path.lower()
    for ext, kind in ((".gz", "gzip"), (".bz2", "bz2"), (".xz", "lzma")):
        if lower.endswith(ext):
            return kind
    return None


# ---------------------------------------------------------------------- fast path
#: Rows per chunk of the pandas fast path; pyarrow's blocks are sized in bytes.
_CHUNK_ROWS = 1 << 20
_BLOCK_BYTES = 4 << 20
_SEGMENT_BYTES = 64 << 20
_SCAN_BYTES = 16 << 20
_INT32 = np.iinfo(np.int32)


def _read_fast(src: _CsvFile, cols: dict[str, int]) -> pd.DataFrame | None:
    """One strict, typed parse, piece by piece; None when anything is irregular.

    Each piece's columns are copied at once into compact arrays (ids as int32 when they
    fit, values as float32), so the peak memory stays near the size of the final arrays
    rather than that of a DataFrame of int64 columns.
    """
    df = _read_fast_native(src, cols)
    if df is not None:
        return df
    if _arrow() is None:
        return _read_fast_pandas(src, cols)
    return _read_fast_arrow(src, cols)


_FIELD_CODES = {
    "user": parsing.FIELD_USER,
    "item": parsing.FIELD_ITEM,
    "rating": parsing.FIELD_RATING,
    "timestamp": parsing.FIELD_TIME,
}


def _read_fast_native(src: _CsvFile, cols: dict[str, int]) -> pd.DataFrame | None:
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
    buf = bytearray(min(_SEGMENT_BYTES, os.path.getsize(src.path)) + 2)
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
            if got == 0:
                if end == begin:
                    break
                buf[end] = 10
                cut = end + 1
            else:
                cut = buf.rfind(b"\n", begin, end) + 1
                if cut == 0:
                    return None  # no line end in a whole piece: \r line ends, huge lines
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


def _arrow() -> Any:
    """pyarrow, with its csv and compute modules loaded; None when it is not installed."""
    try:
        import pyarrow
        import pyarrow.compute
        import pyarrow.csv
    except ImportError:
        return None
    return pyarrow


def _raw_layout(src: _CsvFile, cols: dict[str, int]) -> tuple[int, dict[str, int], list[int]]:
    """Columns as the parser sees them: "::" is parsed as ":" with empty columns between."""
    if src.sep != "::":
        return src.n_fields, dict(cols), []
    n_raw = 2 * src.n_fields - 1
    return n_raw, {r: 2 * p for r, p in cols.items()}, list(range(1, n_raw, 2))


class _Parts:
    """Per-role column storage filled piece by piece, joined into a DataFrame at the end.

    Numeric columns go straight into one preallocated array each, sized from an estimate
    of the row count (pages never written cost no memory), so no list of pieces and no
    concatenation doubles the peak. Ids are stored as int32 when they fit. Text columns
    (and pyarrow timestamps) are kept as a list of pieces.
    """

    def __init__(self, src: _CsvFile, roles: Any) -> None:
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
            small = _INT32.min <= values.min() and values.max() <= _INT32.max
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


def _read_fast_arrow(src: _CsvFile, cols: dict[str, int]) -> pd.DataFrame | None:
    try:
        return _read_arrow(src, cols, _guess_types(src, cols))
    except _GuessFailed:  # e.g. an id beyond int32 further down: infer the types instead
        return _read_arrow(src, cols, {})


class _GuessFailed(Exception):
    """A value did not fit a column type guessed from the first record."""


_INT_TEXT = re.compile(r"[+-]?\d{1,18}")


def _guess_types(src: _CsvFile, cols: dict[str, int]) -> dict[str, Any]:
    """Column dtypes read off the first record: int32 ids and int64 timestamps.

    Declaring them spares the parser's type inference and a pass to narrow int64 ids; a
    wrong guess only costs a second parse with inference.
    """
    types: dict[str, Any] = {}
    for role, pos in cols.items():
        text = src.sample[pos].strip() if pos < len(src.sample) else ""
        if role in ("user", "item", "timestamp") and _INT_TEXT.fullmatch(text):
            if role == "timestamp":
                types[role] = np.dtype(np.int64)
            elif _INT32.min <= int(text) <= _INT32.max:
                types[role] = np.dtype(np.int32)
    return types


def _read_arrow(
    src: _CsvFile, cols: dict[str, int], guessed: dict[str, Any]
) -> pd.DataFrame | None:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    n_raw, raw, gaps = _raw_layout(src, cols)
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
        parts = _Parts(src, raw)
        try:
            if segmented:
                pieces: Any = _arrow_segments(src, names, options)
            else:
                pieces = pacsv.open_csv(
                    src.path,
                    read_options=pacsv.ReadOptions(
                        column_names=names, skip_rows=src.skip, block_size=_BLOCK_BYTES
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
                raise _GuessFailed from None
            return None  # a malformed line or a value of another type
        return parts.frame()
    return None  # pragma: no cover - the serial reader never raises _NotSegmentable


class _NotSegmentable(Exception):
    """The file cannot be cut at line ends safely (quotes, compression, CR line ends)."""


def _arrow_segments(src: _CsvFile, names: list[str], options: dict[str, Any]) -> Iterator[Any]:
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
    buf = bytearray(min(_SEGMENT_BYTES, os.path.getsize(src.path) + 1))
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
            cut = buf.rfind(b"\n", 0, end) + 1 if got else end
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


def _take_arrow(parts: _Parts, role: str, col: Any) -> bool:
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


def _read_fast_pandas(src: _CsvFile, cols: dict[str, int]) -> pd.DataFrame | None:
    guessed = _guess_types(src, cols)
    result = _read_pandas(src, cols, guessed)
    if result is None and guessed:  # e.g. an id beyond int32 further down: infer instead
        result = _read_pandas(src, cols, {})
    return result


def _read_pandas(
    src: _CsvFile, cols: dict[str, int], guessed: dict[str, Any]
) -> pd.DataFrame | None:
    n_raw, raw, gaps = _raw_layout(src, cols)
    dtype: dict[int, Any] = {raw[role]: t for role, t in guessed.items()}
    if "rating" in raw:
        dtype[raw["rating"]] = np.float32
    parts = _Parts(src, raw)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            warnings.simplefilter("ignore", RuntimeWarning)  # float32 overflow: checked below
            chunks = pd.read_csv(
                src.path,
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
                chunksize=_CHUNK_ROWS,
            )
            with chunks:
                for df in chunks:
                    if not _take_chunk(df, raw, gaps, n_raw, parts):
                        return None
    except (ValueError, UnicodeDecodeError, pd.errors.ParserWarning, OverflowError):
        return None  # ParserError is a ValueError
    return parts.frame()


def _take_chunk(
    df: pd.DataFrame, raw: dict[str, int], gaps: list[int], n_raw: int, parts: _Parts
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


# ---------------------------------------------------------------------- careful path
def _read_careful(src: _CsvFile, cols: dict[str, int], implicit: bool | None) -> pd.DataFrame:
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
    }
    if src.sep == "::":
        kw.update(sep="::", engine="python")
    else:
        kw.update(sep=src.sep, engine="c")
    labels = src.labels
    parts = _Parts(src, cols)
    offset = 0
    with pd.read_csv(src.path, chunksize=_CHUNK_ROWS, **kw) as chunks:
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


def _read_whole(src: _CsvFile, cols: dict[str, int], kw: dict[str, Any]) -> pd.DataFrame:
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
    pa = _arrow()
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


# ====================================================================== read_parquet
def read_parquet(
    path: str | os.PathLike[str],
    user: str | int = "userId",
    item: str | int = "movieId",
    rating: str | int | None = "rating",
    timestamp: str | int | None = None,
    *,
    duplicates: str = "error",
    implicit: bool | None = None,
) -> Interactions:
    """Read a Parquet file with one interaction per row (needs pyarrow).

    Parameters
    ----------
    path : str or os.PathLike
        The Parquet file.
    user, item : str or int
        The columns of raw user and item ids: names, or 0-based column positions.
    rating : str, int or None
        The column of numeric values; ``None`` means implicit feedback (every value 1.0).
    timestamp : str, int or None
        Optional column of timestamps (numbers, or datetimes which become Unix seconds).
    duplicates : {"error", "last", "mean", "sum"}
        What to do with repeated (user, item) pairs; the default raises.
    implicit : bool, optional
        Whether the values are implicit feedback (must be >= 0). Defaults to
        ``rating is None``.

    Returns
    -------
    Interactions

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ImportError
        If pyarrow is not installed (``pip install "factorkit[parquet]"``).
    factorkit.exceptions.DataError
        On missing columns, missing or non-numeric values, duplicates and so on; messages
        name the row, counted from 0 as in pandas: ``ratings.parquet row 16: ...``.

    Examples
    --------
    >>> import os, tempfile
    >>> import pandas as pd
    >>> import factorkit as fk
    >>> path = os.path.join(tempfile.mkdtemp(), "ratings.parquet")
    >>> pd.DataFrame({"userId": [1, 1, 2], "movieId": [10, 20, 10],
    ...               "rating": [4.0, 3.5, 5.0]}).to_parquet(path)
    >>> data = fk.read_parquet(path)
    >>> data.n_users, data.n_items, len(data)
    (2, 2, 3)
    """
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ImportError(
            "read_parquet needs pyarrow; install it with: pip install 'factorkit[parquet]'"
        ) from None
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidParameterError(
            f"read_parquet expects a file path (str or os.PathLike); got {type(path).__name__}"
        )
    if duplicates not in DUPLICATE_POLICIES:
        raise InvalidParameterError(
            f"duplicates must be one of {list(DUPLICATE_POLICIES)}; got {duplicates!r}"
        )
    path = os.fspath(path)
    name = os.path.basename(path) or path
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"{name}: no such file: {os.path.abspath(path)!r}; check the path "
            f"(relative paths start at the working directory {os.getcwd()!r})"
        )
    try:
        schema = pq.read_schema(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{name} is not a readable Parquet file ({exc})") from None
    fields = list(schema.names)
    wanted = {"user": user, "item": item, "rating": rating, "timestamp": timestamp}
    chosen: dict[str, str] = {}
    for role, spec in wanted.items():
        if spec is None:
            if role in ("user", "item"):
                raise InvalidParameterError(f"{role} must name the {role} id column; got None")
            continue
        if isinstance(spec, (bool, np.bool_)) or not isinstance(spec, (str, int, np.integer)):
            raise InvalidParameterError(
                f"{role} must be a column name (str) or a 0-based column position (int); "
                f"got {spec!r}"
            )
        if isinstance(spec, str):
            if spec not in fields:
                raise DataError(
                    f"{name}: {role} column {spec!r} not found; the file has "
                    f"{len(fields)} column{'s' if len(fields) != 1 else ''}: {fields}. "
                    f"Pass {role}=<one of those names>."
                )
            col = spec
        else:
            if not 0 <= int(spec) < len(fields):
                raise DataError(
                    f"{name}: {role} column position {int(spec)} is out of range; the file "
                    f"has {len(fields)} columns (positions 0..{len(fields) - 1}): {fields}"
                )
            col = fields[int(spec)]
        if col in chosen.values():
            other = next(r for r, c in chosen.items() if c == col)
            raise InvalidParameterError(
                f"{other} and {role} both name column {col!r}; each role needs its own column"
            )
        chosen[role] = col
    try:
        df = pd.read_parquet(path, columns=list(chosen.values()), engine="pyarrow")
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{name} could not be read as Parquet ({exc})") from None
    if len(df) == 0:
        raise DataError(f"{name} has no rows; expected one row per interaction")
    for role in ("rating", "timestamp"):
        if role in chosen and df[chosen[role]].dtype == bool:
            raise DataError(
                f"{name}: {role} column {chosen[role]!r} holds booleans; expected numbers. "
                "Convert it (e.g. to 0/1) first, or pass rating=None for implicit feedback."
            )
    return Interactions.from_pandas(
        df,
        user=chosen["user"],
        item=chosen["item"],
        rating=chosen.get("rating"),
        timestamp=chosen.get("timestamp"),
        duplicates=duplicates,  # type: ignore[arg-type]
        implicit=implicit,
        _locator=lambda row: f"{name} row {row}",
        _source=name,
    )
