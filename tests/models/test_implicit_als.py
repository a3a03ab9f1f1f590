import time

import numpy as np
import pandas as pd
import pytest

import factorkit as fk
from factorkit import datasets, split
from factorkit.data.synthetic import make_implicit
from factorkit.exceptions import DataError, InvalidParameterError, NotFittedError
from factorkit.models.implicit_als import ImplicitALS
from factorkit.testing import checkerboard_implicit, estimator_checks


def _ranking(model, train, test, k=20):
    """recall@k and NDCG@k of ``test`` by fk.evaluate (training items excluded)."""
    res = fk.evaluate(model, test, metrics=[f"recall@{k}", f"ndcg@{k}"], train=train)
    return float(res[f"recall@{k}"]), float(res[f"ndcg@{k}"])


def _local_ranking(model, test, k):
    """The same metrics by hand, for test sets built with their own id maps."""
    users = np.unique(test.user_index)
    top, _ = model.recommend(test.user_map.to_ids(users), k=k)
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    recall, ndcg = [], []
    for row, u in zip(top, users, strict=True):
        lo, hi = test.indptr[u], test.indptr[u + 1]
        truth = set(test.item_map.to_ids(test.item_index[lo:hi]).tolist())
        hit = np.array([x in truth for x in row.tolist()])
        recall.append(hit.sum() / len(truth))
        ndcg.append(hit @ disc / disc[: min(len(truth), k)].sum())
    return float(np.mean(recall)), float(np.mean(ndcg))


def _popularity(train, test, k=20):
    """recall@k / NDCG@k of recommending the most popular unseen training items."""
    order = np.argsort(-train.item_counts, kind="stable")
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    recall, ndcg = [], []
    for u in np.unique(test.user_index):
        seen = set(train.item_index[train.indptr[u] : train.indptr[u + 1]].tolist())
        top = [i for i in order[: k + len(seen)].tolist() if i not in seen][:k]
        truth = set(test.item_index[test.indptr[u] : test.indptr[u + 1]].tolist())
        hit = np.array([i in truth for i in top])
        recall.append(hit.sum() / len(truth))
        ndcg.append(hit @ disc / disc[: min(len(truth), k)].sum())
    return float(np.mean(recall)), float(np.mean(ndcg))


@pytest.fixture(scope="module")
def positives():
    """MovieLens small, ratings >= 4 as implicit positives."""
    data = datasets.load_movielens_small()
    liked = data.take(data.values >= 4.0)
    return fk.Interactions.from_arrays(
        liked.user_map.to_ids(liked.user_index), liked.item_map.to_ids(liked.item_index)
    )


@pytest.fixture(scope="module")
def ml_split(positives):
    return split.per_user(positives, test_size=0.2, random_state=0)


@pytest.fixture(scope="module")
def ml_model(ml_split):
    return ImplicitALS(random_state=0).fit(ml_split[0])


@pytest.mark.parametrize(
    "check",
    estimator_checks(ImplicitALS(factors=8, epochs=8, random_state=0)),
    ids=lambda c: c.name,
)
def test_implicit_als_checks(check):
    check()


@pytest.mark.parametrize("solver", ["cg", "cholesky"])
def test_checkerboard_held_out_item_at_rank_1(solver):
    train, test, _ = checkerboard_implicit()
    model = ImplicitALS(factors=4, epochs=10, solver=solver, random_state=0).fit(train)
    users = test.user_map.to_ids(test.user_index)
    items = test.item_map.to_ids(test.item_index)
    top, scores = model.recommend(users, k=3)
    np.testing.assert_array_equal(top[:, 0], items)
    assert (scores[:, 0] > scores[:, 1]).all()


def test_movielens_beats_popularity_by_a_wide_margin(ml_split, ml_model):
    train, test = ml_split
    recall, ndcg = _ranking(ml_model, train, test)
    pop_recall, pop_ndcg = _popularity(train, test)
    # measured: ImplicitALS 0.273 / 0.270, popularity 0.153 / 0.152
    assert recall >= 1.3 * pop_recall, (recall, pop_recall)
    assert ndcg >= 1.3 * pop_ndcg, (ndcg, pop_ndcg)
    assert 0.22 < recall < 0.35 and 0.22 < ndcg < 0.35, (recall, ndcg)


