"""PureSVD and NonNegativeMF on the shipped MovieLens small data (accuracy as ranges)."""

import numpy as np
import pytest

import factorkit as fk
from factorkit.exceptions import DataError


@pytest.fixture(scope="module")
def split():
    data = fk.datasets.load_movielens_small()
    return fk.split.random(data, test_size=0.2, random_state=0)


def test_pure_svd_ranks_better_than_popularity(split):
    train, test = split
    model = fk.PureSVD(factors=50, random_state=0).fit(train)
    pop = fk.MostPopular().fit(train)
    ours = fk.evaluate(model, test, metrics=["ndcg@10"], train=train)["ndcg@10"]
    base = fk.evaluate(pop, test, metrics=["ndcg@10"], train=train)["ndcg@10"]
    assert ours > 1.2 * base
    # fold-in by projection reproduces a training user's factors exactly
    user = train.user_map.ids[0]
    items = train.item_map.ids[train.item_index[train.indptr[0] : train.indptr[1]]]
    ratings = train.values[train.indptr[0] : train.indptr[1]]
    folded = model.fold_in(items, ratings)
    np.testing.assert_allclose(folded.factors, model.user_factors_[0], rtol=1e-4, atol=1e-4)
    assert model.recommend(user, k=5)[0].shape == (5,)


def test_nonnegative_mf_rating_accuracy(split):
    train, test = split
    model = fk.NonNegativeMF(factors=15, epochs=30, random_state=0)
    model.fit(train)
    assert (model.user_factors_ >= 0).all() and (model.item_factors_ >= 0).all()
    rmse = fk.evaluate(model, test, metrics=["rmse"])["rmse"]
    # MovieLens small, this split: global mean ~1.04, BaselineOnly ~0.87
    assert 0.85 < rmse < 0.92
    _user, item = train.user_map.ids[0], train.item_map.ids[train.item_index[0]]
    folded = model.fold_in([item], [4.0])
    assert (folded.factors >= 0).all() and folded.factors.shape == (15,)


def test_nonnegative_mf_rejects_negative_ratings():
    data = fk.Interactions.from_arrays(["a", "b"], [1, 2], [-1.0, 2.0])
    with pytest.raises(DataError, match="ratings must be non-negative; the smallest is -1"):
        fk.NonNegativeMF(factors=1).fit(data)
