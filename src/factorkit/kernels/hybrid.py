"""HybridMF kernels: one parallel SGD epoch over id + feature embeddings, of a ranking
loss (:func:`hybrid_epoch`) or of the squared error of ratings
(:func:`hybrid_squared_epoch`).

A user's vector is its id embedding plus the weighted sum of its features' embeddings,
``p_u = e_u + sum_f x_uf E_f`` (the LightFM model family, Kula 2015); an item's vector
``q_i`` and bias ``b_i = c_i + sum_f x_if c_f`` likewise. Features come as CSR rows
(``indptr, indices, data``) over the user or item positions; a side without identity
embeddings passes an id matrix of zeros with ``lr_id = 0``.

Losses (``loss``): 0 is BPR, ``-ln sigma(x_ui - x_uj)`` on one sampled negative; 1 is
WARP (Weston et al. 2011): negatives are drawn until one violates the margin
(``x_uj > x_ui - 1``) or ``max_sampled`` draws are spent, and the hinge
``1 - x_ui + x_uj`` is stepped with the rank weight ``ln(floor((n - 1) / draws))``,
divided by ``ln(n - 1)`` so it lies in [0, 1] and one learning rate suits both losses;
2 is a sampled softmax: ``max_sampled`` verified uniform negatives, the loss
``-ln p_i`` of the softmax over the positive's and their scores, every item stepped
with its own weight (``1 - p_i`` for the positive, ``-p_j`` for a negative; with one
negative this is the BPR step exactly), see :func:`_softmax_step`.
With ``g`` the loss's weight (``sigma(-(x_ui - x_uj))`` for BPR), every step is::

    e_u  += lr_id (g (q_i - q_j) - reg e_u)       E_f += lr x_uf g (q_i - q_j) - lr reg E_f
    e_i  += lr_id (g p_u - reg e_i)               E_f += lr x_if g p_u - lr reg E_f
    e_j  += lr_id (-g p_u - reg e_j)              E_f += -lr x_jf g p_u - lr reg E_f

(the item steps use ``p_u`` from before the step) and the biases alike with ``+-g``.

Ratings (:func:`hybrid_squared_epoch`, ``loss="squared"``): the prediction is
``mu + b_u + b_i + p_u . q_i`` with a user bias ``b_u = c_u + sum_f x_uf c_f`` built as
the item's; each rating ``r`` of weight ``w`` steps every part along its error
``e = r - prediction`` (taken before the step), the whole step scaled by ``w``::

    e_u += w lr_id (e q_i - reg e_u)       E_f += w lr (x_uf e q_i - reg E_f)
    e_i += w lr_id (e p_u - reg e_i)       E_f += w lr (x_if e p_u - reg E_f)
    c_u += w lr_id (e - reg c_u)           c_f += w lr (x_uf e - reg c_f)   (items alike)

so weight 0 leaves the model untouched. Each stream visits its share of the ratings (a
contiguous range of the user-sorted entries, so no two streams share a user) in its own
random order (a Fisher-Yates shuffle drawn from its seed).

Sampling and random streams are those of :mod:`factorkit.kernels.bpr`: ``(u, i)`` is a
uniform entry of the positives (or one drawn from an alias table of their weights),
negatives are uniform over ``0 .. n_items - 1`` and verified against the user's sorted
CSR row. Parallelism: streams are the tasks of
:func:`factorkit._threads.run_tasks` (compiled, GIL-free, on Python threads), without
locks (Hogwild, as BPR); shared feature embeddings (a genre every item has) are
hit by every thread, so concurrent updates to them may be lost, which costs little since
each is a small step. With one stream the result is bit-for-bit repeatable.
"""

from __future__ import annotations

import numba
import numpy as np

from factorkit._threads import run_tasks
from factorkit.kernels._jit import SAFE_FASTMATH, jit
from factorkit.kernels.bpr import _INV32, _LOW32, _negative_candidate, _verified_negative
from factorkit.kernels.random import splitmix64_below, splitmix64_next