def test_cholesky_as_accurate_and_cg_converges_to_it(ml_split):
    train, test = ml_split
    chol = ImplicitALS(solver="cholesky", epochs=10, random_state=0).fit(train)
    cg = ImplicitALS(solver="cg", epochs=10, random_state=0).fit(train)
    r_chol, n_chol = _ranking(chol, train, test)
    r_cg, n_cg = _ranking(cg, train, test)
    assert abs(r_chol - r_cg) < 0.01 and abs(n_chol - n_cg) < 0.01
    # the exact solver minimises each half-step; CG ends within 1% of its objective
    assert chol.history_["loss"].iloc[-1] <= cg.history_["loss"].iloc[-1] * 1.01
    assert cg.history_["loss"].iloc[-1] <= chol.history_["loss"].iloc[-1] * 1.01


def test_history_loss_is_the_exact_objective(ml_split):
    train = ml_split[0].select_users(ml_split[0].user_map.ids[:80])
    for solver in ("cg", "cholesky"):
        m = ImplicitALS(factors=6, epochs=3, alpha=3.0, unobserved_weight=0.5, solver=solver)
        m.set_params(regularization=2.0, regularization_exponent=0.5, random_state=0).fit(train)
        data = train.compact()
        x = m.user_factors_.astype(np.float64)
        y = m.item_factors_.astype(np.float64)
        s = x @ y.T
        c = np.full(s.shape, 0.5)
        p = np.zeros(s.shape)
        c[data.user_index, data.item_index] = 1 + 3.0 * data.values
        p[data.user_index, data.item_index] = 1.0
        lam_u = 2.0 * (data.user_counts + 0.5 * data.n_items) ** 0.5
        lam_i = 2.0 * (data.item_counts + 0.5 * data.n_users) ** 0.5
        obj = (c * (p - s) ** 2).sum() + lam_u @ (x * x).sum(1) + lam_i @ (y * y).sum(1)
        assert m.history_["loss"].iloc[-1] == pytest.approx(obj / len(data), rel=1e-4)
        assert m.history_["loss"].is_monotonic_decreasing


def test_deterministic_and_independent_of_threads(ml_split):
    train = ml_split[0]
    a = ImplicitALS(epochs=3, random_state=7, n_threads=1).fit(train)
    b = ImplicitALS(epochs=3, random_state=7, n_threads=1).fit(train)
    c = ImplicitALS(epochs=3, random_state=7, n_threads=2).fit(train)
    for other in (b, c):
        np.testing.assert_array_equal(a.user_factors_, other.user_factors_)
        np.testing.assert_array_equal(a.item_factors_, other.item_factors_)
        np.testing.assert_array_equal(a.history_["loss"], other.history_["loss"])
    d = ImplicitALS(epochs=3, random_state=8, n_threads=1).fit(train)
    assert not np.array_equal(a.item_factors_, d.item_factors_)


def test_confidence_options_and_counts():
    data, _ = make_implicit(300, 200, 6000, rank=5, counts=True, random_state=0)
    train, test = split.per_user(data, test_size=0.2, random_state=0)
    _, pop_ndcg = _popularity(train, test)
    for kw in ({"confidence": "linear"}, {"confidence": "log", "alpha": 4.0, "epsilon": 0.5}):
        model = ImplicitALS(factors=16, epochs=8, random_state=0, **kw).fit(train)
        _, ndcg = _ranking(model, train, test)
        # measured: linear 0.368, log 0.346, popularity 0.246
        assert ndcg > 1.3 * pop_ndcg, (kw, ndcg, pop_ndcg)


def test_zero_values_count_as_unobserved_but_are_excluded():
    train, _, _ = checkerboard_implicit(20, 10)
    df = train.to_pandas()
    df["value"] = 1.0
    extra = pd.DataFrame({"user": ["u0"], "item": ["i9"], "value": [0.0]})  # off-block cell
    with_zero = fk.Interactions.from_pandas(
        pd.concat([df, extra]), user="user", item="item", rating="value", implicit=True
    )
    a = ImplicitALS(factors=3, epochs=4, solver="cholesky", random_state=0).fit(train)
    b = ImplicitALS(factors=3, epochs=4, solver="cholesky", random_state=0).fit(with_zero)
    np.testing.assert_allclose(a.predict(["u1"], ["i2"]), b.predict(["u1"], ["i2"]), rtol=1e-5)
    assert "i9" not in b.recommend("u0", k=10)[0]


