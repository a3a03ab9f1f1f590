"""HybridMF: the shared checks, cold start from features, the new-user paths, bad input,
save/load, onboarding, content_regression, and recommend(explore=)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import factorkit as fk
from factorkit.exceptions import DataError, ModelFormatError
from factorkit.testing import estimator_checks

_BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_hybrid.py"
_spec = importlib.util.spec_from_file_location("bench_hybrid", _BENCH)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


@pytest.mark.parametrize(
    "check", estimator_checks(fk.HybridMF(factors=8, epochs=20, random_state=0)),
    ids=lambda c: c.name,
)  # fmt: skip
def test_hybrid_checks(check):
    check()


@pytest.fixture(scope="module")
def cold(liked, features):
    """20% of the items held out entirely (seed 0); HybridMF fitted on the rest."""
    train, test, cold_ids = bench.cold_split(liked, 0.2, 0)
    model = fk.HybridMF(factors=32, epochs=20, regularization=0.001, random_state=0, n_threads=2)
    model.fit(train, item_features=features)
    return train, test, cold_ids, model


def _cold_rows(features, ids):
    return features.transform(bench.features_frame(features, ids))


def test_cold_items_beat_popularity_and_feature_knn(cold, features):
    # measured (seed 0, factors 32, 20 epochs, regularization 0.001): HybridMF recall@20
    # 0.112, ndcg@20 0.091; features kNN 0.041 / 0.034; MostPopular (no signal for unseen
    # items) 0.052 / 0.046
    train, test, cold_ids, model = cold
    users = model.user_map_.ids[: len(train.compact().user_map)]
    hybrid = bench.cold_metrics(
        model.score_new_items(_cold_rows(features, cold_ids), users=users), users, cold_ids, test
    )
    knn = bench.cold_metrics(
        bench.feature_knn_scores(features, train, users, cold_ids), users, cold_ids, test
    )
    popular = bench.cold_metrics(
        bench.popular_scores(train, users, cold_ids), users, cold_ids, test
    )
    assert 0.08 < hybrid[0] < 0.2 and 0.06 < hybrid[1] < 0.2, hybrid
    assert hybrid[0] > 1.5 * max(knn[0], popular[0]), (hybrid, knn, popular)
    assert hybrid[1] > 1.5 * max(knn[1], popular[1]), (hybrid, knn, popular)


def test_cold_items_join_the_vocabulary(cold, features):
    train, _, cold_ids, model = cold
    assert model.n_cold_items_ == features.n_ids - train.compact().n_items
    known = set(model.item_map_.ids.tolist())
    assert set(cold_ids.tolist()) <= known
    # the features-only vectors equal what score_new_items computes for the same rows
    pos = model.item_map_.to_index(cold_ids[:5])
    vectors, bias = model.item_vectors(_cold_rows(features, cold_ids[:5]))
    np.testing.assert_allclose(model.item_factors_[pos], vectors, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.item_bias_[pos], bias, rtol=1e-5, atol=1e-6)
    # recommend, predict and similar_items reach them
    items, _ = model.recommend(1, k=5, items=cold_ids)
    assert len(items) == 5 and set(items.tolist()) <= set(cold_ids.tolist())
    assert np.isfinite(model.predict([1], [cold_ids[0]], unknown="error")).all()
    similar, _ = model.similar_items(cold_ids[0], k=3)
    assert len(similar) == 3


def test_new_user_from_items_features_or_both(liked, features):
    users = liked.user_map.ids
    frame = pd.DataFrame({"user": users, "group": np.where(users % 2 == 0, "even", "odd")})
    user_features = fk.Features.from_pandas(frame, id="user", kind="user")
    model = fk.HybridMF(factors=16, epochs=5, random_state=0, n_threads=1)
    model.fit(liked, user_features=user_features, item_features=features)
    row = user_features.transform(pd.DataFrame({"user": [-1], "group": ["even"]}))
    by_features, _ = model.recommend_new_user(features=row, k=5)
    by_items, _ = model.recommend_new_user([1, 50, 260], k=5)
    both, _ = model.recommend_new_user([1, 50, 260], k=5, features=row)
    assert len(by_features) == len(by_items) == len(both) == 5
    assert not {1, 50, 260} & set(by_items.tolist())
    # features alone: the user's vector is the sum of its feature embeddings
    group = list(model.feature_user_names_).index("group=even")
    np.testing.assert_allclose(
        model.fold_in(features=row).factors, model.feature_user_factors_[group], rtol=1e-6
    )
    with pytest.raises(DataError, match=r"pass items=.*features=\.\.\. or both"):
        model.fold_in()
    with pytest.raises(DataError, match=r"must have 2 values .*got shape \(3,\)"):
        model.fold_in(features=[1.0, 0.0, 0.0])


def test_model_without_features_keeps_fallback_and_says_so(liked, features):
    model = fk.HybridMF(factors=8, epochs=1, random_state=0, n_threads=1).fit(liked)
    assert model.n_cold_items_ == 0
    with pytest.raises(DataError, match="fitted without item features; pass item_features="):
        model.score_new_items(features)
    with pytest.raises(DataError, match=r"fitted without user features.*recommend_new_user"):
        model.fold_in(features=[1.0])
    assert len(model.recommend_new_user([1, 50], k=3)[0]) == 3


def test_bad_features_are_named(liked, features):
    model = fk.HybridMF(factors=8, epochs=1, random_state=0, n_threads=1)
    strings = fk.Features.from_pandas(
        pd.DataFrame({"movie": ["a", "b"], "g": ["x", "y"]}), id="movie"
    )
    with pytest.raises(DataError, match="item_features ids do not match the training item ids"):
        model.fit(liked, item_features=strings)
    other = fk.Features.from_pandas(pd.DataFrame({"movie": [-5, -6], "g": ["x", "y"]}), id="movie")
    with pytest.raises(DataError, match=r"none of the \d+ training item ids has a row"):
        model.fit(liked, item_features=other)
    as_user = fk.Features.from_pandas(
        pd.DataFrame({"movie": [1, 2], "g": ["x", "y"]}), id="movie", kind="user"
    )
    with pytest.raises(DataError, match="item_features holds user features"):
        model.fit(liked, item_features=as_user)
    with pytest.raises(DataError, match="item_features must be a factorkit Features; got csr"):
        model.fit(liked, item_features=sp.csr_matrix((3, 3)))
    model.fit(liked, item_features=features)
    fewer = fk.Features.from_pandas(
        pd.DataFrame({"movieId": [1], "genres": ["Comedy"]}), id="movieId"
    )
    with pytest.raises(DataError, match="vocabulary does not match the model's"):
        model.score_new_items(fewer)
    with pytest.raises(fk.exceptions.UnknownIdError, match="unknown item id -77"):
        model.recommend_new_user([-77], k=3)


def test_save_load_round_trip_and_state_checks(model_files, cold, tmp_path):
    model = cold[3]
    path = tmp_path / "hybrid.fk"
    model.save(path)
    loaded = fk.load(path)
    a = model.recommend([1, 2], k=5)
    b = loaded.recommend([1, 2], k=5)
    np.testing.assert_array_equal(a[0], b[0])
    assert loaded.feature_item_names_.tolist() == model.feature_item_names_.tolist()
    assert loaded.n_cold_items_ == model.n_cold_items_
    meta, arrays = model_files.read(path)
    assert "feature_item_names_" in meta["string_arrays"]
    # files saved before max_sampled defaulted to None hold the integer 10: the same model
    assert meta["params"]["max_sampled"] is None
    old = dict(meta, params=dict(meta["params"], max_sampled=10))
    older = fk.load(model_files.write(tmp_path / "old.fk", old, dict(arrays)))
    assert older.get_params()["max_sampled"] == 10 and older._setting("max_sampled") == 10
    np.testing.assert_array_equal(older.recommend([1, 2], k=5)[0], a[0])
    # a feature array whose rows disagree with its vocabulary is refused
    arrays["feature_item_factors_"] = arrays["feature_item_factors_"][:-1]
    bad = model_files.write(tmp_path / "bad.fk", meta, arrays)
    with pytest.raises(ModelFormatError, match=r"feature_item_factors_' shape: expected 1496 rows"):
        fk.load(bad)


def test_onboarding_items_work(cold):
    items = fk.onboarding_items(cold[3], n=10)
    assert len(set(items.tolist())) == 10


def test_content_regression_gives_cold_items_factors(cold, features):
    train, test, cold_ids, _ = cold
    als = fk.ImplicitALS(factors=32, epochs=5, random_state=0, n_threads=2).fit(train)
    reg = fk.content_regression(als, features, regularization=1.0)
    users = als.user_map_.ids
    scores = reg.score_new_items(_cold_rows(features, cold_ids), users=users)
    recall, ndcg = bench.cold_metrics(scores, users, cold_ids, test)
    knn = bench.cold_metrics(
        bench.feature_knn_scores(features, train, users, cold_ids), users, cold_ids, test
    )
    assert recall > 1.5 * knn[0] and ndcg > 1.5 * knn[1], (recall, ndcg, knn)
    with pytest.raises(fk.exceptions.NotFittedError, match="not fitted or has no item factors"):
        fk.content_regression(fk.ImplicitALS(), features)


def test_recommend_explore_is_seeded_and_mixes_the_documented_share(cold):
    train, model = cold[0], cold[3]
    top, _ = model.recommend([1, 2], k=10)
    a, _ = model.recommend([1, 2], k=10, explore=0.3, random_state=7)
    b, _ = model.recommend([1, 2], k=10, explore=0.3, random_state=7)
    np.testing.assert_array_equal(a, b)
    for row in range(2):
        kept = [x for x in a[row] if x in set(top[row, :7].tolist())]
        assert kept == top[row, :7].tolist()  # the top 7 in order
        assert len(set(a[row].tolist()) - set(top[row].tolist())) >= 2  # 3 explored slots
        seen = set(train.user_items([1, 2][row])[0].tolist())
        assert not seen & set(a[row].tolist())  # never a training item
    single, scores = model.recommend(1, k=4, explore=0.5, random_state=0)
    np.testing.assert_allclose(scores, model.predict(1, single), rtol=1e-5, atol=1e-5)
    assert len(single) == 4
    message = r"recommend: explore must be a number in \[0, 1\]; got 1.5"
    with pytest.raises(fk.exceptions.InvalidParameterError, match=message):
        model.recommend(1, explore=1.5)


def test_users_with_features_but_no_interactions_join_the_model(liked):
    users = np.r_[liked.user_map.ids, [99999]]
    frame = pd.DataFrame({"user": users, "group": np.where(users % 2 == 0, "even", "odd")})
    user_features = fk.Features.from_pandas(frame, id="user", kind="user")
    model = fk.HybridMF(factors=8, epochs=2, random_state=0, n_threads=1)
    model.fit(liked, user_features=user_features)
    assert len(model.user_map_) == liked.n_users + 1
    assert len(model.seen_indptr_) == len(model.user_map_) + 1
    items, _ = model.recommend(99999, k=3)
    assert len(items) == 3
    group = list(model.feature_user_names_).index("group=odd")
    np.testing.assert_allclose(
        model.user_factors_[-1], model.feature_user_factors_[group], rtol=1e-6
    )


def test_early_stopping_keeps_the_best_epoch(liked, features):
    train, valid = fk.split.per_user(liked, test_size=0.2, random_state=0)
    model = fk.HybridMF(factors=8, epochs=60, early_stopping=2, random_state=0, n_threads=1)
    model.fit(train, item_features=features, validation=valid)
    history = model.history_
    assert "val_loss" in history and len(history) < 60
    best = history["val_loss"].idxmin()
    assert best == len(history) - 3  # stopped two epochs after the best
    # the effective vectors are rebuilt from the restored (best) id and feature parts
    items = model.item_id_factors_ + np.asarray(
        sp.csr_matrix(features.rows_for(model.item_map_.ids).toarray().astype(np.float32))
        @ model.feature_item_factors_
    )
    np.testing.assert_allclose(model.item_factors_, items, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "loss, epochs, learning_rate, regularization, max_sampled",
    [
        ("bpr", 100, 0.05, 0.01, 10),
        ("warp", 50, 0.01, 0.01, 10),
        ("softmax", 50, 0.01, 0.03, 30),
        ("squared", 20, 0.01, 0.02, 10),
        ("ials", 15, None, 20.0, 10),
    ],
)
def test_unset_training_settings_take_the_losses_defaults(loss, epochs, learning_rate,
                                                          regularization, max_sampled):  # fmt: skip
    # measured per loss on MovieLens small (docs/benchmarks.md, HybridMF): WARP at the
    # ranking default 0.05 overfits (warm recall@20 0.157 against 0.242), and so do
    # ratings at the ranking losses' settings (RMSE 0.896 against 0.825)
    ratings = [5.0, 4.0, 3.0, 4.0, 2.0, 5.0]
    data = fk.Interactions.from_arrays(
        [1, 1, 2, 2, 3, 3], [10, 11, 11, 12, 10, 12],
        values=ratings if loss == "squared" else None,
    )  # fmt: skip
    model = fk.HybridMF(factors=4, loss=loss, random_state=0, n_threads=1).fit(data)
    assert model.get_params()["epochs"] is None
    assert len(model.history_) == epochs
    assert model._setting("learning_rate") == learning_rate
    assert model._setting("regularization") == regularization
    assert model.get_params()["max_sampled"] is None
    assert model._setting("max_sampled") == max_sampled
    explicit = fk.HybridMF(loss=loss, epochs=3, learning_rate=0.2, regularization=0.0)
    assert [explicit._setting(n) for n in ("epochs", "learning_rate", "regularization")] == [
        3, 0.2, 0.0,
    ]  # fmt: skip
