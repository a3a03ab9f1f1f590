"""Features: side information about users or items as a sparse matrix with its own ids.

A :class:`Features` holds one row per id (a user or an item) and one column per feature,
as a float32 :class:`scipy.sparse.csr_matrix`, with an :class:`~factorkit.IdMap` of its
own. Its ids need not match the interactions' ids: a hybrid model aligns them by raw id,
so features may describe ids that have no interactions (a new item to recommend from its
features alone), and interaction ids without a features row simply have no features.

Column kinds (:meth:`Features.from_pandas`):

- *categorical*: one feature ``"col=value"`` per distinct value, one-hot;
- *multi-label*: lists (or ``sep``-joined strings such as ``"Comedy|Drama"``) of labels,
  one feature ``"col=label"`` per distinct label; an id's labels in one column share a
  weight of 1 (each gets ``1 / n_labels``), so an item with thirty tags does not outweigh
  one with two;
- *numeric*: one feature ``"col"``, standardised to mean 0 and standard deviation 1
  (the mean and deviation are kept, so :meth:`Features.transform` scales new rows alike).

The list of feature names (``names``) is the features' *vocabulary*: a model trained on
one vocabulary only accepts features built with it (:meth:`Features.transform`).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from factorkit._lazy import pandas as pd
from factorkit._validation import show
from factorkit.data.idmap import IdMap
from factorkit.exceptions import DataError, DataWarning

__all__ = ["Features", "load_movielens_small_item_features"]

_KINDS = ("categorical", "multi_label", "numeric")


@dataclass(frozen=True)
class _Column:
    """How one input column becomes features: its kind and its learned vocabulary."""

    name: str
    kind: str
    labels: tuple = ()  # categorical / multi_label: the values, in feature order
    mean: float = 0.0  # numeric
    std: float = 1.0
    sep: str | None = None
    index: dict = field(default_factory=dict, compare=False, repr=False)


class Features:
    """Side features of users or items: a sparse ``(n_ids, n_features)`` matrix with ids.

    Build with :meth:`from_pandas` (or :meth:`from_scipy` for a ready matrix); build
    features of new ids for a fitted model with :meth:`transform`, which keeps the
    vocabulary. See the module docstring for the column kinds.

    Attributes
    ----------
    matrix : scipy.sparse.csr_matrix of float32, (n_ids, n_features)
    ids : IdMap
        Row ``r`` describes raw id ``ids[r]``.
    names : numpy.ndarray of str
        Feature names (the vocabulary), e.g. ``"genres=Comedy"`` or ``"year"``.
    kind : str
        ``"user"`` or ``"item"``.

    Examples
    --------
    >>> import pandas as pd
    >>> import factorkit as fk
    >>> df = pd.DataFrame({"movie": [1, 2, 3], "genres": ["Comedy|Drama", "Drama", "Horror"],
    ...                    "year": [1995, 2001, 2010]})
    >>> f = fk.Features.from_pandas(df, id="movie", columns=["genres", "year"], sep="|")
    >>> f.names.tolist()
    ['genres=Comedy', 'genres=Drama', 'genres=Horror', 'year']
    >>> f.matrix.shape
    (3, 4)
    >>> f.matrix[0, :3].toarray().tolist()
    [[0.5, 0.5, 0.0]]
    >>> new = f.transform(pd.DataFrame({"movie": [9], "genres": ["Horror"], "year": [2001]}))
    >>> new.ids.ids.tolist(), bool((new.names == f.names).all())
    ([9], True)
    """

    __slots__ = ("_columns", "_id_column", "ids", "kind", "matrix", "names")

    def __init__(
        self,
        matrix: Any,
        ids: IdMap,
        names: Any,
        kind: str = "item",
        _columns: tuple[_Column, ...] = (),
    ) -> None:
        m = sp.csr_matrix(matrix, dtype=np.float32)
        m.sum_duplicates()
        m.sort_indices()
        names = np.asarray(names, dtype=str)
        if m.shape != (len(ids), len(names)):
            raise DataError(
                f"Features: the matrix is {m.shape[0]} x {m.shape[1]} but there are "
                f"{len(ids)} ids and {len(names)} feature names; pass one row per id and one "
                "name per column"
            )
        if len(np.unique(names)) != len(names):
            raise DataError("Features: feature names must be unique")
        if not np.isfinite(m.data).all():
            raise DataError(
                "Features: the matrix holds NaN or infinite values; fill or drop them first"
            )
        if kind not in ("user", "item"):
            raise DataError(f"Features: kind must be 'user' or 'item'; got {kind!r}")
        self.matrix = m
        self.ids = ids
        self.names = names
        self.kind = kind
        self._columns = tuple(_columns)
        self._id_column = "id"

    def __repr__(self) -> str:
        return (
            f"Features({self.kind}: {self.n_ids} ids x {self.n_features} features, "
            f"{self.matrix.nnz} stored values)"
        )

    @property
    def n_ids(self) -> int:
        return self.matrix.shape[0]

    @property
    def n_features(self) -> int:
        return self.matrix.shape[1]

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_scipy(cls, matrix: Any, ids: Any, names: Any = None, kind: str = "item") -> Features:
        """Features from a ready ``(n_ids, n_features)`` matrix (used as it is)."""
        m = sp.csr_matrix(matrix)
        if names is None:
            names = [f"f{j}" for j in range(m.shape[1])]
        return cls(m, _idmap(pd.Series(np.asarray(ids)), kind), names, kind)

    @classmethod
    def from_pandas(
        cls,
        df: pd.DataFrame,
        id: str,
        columns: Iterable[str] | None = None,
        *,
        kind: str = "item",
        categorical: Iterable[str] = (),
        multi_label: Iterable[str] = (),
        numeric: Iterable[str] = (),
        sep: str | None = None,
    ) -> Features:
        """Features from a DataFrame with one row per id.

        Parameters
        ----------
        df : pandas.DataFrame
        id : str
            The column holding the user or item ids (one row per id).
        columns : list of str, optional
            Feature columns (default: every column but ``id``). Kinds are inferred unless
            named in ``categorical`` / ``multi_label`` / ``numeric``: numeric dtypes are
            numeric, columns of lists (or strings containing ``sep`` when ``sep`` is
            given) are multi-label, anything else categorical.
        kind : {"item", "user"}
        categorical, multi_label, numeric : lists of column names
            Force a column's kind (e.g. an integer code that is categorical).
        sep : str, optional
            Separator of multi-label strings (``"|"`` for MovieLens genres).

        Raises
        ------
        DataError
            A missing column, a repeated or missing id, a numeric column holding text or
            NaN, a categorical column holding NaN. Missing labels of a multi-label column
            (NaN, empty list) mean "no labels".
        """
        if not isinstance(df, pd.DataFrame):
            raise DataError(
                f"Features.from_pandas: df must be a pandas DataFrame; got {type(df).__name__}"
            )
        columns = [c for c in df.columns if c != id] if columns is None else list(columns)
        missing = [c for c in [id, *columns] if c not in df.columns]
        if missing:
            raise DataError(
                f"Features.from_pandas: column(s) {missing} not in the DataFrame; its columns "
                f"are {list(df.columns)}"
            )
        forced = {}
        for kind_name, names in (
            ("categorical", categorical),
            ("multi_label", multi_label),
            ("numeric", numeric),
        ):
            for name in names:
                if name not in columns:
                    raise DataError(
                        f"Features.from_pandas: {kind_name} names column {name!r}, which is not "
                        f"among columns={columns}"
                    )
                forced[name] = kind_name
        specs = []
        for name in columns:
            col_kind = forced.get(name) or _infer_kind(df[name], sep)
            specs.append(_learn_column(df[name], name, col_kind, sep))
        return cls._build(df, id, tuple(specs), kind)

    def transform(self, df: pd.DataFrame, id: str | None = None) -> Features:
        """Features of (new) ids in ``df`` on this vocabulary: same names, same scaling.

        Categories and labels not in the vocabulary are left out with a
        :class:`~factorkit.exceptions.DataWarning` giving their count. ``id`` defaults
        to the id column name used by :meth:`from_pandas`.
        """
        if not self._columns:
            raise DataError(
                "Features.transform: these features were built from a matrix "
                "(Features.from_scipy), which records no column rules; build features of new "
                "ids with Features.from_scipy and the same names"
            )
        if id is None:
            id = self._id_column
        missing = [c.name for c in self._columns if c.name not in df.columns] + (
            [] if id in df.columns else [id]
        )
        if missing:
            raise DataError(
                f"Features.transform: column(s) {missing} not in the DataFrame; the "
                f"features were built from {[id] + [c.name for c in self._columns]}"
            )
        return type(self)._build(df, id, self._columns, self.kind, warn_unknown=True)

    @classmethod
    def _build(
        cls,
        df: pd.DataFrame,
        id: str,
        specs: tuple[_Column, ...],
        kind: str,
        warn_unknown: bool = False,
    ) -> Features:
        ids = _idmap(df[id], kind, f"Features: column {id!r}")
        blocks, names = [], []
        unknown = 0
        for spec in specs:
            block, n_unknown = _encode_column(df[spec.name], spec)
            unknown += n_unknown
            blocks.append(block)
            names.extend(_names_of(spec))
        if unknown and warn_unknown:
            warnings.warn(
                f"Features.transform: {unknown} value(s) are not in the features' vocabulary "
                "and were left out (those ids get no feature for them)",
                DataWarning,
                stacklevel=3,
            )
        n = len(df)
        matrix = sp.hstack(blocks, format="csr") if blocks else sp.csr_matrix((n, 0))
        out = cls(matrix, ids, names, kind, specs)
        out._id_column = id  # the default id column of transform()
        return out

    # ------------------------------------------------------------------ alignment
    def rows_for(self, raw_ids: Any) -> sp.csr_matrix:
        """Feature rows for ``raw_ids`` in that order; ids without a row get an empty row."""
        pos = self.ids.lookup(raw_ids)
        return _select_rows(self.matrix, pos)

    def check_vocabulary(self, names: np.ndarray, where: str) -> None:
        """Raise DataError unless this features' names equal ``names`` (a model's)."""
        names = np.asarray(names).astype(str)
        if len(names) == len(self.names) and bool((names == self.names).all()):
            return
        extra = sorted(set(self.names.tolist()) - set(names.tolist()))[:3]
        lacking = sorted(set(names.tolist()) - set(self.names.tolist()))[:3]
        detail = (
            f"{len(self.names)} features given, {len(names)} expected"
            + (f"; not in the model: {extra}" if extra else "")
            + (f"; missing: {lacking}" if lacking else "")
            + ("; same names in another order" if not extra and not lacking else "")
        )
        raise DataError(
            f"{where}: the {self.kind} features' vocabulary does not match the model's "
            f"({detail}); build them with the training features' transform(df) so the "
            "columns line up"
        )


# ---------------------------------------------------------------------- column rules
def _idmap(col: pd.Series, kind: str, where: str = "Features") -> IdMap:
    if col.isna().any():
        row = int(np.flatnonzero(col.isna().to_numpy())[0])
        raise DataError(f"{where}: row {row} has no id (NaN); every row needs its {kind} id")
    dup = col.duplicated(keep=False).to_numpy()
    if dup.any():
        rows = np.flatnonzero(dup)
        first = col.iloc[rows[0]]
        where_rows = np.flatnonzero((col == first).to_numpy())[:2].tolist()
        raise DataError(
            f"{where}: {kind} id {show(first)} appears in rows {where_rows} "
            f"({int(col.duplicated().sum())} repeated rows in all); features hold one row per "
            "id: combine them first, e.g. df.groupby(id).agg(list) for labels"
        )
    return IdMap(col.to_numpy(), kind=kind)


def _is_listlike(v: Any) -> bool:
    return isinstance(v, (list, tuple, set, frozenset, np.ndarray))


def _infer_kind(col: pd.Series, sep: str | None) -> str:
    if pd.api.types.is_bool_dtype(col):
        return "categorical"
    if pd.api.types.is_numeric_dtype(col):
        return "numeric"
    values = col.dropna()
    if len(values) and values.map(_is_listlike).any():
        return "multi_label"
    if sep is not None and values.astype(str).str.contains(sep, regex=False).any():
        return "multi_label"
    return "categorical"


def _labels(value: Any, sep: str | None) -> list:
    if _is_listlike(value):
        return [v for v in value if not _missing(v)]
    if _missing(value):
        return []
    if isinstance(value, str) and sep is not None:
        return [s for s in (p.strip() for p in value.split(sep)) if s]
    return [value]


def _missing(v: Any) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _numeric_values(col: pd.Series, name: str) -> np.ndarray:
    values = pd.to_numeric(col, errors="coerce")
    bad = values.isna() & ~col.isna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(
            f"Features: numeric column {name!r} row {row} holds {show(col.iloc[row])}, which "
            f"is not a number ({int(bad.sum())} such rows); fix the values or declare the "
            "column categorical=[...]"
        )
    if values.isna().any():
        row = int(np.flatnonzero(values.isna().to_numpy())[0])
        raise DataError(
            f"Features: numeric column {name!r} row {row} is NaN ({int(values.isna().sum())} "
            "such rows); fill them first (e.g. df[col].fillna(df[col].median())) or drop them"
        )
    return values.to_numpy(dtype=np.float64)


def _learn_column(col: pd.Series, name: str, kind: str, sep: str | None) -> _Column:
    if kind == "numeric":
        x = _numeric_values(col, name)
        std = float(x.std()) if len(x) else 1.0
        return _Column(name, kind, mean=float(x.mean()) if len(x) else 0.0, std=std or 1.0)
    if kind == "categorical":
        if col.isna().any():
            row = int(np.flatnonzero(col.isna().to_numpy())[0])
            raise DataError(
                f"Features: categorical column {name!r} row {row} is NaN "
                f"({int(col.isna().sum())} such rows); fill them with a value of their own "
                "(e.g. df[col].fillna('unknown')) or pass the column as multi_label, where "
                "NaN means no label"
            )
        labels = tuple(pd.unique(col.to_numpy()).tolist())
    else:
        seen: dict[Any, None] = {}
        for value in col.tolist():
            for label in _labels(value, sep):
                seen.setdefault(label, None)
        labels = tuple(seen)
    with contextlib.suppress(TypeError):  # mixed types keep their first-seen order
        labels = tuple(sorted(labels))
    return _Column(name, kind, labels=labels, sep=sep, index={v: j for j, v in enumerate(labels)})


def _names_of(spec: _Column) -> list[str]:
    if spec.kind == "numeric":
        return [spec.name]
    return [f"{spec.name}={label}" for label in spec.labels]


def _encode_column(col: pd.Series, spec: _Column) -> tuple[sp.csr_matrix, int]:
    """One column's block of the matrix and the number of values outside the vocabulary."""
    n = len(col)
    if spec.kind == "numeric":
        x = (_numeric_values(col, spec.name) - spec.mean) / spec.std
        return sp.csr_matrix(x.reshape(-1, 1).astype(np.float32)), 0
    if spec.kind == "categorical" and col.isna().any():
        _learn_column(col, spec.name, "categorical", None)  # raises the NaN error
    rows, cols, vals = [], [], []
    unknown = 0
    for r, value in enumerate(col.tolist()):
        labels = [value] if spec.kind == "categorical" else _labels(value, spec.sep)
        hits = []
        for label in labels:
            j = spec.index.get(label)
            if j is None:
                unknown += 1
            elif j not in hits:
                hits.append(j)
        for j in hits:
            rows.append(r)
            cols.append(j)
            vals.append(1.0 / len(hits))
    block = sp.csr_matrix(
        (np.asarray(vals, np.float32), (np.asarray(rows, np.int64), np.asarray(cols, np.int64))),
        shape=(n, len(spec.labels)),
    )
    return block, unknown


