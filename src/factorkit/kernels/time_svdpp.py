"""timeSVD++ kernels: one SGD epoch user by user (Koren 2009, "Collaborative filtering
with temporal dynamics"), on SVD++'s linear-time implicit update.

The model predicts, for user ``u``, item ``i`` and day ``t``::

    mu + b_u + alpha_u dev_u(t) + b_{u,t} + b_i + b_{i,Bin(t)}
       + q_i . (p_u + alpha_pu dev_u(t) + |N(u)|^-1/2 sum_{j in N(u)} y_j)

with ``dev_u(t) = sign(t - t_u) |t - t_u|^beta`` (``t_u`` the user's mean rating day).
The kernel does not compute times: the model passes, per rating, its item bin
(``bins``), its drift ``dev_u(t)`` (``devs``) and the slot of its (user, day) bias
(``slots``, an index into ``day_bias``), all constant over training.

The implicit factors follow :mod:`factorkit.kernels.svdpp`: every ``y_j`` of the user
receives the same update per rating, so the implicit sum evolves in closed form and the
``y_j`` are written once per user, giving per-rating SGD in ``O(|N(u)| k)``.

Parallelism: Hogwild over users as in :func:`factorkit.kernels.svdpp.svdpp_epoch`. A
user's state (``b_u``, ``alpha_u``, ``p_u``, ``alpha_pu``, the user's day biases, the
implicit sum) is private to one thread; item state (``b_i``, ``b_{i,bin}``, ``q_i``,
``y_j``) is shared and updated without locks. With several threads the visiting order
is cut into ``TIME_SVDPP_TASKS`` contiguous chunks, compiled GIL-free tasks that
:func:`factorkit._threads.run_tasks` runs on Python threads (no parallel region: that
cost about 3 s of first-run compilation); with one thread one task visits users exactly
in ``user_order``, and results are bit-for-bit repeatable (and equal to the former
``prange`` kernel's).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from factorkit._threads import run_tasks
from factorkit.kernels._jit import SAFE_FASTMATH, copy_row, jit
from factorkit.kernels.svdpp import _shuffled_positions

__all__ = ["RATE_NAMES", "TIME_SVDPP_TASKS", "time_svdpp_epoch"]

#: chunks of the visiting order per epoch: a fixed count (never the thread count), small
#: enough that a task's call overhead is nothing next to its users' work, large enough
#: that a thread which loses its core holds up only a small share of the epoch
TIME_SVDPP_TASKS = 64

#: the order of the step sizes and penalties in the ``rates`` array of the epoch kernel
RATE_NAMES = (
    "lr",  # p_u, q_i
    "reg",
    "lr_bias",  # b_u, b_i, b_{i,bin}, b_{u,t}
    "reg_bias",  # b_u, b_i
    "lr_implicit",  # y_j
    "reg_implicit",
    "lr_drift",  # alpha_u, alpha_pu
    "reg_drift",
    "reg_day",  # b_{u,t}
    "reg_bin",  # b_{i,bin}
)


@jit(fastmath=SAFE_FASTMATH)
def _weighted_ratings(
    u, order, items, values, weights, bins, devs, slots, global_mean, user_bias, user_drift,
    day_bias, item_bias, item_bin_bias, pu, apu, item_factors, z, acc, rates,
):  # pragma: no cover  # fmt: skip
    """User ``u``'s ratings (positions ``order``) with weighted steps, for
    :func:`time_svdpp_epoch`: rating ``p``'s step sizes are ``weights[p]`` times as long,
    weight 0 skips it. Updates ``pu``, ``apu``, ``z``, ``acc``, the user's biases and the
    items' state; returns the weighted squared error and ``prod_t d_t``, the shrink of
    the user's ``y_j``. Separate from the unweighted loop so that unweighted training
    compiles to the same arithmetic as before weights existed. Long for the reason
    :func:`time_svdpp_epoch` is."""
    dtype = pu.dtype
    one = dtype.type(1.0)
    n_factors = len(pu)
    lr, reg, lr_b, reg_b = rates[0], rates[1], rates[2], rates[3]
    lr_y, reg_y, lr_a, reg_a = rates[4], rates[5], rates[6], rates[7]
    reg_day, reg_bin = rates[8], rates[9]
    bu = user_bias[u]
    au = user_drift[u]
    user_loss = 0.0
    shrink = one
    for a in range(len(order)):
        p = order[a]
        w = dtype.type(weights[p])
        if w == 0.0:
            continue
        lr_w = lr * w
        lr_bw = lr_b * w
        lr_yw = lr_y * w
        lr_aw = lr_a * w
        decay_w = one - lr_yw * reg_y
        shrink *= decay_w
        i = items[p]
        b = bins[p]
        dev = devs[p]
        s = slots[p]
        qi = item_factors[i]
        dot = dtype.type(0.0)
        for f in range(n_factors):
            dot += qi[f] * (pu[f] + apu[f] * dev + z[f])
        pred = global_mean + bu + au * dev + day_bias[s] + item_bias[i] + item_bin_bias[i, b]
        err = values[p] - (pred + dot)
        werr = w * err
        user_loss += werr * err
        bu += lr_bw * (err - reg_b * bu)
        au += lr_aw * (err * dev - reg_a * au)
        day_bias[s] += lr_bw * (err - reg_day * day_bias[s])
        item_bias[i] += lr_bw * (err - reg_b * item_bias[i])
        item_bin_bias[i, b] += lr_bw * (err - reg_bin * item_bin_bias[i, b])
        for f in range(n_factors):
            puf = pu[f]
            apf = apu[f]
            qif = qi[f]
            zf = z[f]
            pu[f] = puf + lr_w * (err * qif - reg * puf)
            apu[f] = apf + lr_aw * (err * qif * dev - reg_a * apf)
            qi[f] = qif + lr_w * (err * (puf + apf * dev + zf) - reg * qif)
            z[f] = decay_w * zf + lr_yw * err * qif
            acc[f] = decay_w * acc[f] + werr * qif
    user_bias[u] = bu
    user_drift[u] = au
    return user_loss, shrink


@jit(fastmath=SAFE_FASTMATH)
def _epoch_task(
    task, n_tasks, indptr, items, values, weights, bins, devs, slots, user_order, seed,
    global_mean, user_bias, user_drift, day_bias, item_bias, item_bin_bias, user_factors,
    user_drift_factors, item_factors, implicit_factors, rates,
):  # pragma: no cover  # fmt: skip
    """Users ``user_order[lo:hi]`` of :func:`time_svdpp_epoch`, the ``task``-th of
    ``n_tasks`` contiguous chunks; returns their (weighted) squared error. One task of
    :func:`~factorkit._threads.run_tasks`. Long for the reason :func:`time_svdpp_epoch`
    is."""
    n_factors = user_factors.shape[1]
    dtype = user_factors.dtype
    lr = rates[0]
    reg = rates[1]
    lr_b = rates[2]
    reg_b = rates[3]
    lr_y = rates[4]
    reg_y = rates[5]
    lr_a = rates[6]
    reg_a = rates[7]
    reg_day = rates[8]
    reg_bin = rates[9]
    decay = dtype.type(1.0) - lr_y * reg_y
    has_w = len(weights) > 0
    loss = 0.0
    n_order = len(user_order)
    for t in range(task * n_order // n_tasks, (task + 1) * n_order // n_tasks):
        u = user_order[t]
        start = indptr[u]
        stop = indptr[u + 1]
        n = stop - start
        if n == 0:
            continue
        norm = dtype.type(1.0 / np.sqrt(n))
        pu = user_factors[u].copy()
        apu = user_drift_factors[u].copy()
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
                u, order, items, values, weights, bins, devs, slots, global_mean, user_bias,
                user_drift, day_bias, item_bias, item_bin_bias, pu, apu, item_factors, z, acc,
                rates,
            )  # fmt: skip
            copy_row(user_factors[u], pu)
            copy_row(user_drift_factors[u], apu)
            loss += user_loss
        else:
            # unweighted: the arithmetic exactly as before weights existed
            bu = user_bias[u]
            au = user_drift[u]
            user_loss = 0.0
            for a in range(n):
                p = order[a]
                i = items[p]
                b = bins[p]
                dev = devs[p]
                s = slots[p]
                qi = item_factors[i]
                dot = dtype.type(0.0)
                for f in range(n_factors):
                    dot += qi[f] * (pu[f] + apu[f] * dev + z[f])
                pred = (
                    global_mean + bu + au * dev + day_bias[s] + item_bias[i] + item_bin_bias[i, b]
                )
                err = values[p] - (pred + dot)
                user_loss += err * err
                bu += lr_b * (err - reg_b * bu)
                au += lr_a * (err * dev - reg_a * au)
                day_bias[s] += lr_b * (err - reg_day * day_bias[s])
                item_bias[i] += lr_b * (err - reg_b * item_bias[i])
                item_bin_bias[i, b] += lr_b * (err - reg_bin * item_bin_bias[i, b])
                for f in range(n_factors):
                    puf = pu[f]
                    apf = apu[f]
                    qif = qi[f]
                    zf = z[f]
                    pu[f] = puf + lr * (err * qif - reg * puf)
                    apu[f] = apf + lr_a * (err * qif * dev - reg_a * apf)
                    qi[f] = qif + lr * (err * (puf + apf * dev + zf) - reg * qif)
                    z[f] = decay * zf + lr_y * err * qif
                    acc[f] = decay * acc[f] + err * qif
            user_bias[u] = bu
            user_drift[u] = au
            copy_row(user_factors[u], pu)
            copy_row(user_drift_factors[u], apu)
            loss += user_loss
            shrink = dtype.type(decay**n)
        step = lr_y * norm
        for p in range(start, stop):
            j = items[p]
            for f in range(n_factors):
                implicit_factors[j, f] = shrink * implicit_factors[j, f] + step * acc[f]
    return loss


def time_svdpp_epoch(
    indptr,
    items,
    values,
    weights,
    bins,
    devs,
    slots,
    user_order,
    seed,
    global_mean,
    user_bias,
    user_drift,
    day_bias,
    item_bias,
    item_bin_bias,
    user_factors,
    user_drift_factors,
    item_factors,
    implicit_factors,
    rates,
):
    """One SGD epoch of timeSVD++ over a users x items CSR matrix; updates in place.

    Parameters
    ----------
    indptr, items, values : CSR arrays (int64, int32, float) of the training ratings.
    weights : float array of the factors' dtype, one per rating in CSR order, or empty
        (every weight 1, the unweighted arithmetic exactly). Rating ``p``'s step sizes
        are multiplied by ``weights[p]``, as in :func:`factorkit.kernels.svdpp.svdpp_epoch`
        (weight 0 skips the rating; ``N(u)`` keeps every rated item).
    bins : int32 per rating, its item time bin (a column of ``item_bin_bias``).
    devs : float per rating, ``dev_u(t)`` of its day.
    slots : int64 per rating, its index in ``day_bias`` (one slot per (user, day);
        a user's slots are used by that user only).
    user_order : int array, the order in which users are visited.
    seed : uint64; each user's ratings are visited in the order
        :func:`factorkit.kernels.svdpp.svdpp_rating_order` gives for ``seed``.
    global_mean : scalar of the factors' dtype.
    user_bias, user_drift : (n_users,) ``b_u`` and ``alpha_u``.
    day_bias : (n_slots,) ``b_{u,t}``.
    item_bias : (n_items,); item_bin_bias : (n_items, n_bins).
    user_factors, user_drift_factors : (n_users, k) ``p_u`` and ``alpha_pu``.
    item_factors, implicit_factors : (n_items, k) ``q_i`` and ``y_j``.
    rates : 1-D array of the factors' dtype, in the order of :data:`RATE_NAMES`.

    Returns
    -------
    float: the sum of (weighted) squared training errors, each taken before its update.

    Notes
    -----
    Call it under ``using_threads(n)``: the ``TIME_SVDPP_TASKS`` chunks of ``user_order``
    run on ``n`` Python threads. The task is long because one rating's update touches
    eleven parameter groups that all read the same prediction; helpers would recompute it
    or pass it through memory per rating.
    """
    n_threads = numba.get_num_threads()
    # one thread: one task (the chunks would run in order anyway, so the result is the
    # same; this saves the calls, about 3% of an epoch on MovieLens small)
    n_tasks = 1 if n_threads <= 1 else max(1, min(TIME_SVDPP_TASKS, len(user_order)))
    parts = run_tasks(
        _epoch_task, n_tasks, n_threads,
        indptr, items, values, weights, bins, devs, slots, user_order, seed, global_mean,
        user_bias, user_drift, day_bias, item_bias, item_bin_bias, user_factors,
        user_drift_factors, item_factors, implicit_factors, rates,
    )  # fmt: skip
    return math.fsum(parts)
