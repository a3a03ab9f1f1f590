"""MovieLens: the small data set shipped with factorkit, and a reader for every GroupLens layout.

GroupLens publishes MovieLens in three on-disk layouts, all read by :func:`read_movielens`:

- ml-100k: ``u.data`` (tab separated, no header) and ``u.item`` (``'|'``, latin-1).
- ml-1m, ml-10m: ``ratings.dat`` and ``movies.dat`` (``'::'`` separated, no header).
- ml-20m, ml-25m, ml-32m, ml-latest, ml-latest-small: ``ratings.csv`` and ``movies.csv``
  (comma separated, with a header).

Every layout becomes explicit-rating :class:`~factorkit.Interactions` with Unix-second
timestamps, the raw integer ``userId`` / ``movieId`` as ids, and ``item_metadata``: a
DataFrame indexed by ``movieId`` with columns ``title``, ``genres`` (``'|'``-joined) and
``year`` (nullable ``Int64``, parsed from the ``(1995)`` at the end of the title).
"""

from __future__ import annotations

import functools
import io
import os
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import IO, Any, Protocol

import numpy as np

from factorkit._lazy import pandas as pd
from factorkit.data.interactions import Duplicates, Interactions
from factorkit.exceptions import DataError, DataWarning

__all__ = ["load_movielens_small", "read_movielens"]

# NOTE for integration: ratings are parsed here with pandas.read_csv plus the core's
# ``_locator`` hook, so value errors already name "<file> line N". When
# factorkit.data.io.read_csv lands, the ratings.csv / u.data paths could go through it
# instead; ratings.dat keeps its own ':'-split parse (10M lines; the python engine that a
# two-character separator needs is ~10x slower).


class _Source(Protocol):
    """A file we can open: :class:`pathlib.Path` or an importlib.resources Traversable."""

    name: str

    def open(self, mode: str = ...) -> IO[Any]: ...


@dataclass(frozen=True)
class _Layout:
    key: str
    ratings: str
    movies: str
    datasets: str  # what the layout is, for messages


_ML100K = _Layout("ml-100k", "u.data", "u.item", "ml-100k")
_DAT = _Layout("dat", "ratings.dat", "movies.dat", "ml-1m, ml-10m")
_CSV = _Layout(
    "csv", "ratings.csv", "movies.csv", "ml-20m, ml-25m, ml-32m, ml-latest, ml-latest-small"
)
_LAYOUTS = (_ML100K, _DAT, _CSV)

#: The 19 genres of ml-100k in ``u.item`` column order (what ``u.genre`` lists).
ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip

_YEAR = re.compile(r"\((\d{4})(?:\s*[-\u2013]\s*\d{0,4})?\)\s*$")


# ---------------------------------------------------------------------- public API
def load_movielens_small() -> Interactions:
    """MovieLens "latest-small" (100,836 ratings), shipped inside the package.

    610 users rated 9,724 of the 9,742 movies on a 0.5 - 5 star scale (half stars), between
    March 1996 and September 2018 (GroupLens, generated September 2018). No download is
    needed; the files are installed with factorkit, license included
    (``factorkit/data/resources/ml-latest-small/README.txt``: research use, cite Harper and
    Konstan 2015, no commercial use without permission).

    Returns
    -------
    Interactions
        Explicit ratings with Unix-second timestamps; user and item ids are the raw integer
        ``userId`` and ``movieId``. ``item_metadata`` is a DataFrame indexed by ``movieId``
        (all 9,742 movies, including the 18 nobody rated) with columns ``title``,
        ``genres`` (``'|'``-joined, e.g. ``'Adventure|Animation|Children'``) and ``year``
        (nullable ``Int64``; ``<NA>`` where the title carries no year).

    Notes
    -----
    The parsed data are cached for the life of the process, so calls after the first are
    nearly free. Every call returns a new :class:`~factorkit.Interactions` with its own copy
    of ``item_metadata``; the rating arrays are read-only and shared.

    Examples
    --------
    >>> import factorkit as fk
    >>> data = fk.datasets.load_movielens_small()
    >>> data.n_users, data.n_items, len(data)
    (610, 9724, 100836)
    >>> data.rating_scale
    (0.5, 5.0)
    >>> data.item_metadata.loc[1, ["title", "genres"]].tolist()
    ['Toy Story (1995)', 'Adventure|Animation|Children|Comedy|Fantasy']
    >>> int(data.item_metadata.loc[1, "year"])
    1995
    """
    data = _load_small_cached()
    return Interactions(
        data.user_index,
        data.item_index,
        data.values,
        data.user_map,
        data.item_map,
        data.timestamps,
        implicit=False,
        item_metadata=None if data.item_metadata is None else data.item_metadata.copy(),
        _canonical=True,
    )


