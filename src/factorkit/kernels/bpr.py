"""BPR kernels: one parallel SGD epoch, the samples it draws, and an alias table.

Bayesian Personalized Ranking (Rendle et al., UAI 2009) scores ``x_ui = p_u . q_i + b_i``
and maximises ``sum ln sigma(x_ui - x_uj) - reg ||theta||^2`` over triples ``(u, i, j)``
where ``i`` is one of ``u``'s positives and ``j`` is not. Each SGD step, with
``d = x_ui - x_uj`` and ``z = sigma(-d) = 1 / (1 + exp(d))``::

    p_u <- p_u + lr (z (q_i - q_j) - reg p_u)
    q_i <- q_i + lr (z p_u - reg q_i)
    q_j <- q_j + lr (-z p_u - reg q_j)
    b_i <- b_i + lr_b (z - reg b_i)
    b_j <- b_j + lr_b (-z - reg b_j)

(the item updates use ``p_u`` from before the step).

Sampling: an epoch draws ``n_samples`` triples. ``(u, i)`` is a uniformly random entry of
the positives arrays (so users are drawn in proportion to their activity, as in Rendle's
LearnBPR and in implicit), or, given an alias table over the entries, an entry drawn in
proportion to its weight (the same 64 random bits: index from the high half, the alias
coin from the low half); ``j`` is drawn uniformly over items, or from an alias table
(:func:`bpr_alias_table`) for popularity-weighted negatives, and is *verified* by a binary
search in the user's sorted CSR row: a positive is rejected and redrawn. After
``max_tries`` rejections (a user holding nearly every item) ``j`` is drawn uniformly from
the items missing from the row by a walk along it, so only a user who holds every item
has no negative: such samples are skipped and counted.

Random numbers: ``seeds`` holds one uint64 per stream; stream ``t`` draws samples
``[n_samples t / S, n_samples (t + 1) / S)`` with two splitmix64 generators
(:mod:`factorkit.kernels.random`) started from ``seeds[t]``, one for the ``(u, i)``
entries and one for the negatives. The triples depend
only on ``seeds`` and the data, never on which thread runs a stream, and
:func:`bpr_samples` reproduces them for tests.

Memory: on data larger than the caches every step of a sample misses (entry, CSR row,
row of positives, three factor rows), one after another. Each stream keeps 32 samples in
flight and prefetches what the next stage will read (see :func:`_stream`), so that the
misses of different samples overlap (gain: docs/benchmarks.md, "Kernel design notes").

Parallelism: streams are the tasks of :func:`factorkit._threads.run_tasks` (compiled,
GIL-free, on Python threads: no parallel region to compile), with no locks ("Hogwild!",
Recht et al. 2011). User and item rows are shared between threads; two threads updating
one row at the same time may lose or mix an update. Samples touch three rows out of many
and each step is small, so this behaves like SGD with slightly stale reads and is the
accepted trade for linear speed-up. With one stream (``len(seeds) ==
1``) the samples run in order on one thread and results are bit-for-bit repeatable.

Freezing (for ``partial_fit``): rows ``u < user_start`` and ``i < item_start`` are read
but never changed (their step size is zero).
"""

from __future__ import annotations

import numba
import numpy as np

from factorkit._threads import run_tasks
from factorkit.kernels._jit import SAFE_FASTMATH, jit, prefetch_item, prefetch_row
from factorkit.kernels.random import splitmix64_below, splitmix64_next

__all__ = ["bpr_alias_table", "bpr_epoch", "bpr_samples"]

_LOW32 = np.uint64(0xFFFFFFFF)
_INV32 = 1.0 / 4294967296.0


@jit()
def _contains(indices, lo, hi, item):  # pragma: no cover
    """Whether ``item`` occurs in the sorted ``indices[lo:hi]`` (binary search)."""
    while lo < hi:
        mid = (lo + hi) >> 1
        v = indices[mid]
        if v < item:
            lo = mid + 1
        elif v > item:
            hi = mid
        else:
            return True
    return False


#: samples in flight per stream: a sample's entry is drawn this many samples before its
#: update; its user and positive are read half-way, its candidate negative drawn a
#: quarter of the way before (see :func:`_stream`)
_AHEAD = 32
_MASK = _AHEAD - 1
_NEG_STREAM = np.uint64(0xD1B54A32D192ED03)


@jit()
def _negative_candidate(state, n_items, alias_prob, alias_idx):  # pragma: no cover
    """One candidate negative, uniform or from the alias table: (new_state, j)."""
    state, bits = splitmix64_next(state)
    j = splitmix64_below(bits, n_items)
    if len(alias_prob) > 0 and np.float64(bits & _LOW32) * _INV32 >= alias_prob[j]:
        j = alias_idx[j]
    return state, j


