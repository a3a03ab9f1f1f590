"""Block ALS and implicit ALS on Dask: every worker runs factorkit's own row-solve kernels
(:func:`~factorkit.kernels.als.als_solve_rows`, :func:`~factorkit.kernels.implicit_als.
implicit_als_cg_rows`, :func:`~factorkit.kernels.implicit_als.implicit_als_cholesky_rows`)
on its row-blocks, the same solve as one machine.

One half-step solves every block of one side against the other side's factors ``Y``.
Two ways to get ``Y`` to the blocks (``exchange``):

- ``"broadcast"``: ``Y`` (with its biases) is scattered by the client to every worker;
  each block gathers ``Y[cols]`` locally. Client traffic per half-step:
  ``W * n_other * (k + 1) * 4`` bytes, and every worker holds all of ``Y``.
- ``"routed"``: Spark's out-blocks (``ml/recommendation/ALS.scala``). The factors a
  half-step solves stay on the workers that solved them; for the next half-step each
  source block ``j`` sends each destination block ``b`` only the rows of ``j`` that ``b``
  references (the routing table, built once from ``cols``), worker to worker. The
  destination concatenates its pieces in source order, which is exactly ``Y[cols]``, so
  the solve, and the result, is bit for bit the broadcast one. The client sends nothing
  but the first half-step's factors (and again after a retry or every
  :data:`LINEAGE_EPOCHS` epochs, which bounds the lineage Dask would replay after a lost
  worker); workers exchange ``sum_b |cols_b| * (k + 1) * 4`` bytes at most (pieces whose
  source and destination share a worker do not move) and none holds all of ``Y``. The
  price: ``B^2`` small routing tasks per half-step for ``B`` blocks.

``"auto"`` broadcasts while ``n_other * (k + 1) * 4`` is at most
:data:`BROADCAST_LIMIT_BYTES` and routes above (docs/distributed.md has the measured
volumes and times behind that switch point).

In both modes the client gathers each half-step's solved factors (the fitted model is an
ordinary in-memory model, so it holds them anyway), which also makes every epoch a
restart point: a worker lost mid-step loses only tasks that Dask recomputes from the
blocks' lineage, and an exchange the loss breaks is rerun from the epoch's start.
"""

from __future__ import annotations

import operator
import time
from typing import Any

import numpy as np

from factorkit._threads import resolve_threads, single_thread_blas
from factorkit.distributed._cluster import (
    MEMORY_FIX,
    ClusterError,
    kernel_threads,
    memory_limits,
    nanny_workers,
    terminate_fraction,
    wait_all,
)
from factorkit.distributed._data import Block, DistributedInteractions
from factorkit.kernels.als import als_solve_rows
from factorkit.kernels.implicit_als import (
    implicit_als_cg_rows,
    implicit_als_cholesky_rows,
    implicit_als_confidence,
)

__all__ = ["BROADCAST_LIMIT_BYTES", "LINEAGE_EPOCHS", "ALSTrainer", "ImplicitALSTrainer"]

#: ``exchange="auto"`` broadcasts the fixed side while its factors take at most this many
#: bytes (each worker then holds one copy next to its blocks); above, it routes rows to
#: the blocks that need them
BROADCAST_LIMIT_BYTES = 256 << 20
#: routed exchange: the client re-sends the factors (one copy, each block's rows to its
#: worker) every this many epochs, so a lost worker never makes Dask replay more than
#: this many epochs of half-steps (Spark's ``checkpointInterval``, default 10 too)
LINEAGE_EPOCHS = 10


def _threads(n_threads: int | None) -> int:
    return resolve_threads(n_threads)


def _fixed_rows(fixed: list[Any], routed: bool, cols: np.ndarray, n: int) -> list[np.ndarray]:
    """The first ``n`` fixed-side arrays restricted to the block's ``cols``, contiguous.

    ``fixed`` is the broadcast arrays (whole ``Y``, biases), indexed here, or the routed
    pieces: one tuple per source block holding that block's referenced rows, in source
    order. Blocks cover contiguous ranges and ``cols`` is sorted, so concatenating the
    pieces gives exactly ``Y[cols]``: the same bytes as the broadcast path.
    """
    if routed:
        return [np.ascontiguousarray(np.concatenate([p[a] for p in fixed])) for a in range(n)]
    return [np.ascontiguousarray(fixed[a][cols]) for a in range(n)]


