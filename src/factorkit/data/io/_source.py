"""One CSV file as the readers see it: its header, column layout, compression, and
(on the error path only) the map from record index to physical line number.
"""

from __future__ import annotations

import bisect
import contextlib
import csv
import importlib
import io
import lzma
import os
import re
import zlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from factorkit._validation import Boolean, NoneOr, Options, Satisfies
from factorkit.data.hints import Placeholder, column_clash, hint
from factorkit.data.interactions import DUPLICATE_POLICIES
from factorkit.exceptions import DataError, InvalidParameterError

#: Field separators read_csv understands; "::" is the MovieLens 1M / 10M ``.dat`` format.
SEPARATORS = (",", "\t", ";", "|", " ", "::")
SEP_WORDS = {
    ",": "comma",
    "\t": "tab",
    ";": "semicolon",
    "|": "pipe",
    " ": "space",
    "::": "'::'",
}
SEP_PLURAL = {
    ",": "commas",
    "\t": "tabs",
    ";": "semicolons",
    "|": "'|'",
    " ": "spaces",
    "::": "'::'",
}
_SURROGATE = re.compile("[\udc80-\udcff]")

# ---------------------------------------------------------------------- fast path
#: Rows per chunk of the pandas fast path; pyarrow's blocks are sized in bytes.
CHUNK_ROWS = 1 << 20
BLOCK_BYTES = 4 << 20
SEGMENT_BYTES = 64 << 20
SCAN_BYTES = 16 << 20
#: A line longer than this (no line break within it) is an error: a ratings file has short
#: lines, and the bound keeps a file of binary data or without line breaks from filling
#: memory. Counted in bytes by the byte scan, in characters by the line-by-line reads.
MAX_LINE_BYTES = 1 << 20

#: compressed formats read_csv decompresses, by the magic bytes that start them
#: (bzip2: "BZh", the block size digit, then the magic of a block or of the stream's end,
#: so that a text file whose header starts with "BZh" is not taken for one)
_COMPRESSIONS = (
    (re.compile(rb"\x1f\x8b", re.DOTALL), "gzip"),
    (re.compile(rb"BZh[1-9](1AY&SY|\x17rE8P\x90)", re.DOTALL), "bz2"),
    (re.compile(rb"\xfd7zXZ\x00", re.DOTALL), "lzma"),
)
#: formats it does not read, and what to do instead
_FOREIGN = (
    (
        b"\x28\xb5\x2f\xfd",
        "Zstandard-compressed, which read_csv does not decompress; decompress it first "
        "(zstd -d {name}) or recompress it with gzip",
    ),
    (b"PK\x03\x04", "a zip archive; extract the CSV file from it first (unzip {name})"),
    (b"PAR1", "a Parquet file, not CSV; read it with fk.read_parquet"),
)


def _is_column(value: Any) -> bool:
    return isinstance(value, (str, int, np.integer)) and not isinstance(value, (bool, np.bool_))


#: a column named by its header label or by its 0-based position
COLUMN = Satisfies(_is_column, "a column name (str) or a 0-based column position (int)")
#: the arguments read_csv and read_parquet share, as declared constraints
READER_ARGS: dict[str, Any] = {
    "user": COLUMN,
    "item": COLUMN,
    "rating": NoneOr(COLUMN),
    "timestamp": NoneOr(COLUMN),
    "duplicates": Options(DUPLICATE_POLICIES),
    "implicit": NoneOr(Boolean()),
}


class NotText(Exception):
    """A fast pass found a NUL byte, or no line break within :data:`MAX_LINE_BYTES`: the
    byte scan then names the line, instead of a general parser reading it whole (or
    skipping the bytes in a column it does not need)."""


class CheckedStream(io.RawIOBase):
    """The file's (decompressed) bytes for a general parser, checked as they pass: a NUL
    byte, or no line break within :data:`MAX_LINE_BYTES`, raises :class:`NotText`, so a
    parser never reads binary data whole or skips it in a column it does not need."""

    def __init__(self, raw: Any) -> None:
        super().__init__()
        self._raw = raw
        self._tail = 0  # bytes since the last line break

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = self._raw.readinto(b)
        if n:
            data = memoryview(b)[:n].tobytes() if not isinstance(b, bytearray) else b[:n]
            last = max(data.rfind(b"\n"), data.rfind(b"\r"))
            self._tail = self._tail + n if last < 0 else n - last - 1
            if self._tail > MAX_LINE_BYTES or data.find(b"\x00") >= 0:
                raise NotText
        return n

    def close(self) -> None:
        self._raw.close()
        super().close()


def not_text(buf: bytearray, begin: int, last: int, end: int) -> bool:
    """Whether ``buf[begin:end]``, a piece of the file whose unfinished last line starts
    at ``last``, holds a NUL byte or a last line already too long without a line break."""
    if buf.find(b"\x00", begin, end) >= 0:
        return True
    return end - last > MAX_LINE_BYTES and buf.find(b"\r", last, end) < 0