__all__ = ["hybrid_epoch", "hybrid_squared_epoch", "hybrid_vector"]


@jit(fastmath=SAFE_FASTMATH)
def hybrid_vector(id_factors, row, feat_factors, indptr, indices, data, out):  # pragma: no cover
    """``out = id_factors[row] + sum_f data_f feat_factors[f]`` over the row's features."""
    k = out.shape[0]
    for f in range(k):
        out[f] = id_factors[row, f]
    for p in range(indptr[row], indptr[row + 1]):
        w = data[p]
        e = feat_factors[indices[p]]
        for f in range(k):
            out[f] += w * e[f]


@jit(fastmath=SAFE_FASTMATH)
def _bias(id_bias, row, feat_bias, indptr, indices, data):  # pragma: no cover
    b = id_bias[row]
    for p in range(indptr[row], indptr[row + 1]):
        b += data[p] * feat_bias[indices[p]]
    return b


@jit(fastmath=SAFE_FASTMATH)
def _step(id_factors, row, feat_factors, indptr, indices, data, grad, lr_id, lr, reg):
    # pragma: no cover
    """Step the id row and the row's feature embeddings along ``grad``."""
    k = grad.shape[0]
    if lr_id != 0.0:
        e = id_factors[row]
        for f in range(k):
            e[f] += lr_id * (grad[f] - reg * e[f])
    if lr != 0.0:
        for p in range(indptr[row], indptr[row + 1]):
            w = data[p]
            e = feat_factors[indices[p]]
            for f in range(k):
                e[f] += lr * (w * grad[f] - reg * e[f])


@jit(fastmath=SAFE_FASTMATH)
def _step_bias(id_bias, row, feat_bias, indptr, indices, data, g, lr_id, lr, reg):
    # pragma: no cover
    if lr_id != 0.0:
        id_bias[row] += lr_id * (g - reg * id_bias[row])
    if lr != 0.0:
        for p in range(indptr[row], indptr[row + 1]):
            c = indices[p]
            feat_bias[c] += lr * (data[p] * g - reg * feat_bias[c])


@jit(fastmath=SAFE_FASTMATH)
def _dot_diff(p, a, b):  # pragma: no cover
    s = 0.0
    for f in range(p.shape[0]):
        s += p[f] * (a[f] - b[f])
    return s


@jit(fastmath=SAFE_FASTMATH)
def _dot(p, a):  # pragma: no cover
    s = 0.0
    for f in range(p.shape[0]):
        s += p[f] * a[f]
    return s


@jit(fastmath=SAFE_FASTMATH)
def _softmax_step(
    pu, qi, xi, u, i, n_neg, neg_rows, neg_vecs, neg_scores, gu, gi,
    user_id, user_feat, u_ptr, u_idx, u_val,
    item_id, item_feat, i_ptr, i_idx, i_val, item_id_bias, item_feat_bias,
    lr_user_id, lr_item_id, lr, reg, lr_bias,
):  # fmt: skip  # pragma: no cover
    """One sampled-softmax step: the positive ``i`` (score ``xi``) against the
    ``n_neg`` negatives' scores; returns the sample's loss ``-ln p_i``.

    With ``p`` the softmax over the ``1 + n_neg`` scores, the gradient of ``ln p_i`` is
    ``(1 - p_i)`` along the positive's score and ``-p_j`` along each negative's, so the
    user steps along ``(1 - p_i) q_i - sum_j p_j q_j`` and every item along its own
    weight times ``p_u`` (``p_u`` and the item vectors from before the step)."""
    k = pu.shape[0]
    top = xi
    for t in range(n_neg):
        top = max(top, neg_scores[t])
    z = np.exp(xi - top)
    for t in range(n_neg):
        neg_scores[t] = np.exp(neg_scores[t] - top)  # unnormalised weights from here on
        z += neg_scores[t]
    g_pos = 1.0 - np.exp(xi - top) / z
    for f in range(k):
        gu[f] = g_pos * qi[f]
    for t in range(n_neg):
        w = neg_scores[t] / z
        neg_scores[t] = w
        for f in range(k):
            gu[f] -= w * neg_vecs[t, f]
    for f in range(k):
        gi[f] = g_pos * pu[f]
    _step(user_id, u, user_feat, u_ptr, u_idx, u_val, gu, lr_user_id, lr, reg)
    _step(item_id, i, item_feat, i_ptr, i_idx, i_val, gi, lr_item_id, lr, reg)
    lb_id = lr_bias if lr_item_id != 0.0 else lr_bias * 0
    if lr_bias != 0.0:
        _step_bias(item_id_bias, i, item_feat_bias, i_ptr, i_idx, i_val, g_pos, lb_id,
                   lr_bias, reg)  # fmt: skip
    for t in range(n_neg):
        w = neg_scores[t]
        j = neg_rows[t]
        for f in range(k):
            gi[f] = -w * pu[f]
        _step(item_id, j, item_feat, i_ptr, i_idx, i_val, gi, lr_item_id, lr, reg)
        if lr_bias != 0.0:
            _step_bias(item_id_bias, j, item_feat_bias, i_ptr, i_idx, i_val, -w, lb_id,
                       lr_bias, reg)  # fmt: skip
    return np.log(z) - (xi - top)


