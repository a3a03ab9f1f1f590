"""evaluate() and cross_validate() with rating and ranking metrics mixed."""

import numpy as np
import pandas as pd
import pytest

import factorkit as fk
from factorkit.evaluation import available_metrics, parse_metrics
from factorkit.exceptions import InvalidParameterError
from factorkit.models.popular import MostPopular


@pytest.fixture(scope="module")
def ml_split():
    data = fk.datasets.load_movielens_small()
    return fk.split.per_user(data, test_size=0.2, random_state=0)


@pytest.fixture(scope="module")
def baseline(ml_split):
    return fk.BaselineOnly().fit(ml_split[0])


def test_rating_metrics_unchanged(ml_split, baseline):
    _, test = ml_split
    got = fk.evaluate(baseline, test)
    assert list(got) == ["rmse", "mae"]
    users = test.user_map.ids[test.user_index]
    items = test.item_map.ids[test.item_index]
    err = baseline.predict(users, items) - test.values
    assert got["rmse"] == pytest.approx(np.sqrt(np.mean(err**2)))
    assert got["mae"] == pytest.approx(np.mean(np.abs(err)))
    assert fk.evaluate(baseline, test, "rmse") == {"rmse": got["rmse"]}


def test_mixed_metrics_keep_the_requested_order(ml_split, baseline):
    train, test = ml_split
    metrics = ["ndcg@10", "rmse", "auc", "coverage@10", "mae"]
    got = fk.evaluate(baseline, test, metrics, train=train)
    assert list(got) == metrics
    assert got["rmse"] == fk.evaluate(baseline, test, ["rmse"])["rmse"]
    assert got["ndcg@10"] == fk.evaluate(baseline, test, ["ndcg@10"])["ndcg@10"]


def test_per_user_frame_with_rating_and_ranking_metrics(ml_split, baseline):
    _, test = ml_split
    summary, frame = fk.evaluate(
        baseline, test, ["rmse", "recall@10", "coverage@10"], relevance_threshold=4.0,
        per_user=True,
    )  # fmt: skip
    assert list(frame.columns) == ["user", "rmse", "recall@10", "n_relevant", "known"]
    # rows: every test user (rmse); recall is NaN for users with no item rated >= 4
    assert len(frame) == len(np.unique(test.user_index))
    skipped = frame["n_relevant"] == 0
    assert skipped.any() and frame.loc[skipped, "recall@10"].isna().all()
    assert frame["recall@10"].mean() == pytest.approx(summary["recall@10"])
    # per-user RMSE is the user's own error
    df = test.to_pandas()
    first = frame.iloc[0]
    mine = df[df["user"] == first["user"]]
    pred = baseline.predict(mine["user"].to_numpy(), mine["item"].to_numpy())
    assert first["rmse"] == pytest.approx(np.sqrt(np.mean((pred - mine["rating"]) ** 2)))


def test_per_user_frame_rating_only(ml_split, baseline):
    _, test = ml_split
    _, frame = fk.evaluate(baseline, test, ["mae"], per_user=True)
    assert list(frame.columns) == ["user", "mae"]
    assert isinstance(frame, pd.DataFrame) and len(frame) == test.n_users


def test_cross_validate_accepts_ranking_metrics():
    data = fk.datasets.load_movielens_small()
    res = fk.cross_validate(
        MostPopular(), data, cv=2, metrics=["ndcg@10", "auc"], relevance_threshold=4.0
    )
    assert list(res.folds.columns) == ["ndcg@10", "auc", "fit_time", "test_time"]
    assert (res["auc"] > 0.8).all() and (res["ndcg@10"] > 0.05).all()
    with pytest.raises(InvalidParameterError, match=r"unknown metric \(metric 'ndgc@10'\)"):
        fk.cross_validate(MostPopular(), data, cv=2, metrics=["ndgc@10"])


def test_movielens_small_figures(ml_split, baseline):
    # every test interaction relevant; fixed split, so the figures are exact
    train, test = ml_split
    pop = MostPopular().fit(train)
    metrics = ["recall@20", "ndcg@20", "auc", "coverage@20"]
    got = fk.evaluate(pop, test, metrics, train=train)
    assert 0.10 < got["recall@20"] < 0.14
    assert 0.16 < got["ndcg@20"] < 0.21
    assert 0.86 < got["auc"] < 0.92
    assert got["coverage@20"] < 0.02  # a handful of items for everybody
    # item biases reward obscure well-rated films: a weak top-N model
    base = fk.evaluate(baseline, test, metrics, train=train)
    assert base["recall@20"] < got["recall@20"] and base["auc"] < got["auc"]


def test_available_metrics_and_parse():
    assert available_metrics() == [
        "rmse", "mae", "precision@k", "recall@k", "ndcg@k", "map@k", "mrr@k", "hit_rate@k",
        "auc", "coverage@k", "novelty@k", "popularity@k", "diversity@k",
    ]  # fmt: skip
    spec = parse_metrics("HIT_RATE@5")[0]
    assert (spec.name, spec.kind, spec.k, spec.is_rating) == ("hit_rate@5", "hit_rate", 5, False)


def test_cross_validate_parallel_folds_match_sequential():
    data = fk.datasets.load_movielens_small()
    model = fk.ALS(factors=8, epochs=3, random_state=0)  # results independent of n_threads
    seq = fk.cross_validate(model, data, cv=3, metrics=["rmse", "ndcg@10"])
    par = fk.cross_validate(model, data, cv=3, metrics=["rmse", "ndcg@10"], n_jobs=2)
    np.testing.assert_allclose(par.folds["rmse"], seq.folds["rmse"], rtol=1e-12)
    np.testing.assert_allclose(par.folds["ndcg@10"], seq.folds["ndcg@10"], rtol=1e-12)
    assert model.get_params()["n_threads"] is None  # the instance passed in is untouched


def test_cross_validate_rejects_bad_n_jobs():
    data = fk.Interactions.from_arrays([1, 2], [1, 2], [1.0, 2.0])
    with pytest.raises(InvalidParameterError, match="n_jobs must be None or an int >= 1; got 0"):
        fk.cross_validate(fk.BaselineOnly(), data, cv=2, n_jobs=0)


def test_cross_validate_progress_bar_over_folds(capsys):
    data = fk.datasets.load_movielens_small()
    fk.cross_validate(fk.BaselineOnly(), data, cv=3, progress=True)
    err = capsys.readouterr().err
    assert "cross_validate" in err and "3/3" in err and "fold" in err
    fk.cross_validate(fk.BaselineOnly(), data, cv=2)
    assert capsys.readouterr().err == ""  # off by default
    with pytest.raises(InvalidParameterError, match="cross_validate: progress must be a bool"):
        fk.cross_validate(fk.BaselineOnly(), data, cv=2, progress="yes")


def test_cross_validate_rejects_a_class():
    data = fk.Interactions.from_arrays([1, 2], [1, 2], [1.0, 2.0])
    with pytest.raises(
        InvalidParameterError,
        match=r"cross_validate: estimator must be a factorkit estimator instance such as "
        r"BaselineOnly\(\), not the class BaselineOnly",
    ):
        fk.cross_validate(fk.BaselineOnly, data, cv=2)
