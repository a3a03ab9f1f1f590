"""GridSearch / RandomSearch: enumeration, sampling, scoring, refit, early stopping, halving."""

from __future__ import annotations

import itertools
import math
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import factorkit as fk
from factorkit._threads import resolve_threads
from factorkit.base import model_class
from factorkit.evaluation.search import (
    GridSearch,
    RandomSearch,
    default_search_space,
    greater_is_better,
    loguniform_int,
    parse_search_space,
)
from factorkit.exceptions import (
    ConvergenceWarning,
    DivergenceError,
    InvalidParameterError,
    NotFittedError,
)


@pytest.fixture(scope="module")
def data():
    ratings, _ = fk.datasets.make_ratings(n_users=80, n_items=50, n_ratings=2400, random_state=0)
    return ratings


def _pairs(inter: fk.Interactions) -> set[tuple]:
    frame = inter.to_pandas()
    return set(zip(frame["user"], frame["item"], strict=True))


class _Spy(fk.BaselineOnly):
    """BaselineOnly that records what every fit saw (clones share the class-level log)."""

    log: ClassVar[list[dict]] = []

    def fit(self, train, validation=None):
        type(self).log.append(
            {"train": train, "validation": validation, "params": self.get_params()}
        )
        return super().fit(train, validation=validation)


class _SpyMF(fk.BiasedMF):
    log: ClassVar[list[dict]] = []

    def fit(self, train, validation=None):
        type(self).log.append({"n_threads": self.n_threads})
        return super().fit(train, validation=validation)


# ---------------------------------------------------------------------- grid
def test_grid_enumerates_every_combination(data):
    grid = {"factors": [2, 4], "regularization": [0.01, 0.1, 0.3]}
    search = GridSearch(fk.BiasedMF(epochs=3, random_state=0), grid, cv=2).fit(data)
    res = search.cv_results_
    assert len(res) == 6
    got = set(zip(res["param_factors"], res["param_regularization"], strict=True))
    assert got == set(itertools.product([2, 4], [0.01, 0.1, 0.3]))
    for col in (
        "split0_rmse",
        "split1_rmse",
        "mean_rmse",
        "std_rmse",
        "rank_rmse",
        "mean_fit_time",
        "std_fit_time",
        "mean_score_time",
        "mean_epochs",
        "params",
    ):
        assert col in res
    assert (res["mean_epochs"] == 3).all()
    assert search.n_candidates_ == 6 and search.n_splits_ == 2
    assert search.metric_ == "rmse" and search.greater_is_better_ is False


def test_grid_accepts_a_list_of_grids(data):
    grids = [{"epochs": [2, 3]}, {"regularization": [1.0], "epochs": [4]}]
    search = GridSearch(fk.BaselineOnly(), grids, cv=2).fit(data)
    assert [dict(p) for p in search.cv_results_["params"]] == [
        {"epochs": 2},
        {"epochs": 3},
        {"regularization": 1.0, "epochs": 4},
    ]
    assert math.isnan(search.cv_results_["param_regularization"][0])


def test_scores_match_cross_validate_on_the_same_folds(data):
    est = fk.BiasedMF(epochs=3, factors=3, random_state=0)
    search = GridSearch(est, {"regularization": [0.05, 0.2]}, cv=3, random_state=7).fit(data)
    for _, row in search.cv_results_.iterrows():
        cv = fk.cross_validate(
            fk.clone(est).set_params(**row["params"]),
            data,
            cv=3,
            metrics=["rmse"],
            random_state=7,
        )
        np.testing.assert_allclose(
            [row[f"split{i}_rmse"] for i in range(3)], cv["rmse"], rtol=1e-12
        )


