import dataclasses

import numpy as np
import pytest

from factorkit import Interactions
from factorkit.data import synthetic
from factorkit.data.synthetic import SyntheticTruth, make_implicit, make_ratings
from factorkit.exceptions import InvalidParameterError

# 3000 x 1600 = 4.8M cells: above the exact small-problem limit, so the
# draw-with-replacement path runs; 200 x 100 stays on the exact path.
SPARSE = {"n_users": 3000, "n_items": 1600}
assert SPARSE["n_users"] * SPARSE["n_items"] > synthetic._DENSE_MAX_CELLS


def keys(data):
    return data.user_index.astype(np.int64) * data.n_items + data.item_index


def top_share(counts, frac=0.1):
    c = np.sort(counts)[::-1]
    return c[: max(1, int(len(c) * frac))].sum() / c.sum()


def auc(pos, neg):
    return float((pos > neg).mean() + 0.5 * (pos == neg).mean())


# ---------------------------------------------------------------------- make_ratings
@pytest.mark.parametrize("shape", [{"n_users": 200, "n_items": 100}, SPARSE])
def test_ratings_shape_unique_canonical_and_covered(shape):
    n = 6000
    data, truth = make_ratings(n_ratings=n, random_state=0, **shape)
    assert isinstance(data, Interactions) and isinstance(truth, SyntheticTruth)
    assert data.shape == (shape["n_users"], shape["n_items"]) and len(data) == n
    assert not data.implicit
    assert data.user_ids.ids.tolist() == list(range(shape["n_users"]))
    assert data.item_ids.ids.tolist() == list(range(shape["n_items"]))
    assert (np.diff(keys(data)) > 0).all()  # unique pairs, canonical order
    assert (data.user_counts > 0).all() and (data.item_counts > 0).all()
    assert data.values.dtype == np.float32
    assert truth.user_factors.shape == (shape["n_users"], 10)
    assert truth.item_factors.shape == (shape["n_items"], 10)


def test_ratings_deterministic_under_seed_and_varying_across_seeds():
    a, ta = make_ratings(n_users=100, n_items=80, n_ratings=1500, random_state=3)
    b, tb = make_ratings(n_users=100, n_items=80, n_ratings=1500, random_state=3)
    c, _ = make_ratings(n_users=100, n_items=80, n_ratings=1500, random_state=4)
    assert np.array_equal(keys(a), keys(b))
    assert np.array_equal(a.values, b.values)
    assert np.array_equal(a.timestamps, b.timestamps)
    assert np.array_equal(ta.user_factors, tb.user_factors)
    assert not np.array_equal(keys(a), keys(c))
    gen = np.random.default_rng(3)
    d, _ = make_ratings(n_users=100, n_items=80, n_ratings=1500, random_state=gen)
    assert len(d) == 1500


def test_sparse_path_is_deterministic():
    a, _ = make_ratings(n_ratings=8000, random_state=1, **SPARSE)
    b, _ = make_ratings(n_ratings=8000, random_state=1, **SPARSE)
    assert np.array_equal(keys(a), keys(b)) and np.array_equal(a.values, b.values)


def test_scale_and_step_respected():
    data, _ = make_ratings(n_users=100, n_items=60, n_ratings=2000, random_state=0)
    steps = (data.values - 1.0) / 0.5
    assert data.values.min() >= 1.0 and data.values.max() <= 5.0
    assert np.allclose(steps, np.round(steps))
    assert len(np.unique(data.values)) == 9

    data, truth = make_ratings(
        n_users=100, n_items=60, n_ratings=2000, rating_scale=(0, 10), rating_step=1,
        random_state=0,
    )  # fmt: skip
    assert set(np.unique(data.values).tolist()) <= set(range(11))
    assert truth.rating_scale == (0.0, 10.0) and truth.rating_step == 1.0

    data, truth = make_ratings(
        n_users=100, n_items=60, n_ratings=2000, rating_step=None, random_state=0
    )
    assert len(np.unique(data.values)) > 1000
    assert data.values.min() >= 1.0 and data.values.max() <= 5.0
    assert truth.rating_step is None


