"""ALS(nonnegative=True): Spark MLlib's non-negative factors (issue #13, "Coming from Spark")."""

import hashlib
import json
import warnings

import numpy as np
import pytest

import factorkit as fk
from factorkit.exceptions import DataWarning, InvalidParameterError
from factorkit.kernels.als import als_solve_rows
from factorkit.kernels.linalg import nnls_solve
from factorkit.testing import check_estimator


@pytest.fixture(scope="module")
def movielens():
    data = fk.datasets.load_movielens_small()
    train, test = fk.split.random(data, test_size=0.2, random_state=0)
    params = {"factors": 20, "epochs": 8, "regularization": 0.1, "random_state": 0}
    free = fk.ALS(**params).fit(train)
    nonneg = fk.ALS(nonnegative=True, **params).fit(train)
    return train, test, free, nonneg


def rmse(model, test):
    with warnings.catch_warnings():  # test pairs unknown to the model get the fallback
        warnings.simplefilter("ignore", DataWarning)
        return fk.evaluate(model, test, metrics=["rmse"])["rmse"]


def kkt_violation(a, rhs, s):
    """Largest KKT violation of min s^T a s / 2 - rhs . s s.t. s[1:] >= 0, relative to
    max |rhs|: |gradient| on the bias and the positive factors, -gradient at zeros."""
    g = a @ s - rhs
    pos = s[1:] > 0
    worst = max(abs(g[0]), np.abs(g[1:][pos]).max(initial=0.0), (-g[1:][~pos]).max(initial=0.0))
    return worst / np.abs(rhs).max()


def test_factors_are_nonnegative_and_rmse_close_to_unconstrained(movielens):
    _, test, free, nonneg = movielens
    assert (nonneg.user_factors_ >= 0).all() and (nonneg.item_factors_ >= 0).all()
    # the constraint binds: many zeros, and the biases stay free (negative ones exist)
    assert (nonneg.item_factors_ == 0).mean() > 0.2
    assert (nonneg.user_bias_ < 0).any() and (nonneg.item_bias_ < 0).any()
    # measured (k=20, 8 epochs): 0.8699 nonnegative, 0.8584 unconstrained
    free_rmse, nonneg_rmse = rmse(free, test), rmse(nonneg, test)
    assert nonneg_rmse < free_rmse + 0.05
    assert 0.80 < nonneg_rmse < 0.95
    assert np.isfinite(nonneg.history_["loss"]).all()
    assert nonneg.history_["loss"].is_monotonic_decreasing


def test_fold_in_partial_fit_and_recommend_new_user_stay_nonnegative(movielens):
    train, _, _, nonneg = movielens
    user = train.user_map.ids[3]
    items, ratings = train.user_items(user)
    folded = nonneg.fold_in(items, ratings)
    assert (folded.factors >= 0).all()
    # the constraint binds for this user: the plain ridge solution has negative factors
    q = nonneg.item_factors_[nonneg.item_map_.to_index(items)].astype(np.float64)
    x = np.hstack([np.ones((len(q), 1)), q])
    y = ratings - nonneg.global_mean_ - nonneg.item_bias_[nonneg.item_map_.to_index(items)]
    ridge = np.linalg.solve(x.T @ x + 0.1 * len(q) * np.eye(21), x.T @ y)
    assert (ridge[1:] < 0).any()
    # the same problem as the training kernel's row solve for this user
    pos = nonneg.item_map_.to_index(items)
    f, b = np.zeros((1, 20), np.float32), np.zeros(1, np.float32)
    als_solve_rows(
        np.array([0, len(pos)]), pos.astype(np.int32), ratings.astype(np.float32), np.zeros(0),
        nonneg.item_factors_, nonneg.item_bias_, nonneg.global_mean_, 0.1,
        0.1, True, True, f, b,
    )  # fmt: skip
    np.testing.assert_allclose(folded.factors, f[0], atol=1e-4)
    assert folded.bias == pytest.approx(float(b[0]), abs=1e-4)
    ids, scores = nonneg.recommend_new_user(items[:5], ratings[:5], k=3)
    assert len(ids) == 3 and np.isfinite(scores).all()

    copy = fk.ALS(**nonneg.get_params()).set_state(nonneg.get_state())
    new = fk.Interactions.from_arrays(["new", "new", user], [1, 50, 2], [5.0, 1.0, 0.5])
    copy.partial_fit(new)
    assert (copy.user_factors_ >= 0).all() and (copy.item_factors_ >= 0).all()
    assert copy.user_factors_[copy.user_map_.to_index(["new"])[0]].any()


