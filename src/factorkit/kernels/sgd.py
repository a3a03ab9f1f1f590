"""Stochastic gradient descent for biased matrix factorization, lock-free on all cores.

Parallel scheme (libmf's, Chin et al. 2015, made deterministic): users and items are
randomly permuted and cut into ``B`` row groups and ``B`` column groups of about equal
rating counts, giving a ``B x B`` grid of blocks. An epoch's schedule is ``B`` rounds of
``B`` blocks that share no row group and no column group. Blocks run as a dataflow, not
round by round: a block may start as soon as the previous block of its row group and the
previous block of its column group (in schedule order) are done, and any worker thread
claims any ready block (compare-and-swap on a per-block flag, completion published with
release/acquire ordering). No two threads ever touch the same user or item at once, so
there are no races and no locks; every row and column group meets its blocks in the same
order whoever runs them and whenever, and each block runs sequentially, so the result is
the round schedule's, bit for bit, for any number of workers and any timing. ``B`` must
not depend on the thread count for that to hold; the model uses ``B >= 2 * n_threads``
(a fixed 16 for up to 8 threads). There is no barrier: a worker that loses its core
(another process took it) holds up only the blocks that depend on the block it holds,
where a barrier after each round stalled every thread (docs/benchmarks.md, issue 11
item 1). Workers run on :func:`factorkit._threads.run_tasks` (Python threads, nogil),
one task each for the whole epoch.

Training runs in relabelled positions (``sgd_partition``): each group is a contiguous
range of factor rows, so within a block the user rows stream through memory in order
while the item rows of one column group stay in cache (random row access is bound by
memory latency; the arithmetic is vectorised either way). Within a block the ratings stay
grouped by user on large data, so each user row is loaded once. When a user group's rows
fit in cache, :func:`sgd_interleave` deals the ratings round-robin over the block's users
instead, so that consecutive updates do not wait on each other's stores. (Measurements
behind these choices: docs/benchmarks.md, "Kernel design notes".)

:func:`sgd_epoch` steps every update by one learning rate; :func:`sgd_epoch_adaptive`
by libmf's per-row adaptive rates (each row's step shrinks with its accumulated squared
gradients), on the same grid and with the same determinism. Both run one epoch kernel,
whose block loop shares the prediction and error of a rating and differs only in the
update; numba compiles it once per schedule, each with its own update only.

Kernels here see plain arrays only. :func:`sgd_partition` and :func:`sgd_schedule` are
the NumPy helpers that draw the relabelling and the per-epoch round schedule from
explicit random generators; :func:`sgd_arrange` lays the ratings out.
"""

from __future__ import annotations

import math

import numpy as np

from factorkit._threads import run_tasks
from factorkit.kernels._jit import (
    SAFE_FASTMATH,
    compare_and_swap,
    fetch_add32,
    futex_wait,
    futex_wake,
    jit,
    load32,
    load_acquire,
    prefetch_row,
    store_release,
)

#: ratings ahead whose item row is prefetched: the item rows of a block are scattered, so
#: without the hint each update waits for its row to arrive from memory
_AHEAD = 8

__all__ = [
    "sgd_arrange",
    "sgd_epoch",
    "sgd_epoch_adaptive",
    "sgd_interleave",
    "sgd_partition",
    "sgd_penalty",
    "sgd_schedule",
]


