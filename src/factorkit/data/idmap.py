"""IdMap: translate raw ids (ints or strings) to dense positions and back."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from factorkit._lazy import is_pandas
from factorkit._lazy import pandas as pd
from factorkit._validation import show
from factorkit.exceptions import UnknownIdError

__all__ = ["IdMap"]

#: lookups of at most this many ids probe the hash table one by one (see IdMap.lookup)
_SMALL_LOOKUP = 16


class IdMap:
    """An immutable vocabulary of raw ids, numbered ``0 .. len - 1`` in order of appearance.

    Raw ids may be integers or strings; lookups are hash based (a :class:`pandas.Index`),
    so translating millions of ids costs one vectorised pass.

    Parameters
    ----------
    ids : array-like
        The raw ids, unique. Position ``p`` holds the raw id of dense index ``p``.
    kind : str
        What the ids name (``"user"`` or ``"item"``); used in error messages.

    Examples
    --------
    >>> from factorkit import IdMap
    >>> m = IdMap(["alice", "bob"], kind="user")
    >>> m.to_index(["bob", "alice"]).tolist()
    [1, 0]
    >>> m.to_ids([0]).tolist()
    ['alice']
    """

    __slots__ = ("_id_type", "_ids", "_index_cache", "kind")

    def __init__(self, ids: Iterable[Any] | np.ndarray, kind: str = "id") -> None:
        arr = _as_id_array(ids)
        index = None
        if arr.dtype.kind in "iu":  # no pandas needed to check integers
            order = np.argsort(arr, kind="stable")
            ordered = arr[order]
            again = order[1:][ordered[1:] == ordered[:-1]]  # later occurrences
            if len(again):
                dup = arr[again.min()]  # the first repeat in order, as pandas reports it
                raise ValueError(f"IdMap ids must be unique; {kind} id {show(dup)} appears twice")
        else:
            index = pd.Index(arr, copy=False)
            if not index.is_unique:
                dup = index[index.duplicated()][0]
                raise ValueError(f"IdMap ids must be unique; {kind} id {show(dup)} appears twice")
        arr.flags.writeable = False
        self._ids = arr
        self._index_cache = index
        self.kind = kind
        self._id_type: str | None = ""  # "" until worked out (see _vocabulary_type)

    @classmethod
    def _from_unique(cls, ids: np.ndarray, kind: str, index: pd.Index | None = None) -> IdMap:
        """Build without the uniqueness check, for ids produced by factorize."""
        obj = cls.__new__(cls)
        ids = _as_id_array(ids)
        ids.flags.writeable = False
        obj._ids = ids
        obj._index_cache = index
        obj.kind = kind
        obj._id_type = ""
        return obj

    @property
    def _index(self) -> pd.Index:
        """The hash table of the ids (a pandas Index), built on the first lookup: building
        data and fitting a model never need it (nor pandas)."""
        if self._index_cache is None:
            self._index_cache = pd.Index(self._ids, copy=False)
        return self._index_cache

    @property
    def ids(self) -> np.ndarray:
        """The raw ids as a read-only array; ``ids[p]`` is the raw id at position ``p``."""
        return self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def __getitem__(self, position: int) -> Any:
        """Raw id at ``position`` (a Python scalar)."""
        raw = self._ids[position]
        return raw.item() if isinstance(raw, np.generic) else raw

    def __contains__(self, raw_id: Any) -> bool:
        return raw_id in self._index

    def __iter__(self):
        return iter(self._ids.tolist())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, IdMap):
            return NotImplemented
        return self is other or (
            len(self) == len(other) and bool(np.array_equal(self._ids, other._ids))
        )

    def __hash__(self) -> int:
        return id(self)

    def __repr__(self) -> str:
        head = ", ".join(repr(x) for x in self._ids[:3].tolist())
        more = ", ..." if len(self) > 3 else ""
        return f"IdMap({len(self)} {self.kind} ids: [{head}{more}])"

    def lookup(self, raw_ids: Any) -> np.ndarray:
        """Positions of ``raw_ids``; unknown ids map to ``-1``.

        Accepts a scalar or any 1-D array-like; always returns a 1-D int64 array.

        Raises
        ------
        UnknownIdError
            When every id is of the other type than the vocabulary's: strings such as
            ``"1"`` for integer ids, or integers for string ids (a mistake that would
            otherwise make every id unknown). Mixed vocabularies and mixed queries are
            looked up as they are.
        """
        values = _as_lookup_array(raw_ids)
        if values.size == 0:
            return np.empty(0, dtype=np.int64)
        self._check_type(values)
        if values.size <= _SMALL_LOOKUP:
            # get_indexer costs ~20 us of set-up whatever the size: a few hash probes are
            # ~0.5 us each, which matters on the single-user paths (recommend, fold-in)
            return np.fromiter(
                (self._position(v) for v in values.tolist()), dtype=np.int64, count=values.size
            )
        return self._index.get_indexer(values).astype(np.int64, copy=False)

    def _position(self, raw_id: Any) -> int:
        try:
            pos = self._index.get_loc(raw_id)
        except (KeyError, TypeError, pd.errors.InvalidIndexError):
            return -1
        return pos if isinstance(pos, (int, np.integer)) else -1

    def _vocabulary_type(self) -> str | None:
        """ "int" or "str" when every id is of that type, else None; worked out once."""
        if self._id_type == "":
            self._id_type = _id_type(self._ids) if len(self._ids) else None
        return self._id_type

    def _check_type(self, values: np.ndarray) -> None:
        """Raise when the queried ids are all of the other type than the vocabulary's."""
        vocab = self._vocabulary_type()
        if vocab is None:
            return
        query = _id_type(values)
        if query is None or query == vocab:
            return
        bad, example = values[0], self._ids[0]
        if vocab == "str":
            hint = f"; pass strings, e.g. {str(bad)!r}"
        else:
            try:
                hint = f"; pass integers, e.g. {int(bad)}"
            except (TypeError, ValueError):
                hint = "; pass integers"
        raise UnknownIdError(
            f"{self.kind} id {show(bad)} is {_TYPE_WORDS[query][0]}, but the {len(self)} "
            f"{self.kind} ids here are {_TYPE_WORDS[vocab][1]} (e.g. {show(example)}){hint}"
        )

    def to_index(self, raw_ids: Any) -> np.ndarray:
        """Positions of ``raw_ids``; raises :class:`UnknownIdError` naming the first unknown id."""
        pos = self.lookup(raw_ids)
        missing = pos < 0
        if missing.any():
            values = _as_lookup_array(raw_ids)
            bad = values[np.flatnonzero(missing)[0]]
            n_bad = int(missing.sum())
            extra = f" (and {n_bad - 1} more)" if n_bad > 1 else ""
            raise UnknownIdError(
                f"unknown {self.kind} id {show(bad)}{extra}: it is not among the "
                f"{len(self)} {self.kind} ids of the data; check the id's spelling and type "
                f"(ids here look like {show(self._ids[0])})"
                if len(self)
                else f"unknown {self.kind} id {show(bad)}: there are no {self.kind} ids"
            )
        return pos

    def to_ids(self, positions: Any) -> np.ndarray:
        """Raw ids at ``positions`` (1-D array of ints)."""
        return self._ids[np.asarray(positions, dtype=np.int64)]

    def subset(self, positions: np.ndarray) -> IdMap:
        """A new IdMap holding only the ids at ``positions``, in that order."""
        return IdMap._from_unique(self._ids[np.asarray(positions, dtype=np.int64)], self.kind)


