"""Block ALS and implicit ALS on Dask: every worker runs factorkit's own row-solve kernels
(:func:`~factorkit.kernels.als.als_solve_rows`, :func:`~factorkit.kernels.implicit_als.
implicit_als_cg_rows`, :func:`~factorkit.kernels.implicit_als.implicit_als_cholesky_rows`)
on its row-blocks, the same solve as one machine.

One half-step solves every block of one side against the other side's factors ``Y``.
Two ways to get ``Y`` to the blocks (``exchange``):

- ``"broadcast"``: ``Y`` (with its biases, and for implicit ALS the Gram ``w0 Y^T Y``) is
  scattered once to every worker; each block gathers ``Y[cols]`` locally. Volume per
  half-step: ``W * n_other * (k + 1) * 4`` bytes, and every worker holds all of ``Y``.
- ``"routed"``: each block is sent only ``Y[cols]``, the rows it references (Spark's
  out-blocks). Volume: ``sum_b |cols_b| * (k + 1) * 4`` bytes; no worker holds all of
  ``Y``. It pays once ``Y`` no longer fits comfortably in a worker
  (``"auto"`` switches at :data:`BROADCAST_LIMIT_BYTES`), or when blocks reference a
  small part of a huge catalogue.

The client keeps the factors between half-steps (the fitted model is an ordinary
in-memory model, so it holds them anyway), which also makes every epoch a restart point:
a worker lost mid-step loses only tasks that Dask recomputes from the blocks' lineage and
the broadcast replicas on the surviving workers.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from factorkit._threads import resolve_threads, single_thread_blas
from factorkit.distributed._cluster import kernel_threads, wait_all
from factorkit.distributed._data import Block, DistributedInteractions
from factorkit.kernels.als import als_solve_rows
from factorkit.kernels.implicit_als import (
    implicit_als_cg_rows,
    implicit_als_cholesky_rows,
    implicit_als_confidence,
)

__all__ = ["BROADCAST_LIMIT_BYTES", "ALSTrainer", "ImplicitALSTrainer"]

#: ``exchange="auto"`` broadcasts the fixed side while its factors take at most this many
#: bytes (each worker then holds one copy next to its blocks); above, it routes rows to
#: the blocks that need them
BROADCAST_LIMIT_BYTES = 256 << 20


def _threads(n_threads: int | None) -> int:
    return resolve_threads(n_threads)


def _rows_of(fixed: Any, cols: np.ndarray) -> Any:
    """``fixed[cols]`` for a broadcast array, or the routed piece as it came."""
    return fixed if fixed.shape[0] == len(cols) else fixed[cols]


# ---------------------------------------------------------------------- worker tasks
def _als_task(
    block: Block,
    fixed: np.ndarray,
    fixed_bias: np.ndarray,
    mu: float,
    lam: float,
    weighted: bool,
    n_threads: int | None,
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Solve one block of explicit ALS; returns factors, biases, objective and penalty."""
    start = time.perf_counter()
    y = np.ascontiguousarray(_rows_of(fixed, block.cols))
    yb = np.ascontiguousarray(_rows_of(fixed_bias, block.cols))
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
            out_f,
            out_b,
        )
    counts = np.diff(block.indptr).astype(np.float64)
    sq = np.einsum("ij,ij->i", out_f, out_f, dtype=np.float64) + out_b.astype(np.float64) ** 2
    pen = float((lam * sq) @ counts) if weighted else float(lam * sq.sum())
    return out_f, out_b, float(obj), pen, time.perf_counter() - start


