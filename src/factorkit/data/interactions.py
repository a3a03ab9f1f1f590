"""Interactions: the one data type. Users x items with float32 values and raw-id vocabularies."""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping
from functools import cached_property
from typing import Any, Literal, NamedTuple

import numpy as np
import scipy.sparse as sp

from factorkit._lazy import is_pandas
from factorkit._lazy import pandas as pd
from factorkit._validation import Satisfies, check, show
from factorkit.data.hints import Placeholder, hint
from factorkit.data.idmap import IdMap
from factorkit.exceptions import DataError
from factorkit.kernels.ordering import (
    ids_lookup,
    ids_mark,
    pairs_sort_within_rows,
    rows_counting_order,
    sorted_nondecreasing,
    take,
)

__all__ = ["Interactions"]

Duplicates = Literal["error", "last", "mean", "sum"]
DUPLICATE_POLICIES = ("error", "last", "mean", "sum")

#: Turns a 0-based row position of the input into a phrase naming it, e.g.
#: ``"ratings.csv line 17"`` or ``"row 16"``. Readers pass one that knows the file.
Locator = Callable[[int], str]


#: a raw column: a pandas Series, or a NumPy array of numbers (see _series)
Column = Any


def _row_locator(row: int) -> str:
    return f"row {row}"