def test_best_attributes_agree_with_cv_results(data):
    search = GridSearch(
        fk.BiasedMF(epochs=4, random_state=0),
        {"factors": [2, 8], "learning_rate": [0.005, 0.03]},
        cv="holdout",
    ).fit(data)
    res = search.cv_results_
    best = res.loc[search.best_index_]
    assert search.best_score_ == res["mean_rmse"].min() == best["mean_rmse"]
    assert best["rank_rmse"] == 1
    assert search.best_params_ == best["params"]
    assert sorted(res["rank_rmse"]) == [1, 2, 3, 4]
    model = search.best_estimator_
    assert model.factors == search.best_params_["factors"]
    assert model.learning_rate == search.best_params_["learning_rate"]
    top = search.summary(top=2)
    assert list(top["rank"]) == [1, 2]
    assert top.loc[0, "mean_rmse"] == search.best_score_
    assert list(top.columns[:3]) == ["rank", "factors", "learning_rate"]


def test_refit_trains_on_all_data_and_can_be_turned_off(data):
    _Spy.log.clear()
    search = GridSearch(_Spy(epochs=2), {"regularization": [1.0, 5.0]}, cv=2).fit(data)
    assert len(_Spy.log) == 2 * 2 + 1
    assert _Spy.log[-1]["train"] is data
    assert search.best_estimator_._is_fitted()
    assert search.refit_time_ >= 0
    assert not search.estimator._is_fitted()  # the instance passed in is never fitted
    _Spy.log.clear()
    search = GridSearch(_Spy(epochs=2), {"regularization": [1.0, 5.0]}, cv=2, refit=False)
    search.fit(data)
    assert len(_Spy.log) == 4
    assert not hasattr(search, "best_estimator_")
    assert search.best_params_ in ({"regularization": 1.0}, {"regularization": 5.0})


def test_holdout_uses_validation_size(data):
    _Spy.log.clear()
    GridSearch(
        _Spy(epochs=1), {"epochs": [1]}, cv="holdout", validation_size=0.25, refit=False
    ).fit(data)
    assert len(_Spy.log[0]["train"]) == len(data) - round(0.25 * len(data))


# ---------------------------------------------------------------------- random
def test_random_search_is_reproducible_and_samples_distributions(data):
    space = {
        "factors": loguniform_int(2, 16),
        "learning_rate": stats.loguniform(0.005, 0.05),
        "regularization": [0.02, 0.1],
    }

    def run(seed):
        return RandomSearch(
            fk.BiasedMF(epochs=2, random_state=0),
            space,
            n_iter=5,
            cv="holdout",
            random_state=seed,
            refit=False,
        ).fit(data)

    a, b, c = run(0), run(0), run(1)
    assert list(a.cv_results_["params"]) == list(b.cv_results_["params"])
    np.testing.assert_array_equal(a.cv_results_["mean_rmse"], b.cv_results_["mean_rmse"])
    assert list(a.cv_results_["params"]) != list(c.cv_results_["params"])
    assert len(a.cv_results_) == 5
    for p in a.cv_results_["params"]:
        assert type(p["factors"]) is int and 2 <= p["factors"] <= 16
        assert type(p["learning_rate"]) is float and 0.005 <= p["learning_rate"] <= 0.05
        assert p["regularization"] in (0.02, 0.1)


def test_random_search_rounds_floats_for_int_parameters(data):
    search = RandomSearch(
        fk.BaselineOnly(),
        {"epochs": stats.uniform(1, 4)},
        n_iter=3,
        cv="holdout",
        refit=False,
    ).fit(data)
    assert all(type(e) is int for e in search.cv_results_["param_epochs"])


def test_random_search_over_lists_draws_without_repetition(data):
    space = {"epochs": [1, 2, 3], "regularization": [1.0, 3.0]}
    s = RandomSearch(fk.BaselineOnly(), space, n_iter=4, cv="holdout", refit=False).fit(data)
    combos = [tuple(sorted(p.items())) for p in s.cv_results_["params"]]
    assert len(combos) == len(set(combos)) == 4
    s = RandomSearch(fk.BaselineOnly(), space, n_iter=50, cv="holdout", refit=False).fit(data)
    assert len(s.cv_results_) == 6


