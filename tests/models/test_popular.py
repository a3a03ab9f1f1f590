"""MostPopular: counts, ties, min_value, new users, persistence, and the check suite."""

import numpy as np
import pytest

import factorkit as fk
from factorkit.models.popular import MostPopular
from factorkit.testing import estimator_checks

# The checkerboard checks test personalisation (recovering held-out ratings, or ranking
# each user's held-out item first); a non-personalised popularity ranking cannot pass
# them by design (on the checkerboard every item is equally popular). Every other check
# runs: fit/clone/params, not-fitted errors, invalid params, save/load, determinism,
# unknown ids.
SKIP = ("check_checkerboard", "check_checkerboard_ranking")


@pytest.mark.parametrize("check", estimator_checks(MostPopular(), skip=SKIP), ids=lambda c: c.name)
def test_estimator_checks(check):
    check()


@pytest.mark.parametrize(
    "check", estimator_checks(MostPopular(min_value=3.0), skip=SKIP), ids=lambda c: c.name
)
def test_estimator_checks_min_value(check):
    check()


DATA = fk.Interactions.from_arrays(
    ["a", "a", "b", "b", "c", "c", "d"],
    [10, 20, 20, 30, 20, 30, 40],
    [5.0, 1.0, 2.0, 5.0, 1.0, 4.0, 5.0],
)


def test_ranks_by_count_and_excludes_seen():
    model = MostPopular().fit(DATA)
    # counts: 20 -> 3, 30 -> 2, 10 -> 1, 40 -> 1 (tie: 10 comes first in the data)
    items, scores = model.recommend("d", k=4)
    assert items.tolist() == [20, 30, 10]  # 40 is d's own item
    assert scores.tolist() == [3.0, 2.0, 1.0]
    np.testing.assert_array_equal(model.predict(["a", "zz"], [20, 99]), [3.0, 0.0])


def test_min_value_counts_only_high_values():
    model = MostPopular(min_value=4.0).fit(DATA)
    # values >= 4: 10 (5.0), 30 (5.0, 4.0), 40 (5.0); 20 has none
    items, scores = model.recommend("a", k=3)
    assert items.tolist() == [30, 40]
    assert scores.tolist() == [2.0, 1.0]
    with pytest.raises(fk.exceptions.InvalidParameterError, match=r"'min_value' parameter"):
        MostPopular(min_value="4").fit(DATA)


def test_new_users_and_no_similarity():
    model = MostPopular().fit(DATA)
    items, _ = model.recommend_new_user([20], k=2)
    assert items.tolist() == [30, 10]
    with pytest.raises(fk.exceptions.UnknownIdError, match="unknown item id 99"):
        model.recommend_new_user([99])
    # the class simply lacks the methods (no raising property hides them)
    assert not hasattr(model, "similar_items") and not hasattr(model, "similar_users")
    assert "similar_items" not in dir(MostPopular) and "similar_users" not in dir(MostPopular)
    assert not fk.get_tags(model).can_find_similar and not fk.get_tags(model).has_factors
    with pytest.raises(AttributeError, match="'MostPopular' object has no attribute"):
        model.similar_items(20)


def test_partial_fit_recounts():
    model = MostPopular().fit(DATA)
    before = dict(zip(*model.recommend("d", k=3), strict=True))
    new = fk.Interactions.from_arrays(["e", "e", "f"], [10, 50, 10])
    model.partial_fit(new)
    items, _ = model.recommend("e", k=5)
    assert 10 not in items.tolist() and 50 not in items.tolist()  # e's own items
    after = dict(zip(*model.recommend("d", k=5), strict=True))
    assert after[10] == before[10] + 2 and after[50] == 1.0


def test_save_load_round_trip(tmp_path):
    model = MostPopular(min_value=2.0).fit(DATA)
    model.save(tmp_path / "pop.fk")
    loaded = fk.load(tmp_path / "pop.fk")
    assert isinstance(loaded, MostPopular) and loaded.min_value == 2.0
    np.testing.assert_array_equal(
        loaded.recommend(["a", "b"], k=2)[0], model.recommend(["a", "b"], k=2)[0]
    )