class CsvFile:
    """One CSV file: its header, column layout, and (on demand) record -> line numbers."""

    def __init__(self, path: Any, sep: str, header: bool) -> None:
        if not isinstance(path, (str, os.PathLike)):
            raise InvalidParameterError(
                f"read_csv expects a file path (str or os.PathLike); got {type(path).__name__}. "
                "For data already in memory use Interactions.from_pandas(pandas.read_csv(...))."
            )
        self.path = os.fspath(path)
        self.name = os.path.basename(self.path) or self.path
        self.sep = sep
        self.header = bool(header)
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
        self.compression = compression_of(self.path, self.name)
        with self.framing():
            self._read_head()
        self._lines: LineMap | None = None
        self.labels: dict[str, str] = {}

    # ------------------------------------------------------------------ header
    def _read_head(self) -> None:
        """Find the first non-blank line (the header, or the first record) and the next."""
        first = first_no = sample = None
        skip = 0
        with self.open_text(errors="surrogateescape") as f:
            for no, line in enumerate(checked_lines(f, self.name), start=1):
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
        return not line.strip(blank_chars(self.sep))

    @contextlib.contextmanager
    def framing(self) -> Iterator[None]:
        """Turn a decompressor's error (truncated or corrupt data) into a DataError naming
        the file; wrap every read of a compressed file in this."""
        if self.compression is None:
            yield
            return
        try:
            yield
        except (EOFError, OSError, zlib.error, lzma.LZMAError) as exc:
            kind = {"gzip": "gzip", "bz2": "bzip2", "lzma": "xz"}[self.compression]
            raise DataError(
                f"{self.name}: the {kind}-compressed data is truncated or corrupt ({exc}); "
                "the file was probably cut short while downloading or copying. Fetch or "
                "compress it again."
            ) from None

    def open_binary(self) -> Any:
        """The file's bytes, decompressed by content and checked to be text as they are
        read (:class:`CheckedStream`); read inside :meth:`framing`."""
        if self.compression is None:
            raw = open(self.path, "rb", buffering=0)  # noqa: SIM115 - closed by the caller
        else:
            raw = importlib.import_module(self.compression).open(self.path, "rb")
        return io.BufferedReader(CheckedStream(raw), buffer_size=1 << 20)

    @property
    def pandas_compression(self) -> str | None:
        """``compression=`` for pandas: by content, never inferred from the file name."""
        return {None: None, "gzip": "gzip", "bz2": "bz2", "lzma": "xz"}[self.compression]

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
            if spec is None:  # an optional column left out (checked by READER_ARGS)
                continue
            if isinstance(spec, str):
                if not self.header:
                    raise InvalidParameterError(
                        f"with {hint('header', False)}, {role} must be a 0-based column position "
                        f"(int); got {spec!r}. For example {hint('user', 0)}, "
                        f"{hint('item', 1)}, {hint('rating', 2)}."
                    )
                matches = [k for k, f in enumerate(self.fields) if f == spec]
                if not matches:
                    raise DataError(
                        f"{self.name}: {role} column {spec!r} not found; the header has "
                        f"{self._columns_text()}.{self._sep_hint()} Pass "
                        f"{hint(role, Placeholder('<one of the column names>'))}, or "
                        f"{hint('header', False)} and 0-based column positions."
                    )
                if len(matches) > 1:
                    raise DataError(
                        f"{self.name}: {role} column {spec!r} appears {len(matches)} times in "
                        f"the header (positions {matches}); pass "
                        f"{hint(role, Placeholder('<position>'))} to choose one"
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
                        column_clash(self._label(pos), {other: wanted[other], role: spec})
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
                return f" The file looks {SEP_WORDS[cand]}-separated; pass {hint('sep', cand)}."
        return ""

    # ------------------------------------------------------------------ line numbers
    def locate(self, row: int) -> str:
        """``"ratings.csv line 17"`` for the 0-based data record ``row``."""
        return f"{self.name} line {self.line_map().line(row)}"

    def line_map(self) -> LineMap:
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
            f"line needs one value per column, separated by {SEP_PLURAL[sep]}. Fix or "
            "remove that line."
        )

    def _scan(self) -> LineMap:
        """Check every line's field count, quoting and encoding; map records to lines."""
        fast = self._scan_bytes()
        if fast is not None:
            return fast
        n, sep, name = self.n_fields, self.sep, self.name
        blank = blank_chars(sep)
        starts: list[int] = []  # record index where the record -> line offset changes
        lines: list[int] = []
        rec = 0
        expected = self.skip + 1  # the line the next record starts on if nothing shifts
        wrong = self._wrong_fields

        with self.open_text(errors="surrogateescape") as f:
            checked = checked_lines(f, name)
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
                counter = LineCounter(checked, self.skip)
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
        return LineMap(self.skip + 1, starts, lines, rec)

    def _scan_bytes(self) -> LineMap | None:
        """The same scan, vectorised over bytes, for the common case: an uncompressed file
        without quotes, with \\n or \\r\\n line ends and a one-character separator.
        None when that does not hold (the line-by-line scan then runs)."""
        if self.compression is not None or self.sep == "::":
            return None
        n, skip = self.n_fields, self.skip
        sep_byte = ord(self.sep)
        not_text = np.zeros(256, dtype=bool)
        not_text[[ord(c) for c in blank_chars(self.sep)]] = True
        starts: list[int] = []
        lines: list[int] = []
        rec = 0
        done = 0  # physical lines before the current piece
        expected = skip + 1
        carry = b""
        with open(self.path, "rb") as f:
            while True:
                block = f.read(SCAN_BYTES)
                data = carry + block if carry else block
                if not data:
                    break
                cut = data.rfind(b"\n") + 1 if block else len(data)
                if cut == 0:
                    if b"\r" in data:
                        return None  # \r line ends: the line-by-line scan reads them
                    if len(data) > MAX_LINE_BYTES:
                        raise long_line(self.name, done + 1, data)
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
                nul = piece.find(b"\x00")
                if nul >= 0:
                    start = piece.rfind(b"\n", 0, nul) + 1
                    raise binary_data(self.name, done + piece.count(b"\n", 0, nul) + 1, nul - start)
                a = np.frombuffer(piece, dtype=np.uint8)
                cr = np.flatnonzero(a == 13)
                if len(cr) and (a[cr + 1] != 10).any():
                    return None  # a line ending in a lone \r
                ends = np.flatnonzero(a == 10)
                begins = np.concatenate(([0], ends[:-1] + 1))
                lengths = ends - begins
                if len(lengths) and lengths.max() > MAX_LINE_BYTES:
                    k = int(np.argmax(lengths > MAX_LINE_BYTES))
                    raise long_line(self.name, done + k + 1, piece[begins[k] : ends[k]])
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
        return LineMap(skip + 1, starts, lines, rec)


