"""``fit(train, sample_weight=...)`` of the implicit-feedback models: ImplicitALS,
MostPopular, BPR, HybridMF.

What a weight means in each objective:

- ImplicitALS: the interaction's confidence becomes ``w * c_ui``. Weight 0 gives
  confidence 0, the kernels' mark of an unobserved cell, so it is the fit without that
  interaction (the factors agree to float rounding; the pair stays "seen" for
  ``recommend``). Weight 2 doubles the confidence, which for ``confidence="linear"`` is
  the same as the value ``2 r + 1 / alpha`` (``1 + alpha (2 r + 1/alpha) = 2 (1 + alpha
  r)``), and weight 2 everywhere doubles the whole observed term, i.e. the objective of
  half the unobserved weight and half the regularization, times 2.
- MostPopular: an item's score is the sum of its interactions' weights.
- BPR and HybridMF (both pairwise losses, BPR and WARP): positives are drawn in
  proportion to their weights, so weight 0 is never drawn (it is still not a negative
  for its user), and equal weights draw exactly the unweighted triples.
"""

import numpy as np
import pytest

import factorkit as fk
from factorkit.data.synthetic import make_implicit
from factorkit.exceptions import DataError, InvalidParameterError
from factorkit.models._init import normal_factors
from factorkit.models.implicit_als import ImplicitALS


@pytest.fixture(scope="module")
def small():
    """Synthetic implicit data (with timestamps): 120 users, 80 items, 1500 pairs."""
    data, _ = make_implicit(120, 80, 1500, rank=4, random_state=0)
    return data


def _droppable(data, share=0.15, seed=0):
    """A mask of interactions to drop such that every user and item keeps at least one
    (so the id maps, and hence the initial factors, are those of the full data)."""
    rng = np.random.default_rng(seed)
    drop = np.zeros(len(data), dtype=bool)
    users_left = np.bincount(data.user_index, minlength=data.n_users)
    items_left = np.bincount(data.item_index, minlength=data.n_items)
    for j in rng.permutation(len(data))[: int(share * len(data)) * 2]:
        u, i = data.user_index[j], data.item_index[j]
        if users_left[u] > 1 and items_left[i] > 1 and drop.sum() < share * len(data):
            drop[j] = True
            users_left[u] -= 1
            items_left[i] -= 1
    return drop


def _ials(**kw):
    params = {"factors": 8, "epochs": 4, "random_state": 0, "n_threads": 1}
    params.update(kw)
    return ImplicitALS(**params)


# ---------------------------------------------------------------------- ImplicitALS
@pytest.mark.parametrize(
    "params",
    [{}, {"solver": "cholesky", "regularization_exponent": 1.0, "regularization": 0.01}],
    ids=["cg", "cholesky-frequency-scaled"],
)
def test_ials_weight_zero_equals_removing_the_rows(small, params):
    drop = _droppable(small)
    assert drop.sum() > 100
    weights = np.where(drop, 0.0, 1.0)
    weighted = _ials(**params).fit(small, sample_weight=weights)
    removed = _ials(**params).fit(small.take(~drop))
    assert weighted.user_map_ == removed.user_map_ and weighted.item_map_ == removed.item_map_
    np.testing.assert_allclose(weighted.user_factors_, removed.user_factors_, atol=2e-5)
    np.testing.assert_allclose(weighted.item_factors_, removed.item_factors_, atol=2e-5)
    np.testing.assert_allclose(weighted.history_["loss"], removed.history_["loss"], rtol=1e-5)
    # a weight-0 interaction is still one the user had: recommend leaves it out
    j = int(np.flatnonzero(drop)[0])
    user = small.user_map.ids[small.user_index[j]]
    item = small.item_map.ids[small.item_index[j]]
    assert item not in weighted.recommend(user, k=small.n_items)[0].tolist()
    assert item in removed.recommend(user, k=small.n_items)[0].tolist()


