"""Explanations checked by brute force: the solve's linear decomposition, leave-one-out."""

import numpy as np
import pytest

import factorkit as fk
from factorkit.exceptions import DataError, UnknownIdError
from factorkit.models._explain import explain, explain_new_user

LIKED = [1, 260, 1196, 2571, 318]


@pytest.fixture(scope="module")
def data():
    return fk.datasets.load_movielens_small()


@pytest.fixture(scope="module")
def ials(data):
    return fk.ImplicitALS(factors=16, epochs=3, random_state=0, regularization_exponent=0.5,
                          regularization=0.05).fit(data)  # fmt: skip


def test_linear_contributions_add_up_to_the_fold_in_score(ials):
    ratings = [5.0, 4.0, 3.5, 1.0, 4.5]
    targets = ials.recommend_new_user(LIKED, ratings=ratings, k=5)[0].tolist()
    explanations = explain_new_user(ials, LIKED, ratings, item=targets)
    x = ials.fold_in(LIKED, ratings=ratings).factors.astype(np.float64)
    _, rec_scores = ials.recommend_new_user(LIKED, ratings=ratings, k=5)
    for e, item, rec in zip(explanations, targets, rec_scores, strict=True):
        assert e.method == "linear" and e.item == item
        assert {i for i, _ in e.contributions} == set(LIKED)
        total = sum(c for _, c in e.contributions)
        y = ials.item_factors_[ials.item_map_.to_index([item])[0]].astype(np.float64)
        # the decomposition is exact: it sums to the score of the model's own fold-in
        assert total == pytest.approx(float(x @ y), rel=1e-4, abs=1e-6)
        assert e.score == pytest.approx(float(rec), rel=1e-4, abs=1e-6)
        values = [c for _, c in e.contributions]
        assert values == sorted(values, reverse=True)


def test_linear_matches_removing_each_items_term_from_the_solve(ials):
    """Brute force: contribution j = y_i . A^-1 (c_j q_j), with A the user's system."""
    e = explain_new_user(ials, LIKED, item=1210)
    q = ials.item_factors_.astype(np.float64)
    pos = ials.item_map_.to_index(LIKED)
    c = 1.0 + ials.alpha * np.ones(len(pos))
    lam = ials.regularization * (len(pos) + len(q)) ** ials.regularization_exponent
    a = (
        q.T @ q
        + sum((cj - 1.0) * np.outer(q[p], q[p]) for cj, p in zip(c, pos, strict=True))
        + lam * np.eye(q.shape[1])
    )
    y = q[ials.item_map_.to_index([1210])[0]]
    want = {item: float(y @ np.linalg.solve(a, cj * q[p]))
            for item, cj, p in zip(LIKED, c, pos, strict=True)}  # fmt: skip
    for item, value in e.contributions:
        assert value == pytest.approx(want[item], rel=1e-4, abs=1e-7)


def test_leave_one_out_for_explicit_models(data):
    model = fk.BiasedMF(factors=8, epochs=3, random_state=0).fit(data)
    ratings = [4.0, 5.0, 2.0]
    items = LIKED[:3]
    e = explain_new_user(model, items, ratings, item=1210)
    assert e.method == "leave-one-out"

    def score(its, rs):  # by hand through the public API
        f = model.fold_in(its, ratings=rs)
        i = model.item_map_.to_index([1210])[0]
        dot = f.factors @ model.item_factors_[i]
        return model.global_mean_ + f.bias + model.item_bias_[i] + dot

    full = score(items, ratings)
    assert e.score == pytest.approx(full, rel=1e-6)
    for item, value in e.contributions:
        j = items.index(item)
        rest = [x for k, x in enumerate(items) if k != j]
        rest_r = [x for k, x in enumerate(ratings) if k != j]
        assert value == pytest.approx(full - score(rest, rest_r), rel=1e-5, abs=1e-6)


def test_known_user_is_explained_by_their_training_items(ials):
    e = explain(ials, 1, 1210)
    u = ials.user_map_.to_index([1])[0]
    lo, hi = ials.seen_indptr_[u], ials.seen_indptr_[u + 1]
    assert len(e.contributions) == hi - lo
    assert sum(c for _, c in e.contributions) == pytest.approx(e.score, rel=1e-6)


def test_errors_name_the_problem(ials, data):
    with pytest.raises(UnknownIdError, match="unknown item id 424242"):
        explain_new_user(ials, LIKED, item=424242)
    with pytest.raises(UnknownIdError, match="unknown user id 99999"):
        explain(ials, 99999, 1)
    with pytest.raises(DataError, match="2 items but 1 ratings; pass one rating per item"):
        explain_new_user(ials, [1, 2], [1.0], item=3)


def test_rating_models_explain_a_known_user_by_their_training_ratings(data):
    model = fk.BaselineOnly().fit(data)
    e = model.explain(1, 1210)
    lo, hi = model.seen_indptr_[0], model.seen_indptr_[1]
    assert e.method == "leave-one-out" and len(e.contributions) == hi - lo
    ratings = model.seen_values_[lo:hi].astype(float).tolist()
    items = model.item_map_.ids[model.seen_indices_[lo:hi]].tolist()
    assert e.score == pytest.approx(model.explain_new_user(items, ratings, 1210).score)


def test_cli_recommend_explain(ials, tmp_path, capsys):
    from factorkit.cli import main

    path = tmp_path / "m.fk"
    ials.save(path)
    assert main(["recommend", str(path), "--user", "1", "-k", "2", "--explain"]) == 0
    out = capsys.readouterr().out
    assert out.count("because of") == 2 and "[linear]" in out


def test_linear_stays_exact_after_partial_fit_adds_items(ials, tmp_path):
    path = tmp_path / "m.fk"
    ials.save(path)
    model = fk.load(path)
    explain_new_user(model, LIKED, item=1210)  # caches this model's item Gram
    new = fk.Interactions.from_arrays([1, 2, 3], [10**7, 10**7, 10**7], [1.0, 1.0, 1.0])
    model.partial_fit(new)
    e = explain_new_user(model, [10**7, 1, 260], item=1210)
    x = model.fold_in([10**7, 1, 260]).factors.astype(np.float64)
    y = model.item_factors_[model.item_map_.to_index([1210])[0]].astype(np.float64)
    assert e.method == "linear"
    assert sum(c for _, c in e.contributions) == pytest.approx(float(x @ y), rel=1e-4, abs=1e-6)
