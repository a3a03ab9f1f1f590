"""``fit(sample_weight=...)`` of PureSVD, NonNegativeMF and the neighbour models.

Weight 0 must equal removing the interaction; weights of 1 must equal no weights; bad
weights are a DataError naming ``<Model>.fit``. Small MovieLens subsets keep it fast.
"""

import numpy as np
import pytest

import factorkit as fk
from factorkit.exceptions import DataError


@pytest.fixture(scope="module")
def small():
    data = fk.datasets.load_movielens_small()
    return data.select_users(data.user_map.ids[:60]).compact()


def _zero_rows(data, share=0.15, seed=0):
    """Positions to give weight 0 such that every user and item keeps a positive one
    (so removing them leaves the same vocabularies, hence the same positions)."""
    rng = np.random.default_rng(seed)
    users = np.asarray(data.user_index)
    items = np.asarray(data.item_index)
    left_u = np.bincount(users, minlength=data.n_users)
    left_i = np.bincount(items, minlength=data.n_items)
    zero = np.zeros(len(data), bool)
    for p in rng.permutation(len(data))[: int(share * len(data))]:
        if left_u[users[p]] > 1 and left_i[items[p]] > 1:
            zero[p] = True
            left_u[users[p]] -= 1
            left_i[items[p]] -= 1
    assert zero.sum() > 0.1 * len(data)
    return zero


def _removal_pair(data, seed=0):
    zero = _zero_rows(data, seed=seed)
    rng = np.random.default_rng(seed + 1)
    w = np.where(zero, 0.0, rng.uniform(0.2, 3.0, len(data)))
    return w, zero


def _with_values(data, values):
    """``data`` with other values, same positions and id maps."""
    return fk.Interactions(
        data.user_index, data.item_index, np.asarray(values, np.float64),
        data.user_map, data.item_map, implicit=data.implicit,
    )  # fmt: skip


def _same_factors_up_to_sign(a, b, atol):
    signs = np.sign(np.sum(a * b, axis=0))
    np.testing.assert_allclose(a * signs, b, atol=atol)


# --------------------------------------------------------------------------- PureSVD
def test_pure_svd_weight_zero_is_removal_and_ones_are_no_weights(small):
    w, zero = _removal_pair(small)
    kept = small.take(~zero)
    weighted = fk.PureSVD(factors=8, random_state=0, n_threads=1)
    weighted.fit(small, sample_weight=w)
    # the same values scaled by hand: weighting is W * R, the zero cells removed
    scaled = _with_values(kept, kept.values * w[~zero])
    removed = fk.PureSVD(factors=8, random_state=0, n_threads=1).fit(scaled)
    _same_factors_up_to_sign(weighted.item_factors_, removed.item_factors_, 1e-4)
    np.testing.assert_allclose(
        np.abs(weighted.user_factors_), np.abs(removed.user_factors_), atol=1e-3
    )
    # a weight-0 interaction is still seen: not recommended back
    u = int(small.user_index[np.flatnonzero(zero)[0]])
    i = int(small.item_index[np.flatnonzero(zero)[0]])
    items, _ = weighted.recommend(small.user_map.ids[u], k=50)
    assert small.item_map.ids[i] not in items.tolist()

    plain = fk.PureSVD(factors=8, random_state=0, n_threads=1).fit(small)
    ones = fk.PureSVD(factors=8, random_state=0, n_threads=1)
    ones.fit(small, sample_weight=np.ones(len(small)))
    np.testing.assert_array_equal(ones.item_factors_, plain.item_factors_)
    np.testing.assert_array_equal(ones.user_factors_, plain.user_factors_)


def test_pure_svd_binary_weight_two_doubles_the_cell(small):
    """With binary=True a weight-2 interaction is the cell counted twice (value 2)."""
    rng = np.random.default_rng(3)
    w = rng.choice([1.0, 2.0], size=len(small))
    weighted = fk.PureSVD(factors=6, binary=True, random_state=0, n_threads=1)
    weighted.fit(small, sample_weight=w)
    counted = _with_values(small, w)
    twice = fk.PureSVD(factors=6, random_state=0, n_threads=1).fit(counted)
    _same_factors_up_to_sign(weighted.item_factors_, twice.item_factors_, 1e-4)


