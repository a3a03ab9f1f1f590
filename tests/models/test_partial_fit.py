"""One partial_fit(new_data) contract: new users and items are added, and the users and
items new_data touches are updated against all their interactions; other rows stay."""

import numpy as np
import pytest

import factorkit as fk
from factorkit.exceptions import DataError, InvalidParameterError


@pytest.fixture(scope="module")
def movielens():
    return fk.datasets.load_movielens_small()


@pytest.fixture(scope="module")
def halves(movielens):
    users = movielens.user_map.ids
    old_users, new_users = users[:500], users[500:]
    return movielens.select_users(old_users), movielens.select_users(new_users)


@pytest.mark.parametrize(
    "make",
    [
        lambda: fk.BaselineOnly(),
        lambda: fk.SVDpp(random_state=0, epochs=10),
    ],
    ids=["BaselineOnly", "SVDpp"],
)
def test_partial_fit_adds_users_and_items_keeping_untouched_rows(halves, make):
    old, new = halves
    train_new, test_new = fk.split.per_user(new, test_size=0.2, random_state=0)
    model = make().fit(old)
    known_users = old.user_map.ids[old.user_counts > 0][:20]
    touched = set(train_new.item_map.ids[train_new.item_counts > 0].tolist())
    untouched = np.array([i for i in model.item_map_.ids if i not in touched][:50])
    touched_known = np.array([i for i in model.item_map_.ids if i in touched][:50])
    pairs = (np.repeat(known_users, 50), np.tile(untouched, 20))
    touched_pairs = (np.repeat(known_users, 50), np.tile(touched_known, 20))
    before, before_touched = model.predict(*pairs), model.predict(*touched_pairs)
    state = model.get_state()
    n_users_before, n_items_before = len(model.user_map_), len(model.item_map_)

    model.partial_fit(train_new)

    # rows new_data does not touch keep their parameters exactly
    u_keep = np.ones(n_users_before, bool)  # new_data holds new users only
    touched_pos = model.item_map_.lookup(list(touched))
    i_keep = np.ones(n_items_before, bool)
    i_keep[touched_pos[touched_pos < n_items_before]] = False
    for name, keep in (
        ("user_bias_", u_keep),
        ("user_factors_", u_keep),
        ("item_bias_", i_keep),
        ("item_factors_", i_keep),
    ):
        np.testing.assert_array_equal(getattr(model, name)[: len(keep)][keep], state[name][keep])
    if "implicit_factors_" not in state:  # SVD++'s user vectors sum touched items' y_j
        np.testing.assert_array_equal(model.predict(*pairs), before)
    assert not np.array_equal(model.predict(*touched_pairs), before_touched)  # re-solved
    assert len(model.item_map_) >= n_items_before
    new_user = train_new.user_map.ids[train_new.user_counts > 0][0]
    seen, _ = train_new.user_items(new_user)
    recs, _ = model.recommend(new_user, k=10)
    assert not set(recs) & set(seen.tolist())
    # the new users are predicted better than by the global fallback
    fresh = make().fit(old)
    users = test_new.user_map.ids[test_new.user_index]
    items = test_new.item_map.ids[test_new.item_index]
    with pytest.warns(fk.exceptions.DataWarning, match="unknown to the model"):  # new items
        partial = model.predict(users, items)
    err_partial = np.sqrt(np.mean((partial - test_new.values) ** 2))
    with pytest.warns(fk.exceptions.DataWarning, match="unknown to the model"):
        fallback = fresh.predict(users, items)
    err_fallback = np.sqrt(np.mean((fallback - test_new.values) ** 2))
    assert err_partial < err_fallback - 0.02