def _ials_task(
    block: Block,
    fixed: np.ndarray,
    gram: np.ndarray,
    current: np.ndarray | None,
    params: dict[str, Any],
    n_other: int,
) -> tuple[np.ndarray, float, float]:
    """One block of implicit ALS; returns factors, objective and the block's penalty."""
    start = time.perf_counter()
    y = np.ascontiguousarray(_rows_of(fixed, block.cols))
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
    else:
        out = np.array(current, copy=True)
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
    """Shared machinery: exchange choice, submitting one half-step, traffic accounting."""

    def __init__(self, data: DistributedInteractions, k: int, exchange: str) -> None:
        self.data = data
        self.client = data.client
        self.k = k
        self.exchange = {
            side: self._pick(exchange, data.n_items if side == "user" else data.n_users)
            for side in ("user", "item")
        }
        self._cols: dict[str, list[np.ndarray]] = {}
        #: bytes of factors sent to workers in the last epoch (broadcast counts each copy)
        self.bytes_sent = 0
        #: seconds the last epoch's tasks ran on the workers, summed over tasks
        self.task_seconds = 0.0

    def _pick(self, exchange: str, n_fixed: int) -> str:
        if exchange != "auto":
            return exchange
        return "broadcast" if n_fixed * (self.k + 1) * 4 <= BROADCAST_LIMIT_BYTES else "routed"

    def cols(self, side: str) -> list[np.ndarray]:
        """Each block's referenced columns (fetched once, for routed exchange)."""
        if side not in self._cols:
            futs = [
                self.client.submit(lambda blk: blk.cols, f, pure=False)
                for f in self.data.blocks(side)
            ]
            self._cols[side] = wait_all(futs, self.data.timeout, "routing table", self.client)
        return self._cols[side]

    def shared(
        self, side: str, arrays: list[np.ndarray], extra: tuple[np.ndarray, ...] = ()
    ) -> list[list[Any]]:
        """Per block, the fixed-side ``arrays`` it gets (broadcast futures, or routed rows)
        followed by the ``extra`` arrays (always broadcast), in one scatter call."""
        n_blocks = len(self.data.blocks(side))
        n_workers = len(self.data.workers)
        broadcast = self.exchange[side] == "broadcast"
        sent = list(arrays) + list(extra) if broadcast else list(extra)
        # hash=False: a fresh key every time, so data scattered again is never taken
        # for data the cluster already has
        futs = self.client.scatter(sent, broadcast=True, hash=False) if sent else []
        self.bytes_sent += n_workers * sum(a.nbytes for a in sent)
        if broadcast:
            return [futs] * n_blocks
        per_block = []
        for cols in self.cols(side):
            rows = [a[cols] for a in arrays]
            self.bytes_sent += sum(r.nbytes for r in rows)
            # sent with the task: the scheduler keeps it, so a task lost with a worker is
            # rerun elsewhere with the same inputs
            per_block.append(rows + futs)
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
        self.mu = float(data.global_mean)

    def init_state(self, rng: np.random.Generator, init: Any) -> dict[str, np.ndarray]:
        d, k = self.data, self.k
        return {
            "item_factors_": init(rng, d.n_items, k, float(self.model.init_scale)),
            "user_factors_": np.zeros((d.n_users, k), dtype=np.float32),
            "user_bias_": np.zeros(d.n_users, dtype=np.float32),
            "item_bias_": np.zeros(d.n_items, dtype=np.float32),
        }

    def _half(self, side: str, state: dict[str, np.ndarray]) -> tuple[float, float]:
        other = "item" if side == "user" else "user"
        fixed = [state[f"{other}_factors_"], state[f"{other}_bias_"]]
        shared = self.shared(side, fixed)
        n_threads = self.model.n_threads
        futs = [
            self.submit(_als_task, side, b, *shared[b], self.mu, self.lam, self.weighted, n_threads)
            for b in range(len(self.data.blocks(side)))
        ]
        results = wait_all(futs, self.data.timeout, f"ALS {side} half-step", self.client)
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
        self.bytes_sent = 0
        self.task_seconds = 0.0
        _, user_pen = self._half("user", state)
        items_obj, _ = self._half("item", state)
        return (items_obj + user_pen) / self.data.nnz


class ImplicitALSTrainer(_HalfSteps):
    """Epochs of implicit ALS (the model of :class:`factorkit.ImplicitALS`) on Dask; the
    Gram ``w0 Y^T Y`` is reduced once per half-step and broadcast with ``Y``."""

    state_names = ("user_factors_", "item_factors_")

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
        shared = self.shared(side, [fixed], extra=(self._gram(fixed),))
        n_other = self.data.n_items if side == "user" else self.data.n_users
        cg = self.params["solver"] == "cg"
        own = state[f"{side}_factors_"]
        futs = []
        for b in range(len(self.data.blocks(side))):
            current = None
            if cg:  # CG is warm-started from the block's rows, sent to its worker
                rows = own[self.rows(side, b)]
                current = self.client.scatter(rows, workers=[self.data.worker_of(b)], hash=False)
                self.bytes_sent += rows.nbytes
            futs.append(self.submit(_ials_task, side, b, *shared[b], current, self.params, n_other))
        results = wait_all(futs, self.data.timeout, f"ImplicitALS {side} half-step", self.client)
        obj = pen = 0.0
        for b, (f, o, p, secs) in enumerate(results):
            self.task_seconds += secs
            own[self.rows(side, b)] = f
            obj += o
            pen += p
        return obj, pen

    def epoch(self, state: dict[str, np.ndarray], epoch: int) -> float:
        self.bytes_sent = 0
        self.task_seconds = 0.0
        _, user_pen = self._half("user", state)
        items_obj, _ = self._half("item", state)
        return (items_obj + user_pen) / self.data.nnz
