"""HybridMF(loss="squared"): ratings from id + feature embeddings. Accuracy against
BiasedMF on MovieLens small, cold-start items rated from their genres, the rating-model
tags and paths (predict clipping, recommend, fold-in), determinism, sample weights and
bad input."""

from __future__ import annotations

import numpy as np
import pytest

import factorkit as fk
from factorkit.exceptions import DataError
from factorkit.testing import estimator_checks

#: the settings measured below (docs/cold-start.md, "Ratings: loss='squared'")
PARAMS = dict(loss="squared", factors=32, epochs=20, learning_rate=0.01, regularization=0.02)


@pytest.mark.parametrize(
    "check",
    estimator_checks(fk.HybridMF(loss="squared", factors=8, epochs=30, learning_rate=0.02,
                                 random_state=0)),
    ids=lambda c: c.name,
)  # fmt: skip
def test_squared_checks(check):
    check()


@pytest.fixture(scope="module")
def ratings():
    return fk.datasets.load_movielens_small()


@pytest.fixture(scope="module")
def split(ratings):
    return fk.split.random(ratings, test_size=0.2, random_state=0)


@pytest.fixture(scope="module")
def warm(split, features):
    train, _ = split
    return fk.HybridMF(**PARAMS, random_state=0, n_threads=1).fit(train, item_features=features)


def _rmse(model, data):
    users, items = data.user_map.ids[data.user_index], data.item_map.ids[data.item_index]
    return float(np.sqrt(np.mean((model.predict(users, items) - data.values) ** 2)))


def test_rmse_close_to_biased_mf(warm, split):
    # measured (seed 0, one thread): HybridMF 0.829 (0.836 at regularization 0.05, 0.860
    # without features); BiasedMF(factors=32, epochs=20) 0.849
    _, test = split
    rmse = fk.evaluate(warm, test, metrics=["rmse"])["rmse"]
    biased = fk.BiasedMF(factors=32, epochs=20, random_state=0).fit(split[0])
    with pytest.warns(fk.exceptions.DataWarning):  # BiasedMF does not know the new items
        baseline = fk.evaluate(biased, test, metrics=["rmse"])["rmse"]
    assert 0.80 < rmse < 0.86, rmse
    assert rmse < baseline + 0.03, (rmse, baseline)
    # the training loss (weighted MSE, before each step) goes down
    loss = warm.history_["loss"].to_numpy()
    assert loss[-1] < 0.8 * loss[0] and "accuracy" not in warm.history_


def test_a_rating_model(warm, split):
    _, test = split
    assert fk.get_tags(warm).explicit and fk.get_tags(warm).feedback == "explicit"
    assert not fk.get_tags(fk.HybridMF).explicit  # the default loss ranks
    assert not fk.get_tags(fk.HybridMF(loss="warp")).explicit
    lo, hi = warm.rating_scale_
    pred = warm.predict(test.user_map.ids[test.user_index], test.item_map.ids[test.item_index])
    assert lo <= pred.min() and pred.max() <= hi and pred.min() < 2.0 and pred.max() > 4.5
    assert 3.3 < warm.global_mean_ < 3.7 and np.abs(warm.user_bias_).max() > 0.3
    # recommend returns predicted ratings, best first (unclipped, as BiasedMF's)
    items, scores = warm.recommend(1, k=5)
    np.testing.assert_allclose(np.clip(scores, lo, hi), warm.predict(1, items), atol=1e-4)
    assert (np.diff(scores) <= 0).all()


def test_fold_in_from_ratings(warm, split):
    train, _ = split
    user = train.user_map.ids[0]
    items, values = train.user_items(user)
    folded = warm.fold_in(items, ratings=values)
    fitted = warm.predict(user, items)
    again = np.clip(
        warm.global_mean_ + folded.bias + warm.item_bias_[warm.item_map_.to_index(items)]
        + warm.item_factors_[warm.item_map_.to_index(items)] @ folded.factors,
        *warm.rating_scale_,
    )  # fmt: skip
    # the fold-in fits the user's ratings about as well as training did
    assert np.sqrt(np.mean((again - values) ** 2)) < np.sqrt(np.mean((fitted - values) ** 2)) + 0.1
    rec, scores = warm.recommend_new_user(items, ratings=values, k=5)
    assert len(rec) == 5 and not set(rec.tolist()) & set(items.tolist())
    assert 3.0 < scores[0] < 6.0  # a rating, not a bare ranking score
    with pytest.raises(DataError, match="ratings are required for an explicit-rating model"):
        warm.fold_in(items)


@pytest.fixture(scope="module")
def cold(ratings, features):
    """20% of the items held out entirely (seed 0); the model sees their features only."""
    rng = np.random.default_rng(0)
    held = np.zeros(ratings.n_items, dtype=bool)
    held[rng.choice(ratings.n_items, round(0.2 * ratings.n_items), replace=False)] = True
    in_test = held[ratings.item_index]
    train, test = ratings.take(~in_test), ratings.take(in_test)
    model = fk.HybridMF(**PARAMS, random_state=0, n_threads=1).fit(train, item_features=features)
    return train, test, model