def read_movielens(
    path: str | os.PathLike[str], *, duplicates: Duplicates = "error"
) -> Interactions:
    """Read an unpacked MovieLens archive in any of the GroupLens layouts.

    Parameters
    ----------
    path : str or path-like
        The directory unpacked from a GroupLens zip (``ml-100k/``, ``ml-1m/``,
        ``ml-10M100K/``, ``ml-20m/``, ``ml-25m/``, ``ml-32m/``, ``ml-latest/``,
        ``ml-latest-small/``), a directory holding exactly one of those, or the ratings
        file itself (``u.data``, ``ratings.dat`` or ``ratings.csv``). The layout is
        recognised from the ratings file's name.
    duplicates : {"error", "last", "mean", "sum"}, default "error"
        What to do when a (user, movie) pair is rated twice, as in
        :meth:`Interactions.from_pandas <factorkit.Interactions.from_pandas>`. The official
        archives hold no repeats; the default raises naming both lines.

    Returns
    -------
    Interactions
        Explicit ratings with Unix-second timestamps; ids are the raw integer user and
        movie ids. ``item_metadata`` is a DataFrame indexed by ``movieId`` with columns
        ``title``, ``genres`` and ``year`` read from the movie file next to the ratings
        (``u.item``, ``movies.dat`` or ``movies.csv``), or None when that file is absent
        (a :class:`~factorkit.exceptions.DataWarning` says so).

    Raises
    ------
    DataError
        When ``path`` does not exist, holds no recognised layout (the message lists what
        was looked for), or a file is malformed (the message names the file and line).

    See Also
    --------
    load_movielens : download a MovieLens archive from GroupLens, cache it, and read it.
    load_movielens_small : the small MovieLens data set shipped with factorkit.

    Examples
    --------
    >>> import factorkit as fk
    >>> data = fk.datasets.read_movielens("~/data/ml-1m")  # doctest: +SKIP
    >>> data.n_users, data.n_items, len(data)  # doctest: +SKIP
    (6040, 3706, 1000209)
    """
    root, layout = _resolve(path)
    movies = root / layout.movies
    if not movies.is_file():
        warnings.warn(
            f"read_movielens: {layout.movies} not found next to {root / layout.ratings}; "
            "item_metadata is None (titles and genres are unavailable)",
            DataWarning,
            stacklevel=2,
        )
        movies = None
    return _load(root / layout.ratings, movies, layout, str(root), duplicates)


# ---------------------------------------------------------------------- internals
@functools.lru_cache(maxsize=1)
def _load_small_cached() -> Interactions:
    # Interactions are immutable; the one mutable part (item_metadata) is copied on the way
    # out by load_movielens_small, so nothing handed to a caller aliases this object.
    root = resources.files("factorkit.data").joinpath("resources").joinpath("ml-latest-small")
    return _load(root.joinpath("ratings.csv"), root.joinpath("movies.csv"), _CSV, "ml-latest-small")


def _load(
    ratings: _Source,
    movies: _Source | None,
    layout: _Layout,
    where: str,
    duplicates: Duplicates = "error",
) -> Interactions:
    metadata = None if movies is None else _read_movies(movies, layout)
    return _read_ratings(ratings, layout, where, metadata, duplicates)