def test_kernel_rows_satisfy_the_nnls_kkt_conditions():
    # rows of 1..30 ratings against k + 1 = 9 unknowns: short rows would take the dual
    # path unconstrained; nonnegative solves them all in the primal
    rng = np.random.default_rng(5)
    k, n_cols = 8, 40
    counts = np.arange(1, 31)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    indices = np.concatenate([rng.choice(n_cols, n, replace=False) for n in counts])
    indices = indices.astype(np.int32)
    values = rng.uniform(1, 5, indptr[-1])
    y = np.abs(rng.standard_normal((n_cols, k)))
    c = rng.standard_normal(n_cols) * 0.3
    lam, mu = 0.05, 3.0
    f, b = np.full((30, k), 7.0), np.full(30, 7.0)
    obj = als_solve_rows(indptr, indices, values, np.zeros(0), y, c, mu, lam, lam, True, True, f, b)
    assert (f >= 0).all()
    obj_ref, n_clipped = 0.0, 0
    for r in range(30):
        idx = indices[indptr[r] : indptr[r + 1]]
        x = np.hstack([np.ones((len(idx), 1)), y[idx]])
        t = values[indptr[r] : indptr[r + 1]] - mu - c[idx]
        a = x.T @ x + lam * len(idx) * np.eye(k + 1)
        s = np.concatenate([[b[r]], f[r]])
        assert kkt_violation(a, x.T @ t, s) < 1e-9, r
        n_clipped += bool((np.linalg.solve(a, x.T @ t)[1:] < 0).any())
        obj_ref += ((t - x @ s) ** 2).sum() + lam * len(idx) * (s @ s)
    assert n_clipped > 10  # the constraint is active on most rows
    assert obj == pytest.approx(obj_ref, rel=1e-10)


def test_nnls_solve_pivoting_and_its_fallback_meet_kkt():
    rng = np.random.default_rng(0)
    m = 12
    x = np.hstack([np.ones((30, 1)), np.abs(rng.standard_normal((30, m - 1)))])
    a, rhs = x.T @ x + 0.5 * np.eye(m), x.T @ (rng.standard_normal(30) * 2)
    start = np.linalg.solve(a, rhs)
    assert (start[1:] < 0).any()

    def solve(max_rounds):
        s = start.copy()
        scratch = (np.empty((m, m)), np.empty(m), np.empty(m), np.empty((m, m)))
        status = nnls_solve(a, m, 1, rhs, s, max_rounds, np.empty(2 * m, np.int64), *scratch)
        return s, status

    s, status = solve(4 * m + 10)
    assert 1 <= status <= 4 and (s[1:] >= 0).all()
    assert kkt_violation(a, rhs, s) < 1e-12
    # no pivoting rounds: clipped and polished by projected coordinate descent
    s_cd, status = solve(0)
    assert status == 0 and (s_cd[1:] >= 0).all()
    assert kkt_violation(a, rhs, s_cd) < 1e-6
    np.testing.assert_allclose(s_cd, s, atol=1e-6)


def test_save_load_round_trip_and_old_files_default_to_unconstrained(movielens, tmp_path):
    train, _, _, nonneg = movielens
    path = tmp_path / "nn.fk"
    nonneg.save(path)
    loaded = fk.load(path)
    assert loaded.nonnegative is True
    assert loaded.get_params() == nonneg.get_params()
    users = train.user_map.ids[train.user_index[:50]]
    items = train.item_map.ids[train.item_index[:50]]
    np.testing.assert_array_equal(loaded.predict(users, items), nonneg.predict(users, items))
    assert (loaded.fold_in(items[:4], [1.0, 5.0, 1.0, 5.0]).factors >= 0).all()

    # a file written before the parameter existed has no key: it loads with the default
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(arrays["__meta__"].tobytes())
    del meta["params"]["nonnegative"]
    meta_bytes = json.dumps(meta).encode()
    arrays["__meta__"] = np.frombuffer(meta_bytes, dtype=np.uint8)
    digest = hashlib.sha256(meta_bytes).hexdigest().encode()
    arrays["__meta_sha256__"] = np.frombuffer(digest, dtype=np.uint8)
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)
    old = fk.load(path)
    assert old.nonnegative is False
    np.testing.assert_array_equal(old.predict(users, items), nonneg.predict(users, items))


def test_set_params_and_invalid_value_is_named(movielens):
    train = movielens[0]
    model = fk.ALS().set_params(nonnegative=True)
    assert model.get_params()["nonnegative"] is True
    with pytest.raises(
        InvalidParameterError,
        match=r"'nonnegative' parameter of ALS must be a bool; got 'yes'",
    ):
        fk.ALS(nonnegative="yes", factors=2, epochs=1).fit(train)


def test_passes_the_estimator_check_suite():
    check_estimator(fk.ALS(factors=4, epochs=5, nonnegative=True, random_state=0))