@jit()
def _verified_negative(
    state, j, indices, lo, hi, n_items, alias_prob, alias_idx, max_tries
):  # pragma: no cover
    """``j`` if it is not among ``indices[lo:hi]``, else redraws (up to ``max_tries`` in
    all); then the exact fallback. Returns (new_state, j), j = -1 when the row is full."""
    for attempt in range(max_tries):
        if attempt > 0:
            state, j = _negative_candidate(state, n_items, alias_prob, alias_idx)
        if not _contains(indices, lo, hi, j):
            return state, j
    # a user holding (nearly) every item: the r-th item missing from the sorted row
    n_free = n_items - (hi - lo)
    if n_free <= 0:
        return state, -1
    state, bits = splitmix64_next(state)
    j = splitmix64_below(bits, n_free)
    for p in range(lo, hi):
        if indices[p] <= j:
            j += 1
        else:
            break
    return state, j


@jit(fastmath=SAFE_FASTMATH)
def _stream(
    seed,
    first,
    stop,
    sample_users,
    sample_items,
    indptr,
    indices,
    n_items,
    alias_prob,
    alias_idx,
    entry_prob,
    entry_alias,
    max_tries,
    train,
    user_factors,
    item_factors,
    item_bias,
    lr,
    reg,
    lr_bias,
    reg_bias,
    user_start,
    item_start,
    users_out,
    pos_out,
    neg_out,
):  # pragma: no cover
    """Samples ``first .. stop - 1`` of one stream: SGD steps when ``train``, else the
    triples written to ``users_out`` / ``pos_out`` / ``neg_out``. Returns
    (loss, correct, skipped).

    Long on purpose: the 32-sample software pipeline (sample, prefetch, verify, update)
    keeps its ring buffers and counters in one frame so numba holds them in registers;
    split into helpers, each call round-trips that state through memory.

    Random samples of a large data set miss the cache at every step of a dependent
    chain: entry -> user and positive -> CSR row -> negative check -> factor rows. The
    stream therefore runs as a pipeline over ``_AHEAD`` (A) samples in flight: the entry
    of sample ``s + A`` is drawn and its (user, positive) prefetched; those of sample
    ``s + A/2`` are read and their CSR bounds and factor rows prefetched; sample
    ``s + A/4`` gets its candidate negative, whose factor row and the user's row of
    positives are prefetched; sample ``s`` is checked and trained on, by then from cache.
    Two generators (one for entries, one for negatives) keep the draws independent of the
    pipeline's depth.
    """
    n_factors = user_factors.shape[1]
    dtype = user_factors.dtype
    zero = dtype.type(0.0)
    one = dtype.type(1.0)
    state_entry = seed
    state_neg = seed ^ _NEG_STREAM
    ring_entry = np.empty(_AHEAD, dtype=np.int64)
    ring_user = np.empty(_AHEAD, dtype=np.int64)
    ring_item = np.empty(_AHEAD, dtype=np.int64)
    ring_neg = np.empty(_AHEAD, dtype=np.int64)
    half = _AHEAD // 2
    quarter = _AHEAD // 4
    loss = 0.0
    correct = 0
    skipped = 0
    n_entries = len(sample_items)
    for q in range(first, stop + _AHEAD):
        if q < stop:  # stage 1: draw the entry
            state_entry, bits = splitmix64_next(state_entry)
            e = splitmix64_below(bits, n_entries)
            # weighted entries: the alias table's coin from the low 32 bits (the index
            # came from the high ones); an empty table leaves the uniform draw as it was
            if len(entry_prob) > 0 and np.float64(bits & _LOW32) * _INV32 >= entry_prob[e]:
                e = entry_alias[e]
            ring_entry[q & _MASK] = e
            prefetch_item(sample_users, e)
            prefetch_item(sample_items, e)
        m = q - half
        if first <= m < stop:  # stage 2: user and positive
            e = ring_entry[m & _MASK]
            u = sample_users[e]
            i = sample_items[e]
            ring_user[m & _MASK] = u
            ring_item[m & _MASK] = i
            prefetch_item(indptr, u)
            if train:
                prefetch_row(user_factors, u)
                prefetch_row(item_factors, i)
        m = q - half - quarter
        if first <= m < stop:  # stage 3: candidate negative
            u = ring_user[m & _MASK]
            state_neg, j = _negative_candidate(state_neg, n_items, alias_prob, alias_idx)
            ring_neg[m & _MASK] = j
            lo = indptr[u]
            for line in range(lo, min(indptr[u + 1], lo + 256), 16):
                prefetch_item(indices, line)  # the row the negative is checked against
            if train:
                prefetch_row(item_factors, j)
        m = q - _AHEAD
        if m < first:
            continue
        # stage 4: check the negative, then the SGD step
        u = ring_user[m & _MASK]
        i = ring_item[m & _MASK]
        state_neg, j = _verified_negative(
            state_neg, ring_neg[m & _MASK], indices, indptr[u], indptr[u + 1], n_items,
            alias_prob, alias_idx, max_tries,
        )  # fmt: skip
        if not train:
            users_out[m] = u
            pos_out[m] = i
            neg_out[m] = j
            continue
        if j < 0:
            skipped += 1
            continue
        pu = user_factors[u]
        qi = item_factors[i]
        qj = item_factors[j]
        x = item_bias[i] - item_bias[j]
        for f in range(n_factors):
            x += pu[f] * (qi[f] - qj[f])
        if x > zero:
            correct += 1
        # -ln sigma(x) = ln(1 + e^-x), computed without overflow
        xd = np.float64(x)
        loss += np.log1p(np.exp(-abs(xd))) + max(-xd, 0.0)
        z = one / (one + np.exp(x))
        lr_u = lr if u >= user_start else zero
        lr_i = lr if i >= item_start else zero
        lr_j = lr if j >= item_start else zero
        for f in range(n_factors):
            puf = pu[f]
            qif = qi[f]
            qjf = qj[f]
            pu[f] = puf + lr_u * (z * (qif - qjf) - reg * puf)
            qi[f] = qif + lr_i * (z * puf - reg * qif)
            qj[f] = qjf + lr_j * (-z * puf - reg * qjf)
        if lr_bias != zero:
            bi = item_bias[i]
            bj = item_bias[j]
            if i >= item_start:
                item_bias[i] = bi + lr_bias * (z - reg_bias * bi)
            if j >= item_start:
                item_bias[j] = bj + lr_bias * (-z - reg_bias * bj)
    return loss, correct, skipped


