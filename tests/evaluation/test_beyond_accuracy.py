"""Beyond-accuracy metrics against hand-worked values and an independent loop."""

import itertools
import math

import numpy as np
import pytest

import factorkit as fk


def independent(model, train, test, k):
    """Novelty, popularity percentile and ILD written out per user from the definitions."""
    counts = {}
    for i in train.item_index.tolist():
        counts[i] = counts.get(i, 0) + 1
    items = list(range(train.n_items))
    c = np.array([counts.get(i, 0) for i in items], dtype=float)
    n_users = len(set(train.user_index.tolist()))
    results = {"novelty": [], "popularity": [], "diversity": []}
    test_users = sorted(set(test.user_map.ids[test.user_index].tolist()))
    for user in test_users:
        recs, _ = model.recommend(user, k=k)
        pos = [int(train.item_map.to_index(r)[0]) for r in recs]
        results["novelty"].append(np.mean([-math.log2(max(c[p], 1) / n_users) for p in pos]))
        pct = [((c < c[p]).sum() + 0.5 * (c == c[p]).sum()) / len(c) for p in pos]
        results["popularity"].append(np.mean(pct))
        vecs = [model.item_factors_[model.item_map_.to_index(r)[0]] for r in recs]
        dis = [
            1 - a @ b / (np.linalg.norm(a) * np.linalg.norm(b))
            for a, b in itertools.combinations(vecs, 2)
        ]
        results["diversity"].append(np.mean(dis))
    return {f"{name}@{k}": float(np.mean(v)) for name, v in results.items()}


def test_beyond_accuracy_matches_independent_implementation():
    data, _ = fk.datasets.make_ratings(60, 40, 900, rank=3, random_state=1)
    train, test = fk.split.per_user(data, test_size=0.25, random_state=0)
    train = train.compact()
    model = fk.BiasedMF(factors=8, epochs=5, random_state=0).fit(train)
    names = ["novelty@5", "popularity@5", "diversity@5"]
    got = fk.evaluate(model, test, metrics=names, train=train)
    want = independent(model, train, test, 5)
    for name in names:
        assert got[name] == pytest.approx(want[name], rel=1e-6), name


def test_hand_worked_popularity_and_novelty():
    # 4 training users; item a: 4 users, b: 2 users, c: 1 user; MostPopular recommends
    # to a user who rated nothing but 'c' its unseen items a and b.
    train = fk.Interactions.from_arrays([1, 2, 3, 4, 1, 2, 4], ["a", "a", "a", "a", "b", "b", "c"])
    test = fk.Interactions.from_arrays([4], ["b"])
    model = fk.MostPopular().fit(train)
    out = fk.evaluate(model, test, metrics=["novelty@2", "popularity@2"], train=train)
    # user 4 has seen a and c, so the list is [b] only: -log2(2/4) = 1
    assert out["novelty@2"] == pytest.approx(1.0)
    # percentiles with counts (4, 2, 1): b has 1 below, itself: (1 + 0.5) / 3
    assert out["popularity@2"] == pytest.approx(0.5)
    assert math.isnan(fk.evaluate(model, test, metrics=["diversity@2"], train=train)["diversity@2"])
