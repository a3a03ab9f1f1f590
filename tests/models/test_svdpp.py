import re
import tempfile
from pathlib import Path

import numpy as np
import pytest

import factorkit as fk
from factorkit import datasets, split
from factorkit.exceptions import DivergenceError, InvalidParameterError
from factorkit.models.svdpp import SVDpp
from factorkit.testing import estimator_checks


@pytest.fixture(scope="module")
def movielens():
    return datasets.load_movielens_small()


def _rmse(model, test):
    return fk.evaluate(model, test, metrics=["rmse"])["rmse"]


@pytest.mark.parametrize(
    "check", estimator_checks(SVDpp(epochs=10, random_state=0)), ids=lambda c: c.name
)
def test_svdpp_checks(check):
    check()


def test_movielens_5fold_cv_rmse(movielens):
    # Surprise's SVDpp gets 0.8626 on this protocol (5-fold, interaction level)
    scores = [
        _rmse(SVDpp(random_state=0).fit(tr), te)
        for tr, te in split.kfold(movielens, k=5, random_state=0)
    ]
    assert 0.80 < np.mean(scores) <= 0.855, scores


def test_deterministic_with_one_thread(movielens):
    a = SVDpp(epochs=3, random_state=7, n_threads=1).fit(movielens)
    b = SVDpp(epochs=3, random_state=7, n_threads=1).fit(movielens)
    state_b = b.get_state()
    for name, value in a.get_state().items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(value, state_b[name], err_msg=name)
    np.testing.assert_array_equal(a.history_["loss"], b.history_["loss"])
    c = SVDpp(epochs=3, random_state=8, n_threads=1).fit(movielens)
    assert not np.array_equal(a.item_factors_, c.item_factors_)


def test_two_threads_as_accurate(movielens):
    train, test = next(split.kfold(movielens, k=5, random_state=0))
    one = _rmse(SVDpp(random_state=0, n_threads=1).fit(train), test)
    two = _rmse(SVDpp(random_state=0, n_threads=2).fit(train), test)
    assert two == pytest.approx(one, abs=0.005)


def test_recovers_synthetic_low_rank_near_noise_floor():
    rng = np.random.default_rng(0)
    n_users, n_items, rank, sigma = 400, 300, 3, 0.25
    p = rng.normal(0, rank**-0.25, (n_users, rank))
    q = rng.normal(0, rank**-0.25, (n_items, rank))
    truth = 3 + rng.normal(0, 0.3, (n_users, 1)) + rng.normal(0, 0.3, (1, n_items)) + p @ q.T
    users, items = np.nonzero(rng.random((n_users, n_items)) < 0.3)
    values = truth[users, items] + rng.normal(0, sigma, len(users))
    test = rng.random(len(users)) < 0.2
    train = fk.Interactions.from_arrays(users[~test], items[~test], values[~test])
    model = SVDpp(regularization=0.05, epochs=60, random_state=0).fit(train)
    pred = model.predict(users[test], items[test])
    noisy = np.sqrt(np.mean((pred - values[test]) ** 2))
    clean = np.sqrt(np.mean((pred - truth[users[test], items[test]]) ** 2))
    assert noisy < 1.2 * sigma, noisy  # the floor is sigma itself
    assert clean < 0.65 * sigma, clean
    biases_only = fk.BaselineOnly().fit(train).predict(users[test], items[test])
    assert noisy < 0.5 * np.sqrt(np.mean((biases_only - values[test]) ** 2))


def test_user_matrix_adds_implicit_term(movielens):
    model = SVDpp(epochs=2, random_state=0).fit(movielens)
    ptr, idx = model.seen_indptr_, model.seen_indices_
    for u in (0, 5, model.user_factors_.shape[0] - 1):
        rated = idx[ptr[u] : ptr[u + 1]]
        expected = model.user_factors_[u] + model.implicit_factors_[rated].sum(0) / np.sqrt(
            len(rated)
        )
        # ranking scores are the effective user vector against every item, plus b_i
        ((_, _, scores),) = model.score_blocks([u])
        want = model.item_factors_ @ expected + model.item_bias_
        np.testing.assert_allclose(scores[0], want, rtol=1e-4, atol=1e-5)