@jit()
def _samples_task(
    t, n_streams, sample_users, sample_items, indptr, indices, n_items, alias_prob,
    alias_idx, entry_prob, entry_alias, seeds, n_samples, max_tries, users, pos, neg,
):  # fmt: skip  # pragma: no cover
    """Stream ``t`` of :func:`bpr_samples`: its triples into ``users``/``pos``/``neg``."""
    factors = np.zeros((1, 1))
    bias = np.zeros(1)
    _stream(
        seeds[t], n_samples * t // n_streams, n_samples * (t + 1) // n_streams,
        sample_users, sample_items, indptr, indices, n_items, alias_prob, alias_idx,
        entry_prob, entry_alias, max_tries, False, factors, factors, bias, 0.0, 0.0,
        0.0, 0.0, 0, 0, users, pos, neg,
    )  # fmt: skip


def bpr_samples(
    sample_users,
    sample_items,
    indptr,
    indices,
    n_items,
    alias_prob,
    alias_idx,
    entry_prob,
    entry_alias,
    seeds,
    n_samples,
    max_tries,
):
    """The ``(users, positives, negatives)`` that :func:`bpr_epoch` draws for the same
    arguments, in stream order (negatives are -1 for skipped samples: users holding every
    item)."""
    users = np.empty(n_samples, dtype=np.int64)
    pos = np.empty(n_samples, dtype=np.int64)
    neg = np.empty(n_samples, dtype=np.int64)
    run_tasks(
        _samples_task, len(seeds), numba.get_num_threads(),
        sample_users, sample_items, indptr, indices, int(n_items), alias_prob, alias_idx,
        entry_prob, entry_alias, seeds, int(n_samples), int(max_tries), users, pos, neg,
    )  # fmt: skip
    return users, pos, neg


@jit(fastmath=SAFE_FASTMATH)
def _epoch_task(
    t, n_streams, sample_users, sample_items, indptr, indices, n_items, alias_prob,
    alias_idx, entry_prob, entry_alias, seeds, n_samples, max_tries, user_factors,
    item_factors, item_bias, lr, reg, lr_bias, reg_bias, user_start, item_start,
):  # fmt: skip  # pragma: no cover
    """Stream ``t`` of :func:`bpr_epoch`: its SGD steps; returns (loss, correct, skipped)."""
    none = np.empty(0, dtype=np.int64)
    return _stream(
        seeds[t], n_samples * t // n_streams, n_samples * (t + 1) // n_streams,
        sample_users, sample_items, indptr, indices, n_items, alias_prob, alias_idx,
        entry_prob, entry_alias, max_tries, True, user_factors, item_factors,
        item_bias, lr, reg, lr_bias, reg_bias, user_start, item_start, none, none, none,
    )  # fmt: skip