@jit(fastmath=SAFE_FASTMATH)
def _stream(
    seed, first, stop, sample_users, sample_items, seen_indptr, seen_indices, n_items,
    entry_prob, entry_alias, max_tries, loss_kind, max_sampled,
    user_id, user_feat, u_ptr, u_idx, u_val,
    item_id, item_feat, i_ptr, i_idx, i_val,
    item_id_bias, item_feat_bias,
    lr_user_id, lr_item_id, lr, reg, lr_bias, trace, warp, softmax,
):  # fmt: skip  # pragma: no cover
    """Samples ``first .. stop - 1`` of one stream; returns (loss, correct, skipped).

    ``warp`` and ``softmax`` are None unless ``loss_kind`` is 1 or 2 (then True): numba
    prunes the branches of an argument that is None, so a fit compiles its loss's code
    only.

    When ``trace`` has rows (``(n_samples, 3)``) each sample's ``(u, i, j)`` is written
    to its row (``j = -1``: skipped or, for WARP, no step; softmax: the first negative).

    Long on purpose, like BPR's stream: sampling, verification and the update of the id
    and feature embeddings share one frame so numba keeps the stream's state in
    registers.
    """
    k = user_id.shape[1]
    dtype = user_id.dtype
    pu = np.empty(k, dtype=dtype)
    qi = np.empty(k, dtype=dtype)
    qj = np.empty(k, dtype=dtype)
    gu = np.empty(k, dtype=dtype)
    gi = np.empty(k, dtype=dtype)
    gj = np.empty(k, dtype=dtype)
    no_alias_p = np.empty(0, dtype=np.float64)
    no_alias_i = np.empty(0, dtype=np.int32)
    # softmax: the sampled negatives' rows, vectors and scores
    n_slots = max_sampled if softmax is not None else 0
    neg_rows = np.empty(n_slots, dtype=np.int64)
    neg_vecs = np.empty((n_slots, k), dtype=dtype)
    neg_scores = np.empty(n_slots, dtype=np.float64)
    state_entry = seed
    state_neg = seed ^ np.uint64(0xD1B54A32D192ED03)
    n_entries = len(sample_items)
    log_norm = np.log(max(n_items - 1, 2))
    loss = 0.0
    correct = 0
    skipped = 0
    for _s in range(first, stop):
        state_entry, bits = splitmix64_next(state_entry)
        e = splitmix64_below(bits, n_entries)
        if len(entry_prob) > 0 and np.float64(bits & _LOW32) * _INV32 >= entry_prob[e]:
            e = entry_alias[e]  # weighted positives (as in BPR's stream)
        # int64 like the negatives' rows: the row helpers then compile once, not once
        # per integer type (int32 entries, int64 draws)
        u = np.int64(sample_users[e])
        i = np.int64(sample_items[e])
        lo = seen_indptr[u]
        hi = seen_indptr[u + 1]
        hybrid_vector(user_id, u, user_feat, u_ptr, u_idx, u_val, pu)
        hybrid_vector(item_id, i, item_feat, i_ptr, i_idx, i_val, qi)
        bi = _bias(item_id_bias, i, item_feat_bias, i_ptr, i_idx, i_val)
        xi = _dot(pu, qi) + bi
        g = 0.0
        j = -1
        if len(trace):
            trace[_s, 0] = u
            trace[_s, 1] = i
            trace[_s, 2] = -1
        if softmax is not None:
            n_neg = 0
            for _t in range(max_sampled):
                state_neg, j = _negative_candidate(state_neg, n_items, no_alias_p, no_alias_i)
                state_neg, j = _verified_negative(
                    state_neg, j, seen_indices, lo, hi, n_items, no_alias_p, no_alias_i,
                    max_tries,
                )  # fmt: skip
                if j < 0:
                    break
                neg_rows[n_neg] = j
                hybrid_vector(item_id, j, item_feat, i_ptr, i_idx, i_val, neg_vecs[n_neg])
                neg_scores[n_neg] = _dot(pu, neg_vecs[n_neg]) + _bias(
                    item_id_bias, j, item_feat_bias, i_ptr, i_idx, i_val
                )
                n_neg += 1
            if n_neg == 0:
                skipped += 1
                continue
            if len(trace):
                trace[_s, 2] = neg_rows[0]
            if xi > neg_scores[:n_neg].max():  # before the step overwrites the scores
                correct += 1
            loss += _softmax_step(
                pu, qi, xi, u, i, n_neg, neg_rows, neg_vecs, neg_scores, gu, gi,
                user_id, user_feat, u_ptr, u_idx, u_val,
                item_id, item_feat, i_ptr, i_idx, i_val, item_id_bias, item_feat_bias,
                lr_user_id, lr_item_id, lr, reg, lr_bias,
            )  # fmt: skip
            continue
        if warp is None:  # BPR
            state_neg, j = _negative_candidate(state_neg, n_items, no_alias_p, no_alias_i)
            state_neg, j = _verified_negative(
                state_neg, j, seen_indices, lo, hi, n_items, no_alias_p, no_alias_i, max_tries
            )
            if j < 0:
                skipped += 1
                continue
            hybrid_vector(item_id, j, item_feat, i_ptr, i_idx, i_val, qj)
            bj = _bias(item_id_bias, j, item_feat_bias, i_ptr, i_idx, i_val)
            x = xi - _dot(pu, qj) - bj
            if x > 0:
                correct += 1
            loss += np.log1p(np.exp(-abs(x))) + max(-x, 0.0)
            g = 1.0 / (1.0 + np.exp(x))
        else:
            found = False
            draws = 0
            for t in range(max_sampled):
                state_neg, j = _negative_candidate(state_neg, n_items, no_alias_p, no_alias_i)
                state_neg, j = _verified_negative(
                    state_neg, j, seen_indices, lo, hi, n_items, no_alias_p, no_alias_i,
                    max_tries,
                )  # fmt: skip
                if j < 0:
                    break
                draws = t + 1
                hybrid_vector(item_id, j, item_feat, i_ptr, i_idx, i_val, qj)
                bj = _bias(item_id_bias, j, item_feat_bias, i_ptr, i_idx, i_val)
                xj = _dot(pu, qj) + bj
                if xj > xi - 1.0:
                    found = True
                    loss += 1.0 - xi + xj
                    break
            if j < 0:
                skipped += 1
                continue
            if not found:
                correct += 1
                continue
            g = np.log(max(1.0, np.floor((n_items - 1) / draws))) / log_norm
            if g <= 0.0:
                continue
        if len(trace):
            trace[_s, 2] = j
        for f in range(k):
            gu[f] = g * (qi[f] - qj[f])
            gi[f] = g * pu[f]
            gj[f] = -g * pu[f]
        _step(user_id, u, user_feat, u_ptr, u_idx, u_val, gu, lr_user_id, lr, reg)
        _step(item_id, i, item_feat, i_ptr, i_idx, i_val, gi, lr_item_id, lr, reg)
        _step(item_id, j, item_feat, i_ptr, i_idx, i_val, gj, lr_item_id, lr, reg)
        if lr_bias != 0.0:
            lb_id = lr_bias if lr_item_id != 0.0 else 0.0
            _step_bias(item_id_bias, i, item_feat_bias, i_ptr, i_idx, i_val, g, lb_id,
                       lr_bias, reg)  # fmt: skip
            _step_bias(item_id_bias, j, item_feat_bias, i_ptr, i_idx, i_val, -g, lb_id,
                       lr_bias, reg)  # fmt: skip
    return loss, correct, skipped


