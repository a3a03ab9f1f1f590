"""DistributedInteractions: interactions partitioned into user and item row-blocks on Dask
workers, built without ever collecting the interactions on the client.

Construction (every step a task on the workers; only vocabularies and per-row counts
come back to the client, never an interaction):

1. each input partition is checked (columns, missing ids, id kinds, numeric finite
   values) and its sorted unique user and item ids are taken;
2. the unique ids are merged pairwise on the workers into the two vocabularies (sorted,
   so positions are those a one-machine :class:`~factorkit.Interactions` gives);
3. each partition is encoded to positions and split by destination block: users are cut
   into ``n_blocks`` contiguous position ranges of about equal rating counts, items too;
4. each block gathers its pieces from all partitions and becomes a CSR matrix over its
   rows, with a duplicate (user, item) check naming the partitions involved.

A user block is Spark's in-block (``ml/recommendation/ALS.scala``): its ratings by user,
with the column indices compacted to the items it references (``cols``), which is also
its out-block routing table: the item factors a block needs are exactly ``Y[cols]``.
Blocks are pinned to workers round-robin and keep their lineage, so a block lost with a
worker is recomputed from the source data.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any

import numpy as np

from factorkit._lazy import pandas as pd
from factorkit.data.idmap import IdMap
from factorkit.distributed._cluster import (
    DEFAULT_TIMEOUT,
    ClusterError,
    get_client,
    wait_all,
    worker_addresses,
)
from factorkit.exceptions import DataError, InvalidParameterError

__all__ = ["DistributedInteractions", "from_dask", "read_csv", "read_parquet"]


@dataclass
class Block:
    """One row-block: CSR over rows ``lo .. hi - 1`` of one side (``side``).

    ``indices`` are local positions into ``cols`` (sorted global positions of the other
    side that the block references), ``values`` float32.
    """

    side: str
    lo: int
    hi: int
    indptr: np.ndarray
    cols: np.ndarray
    indices: np.ndarray
    values: np.ndarray

    @property
    def n_rows(self) -> int:
        return self.hi - self.lo

    @property
    def nnz(self) -> int:
        return len(self.values)


# ---------------------------------------------------------------------- worker tasks
def _plain(x: Any) -> Any:
    """numpy scalars -> Python scalars, so messages read ``5`` not ``np.int64(5)``."""
    return x.item() if isinstance(x, np.generic) else x


def _ids(col: pd.Series, role: str, where: str) -> np.ndarray:
    """Raw ids of one partition as int64 or str objects; raises naming the partition."""
    if col.isna().any():
        row = int(np.flatnonzero(col.isna().to_numpy())[0])
        raise DataError(
            f"{where} row {row}: {role} id is missing; every interaction needs a {role} id. "
            "Fill or drop the incomplete rows first (ddf.dropna(subset=[...]))."
        )
    arr = col.to_numpy()
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64, copy=False)
    if arr.dtype.kind == "f":
        frac = arr != np.round(arr)
        if frac.any():
            row = int(np.flatnonzero(frac)[0])
            raise DataError(
                f"{where} row {row}: {role} id {arr[row]!r} is not a whole number; ids must "
                "be integers or strings"
            )
        return arr.astype(np.int64)
    arr = arr.astype(object)
    is_str = np.fromiter((isinstance(x, str) for x in arr), bool, len(arr))
    if not is_str.any():  # an object column holding integers (e.g. after dd.concat)
        is_int = np.fromiter(
            (isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in arr),
            bool,
            len(arr),
        )
        if is_int.all():
            return arr.astype(np.int64)
    if not is_str.all():
        row = int(np.flatnonzero(~is_str)[0])
        raise DataError(
            f"{where} row {row}: {role} id {arr[row]!r} (a {type(arr[row]).__name__}) is among "
            f"string ids; ids must be all integers or all strings. Cast the {role} column "
            "with ddf[col].astype(str) (or to int)."
        )
    return arr


def _kind(ids: np.ndarray) -> str:
    return "int" if ids.dtype.kind == "i" else "str"


def _summarise(df: pd.DataFrame, p: int, cols: dict[str, str | None], source: str) -> dict:
    """Check one partition; return its size, id kinds, value sum/min/max and unique ids."""
    where = f"{source} partition {p}"
    out: dict[str, Any] = {"n": len(df), "partition": p}
    for role in ("user", "item"):
        ids = _ids(df[cols[role]], role, where)
        out[f"{role}_kind"] = _kind(ids) if len(ids) else None
        out[f"{role}_ids"] = np.unique(ids) if len(ids) else ids
        out[f"{role}_example"] = _plain(ids[0]) if len(ids) else None
    vals = _values(df, cols["rating"], where)
    out["sum"] = float(vals.sum(dtype=np.float64)) if len(vals) else 0.0
    out["min"] = float(vals.min()) if len(vals) else np.inf
    out["max"] = float(vals.max()) if len(vals) else -np.inf
    return out


def _values(df: pd.DataFrame, rating: str | None, where: str) -> np.ndarray:
    if rating is None:
        return np.ones(len(df), dtype=np.float32)
    col = df[rating]
    arr = col.to_numpy()
    if arr.dtype.kind not in "iufb":
        num = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64)
        bad = np.isnan(num) & col.notna().to_numpy()
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(f"{where} row {row}: {rating} {arr[row]!r} is not a number")
        arr = num
    arr = arr.astype(np.float64, copy=False)
    bad = ~np.isfinite(arr)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{where} row {row}: {rating} is {arr[row]}; every {rating} must be a finite "
            "number. Fill or drop that row."
        )
    return arr.astype(np.float32)


def _field(summary: dict, name: str) -> Any:
    return summary[name]


def _union(*arrays: np.ndarray) -> np.ndarray:
    arrays = [a for a in arrays if len(a)]
    if not arrays:
        return np.empty(0, dtype=np.int64)
    return np.unique(np.concatenate(arrays))


def _encode(
    df: pd.DataFrame,
    p: int,
    cols: dict[str, str | None],
    source: str,
    user_vocab: np.ndarray,
    item_vocab: np.ndarray,
) -> dict[str, np.ndarray]:
    where = f"{source} partition {p}"
    u = np.searchsorted(user_vocab, _ids(df[cols["user"]], "user", where)).astype(np.int32)
    i = np.searchsorted(item_vocab, _ids(df[cols["item"]], "item", where)).astype(np.int32)
    v = _values(df, cols["rating"], where)
    return {"user": u, "item": i, "value": v, "part": np.full(len(v), p, dtype=np.int32)}


def _counts(enc: dict[str, np.ndarray], side: str, n: int) -> np.ndarray:
    return np.bincount(enc[side], minlength=n).astype(np.int64)


def _add(*arrays: np.ndarray) -> np.ndarray:
    return np.sum(arrays, axis=0)


def _split(enc: dict[str, np.ndarray], side: str, bounds: np.ndarray) -> list[dict]:
    """The partition's ratings cut by the destination block of ``side``."""
    block = np.searchsorted(bounds, enc[side], side="right") - 1
    order = np.argsort(block, kind="stable")
    ptr = np.searchsorted(block[order], np.arange(len(bounds)))
    pieces = []
    for b in range(len(bounds) - 1):
        sel = order[ptr[b] : ptr[b + 1]]
        pieces.append({k: v[sel] for k, v in enc.items()})
    return pieces


