"""SVD++ kernels: one SGD epoch user by user, the effective user vectors, a seeded shuffle.

The model (Koren 2008) predicts ``mu + b_u + b_i + q_i . (p_u + |N(u)|^-1/2 sum_{j in N(u)}
y_j)``, where ``N(u)`` are the items ``u`` rated in training.

Per-rating SGD as in Koren's paper (and Surprise) updates every ``y_j, j in N(u)`` after
each of the user's ratings and recomputes the implicit sum each time: ``O(|N(u)|^2 k)``
per user and epoch. :func:`svdpp_epoch` visits the ratings user by user and gives the same
result in ``O(|N(u)| k)``: every ``y_j`` of the user receives the *same* update per rating,

    y_j <- d y_j + c err q_i,   d = 1 - lr_y reg_y,   c = lr_y |N(u)|^-1/2,

so the implicit sum evolves in closed form (``z <- d z + lr_y err q_i``), and after the
user's ``n = |N(u)|`` ratings each ``y_j`` equals ``d^n y_j + c G`` with
``G = sum_t d^(n-1-t) err_t q_(i_t)`` accumulated on the way. The ``y_j`` are then written
once per user. In exact arithmetic this is the per-rating algorithm. With sample weights
``w_t`` each rating's steps are ``lr w_t`` (``d_t = 1 - lr_y w_t reg_y``), and the same
closed form holds with ``prod_t d_t`` for ``d^n`` and ``w_t err_t`` in ``G``.

Parallelism: users are split over threads ("Hogwild!", Recht et al. 2011), as
``SVDPP_TASKS`` contiguous chunks of the visiting order, which one worker per thread on
:func:`factorkit._threads.run_tasks` (Python threads) claims one at a time in compiled
code (a ``prange`` cost about 2 s of first-run compilation for its parallel region). A
user's own state (``b_u``, ``p_u``, the implicit sum) is private to one thread, but item
state (``b_i``, ``q_i``, ``y_j``) is shared and read and written without locks;
concurrent updates of one item may be lost or mixed. Ratings are sparse and each update
is small, so this behaves like SGD with slightly stale reads and is the accepted trade
for linear speed-up. With one thread (``numba.set_num_threads(1)``) the loop runs in
``user_order`` on one thread and results are bit-for-bit repeatable.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import prange

from factorkit._threads import run_tasks
from factorkit.kernels._jit import SAFE_FASTMATH, claim_next, copy_row, jit
from factorkit.kernels.random import SPLITMIX64_GAMMA, splitmix64_below, splitmix64_next

__all__ = ["SVDPP_TASKS", "svdpp_epoch", "svdpp_rating_order", "svdpp_user_vectors"]

#: chunks of the visiting order per epoch with several threads: a fixed count (never the
#: thread count), small enough that a task's call overhead is nothing next to its users'
#: work, large enough that a thread which loses its core holds up a small share only
SVDPP_TASKS = 64


@jit()
def _shuffled_positions(start, stop, seed, row, out):  # pragma: no cover
    """Fill ``out[:stop-start]`` with ``start..stop-1`` in a Fisher-Yates order that
    depends only on ``(seed, row)`` (so it is the same whichever thread runs the row)."""
    n = stop - start
    for a in range(n):
        out[a] = start + a
    state, _ = splitmix64_next(np.uint64(seed) ^ (np.uint64(row) * SPLITMIX64_GAMMA))
    for a in range(n - 1, 0, -1):
        state, bits = splitmix64_next(state)
        b = splitmix64_below(bits, a + 1)
        tmp = out[a]
        out[a] = out[b]
        out[b] = tmp


@jit(parallel=True)
def svdpp_rating_order(indptr, seed):  # pragma: no cover
    """CSR positions with every row's segment shuffled exactly as :func:`svdpp_epoch`
    shuffles it for the same ``seed`` (for tests and reference implementations)."""
    n_rows = len(indptr) - 1
    out = np.empty(indptr[n_rows], dtype=np.int64)
    for row in prange(n_rows):
        _shuffled_positions(indptr[row], indptr[row + 1], seed, row, out[indptr[row] :])
    return out


@jit(fastmath=SAFE_FASTMATH)
def _weighted_ratings(
    u, order, items, values, weights, global_mean, user_bias, item_bias, pu, item_factors, z,
    acc, lr, reg, lr_bias, reg_bias, lr_implicit, reg_implicit,
):  # pragma: no cover  # fmt: skip
    """User ``u``'s ratings (positions ``order``) with weighted steps, for
    :func:`svdpp_epoch`: rating ``p``'s step sizes are ``weights[p]`` times as long,
    weight 0 skips it. Updates ``pu``, ``z``, ``acc``, ``user_bias[u]`` and the items'
    state; returns the weighted squared error and ``prod_t d_t``, the shrink of the
    user's ``y_j`` (``decay**n`` unweighted). Separate from the unweighted loop so that
    unweighted training compiles to the same arithmetic as before weights existed."""
    dtype = pu.dtype
    one = dtype.type(1.0)
    n_factors = len(pu)
    bu = user_bias[u]
    user_loss = 0.0
    shrink = one
    for a in range(len(order)):
        p = order[a]
        w = dtype.type(weights[p])
        if w == 0.0:
            continue
        lr_w = lr * w
        lr_bw = lr_bias * w
        lr_yw = lr_implicit * w
        decay_w = one - lr_yw * reg_implicit
        shrink *= decay_w
        i = items[p]
        qi = item_factors[i]
        dot = dtype.type(0.0)
        for f in range(n_factors):
            dot += qi[f] * (pu[f] + z[f])
        err = values[p] - (global_mean + bu + item_bias[i] + dot)
        werr = w * err
        user_loss += werr * err
        bu += lr_bw * (err - reg_bias * bu)
        item_bias[i] += lr_bw * (err - reg_bias * item_bias[i])
        for f in range(n_factors):
            puf = pu[f]
            qif = qi[f]
            zf = z[f]
            pu[f] = puf + lr_w * (err * qif - reg * puf)
            qi[f] = qif + lr_w * (err * (puf + zf) - reg * qif)
            z[f] = decay_w * zf + lr_yw * err * qif
            acc[f] = decay_w * acc[f] + werr * qif
    user_bias[u] = bu
    return user_loss, shrink


def svdpp_epoch(
    indptr,
    items,
    values,
    weights,
    user_order,
    seed,
    global_mean,
    user_bias,
    item_bias,
    user_factors,
    item_factors,
    implicit_factors,
    lr,
    reg,
    lr_bias,
    reg_bias,
    lr_implicit,
    reg_implicit,
    n_threads=None,
):
    """One SGD epoch of SVD++ over a users x items CSR matrix; updates in place.

    Parameters
    ----------
    indptr, items, values : CSR arrays (int64, int32, float) of the training ratings;
        ``N(u)`` is row ``u``'s items.
    weights : float array of the factors' dtype, one per rating in CSR order, or empty
        (every weight 1, the unweighted arithmetic exactly). Rating ``p``'s step sizes are
        multiplied by ``weights[p]`` (the gradient of its weighted error and penalty);
        weight 0 skips the rating. ``N(u)`` keeps every rated item whatever its weight.
    user_order : int array, the order in which users are visited.
    seed : uint64; each user's ratings are visited in an order drawn from ``(seed, u)``
        (see :func:`svdpp_rating_order`).
    global_mean : scalar of the factors' dtype.
    user_bias, item_bias : 1-D arrays; user_factors (n_users x k), item_factors and
        implicit_factors (n_items x k), all of one float dtype.
    lr, reg : learning rate and L2 penalty for ``p_u`` and ``q_i``.
    lr_bias, reg_bias : for ``b_u`` and ``b_i``.
    lr_implicit, reg_implicit : for ``y_j``.

    Returns
    -------
    float: the sum of (weighted) squared training errors, each taken before its update.

    Races: see the module docstring (Hogwild over users; deterministic on one thread).
    The ``SVDPP_TASKS`` chunks of ``user_order`` run on ``n_threads`` Python threads
    (:func:`factorkit._threads.run_tasks`; None: ``numba.get_num_threads()``, so call it
    under ``using_threads(n)``).
    """
    if n_threads is None:
        n_threads = numba.get_num_threads()
    # one thread: one chunk, the users in ``user_order`` exactly (the chunks would run in
    # that order anyway, so the result is the same; this saves the claims)
    n_tasks = 1 if n_threads <= 1 else max(1, min(SVDPP_TASKS, len(user_order)))
    args = (
        indptr, items, values, weights, user_order, seed, global_mean, user_bias, item_bias,
        user_factors, item_factors, implicit_factors, lr, reg, lr_bias, reg_bias,
        lr_implicit, reg_implicit,
    )  # fmt: skip
    parts = np.zeros(n_tasks)
    claim = np.zeros(1, dtype=np.int64)
    if n_tasks == 1:
        _epoch_worker(0, 1, claim, parts, *args)
    else:
        # one task per thread, each claiming chunks in compiled code: the threads enter
        # Python (and take the GIL) once per epoch instead of once per chunk; on a busy
        # machine the per-chunk round trips cost 2-thread fits about a quarter more CPU
        # time (docs/benchmarks.md, issue 11 item 1)
        run_tasks(_epoch_worker, min(n_threads, n_tasks), n_threads, claim, parts, *args)
    return math.fsum(parts)


@jit(fastmath=SAFE_FASTMATH)
def _epoch_worker(
    worker, n_workers, claim, parts, indptr, items, values, weights, user_order, seed,
    global_mean, user_bias, item_bias, user_factors, item_factors, implicit_factors, lr, reg,
    lr_bias, reg_bias, lr_implicit, reg_implicit,
):  # pragma: no cover  # fmt: skip
    """Chunks of :func:`svdpp_epoch` claimed from ``claim`` until none are left: chunk
    ``c`` of ``len(parts)`` is users ``user_order[lo:hi]``, a contiguous share, and its
    (weighted) squared error goes to ``parts[c]``, whichever thread ran it. One task of
    :func:`~factorkit._threads.run_tasks` per thread (one call with one chunk on one
    thread). One function, so that numba compiles the chunk's code once. Long because
    one rating's update touches every parameter group that reads the same prediction."""
    n_factors = user_factors.shape[1]
    dtype = user_factors.dtype
    decay = dtype.type(1.0) - lr_implicit * reg_implicit
    has_w = len(weights) > 0
    n_order = len(user_order)
    n_chunks = len(parts)
    chunk = claim_next(claim)
    while chunk < n_chunks:
        loss = 0.0
        for t in range(chunk * n_order // n_chunks, (chunk + 1) * n_order // n_chunks):
            u = user_order[t]
            start = indptr[u]
            stop = indptr[u + 1]
            n = stop - start
            if n == 0:
                continue
            norm = dtype.type(1.0 / np.sqrt(n))
            # the user's own state lives in private buffers for the user's whole pass
            pu = user_factors[u].copy()
            z = np.zeros(n_factors, dtype=dtype)
            acc = np.zeros(n_factors, dtype=dtype)
            for p in range(start, stop):
                yj = implicit_factors[items[p]]
                for f in range(n_factors):
                    z[f] += yj[f]
            for f in range(n_factors):
                z[f] *= norm
            order = np.empty(n, dtype=np.int64)
            _shuffled_positions(start, stop, seed, u, order)
            if has_w:
                user_loss, shrink = _weighted_ratings(
                    u, order, items, values, weights, global_mean, user_bias, item_bias, pu,
                    item_factors, z, acc, lr, reg, lr_bias, reg_bias, lr_implicit, reg_implicit,
                )  # fmt: skip
                copy_row(user_factors[u], pu)
                loss += user_loss
            else:
                # unweighted: the arithmetic exactly as before weights existed
                bu = user_bias[u]
                user_loss = 0.0
                for a in range(n):
                    p = order[a]
                    i = items[p]
                    qi = item_factors[i]
                    dot = dtype.type(0.0)
                    for f in range(n_factors):
                        dot += qi[f] * (pu[f] + z[f])
                    err = values[p] - (global_mean + bu + item_bias[i] + dot)
                    user_loss += err * err
                    bu += lr_bias * (err - reg_bias * bu)
                    item_bias[i] += lr_bias * (err - reg_bias * item_bias[i])
                    for f in range(n_factors):
                        puf = pu[f]
                        qif = qi[f]
                        zf = z[f]
                        pu[f] = puf + lr * (err * qif - reg * puf)
                        qi[f] = qif + lr * (err * (puf + zf) - reg * qif)
                        z[f] = decay * zf + lr_implicit * err * qif
                        acc[f] = decay * acc[f] + err * qif
                user_bias[u] = bu
                copy_row(user_factors[u], pu)
                loss += user_loss
                shrink = dtype.type(decay**n)
            step = lr_implicit * norm
            for p in range(start, stop):
                j = items[p]
                for f in range(n_factors):
                    implicit_factors[j, f] = shrink * implicit_factors[j, f] + step * acc[f]
        parts[chunk] = loss
        chunk = claim_next(claim)
    return 0.0


@jit(parallel=True, fastmath=SAFE_FASTMATH)
def svdpp_user_vectors(indptr, items, user_factors, implicit_factors, out):  # pragma: no cover
    """``out[u] = p_u + |N(u)|^-1/2 sum_{j in N(u)} y_j`` for every row ``u`` of the CSR
    structure (rows without items get ``p_u``). Each row is summed by one thread in CSR
    order, so the result does not depend on the thread count."""
    n_users, n_factors = user_factors.shape
    for u in prange(n_users):
        start = indptr[u]
        stop = indptr[u + 1]
        n = stop - start
        z = np.zeros(n_factors, dtype=out.dtype)
        for p in range(start, stop):
            j = items[p]
            for f in range(n_factors):
                z[f] += implicit_factors[j, f]
        norm = out.dtype.type(1.0 / np.sqrt(n)) if n > 0 else out.dtype.type(0.0)
        for f in range(n_factors):
            out[u, f] = user_factors[u, f] + norm * z[f]