def test_pure_svd_bad_weights_name_the_fit(small):
    model = fk.PureSVD(factors=4, random_state=0)
    with pytest.raises(DataError, match=r"PureSVD.fit: sample_weight must have one weight"):
        model.fit(small, sample_weight=np.ones(len(small) - 1))
    bad = np.ones(len(small))
    bad[5] = -1.0
    with pytest.raises(DataError, match=r"PureSVD.fit: sample_weight\[5\] is -1.0"):
        model.fit(small, sample_weight=bad)
    bad[5] = np.nan
    with pytest.raises(DataError, match=r"sample_weight\[5\] is nan .*finite and >= 0"):
        model.fit(small, sample_weight=bad)


# ----------------------------------------------------------------------- NonNegativeMF
def _nmf(**kw):
    return fk.NonNegativeMF(factors=4, epochs=15, random_state=0, n_threads=1, **kw)


def test_nonnegative_mf_weight_zero_is_removal(small):
    w, zero = _removal_pair(small)
    weighted = _nmf().fit(small, sample_weight=w)
    # the removal reference with the remaining weights
    removed = _nmf().fit(small.take(~zero), sample_weight=w[~zero])
    np.testing.assert_array_equal(weighted.user_factors_, removed.user_factors_)
    np.testing.assert_array_equal(weighted.item_factors_, removed.item_factors_)
    assert weighted.fallback_ == pytest.approx(removed.fallback_)
    # and weight 0 changes the fit (it is not ignored)
    plain = _nmf().fit(small)
    assert not np.allclose(plain.user_factors_, weighted.user_factors_, atol=1e-3)


def test_nonnegative_mf_unit_weights_are_no_weights(small):
    plain = _nmf().fit(small)
    ones = _nmf().fit(small, sample_weight=np.ones(len(small)))
    np.testing.assert_allclose(ones.user_factors_, plain.user_factors_, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ones.item_factors_, plain.item_factors_, rtol=1e-4, atol=1e-5)


def _objective(model, data, reps, reg):
    """NonNegativeMF's objective with every rating repeated ``reps`` times, unweighted:
    ``0.5 sum e^2 + 0.5 reg (n_u |p_u|^2 + n_i |q_i|^2)`` over the repeated ratings."""
    P = model.user_factors_.astype(np.float64)
    Q = model.item_factors_.astype(np.float64)
    u = np.repeat(np.asarray(data.user_index), reps)
    i = np.repeat(np.asarray(data.item_index), reps)
    err = np.repeat(data.values, reps) - np.einsum("ij,ij->i", P[u], Q[i])
    n_u, n_i = np.bincount(u, minlength=len(P)), np.bincount(i, minlength=len(Q))
    return 0.5 * (err @ err + reg * (n_u @ (P**2).sum(1) + n_i @ (Q**2).sum(1)))


def test_nonnegative_mf_weight_two_counts_the_rating_twice(small):
    """Weight 2 optimises the objective in which those ratings are given twice (the
    kernel test pins the exact equivalence of one solve): the weighted fit beats the
    unweighted one on it, and loses on the unweighted objective."""
    rng = np.random.default_rng(4)
    reps = rng.choice([1, 2], size=len(small))
    weighted = _nmf().fit(small, sample_weight=reps.astype(float))
    plain = _nmf().fit(small)
    ones = np.ones(len(small), np.int64)
    assert _objective(weighted, small, reps, 0.2) < _objective(plain, small, reps, 0.2)
    assert _objective(plain, small, ones, 0.2) < _objective(weighted, small, ones, 0.2)


def test_nonnegative_mf_bad_weights(small):
    with pytest.raises(DataError, match=r"NonNegativeMF.fit: sample_weight\[0\] is inf"):
        _nmf().fit(small, sample_weight=np.full(len(small), np.inf))
    with pytest.raises(DataError, match=r"NonNegativeMF.fit: every sample_weight is 0"):
        _nmf().fit(small, sample_weight=np.zeros(len(small)))


# ----------------------------------------------------------------------- neighbours
def _pairs(data, n=300, seed=5):
    rng = np.random.default_rng(seed)
    users = data.user_map.ids[rng.integers(0, data.n_users, n)]
    items = data.item_map.ids[rng.integers(0, data.n_items, n)]
    return users, items


def _same_neighbours(a, b, rtol=0.0):
    for x, y in zip(a._nbr(), b._nbr(), strict=True):
        if rtol and x.dtype.kind == "f":
            np.testing.assert_allclose(x, y, rtol=rtol)
        else:
            np.testing.assert_array_equal(x, y)


