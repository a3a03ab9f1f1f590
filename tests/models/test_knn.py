"""Neighbour models: the check suite, Surprise's formulas on a brute-force reference,
accuracy ranges on MovieLens small, top-N, similar, fold-in, explain and bad input."""

import warnings

import numpy as np
import pytest

import factorkit as fk
from factorkit.exceptions import DataWarning, InvalidParameterError
from factorkit.testing import estimator_checks

MODELS = [
    fk.ItemKNN(),
    fk.UserKNN(centering="mean", similarity="pearson"),
    fk.ImplicitItemKNN(),
    fk.ImplicitUserKNN(similarity="bm25"),
]


@pytest.mark.parametrize(
    "check",
    [c for m in MODELS for c in estimator_checks(m)],
    ids=lambda c: c.name,
)
def test_estimator_checks(check):
    check()


@pytest.fixture(scope="module")
def ml():
    data = fk.datasets.load_movielens_small()
    train, test = fk.split.random(data, test_size=0.2, random_state=0)
    return train, test


def _rmse(model, test):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a few test ids are unknown: fallback, as Surprise
        return fk.evaluate(model, test, metrics=["rmse"])["rmse"]


def _surprise_reference(r, side, k, centering, mu=None):
    """Surprise's KNNBasic / KNNWithMeans with cosine over the shared support, by brute
    force on a dense matrix (NaN = unrated), all neighbours kept."""
    m = r if side == "user" else r.T  # rows: the entities compared
    n = len(m)
    sims = np.zeros((n, n))
    for a in range(n):
        for b in range(n):
            both = ~np.isnan(m[a]) & ~np.isnan(m[b])
            x, y = m[a, both], m[b, both]
            den = np.sqrt((x * x).sum() * (y * y).sum())
            sims[a, b] = (x @ y) / den if a != b and den > 0 else 0.0
    means = np.nanmean(m, axis=1)
    out = np.full(r.shape, np.nan)
    for u in range(r.shape[0]):
        for i in range(r.shape[1]):
            t, q = (u, i) if side == "user" else (i, u)
            cands = [(sims[t, v], m[v, q], v) for v in range(n) if not np.isnan(m[v, q])]
            cands = [c for c in sorted(cands, key=lambda c: -c[0])[:k] if c[0] > 0]
            centre = means if centering == "mean" else np.zeros(n)
            den = sum(s for s, _, _ in cands)
            if den > 0:
                out[u, i] = centre[t] + sum(s * (x - centre[v]) for s, x, v in cands) / den
            else:
                out[u, i] = means[t] if centering == "mean" else mu
    return out


@pytest.mark.parametrize("cls", [fk.ItemKNN, fk.UserKNN])
@pytest.mark.parametrize("centering", ["none", "mean"])
def test_predictions_follow_surprise_formulas(cls, centering):
    rng = np.random.default_rng(3)
    dense = rng.integers(1, 6, size=(12, 9)).astype(float)
    dense[rng.random(dense.shape) < 0.45] = np.nan
    users, items = np.nonzero(~np.isnan(dense))
    data = fk.Interactions.from_arrays(users, items, dense[users, items])
    model = cls(similarity="cosine", centering=centering, neighbours=3, shrinkage=0.0,
                max_neighbours=100).fit(data)  # fmt: skip
    mu = float(np.nanmean(dense))
    ref = _surprise_reference(dense, "item" if cls is fk.ItemKNN else "user", 3, centering, mu)
    uu, ii = np.meshgrid(np.arange(12), np.arange(9), indexing="ij")
    ours = model._score_positions(
        model.user_map_.lookup(uu.ravel()), model.item_map_.lookup(ii.ravel()), clip=False
    )
    np.testing.assert_allclose(ours.reshape(12, 9), ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "model",
    [
        fk.ItemKNN(similarity="msd", max_neighbours=None),
        fk.UserKNN(similarity="pearson", max_neighbours=None),
        fk.ItemKNN(similarity="cosine", max_neighbours=7),
        fk.ImplicitItemKNN(similarity="bm25", neighbours=5),
    ],
    ids=lambda m: type(m).__name__,
)
def test_pairs_path_gives_the_per_row_table(model):
    """When the pairs fit in memory a fit computes each pair once (mirrored,
    radix-sorted rows): the same neighbours, similarities and order as each row against
    every entity (weighted too)."""
    train, _, _ = fk.testing.checkerboard(50, 40, random_state=6)
    w = np.random.default_rng(0).choice([0.0, 0.5, 1.0, 3.0], len(train))
    for weights in (None, w):
        model.fit(train, sample_weight=weights)
        n = len(model._map(model._side))
        rows = np.arange(n)
        per_row = model._neighbours(model._sim_query(model._side, rows), rows, model._keep())
        for a, b in zip(model._nbr(), per_row, strict=True):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("cls", [fk.ItemKNN, fk.UserKNN])