@jit(fastmath=SAFE_FASTMATH)
def _sgd_block(
    users, items, values, weights, start, stop, P, Q, bu, bi, GP, GQ, mu, lr, reg, biased,
    inv_k,
):  # pragma: no cover  # fmt: skip
    """Sequential SGD over ratings ``start:stop``; returns the sum of squared errors
    (each error taken before its update; weighted by ``weights`` unless it is empty).

    Both step rules share everything up to the error ``e``; the accumulators pick the
    update: per-row AdaGrad steps with ``GP``/``GQ`` (:func:`sgd_epoch_adaptive`), or
    the one step ``lr`` when they are None (:func:`sgd_epoch`). numba removes the
    branches on ``GP is None`` when it compiles, so each rule's specialisation holds its
    own update only (compiled and run as a kernel of its own would be)."""
    k = P.shape[1]
    sse = 0.0
    one = P.dtype.type(1.0)
    zero = P.dtype.type(0.0)
    has_w = len(weights) > 0
    wn = one
    lr_n = lr
    decay = one - lr * reg  # (1 - lr * reg) * x + lr * e * y  ==  x + lr * (e * y - reg * x)
    for n in range(start, stop):
        if has_w:
            wn = P.dtype.type(weights[n])
            if wn == 0.0:
                continue
            if GP is None:
                # the step of w * (e^2 + reg |x|^2): lr scaled by the weight (0: no update)
                lr_n = lr * wn
                decay = one - lr_n * reg
        if n + _AHEAD < stop:
            prefetch_row(Q, items[n + _AHEAD])
        u = users[n]
        i = items[n]
        dot = zero
        for f in range(k):
            dot += P[u, f] * Q[i, f]
        pred = mu + dot
        if biased:
            pred += bu[u] + bi[i]
        e = values[n] - pred
        if has_w:
            sse += np.float64(wn) * e * e
        else:
            sse += e * e
        if GP is None:
            if biased:
                bu[u] = decay * bu[u] + lr_n * e
                bi[i] = decay * bi[i] + lr_n * e
            le = lr_n * e
            for f in range(k):
                pf = P[u, f]
                qf = Q[i, f]
                P[u, f] = decay * pf + le * qf
                Q[i, f] = decay * qf + le * pf
            continue
        # each step is lr / sqrt(G) with the row's G from before this rating (libmf's
        # order); a weight scales the gradient, so it enters G squared
        if biased:
            gu = wn * (e - reg * bu[u])
            gi = wn * (e - reg * bi[i])
            bu[u] += lr / np.sqrt(GP[u, 1]) * gu
            bi[i] += lr / np.sqrt(GQ[i, 1]) * gi
            GP[u, 1] += gu * gu
            GQ[i, 1] += gi * gi
        eta_u = lr * wn / np.sqrt(GP[u, 0])
        eta_i = lr * wn / np.sqrt(GQ[i, 0])
        sp = zero
        sq = zero
        for f in range(k):
            pf = P[u, f]
            qf = Q[i, f]
            gp = e * qf - reg * pf
            gq = e * pf - reg * qf
            sp += gp * gp
            sq += gq * gq
            P[u, f] = pf + eta_u * gp
            Q[i, f] = qf + eta_i * gq
        GP[u, 0] += wn * wn * sp * inv_k
        GQ[i, 0] += wn * wn * sq * inv_k
    return sse


@jit()
def _total_sse(block_sse, schedule):  # pragma: no cover
    """Sum of the blocks' squared errors in schedule order (strict IEEE: no fastmath, so
    every variant and thread count sums the same way)."""
    total = 0.0
    n_rounds, width = schedule.shape
    for r in range(n_rounds):
        for j in range(width):
            total += block_sse[schedule[r, j]]
    return total


#: failed scans for a ready block before a waiting worker sleeps until a block completes
_SPINS = 200
#: slot of the sleeping-worker count in the epoch's sync array (a cache line away from
#: the completion count in slot 0)
_WAITERS = 16