def test_negative_values_are_rejected():
    data = fk.Interactions.from_arrays([1, 1, 2], [1, 2, 1], [1.0, -2.0, 1.0])
    with pytest.raises(DataError, match=r"ImplicitALS.fit: .* -2.0; implicit feedback must be"):
        ImplicitALS(epochs=1).fit(data)


def test_invalid_options_are_named():
    data = fk.Interactions.from_arrays([1, 2], [1, 2])
    with pytest.raises(InvalidParameterError, match="'solver' parameter of ImplicitALS"):
        ImplicitALS(solver="lu").fit(data)
    with pytest.raises(InvalidParameterError, match="'confidence' parameter of ImplicitALS"):
        ImplicitALS(confidence="exp").fit(data)
    with pytest.raises(InvalidParameterError, match="'unobserved_weight' parameter"):
        ImplicitALS(unobserved_weight=0.0).fit(data)


def test_predict_is_the_raw_dot_product(ml_model):
    users = ml_model.user_map_.ids[:5]
    items = ml_model.item_map_.ids[:5]
    expect = np.einsum(
        "ij,ij->i",
        ml_model.user_factors_[:5].astype(np.float64),
        ml_model.item_factors_[:5].astype(np.float64),
    )
    np.testing.assert_allclose(ml_model.predict(users, items), expect)
    items_r, scores = ml_model.recommend(users[0], k=5)
    np.testing.assert_allclose(scores, ml_model.predict(users[0], items_r), rtol=1e-5)


def test_fold_in_reproduces_an_exact_user_solve(ml_split):
    train = ml_split[0]
    model = ImplicitALS(solver="cholesky", epochs=4, random_state=0).fit(train)
    user = train.user_map.ids[3]
    items, _ = train.user_items(user)
    # the last half-step is the items', so refold with one more user solve by hand:
    folded = model.fold_in(items)
    y = model.item_factors_.astype(np.float64)
    c = np.ones(len(y))
    c[model.item_map_.to_index(items)] = 1 + model.alpha
    p = (c > 1).astype(float)
    a = y.T @ (c[:, None] * y) + model.regularization * np.eye(y.shape[1])
    expect = np.linalg.solve(a, y.T @ (c * p))
    np.testing.assert_allclose(folded.factors, expect, rtol=1e-4, atol=1e-5)
    assert folded.bias == 0.0
    # and a user present in training folds in close to their learned factors (those were
    # solved against the previous epoch's item factors)
    learned = model.user_factors_[3]
    cosine = folded.factors @ learned / np.linalg.norm(folded.factors) / np.linalg.norm(learned)
    assert cosine > 0.97, cosine


def test_fold_in_ratings_and_recommend_new_user(ml_model):
    items = ml_model.item_map_.ids[:20]
    plain = ml_model.fold_in(items)
    weighted = ml_model.fold_in(items, ratings=np.arange(1, 21))
    assert not np.allclose(plain.factors, weighted.factors)
    rec, scores = ml_model.recommend_new_user(items, k=10)
    assert len(rec) == 10 and not set(rec.tolist()) & set(items.tolist())
    assert (np.diff(scores) <= 0).all()
    with pytest.raises(DataError, match="ratings must be >= 0"):
        ml_model.fold_in(items[:2], ratings=[1.0, -1.0])
    with pytest.raises(NotFittedError):
        ImplicitALS().fold_in(items)


def test_fold_in_takes_well_under_a_millisecond_or_so(ml_model):
    items = ml_model.item_map_.ids[100:120]
    ml_model.fold_in(items)
    times = []
    for _ in range(50):
        t = time.perf_counter()
        ml_model.fold_in(items)
        times.append(time.perf_counter() - t)
    assert np.median(times) < 0.02  # generous: a shared CI machine; ~0.2 ms measured