def _build_block(
    side: str,
    lo: int,
    hi: int,
    source: str,
    user_vocab: np.ndarray,
    item_vocab: np.ndarray,
    *pieces: dict,
) -> Block:
    other = "item" if side == "user" else "user"
    rows = np.concatenate([p[side] for p in pieces]).astype(np.int64) - lo
    cols = np.concatenate([p[other] for p in pieces]).astype(np.int64)
    vals = np.concatenate([p["value"] for p in pieces])
    n_other = len(item_vocab) if side == "user" else len(user_vocab)
    keys = rows * max(n_other, 1) + cols
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    if side == "user" and len(keys) > 1:
        dup = np.flatnonzero(keys[1:] == keys[:-1])
        if len(dup):
            parts = np.concatenate([p["part"] for p in pieces])[order]
            j = int(dup[0])
            user = _plain(user_vocab[rows[order][j] + lo])
            item = _plain(item_vocab[cols[order][j]])
            more = f" ({len(dup)} repeated pairs in all)" if len(dup) > 1 else ""
            raise DataError(
                f"{source}: user {user!r} and item {item!r} appear in partition "
                f"{int(parts[j])} and in partition {int(parts[j + 1])}{more}; each (user, "
                "item) pair may appear once. Combine them before building, e.g. "
                "ddf.groupby([user, item]).rating.mean().reset_index()."
            )
    rows, cols, vals = rows[order], cols[order], vals[order]
    indptr = np.zeros(hi - lo + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=hi - lo), out=indptr[1:])
    uniq, local = np.unique(cols, return_inverse=True)
    return Block(side, lo, hi, indptr, uniq, local.astype(np.int32), vals.astype(np.float32))


def _block_seen(block: Block) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.diff(block.indptr), block.cols[block.indices].astype(np.int32), block.values