def _resolve(path: Any) -> tuple[Path, _Layout]:
    """The directory holding the ratings file, and its layout."""
    if not isinstance(path, (str, os.PathLike)):
        raise DataError(
            f"read_movielens: path must be a str or path-like naming a MovieLens directory or "
            f"ratings file; got {type(path).__name__}"
        )
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(
            f"read_movielens: {str(p)!r} does not exist; pass the directory unpacked from a "
            "MovieLens zip (e.g. 'ml-1m/') or its ratings file, or use "
            "fk.datasets.load_movielens(name) to download one"
        )
    if p.is_file():
        for layout in _LAYOUTS:
            if p.name == layout.ratings:
                return p.parent, layout
        if p.suffix.lower() == ".zip":
            raise DataError(
                f"read_movielens: {str(p)!r} is a zip archive; unzip it first and pass the "
                "directory it holds, or use fk.datasets.load_movielens(name), which downloads, "
                "unpacks and caches the archive for you"
            )
        raise DataError(
            f"read_movielens: {p.name!r} is not a MovieLens ratings file; pass a MovieLens "
            "directory or its ratings file: u.data (ml-100k), ratings.dat (ml-1m, ml-10m) or "
            "ratings.csv (ml-20m, ml-25m, ml-32m, ml-latest, ml-latest-small)"
        )
    layout = _detect(p)
    if layout is not None:
        return p, layout
    subdirs = [d for d in sorted(p.iterdir()) if d.is_dir()]
    found = [(d, lay) for d in subdirs if (lay := _detect(d)) is not None]
    if len(found) == 1:
        return found[0]
    if found:
        raise DataError(
            f"read_movielens: {str(p)!r} holds several MovieLens data sets "
            f"({', '.join(d.name for d, _ in found)}); pass one of those directories"
        )
    entries = sorted(e.name + ("/" if e.is_dir() else "") for e in p.iterdir())
    shown = ", ".join(entries[:12]) + (
        f", ... ({len(entries)} entries)" if len(entries) > 12 else ""
    )
    raise DataError(
        f"read_movielens: no MovieLens data found in {str(p)!r}; looked for u.data (ml-100k), "
        "ratings.dat (ml-1m, ml-10m) and ratings.csv (ml-20m, ml-25m, ml-32m, ml-latest, "
        "ml-latest-small) in it and in its immediate subdirectories, and found "
        f"{'[' + shown + ']' if entries else 'an empty directory'}. Pass the directory "
        "unpacked from a GroupLens MovieLens zip."
    )


def _detect(directory: Path) -> _Layout | None:
    for layout in _LAYOUTS:
        if (directory / layout.ratings).is_file():
            return layout
    return None


def _line_locator(name: str, first_line: int) -> Callable[[int], str]:
    """Row r of the data (0-based) sits on line ``first_line + r`` of file ``name``."""
    return lambda row: f"{name} line {row + first_line}"


def _read_ratings(
    src: _Source,
    layout: _Layout,
    where: str,
    metadata: pd.DataFrame | None,
    duplicates: Duplicates,
) -> Interactions:
    name = src.name
    try:
        with src.open("rb") as fh:
            if layout is _CSV:
                df = pd.read_csv(fh, skip_blank_lines=False)
                first_line = 2
                user, item, rating, timestamp = "userId", "movieId", "rating", "timestamp"
            else:
                sep = "\t" if layout is _ML100K else ":"
                df = pd.read_csv(fh, sep=sep, header=None, skip_blank_lines=False)
                first_line = 1
    except pd.errors.ParserError as exc:
        raise DataError(f"{where}: {name} is malformed: {exc}") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{where}: {name} is empty; it should hold one rating per line") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{where}: {name} is not text ({exc})") from None
    locator = _line_locator(name, first_line)

    if layout is _CSV:
        missing = [c for c in (user, item, rating, timestamp) if c not in df.columns]
        if missing:
            raise DataError(
                f"{where}: {name} has no {missing[0]!r} column; its header is "
                f"{','.join(map(str, df.columns))!r}, but a MovieLens ratings.csv starts with "
                "the header userId,movieId,rating,timestamp"
            )
    elif layout is _ML100K:
        if df.shape[1] != 4:
            raise DataError(
                f"{where}: {name} line 1 has {df.shape[1]} tab-separated fields; ml-100k's "
                "u.data holds 4 per line: user id, item id, rating, timestamp"
            )
        df.columns = user, item, rating, timestamp = ["user", "item", "rating", "timestamp"]
    elif layout is _DAT:
        # 'u::i::r::t' split on ':' gives 7 fields with empty ones at 1, 3 and 5.
        if df.shape[1] != 7:
            raise DataError(
                f"{where}: {name} line 1 has {df.shape[1]} ':'-separated fields; every line "
                "of a MovieLens ratings.dat reads UserID::MovieID::Rating::Timestamp"
            )
        stray = df[[1, 3, 5]].notna().any(axis=1).to_numpy()
        if stray.any():
            row = int(np.flatnonzero(stray)[0])
            raise DataError(
                f"{where}: {locator(row)} is not UserID::MovieID::Rating::Timestamp; fields "
                "must be separated by '::'"
            )
        df = df[[0, 2, 4, 6]]
        df.columns = user, item, rating, timestamp = ["user", "item", "rating", "timestamp"]
    for col, role in ((user, "user"), (item, "item")):
        if col in df.columns:
            _check_integer_ids(df[col], role, locator, where)
    return Interactions.from_pandas(
        df,
        user=user,
        item=item,
        rating=rating,
        timestamp=timestamp,
        duplicates=duplicates,
        implicit=False,
        item_metadata=metadata,
        _locator=locator,
        _source=where,
    )