@jit(fastmath=SAFE_FASTMATH)
def _epoch_task(
    t, n_streams, sample_users, sample_items, seen_indptr, seen_indices, n_items,
    entry_prob, entry_alias, seeds, n_samples, max_tries, loss_kind, max_sampled,
    user_id, user_feat, u_ptr, u_idx, u_val,
    item_id, item_feat, i_ptr, i_idx, i_val,
    item_id_bias, item_feat_bias,
    lr_user_id, lr_item_id, lr, reg, lr_bias, trace, warp, softmax,
):  # fmt: skip  # pragma: no cover
    """Stream ``t`` of :func:`hybrid_epoch`; returns (loss, correct, skipped)."""
    return _stream(
        seeds[t], n_samples * t // n_streams, n_samples * (t + 1) // n_streams,
        sample_users, sample_items, seen_indptr, seen_indices, n_items, entry_prob,
        entry_alias, max_tries, loss_kind, max_sampled, user_id, user_feat, u_ptr, u_idx, u_val,
        item_id, item_feat, i_ptr, i_idx, i_val, item_id_bias, item_feat_bias,
        lr_user_id, lr_item_id, lr, reg, lr_bias, trace, warp, softmax,
    )  # fmt: skip


def hybrid_epoch(
    sample_users, sample_items, seen_indptr, seen_indices, n_items, entry_prob, entry_alias,
    seeds, n_samples, max_tries, loss_kind, max_sampled,
    user_id, user_feat, u_ptr, u_idx, u_val,
    item_id, item_feat, i_ptr, i_idx, i_val,
    item_id_bias, item_feat_bias,
    lr_user_id, lr_item_id, lr, reg, lr_bias, trace,
):  # fmt: skip
    """One SGD epoch of ``n_samples`` samples; updates every embedding in place.

    The streams (one per seed) are tasks of :func:`factorkit._threads.run_tasks`
    (compiled, GIL-free) on ``numba.get_num_threads()`` Python threads: call it under
    ``using_threads(n)`` with one seed per thread.

    Parameters
    ----------
    sample_users, sample_items : int32 arrays, the positives samples are drawn from.
    seen_indptr, seen_indices : CSR (int64, int32) of every user's positives, rows sorted.
    n_items : int, negatives are drawn from ``0 .. n_items - 1``.
    entry_prob, entry_alias : alias table (float64, int32) over the entries for positives
        drawn in proportion to ``fit``'s ``sample_weight``; empty arrays draw them
        uniformly (the unweighted draws, unchanged).
    seeds : uint64 array, one per stream (see :mod:`factorkit.kernels.bpr`).
    n_samples, max_tries : samples per epoch; rejected negative draws before the exact
        fallback.
    loss_kind : 0 for BPR, 1 for WARP, 2 for the sampled softmax; ``max_sampled`` caps
        WARP's negative draws and is the softmax's number of negatives.
    user_id (n_users x k), user_feat (n_user_features x k), u_ptr/u_idx/u_val: user id
        embeddings, feature embeddings and the users' feature rows (CSR); item side alike
        (item_feat, i_ptr/i_idx/i_val) plus ``item_id_bias`` and ``item_feat_bias``.
    lr_user_id, lr_item_id : step sizes of the id embeddings (0 freezes them, e.g. when a
        side has no identity embeddings); ``lr`` of the feature embeddings; ``lr_bias``
        of the biases (0 keeps them at zero); ``reg`` the L2 penalty of every step.
    trace : int64 array, ``(n_samples, 3)`` to record each sample's ``(u, i, j)`` (for
        tests; ``j = -1`` where no step was taken), or ``(0, 3)`` not to.

    Returns
    -------
    (loss, correct, skipped)
        Summed loss and number of samples already ranked right (BPR: ``x_uij > 0``;
        WARP: no violating negative found), both before the steps; samples without a
        negative (users holding every item) are skipped and counted.
    """
    # integers as Python ints: one compiled signature whatever integer type callers pass
    parts = run_tasks(
        _epoch_task, len(seeds), numba.get_num_threads(),
        sample_users, sample_items, seen_indptr, seen_indices, int(n_items), entry_prob,
        entry_alias, seeds, int(n_samples), int(max_tries), int(loss_kind), int(max_sampled),
        user_id, user_feat, u_ptr, u_idx, u_val, item_id, item_feat, i_ptr, i_idx, i_val,
        item_id_bias, item_feat_bias, lr_user_id, lr_item_id, lr, reg, lr_bias, trace,
        # one compilation per loss, each without the others' code
        True if loss_kind == 1 else None, True if loss_kind == 2 else None,
    )  # fmt: skip
    return _sum_parts(parts)


