"""fk.tune(): held-out test set, search, refit, comparison with the defaults."""

from __future__ import annotations

import pytest
from scipy import stats

import factorkit as fk
from factorkit.evaluation import TuneResult
from factorkit.evaluation.search import GridSearch, RandomSearch
from factorkit.exceptions import InvalidParameterError


@pytest.fixture(scope="module")
def data():
    ratings, _ = fk.datasets.make_ratings(n_users=60, n_items=40, n_ratings=1500, random_state=0)
    return ratings


def _pairs(inter):
    frame = inter.to_pandas()
    return set(zip(frame["user"], frame["item"], strict=True))


@pytest.fixture(scope="module")
def result(data):
    return fk.tune(fk.BaselineOnly(epochs=3), data, n_iter=3, cv=2, random_state=1)


def test_tune_holds_out_a_test_set_the_search_never_sees(data, result):
    assert isinstance(result, TuneResult) and isinstance(result.search, RandomSearch)
    assert result.n_tune + result.n_test == len(data) and result.n_test == 300
    assert _pairs(result.tune_set).isdisjoint(_pairs(result.test))
    assert result.test_split == "random" and result.metric == "rmse"
    assert not result.greater_is_better
    assert result.search.n_splits_ == 2 and len(result.search.cv_results_) == 3
    assert "seed 1" in result.split_description and "300 interactions" in result.split_description


def test_tune_scores_both_models_on_the_test_set(result):
    tuned = fk.evaluate(result.best_estimator, result.test, ["rmse"], train=result.tune_set)
    default = fk.evaluate(result.default_model, result.test, ["rmse"], train=result.tune_set)
    assert result.tuned_score == pytest.approx(tuned["rmse"])
    assert result.default_score == pytest.approx(default["rmse"])
    assert result.gain == pytest.approx(result.default_score - result.tuned_score)  # lower wins
    assert result.default_model.get_params() == fk.BaselineOnly(epochs=3).get_params()
    assert 0.5 < result.tuned_score < 1.5  # ratings on a 1-5 scale
    table = result.comparison()
    assert list(table.columns) == ["model", "rmse", "parameters"]
    assert list(table["model"]) == ["tuned", "defaults"]
    assert list(result.table(top=2)["rank"]) == [1, 2]
    assert repr(result).startswith("TuneResult(BaselineOnly, rmse on 300 held-out interactions")


def test_parameters_set_on_the_model_stay_fixed(result):
    # epochs=3 differs from BaselineOnly's default: left out of the built-in space
    assert "param_epochs" not in result.search.cv_results_
    assert result.best_estimator.epochs == 3
    assert set(result.best_params) == {"regularization", "user_regularization"}


def test_tune_grid_with_explicit_space_and_fixed(data):
    space = {"regularization": [1.0, 5.0], "epochs": [2]}
    res = fk.tune(fk.BaselineOnly(), data, search="grid", param_space=space, cv="holdout")
    assert isinstance(res.search, GridSearch) and len(res.search.cv_results_) == 2
    assert res.search.validation_size == 0.2
    # JSON spelling and distribution objects both work for a random search
    space = {"regularization": {"loguniform": [0.5, 5.0]}, "epochs": stats.randint(1, 3)}
    res = fk.tune(fk.BaselineOnly(), data, param_space=space, n_iter=2, cv="holdout")
    assert all(0.5 <= p["regularization"] <= 5.0 for p in res.search.cv_results_["params"])
    res = fk.tune(fk.BaselineOnly(), data, n_iter=2, cv="holdout", fixed=["epochs"])
    assert "param_epochs" not in res.search.cv_results_


def test_tune_ranking_metric_splits_per_user(data):
    res = fk.tune(fk.BaselineOnly(), data, metric="ndcg@5", n_iter=2, cv="holdout", random_state=0)
    assert res.test_split == "per user" and res.greater_is_better
    assert res.gain == pytest.approx(res.tuned_score - res.default_score)
    assert set(res.test.to_pandas()["user"]) <= set(res.tune_set.to_pandas()["user"])


def test_implicit_model_defaults_to_ndcg(data):
    # the metric follows the model's feedback tag (MostPopular: implicit)
    res = fk.tune(
        fk.MostPopular(),
        data,
        param_space={"min_value": [None, 4.0]},
        search="grid",
        cv="holdout",
    )
    assert res.metric == "ndcg@10" and res.test_split == "per user"
    assert res.greater_is_better and len(res.search.cv_results_) == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"search": "bayes"}, "tune: search must be one of 'random', 'grid'; got 'bayes'"),
        (
            {"search": "grid", "param_space": {"epochs": {"randint": [1, 3]}}},
            "tune: search='grid' takes lists of values; 'epochs' is a distribution",
        ),
        (
            {"fixed": ["epochs", "regularization", "user_regularization"]},
            "tune: every parameter of BaselineOnly's built-in search space is fixed",
        ),
        ({"test_size": 1.0}, r"tune: test_size must be a number in \(0, 1\); got 1.0"),
        ({"metric": "ndcg"}, "ndcg needs a cut-off"),
        ({"param_space": 3}, "tune: param_space must be None"),
    ],
)
def test_tune_errors(data, kwargs, message):
    with pytest.raises(InvalidParameterError, match=message):
        fk.tune(fk.BaselineOnly(), data, **kwargs)


def test_tune_needs_an_instance_and_interactions(data):
    with pytest.raises(InvalidParameterError, match="tune: model must be a factorkit estimator"):
        fk.tune(fk.BaselineOnly, data)
    with pytest.raises(InvalidParameterError, match="tune: data must be an Interactions"):
        fk.tune(fk.BaselineOnly(), data.to_pandas())