def test_cold_items_rated_from_their_features(cold, ratings):
    # measured (seed 0): RMSE on the held-out items' ratings 0.910 (genres, tags, year),
    # 0.927 (genres only); the global mean 1.039; the global mean plus the user's bias
    # (BaselineOnly, which knows nothing of the held-out items) 0.951
    train, test, model = cold
    assert model.n_cold_items_ > 1000
    rmse = _rmse(model, test)  # every held-out item is in the vocabulary: no fallback
    mean_only = float(np.sqrt(np.mean((model.global_mean_ - test.values) ** 2)))
    with pytest.warns(fk.exceptions.DataWarning, match="19105 of 19105"):  # unknown items
        baseline = _rmse(fk.BaselineOnly().fit(train), test)
    assert rmse < mean_only - 0.08 and rmse < baseline - 0.02, (rmse, mean_only, baseline)
    meta = ratings.item_metadata.reset_index()
    genres = fk.Features.from_pandas(meta[["movieId", "genres"]], id="movieId", sep="|")
    by_genre = fk.HybridMF(**PARAMS, random_state=0, n_threads=1)
    by_genre = _rmse(by_genre.fit(train, item_features=genres), test)
    assert by_genre < mean_only - 0.08 and by_genre < baseline - 0.01, (by_genre, baseline)
    # a cold item's rating: mu + b_u + feature bias + p_u . (sum of its feature embeddings)
    item = test.item_map.ids[test.item_index[0]]
    users = train.user_map.ids[:5]
    features = fk.datasets.load_movielens_small_item_features()
    row = features.matrix[features.ids.lookup([item])].toarray()  # as a new item's row
    np.testing.assert_allclose(
        np.clip(model.score_new_items(row, users=users)[:, 0], *model.rating_scale_),
        model.predict(users, [item] * 5), rtol=1e-5,
    )  # fmt: skip


def test_deterministic_with_one_thread(split, features):
    train = split[0].select_users(split[0].user_map.ids[:100])
    fit = lambda seed: fk.HybridMF(**PARAMS, random_state=seed, n_threads=1).fit(  # noqa: E731
        train, item_features=features
    )
    a, b, c = fit(3), fit(3), fit(4)
    for name in ("user_factors_", "item_factors_", "user_bias_", "item_bias_"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.item_factors_, c.item_factors_)


def test_weight_zero_ratings_do_not_move_the_model(split, features):
    train = split[0].select_users(split[0].user_map.ids[:100]).compact()
    weights = np.ones(len(train))
    weights[::3] = 0.0
    flipped = train.values.copy()
    flipped[::3] = 5.5 - flipped[::3]  # other ratings on the same scale
    other = fk.Interactions(train.user_index, train.item_index, flipped, train.user_map,
                            train.item_map)  # fmt: skip
    assert other.rating_scale == train.rating_scale
    model = lambda: fk.HybridMF(**PARAMS, random_state=1, n_threads=1)  # noqa: E731
    a = model().fit(train, item_features=features, sample_weight=weights)
    b = model().fit(other, item_features=features, sample_weight=weights)
    c = model().fit(other, item_features=features)
    assert a.global_mean_ == b.global_mean_
    for name in ("user_factors_", "item_factors_", "user_bias_", "item_bias_"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.item_factors_, c.item_factors_)  # weight 1 moves it


def test_validation_rmse_and_early_stopping(split, features):
    train, test = split
    model = fk.HybridMF(**{**PARAMS, "epochs": 8}, early_stopping=2, random_state=0, n_threads=1)
    model.fit(train, item_features=features, validation=test)
    val = model.history_["val_rmse"].to_numpy()
    assert 0.8 < val[-1] < 1.0 and val[-1] < val[0]


def test_implicit_data_refused(ratings):
    liked = ratings.to_implicit(min_value=4.0)
    with pytest.raises(
        DataError,
        match=r"HybridMF.fit: loss='squared' fits ratings, but train is implicit feedback .*"
        r"use loss='bpr' or loss='warp' for implicit data",
    ):
        fk.HybridMF(loss="squared", epochs=1).fit(liked)


def test_ranking_losses_still_fit_ratings_as_positives(split):
    train = split[0].select_users(split[0].user_map.ids[:50])
    model = fk.HybridMF(factors=8, epochs=2, random_state=0, n_threads=1).fit(train)
    assert not fk.get_tags(model).explicit and model.global_mean_ == 0.0
    assert not model.user_bias_.any()


def test_users_known_by_features_only(split):
    import pandas as pd

    train = split[0].select_users(split[0].user_map.ids[:120]).compact()
    ids = np.arange(1, 611)  # every MovieLens user: those beyond the first 120 are cold
    users = fk.Features.from_pandas(
        pd.DataFrame({"userId": ids, "group": [f"g{i % 3}" for i in ids]}), id="userId",
        kind="user",
    )  # fmt: skip
    model = fk.HybridMF(**PARAMS, random_state=0, n_threads=1).fit(train, user_features=users)
    assert np.abs(model.feature_user_bias_).max() > 0  # the squared loss trains user biases
    cold_user = 600  # group g0, no ratings in train
    assert model.user_map_.lookup([cold_user])[0] >= len(train.user_map)
    row = users.matrix[users.ids.lookup([cold_user])].toarray()
    folded = model.fold_in(features=row)
    np.testing.assert_allclose(folded.bias, model.user_bias_[model.user_map_.to_index(cold_user)])
    items = model.item_map_.ids[:4]
    pos = model.item_map_.to_index(items)
    expected = model.global_mean_ + folded.bias + model.item_bias_[pos]
    expected += model.item_factors_[pos] @ folded.factors
    np.testing.assert_allclose(
        model.predict(cold_user, items), np.clip(expected, *model.rating_scale_), rtol=1e-5
    )
    rec, scores = model.recommend_new_user(features=row, k=3)
    np.testing.assert_allclose(
        np.clip(scores, *model.rating_scale_), model.predict(cold_user, rec), rtol=1e-5
    )
    state = model.get_state()
    del state["feature_user_bias_"]  # as in a file saved before loss="squared" existed
    old = fk.HybridMF(**PARAMS).set_state(state)
    np.testing.assert_array_equal(old.feature_user_bias_, np.zeros(3, np.float32))
    np.testing.assert_array_equal(old.predict(cold_user, items), model.predict(cold_user, items))