def _route_table(block: Block, other_bounds: np.ndarray) -> list[np.ndarray]:
    """Per source block ``j`` of the other side, the rows of ``j`` (local to ``j``) that
    ``block`` references: its out-block routing table (Spark's ``OutBlock``)."""
    cut = np.searchsorted(block.cols, other_bounds)
    return [
        (block.cols[cut[j] : cut[j + 1]] - other_bounds[j]).astype(np.int64)
        for j in range(len(other_bounds) - 1)
    ]


def _route_counts(table: list[np.ndarray]) -> list[int]:
    return [len(t) for t in table]


def _take(source: tuple, idx: np.ndarray, n: int) -> tuple:
    """The rows ``idx`` of the first ``n`` arrays of a solved (or scattered) source block."""
    return tuple(source[a][idx] for a in range(n))


# ---------------------------------------------------------------------- worker tasks
def _als_task(
    block: Block,
    routed: bool,
    fixed: list[Any],
    mu: float,
    lam: float,
    weighted: bool,
    nonnegative: bool,
    n_threads: int | None,
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Solve one block of explicit ALS; returns factors, biases, objective and penalty."""
    start = time.perf_counter()
    y, yb = _fixed_rows(fixed, routed, block.cols, 2)
    k = y.shape[1]
    out_f = np.zeros((block.n_rows, k), dtype=y.dtype)
    out_b = np.zeros(block.n_rows, dtype=yb.dtype)
    with kernel_threads(_threads(n_threads)):
        obj = als_solve_rows(
            block.indptr,
            block.indices,
            block.values,
            np.zeros(0),  # no sample weights on the Dask backend
            y,
            yb,
            mu,
            lam,
            lam,
            weighted,
            nonnegative,
            out_f,
            out_b,
        )
    counts = np.diff(block.indptr).astype(np.float64)
    sq = np.einsum("ij,ij->i", out_f, out_f, dtype=np.float64) + out_b.astype(np.float64) ** 2
    pen = float((lam * sq) @ counts) if weighted else float(lam * sq.sum())
    return out_f, out_b, float(obj), pen, time.perf_counter() - start


def _ials_task(
    block: Block,
    routed: bool,
    fixed: list[Any],
    gram: np.ndarray,
    current: Any,
    params: dict[str, Any],
    n_other: int,
) -> tuple[np.ndarray, float, float]:
    """One block of implicit ALS; returns factors, objective and the block's penalty."""
    start = time.perf_counter()
    (y,) = _fixed_rows(fixed, routed, block.cols, 1)
    conf = np.empty(block.nnz, dtype=np.float32)
    implicit_als_confidence(
        block.values,
        np.float32(params["alpha"]),
        params["confidence"] == "log",
        np.float32(params["epsilon"]),
        conf,
    )
    lam = _penalties(np.diff(block.indptr), n_other, params)
    w0 = np.float32(params["unobserved_weight"])
    if current is None:
        out = np.zeros((block.n_rows, y.shape[1]), dtype=y.dtype)
    else:  # the block's rows from the client, or its last solve kept on the workers
        out = np.array(current[0] if isinstance(current, tuple) else current, copy=True)
    with kernel_threads(_threads(params["n_threads"])):
        if params["solver"] == "cholesky":
            obj = implicit_als_cholesky_rows(
                block.indptr, block.indices, conf, y, gram, w0, lam, out
            )
        else:
            obj = implicit_als_cg_rows(
                block.indptr,
                block.indices,
                conf,
                y,
                gram,
                w0,
                lam,
                int(params["cg_steps"]),
                out,
            )
    x = out.astype(np.float64)
    pen = float(np.einsum("ij,ij->i", x, x) @ lam.astype(np.float64))
    return out, float(obj), pen, time.perf_counter() - start


def _penalties(counts: np.ndarray, n_other: int, params: dict[str, Any]) -> np.ndarray:
    """Per-row ``lambda * (count + w0 * n_other)^nu`` as float32 (as ImplicitALS)."""
    nu = float(params["regularization_exponent"])
    lam = float(params["regularization"])
    if nu == 0.0:
        return np.full(len(counts), lam, dtype=np.float32)
    base = np.asarray(counts, dtype=np.float64) + float(params["unobserved_weight"]) * n_other
    return (lam * base**nu).astype(np.float32)


# ---------------------------------------------------------------------- client side
class _HalfSteps:
    """Shared machinery: exchange choice, getting the fixed side to the blocks, submitting
    one half-step, traffic accounting."""

    #: arrays per solved block that the other side needs (factors, biases for ALS)
    n_fixed = 2

    def __init__(self, data: DistributedInteractions, k: int, exchange: str) -> None:
        self.data = data
        self.client = data.client
        self.k = k
        limits = [lim for lim, _ in memory_limits(self.client).values() if lim > 0]
        self._smallest_limit = min(limits) if limits else None
        self.exchange = {
            side: self._pick(exchange, data.n_items if side == "user" else data.n_users)
            for side in ("user", "item")
        }
        self._routes: dict[str, tuple[list[list[Any]], np.ndarray]] = {}
        self._labels: dict[Any, str] = {}  # task key -> what it is, for error messages
        self._scattered: list[Any] = []  # this half-step's scattered inputs (no lineage)
        #: routed exchange: per block, the future of its last solve (on its worker), the
        #: source of the next half-step's out-blocks; None when the client must send them
        self.sources: dict[str, list[Any] | None] = {"user": None, "item": None}
        #: factor bytes the client sent to the workers in the last epoch (each broadcast
        #: copy counted)
        self.bytes_sent = 0
        #: factor bytes sent worker to worker in the last epoch (routed out-blocks whose
        #: source and destination blocks are pinned to different workers)
        self.bytes_exchanged = 0
        #: factor bytes the client gathered from the workers in the last epoch
        self.bytes_received = 0
        #: seconds the last epoch's tasks ran on the workers, summed over tasks
        self.task_seconds = 0.0

    def _pick(self, exchange: str, n_fixed: int) -> str:
        """``auto``: broadcast while a copy of ``Y`` takes at most BROADCAST_LIMIT_BYTES
        and at most a quarter of the smallest worker's ``memory_limit``."""
        if exchange != "auto":
            return exchange
        copy = n_fixed * (self.k + 1) * 4
        fits = self._smallest_limit is None or copy <= self._smallest_limit // 4
        return "broadcast" if copy <= BROADCAST_LIMIT_BYTES and fits else "routed"

    def reset(self) -> None:
        """Forget factors held on the workers (after a failed epoch): the next half-step
        starts from the client's state."""
        self.sources = {"user": None, "item": None}

    def start_epoch(self, epoch: int) -> None:
        self.bytes_sent = self.bytes_exchanged = self.bytes_received = 0
        self.task_seconds = 0.0
        if epoch % LINEAGE_EPOCHS == 0:
            self.reset()

    def routes(self, side: str) -> tuple[list[list[Any]], np.ndarray]:
        """For each destination block ``b`` of ``side`` and source block ``j`` of the other
        side, the future of ``j``'s local rows that ``b`` references (None when there are
        none), and the row counts ``[b, j]``. Built once on the destinations' workers."""
        if side not in self._routes:
            other = "item" if side == "user" else "user"
            bounds = self.data.bounds(other)
            tables = [
                self.client.submit(
                    _route_table,
                    blk,
                    bounds,
                    pure=False,
                    workers=[self.data.worker_of(b)],
                    allow_other_workers=True,
                )
                for b, blk in enumerate(self.data.blocks(side))
            ]
            counts = np.array(
                wait_all(
                    [self.client.submit(_route_counts, t, pure=False) for t in tables],
                    self.data.timeout,
                    f"routing table of the {side} blocks",
                    self.client,
                    labels=self.labels(side),
                ),
                dtype=np.int64,
            )
            idx = [
                [
                    self.client.submit(
                        operator.getitem,
                        tables[b],
                        j,
                        pure=False,
                        workers=[self.data.worker_of(b)],
                        allow_other_workers=True,
                    )
                    if counts[b, j]
                    else None
                    for j in range(len(bounds) - 1)
                ]
                for b in range(len(tables))
            ]
            self._routes[side] = (idx, counts)
        return self._routes[side]

    def _sources(self, other: str, arrays: list[np.ndarray]) -> list[Any]:
        """Futures of the other side's blocks on their workers: the last solve's results,
        or (first half-step, after a retry) each block's rows sent there by the client."""
        if self.sources[other] is None:
            futs = []
            for j in range(len(self.data.blocks(other))):
                piece = tuple(a[self.rows(other, j)] for a in arrays)
                worker = self.data.worker_of(j)
                futs += self.client.scatter([piece], workers=[worker], hash=False)
                self.bytes_sent += sum(a.nbytes for a in piece)
            self.sources[other] = futs
            self._scattered += futs
        return self.sources[other]

    def fixed(
        self, side: str, arrays: list[np.ndarray], extra: tuple[np.ndarray, ...] = ()
    ) -> list[tuple[bool, list[Any], list[Any]]]:
        """Per block of ``side``: (routed, the fixed-side ``arrays`` as it gets them, the
        ``extra`` arrays, always broadcast)."""
        n_blocks = len(self.data.blocks(side))
        n_workers = len(self.data.workers)
        broadcast = self.exchange[side] == "broadcast"
        self._labels = {}
        #: what runs now and where, for an error after workers die (see fit's retries)
        self.step = f"the {type(self).__name__[: -len('Trainer')]} {side} half-step"
        self.step_blocks = [
            (self.data.worker_of(b), label) for b, label in enumerate(self.labels(side))
        ]
        sent = list(arrays) + list(extra) if broadcast else list(extra)
        # hash=False: a fresh key every time, so data scattered again is never taken
        # for data the cluster already has
        futs = self.client.scatter(sent, broadcast=True, hash=False) if sent else []
        self._scattered = list(futs)
        self.bytes_sent += n_workers * sum(a.nbytes for a in sent)
        if broadcast:
            return [(False, futs[: len(arrays)], futs[len(arrays) :])] * n_blocks
        other = "item" if side == "user" else "user"
        sources = self._sources(other, arrays)
        idx, counts = self.routes(side)
        row_bytes = sum(a.itemsize * (a.size // max(len(a), 1)) for a in arrays)
        per_block = []
        for b in range(n_blocks):
            pieces = []
            for j, ij in enumerate(idx[b]):
                if ij is None:
                    continue
                piece = self.client.submit(
                    _take,
                    sources[j],
                    ij,
                    len(arrays),
                    pure=False,
                    workers=[self.data.worker_of(j)],
                    allow_other_workers=True,
                )
                self._labels[piece.key] = (
                    f"the out-block of {other} block {j} for {side} block {b} "
                    f"({int(counts[b, j]):,} rows)"
                )
                pieces.append(piece)
                if self.data.worker_of(j) != self.data.worker_of(b):
                    self.bytes_exchanged += int(counts[b, j]) * row_bytes
            per_block.append((True, pieces, futs))
        return per_block

    def submit(self, fn: Any, side: str, b: int, *args: Any) -> Any:
        return self.client.submit(
            fn,
            self.data.blocks(side)[b],
            *args,
            pure=False,
            workers=[self.data.worker_of(b)],
            allow_other_workers=True,
        )

    def solved(self, side: str, futs: list[Any], what: str) -> list[Any]:
        """Wait for a half-step's block results; keep their futures as the next routed
        half-step's sources, and count the factor bytes gathered."""
        labels = dict(self._labels)
        labels.update({f.key: t for f, t in zip(futs, self.labels(side), strict=True)})
        results = wait_all(
            futs, self.data.timeout, what, self.client, labels=labels, inputs=self._scattered
        )
        self.sources[side] = futs
        self.bytes_received += sum(a.nbytes for r in results for a in r[: self.n_fixed])
        return results

    def labels(self, side: str) -> list[str]:
        """What each block of ``side`` is and about how much memory its task needs, for
        error messages (a worker killed for memory names the block and the estimate)."""
        return [label for label, _ in self.needs(side)]

    def needs(self, side: str) -> list[tuple[str, int]]:
        """Per block of ``side``: its description and the bytes its task needs on top of
        what the worker holds already (the block itself): the broadcast copy of ``Y``
        (broadcast exchange), the ``Y`` rows it reads, the factors it solves."""
        other = "item" if side == "user" else "user"
        bounds = self.data.bounds(side)
        counts = self.data.user_counts if side == "user" else self.data.item_counts
        n_other = self.data.n_items if side == "user" else self.data.n_users
        row = (self.k + 1) * 4
        broadcast = self.exchange[side] == "broadcast"
        # broadcast: a whole copy of Y per worker, then the rows a block reads; routed:
        # the worker's share of Y (its blocks' last solve), the pieces routed to the block
        # and their concatenation
        copy = n_other * row if broadcast else n_other * row // len(self.data.workers)
        n = len(bounds) - 1
        out = []
        for b in range(n):
            lo, hi = int(bounds[b]), int(bounds[b + 1])
            nnz = int(counts[lo:hi].sum())
            refs = min(n_other, nnz)
            reads = refs * (row + 8) * (1 if broadcast else 2)
            need = copy + nnz * 8 + (hi - lo) * (row + 8) + reads
            held = (
                f"a broadcast copy of all {n_other:,} {other} factors, "
                if broadcast
                else f"its worker's share of the {other} factors, the rows routed to it, "
            )
            label = (
                f"{side} block {b} of {n} ({side}s {lo:,}..{hi - 1:,}, {nnz:,} interactions; "
                f"its task needs about {need / 2**20:,.0f} MiB: {held}its ratings, the "
                f"{hi - lo:,} x {self.k} factors it solves and up to {refs:,} {other} rows "
                "it reads)"
            )
            out.append((label, need))
        return out

    def check_memory(self) -> None:
        """Refuse, before anything is sent, a fit whose largest block task cannot fit in
        the worker with the least room (``memory_limit`` times Dask's kill fraction, less
        what it uses now): the nanny would kill the worker on every try. Workers without a
        ``memory_limit`` or a nanny are not checked. The estimate counts arrays only, so a
        task that passes may still die; the killed-worker error covers that."""
        limits = memory_limits(self.client)
        nannies = nanny_workers(self.client)  # no nanny, no kill at the limit
        frac = terminate_fraction()
        room = {
            a: lim * frac - used for a, (lim, used) in limits.items() if lim > 0 and a in nannies
        }
        if not room:
            return
        worker = min(room, key=room.get)
        lim, used = limits[worker]
        for side in ("user", "item"):
            label, need = max(self.needs(side), key=lambda x: x[1])
            if need > room[worker]:
                raise ClusterError(
                    f"{type(self).__name__[: -len('Trainer')]} {side} half-step: {label}, "
                    f"but worker {worker} has about {max(room[worker], 0) / 2**20:,.0f} MiB "
                    f"left (memory_limit {lim / 2**20:,.0f} MiB, killed at {frac:g} of "
                    f"that, {used / 2**20:,.0f} MiB in use), so its nanny would kill it on "
                    f"every try. {MEMORY_FIX}"
                    + (
                        '; exchange="routed" sends each block only the rows it reads'
                        if self.exchange[side] == "broadcast"
                        else ""
                    )
                )

    def rows(self, side: str, b: int) -> slice:
        bounds = self.data.bounds(side)
        return slice(int(bounds[b]), int(bounds[b + 1]))


class ALSTrainer(_HalfSteps):
    """Epochs of explicit biased ALS (the model of :class:`factorkit.ALS`) on Dask."""

    state_names = ("user_factors_", "item_factors_", "user_bias_", "item_bias_")

    def __init__(self, model: Any, data: DistributedInteractions, exchange: str) -> None:
        super().__init__(data, int(model.factors), exchange)
        self.model = model
        self.lam = float(model.regularization)
        self.weighted = bool(model.weighted_regularization)
        self.nonnegative = bool(model.nonnegative)
        self.mu = float(data.global_mean)

    def init_state(self, rng: np.random.Generator, init: Any) -> dict[str, np.ndarray]:
        d, k = self.data, self.k
        items = init(rng, d.n_items, k, float(self.model.init_scale))
        if self.nonnegative:  # as ALS.fit: the first half-step starts feasible
            np.abs(items, out=items)
        return {
            "item_factors_": items,
            "user_factors_": np.zeros((d.n_users, k), dtype=np.float32),
            "user_bias_": np.zeros(d.n_users, dtype=np.float32),
            "item_bias_": np.zeros(d.n_items, dtype=np.float32),
        }

    def _half(self, side: str, state: dict[str, np.ndarray]) -> tuple[float, float]:
        other = "item" if side == "user" else "user"
        fixed = self.fixed(side, [state[f"{other}_factors_"], state[f"{other}_bias_"]])
        params = (self.mu, self.lam, self.weighted, self.nonnegative, self.model.n_threads)
        futs = [
            self.submit(_als_task, side, b, routed, pieces, *params)
            for b, (routed, pieces, _) in enumerate(fixed)
        ]
        results = self.solved(side, futs, f"ALS {side} half-step")
        obj = pen = 0.0
        for b, (f, bias, o, p, secs) in enumerate(results):
            self.task_seconds += secs
            rows = self.rows(side, b)
            state[f"{side}_factors_"][rows] = f
            state[f"{side}_bias_"][rows] = bias
            obj += o
            pen += p
        return obj, pen

    def epoch(self, state: dict[str, np.ndarray], epoch: int) -> float:
        self.start_epoch(epoch)
        _, user_pen = self._half("user", state)
        items_obj, _ = self._half("item", state)
        return (items_obj + user_pen) / self.data.nnz


class ImplicitALSTrainer(_HalfSteps):
    """Epochs of implicit ALS (the model of :class:`factorkit.ImplicitALS`) on Dask; the
    Gram ``w0 Y^T Y`` is reduced once per half-step and broadcast with ``Y``."""

    state_names = ("user_factors_", "item_factors_")
    n_fixed = 1

    def __init__(self, model: Any, data: DistributedInteractions, exchange: str) -> None:
        super().__init__(data, int(model.factors), exchange)
        self.model = model
        self.params = {
            name: getattr(model, name)
            for name in (
                "alpha",
                "confidence",
                "epsilon",
                "unobserved_weight",
                "regularization",
                "regularization_exponent",
                "solver",
                "cg_steps",
                "n_threads",
            )
        }

    def init_state(self, rng: np.random.Generator, init: Any) -> dict[str, np.ndarray]:
        d, k, scale = self.data, self.k, float(self.model.init_scale)
        users = init(rng, d.n_users, k, scale)
        items = init(rng, d.n_items, k, scale)
        return {"user_factors_": users, "item_factors_": items}

    def _gram(self, fixed: np.ndarray) -> np.ndarray:
        """``w0 Y^T Y`` as ImplicitALS computes it (float32 BLAS on one thread, exactly
        symmetric). The product is a reduction over the rows of ``Y``; the client holds
        ``Y`` between half-steps, so it is formed there once rather than summed from
        per-block partial Grams (same result, one fewer round)."""
        with single_thread_blas():
            g = fixed.T @ fixed
        g = np.triu(g) + np.triu(g, 1).T
        g *= np.float32(self.params["unobserved_weight"])
        return np.ascontiguousarray(g, dtype=np.float32)

    def _half(self, side: str, state: dict[str, np.ndarray]) -> tuple[float, float]:
        other = "item" if side == "user" else "user"
        fixed = state[f"{other}_factors_"]
        shared = self.fixed(side, [fixed], extra=(self._gram(fixed),))
        n_other = self.data.n_items if side == "user" else self.data.n_users
        cg = self.params["solver"] == "cg"
        own = state[f"{side}_factors_"]
        futs = []
        for b, (routed, pieces, (gram,)) in enumerate(shared):
            current = None
            if cg and routed and self.sources[side] is not None:
                current = self.sources[side][b]  # warm start: the block's last solve
            elif cg:  # warm start: the block's rows, sent to its worker
                rows = own[self.rows(side, b)]
                current = self.client.scatter(rows, workers=[self.data.worker_of(b)], hash=False)
                self._scattered.append(current)
                self.bytes_sent += rows.nbytes
            futs.append(
                self.submit(
                    _ials_task, side, b, routed, pieces, gram, current, self.params, n_other
                )
            )
        results = self.solved(side, futs, f"ImplicitALS {side} half-step")
        obj = pen = 0.0
        for b, (f, o, p, secs) in enumerate(results):
            self.task_seconds += secs
            own[self.rows(side, b)] = f
            obj += o
            pen += p
        return obj, pen

    def epoch(self, state: dict[str, np.ndarray], epoch: int) -> float:
        self.start_epoch(epoch)
        _, user_pen = self._half("user", state)
        items_obj, _ = self._half("item", state)
        return (items_obj + user_pen) / self.data.nnz