def _sum_parts(parts):
    """Per-stream ``(loss, correct, skipped)`` summed in stream order."""
    loss = 0.0
    correct = 0
    skipped = 0
    for part_loss, part_correct, part_skipped in parts:
        loss += part_loss
        correct += part_correct
        skipped += part_skipped
    return loss, correct, skipped


@jit(fastmath=SAFE_FASTMATH)
def _shuffled(order, first, stop, seed):  # pragma: no cover
    """``order[first:stop]`` = a random permutation of ``first .. stop - 1`` (Fisher-Yates)."""
    for s in range(first, stop):
        order[s] = s
    state = seed
    for s in range(stop - 1, first, -1):
        state, bits = splitmix64_next(state)
        t = first + splitmix64_below(bits, s - first + 1)
        tmp = order[s]
        order[s] = order[t]
        order[t] = tmp


@jit(fastmath=SAFE_FASTMATH)
def _squared_stream(
    seed, first, stop, order, users, items, values, weights, mu,
    user_id, user_feat, u_ptr, u_idx, u_val, user_id_bias, user_feat_bias,
    item_id, item_feat, i_ptr, i_idx, i_val, item_id_bias, item_feat_bias,
    lr_user_id, lr_item_id, lr, reg, lr_bias,
):  # fmt: skip  # pragma: no cover
    """Ratings ``first .. stop - 1`` in a random order; returns the weighted sum of the
    squared errors (each before its step)."""
    k = user_id.shape[1]
    dtype = user_id.dtype
    pu = np.empty(k, dtype=dtype)
    qi = np.empty(k, dtype=dtype)
    gu = np.empty(k, dtype=dtype)
    gi = np.empty(k, dtype=dtype)
    _shuffled(order, first, stop, seed)
    # the id biases learn with the id embeddings: a side without identities has none
    lb_user_id = lr_bias if lr_user_id != 0.0 else lr_bias * 0
    lb_item_id = lr_bias if lr_item_id != 0.0 else lr_bias * 0
    sse = 0.0
    for s in range(first, stop):
        e = order[s]
        w = weights[e]
        if w == 0.0:
            continue
        u = np.int64(users[e])  # the row helpers' one signature (see _stream)
        i = np.int64(items[e])
        hybrid_vector(user_id, u, user_feat, u_ptr, u_idx, u_val, pu)
        hybrid_vector(item_id, i, item_feat, i_ptr, i_idx, i_val, qi)
        bu = _bias(user_id_bias, u, user_feat_bias, u_ptr, u_idx, u_val)
        bi = _bias(item_id_bias, i, item_feat_bias, i_ptr, i_idx, i_val)
        err = values[e] - (mu + bu + bi + _dot(pu, qi))
        sse += w * err * err
        for f in range(k):
            gu[f] = err * qi[f]
            gi[f] = err * pu[f]
        _step(user_id, u, user_feat, u_ptr, u_idx, u_val, gu, w * lr_user_id, w * lr, reg)
        _step(item_id, i, item_feat, i_ptr, i_idx, i_val, gi, w * lr_item_id, w * lr, reg)
        if lr_bias != 0.0:
            _step_bias(user_id_bias, u, user_feat_bias, u_ptr, u_idx, u_val, err,
                       w * lb_user_id, w * lr_bias, reg)  # fmt: skip
            _step_bias(item_id_bias, i, item_feat_bias, i_ptr, i_idx, i_val, err,
                       w * lb_item_id, w * lr_bias, reg)  # fmt: skip
    return sse