# ---------------------------------------------------------------------- metrics
def test_metric_direction_from_the_name():
    assert greater_is_better("rmse") is False
    assert greater_is_better("MAE") is False
    for name in ("ndcg@10", "recall@5", "precision@3", "map@10", "auc", "hit_rate@10"):
        assert greater_is_better(name) is True


def test_ranking_metric_is_maximised(data):
    search = GridSearch(
        fk.BaselineOnly(),
        {"regularization": [0.01, 10.0, 1000.0], "user_regularization": [0.01, 1000.0]},
        cv="holdout",
        metric="ndcg@5",
        refit=False,
    ).fit(data)
    res = search.cv_results_
    assert search.greater_is_better_ is True
    assert res["mean_ndcg@5"].nunique() > 1
    assert search.best_score_ == res["mean_ndcg@5"].max()
    assert res.loc[res["mean_ndcg@5"].idxmax(), "rank_ndcg@5"] == 1
    assert res.loc[res["mean_ndcg@5"].idxmin(), "rank_ndcg@5"] == res["rank_ndcg@5"].max()


# ---------------------------------------------------------------------- early stopping
def test_early_stopping_validates_on_a_slice_of_the_training_fold(data):
    folds = list(fk.split.kfold(data, k=3, random_state=0))
    _Spy.log.clear()
    search = GridSearch(
        _Spy(epochs=6, early_stopping=1),
        {"regularization": [1.0, 5.0]},
        cv=folds,
        early_stopping_size=0.2,
    ).fit(data)
    trial_fits, refit = _Spy.log[:-1], _Spy.log[-1]
    assert len(trial_fits) == 2 * 3
    fold_pairs = [(_pairs(tr), _pairs(te)) for tr, te in folds]
    for fit in trial_fits:
        assert fit["validation"] is not None
        part, valid = _pairs(fit["train"]), _pairs(fit["validation"])
        assert part.isdisjoint(valid)
        matches = [i for i, (tr, _) in enumerate(fold_pairs) if part | valid == tr]
        assert len(matches) == 1  # the slice comes out of exactly one training fold ...
        assert valid.isdisjoint(fold_pairs[matches[0]][1])  # ... never its scoring fold
        assert len(valid) == round(0.2 * len(folds[matches[0]][0]))
    # every candidate sees the same slice of a fold: a fair comparison
    by_fold = {}
    for fit in trial_fits:
        key = frozenset(_pairs(fit["train"]) | _pairs(fit["validation"]))
        by_fold.setdefault(key, set()).add(frozenset(_pairs(fit["validation"])))
    assert all(len(v) == 1 for v in by_fold.values())
    # the refit holds out a slice of all the data in the same way
    assert _pairs(refit["train"]) | _pairs(refit["validation"]) == _pairs(data)
    assert "mean_epochs" in search.cv_results_


def test_without_early_stopping_no_validation_is_passed(data):
    _Spy.log.clear()
    GridSearch(_Spy(epochs=2), {"epochs": [1, 2]}, cv=2).fit(data)
    assert all(f["validation"] is None for f in _Spy.log)


def test_early_stopping_can_be_a_searched_parameter(data):
    _Spy.log.clear()
    GridSearch(_Spy(epochs=4), {"early_stopping": [None, 2]}, cv=2, refit=False).fit(data)
    with_es = [f for f in _Spy.log if f["params"]["early_stopping"] == 2]
    without = [f for f in _Spy.log if f["params"]["early_stopping"] is None]
    assert all(f["validation"] is not None for f in with_es)
    assert all(f["validation"] is None for f in without)


