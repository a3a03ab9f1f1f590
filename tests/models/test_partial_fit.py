import numpy as np
import pytest

import factorkit as fk
from factorkit.exceptions import DataError, InvalidParameterError


@pytest.fixture(scope="module")
def halves():
    data = fk.datasets.load_movielens_small()
    users = data.user_map.ids
    old_users, new_users = users[:500], users[500:]
    return data.select_users(old_users), data.select_users(new_users)


@pytest.mark.parametrize(
    "make",
    [
        lambda: fk.BaselineOnly(),
        lambda: fk.SVDpp(random_state=0, epochs=10),
    ],
    ids=["BaselineOnly", "SVDpp"],
)
def test_partial_fit_adds_users_and_items_keeping_old_ones(halves, make):
    old, new = halves
    train_new, test_new = fk.split.per_user(new, test_size=0.2, random_state=0)
    model = make().fit(old)
    known_users = old.user_map.ids[old.user_counts > 0][:20]
    known_items = model.item_map_.ids[:50]
    before = model.predict(np.repeat(known_users, 50), np.tile(known_items, 20))
    n_items_before = len(model.item_map_)

    model.partial_fit(train_new)

    after = model.predict(np.repeat(known_users, 50), np.tile(known_items, 20))
    np.testing.assert_array_equal(before, after)
    assert len(model.item_map_) >= n_items_before
    new_user = train_new.user_map.ids[train_new.user_counts > 0][0]
    seen, _ = train_new.user_items(new_user)
    recs, _ = model.recommend(new_user, k=10)
    assert not set(recs) & set(seen.tolist())
    # the new users are predicted better than by the global fallback
    fresh = make().fit(old)
    users = test_new.user_map.ids[test_new.user_index]
    items = test_new.item_map.ids[test_new.item_index]
    err_partial = np.sqrt(np.mean((model.predict(users, items) - test_new.values) ** 2))
    err_fallback = np.sqrt(np.mean((fresh.predict(users, items) - test_new.values) ** 2))
    assert err_partial < err_fallback - 0.02


def test_partial_fit_errors(halves):
    old, _ = halves
    model = fk.BaselineOnly().fit(old)
    with pytest.raises(DataError, match="new_data must be a factorkit Interactions; got list"):
        model.partial_fit([1, 2])
    with pytest.raises(InvalidParameterError, match="epochs must be an int >= 1; got 0"):
        model.partial_fit(old, epochs=0)