class LineMap:
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


class LineCounter:
    """Iterator over lines that counts them, so csv.reader's records get line numbers."""

    def __init__(self, lines: Iterator[str], skipped: int) -> None:
        self._lines = lines
        self.line_no = skipped

    def __iter__(self) -> LineCounter:
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        self.line_no += 1
        return line


def checked_lines(f: Any, name: str) -> Iterator[str]:
    """The lines of a text file, each at most :data:`MAX_LINE_BYTES` characters (so a
    file without line breaks never fills memory), raising DataError on the first that is
    too long, holds a NUL byte (binary data) or is not valid UTF-8."""
    limit = MAX_LINE_BYTES
    no = 0
    while True:
        line = f.readline(limit + 1)
        if not line:
            return
        no += 1
        if len(line) > limit and not line.endswith(("\n", "\r")):
            raise long_line(name, no, line)
        if "\x00" in line:
            raise binary_data(name, no, line.index("\x00"))
        if not line.isascii():
            bad = _SURROGATE.search(line)
            if bad:
                raise DataError(
                    f"{name} line {no}: not valid UTF-8 text (byte "
                    f"0x{ord(bad.group()) - 0xDC00:02x} at character {bad.start() + 1}); "
                    "save the file as UTF-8"
                )
        yield line


def blank_chars(sep: str) -> str:
    """Characters a blank line may consist of: spaces and tabs, unless one is the sep."""
    return "".join(c for c in " \t\r\n" if c not in sep)


def long_line(name: str, line_no: int, start: bytes | str) -> DataError:
    """The error for a line with no line break within :data:`MAX_LINE_BYTES`."""
    if (b"\x00" if isinstance(start, bytes) else "\x00") in start:
        return binary_data(
            name, line_no, start.index(b"\x00" if isinstance(start, bytes) else "\x00")
        )
    return DataError(
        f"{name} line {line_no}: no line break within {MAX_LINE_BYTES} bytes; expected one "
        "short line per interaction. Check that this is the ratings file (CSV text) and not "
        "another kind of file."
    )


def binary_data(name: str, line_no: int, column: int) -> DataError:
    return DataError(
        f"{name} line {line_no}: binary data (a NUL byte at character {column + 1}); expected "
        "text. The file is damaged, or not a CSV file: check its content."
    )


def compression_of(path: str, name: str) -> str | None:
    """The compression of the file, told by its first bytes (not its name): ``"gzip"``,
    ``"bz2"``, ``"lzma"`` (xz) or None; DataError for formats read_csv cannot read."""
    with open(path, "rb") as f:
        head = f.read(16)
    for magic, kind in _COMPRESSIONS:
        if magic.match(head):
            return kind
    for magic, what in _FOREIGN:
        if head.startswith(magic):
            raise DataError(f"{name} is {what.format(name=name)}")
    return None
