"""``fit(..., sample_weight=...)`` of the explicit-rating models: BaselineOnly, ALS,
BiasedMF, SVDpp and TimeSVDpp.

The weighted objective is ``sum_j w_j (r_j - r_hat_j)^2`` plus each model's usual
penalty, so weight 0 must act exactly as a missing rating and weight 2 as a duplicated one
wherever the objective is a plain sum over ratings (the exact solvers: ALS, BaselineOnly;
the kernels' own tests check ALS against literally repeated ratings). SGD visits ratings
in a random order, so for the SGD models the tests pin what weights change in the
updates (their kernels' tests check each weighted step against a NumPy reference).
"""

import numpy as np
import pytest

import factorkit as fk
from factorkit.exceptions import DataError, InvalidParameterError
from factorkit.models._backend import reject_distributed_weights


def low_rank(n_users=80, n_items=60, rank=3, density=0.35, seed=0):
    """Ratings 3 + p_u . q_i + noise at random times; ~20 ratings per user, ~30 per item."""
    rng = np.random.default_rng(seed)
    p = rng.standard_normal((n_users, rank)) / np.sqrt(rank)
    q = rng.standard_normal((n_items, rank))
    u, i = np.nonzero(rng.random((n_users, n_items)) < density)
    r = 3.0 + np.einsum("ij,ij->i", p[u], q[i]) + rng.standard_normal(len(u)) * 0.3
    ts = rng.uniform(0, 400 * 86400, len(u))  # for TimeSVDpp
    return fk.Interactions.from_arrays(u, i, r, timestamps=ts)


@pytest.fixture(scope="module")
def data():
    return low_rank()


@pytest.fixture(scope="module")
def dropped(data):
    """A random fifth of the ratings at weight 0, and the data without them; every user
    and item keeps ratings, so both fits have the same users and items."""
    zero = np.random.default_rng(1).random(len(data)) < 0.2
    users = data.user_map.ids[data.user_index]
    items = data.item_map.ids[data.item_index]
    rest = fk.Interactions.from_arrays(
        users[~zero], items[~zero], data.values[~zero], timestamps=data.timestamps[~zero]
    )
    assert rest.n_users == data.n_users and rest.n_items == data.n_items
    return np.where(zero, 0.0, 1.0), rest


def all_predictions(model, data):
    users = np.repeat(data.user_map.ids, data.n_items)
    items = np.tile(data.item_map.ids, data.n_users)
    return model.predict(users, items)


