"""read_csv: a ratings file -> :class:`~factorkit.data.Interactions`, and the choice of
engine behind it.

The reader is strict: every malformed line, missing value or value of the wrong kind
raises :class:`~factorkit.exceptions.DataError` naming the file, the line, the field, what
was expected and how to fix it. Nothing is silently dropped or coerced.

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

import os
import re

import numpy as np

from factorkit._lazy import pandas as pd
from factorkit._validation import Boolean, Options, validate_params
from factorkit.data.interactions import Interactions
from factorkit.data.io import _arrow_csv, _careful_csv, _numba_csv, _pandas_csv
from factorkit.data.io._source import READER_ARGS, SEPARATORS, CsvFile, NotText
from factorkit.exceptions import DataError

__all__ = ["read_csv"]


@validate_params({**READER_ARGS, "sep": Options(SEPARATORS), "header": Boolean()}, owner="read_csv")
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
        The file. gzip, bzip2 and xz data is decompressed on the fly; the compression is
        told by the file's first bytes, not its name.
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
        Damaged input fails fast in bounded memory: truncated or corrupt compressed data,
        binary data (NUL bytes), a line without a break within ``MAX_LINE_BYTES`` (1 MiB),
        and an integer id that does not fit 64 bits (rather than reading every id as text).
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
    src = CsvFile(path, sep, header)
    cols = src.resolve({"user": user, "item": item, "rating": rating, "timestamp": timestamp})
    with src.framing():  # a truncated or corrupt compressed file: DataError naming it
        df = _read_fast(src, cols)
        if df is None:
            src.line_map()  # raises DataError on the first malformed line
            df = _careful_csv.read(src, cols, implicit)
    for role in ("user", "item"):
        _reject_overflowing_ids(src, role, cols[role], df[src.labels[role]])
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


def _read_fast(src: CsvFile, cols: dict[str, int]) -> pd.DataFrame | None:
    """One strict, typed parse, piece by piece; None when anything is irregular.

    Each piece's columns are copied at once into compact arrays (ids as int32 when they
    fit, values as float32), so the peak memory stays near the size of the final arrays
    rather than that of a DataFrame of int64 columns.
    """
    try:
        df = _numba_csv.read(src, cols)
        if df is not None:
            return df
        if _arrow_csv.arrow() is None:
            return _pandas_csv.read(src, cols)
        return _arrow_csv.read(src, cols)
    except NotText:  # binary data or no line break: the byte scan names the line
        return None


_INT_LITERAL = re.compile(r"\s*[+-]?\d+\s*")


def _reject_overflowing_ids(src: CsvFile, role: str, pos: int, col: pd.Series) -> None:
    """Raise when an id column holds only integer literals yet came out as text: some id
    does not fit a 64-bit integer. Reading the whole column as strings instead would
    silently change the type of every id (``predict(1, ...)`` would stop matching)."""
    if col.dtype.kind in "iuf" or not len(col):
        return
    first = col.iloc[0]  # pandas' parser gives Python ints for an overflowing column
    if isinstance(first, str):
        if not _INT_LITERAL.fullmatch(first):
            return  # text ids (the common case is decided by the first id alone)
    elif not isinstance(first, (int, np.integer)) or isinstance(first, bool):
        return
    text = col.astype(str)
    if not text.str.fullmatch(_INT_LITERAL.pattern).all():
        return  # ids that are not all integers stay text, as documented
    signed = bool(text.str.lstrip().str.startswith("-").any())
    high = np.iinfo(np.int64).max if signed else np.iinfo(np.uint64).max
    low = np.iinfo(np.int64).min
    long = np.flatnonzero(text.str.strip().str.lstrip("+-").str.len().to_numpy() >= 19)
    for row in long:
        value = int(text.iloc[row])
        if not low <= value <= high:
            label = src.labels[role]
            where = f"column {label!r}" if src.header else label
            how = (
                f"dtype={{{label!r}: str}}" if src.header else f"header=None, dtype={{{pos}: str}}"
            )
            raise DataError(
                f"{src.locate(int(row))}: {role} id {text.iloc[row].strip()} in {where} does "
                f"not fit a 64-bit integer, while every other {role} id is an integer. Fix the "
                "id, or, if the ids are labels rather than numbers, read them as text: "
                f"fk.Interactions.from_pandas(pandas.read_csv(path, {how}), ...)"
            )