# ---------------------------------------------------------------------- halving
def test_successive_halving_trains_far_fewer_epochs(data):
    trained = []
    est = fk.BiasedMF(epochs=27, factors=4, random_state=0, callbacks=[trained.append])
    grid = {
        "learning_rate": [0.002, 0.01, 0.03],
        "regularization": [0.01, 0.05, 0.2],
        "init_scale": [0.01, 0.1, 0.3],
    }
    search = GridSearch(est, grid, cv="holdout", halving=True, factor=3, refit=False).fit(data)
    n_candidates, full = 27, 27
    assert len(trained) == 27 * 1 + 9 * 3 + 3 * 9 + 1 * 27  # 108 epochs
    assert len(trained) <= 0.2 * n_candidates * full
    res = search.cv_results_
    assert list(res.groupby("iter").size()) == [27, 9, 3, 1]
    assert list(res.groupby("iter")["n_resources"].first()) == [1, 3, 9, 27]
    assert (res["param_epochs"] == res["n_resources"]).all()
    best = res.loc[search.best_index_]
    assert best["iter"] == 3 and best["rank_rmse"] == 1
    assert search.best_params_["epochs"] == 27
    # survivors of each round are the best of the previous one
    for it in range(3):
        now = res[res["iter"] == it]
        nxt = set(res.loc[res["iter"] == it + 1, "candidate"])
        kept = set(now.nsmallest(len(nxt), "mean_rmse")["candidate"])
        assert kept == nxt
    assert set(search.summary(top=None).columns[:3]) == {"rank", "iter", "n_resources"}


def test_halving_resource_bounds(data):
    search = RandomSearch(
        fk.BaselineOnly(epochs=40),
        {"regularization": stats.loguniform(0.1, 10)},
        n_iter=10,
        cv="holdout",
        halving=True,
        factor=2,
        min_resources=5,
        max_resources=20,
        refit=False,
    ).fit(data)
    rounds = search.cv_results_.groupby("iter")["n_resources"].first().tolist()
    assert rounds == [5, 10, 20]
    assert search.cv_results_.groupby("iter").size().tolist() == [10, 5, 3]


def test_halving_rejects_a_searched_resource(data):
    with pytest.raises(InvalidParameterError, match="'epochs' is the resource the search grows"):
        GridSearch(fk.BaselineOnly(), {"epochs": [1, 2]}, halving=True).fit(data)
    with pytest.raises(
        InvalidParameterError, match="resource must be the name of an integer parameter"
    ):
        GridSearch(fk.BaselineOnly(), {"epochs": [1]}, halving=True, resource="regularization").fit(
            data
        )


