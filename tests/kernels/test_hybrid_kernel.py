"""hybrid_epoch against a NumPy reference on the same sampled triples (BPR loss; softmax)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from factorkit.kernels.hybrid import _softmax_step, hybrid_epoch

NO_ALIAS = (np.empty(0, dtype=np.float64), np.empty(0, dtype=np.int32))


def _problem(dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    n_users, n_items, k = 12, 15, 4
    r = sp.random(n_users, n_items, density=0.3, random_state=seed, format="csr")
    r.data[:] = 1
    r.sort_indices()
    indptr, indices = r.indptr.astype(np.int64), r.indices.astype(np.int32)
    users = np.repeat(np.arange(n_users, dtype=np.int32), np.diff(indptr))
    xu = sp.random(n_users, 3, density=0.5, random_state=seed + 1, format="csr", dtype=dtype)
    xi = sp.random(n_items, 5, density=0.4, random_state=seed + 2, format="csr", dtype=dtype)
    params = [
        rng.normal(0, 0.3, (n_users, k)).astype(dtype),
        rng.normal(0, 0.3, (3, k)).astype(dtype),
        rng.normal(0, 0.3, (n_items, k)).astype(dtype),
        rng.normal(0, 0.3, (5, k)).astype(dtype),
        rng.normal(0, 0.1, n_items).astype(dtype),
        rng.normal(0, 0.1, 5).astype(dtype),
    ]
    return users, indptr, indices, n_items, xu, xi, params


def _parts(x):
    return (x.indptr.astype(np.int64), x.indices.astype(np.int32), x.data)


def _reference(triples, xu, xi, params, lr, reg):
    eu, fu, ei, fi, bi_id, bf = (p.copy() for p in params)
    xu, xi = xu.toarray(), xi.toarray()
    for u, i, j in zip(*triples, strict=True):
        pu = eu[u] + xu[u] @ fu
        qi, qj = ei[i] + xi[i] @ fi, ei[j] + xi[j] @ fi
        x = pu @ (qi - qj) + (bi_id[i] + xi[i] @ bf) - (bi_id[j] + xi[j] @ bf)
        g = 1.0 / (1.0 + np.exp(x))
        gu, gi, gj = g * (qi - qj), g * pu, -g * pu
        eu[u] += lr * (gu - reg * eu[u])
        for f in np.flatnonzero(xu[u]):
            fu[f] += lr * (xu[u, f] * gu - reg * fu[f])
        for item, grad, gb in ((i, gi, g), (j, gj, -g)):
            ei[item] += lr * (grad - reg * ei[item])
            for f in np.flatnonzero(xi[item]):
                fi[f] += lr * (xi[item, f] * grad - reg * fi[f])
            bi_id[item] += lr * (gb - reg * bi_id[item])
            for f in np.flatnonzero(xi[item]):
                bf[f] += lr * (xi[item, f] * gb - reg * bf[f])
    return eu, fu, ei, fi, bi_id, bf


def test_bpr_epoch_matches_numpy_reference():
    """In float32, the models' dtype (a float64 run would compile a variant nobody uses)."""
    users, indptr, indices, n_items, xu, xi, params = _problem(np.float32)
    seeds = np.array([12345], dtype=np.uint64)
    n = 40
    trace = np.zeros((n, 3), dtype=np.int64)
    got = [p.copy() for p in params]
    loss, correct, skipped = hybrid_epoch(
        users, indices, indptr, indices, n_items, *NO_ALIAS, seeds, n, 32, 0, 10,
        got[0], got[1], *_parts(xu), got[2], got[3], *_parts(xi), got[4], got[5],
        0.05, 0.05, 0.05, 0.01, 0.05, trace,
    )  # fmt: skip
    assert skipped == 0 and 0 <= correct <= n and loss > 0
    u, i, j = trace.T
    # the samples: (u, i) a positive, j an item u has not interacted with
    dense = np.zeros((len(indptr) - 1, n_items), dtype=bool)
    dense[users, indices] = True
    assert dense[u, i].all() and not dense[u, j].any()
    expected = _reference((u, i, j), xu, xi, params, 0.05, 0.01)
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_frozen_id_embeddings_and_warp_learns():
    users, indptr, indices, n_items, xu, xi, params = _problem(np.float32, seed=3)
    got = [p.copy() for p in params]
    accuracy = []
    for epoch in range(30):
        seeds = np.array([epoch], dtype=np.uint64)
        _, correct, _ = hybrid_epoch(
            users, indices, indptr, indices, n_items, *NO_ALIAS, seeds, len(indices), 32, 1,
            10,
            got[0], got[1], *_parts(xu), got[2], got[3], *_parts(xi), got[4], got[5],
            np.float32(0.1), np.float32(0.0), np.float32(0.1), np.float32(0.0),
            np.float32(0.1), np.empty((0, 3), np.int64),
        )  # fmt: skip
        accuracy.append(correct / len(indices))
    np.testing.assert_array_equal(got[2], params[2])  # item id embeddings frozen
    np.testing.assert_array_equal(got[4], params[4])  # and their bias parts
    assert not np.array_equal(got[3], params[3])  # feature embeddings trained
    # WARP: the share of positives with no violating negative grows
    assert np.mean(accuracy[-5:]) > np.mean(accuracy[:5]) + 0.2