def test_ials_double_weight_is_double_confidence(small):
    """Weight 2 on a row == the value that doubles its linear confidence, 2 r + 1/alpha."""
    rows = np.zeros(len(small), dtype=bool)
    rows[::3] = True
    weights = np.where(rows, 2.0, 1.0)
    weighted = _ials(alpha=2.0).fit(small, sample_weight=weights)
    values = np.where(rows, 2.0 * small.values + 1.0 / 2.0, small.values)
    shifted = fk.Interactions.from_arrays(
        small.user_map.to_ids(small.user_index), small.item_map.to_ids(small.item_index), values
    )
    same = _ials(alpha=2.0).fit(shifted)
    np.testing.assert_array_equal(weighted.user_factors_, same.user_factors_)
    np.testing.assert_array_equal(weighted.item_factors_, same.item_factors_)
    plain = _ials(alpha=2.0).fit(small)
    assert not np.allclose(weighted.user_factors_, plain.user_factors_, atol=1e-3)


def test_ials_uniform_weights_scale_the_observed_term(small):
    """Weight 2 everywhere: 2 * (the objective with w0 / 2 and lambda / 2); weight 1
    everywhere is the unweighted fit, bit for bit."""
    twice = _ials(regularization=4.0).fit(small, sample_weight=np.full(len(small), 2.0))
    halved = _ials(regularization=2.0, unobserved_weight=0.5).fit(small)
    np.testing.assert_allclose(twice.user_factors_, halved.user_factors_, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(twice.item_factors_, halved.item_factors_, rtol=1e-4, atol=1e-5)
    ones = _ials().fit(small, sample_weight=np.ones(len(small)))
    plain = _ials().fit(small)
    np.testing.assert_array_equal(ones.user_factors_, plain.user_factors_)


def test_ials_time_decay_weights_fit(small):
    w = fk.time_decay(small, half_life=30 * 86400)
    model = _ials().fit(small, sample_weight=w)
    assert np.isfinite(model.user_factors_).all() and np.isfinite(model.history_["loss"]).all()


# ---------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("weights", "message"),
    [
        (
            np.ones(3),
            r"ImplicitALS\.fit: sample_weight must have one weight per training interaction "
            r"\(shape \(1500,\), aligned with train\.values\); got shape \(3,\)",
        ),
        (
            np.r_[1.0, -1.0, np.ones(1498)],
            r"ImplicitALS\.fit: sample_weight\[1\] is -1\.0 \(1 bad in all\); weights must be "
            r"finite and >= 0",
        ),
        (
            np.r_[np.ones(5), np.nan, np.inf, np.ones(1493)],
            r"ImplicitALS\.fit: sample_weight\[5\] is nan \(2 bad in all\)",
        ),
        (np.zeros(1500), r"ImplicitALS\.fit: every sample_weight is 0"),
    ],
    ids=["length", "negative", "non-finite", "all-zero"],
)
def test_ials_bad_weights(small, weights, message):
    with pytest.raises(DataError, match=message):
        _ials().fit(small, sample_weight=weights)


# ---------------------------------------------------------------------- MostPopular
def test_most_popular_sums_weights(small):
    rng = np.random.default_rng(1)
    weights = rng.uniform(0.0, 3.0, len(small))
    weights[::7] = 0.0
    model = fk.MostPopular().fit(small, sample_weight=weights)
    expected = np.bincount(small.item_index, weights, minlength=small.n_items)
    np.testing.assert_allclose(model.item_bias_, expected)
    # weight 0 == the rows removed; doubling a row == duplicating its count
    removed = fk.MostPopular().fit(small.take(weights > 0), sample_weight=weights[weights > 0])
    np.testing.assert_allclose(removed.item_bias_, model.item_bias_)
    doubled = fk.MostPopular().fit(small, sample_weight=np.full(len(small), 2.0))
    np.testing.assert_array_equal(doubled.item_bias_, 2 * fk.MostPopular().fit(small).item_bias_)