def test_partial_fit_adds_users_and_items_and_updates_touched_rows(positives):
    df = positives.to_pandas()
    rng = np.random.default_rng(0)
    users = df["user"].unique()
    counts = df["item"].value_counts()
    new_users = set(rng.choice(users, 40, replace=False).tolist())
    new_items = set(rng.choice(counts.index[counts >= 5], 30, replace=False).tolist())
    old_mask = ~df["user"].isin(new_users) & ~df["item"].isin(new_items)
    old = fk.Interactions.from_pandas(df[old_mask], user="user", item="item")
    new = fk.Interactions.from_pandas(df[~old_mask], user="user", item="item")
    model = ImplicitALS(epochs=8, random_state=0).fit(old)
    x0, y0 = model.user_factors_.copy(), model.item_factors_.copy()
    n_u, n_i = len(x0), len(y0)
    model.partial_fit(new)
    # rows new_data does not touch keep their factors exactly; touched known rows move
    for name, before, ids in (
        ("user", x0, new.user_map.ids[new.user_counts > 0]),
        ("item", y0, new.item_map.ids[new.item_counts > 0]),
    ):
        touched = getattr(model, f"{name}_map_").lookup(ids)
        touched = touched[touched < len(before)]
        keep = np.ones(len(before), bool)
        keep[touched] = False
        after = getattr(model, f"{name}_factors_")[: len(before)]
        np.testing.assert_array_equal(after[keep], before[keep])
        assert len(touched) and not np.array_equal(after[touched], before[touched])
    assert len(model.user_map_) == n_u + 40
    added_items = set(new.item_map.ids.tolist()) - set(old.item_map.ids.tolist())
    assert len(model.item_map_) == n_i + len(added_items) and len(added_items) >= 30
    assert np.abs(model.user_factors_[n_u:]).sum(1).min() > 0
    # new users: their interactions are excluded and the rest ranks far above popularity
    nu = sorted(new_users)
    rec, _ = model.recommend(nu, k=20)
    for u, row in zip(nu, rec, strict=True):
        seen = set(df.loc[df["user"] == u, "item"].tolist())
        assert not seen & set(row.tolist())
    # a known user's new interactions join the seen items
    known_user = df.loc[df["item"].isin(new_items) & ~df["user"].isin(new_users), "user"].iloc[0]
    seen = set(df.loc[df["user"] == known_user, "item"].tolist())
    assert not seen & set(model.recommend(known_user, k=50)[0].tolist())
    # sensible: a held-out part of the new users' items is found well above chance
    model2 = ImplicitALS(epochs=8, random_state=0).fit(old)
    nu_df = df[df["user"].isin(new_users) & ~df["item"].isin(new_items)]
    hold = rng.random(len(nu_df)) < 0.2
    model2.partial_fit(fk.Interactions.from_pandas(nu_df[~hold], user="user", item="item"))
    test = fk.Interactions.from_pandas(nu_df[hold], user="user", item="item")
    recall, _ = _local_ranking(model2, test, 20)
    assert recall > 0.15, recall


def test_partial_fit_on_unfitted_model_fits(ml_split):
    model = ImplicitALS(epochs=2, random_state=0).partial_fit(ml_split[0])
    assert model.user_factors_.shape == (ml_split[0].compact().n_users, 64)


def test_early_stopping_on_validation_ndcg(ml_split):
    train, test = ml_split
    model = ImplicitALS(epochs=12, early_stopping=2, random_state=0).fit(train, validation=test)
    hist = model.history_
    assert "val_ndcg_loss" in hist.columns
    best = hist["val_ndcg_loss"].min()
    assert 0.6 < best < 0.8  # 1 - NDCG@20
    _, ndcg = _ranking(model, train, test)
    assert 1 - ndcg == pytest.approx(best, abs=1e-6)


def test_save_load_round_trip(ml_model, tmp_path):
    path = tmp_path / "ials.fk"
    ml_model.save(path)
    loaded = fk.load(path)
    users = ml_model.user_map_.ids[:10]
    np.testing.assert_array_equal(loaded.recommend(users, k=10)[0], ml_model.recommend(users)[0])
    items = ml_model.item_map_.ids[:5]
    np.testing.assert_array_equal(loaded.fold_in(items).factors, ml_model.fold_in(items).factors)


def test_n_threads_set_after_fit_applies_to_recommend(ml_split):
    """set_params(n_threads=...) on a fitted model changes how many threads rank, not the
    ranking (multi-threaded BLAS may sum a score's terms in another order: last bit)."""
    model = ImplicitALS(factors=16, epochs=2, random_state=0).fit(ml_split[0])
    users = model.user_map_.ids
    model.set_params(n_threads=1)
    one_items, one_scores = model.recommend(users, k=10)
    model.set_params(n_threads=2)
    two_items, two_scores = model.recommend(users, k=10)
    np.testing.assert_array_equal(one_items, two_items)
    np.testing.assert_allclose(one_scores, two_scores, rtol=1e-6)