@jit(fastmath=SAFE_FASTMATH)
def _squared_task(
    t, n_streams, users, items, values, weights, seeds, order, mu,
    user_id, user_feat, u_ptr, u_idx, u_val, user_id_bias, user_feat_bias,
    item_id, item_feat, i_ptr, i_idx, i_val, item_id_bias, item_feat_bias,
    lr_user_id, lr_item_id, lr, reg, lr_bias,
):  # fmt: skip  # pragma: no cover
    """Stream ``t`` of :func:`hybrid_squared_epoch`; returns its weighted squared error."""
    n = len(values)
    return _squared_stream(
        seeds[t], n * t // n_streams, n * (t + 1) // n_streams, order, users, items,
        values, weights, mu,
        user_id, user_feat, u_ptr, u_idx, u_val, user_id_bias, user_feat_bias,
        item_id, item_feat, i_ptr, i_idx, i_val, item_id_bias, item_feat_bias,
        lr_user_id, lr_item_id, lr, reg, lr_bias,
    )  # fmt: skip


def hybrid_squared_epoch(
    users, items, values, weights, seeds, order, mu,
    user_id, user_feat, u_ptr, u_idx, u_val, user_id_bias, user_feat_bias,
    item_id, item_feat, i_ptr, i_idx, i_val, item_id_bias, item_feat_bias,
    lr_user_id, lr_item_id, lr, reg, lr_bias,
):  # fmt: skip
    """One SGD epoch of the squared loss over every rating; updates in place.

    Streams run as :func:`hybrid_epoch`'s do (one per seed, on ``run_tasks``).

    Parameters
    ----------
    users, items : int32 arrays, the ratings' user and item rows, sorted by user (each
        stream takes a contiguous range, so streams share items but no user).
    values, weights : the ratings and their weights (``values``' dtype; 0 skips a rating).
    seeds : uint64 array, one per stream: the stream's visiting order.
    order : int64 scratch of ``len(values)`` (overwritten with each stream's order).
    mu : float, the global mean added to every prediction.
    user_id (n_users x k), user_feat (n_user_features x k), u_ptr/u_idx/u_val: user id
        embeddings, feature embeddings and the users' feature rows (CSR), with
        ``user_id_bias`` / ``user_feat_bias`` their bias parts; item side alike.
    lr_user_id, lr_item_id : step sizes of the id embeddings and id biases (0 freezes
        them); ``lr`` of the feature embeddings; ``lr_bias`` of the biases (0 keeps every
        bias at zero); ``reg`` the L2 penalty of every step.

    Returns
    -------
    float
        Sum over the ratings of ``weight * error**2``, each error before its step.
    """
    parts = run_tasks(
        _squared_task, len(seeds), numba.get_num_threads(),
        users, items, values, weights, seeds, order, float(mu),
        user_id, user_feat, u_ptr, u_idx, u_val, user_id_bias, user_feat_bias,
        item_id, item_feat, i_ptr, i_idx, i_val, item_id_bias, item_feat_bias,
        lr_user_id, lr_item_id, lr, reg, lr_bias,
    )  # fmt: skip
    sse = 0.0
    for part in parts:  # in stream order
        sse += part
    return sse