def _block_scores(model, n_users):
    return np.vstack([block for _, _, block in model.score_blocks(np.arange(n_users))])


IMPLICIT = [
    (fk.ImplicitItemKNN, "cosine"),
    (fk.ImplicitItemKNN, "bm25"),
    (fk.ImplicitUserKNN, "tfidf"),
    (fk.ImplicitUserKNN, "dot"),
]


@pytest.mark.parametrize(("cls", "similarity"), IMPLICIT)
def test_implicit_knn_weight_zero_is_removal_and_weights_scale_values(small, cls, similarity):
    data = small.to_implicit(min_value=3.0)
    w, zero = _removal_pair(data)
    params = {"similarity": similarity, "neighbours": 15, "shrinkage": 2.0, "n_threads": 1}
    weighted = cls(**params).fit(data, sample_weight=w)
    removed = cls(**params).fit(data.take(~zero), sample_weight=w[~zero])
    _same_neighbours(weighted, removed)
    np.testing.assert_array_equal(
        _block_scores(weighted, data.n_users), _block_scores(removed, data.n_users)
    )
    # the weight is a confidence: the same as the values multiplied by it (those are
    # stored in float32, hence the tolerance)
    kept = data.take(~zero)
    scaled = cls(**params).fit(_with_values(kept, kept.values * w[~zero]))
    _same_neighbours(weighted, scaled, rtol=1e-5)
    np.testing.assert_allclose(
        _block_scores(weighted, data.n_users), _block_scores(scaled, data.n_users), rtol=1e-6
    )
    # weight 0 stays seen: the zero-weighted items are not recommended back
    p = np.flatnonzero(zero)[0]
    user = data.user_map.ids[data.user_index[p]]
    got, _ = weighted.recommend(user, k=100)
    assert data.item_map.ids[data.item_index[p]] not in got.tolist()
    # unit weights are no weights
    plain = cls(**params).fit(data)
    ones = cls(**params).fit(data, sample_weight=np.ones(len(data)))
    _same_neighbours(plain, ones)
    np.testing.assert_array_equal(
        _block_scores(plain, data.n_users), _block_scores(ones, data.n_users)
    )


EXPLICIT = [
    (fk.ItemKNN, {}),  # pearson_baseline similarity, baseline centering
    (fk.ItemKNN, {"similarity": "msd", "centering": "mean"}),
    (fk.UserKNN, {"similarity": "pearson", "centering": "mean"}),
    (fk.UserKNN, {"similarity": "adjusted_cosine", "centering": "none"}),
]


@pytest.mark.parametrize(("cls", "params"), EXPLICIT)
def test_rating_knn_weight_zero_is_removal(small, cls, params):
    w, zero = _removal_pair(small)
    params = {"neighbours": 10, "max_neighbours": 60, "n_threads": 1, **params}
    weighted = cls(**params).fit(small, sample_weight=w)
    removed = cls(**params).fit(small.take(~zero), sample_weight=w[~zero])
    _same_neighbours(weighted, removed)
    assert weighted.global_mean_ == removed.global_mean_
    np.testing.assert_array_equal(weighted.user_bias_, removed.user_bias_)
    np.testing.assert_array_equal(weighted.item_bias_, removed.item_bias_)
    users, items = _pairs(small)
    np.testing.assert_array_equal(weighted.predict(users, items), removed.predict(users, items))
    np.testing.assert_array_equal(
        _block_scores(weighted, small.n_users), _block_scores(removed, small.n_users)
    )
    # the weights matter, and unit weights are no weights
    plain = cls(**params).fit(small)
    ones = cls(**params).fit(small, sample_weight=np.ones(len(small)))
    np.testing.assert_allclose(ones.predict(users, items), plain.predict(users, items),
                               rtol=1e-9, atol=1e-9)  # fmt: skip
    assert np.abs(weighted.predict(users, items) - plain.predict(users, items)).max() > 1e-3