# ---------------------------------------------------------------------- failures
def test_diverging_candidates_score_nan_and_rank_last(data):
    grid = {"learning_rate": [0.01, 1e6]}
    est = fk.BiasedMF(epochs=3, random_state=0)
    with pytest.warns(ConvergenceWarning, match="failed on split 0 and scores nan"):
        search = GridSearch(est, grid, cv="holdout").fit(data)
    res = search.cv_results_.set_index("param_learning_rate")
    assert math.isnan(res.loc[1e6, "mean_rmse"]) and res.loc[1e6, "rank_rmse"] == 2
    assert search.best_params_ == {"learning_rate": 0.01}
    with pytest.raises(DivergenceError, match="diverged"):
        GridSearch(est, grid, cv="holdout", error_score="raise").fit(data)
    with (
        pytest.warns(ConvergenceWarning),
        pytest.raises(fk.exceptions.FactorkitError, match="every candidate failed"),
    ):
        GridSearch(est, {"learning_rate": [1e6]}, cv="holdout").fit(data)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (
            lambda: GridSearch(fk.BiasedMF, {"factors": [1]}),
            r"estimator must be a factorkit estimator instance such as BiasedMF\(\), "
            "not the class BiasedMF",
        ),
        (lambda: GridSearch("BiasedMF", {"factors": [1]}), "factorkit estimator instance"),
        (lambda: GridSearch(fk.BaselineOnly(), {}), "param_grid is empty"),
        (lambda: GridSearch(fk.BaselineOnly(), []), "non-empty dict"),
        (lambda: GridSearch(fk.BaselineOnly(), {"epochs": []}), r"param_grid\['epochs'\] is empty"),
        (
            lambda: GridSearch(fk.BiasedMF(), {"factor": [10]}),
            "BiasedMF has no parameter 'factor' .*valid parameters are factors, epochs",
        ),
        (
            lambda: GridSearch(fk.BaselineOnly(), {"epochs": 5}),
            r"param_grid\['epochs'\] must be a list of values; got 5. Write \[5\]",
        ),
        (
            lambda: GridSearch(fk.BaselineOnly(), {"epochs": [2, 0]}),
            r"candidate \{epochs=0\}: The 'epochs' parameter of BaselineOnly must be an int >= 1",
        ),
        (
            lambda: RandomSearch(fk.BaselineOnly(), {"epochs": [1]}, n_iter=0),
            "n_iter must be an int >= 1; got 0",
        ),
        (
            lambda: RandomSearch(fk.BaselineOnly(), {"epochs": 3}),
            "must be a distribution with rvs",
        ),
        (
            lambda: GridSearch(fk.BaselineOnly(), {"epochs": [1]}, cv=1),
            r"GridSearch: cv must be an int >= 2 \(folds\), 'holdout' or an iterable of "
            r"\(train, test\) pairs; got 1. Use cv='holdout' for a single split.",
        ),
        (
            lambda: GridSearch(fk.BaselineOnly(), {"epochs": [1]}, refit="yes"),
            "GridSearch: refit must be a bool; got 'yes'",
        ),
        (
            lambda: GridSearch(fk.BaselineOnly(), {"epochs": [1]}, error_score=0),
            "GridSearch: error_score must be 'raise' or nan; got 0",
        ),
        (
            lambda: GridSearch(fk.BaselineOnly(), {"epochs": [1]}, random_state=-1),
            "GridSearch: random_state must be None, an int >= 0 or a numpy.random.Generator",
        ),
        (
            lambda: GridSearch(
                fk.BaselineOnly(), {"regularization": [1.0]}, halving=True, max_resources=0
            ),
            "GridSearch: max_resources must be None or an int >= 1; got 0",
        ),
        (lambda: GridSearch(fk.BaselineOnly(), {"epochs": [1]}, cv="loo"), "cv must be"),
        (lambda: GridSearch(fk.BaselineOnly(), {"epochs": [1]}, cv=[(1, 2)]), "pairs of Interac"),
        (lambda: GridSearch(fk.BaselineOnly(), {"epochs": [1]}, metric="rsme"), "unknown metric"),
        (
            lambda: GridSearch(fk.BaselineOnly(), {"epochs": [1]}, metric=["rmse", "mae"]),
            "metric must be one metric name",
        ),
        (
            lambda: GridSearch(fk.BaselineOnly(), {"epochs": [1]}, validation_size=1.5),
            r"GridSearch: validation_size must be a number in \(0, 1\); got 1.5",
        ),
        (lambda: GridSearch(fk.BaselineOnly(), {"epochs": [1]}, n_jobs=0), "n_jobs must be"),
        (
            lambda: GridSearch(
                fk.BaselineOnly(), {"regularization": [1.0]}, halving=True, factor=1
            ),
            "factor must be a number > 1",
        ),
    ],
)
def test_errors(data, make, match):
    with pytest.raises(InvalidParameterError, match=match):
        make().fit(data)


def test_fit_needs_interactions():
    with pytest.raises(
        InvalidParameterError,
        match=r"GridSearch.fit: data must be an Interactions \(.*\); got list \[1, 2\]",
    ):
        GridSearch(fk.BaselineOnly(), {"epochs": [1]}).fit([1, 2])


def test_summary_before_fit():
    with pytest.raises(NotFittedError, match="not fitted yet"):
        GridSearch(fk.BaselineOnly(), {"epochs": [1]}).summary()


