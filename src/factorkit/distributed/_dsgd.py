"""BiasedMF on Dask by stratified distributed SGD (DSGD, Gemulla, Nijkamp, Haas & Sismanis,
KDD 2011).

The ratings form a ``B x B`` grid: user block ``b`` (the data's user row-blocks) by item
block ``c`` (the data's item position ranges). An epoch is ``B`` sub-epochs; sub-epoch
``s`` runs the ``B`` cells ``(b, (sigma[b] + shift[s]) % B)`` at once, which share no
user block and no item block, so no two tasks touch the same factor row (the same
interchangeability argument as one machine's block schedule, see
:mod:`factorkit.kernels.sgd`). Each cell runs factorkit's SGD epoch kernel over one
block, on one thread, on the worker holding its user block; the item block's factors
travel to it (``B`` item-factor blocks move per sub-epoch: ``n_items * (k + 1) * 4``
bytes; the user factors never move within an epoch). Factors come back to the client
once per epoch (history, checkpoints, restarts).

Under the adaptive learning-rate schedule (the model's default) each block also carries
its rows' step accumulators (:func:`factorkit.kernels.sgd.sgd_epoch_adaptive`); they are
part of the checkpointed state, so a resumed fit continues the schedule exactly.

The model and its objective are :class:`factorkit.BiasedMF`'s; the visiting order of
ratings differs from the one-machine fit (which relabels rows into its own grid), so
results agree in accuracy, not bit for bit.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from factorkit.distributed._cluster import kernel_threads, wait_all
from factorkit.distributed._data import Block, DistributedInteractions
from factorkit.kernels.sgd import sgd_epoch, sgd_epoch_adaptive, sgd_penalty, sgd_schedule

#: one thread per grid cell: the cells of a stratum run in parallel across the workers
_KERNEL_THREADS = (1,)

__all__ = ["DSGDTrainer"]


def _cell(block: Block, lo: int, hi: int, seed: int) -> tuple[np.ndarray, ...]:
    """Ratings of a user block whose items lie in ``lo .. hi - 1``: (local user, local
    item, value) in a seeded random order (DSGD visits a block's ratings at random)."""
    items = block.cols[block.indices]
    keep = np.flatnonzero((items >= lo) & (items < hi))
    rows = np.repeat(np.arange(block.n_rows, dtype=np.int32), np.diff(block.indptr))[keep]
    order = np.random.default_rng(seed).permutation(len(keep))
    return (
        rows[order],
        (items[keep] - lo).astype(np.int32)[order],
        block.values[keep][order],
    )


def _sgd_task(
    cell: tuple[np.ndarray, ...],
    users: tuple[np.ndarray, ...],
    items: tuple[np.ndarray, ...],
    mu: float,
    lr: float,
    reg: float,
    biased: bool,
) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...], float]:
    """SGD over one cell; returns the updated user and item blocks and the squared error.

    A block is ``(factors, biases)``, or ``(factors, biases, step sums)`` under the
    adaptive schedule (the per-row accumulators of :func:`sgd_epoch_adaptive`)."""
    u, i, v = cell
    users = tuple(np.array(a, copy=True) for a in users)  # task inputs are never mutated
    items = tuple(np.array(a, copy=True) for a in items)
    block_ptr = np.array([0, len(v)], dtype=np.int64)
    schedule = np.zeros((1, 1), dtype=np.int64)
    no_weights = np.zeros(0, dtype=np.float32)  # no sample weights on the Dask backend
    p, bu, q, bi = users[0], users[1], items[0], items[1]
    with kernel_threads(1):
        if len(users) == 3:
            sse = sgd_epoch_adaptive(
                u, i, v, no_weights, block_ptr, schedule, p, q, bu, bi, users[2], items[2],
                mu, lr, reg, biased, p.shape[1], np.zeros(1), *_KERNEL_THREADS,
            )  # fmt: skip
        else:
            sse = sgd_epoch(
                u, i, v, no_weights, block_ptr, schedule, p, q, bu, bi, mu, lr, reg, biased,
                np.zeros(1), *_KERNEL_THREADS,
            )  # fmt: skip
    return users, items, float(sse)


def _first(x: tuple) -> Any:
    return x[0]


def _second(x: tuple) -> Any:
    return x[1]


def _third(x: tuple) -> Any:
    return x[2]