def test_item_knn_votes_count_similarity_times_weight(small):
    """``r_ui = sum s_ij w_uj r_uj / sum s_ij w_uj`` over the first ``k`` neighbours of
    ``i`` the user rated (KNNBasic: no centering), and explain's shares add up to it."""
    rng = np.random.default_rng(8)
    w = rng.uniform(0.1, 4.0, len(small))
    k = 5
    model = fk.ItemKNN(similarity="cosine", centering="none", neighbours=k, shrinkage=0.0,
                       n_threads=1).fit(small, sample_weight=w)  # fmt: skip
    n_ptr, n_idx, n_sim = model._nbr()
    checked = 0
    for u in range(0, small.n_users, 7):
        lo, hi = small.indptr[u], small.indptr[u + 1]
        rated = dict(zip(small.item_index[lo:hi].tolist(), range(lo, hi), strict=True))
        for i in range(0, small.n_items, 97):
            nbrs = range(n_ptr[i], n_ptr[i + 1])
            votes = [
                (float(n_sim[s]), rated[int(n_idx[s])]) for s in nbrs if int(n_idx[s]) in rated
            ]
            votes = votes[:k]
            if not votes:
                continue
            num = sum(s * w[p] * small.values[p] for s, p in votes)
            den = sum(s * w[p] for s, p in votes)
            uid, iid = small.user_map.ids[u], small.item_map.ids[i]
            got = model._score_positions(np.array([u]), np.array([i]), clip=False)[0]
            assert got == pytest.approx(num / den, rel=1e-9)
            e = model.explain(uid, iid)
            assert sum(c for _, c in e.contributions) == pytest.approx(num / den, rel=1e-9)
            checked += 1
    assert checked > 20


def test_user_knn_explain_adds_up_to_the_weighted_prediction(small):
    rng = np.random.default_rng(9)
    w = rng.uniform(0.1, 4.0, len(small))
    model = fk.UserKNN(similarity="pearson", centering="mean", neighbours=8,
                       n_threads=1).fit(small, sample_weight=w)  # fmt: skip
    checked = 0
    for u in range(0, small.n_users, 5):
        for i in range(0, small.n_items, 151):
            e = model.explain(small.user_map.ids[u], small.item_map.ids[i])
            if not e.contributions:
                continue
            base = model.global_mean_ + model.user_bias_[u] + model.item_bias_[i]
            got = model._score_positions(np.array([u]), np.array([i]), clip=False)[0]
            assert sum(c for _, c in e.contributions) == pytest.approx(got - base, abs=1e-9)
            checked += 1
    assert checked > 10


def test_weighted_knn_round_trips_through_a_model_file(small, tmp_path):
    w, _ = _removal_pair(small)
    for model in (fk.UserKNN(similarity="pearson_baseline", neighbours=10),
                  fk.ImplicitItemKNN(similarity="bm25")):  # fmt: skip
        model.fit(small, sample_weight=w)
        path = tmp_path / f"{type(model).__name__}.fk"
        model.save(path)
        loaded = fk.load(path)
        np.testing.assert_array_equal(loaded.seen_weights_, model.seen_weights_)
        users, items = _pairs(small, n=50)
        np.testing.assert_array_equal(loaded.predict(users, items), model.predict(users, items))
        new_items = small.item_map.ids[[0, 5, 9]]
        ratings = [4.0, 2.0, 5.0]
        a = model.recommend_new_user(new_items, ratings, k=5)
        b = loaded.recommend_new_user(new_items, ratings, k=5)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_allclose(a[1], b[1], rtol=1e-6)
        # an unweighted fit stores no weights
        assert "seen_weights_" not in type(model)().fit(small).get_state()


def test_knn_bad_weights_name_the_fit(small):
    with pytest.raises(DataError, match=r"UserKNN.fit: sample_weight must have one weight "
                       r"per training interaction \(shape \(8752,\)"):  # fmt: skip
        fk.UserKNN().fit(small, sample_weight=np.ones(3))
    bad = np.ones(len(small))
    bad[2] = -0.5
    with pytest.raises(DataError, match=r"ImplicitItemKNN.fit: sample_weight\[2\] is -0.5"):
        fk.ImplicitItemKNN().fit(small, sample_weight=bad)
    bad[2] = np.inf
    with pytest.raises(DataError, match=r"ItemKNN.fit: sample_weight\[2\] is inf"):
        fk.ItemKNN().fit(small, sample_weight=bad)
    with pytest.raises(DataError, match=r"ImplicitUserKNN.fit: sample_weight must be numbers"):
        fk.ImplicitUserKNN().fit(small, sample_weight=["a"] * len(small))