class Interactions:
    """Users x items interactions with float32 values, optional timestamps and raw-id maps.

    Interactions are immutable. They are stored once in canonical order (sorted by user
    position, then item position); the CSR matrix (users x items) and its CSC view
    (items x users) are built on first use, cached, and shared by everything that asks.
    Selections (:meth:`select_users`, :meth:`take`, the splits in :mod:`factorkit.split`)
    return new Interactions that share the parent's :class:`IdMap` objects, so positions
    agree between a training and a test set.

    Build them with :meth:`from_pandas`, :meth:`from_arrays`, :meth:`from_scipy`, or the
    readers :func:`factorkit.read_csv` and :func:`factorkit.read_parquet`.

    Examples
    --------
    >>> import pandas as pd
    >>> import factorkit as fk
    >>> df = pd.DataFrame({"u": ["ann", "ann", "bob"], "i": [10, 20, 10], "r": [4.0, 3.5, 5.0]})
    >>> data = fk.Interactions.from_pandas(df, user="u", item="i", rating="r")
    >>> data.n_users, data.n_items, len(data)
    (2, 2, 3)
    >>> data.to_csr().toarray()
    array([[4. , 3.5],
           [5. , 0. ]], dtype=float32)
    """

    __slots__ = (
        "__dict__",  # for cached_property
        "_also_seen",
        "_item_index",
        "_timestamps",
        "_user_index",
        "_values",
        "implicit",
        "item_map",
        "item_metadata",
        "user_map",
    )

    def __init__(
        self,
        user_index: np.ndarray,
        item_index: np.ndarray,
        values: np.ndarray,
        user_map: IdMap,
        item_map: IdMap,
        timestamps: np.ndarray | None = None,
        *,
        implicit: bool = False,
        item_metadata: pd.DataFrame | None = None,
        _canonical: bool = False,
    ) -> None:
        """Low-level constructor over positions; prefer the ``from_*`` constructors.

        Positions must be valid for the maps and (user, item) pairs unique. Arrays are
        sorted into canonical order unless ``_canonical`` says they already are.
        """
        users = np.ascontiguousarray(user_index, dtype=np.int32)
        items = np.ascontiguousarray(item_index, dtype=np.int32)
        vals = np.ascontiguousarray(values, dtype=np.float32)
        ts = None if timestamps is None else np.ascontiguousarray(timestamps)
        if not (len(users) == len(items) == len(vals)) or (ts is not None and len(ts) != len(vals)):
            raise DataError(
                "user_index, item_index, values and timestamps must have the same length; got "
                f"{len(users)}, {len(items)}, {len(vals)}" + ("" if ts is None else f", {len(ts)}")
            )
        if not _canonical and len(users):
            order = _canonical_order(users, items, len(user_map), len(item_map))
            if order is not None and len(order) != len(users):
                raise DataError(
                    "Interactions: the (user, item) pairs repeat; build through from_pandas "
                    "or from_arrays with duplicates='last', 'mean' or 'sum' to combine them"
                )
            if order is not None:
                users, items, vals = users[order], items[order], vals[order]
                ts = None if ts is None else ts[order]
        for arr in (users, items, vals, ts):
            if arr is not None:
                arr.flags.writeable = False
        self._user_index = users
        self._item_index = items
        self._values = vals
        self._timestamps = ts
        self.user_map = user_map
        self.item_map = item_map
        self.implicit = bool(implicit)
        self.item_metadata = item_metadata
        self._also_seen: tuple[np.ndarray, np.ndarray] | None = None

    @classmethod
    def _from_csr(
        cls,
        indptr: np.ndarray,
        items: np.ndarray,
        vals: np.ndarray,
        user_map: IdMap,
        item_map: IdMap,
        ts: np.ndarray | None,
        *,
        implicit: bool,
        item_metadata: pd.DataFrame | None,
    ) -> Interactions:
        """Interactions in canonical order given by their CSR row pointer over users
        (int64) instead of a user position per interaction: :attr:`user_index` is then
        made from ``indptr`` on first read, and a fit, which reads ``indptr``, never makes
        it (4 bytes per interaction less). Takes the arrays over (int32 items, float32
        values)."""
        obj = cls.__new__(cls)
        for arr in (indptr, items, vals, ts):
            if arr is not None:
                arr.flags.writeable = False
        obj.__dict__["indptr"] = indptr  # the cached_property's slot
        obj._user_index = None
        obj._item_index = items
        obj._values = vals
        obj._timestamps = ts
        obj.user_map = user_map
        obj.item_map = item_map
        obj.implicit = bool(implicit)
        obj.item_metadata = item_metadata
        obj._also_seen = None
        return obj

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_pandas(
        cls,
        df: pd.DataFrame,
        user: str = "user",
        item: str = "item",
        rating: str | None = None,
        timestamp: str | None = None,
        *,
        duplicates: Duplicates = "error",
        implicit: bool | None = None,
        item_metadata: pd.DataFrame | None = None,
        _locator: Locator | None = None,
        _source: str = "DataFrame",
    ) -> Interactions:
        """Build from a DataFrame with one row per interaction.

        Parameters
        ----------
        df : pandas.DataFrame
            One row per (user, item) interaction.
        user, item : str
            Column names of the raw user and item ids (ints or strings).
        rating : str, optional
            Column of numeric values. Without it the data is implicit feedback and every
            value is 1.0.
        timestamp : str, optional
            Column of numeric or datetime timestamps (datetimes become Unix seconds).
        duplicates : {"error", "last", "mean", "sum"}
            What to do with repeated (user, item) pairs. The default raises
            :class:`~factorkit.exceptions.DataError` naming both rows.
        implicit : bool, optional
            Whether values are implicit feedback (counts, clicks; must be >= 0). Defaults to
            ``rating is None``.
        item_metadata : pandas.DataFrame, optional
            Per-item information (titles, genres) indexed by raw item id.
        """
        if not is_pandas(df, "DataFrame"):
            raise DataError(
                f"from_pandas expects a pandas DataFrame; got {type(df).__name__}. "
                "Use Interactions.from_arrays for arrays."
            )
        wanted = {"user": user, "item": item, "rating": rating, "timestamp": timestamp}
        missing = [(k, c) for k, c in wanted.items() if c is not None and c not in df.columns]
        if missing:
            role, col = missing[0]
            raise DataError(
                f"{_source}: {role} column {col!r} not found; the columns are "
                f"{[str(c) for c in df.columns]}. Pass "
                f"{hint(role, Placeholder('<one of those names>'))}."
            )
        return cls._build(
            df[user],
            df[item],
            None if rating is None else df[rating],
            None if timestamp is None else df[timestamp],
            duplicates=duplicates,
            implicit=rating is None if implicit is None else implicit,
            item_metadata=item_metadata,
            locator=_locator or _row_locator,
            source=_source,
            rating_name=rating or "rating",
            timestamp_name=timestamp or "timestamp",
        )

    @classmethod
    def from_arrays(
        cls,
        users: Any,
        items: Any,
        values: Any = None,
        timestamps: Any = None,
        *,
        duplicates: Duplicates = "error",
        implicit: bool | None = None,
        item_metadata: pd.DataFrame | None = None,
    ) -> Interactions:
        """Build from parallel 1-D arrays of raw user ids, raw item ids and optional values.

        Without ``values`` the data is implicit feedback with every value 1.0.

        Examples
        --------
        >>> import factorkit as fk
        >>> data = fk.Interactions.from_arrays([1, 1, 2], ["a", "b", "a"])
        >>> data.implicit, len(data)
        (True, 3)
        """
        n = len(users)
        for name, arr in (("items", items), ("values", values), ("timestamps", timestamps)):
            if arr is not None and len(arr) != n:
                raise DataError(
                    f"from_arrays: users has {n} entries but {name} has {len(arr)}; "
                    "pass arrays of equal length, one entry per interaction"
                )
        return cls._build(
            _series(users),
            _series(items),
            None if values is None else _series(values),
            None if timestamps is None else _series(timestamps),
            duplicates=duplicates,
            implicit=values is None if implicit is None else implicit,
            item_metadata=item_metadata,
            locator=lambda r: f"entry {r}",
            source="from_arrays",
            rating_name="values",
            timestamp_name="timestamps",
        )

    @classmethod
    def from_scipy(
        cls,
        matrix: Any,
        user_ids: Any = None,
        item_ids: Any = None,
        *,
        implicit: bool = False,
        item_metadata: pd.DataFrame | None = None,
    ) -> Interactions:
        """Build from a scipy sparse matrix (users x items); stored entries are interactions.

        ``user_ids`` / ``item_ids`` name the rows and columns (default ``0 .. n-1``).
        Explicitly stored zeros count as interactions with value 0.

        Examples
        --------
        >>> import scipy.sparse as sp
        >>> import factorkit as fk
        >>> m = sp.csr_matrix([[0, 3.0], [1.0, 0]])
        >>> fk.Interactions.from_scipy(m, user_ids=["u1", "u2"]).n_users
        2
        """
        if not sp.issparse(matrix):
            raise DataError(
                f"from_scipy expects a scipy.sparse matrix; got {type(matrix).__name__}. "
                "Convert with scipy.sparse.csr_matrix(...) first."
            )
        n_users, n_items = matrix.shape
        user_ids = np.arange(n_users) if user_ids is None else user_ids
        item_ids = np.arange(n_items) if item_ids is None else item_ids
        for name, ids, n in (("user_ids", user_ids, n_users), ("item_ids", item_ids, n_items)):
            if len(ids) != n:
                raise DataError(
                    f"from_scipy: {name} has {len(ids)} entries but the matrix has {n} "
                    f"{'rows' if name == 'user_ids' else 'columns'}; pass one id per "
                    f"{'row' if name == 'user_ids' else 'column'}"
                )
        coo = sp.coo_matrix(matrix)
        if coo.nnz:
            keys = coo.row.astype(np.int64) * n_items + coo.col
            keys.sort()
            if coo.nnz > 1 and not (np.diff(keys) > 0).all():
                raise DataError(
                    "from_scipy: the matrix stores duplicate entries for the same cell; "
                    "call matrix.sum_duplicates() first if summing them is what you want"
                )
        vals = coo.data.astype(np.float64, copy=False)
        bad = ~np.isfinite(vals)
        if bad.any():
            k = np.flatnonzero(bad)[0]
            raise DataError(
                f"from_scipy: entry ({coo.row[k]}, {coo.col[k]}) is {vals[k]}; values must be "
                "finite numbers. Remove or replace NaN/inf entries first."
            )
        if implicit and (vals < 0).any():
            k = np.flatnonzero(vals < 0)[0]
            raise DataError(
                f"from_scipy: entry ({coo.row[k]}, {coo.col[k]}) is {vals[k]}, but implicit "
                "feedback must be >= 0 (counts, clicks, play time); pass implicit=False for "
                "signed data"
            )
        try:
            user_map = IdMap(user_ids, kind="user")
            item_map = IdMap(item_ids, kind="item")
        except ValueError as exc:
            raise DataError(f"from_scipy: {exc}") from None
        return cls(
            coo.row,
            coo.col,
            vals,
            user_map,
            item_map,
            implicit=implicit,
            item_metadata=item_metadata,
        )

    @classmethod
    def from_dense(cls, R: Any, missing: float = 0) -> Interactions:
        """Build from a dense users x items matrix of explicit ratings.

        Row ``u`` is user ``u`` and column ``i`` item ``i`` (ids ``0 .. m-1`` and
        ``0 .. n-1``, every row and column kept, even an empty one); every entry that is
        not ``missing`` is an interaction with that rating.

        Parameters
        ----------
        R : array-like of shape (n_users, n_items)
            Finite numbers; entries equal to ``missing`` are not interactions.
        missing : float, default 0
            The marker of entries without a rating: a number, or ``numpy.nan``. With
            ``missing=0`` a rating of 0 cannot be stored; pass ``missing=np.nan`` then.

        Returns
        -------
        Interactions
            Explicit ratings (``implicit`` is False).

        Raises
        ------
        factorkit.exceptions.DataError
            If ``R`` is not a 2-D array of numbers, has no rows or columns, holds no entry
            other than ``missing``, or holds NaN or inf where ``missing`` is not NaN.

        Examples
        --------
        >>> import numpy as np
        >>> import factorkit as fk
        >>> R = np.array([[5.0, 0.0, 3.0],
        ...               [0.0, 4.0, 0.0]])
        >>> data = fk.Interactions.from_dense(R, missing=0)
        >>> data.shape, len(data)
        ((2, 3), 3)
        >>> data.to_pandas().values.tolist()
        [[0.0, 0.0, 5.0], [0.0, 2.0, 3.0], [1.0, 1.0, 4.0]]
        >>> len(fk.Interactions.from_dense([[0.0, np.nan], [2.5, 1.0]], missing=np.nan))
        3
        """
        fn = "Interactions.from_dense"
        check(missing, _MISSING, "missing", fn)
        try:
            arr = np.asarray(R)
        except ValueError:  # a ragged list of lists
            arr = np.asarray(R, dtype=object)
        if arr.ndim != 2:
            raise DataError(
                f"{fn}: R must be a 2-D array (users x items); got {arr.ndim}-D with shape "
                f"{arr.shape}. A single user's ratings are R[np.newaxis, :]."
            )
        if arr.dtype.kind not in "biuf":
            raise DataError(
                f"{fn}: R must hold numbers; got dtype {arr.dtype}. Convert it with "
                "np.asarray(R, dtype=float) first (ragged rows cannot be)."
            )
        if arr.size == 0:
            raise DataError(f"{fn}: R is empty (shape {arr.shape}); expected users x items")
        vals = arr.astype(np.float64, copy=False)
        absent = np.isnan(vals) if np.isnan(missing) else vals == missing
        bad = ~absent & ~np.isfinite(vals)
        if bad.any():
            u, i = (int(k[0]) for k in np.nonzero(bad))
            raise DataError(
                f"{fn}: R[{u}, {i}] is {vals[u, i]}; ratings must be finite numbers. Mark "
                "entries without a rating with the missing value"
                + (" (pass missing=np.nan to use NaN)" if not np.isnan(missing) else "")
            )
        users, items = np.nonzero(~absent)
        if not len(users):
            raise DataError(
                f"{fn}: R has no interactions: every entry equals missing={show(missing)}"
            )
        m, n = arr.shape
        return cls(
            users,
            items,
            vals[users, items],
            IdMap._from_unique(np.arange(m), "user"),
            IdMap._from_unique(np.arange(n), "item"),
            implicit=False,
            _canonical=True,  # np.nonzero walks rows in order, then columns
        )

    @classmethod
    def from_dict(cls, ratings: Any, *, implicit: bool = False) -> Interactions:
        """Build from a mapping ``{(user, item): value}`` of raw ids to ratings.

        Parameters
        ----------
        ratings : dict
            Keys are ``(user, item)`` pairs of raw ids (ints or strings), values finite
            numbers.
        implicit : bool, default False
            Whether the values are implicit feedback (counts; must be >= 0).

        Returns
        -------
        Interactions

        Raises
        ------
        factorkit.exceptions.DataError
            If ``ratings`` is empty, a key is not a (user, item) pair, or a value is not a
            finite number; the message names the key.

        Examples
        --------
        >>> import factorkit as fk
        >>> data = fk.Interactions.from_dict({("ann", 318): 5.0, ("ann", 1): 3.5,
        ...                                   ("bob", 318): 4.0})
        >>> data.n_users, data.n_items, len(data)
        (2, 2, 3)
        >>> data.user_ids.ids.tolist(), data.item_ids.ids.tolist()
        (['ann', 'bob'], [1, 318])
        """
        fn = "Interactions.from_dict"
        if not isinstance(ratings, Mapping):
            raise DataError(
                f"{fn}: ratings must be a dict {{(user, item): value}}; got "
                f"{type(ratings).__name__}"
            )
        if not ratings:
            raise DataError(f"{fn}: ratings is empty; expected at least one (user, item) pair")
        users, items, values = [], [], np.empty(len(ratings), dtype=np.float64)
        for k, (key, value) in enumerate(ratings.items()):
            if not isinstance(key, tuple) or len(key) != 2:
                raise DataError(
                    f"{fn}: key {show(key)} is not a (user, item) pair; write each entry as "
                    "(user, item): value"
                )
            number = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
            if not number or not np.isfinite(value):
                raise DataError(
                    f"{fn}: the value of {show(key)} is {show(value)}; expected a finite number"
                )
            users.append(key[0])
            items.append(key[1])
            values[k] = value
        return cls.from_arrays(users, items, values, implicit=implicit)

    @classmethod
    def _build(
        cls,
        users: Column,
        items: Column,
        values: Column | None,
        timestamps: Column | None,
        *,
        duplicates: str,
        implicit: bool,
        item_metadata: pd.DataFrame | None,
        locator: Locator,
        source: str,
        rating_name: str,
        timestamp_name: str,
    ) -> Interactions:
        """Validate raw columns and build; the one place raw input becomes Interactions."""
        if duplicates not in DUPLICATE_POLICIES:
            raise DataError(
                f"duplicates must be one of {list(DUPLICATE_POLICIES)}; got {duplicates!r}"
            )
        n = len(users)
        user_codes, user_uniques = _factorize(users, "user", locator)
        item_codes, item_uniques = _factorize(items, "item", locator)

        if values is None:
            vals = np.ones(n, dtype=np.float32)
        else:
            vals = _checked_values(values, implicit, rating_name, locator)
        ts = None if timestamps is None else _timestamps(timestamps, timestamp_name, locator)

        user_map = IdMap._from_unique(user_uniques, "user")
        item_map = IdMap._from_unique(item_uniques, "item")
        n_items = len(item_map)

        # the sort takes the codes over and drops them once its keys are built
        codes = [user_codes, item_codes]
        del user_codes, item_codes
        canon = _sort_codes(codes, len(user_map), n_items)
        if canon is None:
            user_codes, item_codes = codes
        if canon is None or not canon.duplicates:
            if canon is not None:  # one array at a time, so at most one extra copy is alive
                item_codes, order, indptr = canon.items, canon.order, canon.indptr
                del canon
                vals = _take(vals, order)
                ts = None if ts is None else _take(ts, order)
                del order
            else:  # already canonical: never keep (and freeze) the caller's own arrays
                indptr = _counts_ptr(user_codes, len(user_map))
                del user_codes
                vals = _own(vals, values)
                ts = _own(ts, timestamps)
            return cls._from_csr(
                indptr, item_codes, vals, user_map, item_map, ts,
                implicit=implicit, item_metadata=item_metadata,
            )  # fmt: skip
        if duplicates == "last":
            # in canonical order a pair's rows are adjacent and in input order: the last
            # of each run is the one to keep
            users_sorted = canon.users
            last = np.ones(len(users_sorted), dtype=bool)
            np.not_equal(users_sorted[1:], users_sorted[:-1], out=last[:-1])
            last[:-1] |= canon.items[1:] != canon.items[:-1]
            sel = canon.order[last]
            return cls(
                users_sorted[last], canon.items[last], vals[sel], user_map, item_map,
                None if ts is None else ts[sel], implicit=implicit, item_metadata=item_metadata,
                _canonical=True,
            )  # fmt: skip

        # Duplicate (user, item) pairs exist: the codes in input order again
        users_sorted = canon.users
        user_codes, item_codes = np.empty_like(users_sorted), np.empty_like(canon.items)
        user_codes[canon.order], item_codes[canon.order] = users_sorted, canon.items
        del canon, users_sorted
        keys = user_codes.astype(np.int64) * n_items + item_codes
        if duplicates == "error":
            first, second, n_pairs = _first_duplicate(keys)
            more = f" ({n_pairs} repeated rows in all)" if n_pairs > 1 else ""
            where = f"{locator(first)} and {locator(second)}"
            if not where.startswith(source):  # a reader's locator already names the file
                where = f"{source}: {where}"
            raise DataError(
                f"{where} both hold user "
                f"{show(user_uniques[user_codes[first]])} and item "
                f"{show(item_uniques[item_codes[first]])}{more}; each (user, item) pair "
                f"may appear once. Pass {hint('duplicates', 'last', 'mean', 'sum')} to combine "
                "them."
            )
        gkeys, gvals, gts = _combine(keys, vals, ts, duplicates)
        return cls(
            (gkeys // n_items).astype(np.int32), (gkeys % n_items).astype(np.int32), gvals,
            user_map, item_map, gts,
            implicit=implicit, item_metadata=item_metadata, _canonical=True,
        )  # fmt: skip

    # ------------------------------------------------------------------ basic facts
    @property
    def n_users(self) -> int:
        """Number of users in the vocabulary (some may have no interactions in a split)."""
        return len(self.user_map)

    @property
    def n_items(self) -> int:
        """Number of items in the vocabulary (some may have no interactions in a split)."""
        return len(self.item_map)

    @property
    def shape(self) -> tuple[int, int]:
        """``(n_users, n_items)``."""
        return (self.n_users, self.n_items)

    def __len__(self) -> int:
        return len(self._values)

    @property
    def nnz(self) -> int:
        """Number of interactions (same as ``len``)."""
        return len(self._values)

    @property
    def user_ids(self) -> IdMap:
        """The raw user ids (an :class:`IdMap`; ``user_ids.ids`` is the array)."""
        return self.user_map

    @property
    def item_ids(self) -> IdMap:
        """The raw item ids (an :class:`IdMap`; ``item_ids.ids`` is the array)."""
        return self.item_map

    @property
    def user_index(self) -> np.ndarray:
        """User position of each interaction (int32, read-only, canonical order).

        Interactions built from raw columns store :attr:`indptr` only and make this array
        on first read (then keep it): fits read ``indptr``, so they never pay for it.
        """
        if self._user_index is None:
            users = _rows_of(self.indptr)
            users.flags.writeable = False
            self._user_index = users
        return self._user_index

    @property
    def item_index(self) -> np.ndarray:
        """Item position of each interaction (int32, read-only, canonical order)."""
        return self._item_index

    @property
    def values(self) -> np.ndarray:
        """Value of each interaction (float32, read-only, canonical order)."""
        return self._values

    @property
    def timestamps(self) -> np.ndarray | None:
        """Timestamp of each interaction, or None (read-only, canonical order)."""
        return self._timestamps

    @property
    def has_timestamps(self) -> bool:
        return self._timestamps is not None

    @property
    def density(self) -> float:
        """Fraction of the users x items cells that hold an interaction."""
        cells = self.n_users * self.n_items
        return len(self) / cells if cells else 0.0

    @cached_property
    def rating_scale(self) -> tuple[float, float]:
        """``(min, max)`` of the values; ``(nan, nan)`` when empty."""
        if not len(self):
            return (float("nan"), float("nan"))
        return (float(self._values.min()), float(self._values.max()))

    @cached_property
    def user_counts(self) -> np.ndarray:
        """Interactions per user position (int64, length ``n_users``)."""
        return np.diff(self.indptr).astype(np.int64)

    @cached_property
    def item_counts(self) -> np.ndarray:
        """Interactions per item position (int64, length ``n_items``)."""
        return _bincount(self._item_index, self.n_items)

    @cached_property
    def indptr(self) -> np.ndarray:
        """CSR row pointer over users (int64, length ``n_users + 1``)."""
        counts = _bincount(self.user_index, self.n_users)
        ptr = np.zeros(self.n_users + 1, dtype=np.int64)
        np.cumsum(counts, out=ptr[1:])
        ptr.flags.writeable = False
        return ptr

    # ------------------------------------------------------------------ matrices
    @cached_property
    def _csr(self) -> sp.csr_matrix:
        m = sp.csr_matrix(
            (self._values, self._item_index, self.indptr.astype(np.int32)
             if len(self) < 2**31 else self.indptr),
            shape=self.shape,
            copy=False,
        )  # fmt: skip
        m.has_sorted_indices = True
        m.has_canonical_format = True
        return m

    @cached_property
    def _csc(self) -> sp.csc_matrix:
        m = self._csr.tocsc()
        m.has_sorted_indices = True
        for arr in (m.data, m.indices, m.indptr):
            arr.flags.writeable = False
        return m

    def _item_major(self, values: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
        """``(indptr over items (int64), user positions (int32), values)`` in item-major
        order: the item half-step's arrays of a solver.

        ``values`` (one per interaction, in canonical order, any dtype; default the
        interactions' own) is moved along with the user positions, in one transposition
        that allocates only its output (no permutation array, no cache: the caller's
        arrays are freed with it). With ``values=None`` and :meth:`to_csc` already cached
        that cache is returned instead.
        """
        if values is None and "_csc" in self.__dict__:
            csc = self._csc
        else:
            vals = self._values if values is None else np.ascontiguousarray(values)
            ptr = self.indptr.astype(np.int32) if len(self) < 2**31 else self.indptr
            csc = sp.csr_matrix((vals, self._item_index, ptr), shape=self.shape, copy=False).tocsc()
        return np.asarray(csc.indptr, dtype=np.int64), csc.indices, csc.data

    def to_csr(self) -> sp.csr_matrix:
        """The users x items matrix as float32 CSR (cached and shared: do not modify)."""
        return self._csr

    def to_csc(self) -> sp.csc_matrix:
        """The same matrix in CSC form: its ``indptr`` runs over items, ``indices`` are users.

        Equivalent to the items x users CSR transpose; cached and shared.
        """
        return self._csc

    def to_pandas(self) -> pd.DataFrame:
        """One row per interaction: columns ``user``, ``item``, ``rating`` [, ``timestamp``].

        Ids are the raw ids; the value column is named ``rating`` for explicit data and
        ``value`` for implicit data.
        """
        cols = {
            "user": self.user_map.to_ids(self.user_index),
            "item": self.item_map.to_ids(self._item_index),
            ("value" if self.implicit else "rating"): self._values,
        }
        if self._timestamps is not None:
            cols["timestamp"] = self._timestamps
        return pd.DataFrame(cols)

    # ------------------------------------------------------------------ selection
    def take(self, positions: Any) -> Interactions:
        """Interactions at the given interaction positions (or boolean mask), same id maps."""
        pos = np.asarray(positions)
        if pos.dtype == bool:
            if len(pos) != len(self):
                raise DataError(
                    f"take: boolean mask has length {len(pos)} but there are {len(self)} "
                    "interactions"
                )
            pos = np.flatnonzero(pos)
        else:
            pos = _sorted_unique(pos.astype(np.int64))  # sorted keeps canonical order
            if len(pos) and (pos[0] < 0 or pos[-1] >= len(self)):
                raise DataError(
                    f"take: positions must lie in [0, {len(self)}); got "
                    f"{pos[0] if pos[0] < 0 else pos[-1]}"
                )
        return self._derive(pos)

    def _derive(self, sorted_positions: np.ndarray) -> Interactions:
        p = sorted_positions
        return Interactions(
            self.user_index[p],
            self._item_index[p],
            self._values[p],
            self.user_map,
            self.item_map,
            None if self._timestamps is None else self._timestamps[p],
            implicit=self.implicit,
            item_metadata=self.item_metadata,
            _canonical=True,
        )

    def to_implicit(self, min_value: float | None = None) -> Interactions:
        """Implicit feedback from these interactions: every kept value becomes 1.0.

        ``min_value`` keeps only interactions with value >= it (e.g. ratings of 4 stars
        and up as positives). Id maps and timestamps are shared with ``self``. The
        interactions left out stay known as :attr:`also_seen`: a model fitted on the
        result does not recommend a user an item they rated below ``min_value``.

        Examples
        --------
        >>> import factorkit as fk
        >>> data = fk.Interactions.from_arrays([1, 1, 2], [5, 6, 5], [4.5, 2.0, 4.0])
        >>> liked = data.to_implicit(min_value=4.0)
        >>> liked.implicit, len(liked), liked.values.tolist()
        (True, 2, [1.0, 1.0])
        """
        if min_value is None:
            keep = np.arange(len(self))
        else:
            if isinstance(min_value, bool) or not np.isfinite(float(min_value)):
                raise DataError(
                    f"to_implicit: min_value must be a finite number; got {min_value!r}"
                )
            keep = np.flatnonzero(self._values >= min_value)
        out = Interactions(
            self.user_index[keep],
            self._item_index[keep],
            np.ones(len(keep), dtype=np.float32),
            self.user_map,
            self.item_map,
            None if self._timestamps is None else self._timestamps[keep],
            implicit=True,
            item_metadata=self.item_metadata,
            _canonical=True,
        )
        left = np.ones(len(self), dtype=bool)
        left[keep] = False
        users, items = self.user_index[left], self._item_index[left]
        if self._also_seen is not None:
            users = np.concatenate([users, self._also_seen[0]])
            items = np.concatenate([items, self._also_seen[1]])
        out._also_seen = (users, items) if len(users) else None
        return out

    def select_users(self, users: Any) -> Interactions:
        """Interactions of the given raw user ids only (same id maps)."""
        mask = np.zeros(self.n_users, dtype=bool)
        mask[self.user_map.to_index(users)] = True
        return self._derive(np.flatnonzero(mask[self.user_index]))

    def select_items(self, items: Any) -> Interactions:
        """Interactions with the given raw item ids only (same id maps)."""
        mask = np.zeros(self.n_items, dtype=bool)
        mask[self.item_map.to_index(items)] = True
        return self._derive(np.flatnonzero(mask[self._item_index]))

    def user_items(self, user: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(raw item ids, values)`` of one raw user id."""
        u = int(self.user_map.to_index(user)[0])
        lo, hi = self.indptr[u], self.indptr[u + 1]
        return self.item_map.to_ids(self._item_index[lo:hi]), self._values[lo:hi]

    @property
    def also_seen(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Pairs the users interacted with that are not feedback here, or None.

        ``(user positions, item positions)`` in this object's vocabularies: the
        interactions :meth:`to_implicit` left out (e.g. ratings below ``min_value``).
        They are not training signal, but the users did see those items, so a model
        fitted on this object leaves them out of ``recommend(..., exclude_seen=True)``
        as it does its training items. :meth:`compact` keeps them; splits and other
        selections (:meth:`take`, :meth:`select_users`, ...) drop them, so that a test
        set's interactions never leak into its training set.
        """
        return self._also_seen

    def compact(self) -> Interactions:
        """Interactions whose id maps hold only users and items that have interactions.

        ``self`` itself when every user and item already has one (Interactions are
        immutable, so nothing is copied: a fit on 25M ratings saves 200 MB).
        """
        users = np.flatnonzero(self.user_counts)
        items = np.flatnonzero(self.item_counts)
        if len(users) == self.n_users and len(items) == self.n_items:
            return self
        u_new = np.full(self.n_users, -1, dtype=np.int32)
        u_new[users] = np.arange(len(users), dtype=np.int32)
        i_new = np.full(self.n_items, -1, dtype=np.int32)
        i_new[items] = np.arange(len(items), dtype=np.int32)
        out = Interactions(
            u_new[self.user_index],
            i_new[self._item_index],
            self._values,
            self.user_map.subset(users),
            self.item_map.subset(items),
            self._timestamps,
            implicit=self.implicit,
            item_metadata=self.item_metadata,
            _canonical=True,  # relabelling is monotone, so the order stays canonical
        )
        if self._also_seen is not None:
            # pairs whose user or item has no feedback cannot be in a model: drop them
            u, i = u_new[self._also_seen[0]], i_new[self._also_seen[1]]
            known = (u >= 0) & (i >= 0)
            out._also_seen = (u[known], i[known])
        return out

    def shares_ids_with(self, other: Interactions) -> bool:
        """Whether both use the same user and item vocabularies (positions agree)."""
        return self.user_map == other.user_map and self.item_map == other.item_map

    def __repr__(self) -> str:
        kind = "implicit interactions" if self.implicit else "ratings"
        parts = [
            f"Interactions: {self.n_users:,} users x {self.n_items:,} items, {len(self):,} {kind}"
        ]
        if len(self):
            lo, hi = self.rating_scale
            parts.append(f"values in [{_fmt(lo)}, {_fmt(hi)}]")
        parts.append(f"density {self.density:.3%}")
        if self._timestamps is not None and len(self):
            parts.append(
                f"timestamps {show(self._timestamps.min())}..{show(self._timestamps.max())}"
            )
        if self.item_metadata is not None:
            parts.append(f"item metadata {list(map(str, self.item_metadata.columns))}")
        return ", ".join(parts)


# ---------------------------------------------------------------------- helpers
def _sorted_unique(a: np.ndarray) -> np.ndarray:
    """Sorted distinct values (np.unique is hash-based and far slower at scale here)."""
    a = np.sort(a)
    if len(a) > 1:
        a = a[np.concatenate(([True], a[1:] != a[:-1]))]
    return a


def _checked_values(
    values: Column, implicit: bool, rating_name: str, locator: Locator
) -> np.ndarray:
    """The values as float32, each a finite number (and >= 0 for implicit feedback)."""
    vals = _numeric(values, rating_name, locator)
    if implicit and len(vals) and vals.min() < 0:
        row = int(np.flatnonzero(vals < 0)[0])
        raise DataError(
            f"{locator(row)}: {rating_name} {_fmt(vals[row])} is negative, but implicit "
            "feedback must be >= 0 (counts, clicks, play time); pass "
            f"{hint('implicit', False)} for signed ratings"
        )
    return vals.astype(np.float32, copy=False)


def _combine(
    keys: np.ndarray, vals: np.ndarray, ts: np.ndarray | None, how: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """One entry per distinct (user, item) key, in key order: values combined by ``how``
    ("mean" or "sum"), timestamps by the latest."""
    frame = pd.DataFrame({"k": keys, "v": vals.astype(np.float64)})
    if ts is not None:
        frame["t"] = ts
    agg = {"v": how, **({"t": "max"} if ts is not None else {})}
    grouped = frame.groupby("k", sort=True).agg(agg)
    return (
        grouped.index.to_numpy(),
        grouped["v"].to_numpy(np.float32),
        None if ts is None else grouped["t"].to_numpy(),
    )


def _first_duplicate(keys: np.ndarray) -> tuple[int, int, int]:
    """The rows of the first repeated key and its next occurrence, and how many rows
    repeat an earlier one in all."""
    dup = pd.Series(keys).duplicated(keep=False).to_numpy()
    rows = np.flatnonzero(dup)
    first = rows[0]
    second = rows[1:][keys[rows[1:]] == keys[first]][0]
    n_pairs = int(dup.sum() - pd.Series(keys[dup]).nunique())
    return int(first), int(second), n_pairs


def _is_missing_marker(value: Any) -> bool:
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, (bool, np.bool_))
        and (np.isnan(value) or np.isfinite(value))
    )


#: from_dense's marker of entries without a rating
_MISSING = Satisfies(_is_missing_marker, "a finite number or numpy.nan")


def _series(values: Any) -> Column:
    """A column without numpy's silent casts (``["a", 7]`` stays mixed): a NumPy array of
    numbers as it is (so building from arrays never imports pandas), anything else a
    pandas Series.

    Never a copy of a NumPy array (pandas 3 copies by default: 12 bytes per interaction
    of a build); _build copies whatever it would otherwise keep of the caller's array.
    """
    if is_pandas(values, "Series"):
        return values.reset_index(drop=True)
    if isinstance(values, np.ndarray):
        if values.dtype.kind in "iuf":
            return values.reshape(-1)
        return pd.Series(values.reshape(-1), copy=False)
    return pd.Series(list(values))


def _array(col: Column) -> np.ndarray:
    """A column's values as an array (a Series' ``to_numpy()``)."""
    return col if isinstance(col, np.ndarray) else col.to_numpy()


def _own(arr: np.ndarray | None, source: Column | None) -> np.ndarray | None:
    """``arr``, copied when it shares memory with the caller's column ``source``."""
    if arr is None or source is None:
        return arr
    src = _array(source)
    if isinstance(src, np.ndarray) and np.may_share_memory(arr, src):
        return arr.copy()
    return arr


def _fmt(x: float) -> str:
    return f"{float(x):g}"


def _factorize(col: Column, role: str, locator: Locator) -> tuple[np.ndarray, np.ndarray]:
    if col.dtype.kind in "iu" and len(col) >= 1 << 16:
        dense = _factorize_small_ints(_array(col))
        if dense is not None:
            return dense
    if isinstance(col, np.ndarray) and col.dtype.kind in "iu" and len(col) < 1 << 16:
        # pd.factorize(sort=True)'s codes and uniques without importing pandas (a wide
        # range of many ids still goes to pandas' hash table: a sort would be slower)
        uniques, codes = np.unique(col, return_inverse=True)
    else:
        try:
            codes, uniques = pd.factorize(col, sort=True, use_na_sentinel=True)
        except TypeError:  # ids of kinds that do not compare: keep the order of appearance
            codes, uniques = pd.factorize(col, sort=False, use_na_sentinel=True)
    if len(codes) and codes.min() < 0:
        row = int(np.flatnonzero(codes < 0)[0])
        raise DataError(
            f"{locator(row)}: {role} id is missing; every interaction needs a {role} id. "
            "Fill or remove the incomplete rows first."
        )
    uniques = np.asarray(uniques.to_numpy() if hasattr(uniques, "to_numpy") else uniques)
    if uniques.dtype.kind in "USO" or uniques.dtype.kind not in "iub":
        if uniques.dtype.kind == "f":
            frac = uniques != np.round(uniques)
            if frac.any():
                bad = uniques[np.flatnonzero(frac)[0]]
                row = int(np.flatnonzero(_array(col) == bad)[0])
                raise DataError(
                    f"{locator(row)}: {role} id {bad!r} is not a whole number; ids must be "
                    "integers or strings"
                )
            uniques = uniques.astype(np.int64)
        else:
            uniques = uniques.astype(object)
    elif uniques.dtype.kind in "iu" and uniques.dtype.itemsize < 8:
        uniques = uniques.astype(np.int64)  # int ids are int64 whatever the column's width
    return codes.astype(np.int32, copy=False), uniques


def _factorize_small_ints(values: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``pd.factorize(values, sort=True)`` for integers of a modest range, by table lookup.

    Same codes and uniques (int64), but int32 codes are written directly, in parallel: no
    hash table and no intp codes array to narrow afterwards, which matters for tens of
    millions of ids. None when the ids are spread too wide for a table.
    """
    n = len(values)
    lo, hi = int(values.min()), int(values.max())
    if hi - lo >= max(n // 2, 1 << 20):
        return None
    lo_typed = values.dtype.type(lo)
    present = np.zeros(hi - lo + 1, dtype=np.uint8)
    ids_mark(values, lo_typed, present)
    table = np.cumsum(present, dtype=np.int32)
    table -= 1
    codes = np.empty(n, dtype=np.int32)
    ids_lookup(values, lo_typed, table, codes)
    return codes, np.flatnonzero(present) + np.int64(lo)


def _numeric(col: Column, name: str, locator: Locator) -> np.ndarray:
    """Column -> float64 array (float32 stays float32); raises on text, NaN or inf."""
    arr = _array(col)
    if arr.dtype.kind not in "iufb":
        converted = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64)
        not_number = np.isnan(converted) & col.notna().to_numpy()
        if not_number.any():
            row = int(np.flatnonzero(not_number)[0])
            raise DataError(f"{locator(row)}: {name} {arr[row]!r} is not a number")
        arr = converted
    if arr.dtype != np.float32:
        arr = arr.astype(np.float64, copy=False)
    # min and max are NaN or infinite when some value is: no mask of n booleans to make
    if len(arr) and not (np.isfinite(arr.min()) and np.isfinite(arr.max())):
        row = int(np.flatnonzero(~np.isfinite(arr))[0])
        what = "missing" if np.isnan(arr[row]) else f"{arr[row]} (infinite)"
        raise DataError(
            f"{locator(row)}: {name} is {what}; every {name} must be a finite number. "
            "Fill or remove that row."
        )
    big = np.finfo(np.float32).max
    if len(arr) and arr.dtype == np.float64 and (arr.max() > big or arr.min() < -big):
        row = int(np.flatnonzero(np.abs(arr) > big)[0])
        raise DataError(
            f"{locator(row)}: {name} {arr[row]:g} does not fit in float32; rescale the values"
        )
    return arr


def _timestamps(col: Column, name: str, locator: Locator) -> np.ndarray:
    if not isinstance(col, np.ndarray) and pd.api.types.is_datetime64_any_dtype(col):
        if col.isna().any():
            row = int(np.flatnonzero(col.isna().to_numpy())[0])
            raise DataError(f"{locator(row)}: {name} is missing; fill or remove that row")
        dt = col.dt.tz_convert("UTC").dt.tz_localize(None) if col.dt.tz is not None else col
        return dt.to_numpy().astype("datetime64[s]").astype(np.int64)
    arr = _array(col)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64, copy=False)
    vals = _numeric(col, name, locator).astype(np.float64, copy=False)
    if (vals == np.round(vals)).all():
        return vals.astype(np.int64)
    return vals


def _canonical_order(
    users: np.ndarray, items: np.ndarray, n_users: int, n_items: int
) -> np.ndarray | None:
    """Permutation sorting by (user, item), without duplicates collapsed.

    Returns None when already canonical. When (user, item) pairs repeat, the returned
    array is shorter than the input (the caller then handles duplicates).
    """
    canon = _canonical_sort(users, items, n_users, n_items)
    if canon is None:
        return None
    if canon.duplicates:
        return canon.order[: len(canon.order) - 1]
    return canon.order


class _Sorted(NamedTuple):
    order: np.ndarray  # permutation of the input rows into canonical order
    items: np.ndarray  # items[order], int32
    indptr: np.ndarray  # CSR row pointer over users (int64)
    duplicates: bool  # whether some (user, item) pair repeats

    @property
    def users(self) -> np.ndarray:
        """users[order], int32 (made on each call from ``indptr``: 4 bytes a pair)."""
        return _rows_of(self.indptr)


def _rows_of(indptr: np.ndarray) -> np.ndarray:
    """The row (int32) of every entry of a CSR layout with row pointer ``indptr``."""
    return np.repeat(np.arange(len(indptr) - 1, dtype=np.int32), np.diff(indptr))


def _canonical_sort(
    users: np.ndarray, items: np.ndarray, n_users: int, n_items: int
) -> _Sorted | None:
    """Sort rows by (user, item) stably; None when they already are, without repeats."""
    return _sort_codes([users, items], n_users, n_items)


def _sort_codes(codes: list[np.ndarray], n_users: int, n_items: int) -> _Sorted | None:
    """:func:`_canonical_sort` of ``codes = [users, items]``, which it may consume.

    A stable counting sort by user gives the permutation (int32; the identity when users
    already come in order, as in most ratings files), then each user's items are sorted
    in parallel, in cache. ``codes`` is consumed as it goes: a caller that passed its
    only references has the user codes freed once the permutation exists and the item
    codes once the sorted items do, so that the sort never holds more than 8 bytes per
    interaction beyond the codes it sorts (the int64 keys of a comparison or radix sort
    would hold 16). When None is returned ``codes`` is left as it was.
    """
    users, items = codes
    n = len(users)
    if n == 0 or _is_sorted_unique(users, items):
        return None
    u = np.ascontiguousarray(users, dtype=np.int32)
    i = np.ascontiguousarray(items, dtype=np.int32)
    del users, items
    if n >= 2**31 - 1:  # positions no longer fit the kernels' int32 order
        order = np.argsort(u.astype(np.int64) * max(n_items, 1) + i, kind="stable")
        users_sorted, items_sorted = u[order], i[order]
        same = (items_sorted[1:] == items_sorted[:-1]) & (users_sorted[1:] == users_sorted[:-1])
        indptr = _counts_ptr(u, n_users)
        return _Sorted(order, items_sorted, indptr, bool(same.any()))
    user_ptr = _counts_ptr(u, n_users)
    if sorted_nondecreasing(u):  # only each user's items to sort
        order = np.arange(n, dtype=np.int32)
    else:
        order = np.empty(n, dtype=np.int32)
        rows_counting_order(u, user_ptr, order)
    codes[0] = None  # the user codes are in user_ptr and order now
    del u
    items_sorted = np.empty(n, dtype=np.int32)
    repeats = pairs_sort_within_rows(user_ptr, i, order, items_sorted)
    codes.clear()
    return _Sorted(order, items_sorted, user_ptr, bool(repeats))


def _counts_ptr(codes: np.ndarray, n: int) -> np.ndarray:
    """Cumulative counts of each code, starting at 0 (a CSR ``indptr``)."""
    ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(_bincount(codes, n), out=ptr[1:])
    return ptr


def _bincount(codes: np.ndarray, n: int) -> np.ndarray:
    """``np.bincount(codes, minlength=n)`` (int64) by chunks: np.bincount casts int32
    codes to int64 first, 8 bytes per interaction at once (the peak of a build)."""
    step = max(1 << 20, n)
    if len(codes) <= step:
        return np.bincount(codes, minlength=n).astype(np.int64, copy=False)
    counts = np.zeros(n, dtype=np.int64)
    for lo in range(0, len(codes), step):
        counts += np.bincount(codes[lo : lo + step], minlength=n)
    return counts


def _take(values: np.ndarray, order: np.ndarray) -> np.ndarray:
    """``values[order]`` on all cores."""
    out = np.empty(len(order), dtype=values.dtype)
    take(np.ascontiguousarray(values), order, out)
    return out


def _is_sorted_unique(users: np.ndarray, items: np.ndarray) -> bool:
    """Whether (user, item) pairs strictly increase (boolean temporaries of a chunk)."""
    step = 1 << 20
    for lo in range(0, max(len(users) - 1, 0), step):
        u, i = users[lo : lo + step + 1], items[lo : lo + step + 1]
        u0, u1 = u[:-1], u[1:]
        if (u1 < u0).any() or not ((u1 > u0) | (i[1:] > i[:-1])).all():
            return False
    return True