def test_noiseless_continuous_values_equal_clipped_truth():
    for shape in ({"n_users": 120, "n_items": 90}, SPARSE):
        data, truth = make_ratings(
            n_ratings=3000, noise=0.0, rating_step=None, random_state=2, **shape
        )
        expected = truth.score(data.user_index, data.item_index, clip=True)
        np.testing.assert_allclose(data.values, expected, rtol=1e-6, atol=1e-6)
        assert truth.rmse(data) < 1e-6


def test_noise_floor_and_signal_are_sensible():
    data, truth = make_ratings(n_ratings=20000, rating_step=None, random_state=0)
    # clipping only shrinks the residuals, so the floor is a little under `noise`
    assert 0.42 < truth.rmse(data) <= 0.5
    signal = truth.score(data.user_index, data.item_index)
    assert 3.2 < signal.mean() < 3.8
    assert 0.6 < signal.std() < 1.2  # comparable to MovieLens on 1-5
    assert 3.2 < data.values.mean() < 3.8
    stepped, truth = make_ratings(n_ratings=20000, random_state=0)
    assert 0.45 < truth.rmse(stepped) < 0.56  # noise plus rounding to 0.5


def test_popularity_and_activity_skew_visible():
    flat, _ = make_ratings(popularity_skew=0.0, random_state=0)
    skewed, _ = make_ratings(popularity_skew=1.0, random_state=0)
    steep, _ = make_ratings(popularity_skew=1.0, activity_skew=1.0, random_state=0)
    assert top_share(flat.item_counts) < 0.16  # uniform: ~10%
    assert top_share(skewed.item_counts) > 0.35
    assert top_share(flat.user_counts) < 0.16
    assert top_share(steep.user_counts) > top_share(skewed.user_counts) > 0.15
    # no user expects more than half the items, no item more than half the users
    assert steep.user_counts.max() <= 0.6 * steep.n_items
    assert steep.item_counts.max() <= 0.6 * steep.n_users


def test_extreme_skew_on_sparse_path_still_exact():
    data, _ = make_ratings(
        n_ratings=40000, popularity_skew=2.0, activity_skew=2.0, random_state=0, **SPARSE
    )
    assert len(data) == 40000 and (np.diff(keys(data)) > 0).all()
    assert (data.user_counts > 0).all() and (data.item_counts > 0).all()


@pytest.mark.parametrize(
    ("n_users", "n_items", "n", "covered"),
    [
        (30, 20, 600, True),  # every cell
        (30, 20, 590, True),  # nearly every cell
        (100, 50, 120, True),  # max(n_users, n_items) <= n < n_users + n_items
        (100, 50, 60, False),  # fewer ratings than users: some users are empty
        (1, 1, 1, True),
    ],
)
def test_density_edge_cases(n_users, n_items, n, covered):
    data, _ = make_ratings(n_users=n_users, n_items=n_items, n_ratings=n, random_state=0)
    assert len(data) == n and (np.diff(keys(data)) > 0).all()
    assert covered == bool((data.user_counts > 0).all() and (data.item_counts > 0).all())


def test_timestamps_option():
    data, _ = make_ratings(n_users=50, n_items=40, n_ratings=500, random_state=0)
    assert data.timestamps.dtype == np.int64
    assert data.timestamps.min() >= synthetic._T0
    assert data.timestamps.max() < synthetic._T0 + synthetic._SPAN
    data, _ = make_ratings(n_users=50, n_items=40, n_ratings=500, random_state=0, timestamps=False)
    assert data.timestamps is None


# ---------------------------------------------------------------------- make_implicit
@pytest.mark.parametrize("shape", [{"n_users": 400, "n_items": 300}, SPARSE])
def test_implicit_basics(shape):
    data, truth = make_implicit(n_interactions=12000, random_state=0, **shape)
    assert data.implicit and truth.implicit and len(data) == 12000
    assert (data.values == 1.0).all()
    assert (np.diff(keys(data)) > 0).all()
    assert (data.user_counts > 0).all() and (data.item_counts > 0).all()
    np.testing.assert_allclose(truth.user_factors.sum(axis=1), 1.0)
    # each topic's item distribution exp(item_bias) * item_factors[:, k] sums to 1
    np.testing.assert_allclose(np.exp(truth.item_bias) @ truth.item_factors, 1.0)
    assert truth.rating_scale is None and truth.global_mean == 0.0