def test_softmax_with_one_negative_is_the_bpr_step():
    # over {i, j} the softmax is the logistic of x_ui - x_uj: the same draws, the same
    # weights (1 - p_i = p_j = sigma(-x)) and the same loss as BPR
    users, indptr, indices, n_items, xu, xi, params = _problem(np.float32, seed=5)
    runs = []
    for loss_kind in (0, 2):
        got = [p.copy() for p in params]
        trace = np.zeros((40, 3), dtype=np.int64)
        out = hybrid_epoch(
            users, indices, indptr, indices, n_items, *NO_ALIAS,
            np.array([777], dtype=np.uint64), 40, 32, loss_kind, 1,
            got[0], got[1], *_parts(xu), got[2], got[3], *_parts(xi), got[4], got[5],
            0.05, 0.05, 0.05, 0.01, 0.05, trace,
        )  # fmt: skip
        runs.append((out, trace, got))
    (bpr_out, bpr_trace, bpr), (sm_out, sm_trace, sm) = runs
    np.testing.assert_array_equal(sm_trace, bpr_trace)
    assert sm_out[1:] == bpr_out[1:]
    np.testing.assert_allclose(sm_out[0], bpr_out[0], rtol=1e-5)
    for a, b in zip(sm, bpr, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_softmax_step_matches_numpy_reference():
    _, indptr, indices, _, xu, xi, params = _problem(np.float32, seed=7)
    got = [p.copy() for p in params]
    eu, fu, ei, fi, bi_id, bf = (p.astype(np.float64) for p in params)
    xud, xid = xu.toarray(), xi.toarray()
    u, i, negs = 2, int(indices[indptr[2]]), np.array([0, 5, 9, 5], dtype=np.int64)
    pu = eu[u] + xud[u] @ fu
    q = ei + xid @ fi
    b = bi_id + xid @ bf
    scores = np.r_[pu @ q[i] + b[i], q[negs] @ pu + b[negs]]
    p = np.exp(scores - scores.max())
    p /= p.sum()
    weights = np.r_[1.0 - p[0], -p[1:]]  # d ln p_i / d score, per item
    lr, reg = 0.1, 0.02
    gu = weights[0] * q[i] + weights[1:] @ q[negs]
    eu[u] += lr * (gu - reg * eu[u])
    for f in np.flatnonzero(xud[u]):
        fu[f] += lr * (xud[u, f] * gu - reg * fu[f])
    for item, w in zip(np.r_[i, negs], weights, strict=True):  # a repeated negative steps twice
        ei[item] += lr * (w * pu - reg * ei[item])
        bi_id[item] += lr * (w - reg * bi_id[item])
        for f in np.flatnonzero(xid[item]):
            fi[f] += lr * (xid[item, f] * w * pu - reg * fi[f])
            bf[f] += lr * (xid[item, f] * w - reg * bf[f])
    k = pu.shape[0]
    vecs = q[negs].astype(np.float32)
    loss = _softmax_step(
        pu.astype(np.float32), q[i].astype(np.float32), np.float64(scores[0]), u, i, len(negs),
        negs, vecs, scores[1:].copy(), np.empty(k, np.float32), np.empty(k, np.float32),
        got[0], got[1], *_parts(xu), got[2], got[3], *_parts(xi), got[4], got[5],
        np.float32(lr), np.float32(lr), np.float32(lr), np.float32(reg), np.float32(lr),
    )  # fmt: skip
    np.testing.assert_allclose(loss, -np.log(p[0]), rtol=1e-5)
    for a, e in zip(got, (eu, fu, ei, fi, bi_id, bf), strict=True):
        np.testing.assert_allclose(a, e, rtol=2e-4, atol=2e-5)