def test_most_popular_weights_follow_min_value():
    data = fk.Interactions.from_arrays(
        ["a", "a", "b", "b", "c"], [1, 2, 1, 2, 3], [5.0, 2.0, 4.0, 5.0, 1.0]
    )
    # canonical order: (a,1) (a,2) (b,1) (b,2) (c,3)
    model = fk.MostPopular(min_value=4.0).fit(data, sample_weight=[1.0, 10.0, 0.5, 2.0, 7.0])
    scores = dict(zip(model.item_map_.ids.tolist(), model.item_bias_.tolist(), strict=True))
    assert scores == {1: 1.5, 2: 2.0, 3: 0.0}


def test_most_popular_time_decay_ranks_recent_hits_first():
    """Item 1 was popular long ago, item 2 lately: the decayed count prefers item 2."""
    day = 86400
    users = [f"u{k}" for k in range(10)] + ["v0", "v1", "v2", "w"]
    items = [1] * 10 + [2] * 3 + [3]
    times = [0] * 10 + [400 * day] * 4
    data = fk.Interactions.from_arrays(users, items, timestamps=times)
    plain = fk.MostPopular().fit(data)
    decayed = fk.MostPopular().fit(data, sample_weight=fk.time_decay(data, half_life="30d"))
    assert plain.recommend("w", k=2)[0].tolist() == [1, 2]
    assert decayed.recommend("w", k=2)[0].tolist() == [2, 1]


def test_most_popular_bad_weights(small):
    with pytest.raises(DataError, match=r"MostPopular\.fit: sample_weight must have one weight"):
        fk.MostPopular().fit(small, sample_weight=np.ones(len(small) + 1))
    with pytest.raises(DataError, match=r"MostPopular\.fit: sample_weight\[0\] is -0\.5"):
        fk.MostPopular().fit(small, sample_weight=np.r_[-0.5, np.ones(len(small) - 1)])


# ---------------------------------------------------------------------- BPR
def _bpr(**kw):
    params = {"factors": 8, "epochs": 5, "random_state": 0, "n_threads": 1}
    params.update(kw)
    return fk.BPR(**params)


def _hybrid(**kw):
    params = {"factors": 8, "epochs": 5, "random_state": 0, "n_threads": 1}
    params.update(kw)
    return fk.HybridMF(**params)


def test_bpr_weight_zero_positives_are_never_drawn(small):
    """A user whose every positive has weight 0 is never the user of a triple: their
    vector stays at its initial value (their items still take steps as negatives)."""
    user = small.user_index[0]
    own = small.user_index == user
    weights = np.where(own, 0.0, 1.0)
    model = _bpr().fit(small, sample_weight=weights)
    rng = np.random.default_rng(0)
    init = normal_factors(rng, small.n_users, 8, 0.1 / np.sqrt(8), np.float32, n_threads=1)
    np.testing.assert_array_equal(model.user_factors_[user], init[user])
    assert not np.array_equal(model.user_factors_[user + 1], init[user + 1])
    # the user's weight-0 items are still theirs: recommend leaves them out
    seen = set(small.item_map.to_ids(small.item_index[own]).tolist())
    top = model.recommend(small.user_map.ids[user], k=small.n_items)[0].tolist()
    assert not seen & set(top)


@pytest.mark.parametrize("make", [_bpr, _hybrid], ids=["BPR", "HybridMF"])
def test_pairwise_equal_weights_are_the_unweighted_fit(small, make):
    """Only the ratios of the weights matter, and equal weights draw exactly the
    triples of an unweighted fit (same seed, one thread)."""
    plain = make().fit(small)
    for value in (1.0, 2.0):
        same = make().fit(small, sample_weight=np.full(len(small), value))
        np.testing.assert_array_equal(same.user_factors_, plain.user_factors_)
        np.testing.assert_array_equal(same.item_factors_, plain.item_factors_)
    other = make().fit(small, sample_weight=np.r_[0.0, np.ones(len(small) - 1)])
    assert not np.array_equal(other.user_factors_, plain.user_factors_)