@pytest.mark.parametrize("shape", [{"n_users": 400, "n_items": 300}, SPARSE])
def test_implicit_positives_are_predictable(shape):
    data, truth = make_implicit(n_interactions=12000, random_state=1, **shape)
    rng = np.random.default_rng(0)
    u, i = data.user_index, data.item_index
    neg = rng.integers(0, data.n_items, len(u))
    unseen = ~np.isin(u.astype(np.int64) * data.n_items + neg, keys(data))
    u, i, neg = u[unseen], i[unseen], neg[unseen]
    truth_auc = auc(truth.score(u, i), truth.score(u, neg))
    pop_auc = auc(truth.item_bias[i], truth.item_bias[neg])

    def taste(items):
        return np.einsum("ij,ij->i", truth.user_factors[u], truth.item_factors[items])

    assert truth_auc > pop_auc + 0.03  # taste adds to popularity
    assert auc(taste(i), taste(neg)) > 0.65  # and predicts on its own


def test_implicit_counts_and_determinism():
    a, ta = make_implicit(n_users=300, n_items=200, n_interactions=6000, counts=True,
                          random_state=5)  # fmt: skip
    b, _ = make_implicit(n_users=300, n_items=200, n_interactions=6000, counts=True,
                         random_state=5)  # fmt: skip
    assert np.array_equal(keys(a), keys(b)) and np.array_equal(a.values, b.values)
    assert a.values.min() >= 1.0 and np.allclose(a.values, np.round(a.values))
    taste = np.einsum("ij,ij->i", ta.user_factors[a.user_index], ta.item_factors[a.item_index])
    liked = taste > np.median(taste)
    assert a.values[liked].mean() > a.values[~liked].mean() + 0.5


def test_implicit_noise_one_is_popularity_only():
    data, truth = make_implicit(n_users=200, n_items=100, n_interactions=3000, noise=1.0,
                                random_state=0)  # fmt: skip
    s = truth.score(data.user_index, data.item_index)
    np.testing.assert_allclose(
        s, truth.user_bias[data.user_index] + truth.item_bias[data.item_index]
    )


