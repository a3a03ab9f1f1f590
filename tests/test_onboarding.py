import numpy as np
import pytest

import factorkit as fk
from factorkit.exceptions import InvalidParameterError, NotFittedError
from factorkit.onboarding import item_popularity


@pytest.fixture(scope="module")
def fitted():
    data = fk.datasets.load_movielens_small()
    return fk.ImplicitALS(factors=16, epochs=3, random_state=0).fit(data)


def _logdet(model, ids):
    q = model.item_factors_[model.item_map_.to_index(ids)].astype(np.float64)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return np.linalg.slogdet(np.eye(q.shape[1]) + q.T @ q)[1]


def test_popular_items_spread_over_the_factor_space(fitted):
    items = fk.onboarding_items(fitted, n=20)
    assert len(items) == 20 and len(set(items.tolist())) == 20
    popularity = item_popularity(fitted)
    top = np.argsort(-popularity, kind="stable")
    # every pick is among the 500 most popular items (people know them) ...
    assert set(fitted.item_map_.to_index(items).tolist()) <= set(top[:500].tolist())
    # ... and together they span the factor space better than the 20 most popular do
    most_popular = fitted.item_map_.ids[top[:20]]
    assert _logdet(fitted, items) > _logdet(fitted, most_popular) + 1.0
    # deterministic, and a prefix property: the first picks do not depend on n
    assert fk.onboarding_items(fitted, n=5).tolist() == items[:5].tolist()


def test_models_without_factors_get_the_most_popular(fitted):
    data = fk.datasets.load_movielens_small()
    model = fk.MostPopular().fit(data)
    pop = item_popularity(model)
    expected = model.item_map_.ids[np.argsort(-pop, kind="stable")[:5]]
    assert fk.onboarding_items(model, n=5).tolist() == expected.tolist()


def test_bad_arguments_are_named(fitted):
    message = r"onboarding_items: n must be an int >= 1; got 0"
    with pytest.raises(InvalidParameterError, match=message):
        fk.onboarding_items(fitted, n=0)
    with pytest.raises(NotFittedError, match="not fitted yet; call fit"):
        fk.onboarding_items(fk.ImplicitALS(), n=3)