def test_every_neighbour_kept_predicts_before_the_table_is_sorted(cls):
    """A fit that keeps every neighbour predicts ratings from its unsorted rows; the
    table read through the model's attributes (and so its state) is sorted most similar
    first, ties lower position first; predictions are the same bits either way, weighted
    or not."""
    train, _, _ = fk.testing.checkerboard(60, 45, random_state=3)
    w = np.random.default_rng(1).choice([0.0, 0.5, 1.0, 2.0], len(train))
    u, i = np.meshgrid(np.arange(60), np.arange(45), indexing="ij")
    users, items = train.user_map.ids[u.ravel()], train.item_map.ids[i.ravel()]
    for weights in (None, w):
        model = cls(similarity="msd", centering="mean", max_neighbours=None, neighbours=5)
        model.fit(train, sample_weight=weights)
        assert not model._table[3]  # rows left in position order by the fit
        before = model.predict(users, items)
        side = model._side
        indptr = getattr(model, f"{side}_neighbour_indptr_")
        indices = getattr(model, f"{side}_neighbour_indices_")
        sims = getattr(model, f"{side}_neighbour_sims_")
        assert model._table[3]
        for r in range(len(indptr) - 1):
            a, b = indptr[r], indptr[r + 1]
            order = np.lexsort((indices[a:b], -sims[a:b].astype(np.float64)))
            np.testing.assert_array_equal(order, np.arange(b - a))
        np.testing.assert_array_equal(model.predict(users, items), before)
        copy = cls(similarity="msd", centering="mean", max_neighbours=None, neighbours=5)
        copy.set_state(model.get_state())
        np.testing.assert_array_equal(copy.predict(users, items), before)


def test_item_knn_accuracy_and_top_n(ml):
    train, test = ml
    model = fk.ItemKNN().fit(train)
    # BaselineOnly reaches 0.86-0.87 on this split; Surprise's KNNBaseline ~0.875
    assert 0.83 < _rmse(model, test) < 0.865
    items, scores = model.recommend(1, k=10)
    assert len(items) == 10 and (np.diff(scores) <= 1e-6).all()
    seen = set(train.user_items(1)[0].tolist())
    assert not seen & set(items.tolist())
    sim_items, sims = model.similar_items(1, k=5)
    assert len(sim_items) == 5 and 1 not in sim_items.tolist() and (np.diff(sims) <= 0).all()


def test_ranking_scores_are_unclipped_predictions():
    train, _, _ = fk.testing.checkerboard(30, 20, random_state=2)
    for cls in (fk.ItemKNN, fk.UserKNN):
        model = cls(centering="mean", similarity="cosine").fit(train)
        u = model.user_map_.ids[0]
        items, scores = model.recommend(u, k=5)
        pos_u = model.user_map_.lookup([u] * len(items))
        pos_i = model.item_map_.lookup(items)
        np.testing.assert_allclose(scores, model._score_positions(pos_u, pos_i, False), 1e-5)


def test_user_knn_accuracy(ml):
    train, test = ml
    assert 0.85 < _rmse(fk.UserKNN().fit(train), test) < 0.885


def test_implicit_recall_beats_popularity(ml):
    train, test = ml
    liked, held = train.to_implicit(min_value=4.0), test.to_implicit(min_value=4.0)
    popular = fk.evaluate(fk.MostPopular().fit(liked), held, ["recall@20"], train=liked)
    for model in (fk.ImplicitItemKNN(), fk.ImplicitUserKNN(neighbours=50)):
        got = fk.evaluate(model.fit(liked), held, ["recall@20"], train=liked)["recall@20"]
        assert got > popular["recall@20"] + 0.02, (type(model).__name__, got)