# ---------------------------------------------------------------------- the data type
class DistributedInteractions:
    """Interactions held on Dask workers as user and item row-blocks.

    Build it with :func:`factorkit.distributed.read_parquet`,
    :func:`~factorkit.distributed.read_csv` or :func:`~factorkit.distributed.from_dask`;
    fit with :func:`factorkit.distributed.fit` (or ``model.fit(data)`` once the estimators
    dispatch on it). Vocabularies are sorted raw ids, as in :class:`~factorkit.Interactions`,
    so positions, and hence seeded initial factors, agree with a one-machine fit.

    Attributes
    ----------
    user_map, item_map : IdMap
        The vocabularies (held on the client: one entry per user and item).
    user_counts, item_counts : numpy.ndarray of int64
        Interactions per user and per item position.
    implicit : bool
    nnz : int
    global_mean : float
    rating_scale : (float, float)
    user_blocks, item_blocks : list of distributed.Future
        The row-blocks on the workers (:class:`Block` each).
    user_bounds, item_bounds : numpy.ndarray
        Block ``b`` holds rows ``bounds[b] .. bounds[b + 1] - 1``.
    workers : list of str
        The worker each block is pinned to (block ``b`` on ``workers[b % len(workers)]``).
    """

    def __init__(self, **state: Any) -> None:
        self.__dict__.update(state)

    @property
    def n_users(self) -> int:
        return len(self.user_map)

    @property
    def n_items(self) -> int:
        return len(self.item_map)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_users, self.n_items)

    def __len__(self) -> int:
        return self.nnz

    @property
    def n_blocks(self) -> int:
        return len(self.user_blocks)

    def blocks(self, side: str) -> list[Any]:
        return self.user_blocks if side == "user" else self.item_blocks

    def bounds(self, side: str) -> np.ndarray:
        return self.user_bounds if side == "user" else self.item_bounds

    def worker_of(self, b: int) -> str:
        return self.workers[b % len(self.workers)]

    def seen(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """CSR ``(indptr, item positions, values)`` of every user's items, gathered to the
        client (8 bytes per interaction: what a fitted model keeps for ``exclude_seen``)."""
        futs = [
            self.client.submit(
                _block_seen, blk, pure=False, workers=[self.worker_of(b)], allow_other_workers=True
            )
            for b, blk in enumerate(self.user_blocks)
        ]
        parts = wait_all(futs, self.timeout, "gathering the seen items", self.client)
        counts = np.concatenate([c for c, _, _ in parts])
        indptr = np.zeros(self.n_users + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        return (
            indptr,
            np.concatenate([i for _, i, _ in parts]),
            np.concatenate([v for _, _, v in parts]),
        )

    def __repr__(self) -> str:
        kind = "implicit interactions" if self.implicit else "ratings"
        return (
            f"DistributedInteractions: {self.n_users:,} users x {self.n_items:,} items, "
            f"{self.nnz:,} {kind} in {self.n_blocks} user and {self.n_blocks} item blocks "
            f"on {len(self.workers)} workers"
        )


def _check_columns(ddf: Any, cols: dict[str, str | None], source: str) -> None:
    present = [str(c) for c in ddf.columns]
    for role, col in cols.items():
        if col is not None and col not in present:
            raise DataError(
                f"{source}: {role} column {col!r} not found; the columns are {present}. "
                f"Pass {role}=<one of those names>."
            )


def _cut(counts: np.ndarray, n_blocks: int) -> np.ndarray:
    """Block bounds over positions with about equal counts per block (each non-empty)."""
    n = len(counts)
    n_blocks = max(1, min(n_blocks, n))
    cum = np.cumsum(counts, dtype=np.float64)
    total = cum[-1] if n else 0.0
    targets = total * np.arange(1, n_blocks) / n_blocks
    inner = np.searchsorted(cum, targets, side="left") + 1
    bounds = np.unique(np.concatenate([[0], np.clip(inner, 1, n - 1), [n]]))
    return bounds.astype(np.int64)


def _tree(client: Any, fn: Any, futures: list[Any], fan_in: int = 8) -> Any:
    """Reduce ``futures`` with ``fn(*group)`` on the workers, ``fan_in`` at a time."""
    while len(futures) > 1:
        futures = [
            client.submit(fn, *futures[j : j + fan_in], pure=False)
            for j in range(0, len(futures), fan_in)
        ]
    return futures[0]


def from_dask(
    ddf: Any,
    user: str = "user",
    item: str = "item",
    rating: str | None = None,
    *,
    client: Any = None,
    n_blocks: int | None = None,
    implicit: bool | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    _source: str = "dask DataFrame",
) -> DistributedInteractions:
    """Distributed interactions from a Dask DataFrame with one row per interaction.

    Parameters
    ----------
    ddf : dask.dataframe.DataFrame
    user, item : str
        Columns of raw user and item ids (all integers or all strings).
    rating : str, optional
        Column of numeric values; without it every value is 1.0 (implicit feedback).
    client : distributed.Client, scheduler address or None
        The cluster; None uses the default client.
    n_blocks : int, optional
        Row-blocks per side; default two per worker.
    implicit : bool, optional
        Defaults to ``rating is None``.
    timeout : float
        Seconds any single wait on the cluster may take.

    Returns
    -------
    DistributedInteractions

    Examples
    --------
    Starting a cluster takes seconds, so this example is not run by the doctests (the
    same steps run in ``tests/distributed``):

    >>> import dask.dataframe as dd, pandas as pd
    >>> from distributed import Client
    >>> import factorkit as fk
    >>> df = pd.DataFrame({"u": [1, 1, 2, 3], "i": [10, 20, 10, 30], "r": [4.0, 3.0, 5.0, 2.0]})
    >>> client = Client(processes=False, n_workers=1, dashboard_address=None)  # doctest: +SKIP
    >>> data = fk.distributed.from_dask(
    ...     dd.from_pandas(df, npartitions=2), "u", "i", "r", client=client
    ... )  # doctest: +SKIP
    >>> (data.n_users, data.n_items, data.nnz)  # doctest: +SKIP
    (3, 3, 4)

    Long but sequential: check the columns, build both vocabularies on the workers,
    count rows, cut the blocks, pin them; each step is a few lines of task graph that
    reads the previous one's futures.
    """
    client = get_client(client)
    cols = {"user": user, "item": item, "rating": rating}
    _check_columns(ddf, cols, _source)
    if n_blocks is not None and (
        isinstance(n_blocks, bool) or not isinstance(n_blocks, int) or n_blocks < 1
    ):
        raise InvalidParameterError(f"from_dask: n_blocks must be an int >= 1; got {n_blocks!r}")
    workers = worker_addresses(client, timeout)
    ddf = ddf[[c for c in cols.values() if c is not None]]
    parts = client.compute(ddf.to_delayed())
    summaries = [
        client.submit(_summarise, f, p, cols, _source, pure=False) for p, f in enumerate(parts)
    ]
    small = [
        client.submit(lambda s: {k: v for k, v in s.items() if not k.endswith("_ids")}, s)
        for s in summaries
    ]
    # task key -> the partition or block it handles: a worker killed for memory is named
    labels = {}
    for p, futs in enumerate(zip(parts, summaries, small, strict=True)):
        labels.update({f.key: f"{_source} partition {p}" for f in futs})
    info = wait_all(small, timeout, f"{_source}: checking partitions", client, labels)
    info = [s for s in info if s["n"]]
    if not info:
        raise DataError(f"{_source}: holds no interactions")
    for role in ("user", "item"):
        kinds = {s[f"{role}_kind"] for s in info}
        if len(kinds) > 1:
            a = next(s for s in info if s[f"{role}_kind"] == "int")
            b = next(s for s in info if s[f"{role}_kind"] == "str")
            raise DataError(
                f"{_source}: {role} ids are integers in partition {a['partition']} (e.g. "
                f"{a[f'{role}_example']!r}) but strings in partition {b['partition']} (e.g. "
                f"{b[f'{role}_example']!r}); ids must have one type. Cast the column with "
                f"ddf[{cols[role]!r}].astype(str) (or to int) before building."
            )
    vocabs = {}
    for role in ("user", "item"):
        uniq = [client.submit(_field, s, f"{role}_ids") for s in summaries]
        vocabs[role] = _tree(client, _union, uniq)
    user_vocab, item_vocab = wait_all(
        [vocabs["user"], vocabs["item"]],
        timeout,
        f"{_source}: building vocabularies",
        client,
        labels,
    )
    n_users, n_items = len(user_vocab), len(item_vocab)
    encoded = [
        client.submit(_encode, f, p, cols, _source, vocabs["user"], vocabs["item"], pure=False)
        for p, f in enumerate(parts)
    ]
    labels.update({f.key: f"{_source} partition {p}" for p, f in enumerate(encoded)})
    counts = {}
    for role, n in (("user", n_users), ("item", n_items)):
        per = [client.submit(_counts, e, role, n, pure=False) for e in encoded]
        counts[role] = _tree(client, _add, per)
    user_counts, item_counts = wait_all(
        [counts["user"], counts["item"]], timeout, f"{_source}: counting", client, labels
    )
    n_blocks = n_blocks or 2 * len(workers)
    bounds = {"user": _cut(user_counts, n_blocks), "item": _cut(item_counts, n_blocks)}
    blocks: dict[str, list[Any]] = {}
    for side in ("user", "item"):
        splits = [client.submit(_split, e, side, bounds[side], pure=False) for e in encoded]
        labels.update({f.key: f"{_source} partition {p}" for p, f in enumerate(splits)})
        b_side = []
        for b in range(len(bounds[side]) - 1):
            w = workers[b % len(workers)]
            pieces = [client.submit(operator.getitem, s, b, pure=False) for s in splits]
            b_side.append(
                client.submit(
                    _build_block,
                    side,
                    int(bounds[side][b]),
                    int(bounds[side][b + 1]),
                    _source,
                    vocabs["user"],
                    vocabs["item"],
                    *pieces,
                    pure=False,
                    workers=[w],
                    allow_other_workers=True,
                )
            )
        blocks[side] = b_side
        n_side = len(b_side)
        for b, f in enumerate(b_side):
            lo, hi = int(bounds[side][b]), int(bounds[side][b + 1])
            labels[f.key] = f"{side} block {b} of {n_side} ({side}s {lo:,}..{hi - 1:,})"
    # wait for the blocks (errors such as duplicate pairs surface here), keep the futures
    sizes = [client.submit(lambda blk: blk.nnz, f) for f in blocks["user"] + blocks["item"]]
    built = blocks["user"] + blocks["item"]
    labels.update({s.key: labels[f.key] for s, f in zip(sizes, built, strict=True)})
    wait_all(sizes, timeout, f"{_source}: building row-blocks", client, labels)
    total = sum(s["n"] for s in info)
    return DistributedInteractions(
        client=client,
        user_map=IdMap(user_vocab, kind="user"),
        item_map=IdMap(item_vocab, kind="item"),
        user_counts=user_counts,
        item_counts=item_counts,
        implicit=rating is None if implicit is None else bool(implicit),
        nnz=int(total),
        global_mean=sum(s["sum"] for s in info) / total,
        rating_scale=(min(s["min"] for s in info), max(s["max"] for s in info)),
        user_blocks=blocks["user"],
        item_blocks=blocks["item"],
        user_bounds=bounds["user"],
        item_bounds=bounds["item"],
        workers=workers,
        timeout=float(timeout),
        source=_source,
    )


def read_parquet(
    path: Any,
    user: str = "userId",
    item: str = "movieId",
    rating: str | None = "rating",
    *,
    client: Any = None,
    n_blocks: int | None = None,
    implicit: bool | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    **kwargs: Any,
) -> DistributedInteractions:
    """Distributed interactions from Parquet file(s) or a directory, read on the workers.

    ``path`` is anything :func:`dask.dataframe.read_parquet` reads (a file, a directory,
    a glob, ``s3://...``); other arguments as :func:`from_dask`.
    """
    import dask.dataframe as dd

    cols = [c for c in (user, item, rating) if c is not None]
    try:
        ddf = dd.read_parquet(path, **kwargs)
    except (FileNotFoundError, OSError) as exc:
        raise DataError(f"read_parquet: cannot read {path!s}: {exc}") from None
    missing = [c for c in cols if c not in ddf.columns]
    if not missing:
        ddf = ddf[cols]
    return from_dask(
        ddf,
        user,
        item,
        rating,
        client=client,
        n_blocks=n_blocks,
        implicit=implicit,
        timeout=timeout,
        _source=f"Parquet {path!s}",
    )


def read_csv(
    path: Any,
    user: str = "userId",
    item: str = "movieId",
    rating: str | None = "rating",
    *,
    client: Any = None,
    n_blocks: int | None = None,
    implicit: bool | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    **kwargs: Any,
) -> DistributedInteractions:
    """Distributed interactions from CSV file(s) (a path or glob), read on the workers.

    Extra keyword arguments go to :func:`dask.dataframe.read_csv` (``blocksize=``,
    ``sep=``, ...); other arguments as :func:`from_dask`.
    """
    import dask.dataframe as dd

    try:
        ddf = dd.read_csv(path, **kwargs)
    except (FileNotFoundError, OSError) as exc:
        raise DataError(f"read_csv: cannot read {path!s}: {exc}") from None
    return from_dask(
        ddf,
        user,
        item,
        rating,
        client=client,
        n_blocks=n_blocks,
        implicit=implicit,
        timeout=timeout,
        _source=f"CSV {path!s}",
    )


__all__ += ["Block", "ClusterError"]