_TYPE_WORDS = {"int": ("an integer", "integers"), "str": ("a string", "strings")}


def _id_type(values: np.ndarray) -> str | None:
    """ "int" or "str" when every value is of that type, else None (mixed, floats, ...)."""
    if values.dtype.kind in "iu":
        return "int"
    if values.dtype.kind != "O":
        return None
    inferred = pd.api.types.infer_dtype(values, skipna=False)
    return {"integer": "int", "string": "str"}.get(inferred)


def _as_id_array(ids: Any) -> np.ndarray:
    arr = ids.to_numpy() if is_pandas(ids, "Index", "Series") else _as_array(ids)
    if arr.ndim != 1:
        arr = arr.reshape(-1)
    if arr.dtype.kind in "US":
        arr = arr.astype(object)
    return arr.copy() if not arr.flags.owndata else arr


def _as_lookup_array(raw_ids: Any) -> np.ndarray:
    if is_pandas(raw_ids, "Index", "Series"):
        return raw_ids.to_numpy()
    if isinstance(raw_ids, (str, bytes)) or np.isscalar(raw_ids):
        return np.asarray([raw_ids], dtype=object if isinstance(raw_ids, str) else None)
    arr = _as_array(raw_ids)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.dtype.kind in "US":
        arr = arr.astype(object)
    return arr.reshape(-1)


def _as_array(values: Any) -> np.ndarray:
    """``np.asarray``, except that a list mixing numbers and strings keeps each element's
    type (numpy would turn ``[7, "a"]`` into the strings ``["7", "a"]``)."""
    arr = np.asarray(values)
    if arr.dtype.kind in "US" and not isinstance(values, np.ndarray):
        arr = np.array(values, dtype=object)
    return arr