def _select_rows(matrix: sp.csr_matrix, pos: np.ndarray) -> sp.csr_matrix:
    """Rows ``pos`` of ``matrix``; -1 gives an empty row."""
    known = pos >= 0
    safe = np.where(known, pos, 0)
    picked = matrix[safe].tocsr()
    if not known.all():
        picked = sp.diags(known.astype(np.float32)) @ picked
        picked = sp.csr_matrix(picked)
        picked.eliminate_zeros()
    return picked


def align_features(features: Any, ids: IdMap, kind: str, where: str) -> sp.csr_matrix | None:
    """``features``' rows in the order of ``ids`` (CSR, float32; empty rows where missing)."""
    if features is None:
        return None
    if not isinstance(features, Features):
        raise DataError(
            f"{where}: {kind}_features must be a factorkit Features; got "
            f"{type(features).__name__}. Build one with fk.Features.from_pandas(df, id=...)"
        )
    if features.kind != kind:
        raise DataError(
            f"{where}: {kind}_features holds {features.kind} features; build them with "
            f"Features.from_pandas(..., kind={kind!r})"
        )
    return features.rows_for(ids.ids)


# ---------------------------------------------------------------------- MovieLens
def load_movielens_small_item_features(min_tag_count: int = 1) -> Features:
    """Item features of the shipped MovieLens latest-small: genres, tags and release year.

    Parameters
    ----------
    min_tag_count : int, default 1
        Keep a tag (lower-cased, stripped) only when at least this many (user, movie)
        tag applications use it.

    Returns
    -------
    Features
        One row per movie of ``movies.csv`` (9,742 movies): ``genres=...`` (multi-label,
        20 genres including ``(no genres listed)``), ``tags=...`` (multi-label; 1,572
        movies carry tags), and ``year`` (numeric, standardised; the 12 titles without a
        year get the median year). Ids are the raw ``movieId``, as in
        :func:`factorkit.datasets.load_movielens_small`.

    Examples
    --------
    >>> import factorkit as fk
    >>> f = fk.datasets.load_movielens_small_item_features()
    >>> f.n_ids, "genres=Comedy" in f.names, "year" in f.names
    (9742, True, True)
    """
    df = _movielens_small_frame(min_tag_count)
    return Features.from_pandas(
        df,
        id="movieId",
        columns=["genres", "tags", "year"],
        multi_label=["genres", "tags"],
        numeric=["year"],
        sep="|",
    )


def _movielens_small_frame(min_tag_count: int = 1) -> pd.DataFrame:
    """The shipped movies as a DataFrame: movieId, genres, tags (lists), year (filled)."""
    from importlib import resources

    from factorkit.data.io.movielens import load_movielens_small

    meta = load_movielens_small().item_metadata
    root = resources.files("factorkit.data.resources").joinpath("ml-latest-small")
    with root.joinpath("tags.csv").open("r", encoding="utf-8") as fh:
        tags = pd.read_csv(fh, usecols=["movieId", "tag"])
    tags["tag"] = tags["tag"].astype(str).str.strip().str.lower()
    counts = tags["tag"].value_counts()
    tags = tags[tags["tag"].map(counts) >= int(min_tag_count)]
    per_movie = tags.groupby("movieId")["tag"].agg(lambda s: sorted(set(s)))
    df = pd.DataFrame({"movieId": meta.index.to_numpy()})
    df["genres"] = meta["genres"].to_numpy()
    df["tags"] = df["movieId"].map(per_movie)
    year = meta["year"].astype("float64").to_numpy()
    df["year"] = np.where(np.isnan(year), np.nanmedian(year), year)
    return df