def bpr_epoch(
    sample_users,
    sample_items,
    indptr,
    indices,
    n_items,
    alias_prob,
    alias_idx,
    entry_prob,
    entry_alias,
    seeds,
    n_samples,
    max_tries,
    user_factors,
    item_factors,
    item_bias,
    lr,
    reg,
    lr_bias,
    reg_bias,
    user_start,
    item_start,
    n_threads=None,
):
    """One epoch of BPR SGD: ``n_samples`` sampled triples; updates factors in place.

    The streams (one per seed) are tasks of :func:`factorkit._threads.run_tasks`
    (compiled, GIL-free) on ``n_threads`` Python threads (None: ``numba.get_num_threads()``,
    so call it under ``using_threads(n)``), each taking the next stream when it is free.

    Parameters
    ----------
    sample_users, sample_items : int arrays of equal length
        The positives ``(u, i)`` samples are drawn from (uniformly over entries, or
        from ``entry_prob``/``entry_alias``).
    indptr, indices : CSR structure (int64, int32) of *all* the users' positives, each row
        sorted; negatives are verified against it.
    n_items : int, negatives are drawn from ``0 .. n_items - 1``.
    alias_prob, alias_idx : alias table over the items (:func:`bpr_alias_table`) for
        popularity-weighted negatives; empty arrays mean uniform negatives.
    entry_prob, entry_alias : alias table over the entries of ``sample_items`` for
        weighted positives (``fit``'s ``sample_weight``: entry ``e`` drawn with
        probability ``w_e / sum w``, never when ``w_e = 0``); empty arrays mean uniform
        entries, with exactly the draws of a kernel without weights.
    seeds : uint64 array, one per stream (see the module docstring).
    n_samples : int, triples to draw in the epoch.
    max_tries : int, rejected negative draws before the exact fallback.
    user_factors (n_users x k), item_factors (n_items x k), item_bias (n_items): one
        float dtype, updated in place.
    lr, reg : step size and L2 penalty for the factors.
    lr_bias, reg_bias : for the item biases (``lr_bias = 0`` keeps them at zero).
    user_start, item_start : rows below these are frozen.

    Returns
    -------
    (loss, correct, skipped)
        ``loss`` is the sum of ``-ln sigma(x_uij)`` and ``correct`` the number of triples
        with ``x_uij > 0``, both taken before each update; ``skipped`` counts samples
        without a negative (users holding every item).

    Races: see the module docstring (Hogwild over streams; deterministic with one).
    """
    # integers as Python ints: one compiled signature whatever integer type callers pass
    parts = run_tasks(
        _epoch_task, len(seeds), numba.get_num_threads() if n_threads is None else n_threads,
        sample_users, sample_items, indptr, indices, int(n_items), alias_prob, alias_idx,
        entry_prob, entry_alias, seeds, int(n_samples), int(max_tries), user_factors,
        item_factors, item_bias, lr, reg, lr_bias, reg_bias, int(user_start), int(item_start),
    )  # fmt: skip
    loss = 0.0
    correct = 0
    skipped = 0
    for part_loss, part_correct, part_skipped in parts:  # in stream order
        loss += part_loss
        correct += part_correct
        skipped += part_skipped
    return loss, correct, skipped


@jit()
def bpr_alias_table(weights):  # pragma: no cover
    """Walker/Vose alias table for drawing ``j`` with probability ``weights[j] / sum``.

    Returns ``(prob, alias)``: draw ``j`` uniformly, keep it with probability ``prob[j]``,
    else take ``alias[j]``. ``weights`` must be non-negative with a positive sum.
    """
    n = len(weights)
    total = 0.0
    for j in range(n):
        total += weights[j]
    scaled = np.empty(n, dtype=np.float64)
    for j in range(n):
        scaled[j] = weights[j] * n / total
    prob = np.ones(n, dtype=np.float64)
    alias = np.arange(n).astype(np.int32)
    small = np.empty(n, dtype=np.int64)
    large = np.empty(n, dtype=np.int64)
    n_small = 0
    n_large = 0
    for j in range(n):
        if scaled[j] < 1.0:
            small[n_small] = j
            n_small += 1
        else:
            large[n_large] = j
            n_large += 1
    while n_small > 0 and n_large > 0:
        n_small -= 1
        s = small[n_small]
        n_large -= 1
        g = large[n_large]
        prob[s] = scaled[s]
        alias[s] = g
        scaled[g] = (scaled[g] + scaled[s]) - 1.0
        if scaled[g] < 1.0:
            small[n_small] = g
            n_small += 1
        else:
            large[n_large] = g
            n_large += 1
    # leftovers are 1 up to rounding
    for a in range(n_small):
        prob[small[a]] = 1.0
    for a in range(n_large):
        prob[large[a]] = 1.0
    return prob, alias