@jit()
def _predecessors(schedule, n_blocks):  # pragma: no cover
    """For every schedule entry (round-major), the entry that ran its row group last and
    the one that ran its column group last (-1: none): the two it must wait for."""
    n_rounds, width = schedule.shape
    last_row = np.full(n_blocks, -1, dtype=np.int64)
    last_col = np.full(n_blocks, -1, dtype=np.int64)
    pred = np.empty((n_rounds * width, 2), dtype=np.int64)
    for e in range(n_rounds * width):
        b = schedule[e // width, e % width]
        r = b // n_blocks
        c = b % n_blocks
        pred[e, 0] = last_row[r]
        pred[e, 1] = last_col[c]
        last_row[r] = e
        last_col[c] = e
    return pred


@jit(fastmath=SAFE_FASTMATH)
def _sgd_worker(
    task, n_tasks, users, items, values, weights, block_ptr, n_blocks, schedule, pred,
    claimed, done, sync, P, Q, bu, bi, GP, GQ, mu, lr, reg, biased, inv_k, block_sse,
):  # pragma: no cover  # fmt: skip
    """One worker of an epoch: claims and runs ready blocks until every block is claimed.

    Entry ``e`` of the schedule (round-major) is ready once both its predecessors
    (``pred[e]``: the previous entries of its row group and of its column group) are
    done. A worker claims it by compare-and-swap on ``claimed[e]`` (0 -> 1), runs the
    block and publishes ``done[e] = 1`` with release ordering; the acquire load that sees
    it also sees the block's updates. So every row group and every column group meets its
    blocks in schedule order, whichever worker runs them and when: the result is that of
    running the rounds one after another, bit for bit, for any number of workers. There is
    no barrier: a worker that loses its core holds up only the blocks that depend on the
    block it holds.

    Each worker takes the blocks of its own contiguous share of row groups first (the
    split a static schedule would give it), so that its user rows stay in its core's
    cache, and any other ready block when none of its own is ready (a worker whose
    thread lost its core leaves its rows to the others). Which worker runs a block never
    changes the result.

    Waiting: a worker that finds nothing ready scans again up to ``_SPINS`` times, then
    sleeps on a futex until the next block completes (``sync[0]`` counts completions,
    ``sync[_WAITERS]`` the sleepers, so a completion makes a system call only when
    someone sleeps). A sleeping worker uses no CPU: on a machine with more runnable
    threads than cores, spinning would burn the time that the thread it waits for needs.
    The lowest unclaimed entry is always ready or waits only on claimed entries, which
    finish without waiting, so the epoch always completes; workers beyond the number of
    blocks find nothing to claim and return.
    """
    n_rounds, width = schedule.shape
    n_entries = n_rounds * width
    # the row groups this worker takes first (a contiguous share, as a static schedule
    # would give it): their user rows stay in its core's cache; it takes any other
    # ready block only when none of its own is ready
    own_lo = task * n_blocks // n_tasks
    own_hi = (task + 1) * n_blocks // n_tasks
    lo = 0  # entries below lo are claimed (by any worker)
    idle = 0
    while True:
        while lo < n_entries and load_acquire(claimed, lo) != 0:
            lo += 1
        if lo == n_entries:
            return 0
        seen = load32(sync, 0)
        ran = False
        for sweep in range(2):
            for e in range(lo, n_entries):
                if load_acquire(claimed, e) != 0:
                    continue
                b = schedule[e // width, e % width]
                if sweep == 0 and not (own_lo <= b // n_blocks < own_hi):
                    continue
                a = pred[e, 0]
                if a >= 0 and load_acquire(done, a) == 0:
                    continue
                c = pred[e, 1]
                if c >= 0 and load_acquire(done, c) == 0:
                    continue
                if not compare_and_swap(claimed, e, 0, 1):
                    continue
                block_sse[b] = _sgd_block(
                    users, items, values, weights, block_ptr[b], block_ptr[b + 1], P, Q, bu,
                    bi, GP, GQ, mu, lr, reg, biased, inv_k,
                )  # fmt: skip
                store_release(done, e, 1)
                fetch_add32(sync, 0, 1)
                if load32(sync, _WAITERS) > 0:
                    futex_wake(sync, 0)
                ran = True
                break
            if ran:
                break
        if ran:
            idle = 0
        else:
            idle += 1
            if idle > _SPINS:
                # sleeps only if no block has completed since ``seen`` was read (before
                # the scan): a completion after it changes sync[0], so the wait returns
                fetch_add32(sync, _WAITERS, 1)
                futex_wait(sync, 0, seen)
                fetch_add32(sync, _WAITERS, -1)


def _sgd_epoch(
    users, items, values, weights, block_ptr, schedule, P, Q, bu, bi, GP, GQ, mu, lr, reg,
    biased, k, block_sse, n_threads,
):  # fmt: skip
    """The epoch of :func:`sgd_epoch` (``GP``, ``GQ`` None) and :func:`sgd_epoch_adaptive`:
    ``n_threads`` workers (:func:`_sgd_worker`) on :func:`factorkit._threads.run_tasks`.
    One thread runs the same worker on the calling thread (same compiled code, so the
    same bits)."""
    n_blocks = math.isqrt(len(block_ptr) - 1)
    pred = _predecessors(schedule, n_blocks)
    n_entries = schedule.size
    claimed = np.zeros(n_entries, dtype=np.int64)
    done = np.zeros(n_entries, dtype=np.int64)
    sync = np.zeros(_WAITERS + 16, dtype=np.int32)
    dtype = P.dtype.type
    args = (
        users, items, values, weights, block_ptr, n_blocks, schedule, pred, claimed, done,
        sync, P, Q, bu, bi, GP, GQ, dtype(mu), dtype(lr), dtype(reg), biased, dtype(1.0 / k),
        block_sse,
    )  # fmt: skip
    workers = max(1, min(int(n_threads), n_entries))
    if workers == 1:
        _sgd_worker(0, 1, *args)
    else:
        run_tasks(_sgd_worker, workers, workers, *args)
    return _total_sse(block_sse, schedule)


def sgd_epoch(
    users, items, values, weights, block_ptr, schedule, P, Q, bu, bi, mu, lr, reg, biased,
    block_sse, n_threads,
):  # fmt: skip
    """One SGD epoch over every rating, block by block; returns the sum of squared errors.

    Model: ``r_ui ~ mu + b_u + b_i + P[u] . Q[i]`` (biases only when ``biased``). For each
    rating, with ``e = r - prediction``::

        b_u += lr * (e - reg * b_u)            b_i += lr * (e - reg * b_i)
        P[u] += lr * (e * Q[i] - reg * P[u])   Q[i] += lr * (e * P[u] - reg * Q[i])

    (both factor updates use the old values). With ``weights``, rating ``n``'s step uses
    ``lr * weights[n]``: the gradient of ``w (e^2 + reg (|P[u]|^2 + ..))``, so weight 0
    skips the rating and the returned error is ``sum w e^2``.

    Parameters
    ----------
    users, items : int32 arrays (n,)
        Rating positions, grouped by block (see :func:`sgd_arrange`).
    values : float array (n,)
        Ratings, same order.
    weights : float32 array (n,) or (0,)
        Each rating's weight (finite, >= 0), same order; empty for all 1 (then the
        arithmetic is exactly the unweighted one).
    block_ptr : int64 array (B * B + 1,)
        Ratings of block ``b`` (row group ``b // B``, column group ``b % B``) lie in
        ``block_ptr[b]:block_ptr[b + 1]``.
    schedule : int64 array (rounds, width)
        Block ids; the blocks of one round must share no row or column group (they may
        run in parallel). Every row and column group meets its blocks in round order.
    P, Q : float arrays (n_users, k), (n_items, k), C order
        Factors, updated in place. ``bu``, ``bi``: biases, updated in place.
    mu, lr, reg : float
        Global mean, learning rate, regularisation.
    biased : bool
    block_sse : float64 array (B * B,)
        Scratch: each block's squared error, summed in block order afterwards so the
        total does not depend on thread count either.
    n_threads : int
        Workers (threads of :func:`factorkit._threads.run_tasks`; one runs on the calling
        thread). Blocks run as soon as the previous blocks of their row and column groups
        are done, not round by round (module docstring); the result is the same for any
        count (each block runs sequentially, and each group meets its blocks in schedule
        order).
    """
    return _sgd_epoch(
        users, items, values, weights, block_ptr, schedule, P, Q, bu, bi, None, None, mu, lr,
        reg, biased, P.shape[1], block_sse, n_threads,
    )  # fmt: skip


def sgd_epoch_adaptive(
    users, items, values, weights, block_ptr, schedule, P, Q, bu, bi, GP, GQ, mu, lr, reg,
    biased, k, block_sse, n_threads,
):  # fmt: skip
    """One SGD epoch with libmf's per-row adaptive steps; returns the sum of squared errors.

    The adaptive learning-rate schedule of Chin, Zhuang, Juan & Lin ("A learning-rate
    schedule for stochastic gradient methods to matrix factorization", PAKDD 2015), the
    default of libmf: every factor row keeps ``G``, one plus the sum over its updates of
    the squared gradient averaged over the ``k`` coordinates, and steps
    ``lr / sqrt(G)`` along the gradient. For rating ``(u, i)`` with ``e = r - prediction``
    and gradients ``g_p = e * Q[i] - reg * P[u]``, ``g_q = e * P[u] - reg * Q[i]``::

        P[u] += lr / sqrt(GP[u, 0]) * g_p      GP[u, 0] += |g_p|^2 / k
        Q[i] += lr / sqrt(GQ[i, 0]) * g_q      GQ[i, 0] += |g_q|^2 / k

    (``G`` grows after the step, as in libmf). The biases have accumulators of their own,
    ``GP[u, 1]`` and ``GQ[i, 1]``, with ``g = e - reg * b``. With ``weights``, rating
    ``n``'s gradients are multiplied by ``weights[n]`` (weight 0 skips it).

    Parameters are those of :func:`sgd_epoch`, and:

    GP, GQ : float32 arrays (n_users, 2), (n_items, 2)
        Accumulators, updated in place; 1.0 before the first epoch.
    k : int
        The number of real factors: the rows of ``P`` and ``Q`` may be padded with zero
        columns, which keep zero gradients and do not count in the average.

    Parallel scheme and determinism are :func:`sgd_epoch`'s: a block owns its rows' factors,
    biases and accumulators alike.
    """
    return _sgd_epoch(
        users, items, values, weights, block_ptr, schedule, P, Q, bu, bi, GP, GQ, mu, lr,
        reg, biased, k, block_sse, n_threads,
    )  # fmt: skip


@jit(fastmath=SAFE_FASTMATH)
def sgd_penalty(counts, factors, bias, biased):  # pragma: no cover
    """``sum_r counts[r] * (|factors[r]|^2 + bias[r]^2)`` (bias only when ``biased``), in
    float64: the regularisation term of the SGD objective, each row counted once per rating.
    """
    total = 0.0
    for r in range(factors.shape[0]):
        sq = factors.dtype.type(0.0)
        for f in range(factors.shape[1]):
            sq += factors[r, f] * factors[r, f]
        row = np.float64(sq)
        if biased:
            row += np.float64(bias[r]) * bias[r]
        total += counts[r] * row
    return total


def sgd_partition(
    counts: np.ndarray, n_blocks: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Randomly relabel rows and cut them into ``n_blocks`` groups of about equal count.

    Parameters
    ----------
    counts : int array (n,)
        Ratings per row (user or item).
    n_blocks : int
    rng : numpy.random.Generator

    Returns
    -------
    perm : int64 array (n,)
        ``perm[new] = old``: the random relabelling. Training runs in the new labels, so
        each group is a contiguous range of rows (a user group's factor rows stream
        through the cache in order).
    group : int64 array (n,)
        Group of each new label; non-decreasing, cut where the cumulative count crosses
        multiples of ``total / n_blocks``.
    """
    perm = rng.permutation(len(counts)).astype(np.int64)
    c = np.asarray(counts, dtype=np.float64)[perm]
    total = c.sum()
    mid = np.cumsum(c) - 0.5 * c
    group = np.minimum((mid * n_blocks / max(total, 1.0)).astype(np.int64), n_blocks - 1)
    return perm, group


@jit()
def sgd_arrange(
    indptr, items, values, user_perm, item_new, user_group, item_group, n_blocks
):  # pragma: no cover
    """Lay canonical CSR ratings out for :func:`sgd_epoch` in the relabelled positions.

    ``indptr``/``items``/``values`` are the ratings in CSR order over the original user
    positions; ``user_perm[new] = old`` and ``item_new[old] = new`` relabel users and
    items; ``user_group``/``item_group`` are the groups of the new labels.

    Returns ``(users, items, values, block_ptr, seen_indptr, seen_indices)``: the ratings
    grouped by block (row-major over the ``n_blocks x n_blocks`` grid) and, within a
    block, by new user label (stable: a counting sort); ``block_ptr`` delimits blocks;
    ``seen_indptr``/``seen_indices`` is the CSR structure in the new labels.
    """
    n_users = len(user_perm)
    n = len(items)
    nb2 = n_blocks * n_blocks
    block_ptr = np.zeros(nb2 + 1, dtype=np.int64)
    seen_indptr = np.zeros(n_users + 1, dtype=np.int64)
    seen_indices = np.empty(n, dtype=np.int32)
    pos = 0
    for nu in range(n_users):
        old = user_perm[nu]
        row = user_group[nu] * n_blocks
        for p in range(indptr[old], indptr[old + 1]):
            it = item_new[items[p]]
            seen_indices[pos] = it
            pos += 1
            block_ptr[row + item_group[it] + 1] += 1
        seen_indptr[nu + 1] = pos
    for b in range(nb2):
        block_ptr[b + 1] += block_ptr[b]
    fill = block_ptr[:-1].copy()
    out_u = np.empty(n, dtype=np.int32)
    out_i = np.empty(n, dtype=np.int32)
    out_v = np.empty(n, dtype=values.dtype)
    for nu in range(n_users):
        old = user_perm[nu]
        row = user_group[nu] * n_blocks
        for p in range(indptr[old], indptr[old + 1]):
            it = item_new[items[p]]
            b = row + item_group[it]
            q = fill[b]
            fill[b] = q + 1
            out_u[q] = nu
            out_i[q] = it
            out_v[q] = values[p]
    return out_u, out_i, out_v, block_ptr, seen_indptr, seen_indices


@jit()
def sgd_interleave(users, items, values, weights, block_ptr):  # pragma: no cover
    """Within each block, reorder ratings from user-by-user to round-robin over users.

    Each block's ratings come grouped by user (:func:`sgd_arrange`); afterwards they run
    as every user's first rating, then every user's second, and so on (users in the same
    order each round), so consecutive updates touch different user rows and do not wait
    on each other's stores. In place; ``weights`` (one per rating, or empty) move with
    the ratings.
    """
    has_w = len(weights) > 0
    for b in range(len(block_ptr) - 1):
        lo = block_ptr[b]
        hi = block_ptr[b + 1]
        if hi - lo < 2:
            continue
        rank = np.empty(hi - lo, dtype=np.int64)
        longest = 0
        run = 0
        for p in range(lo, hi):
            run = run + 1 if p > lo and users[p] == users[p - 1] else 0
            rank[p - lo] = run
            longest = max(longest, run + 1)
        fill = np.zeros(longest + 1, dtype=np.int64)
        for t in range(hi - lo):
            fill[rank[t] + 1] += 1
        for r in range(longest):
            fill[r + 1] += fill[r]
        order = np.empty(hi - lo, dtype=np.int64)
        for t in range(hi - lo):
            order[fill[rank[t]]] = t
            fill[rank[t]] += 1
        u = users[lo:hi].copy()
        i = items[lo:hi].copy()
        v = values[lo:hi].copy()
        for t in range(hi - lo):
            users[lo + t] = u[order[t]]
            items[lo + t] = i[order[t]]
            values[lo + t] = v[order[t]]
        if has_w:
            w = weights[lo:hi].copy()
            for t in range(hi - lo):
                weights[lo + t] = w[order[t]]


def sgd_schedule(n_blocks: int, rng: np.random.Generator) -> np.ndarray:
    """A random epoch schedule: ``n_blocks`` rounds of ``n_blocks`` mutually free blocks.

    Round ``r`` pairs row group ``g`` with column group ``(sigma[g] + shift[r]) % B`` for
    random permutations ``sigma`` and ``shift``, so every block runs exactly once per
    epoch and no round repeats a row or column group. Returns int64 ``(B, B)`` block ids.
    """
    sigma = rng.permutation(n_blocks)
    shift = rng.permutation(n_blocks)
    rows = np.arange(n_blocks)
    cols = (sigma[None, :] + shift[:, None]) % n_blocks
    return (rows[None, :] * n_blocks + cols).astype(np.int64)