def test_new_user_matches_known_user_and_explain():
    train, _, _ = fk.testing.checkerboard(40, 30, holdout=0.2, random_state=4)
    for cls in (fk.ItemKNN, fk.UserKNN, fk.ImplicitItemKNN, fk.ImplicitUserKNN):
        model = cls().fit(train)
        u = model.user_map_.ids[3]
        items, ratings = train.user_items(u)
        items = train.item_map.to_ids(items) if items.dtype != object else items
        explicit = fk.get_tags(model).explicit
        got, _ = model.recommend_new_user(items, ratings if explicit else None, k=3)
        assert len(got) == 3 and not set(got.tolist()) & set(items.tolist())
        target = got[0]
        e = model.explain(u, target)
        assert e.item == target and e.contributions
        if cls is fk.ItemKNN:
            # item-based: the new user is scored exactly as the known user
            np.testing.assert_array_equal(got, model.recommend(u, k=3)[0])
            assert e.method == "neighbours"
            # the explained score is the unclipped prediction
            assert abs(min(e.score, 5.0) - model.predict(u, target)[0]) < 1e-5
            assert {i for i, _ in e.contributions} <= set(items.tolist())
        if not explicit:
            assert abs(sum(c for _, c in e.contributions) - e.score) < 1e-4
        if cls in (fk.UserKNN, fk.ImplicitUserKNN):
            assert e.method == "neighbour-users"
            assert {v for v, _ in e.contributions} <= set(model.user_map_.ids.tolist())


def test_similar_on_both_sides():
    train, _, _ = fk.testing.checkerboard(40, 30, random_state=5)
    for cls in (fk.ItemKNN, fk.UserKNN):
        model = cls(similarity="pearson", shrinkage=0.0).fit(train)
        items, sims = model.similar_items("i0", k=5)
        assert all(int(i[1:]) < 15 for i in items) and (sims > 0).all()
        users, _ = model.similar_users("u0", k=5)
        assert "u0" not in users.tolist() and all(int(u[1:]) < 20 for u in users)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"similarity": "jaccard"}, "The 'similarity' parameter of ItemKNN must be one of"),
        ({"neighbours": 0}, "The 'neighbours' parameter of ItemKNN must be an int >= 1; got 0"),
        ({"shrinkage": -1.0}, "The 'shrinkage' parameter of ItemKNN must be a number >= 0"),
        ({"centering": "z"}, "The 'centering' parameter of ItemKNN must be one of 'baseline'"),
        ({"max_neighbours": 0}, "'max_neighbours' parameter of ItemKNN must be"),
    ],
)
def test_bad_parameters(params, message):
    data = fk.Interactions.from_arrays(["a", "b"], [1, 2], [4.0, 3.0])
    with pytest.raises(InvalidParameterError, match=message.replace("(", r"\(")):
        fk.ItemKNN(**params).fit(data)
    with pytest.raises(InvalidParameterError, match="'similarity' parameter of ImplicitItemKNN"):
        fk.ImplicitItemKNN(similarity="pearson").fit(data)


def test_tags_are_per_class():
    assert fk.get_tags(fk.ItemKNN).cli_name == "item-knn" and fk.get_tags(fk.ItemKNN).explicit
    assert fk.get_tags(fk.UserKNN).cli_name == "user-knn"
    assert fk.get_tags(fk.ImplicitItemKNN).feedback == "implicit"
    tags = fk.get_tags(fk.ImplicitUserKNN)
    assert tags.can_find_similar and tags.can_fold_in and not tags.has_factors


def test_long_fit_warns_with_the_estimate_and_shows_progress(monkeypatch, capsys):
    """A fit too large for the pairs path that meets many co-ratings says how many, what
    dominates them and what to do, and (progress=True) shows a bar over the rows; the
    table is the one the pairs path gives."""
    import factorkit.models.knn as knn

    train, _, _ = fk.testing.checkerboard(50, 40, random_state=6)
    expected = fk.UserKNN(max_neighbours=5).fit(train)._nbr()
    monkeypatch.setattr(knn, "_PAIRS_BUDGET", 0)
    monkeypatch.setattr(knn, "_LONG_FIT_CORATINGS", 10.0)
    with pytest.warns(DataWarning) as caught:
        model = fk.UserKNN(max_neighbours=5, progress=True).fit(train)
    message = str(caught[0].message)
    assert message.startswith("UserKNN.fit: 50 users against each other meet ")
    assert "co-ratings (pairs of users sharing an item" in message
    assert "most-rated items (1%) make" in message and "Faster: ItemKNN (" in message
    assert "UserKNN fit" in capsys.readouterr().err  # the bar, on stderr
    for a, b in zip(model._nbr(), expected, strict=True):
        np.testing.assert_array_equal(a, b)
    monkeypatch.setattr(knn, "_LONG_FIT_CORATINGS", 1e30)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # under the threshold: no warning
        fk.UserKNN(max_neighbours=5).fit(train)
