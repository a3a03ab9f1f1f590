"""The estimator contract: capability mixins and tags, the scoring and state protocols,
unknown-id warnings and single-thread BLAS on single-row paths."""

import warnings

import numpy as np
import pytest
import threadpoolctl

import factorkit as fk
from factorkit.exceptions import DataWarning, NotFittedError
from factorkit.models import FoldInMixin, PartialFitMixin, RecommendMixin, SimilarMixin
from factorkit.testing import CAPABILITY_METHODS, check_capabilities

RECOMMENDERS = [cls for _, cls in fk.all_estimators("recommender")]


@pytest.fixture(scope="module")
def small():
    data = fk.datasets.load_movielens_small()
    return data.select_users(data.user_map.ids[:150])


@pytest.mark.parametrize("cls", RECOMMENDERS, ids=lambda c: c.__name__)
def test_tags_are_declared_by_the_mixins(cls):
    tags = fk.get_tags(cls)
    assert tags.can_recommend == issubclass(cls, RecommendMixin)
    assert tags.can_find_similar == issubclass(cls, SimilarMixin)
    assert tags.can_find_similar or not tags.has_factors  # factors imply similarity
    assert tags.can_fold_in == issubclass(cls, FoldInMixin)
    assert tags.can_partial_fit == issubclass(cls, PartialFitMixin)
    check_capabilities(cls())


def test_models_without_factors_lack_similarity():
    for model in (fk.BaselineOnly(), fk.MostPopular()):
        assert not hasattr(model, "similar_items") and not hasattr(model, "similar_users")
        assert not fk.get_tags(model).can_find_similar
    assert hasattr(fk.ALS(), "similar_items") and fk.get_tags(fk.ALS).can_find_similar


def test_no_capability_flags_on_the_base():
    assert not any(
        tag in fk.models.FactorModel.__dict__.get("_tags", {}) for tag in CAPABILITY_METHODS
    )


def test_scoring_protocol_matches_recommend(small):
    model = fk.BiasedMF(factors=8, epochs=3, random_state=0).fit(small)
    users = np.arange(10)
    blocks = list(model.score_blocks(users, block_rows=4))
    assert [(a, b) for a, b, _ in blocks] == [(0, 4), (4, 8), (8, 10)]
    scores = np.vstack([s for *_, s in blocks])
    assert scores.shape == (10, len(model.item_map_)) and scores.dtype == np.float32
    top, _ = model.top_items(users, 5)
    np.testing.assert_array_equal(top[:, 0], scores.argmax(axis=1))
    # excluding seen items through the CSR argument gives recommend's list
    u0 = model.user_map_.ids[0]
    ptr, idx = model.seen_indptr_, model.seen_indices_
    seen = (np.array([0, ptr[1] - ptr[0]]), idx[ptr[0] : ptr[1]])
    top0, _ = model.top_items([0], 5, exclude=seen)
    recs, _ = model.recommend(u0, k=5)
    np.testing.assert_array_equal(model.item_map_.ids[top0[0]], recs)
    with pytest.raises(NotFittedError, match="before top_items"):
        fk.ALS().top_items([0], 5)


def test_state_protocol_round_trip(small):
    model = fk.SVDpp(factors=4, epochs=2, random_state=0).fit(small)
    state = model.get_state()
    assert {"user_ids", "item_ids", "seen_values_", "implicit_factors_", "history_"} <= set(state)
    assert all(
        isinstance(v, (np.ndarray, float, int, list, str, type(None))) for v in state.values()
    )
    twin = fk.SVDpp(factors=4, epochs=2, random_state=0).set_state(state)
    users, items = small.user_map.ids[:5], small.item_map.ids[:5]
    np.testing.assert_array_equal(twin.predict(users, items), model.predict(users, items))
    with pytest.raises(NotFittedError, match="before get_state"):
        fk.SVDpp().get_state()
    assert "implicit_factors_" in fk.SVDpp.state_names()["arrays"]
    assert set(state) - {"user_ids", "item_ids", "history_"} == {
        *fk.SVDpp.state_names()["arrays"],
        *fk.SVDpp.state_names()["scalars"],
    } - ({"item_titles_"} if model.item_titles_ is None else set()) - {
        "also_seen_indptr_",  # only when the data had also_seen pairs (to_implicit)
        "also_seen_indices_",
    }
    with pytest.raises(
        fk.exceptions.InvalidParameterError, match=r"unknown state key\(s\) \['bogus_'\]"
    ):
        fk.SVDpp().set_state({"bogus_": 1})


def test_predict_warns_with_the_count_of_unknown_pairs(small):
    model = fk.BaselineOnly(epochs=2).fit(small)
    user, item = model.user_map_.ids[0], model.item_map_.ids[0]
    ghost = 10**9  # an id of the right type that the model has never seen
    with pytest.warns(DataWarning, match=r"2 of 3 \(user, item\) pairs have a user or item"):
        pred = model.predict([user, ghost, user], [item, item, ghost])
    assert np.isfinite(pred).all()
    with pytest.warns(DataWarning) as record:  # nothing unknown, or "nan": no warning
        model.predict([user], [item])
        assert np.isnan(model.predict([ghost], [item], unknown="nan")).all()
        warnings.warn("sentinel", DataWarning, stacklevel=1)
    assert [str(w.message) for w in record] == ["sentinel"]
    with pytest.raises(fk.exceptions.UnknownIdError):
        model.predict([ghost], [item], unknown="error")


def test_single_row_paths_use_one_blas_thread(small, monkeypatch):
    """fold_in and recommend_new_user solve with BLAS limited to one thread."""
    model = fk.ALS(factors=8, epochs=2, random_state=0).fit(small)
    seen = []
    solve = np.linalg.solve

    def spy(a, b):
        seen.extend(
            info["num_threads"]
            for info in threadpoolctl.threadpool_info()
            if info["user_api"] == "blas"
        )
        return solve(a, b)

    monkeypatch.setattr(np.linalg, "solve", spy)
    items = small.item_map.ids[:5]
    model.fold_in(items, ratings=[4.0, 3.0, 5.0, 2.0, 4.5])
    model.recommend_new_user(items, ratings=[4.0, 3.0, 5.0, 2.0, 4.5], k=3)
    assert seen and set(seen) == {1}


def test_fold_in_refuses_ratings_beyond_the_factors_precision(small):
    """A rating that overflows float32 would turn the solve into NaN and the
    recommendations into nothing: an error naming the rating instead."""
    model = fk.ALS(factors=8, epochs=2, random_state=0).fit(small)
    items = small.item_map.ids[:2]
    msg = (
        "ALS.fold_in: ratings must be within float32's range (|r| <= 3.4e38) to be solved "
        "against float32 factors; ratings[1] is 1e+308. Rescale them as the training data was."
    )
    with pytest.raises(fk.exceptions.DataError) as info:
        model.recommend_new_user(items, ratings=[4.0, 1e308], k=3)
    assert str(info.value) == msg


def test_implicit_fold_in_refuses_an_infinite_confidence(small):
    model = fk.ImplicitALS(factors=8, epochs=2, alpha=40.0, random_state=0)
    model.fit(small.to_implicit(min_value=4.0))
    items = model.item_map_.ids[:2]
    with pytest.raises(fk.exceptions.DataError, match=r"ratings\[0\] = 1e\+38 gives an infinite"):
        model.fold_in(items, ratings=[1e38, 1.0])