@pytest.mark.parametrize(
    "make",
    [
        lambda: fk.BaselineOnly(),
        lambda: fk.ALS(factors=20, random_state=0),
        lambda: fk.BiasedMF(factors=20, epochs=20, random_state=0),
        lambda: fk.SVDpp(factors=20, epochs=10, random_state=0),
    ],
    ids=["BaselineOnly", "ALS", "BiasedMF", "SVDpp"],
)
def test_known_users_low_ratings_lower_their_predictions(movielens, make):
    """Two new 1-star ratings from a known user lower that user's predictions for the
    rated items and for items like them (before, they changed nothing)."""
    model = make().fit(movielens)
    user = movielens.user_map.ids[10]
    rated, _ = movielens.user_items(user)
    popular = movielens.item_map.ids[np.argsort(-movielens.item_counts, kind="stable")]
    targets = [i for i in popular if i not in set(rated.tolist())][:2]
    if hasattr(model, "similar_items"):
        near, _ = model.similar_items(targets, k=20)
        others = np.setdiff1d(near.ravel(), np.concatenate([targets, rated]))
    else:  # biases only: every item moves with the user's bias
        others = np.setdiff1d(popular[:100], np.concatenate([targets, rated]))
    before_t, before_o = model.predict(user, targets), model.predict(user, others)
    other_user = movielens.user_map.ids[20]
    before_other_user = model.predict(other_user, others)
    factors_before = model.user_factors_.copy()

    model.partial_fit(fk.Interactions.from_arrays([user, user], targets, [1.0, 1.0]))

    after_t, after_o = model.predict(user, targets), model.predict(user, others)
    assert (after_t < before_t - 0.05).all(), (before_t, after_t)
    # measured drops: BaselineOnly 0.10 (targets) / 0.10 (others), ALS 0.56 / 0.35,
    # BiasedMF 0.40 / 0.17, SVDpp 0.34 / 0.16
    assert after_o.mean() < before_o.mean() - 0.05, (before_o.mean(), after_o.mean())
    assert set(targets) <= _seen_items(model, user)
    # a user who rated neither item is untouched, and so is every other user row
    untouched = np.ones(len(factors_before), bool)
    untouched[model.user_map_.to_index(user)] = False
    np.testing.assert_array_equal(model.user_factors_[untouched], factors_before[untouched])
    changed = model.predict(other_user, others) - before_other_user
    assert np.abs(changed).max() < 0.05  # only via the two re-solved items, if at all


def _seen_items(model, user):
    u = int(model.user_map_.to_index(user)[0])
    rows = model.seen_indices_[model.seen_indptr_[u] : model.seen_indptr_[u + 1]]
    return set(model.item_map_.ids[rows].tolist())


@pytest.fixture(scope="module")
def positives(movielens):
    liked = movielens.take(movielens.values >= 4.0)
    return fk.Interactions.from_arrays(
        liked.user_map.to_ids(liked.user_index), liked.item_map.to_ids(liked.item_index)
    )


@pytest.mark.parametrize(
    "make",
    [
        lambda: fk.ImplicitALS(factors=16, epochs=5, random_state=0),
        lambda: fk.BPR(factors=16, epochs=20, random_state=0, n_threads=1),
    ],
    ids=["ImplicitALS", "BPR"],
)
def test_known_users_new_interactions_move_them_and_leave_recommendations(positives, make):
    model = make().fit(positives)
    user = positives.user_map.ids[3]
    recs, _ = model.recommend(user, k=5)
    pos = int(model.user_map_.to_index(user)[0])
    before = model.user_factors_.copy()

    model.partial_fit(fk.Interactions.from_arrays([user] * 3, recs[:3]))

    again, _ = model.recommend(user, k=20)
    assert not set(recs[:3].tolist()) & set(again.tolist())  # now seen
    assert not np.array_equal(model.user_factors_[pos], before[pos])  # re-solved / trained
    others = np.ones(len(before), bool)
    others[pos] = False
    np.testing.assert_array_equal(model.user_factors_[others], before[others])


@pytest.mark.parametrize("cls", [fk.BaselineOnly, fk.ImplicitALS, fk.BPR, fk.MostPopular])
def test_partial_fit_on_an_unfitted_model_fits(halves, cls):
    old, _ = halves
    params = {"epochs": 2} if "epochs" in cls().get_params() else {}
    model = cls(**params).partial_fit(old)
    assert len(model.user_map_) == old.compact().n_users


def test_partial_fit_errors(halves):
    old, _ = halves
    model = fk.BaselineOnly().fit(old)
    with pytest.raises(DataError, match="new_data must be a factorkit Interactions; got list"):
        model.partial_fit([1, 2])
    with pytest.raises(
        InvalidParameterError,
        match=r"BaselineOnly.partial_fit: epochs must be None or an int >= 1; got 0",
    ):
        model.partial_fit(old, epochs=0)
    empty = old.take(np.zeros(len(old), bool))
    with pytest.raises(DataError, match="new_data holds no interactions"):
        model.partial_fit(empty)