def test_fold_in_of_a_training_user_reproduces_fitted_predictions(movielens):
    model = SVDpp(random_state=0).fit(movielens)
    rng = np.random.default_rng(0)
    candidates = rng.choice(movielens.item_map.ids, 300, replace=False)
    pos = model.item_map_.to_index(candidates)
    for user in rng.choice(movielens.user_map.ids, 10, replace=False):
        items, ratings = movielens.user_items(user)
        folded = model.fold_in(items, ratings)
        scores = (
            model.global_mean_
            + folded.bias
            + model.item_bias_[pos]
            + model.item_factors_[pos] @ folded.factors
        )
        mine = np.clip(scores, *model.rating_scale_)
        fitted = model.predict(np.repeat(user, len(candidates)), candidates)
        assert np.mean(np.abs(mine - fitted)) < 0.1
        assert np.corrcoef(mine, fitted)[0, 1] > 0.9
        rec, _ = model.recommend_new_user(items, ratings, k=5)
        assert len(rec) == 5 and not set(rec) & set(items)


def test_fold_in_solves_least_squares_around_the_implicit_term(movielens):
    model = SVDpp(epochs=2, random_state=0).fit(movielens)
    items, ratings = movielens.user_items(movielens.user_map.ids[0])
    pos = model.item_map_.to_index(items)
    q = model.item_factors_[pos].astype(np.float64)
    offset = model.implicit_factors_[pos].astype(np.float64).sum(0) / np.sqrt(len(pos))
    x = np.hstack([np.ones((len(pos), 1)), q])
    target = ratings - model.global_mean_ - model.item_bias_[pos] - q @ offset
    lam = model.regularization * len(pos)  # SGD applies the penalty once per rating
    sol = np.linalg.solve(x.T @ x + lam * np.eye(x.shape[1]), x.T @ target)
    folded = model.fold_in(items, ratings)
    assert folded.bias == pytest.approx(sol[0], rel=1e-6)
    np.testing.assert_allclose(folded.factors, sol[1:] + offset, rtol=1e-5, atol=1e-6)


def test_save_load_restores_effective_user_vectors(movielens):
    model = SVDpp(epochs=2, random_state=0).fit(movielens)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "svdpp.fk"
        model.save(path)
        loaded = fk.load(path)
    np.testing.assert_array_equal(loaded.implicit_factors_, model.implicit_factors_)
    users = np.arange(len(model.user_map_))
    a = np.vstack([s for *_, s in loaded.score_blocks(users)])
    np.testing.assert_array_equal(a, np.vstack([s for *_, s in model.score_blocks(users)]))


def test_validation_history_and_early_stopping(movielens):
    train, valid = next(split.kfold(movielens, k=5, random_state=0))
    model = SVDpp(epochs=40, learning_rate=0.05, learning_rate_decay=1.0, early_stopping=2)
    model.set_params(random_state=0).fit(train, validation=valid)
    history = model.history_
    assert list(history.columns[:3]) == ["epoch", "loss", "val_rmse"]
    assert len(history) < 40
    best = history["val_rmse"].min()
    assert _rmse(model, valid) == pytest.approx(best, abs=1e-6)


def test_diverges_loudly_with_a_huge_learning_rate(movielens):
    with pytest.raises(DivergenceError, match=r"diverged at epoch \d+ .*lower learning_rate"):
        SVDpp(learning_rate=50.0, random_state=0).fit(movielens)


def test_invalid_parameter_message(movielens):
    msg = "The 'factors' parameter of SVDpp must be an int >= 1; got 0."
    with pytest.raises(InvalidParameterError, match=re.escape(msg)):
        SVDpp(factors=0).fit(movielens)
    with pytest.raises(InvalidParameterError, match=r"'learning_rate_decay'.*in \(0, 1\]"):
        SVDpp(learning_rate_decay=1.5).fit(movielens)