class DSGDTrainer:
    """Epochs of BiasedMF by DSGD on the data's ``B x B`` grid of user and item blocks."""

    state_names = ("user_factors_", "item_factors_", "user_bias_", "item_bias_")

    def __init__(self, model: Any, data: DistributedInteractions, exchange: str) -> None:
        del exchange  # DSGD moves item blocks between tasks; there is nothing to choose
        self.model = model
        self.data = data
        self.client = data.client
        self.k = int(model.factors)
        self.mu = float(data.global_mean)
        self.bytes_sent = 0
        self.rng: np.random.Generator | None = None
        self.cells: list[list[Any]] | None = None
        self.adaptive = getattr(model, "learning_rate_schedule", "decay") == "adaptive"
        self.rows = ("_factors_", "_bias_") + (("_step_sums_",) if self.adaptive else ())

    def set_rng(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def init_state(self, rng: np.random.Generator, init: Any) -> dict[str, np.ndarray]:
        d, k, scale = self.data, self.k, float(self.model.init_scale)
        state = {
            "user_factors_": init(rng, d.n_users, k, scale),
            "item_factors_": init(rng, d.n_items, k, scale),
            "user_bias_": np.zeros(d.n_users, dtype=np.float32),
            "item_bias_": np.zeros(d.n_items, dtype=np.float32),
        }
        if self.adaptive:  # part of the state, so checkpoints resume the schedule exactly
            state["user_step_sums_"] = np.ones((d.n_users, 2), dtype=np.float32)
            state["item_step_sums_"] = np.ones((d.n_items, 2), dtype=np.float32)
        return state

    def _grid(self) -> list[list[Any]]:
        if self.cells is None:
            d, seed = self.data, int(self.rng.integers(0, 2**63))
            ib = d.item_bounds
            n_ub = len(d.user_blocks)
            self.cells = [
                [
                    self.client.submit(
                        _cell,
                        blk,
                        int(ib[c]),
                        int(ib[c + 1]),
                        seed + b * n_ub + c,
                        pure=False,
                        workers=[d.worker_of(b)],
                        allow_other_workers=True,
                    )
                    for c in range(len(ib) - 1)
                ]
                for b, blk in enumerate(d.user_blocks)
            ]
        return self.cells

    def epoch(self, state: dict[str, np.ndarray], epoch: int) -> float:
        d, model, client = self.data, self.model, self.client
        cells = self._grid()
        n_ub, n_ib = len(d.user_bounds) - 1, len(d.item_bounds) - 1
        n_strata = max(n_ub, n_ib)
        ub, ib = d.user_bounds, d.item_bounds
        rows = self.rows
        users = [tuple(state["user" + r][ub[b] : ub[b + 1]] for r in rows) for b in range(n_ub)]
        items = [tuple(state["item" + r][ib[c] : ib[c + 1]] for r in rows) for c in range(n_ib)]
        u_f = [client.scatter(x, workers=[d.worker_of(b)], hash=False) for b, x in enumerate(users)]
        i_f = [client.scatter(x, hash=False) for x in items]
        self.bytes_sent = sum(a.nbytes for x in users + items for a in x)
        lr = float(model.learning_rate) * float(model.learning_rate_decay) ** epoch
        reg, biased = float(model.regularization), bool(model.biased)
        sse_f = []
        for round_ in sgd_schedule(n_strata, self.rng):
            for cell_id in round_:
                b, c = divmod(int(cell_id), n_strata)
                if b >= n_ub or c >= n_ib:
                    continue
                out = client.submit(
                    _sgd_task,
                    cells[b][c],
                    u_f[b],
                    i_f[c],
                    self.mu,
                    lr,
                    reg,
                    biased,
                    pure=False,
                    workers=[d.worker_of(b)],
                    allow_other_workers=True,
                )
                u_f[b] = client.submit(_first, out, pure=False, workers=[d.worker_of(b)])
                i_f[c] = client.submit(_second, out, pure=False, workers=[d.worker_of(b)])
                sse_f.append(client.submit(_third, out, pure=False))
            self.bytes_sent += sum(a.nbytes for x in items for a in x)
        results = wait_all(u_f + i_f + sse_f, d.timeout, "DSGD epoch", client)
        for b in range(n_ub):
            for r, arr in zip(self.rows, results[b], strict=True):
                state["user" + r][ub[b] : ub[b + 1]] = arr
        for c in range(n_ib):
            for r, arr in zip(self.rows, results[n_ub + c], strict=True):
                state["item" + r][ib[c] : ib[c + 1]] = arr
        sse = float(sum(results[n_ub + n_ib :]))
        penalty = sgd_penalty(
            d.user_counts.astype(np.float32), state["user_factors_"], state["user_bias_"], biased
        ) + sgd_penalty(
            d.item_counts.astype(np.float32), state["item_factors_"], state["item_bias_"], biased
        )
        return (sse + reg * penalty) / d.nnz
