"""What the fits of ImplicitALS, ALS and BiasedMF allocate beyond their factors, and that
they leave nothing behind on the training data (issue 11 item 5).

tracemalloc sees NumPy's allocations, not scratch inside numba kernels; the bounds sit
between what the fits allocate now and what they allocated before the cuts (on
MovieLens small, in bytes per rating: ImplicitALS 14.5 against 27.8, ALS 10.5 against
19.9, BiasedMF 21 against 45 at 32 factors).
"""

import tracemalloc

import numpy as np
import pytest

import factorkit as fk


@pytest.fixture(scope="module")
def data():
    return fk.datasets.load_movielens_small()


def _fit_peak(model, data):
    """Peak bytes allocated by ``model.fit(data)`` beyond the fitted factors."""
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        model.fit(data)
        peak = tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()
    return peak - model.user_factors_.nbytes - model.item_factors_.nbytes


@pytest.mark.parametrize(
    "make, bound",
    [
        # confidences (4) and the item side's users and confidences (8)
        (lambda: fk.ImplicitALS(factors=8, epochs=1, random_state=0), 18),
        # the item side's users and ratings (8)
        (lambda: fk.ALS(factors=8, epochs=1, random_state=0), 14),
        # the block layout (12), the model's seen items and values (8)
        (lambda: fk.BiasedMF(factors=32, epochs=1, random_state=0), 30),
    ],
)
def test_fit_allocates_little_beyond_its_factors(data, make, bound):
    make().fit(data)  # compiled and warm
    assert _fit_peak(make(), data) / len(data) < bound
    assert "_csc" not in data.__dict__  # no CSC cached on the caller's data


def test_fits_on_data_with_a_cached_csc_are_the_same(data):
    """ALS reads the data's own CSC when it is cached; the result does not change."""
    plain = fk.ALS(factors=8, epochs=2, random_state=0).fit(data)
    fresh = fk.Interactions.from_arrays(
        data.user_map.to_ids(data.user_index), data.item_map.to_ids(data.item_index),
        data.values,
    )  # fmt: skip
    fresh.to_csc()
    cached = fk.ALS(factors=8, epochs=2, random_state=0).fit(fresh)
    np.testing.assert_array_equal(plain.user_factors_, cached.user_factors_)
    np.testing.assert_array_equal(plain.item_factors_, cached.item_factors_)


def test_biased_mf_seen_values_follow_its_positions(data):
    """BiasedMF relabels users and items; each user's seen values are still theirs."""
    model = fk.BiasedMF(factors=8, epochs=1, random_state=0).fit(data)
    for pos in (0, 7, len(model.user_map_) - 1):
        user = model.user_map_.ids[pos]
        lo, hi = model.seen_indptr_[pos], model.seen_indptr_[pos + 1]
        items = model.item_map_.ids[model.seen_indices_[lo:hi]]
        got = dict(zip(items, model.seen_values_[lo:hi], strict=True))
        assert got == dict(zip(*data.user_items(user), strict=True))