MODELS = {
    "BaselineOnly": lambda: fk.BaselineOnly(epochs=5),
    "ALS": lambda: fk.ALS(factors=4, epochs=4, random_state=0),
    "ALS-unweighted-lambda": lambda: fk.ALS(
        factors=4, epochs=4, weighted_regularization=False, regularization=2.0, random_state=0
    ),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_weight_zero_equals_removing_the_ratings(name, data, dropped):
    weights, rest = dropped
    weighted = MODELS[name]().fit(data, sample_weight=weights)
    removed = MODELS[name]().fit(rest)
    assert weighted.global_mean_ == pytest.approx(removed.global_mean_, rel=1e-12)
    np.testing.assert_allclose(
        all_predictions(weighted, data), all_predictions(removed, data), atol=2e-5
    )
    # the objective is the removed data's too: the same loss per (weighted) rating
    np.testing.assert_allclose(weighted.history_["loss"], removed.history_["loss"], rtol=1e-5)


def test_baseline_integer_weights_equal_repeated_ratings(data):
    """BaselineOnly's biases solve a sum over ratings: weight m is the rating m times.
    The reference runs the documented updates (items, then users, exact ridge means) on
    the ratings repeated."""
    w = np.random.default_rng(2).integers(0, 4, len(data)).astype(float)
    w[data.indptr[:-1]] = 1.0  # every user keeps a rating
    model = fk.BaselineOnly(epochs=3, regularization=2.0, user_regularization=4.0)
    model.fit(data, sample_weight=w)
    reps = w.astype(int)
    u, i = np.repeat(data.user_index, reps), np.repeat(data.item_index, reps)
    r = np.repeat(data.values.astype(float), reps)
    mu = r.mean()
    bu, bi = np.zeros(data.n_users), np.zeros(data.n_items)
    for _ in range(3):
        bi = np.bincount(i, r - mu - bu[u], data.n_items) / (
            2.0 + np.bincount(i, None, data.n_items)
        )
        bu = np.bincount(u, r - mu - bi[i], data.n_users) / (
            4.0 + np.bincount(u, None, data.n_users)
        )
    assert model.global_mean_ == pytest.approx(mu, rel=1e-12)
    np.testing.assert_allclose(model.user_bias_, bu, atol=1e-10)
    np.testing.assert_allclose(model.item_bias_, bi, atol=1e-10)


def test_als_uniform_weights_scale_out(data):
    """Weight c on every rating is every rating listed c times. With ALS-WR's penalty
    ``lam * n`` (n = the weight sum) the whole objective scales by c: the same fit. With
    a fixed ``lam`` the same fit needs ``c * lam``."""
    plain = fk.ALS(factors=4, epochs=3, random_state=0).fit(data)
    doubled = fk.ALS(factors=4, epochs=3, random_state=0)
    doubled.fit(data, sample_weight=np.full(len(data), 2.0))
    np.testing.assert_allclose(doubled.user_factors_, plain.user_factors_, atol=1e-5)
    np.testing.assert_allclose(doubled.item_bias_, plain.item_bias_, atol=1e-5)
    fixed = {"factors": 4, "epochs": 3, "weighted_regularization": False, "random_state": 0}
    plain = fk.ALS(regularization=1.5, **fixed).fit(data)
    tripled = fk.ALS(regularization=4.5, **fixed)
    tripled.fit(data, sample_weight=np.full(len(data), 3.0))
    np.testing.assert_allclose(tripled.item_factors_, plain.item_factors_, atol=1e-5)
    np.testing.assert_allclose(tripled.user_bias_, plain.user_bias_, atol=1e-5)


def test_als_weights_change_the_fit(data):
    """Not a no-op: doubling some ratings moves the factors."""
    w = np.where(np.arange(len(data)) % 3 == 0, 2.0, 1.0)
    plain = fk.ALS(factors=4, epochs=3, random_state=0).fit(data)
    weighted = fk.ALS(factors=4, epochs=3, random_state=0).fit(data, sample_weight=w)
    assert np.abs(weighted.user_factors_ - plain.user_factors_).max() > 1e-3


@pytest.mark.parametrize(
    "make",
    [
        lambda: fk.BaselineOnly(epochs=3),
        lambda: fk.ALS(factors=4, epochs=3, random_state=0),
        lambda: fk.BiasedMF(factors=4, epochs=3, random_state=0),
        lambda: fk.SVDpp(factors=4, epochs=3, random_state=0, n_threads=1),
        lambda: fk.TimeSVDpp(factors=4, epochs=3, random_state=0, n_threads=1),
    ],
    ids=["BaselineOnly", "ALS", "BiasedMF", "SVDpp", "TimeSVDpp"],
)
def test_weight_zero_ratings_values_do_not_matter(make, data, dropped):
    """Whatever a weight-0 rating says, the fit is the same bits: it adds nothing to the
    mean, the loss or any update (for SGD too, whose visiting order is unchanged)."""
    weights, _ = dropped
    other = data.values.copy()
    other[weights == 0] = 5.0 - other[weights == 0] + 0.25
    changed = fk.Interactions.from_arrays(
        data.user_map.ids[data.user_index],
        data.item_map.ids[data.item_index],
        other,
        timestamps=data.timestamps,
    )
    a = make().fit(data, sample_weight=weights)
    b = make().fit(changed, sample_weight=weights)
    assert a.global_mean_ == b.global_mean_
    np.testing.assert_array_equal(a.user_bias_, b.user_bias_)
    np.testing.assert_array_equal(a.item_factors_, b.item_factors_)
    np.testing.assert_array_equal(a.history_["loss"], b.history_["loss"])
    # and the fit does differ when they count
    c = make().fit(changed)
    assert not np.array_equal(a.user_bias_, c.user_bias_)


def test_biased_mf_user_with_weight_zero_keeps_initial_factors(data):
    """Weight 0 on all of a user's ratings: no SGD step touches the user, whose factors
    stay at their random start (the same whatever the other weights are) and bias at 0."""
    user = data.user_map.ids[5]
    mine = data.user_index == 5
    weights = np.where(mine, 0.0, 1.0)
    only_one = np.zeros(len(data))
    only_one[np.flatnonzero(~mine)[0]] = 1.0  # nearly everyone keeps the initial values
    kw = {"factors": 4, "epochs": 3, "random_state": 0}
    a = fk.BiasedMF(**kw).fit(data, sample_weight=weights)
    b = fk.BiasedMF(**kw).fit(data, sample_weight=only_one)
    plain = fk.BiasedMF(**kw).fit(data)
    pos = a.user_map_.to_index([user])[0]
    np.testing.assert_array_equal(a.user_factors_[pos], b.user_factors_[pos])
    assert a.user_bias_[pos] == 0.0
    assert np.abs(plain.user_factors_[pos] - a.user_factors_[pos]).max() > 1e-3
    # everyone else learned from the ratings that count
    assert np.abs(plain.user_factors_ - a.user_factors_).max() > 1e-3


def drifting():
    """Item 0's ratings go from 1 (long ago) to 5 (recently); 150 other ratings keep the
    users and the mean anchored (recent, so they keep their weight). Time-decayed weights
    should pull item 0 towards 5."""
    rng = np.random.default_rng(0)
    n = 200
    users = np.arange(n)
    t = np.sort(rng.uniform(0, 1000 * 86400, n))
    early = t < 800 * 86400
    r0 = np.where(early, 1.0, 5.0)
    other_u = rng.integers(0, n, 3 * n)
    other_i = rng.integers(1, 30, 3 * n)
    pairs = np.unique(np.stack([other_u, other_i]), axis=1)  # items 1..29: none is item 0
    u = np.concatenate([users, pairs[0]])
    i = np.concatenate([np.zeros(n, int), pairs[1]])
    r = np.concatenate([r0, rng.integers(2, 5, pairs.shape[1]).astype(float)])
    ts = np.concatenate([t, rng.uniform(900 * 86400, 1000 * 86400, pairs.shape[1])])
    return fk.Interactions.from_arrays(u, i, r, timestamps=ts)


@pytest.mark.parametrize(
    "make",
    [
        lambda: fk.BaselineOnly(),
        lambda: fk.ALS(factors=2, epochs=5, random_state=0),
        lambda: fk.BiasedMF(factors=2, epochs=20, random_state=0),
        lambda: fk.SVDpp(factors=2, epochs=20, random_state=0),
    ],
    ids=["BaselineOnly", "ALS", "BiasedMF", "SVDpp"],
)
def test_time_decay_weights_favour_recent_ratings(make):
    data = drifting()
    w = fk.time_decay(data, half_life="60d")
    plain, recent = make().fit(data), make().fit(data, sample_weight=w)
    users = data.user_map.ids
    before = plain.predict(users, np.zeros(len(users), int)).mean()
    after = recent.predict(users, np.zeros(len(users), int)).mean()
    # unweighted, item 0 looks like a ~2.1 film (80% of its ratings are 1s); weighted by
    # recency (its 5s are the last 200 days), like a 4+ one
    assert before < 2.5 and after > 4.0, (before, after)


@pytest.mark.parametrize("name", ["BaselineOnly", "ALS", "BiasedMF", "SVDpp", "TimeSVDpp"])
def test_bad_weights_are_refused_with_the_reason(name, data):
    """Each refused before the fit changes anything: a fitted model stays as it was."""
    model = getattr(fk, name)(epochs=2).fit(data)
    state = (model.user_map_, model.user_factors_, model.history_)
    good = np.ones(len(data))
    with pytest.raises(DataError, match=rf"{name}\.fit: sample_weight must have one weight "):
        model.fit(data, sample_weight=good[:-1])
    bad = good.copy()
    bad[7] = -1.0
    with pytest.raises(DataError, match=rf"{name}\.fit: sample_weight\[7\] is -1\.0 \(1 bad"):
        model.fit(data, sample_weight=bad)
    bad[7] = np.nan
    with pytest.raises(DataError, match=r"sample_weight\[7\] is nan .*finite and >= 0"):
        model.fit(data, sample_weight=bad)
    bad[7] = np.inf
    with pytest.raises(DataError, match=r"sample_weight\[7\] is inf"):
        model.fit(data, sample_weight=bad)
    with pytest.raises(DataError, match=r"every sample_weight is 0"):
        model.fit(data, sample_weight=np.zeros(len(data)))
    now = (model.user_map_, model.user_factors_, model.history_)
    assert all(a is b for a, b in zip(now, state, strict=True))


@pytest.mark.parametrize(
    "make",
    [
        lambda: fk.SVDpp(factors=4, epochs=3, random_state=0, n_threads=1),
        lambda: fk.TimeSVDpp(factors=4, epochs=3, random_state=0, n_threads=1),
    ],
    ids=["SVDpp", "TimeSVDpp"],
)
def test_svdpp_user_with_weight_zero_keeps_initial_state(make, data):
    """No SGD step touches a user whose ratings all weigh 0: p_u stays at its random
    start (the same as in a fit where almost nothing counts) and b_u at 0."""
    mine = data.user_index == 5
    only_one = np.zeros(len(data))
    only_one[np.flatnonzero(~mine)[0]] = 1.0
    a = make().fit(data, sample_weight=np.where(mine, 0.0, 1.0))
    b = make().fit(data, sample_weight=only_one)
    plain = make().fit(data)
    pos = a.user_map_.to_index([data.user_map.ids[5]])[0]
    np.testing.assert_array_equal(a.user_factors_[pos], b.user_factors_[pos])
    assert a.user_bias_[pos] == 0.0
    assert np.abs(plain.user_factors_[pos] - a.user_factors_[pos]).max() > 1e-3


def test_sample_weight_is_keyword_only(data):
    with pytest.raises(TypeError):
        fk.ALS(epochs=1).fit(data, None, np.ones(len(data)))


def test_distributed_fit_refuses_weights():
    with pytest.raises(InvalidParameterError, match=r"ALS\.fit: sample_weight is not supported"):
        reject_distributed_weights(fk.ALS(), np.ones(3))
    reject_distributed_weights(fk.ALS(), None)  # no weights: nothing to refuse