# ---------------------------------------------------------------------- parallel, progress
def test_parallel_trials_match_serial_and_share_the_cores(data):
    grid = {"factors": [2, 4], "regularization": [0.02, 0.1]}
    serial = GridSearch(_SpyMF(epochs=3, random_state=0), grid, cv=2, refit=False).fit(data)
    _SpyMF.log.clear()
    parallel = GridSearch(_SpyMF(epochs=3, random_state=0), grid, cv=2, refit=False, n_jobs=2).fit(
        data
    )
    pd.testing.assert_series_equal(
        serial.cv_results_["mean_rmse"], parallel.cv_results_["mean_rmse"]
    )
    cores = resolve_threads(None)
    assert all(
        f["n_threads"] * parallel.n_jobs_ <= max(cores, parallel.n_jobs_) for f in _SpyMF.log
    )
    if cores >= 2:
        assert parallel.n_jobs_ == 2


def test_progress_bar_over_settings(data, capsys):
    GridSearch(fk.BaselineOnly(epochs=1), {"regularization": [1.0, 2.0]}, progress=True).fit(data)
    err = capsys.readouterr().err
    assert "GridSearch" in err and "2/2" in err


# ---------------------------------------------------------------------- params API, spaces
def test_search_params_api():
    search = RandomSearch(fk.BaselineOnly(), {"epochs": [1]}, n_iter=3)
    assert search.get_params()["n_iter"] == 3
    assert search.set_params(n_iter=5) is search and search.n_iter == 5
    assert repr(search).startswith("RandomSearch(estimator=BaselineOnly(), ")
    with pytest.raises(InvalidParameterError, match="RandomSearch has no parameter 'niter'"):
        search.set_params(niter=1)


@pytest.mark.parametrize("name", ["BaselineOnly", "BiasedMF", "SVDpp", "ALS", "ImplicitALS", "BPR"])
@pytest.mark.parametrize("kind", ["random", "grid"])
def test_default_search_spaces_name_real_parameters(name, kind):
    if name in ("ImplicitALS", "BPR"):
        pytest.importorskip(
            f"factorkit.models.{'implicit_als' if name == 'ImplicitALS' else 'bpr'}"
        )
    estimator = model_class(name)()
    space = default_search_space(estimator, kind)
    assert space and set(space) <= set(estimator.get_params())
    # every draw is a valid setting
    search = RandomSearch(estimator, space, n_iter=20)
    for params in search._candidates(np.random.default_rng(0)):
        search._check_candidate(params)


def test_default_search_space_errors():
    with pytest.raises(
        InvalidParameterError,
        match="default_search_space: search must be one of 'random', 'grid'; got 'bayes'",
    ):
        default_search_space(fk.BiasedMF(), "bayes")


def test_parse_search_space():
    space = parse_search_space(
        {
            "factors": {"loguniform_int": [10, 100]},
            "learning_rate": {"loguniform": [0.001, 0.1]},
            "decay": {"uniform": [0.9, 1.0]},
            "epochs": {"randint": [5, 6]},
            "biased": [True, False],
        }
    )
    rng = np.random.default_rng(0)
    assert 10 <= space["factors"].rvs(random_state=rng) <= 100
    assert 0.001 <= space["learning_rate"].rvs(random_state=rng) <= 0.1
    assert 0.9 <= space["decay"].rvs(random_state=rng) <= 1.0
    assert {int(space["epochs"].rvs(random_state=rng)) for _ in range(50)} == {5, 6}
    assert space["biased"] == [True, False]
    with pytest.raises(InvalidParameterError, match="a distribution is one key of loguniform"):
        parse_search_space({"x": {"normal": [0, 1]}})
    with pytest.raises(InvalidParameterError, match=r"needs \[low, high\] with low <= high"):
        parse_search_space({"x": {"uniform": [2, 1]}})
    with pytest.raises(InvalidParameterError, match="loguniform needs low > 0"):
        parse_search_space({"x": {"loguniform": [0, 1]}})
    with pytest.raises(InvalidParameterError, match=r"Write \[3\] for a fixed value"):
        parse_search_space({"x": 3})
    with pytest.raises(
        InvalidParameterError, match="loguniform_int: high must be an int >= 5; got 2"
    ):
        loguniform_int(5, 2)