def test_hybrid_weight_zero_positives_are_never_drawn(small):
    """As for BPR: a user whose positives all weigh 0 keeps their initial id vector."""
    user = small.user_index[0]
    weights = np.where(small.user_index == user, 0.0, 1.0)
    model = _hybrid().fit(small, sample_weight=weights)
    rng = np.random.default_rng(0)
    init = normal_factors(rng, small.n_users, 8, 0.1 / np.sqrt(8), np.float32, n_threads=1)
    np.testing.assert_array_equal(model.user_id_factors_[user], init[user])
    assert not np.array_equal(model.user_id_factors_[user + 1], init[user + 1])
    with pytest.raises(DataError, match=r"HybridMF\.fit: sample_weight\[0\] is -1\.0"):
        _hybrid().fit(small, sample_weight=-np.ones(len(small)))


def _switchers(n_users=300, per=40, seed=0):
    """Each user liked 8 items of one cluster long ago and 4 of the other lately;
    returns the data and each user's recent cluster."""
    rng = np.random.default_rng(seed)
    day = 86400
    users, items, times = [], [], []
    recent = np.arange(n_users) % 2
    for u in range(n_users):
        old, new = 1 - recent[u], recent[u]
        for cluster, n, (start, stop) in ((old, 8, (0, 100)), (new, 4, (600, 700))):
            picks = rng.choice(per, n, replace=False)
            users += [u] * n
            items += (cluster * per + picks).tolist()
            times += (rng.uniform(start, stop, n) * day).tolist()
    return fk.Interactions.from_arrays(users, items, timestamps=times), recent


@pytest.mark.parametrize(
    "model",
    [_bpr(epochs=30), _ials(epochs=5), _hybrid(epochs=30), _hybrid(epochs=30, loss="warp")],
    ids=["BPR", "ImplicitALS", "HybridMF", "HybridMF-warp"],
)
def test_time_decay_weights_recommend_from_the_recent_taste(model):
    """Without weights old and recent tastes mix (about half the top 10 from the recent
    cluster); with time_decay weights (half-life 60 days) the recent one wins (share of
    the recent cluster: ImplicitALS 0.54 -> 1.0, BPR 0.47 -> 0.96, WARP 0.89)."""
    data, recent = _switchers()
    users = np.arange(len(recent))

    def recent_share(fitted):
        top, _ = fitted.recommend(users, k=10)
        return float(np.mean(np.asarray(top) // 40 == recent[:, None]))

    plain = recent_share(model.fit(data))
    decayed = recent_share(model.fit(data, sample_weight=fk.time_decay(data, half_life="60d")))
    assert plain < 0.6
    assert decayed > 0.85


def test_bpr_bad_weights(small):
    with pytest.raises(DataError, match=r"BPR\.fit: sample_weight must have one weight per"):
        _bpr().fit(small, sample_weight=np.ones((len(small), 2)))
    with pytest.raises(DataError, match=r"BPR\.fit: sample_weight\[2\] is inf"):
        _bpr().fit(small, sample_weight=np.r_[1.0, 1.0, np.inf, np.ones(len(small) - 3)])


def test_ials_distributed_data_refuses_weights():
    """The Dask backend does not take weights yet: a clear error before any Dask work."""
    pytest.importorskip("dask.dataframe")
    import factorkit.distributed as fkd

    data = object.__new__(fkd.DistributedInteractions)  # the type picks the backend
    with pytest.raises(
        InvalidParameterError,
        match=r"ImplicitALS\.fit: sample_weight is not supported on the Dask backend yet "
        r"\(distributed data\); fit without it, or collect the data onto one machine",
    ):
        _ials().fit(data, sample_weight=np.ones(3))