def _check_integer_ids(
    col: pd.Series, role: str, locator: Callable[[int], str], where: str
) -> None:
    """MovieLens ids are integers; text in an id column is an error, not a string id."""
    if col.dtype.kind in "iuf":  # floats: the core reports missing or fractional ids
        return
    as_num = pd.to_numeric(col, errors="coerce")
    bad = (as_num.isna() & col.notna()).to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{where}: {locator(row)}: {role} id {col.iloc[row]!r} is not an integer; "
            "MovieLens user and movie ids are whole numbers"
        )


def _decode(src: _Source) -> str:
    """File text: UTF-8 (the newer releases) or, failing that, latin-1 (ml-100k, ml-1m)."""
    with src.open("rb") as fh:
        raw = fh.read()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _read_movies(src: _Source, layout: _Layout) -> pd.DataFrame:
    text = _decode(src)
    name = src.name
    if layout is _CSV:
        try:
            df = pd.read_csv(
                io.StringIO(text), dtype=str, keep_default_na=False, skip_blank_lines=False
            )
        except pd.errors.ParserError as exc:
            raise DataError(f"{name} is malformed: {exc}") from None
        missing = [c for c in ("movieId", "title", "genres") if c not in df.columns]
        if missing:
            raise DataError(
                f"{name}: column {missing[0]!r} not found; the columns are "
                f"{[str(c) for c in df.columns]}, but a MovieLens movies.csv has movieId, "
                "title, genres"
            )
        ids, titles, genres = df["movieId"].tolist(), df["title"].tolist(), df["genres"].tolist()
        first_line = 2
    else:
        ids, titles, genres = [], [], []
        lines = text.splitlines()
        if lines and not lines[-1].strip():
            lines.pop()
        first_line = 1
        for n, line in enumerate(lines, start=1):
            if layout is _DAT:
                parts = line.split("::")
                if len(parts) < 3:
                    raise DataError(
                        f"{name} line {n}: expected MovieID::Title::Genres; got {line!r}"
                    )
                ids.append(parts[0])
                titles.append("::".join(parts[1:-1]))
                genres.append(parts[-1])
            else:  # u.item: id|title|release|video release|IMDb URL|19 genre flags
                parts = line.split("|")
                if len(parts) != 5 + len(ML100K_GENRES):
                    raise DataError(
                        f"{name} line {n}: expected {5 + len(ML100K_GENRES)} '|'-separated "
                        f"fields (id, title, release date, video release date, IMDb URL and "
                        f"{len(ML100K_GENRES)} genre flags); got {len(parts)}"
                    )
                flags = parts[5:]
                if any(f not in ("0", "1") for f in flags):
                    raise DataError(f"{name} line {n}: genre flags must be 0 or 1; got {flags}")
                ids.append(parts[0])
                titles.append(parts[1])
                genres.append(
                    "|".join(g for g, f in zip(ML100K_GENRES, flags, strict=True) if f == "1")
                )
    movie_ids = np.empty(len(ids), dtype=np.int64)
    for k, raw in enumerate(ids):
        try:
            movie_ids[k] = int(raw)
        except ValueError:
            raise DataError(
                f"{name} line {k + first_line}: movie id {raw!r} is not an integer; MovieLens "
                "movie ids are whole numbers"
            ) from None
    index = pd.Index(movie_ids, name="movieId")
    if not index.is_unique:
        dup = index[index.duplicated()][0]
        rows = np.flatnonzero(movie_ids == dup)[:2] + first_line
        raise DataError(
            f"{name}: lines {rows[0]} and {rows[1]} both describe movie id {dup}; each movie "
            "may appear once"
        )
    title = pd.Series(titles, index=index, dtype=str)
    year = title.str.extract(_YEAR, expand=False).astype("Int64")
    return pd.DataFrame(
        {"title": title, "genres": pd.Series(genres, index=index, dtype=str), "year": year}
    )