# ---------------------------------------------------------------------- the truth object
def test_truth_is_frozen_and_read_only():
    _, truth = make_ratings(n_users=20, n_items=10, n_ratings=100, random_state=0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        truth.noise = 1.0
    with pytest.raises(ValueError, match="read-only"):
        truth.user_factors[0, 0] = 1.0
    assert truth.rank == 10 and truth.n_users == 20 and truth.n_items == 10


def test_truth_score_formula():
    _, truth = make_ratings(n_users=20, n_items=10, n_ratings=100, rank=3, random_state=0)
    u, i = np.array([0, 5, 19]), np.array([9, 0, 3])
    expected = (
        truth.global_mean + truth.user_bias[u] + truth.item_bias[i]
        + (truth.user_factors[u] * truth.item_factors[i]).sum(1)
    )  # fmt: skip
    np.testing.assert_allclose(truth.score(u, i), expected)
    np.testing.assert_allclose(truth.score(u, i, clip=True), np.clip(expected, 1, 5))
    assert truth.score(4, 2).shape == (1,)
    assert truth.score([], []).shape == (0,)


def test_truth_errors():
    data, truth = make_ratings(n_users=20, n_items=10, n_ratings=100, random_state=0)
    with pytest.raises(InvalidParameterError, match=r"^SyntheticTruth.score: users must be "
                       r"positions in \[0, 20\); got 20$"):  # fmt: skip
        truth.score([20], [0])
    with pytest.raises(
        InvalidParameterError, match=r"items must be positions in \[0, 10\); got -1"
    ):
        truth.score([0], [-1])
    with pytest.raises(InvalidParameterError, match="users and items must have the same length; "
                       "got 2 and 1"):  # fmt: skip
        truth.score([0, 1], [0])
    with pytest.raises(
        InvalidParameterError, match="users must be a 1-D array of integer positions"
    ):
        truth.score([0.5], [0])
    with pytest.raises(
        InvalidParameterError, match=r"data must have this truth's shape \(20, 10\)"
    ):
        truth.rmse(make_ratings(n_users=5, n_items=5, n_ratings=10, random_state=0)[0])
    with pytest.raises(InvalidParameterError, match="data must be an Interactions; got list"):
        truth.rmse([1, 2])
    _, itruth = make_implicit(n_users=20, n_items=10, n_interactions=100, random_state=0)
    with pytest.raises(InvalidParameterError, match="rmse needs explicit ratings"):
        itruth.rmse(data)
    with pytest.raises(InvalidParameterError, match="clip=True needs explicit ratings"):
        itruth.score([0], [0], clip=True)
    assert np.isnan(truth.rmse(data.take(np.zeros(len(data), dtype=bool))))


# ---------------------------------------------------------------------- argument errors
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_ratings": 600000}, "make_ratings: n_ratings must be <= n_users * n_items (500000); "
                                "got 600000"),
        ({"n_users": 0}, "make_ratings: n_users must be an int >= 1; got 0"),
        ({"n_items": 2.5}, "make_ratings: n_items must be an int >= 1; got 2.5"),
        ({"n_ratings": True}, "make_ratings: n_ratings must be an int >= 1; got True"),
        ({"rank": 0}, "make_ratings: rank must be an int >= 1; got 0"),
        ({"noise": -0.1}, "make_ratings: noise must be a number >= 0; got -0.1"),
        ({"noise": float("nan")}, "make_ratings: noise must be a number >= 0; got nan"),
        ({"popularity_skew": -1}, "make_ratings: popularity_skew must be a number >= 0; got -1"),
        ({"activity_skew": "high"}, "make_ratings: activity_skew must be None or a number >= 0; "
                                    "got 'high'"),
        ({"rating_scale": (5, 1)}, "make_ratings: rating_scale must be a (low, high) pair of "
                                   "finite numbers with low < high; got tuple (5, 1)"),
        ({"rating_scale": 5}, "make_ratings: rating_scale must be a (low, high) pair"),
        ({"rating_step": 0.3}, "make_ratings: rating_step must be None or a step that "
                               "divides the scale width (4); got 0.3"),
        ({"rating_step": 0}, "make_ratings: rating_step must be a number > 0; got 0"),
        ({"random_state": -1}, "make_ratings: random_state must be None, an int >= 0 or a "
                               "numpy.random.Generator; got -1"),
        ({"random_state": "seed"}, "make_ratings: random_state must be None"),
        ({"timestamps": "yes"}, "make_ratings: timestamps must be a bool; got 'yes'"),
    ],
)  # fmt: skip
def test_make_ratings_errors(kwargs, message):
    with pytest.raises(InvalidParameterError, match="^" + _re(message)):
        make_ratings(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_interactions": 10**6}, "make_implicit: n_interactions must be <= n_users * n_items "
                                    "(500000); got 1000000"),
        ({"noise": 1.5}, "make_implicit: noise must be a number in [0, 1]; got 1.5"),
        ({"counts": 1}, "make_implicit: counts must be a bool; got 1"),
        ({"n_users": -3}, "make_implicit: n_users must be an int >= 1; got -3"),
    ],
)  # fmt: skip
def test_make_implicit_errors(kwargs, message):
    with pytest.raises(InvalidParameterError, match="^" + _re(message)):
        make_implicit(**kwargs)


def _re(text):
    import re

    return re.escape(text)


# ---------------------------------------------------------------------- internals
def test_alias_sampler_matches_weights():
    rng = np.random.default_rng(0)
    p = rng.random(50) ** 3
    p /= p.sum()
    draws = synthetic._Alias(p).draw(rng, 400_000)
    freq = np.bincount(draws, minlength=50) / len(draws)
    np.testing.assert_allclose(freq, p, atol=4 * np.sqrt(p.max() / len(draws)))
    cdf_draws = synthetic._Cdf(p).draw(rng, 400_000)
    freq = np.bincount(cdf_draws, minlength=50) / len(cdf_draws)
    np.testing.assert_allclose(freq, p, atol=4 * np.sqrt(p.max() / len(draws)))


def test_cap_water_fills():
    w = np.arange(1, 101, dtype=float) ** -1.5
    capped = synthetic._cap(w / w.sum(), 0.05)
    assert np.isclose(capped.sum(), 1.0)
    assert capped.max() <= 0.05 * (1 + 1e-9)
    assert (np.diff(capped) <= 1e-15).all()  # order kept
    uncapped = w[50:] / w[50:].sum()
    assert np.array_equal(synthetic._cap(uncapped, 1.0), uncapped)
    np.testing.assert_allclose(synthetic._cap(w / w.sum(), 0.01), 0.01)  # only uniform fits
