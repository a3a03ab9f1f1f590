"""hybrid_squared_epoch against a NumPy reference replaying the kernel's visiting order."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from factorkit.kernels.hybrid import hybrid_squared_epoch


def _problem(dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    n_users, n_items, k = 12, 15, 4
    r = sp.random(n_users, n_items, density=0.3, random_state=seed, format="csr")
    r.sort_indices()
    indptr = r.indptr.astype(np.int64)
    users = np.repeat(np.arange(n_users, dtype=np.int32), np.diff(indptr))
    items = r.indices.astype(np.int32)
    values = rng.integers(1, 6, len(items)).astype(dtype)
    xu = sp.random(n_users, 3, density=0.5, random_state=seed + 1, format="csr", dtype=dtype)
    xi = sp.random(n_items, 5, density=0.4, random_state=seed + 2, format="csr", dtype=dtype)
    params = [
        rng.normal(0, 0.3, (n_users, k)).astype(dtype),  # user id embeddings
        rng.normal(0, 0.3, (3, k)).astype(dtype),  # user feature embeddings
        rng.normal(0, 0.1, n_users).astype(dtype),  # user id biases
        rng.normal(0, 0.1, 3).astype(dtype),  # user feature biases
        rng.normal(0, 0.3, (n_items, k)).astype(dtype),
        rng.normal(0, 0.3, (5, k)).astype(dtype),
        rng.normal(0, 0.1, n_items).astype(dtype),
        rng.normal(0, 0.1, 5).astype(dtype),
    ]
    return users, items, values, xu, xi, params


def _parts(x):
    return (x.indptr.astype(np.int64), x.indices.astype(np.int32), x.data)


def _run(users, items, values, weights, seeds, xu, xi, params, mu, lr, reg, lr_bias):
    got = [p.copy() for p in params]
    order = np.full(len(values), -1, dtype=np.int64)
    sse = hybrid_squared_epoch(
        users, items, values, weights, seeds, order, mu,
        got[0], got[1], *_parts(xu), got[2], got[3],
        got[4], got[5], *_parts(xi), got[6], got[7],
        lr, lr, lr, reg, lr_bias,
    )  # fmt: skip
    return got, order, sse


def _reference(order, users, items, values, weights, xu, xi, params, mu, lr, reg):
    eu, fu, cu, du, ei, fi, ci, di = (p.copy() for p in params)
    xu, xi = xu.toarray(), xi.toarray()
    sse = 0.0
    for e in order:
        w = weights[e]
        if w == 0:
            continue
        u, i = users[e], items[e]
        pu, qi = eu[u] + xu[u] @ fu, ei[i] + xi[i] @ fi
        err = values[e] - (mu + cu[u] + xu[u] @ du + ci[i] + xi[i] @ di + pu @ qi)
        sse += w * err * err
        for row, x, emb, feat, bias, fbias, grad in (
            (u, xu, eu, fu, cu, du, err * qi),
            (i, xi, ei, fi, ci, di, err * pu),
        ):
            emb[row] += w * lr * (grad - reg * emb[row])
            for f in np.flatnonzero(x[row]):
                feat[f] += w * lr * (x[row, f] * grad - reg * feat[f])
            bias[row] += w * lr * (err - reg * bias[row])
            for f in np.flatnonzero(x[row]):
                fbias[f] += w * lr * (x[row, f] * err - reg * fbias[f])
    return [eu, fu, cu, du, ei, fi, ci, di], sse


def test_squared_epoch_matches_numpy_reference():
    """In float32, the models' dtype (a float64 run would compile a variant nobody uses)."""
    users, items, values, xu, xi, params = _problem(np.float32)
    weights = np.random.default_rng(5).uniform(0.5, 2.0, len(values)).astype(np.float32)
    weights[::7] = 0.0  # weight 0: no step from these ratings
    seeds = np.array([12345], dtype=np.uint64)
    mu = float(np.average(values, weights=weights))
    got, order, sse = _run(users, items, values, weights, seeds, xu, xi, params, mu,
                           0.05, 0.02, 0.05)  # fmt: skip
    # one stream visits every rating once, in a shuffled order
    np.testing.assert_array_equal(np.sort(order), np.arange(len(values)))
    assert not np.array_equal(order, np.arange(len(values)))
    expected, expected_sse = _reference(order, users, items, values, weights, xu, xi,
                                        params, mu, 0.05, 0.02)  # fmt: skip
    np.testing.assert_allclose(sse, expected_sse, rtol=1e-5)
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_streams_split_the_ratings_and_one_stream_repeats():
    users, items, values, xu, xi, params = _problem(np.float32, seed=3)
    ones = np.ones(len(values), np.float32)
    f32 = np.float32
    args = (xu, xi, params, 3.0, f32(0.05), f32(0.02), f32(0.05))
    seeds = np.array([1, 2], dtype=np.uint64)
    _, order, _ = _run(users, items, values, ones, seeds, *args)
    half = len(values) // 2  # stream t takes the ratings n*t//2 .. n*(t+1)//2 - 1
    np.testing.assert_array_equal(np.sort(order[:half]), np.arange(half))
    np.testing.assert_array_equal(np.sort(order[half:]), np.arange(half, len(values)))
    one = np.array([7], dtype=np.uint64)
    a, order_a, sse_a = _run(users, items, values, ones, one, *args)
    b, order_b, sse_b = _run(users, items, values, ones, one, *args)
    np.testing.assert_array_equal(order_a, order_b)
    assert sse_a == sse_b
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


def test_squared_epochs_fit_the_ratings_and_biases_can_be_frozen():
    users, items, values, xu, xi, params = _problem(np.float32, seed=4)
    ones = np.ones(len(values), np.float32)
    f32 = np.float32
    got = [p.copy() for p in params]
    mu = float(values.mean())
    losses = []
    for epoch in range(40):
        seeds = np.array([epoch], dtype=np.uint64)
        order = np.empty(len(values), np.int64)
        sse = hybrid_squared_epoch(
            users, items, values, ones, seeds, order, mu,
            got[0], got[1], *_parts(xu), got[2], got[3],
            got[4], got[5], *_parts(xi), got[6], got[7],
            f32(0.05), f32(0.05), f32(0.05), f32(0.0), f32(0.0),
        )  # fmt: skip
        losses.append(sse / len(values))
    assert losses[-1] < 0.25 * losses[0], losses
    for b in (2, 3, 6, 7):  # lr_bias = 0: every bias part keeps its value
        np.testing.assert_array_equal(got[b], params[b])
