"""The ``factorkit tune`` command: search, report, held-out comparison, errors."""

from __future__ import annotations

import json

import pytest

import factorkit as fk
from factorkit import cli
from factorkit.cli import main
from factorkit.evaluation.search import GridSearch, RandomSearch


@pytest.fixture(scope="module")
def ratings_csv(tmp_path_factory):
    data, _ = fk.datasets.make_ratings(n_users=60, n_items=40, n_ratings=1500, random_state=0)
    frame = data.to_pandas().rename(columns={"user": "userId", "item": "movieId"})
    path = tmp_path_factory.mktemp("tune") / "ratings.csv"
    frame[["userId", "movieId", "rating"]].to_csv(path, index=False)
    return path


def _tune(path, *extra):
    return main(["tune", str(path), *extra, "-q"])


def test_random_search_prints_table_best_and_held_out_scores(ratings_csv, capsys):
    assert _tune(ratings_csv, "--model", "biased-mf", "--n-iter", "4", "--cv", "2") == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "top 4 of 4 settings by rmse (mean over 2 folds)"
    header = lines[1].split()
    assert header[0] == "rank" and header[-4:] == ["rmse", "std", "fit", "s"]
    assert {"factors", "epochs", "learning_rate", "regularization"} <= set(header)
    assert [line.split()[0] for line in lines[2:6]] == ["1", "2", "3", "4"]
    assert "best parameters: factors=" in out
    assert "held-out rmse on 300 test interactions" in out
    assert "  tuned     0." in out and "  defaults  0." in out and "BiasedMF(random_state=0)" in out
    assert "search: 4 settings, 8 fits in" in out and "s CPU" in out


def test_tune_ends_in_the_report_hook_with_the_fitted_search(ratings_csv, monkeypatch):
    seen = {}

    def hook(search, outcome, args):
        seen.update(search=search, outcome=outcome, args=args)
        return 0

    monkeypatch.setattr(cli, "report_tune", hook)
    assert _tune(ratings_csv, "--model", "baseline", "--n-iter", "3", "--holdout", "0.3") == 0
    search, outcome = seen["search"], seen["outcome"]
    assert isinstance(search, RandomSearch) and search.n_splits_ == 1
    assert search.validation_size == 0.3 and search.best_estimator_._is_fitted()
    assert outcome.n_tune + outcome.n_test == 1500 and outcome.n_test == 300
    assert outcome.metric == "rmse" and outcome.test_split == "random"
    # fixed flags stay out of the default space and apply to every trial
    seen.clear()
    assert _tune(ratings_csv, "--model", "baseline", "--epochs", "3", "--n-iter", "2") == 0
    assert "epochs" not in seen["search"].cv_results_
    assert "param_epochs" not in seen["search"].cv_results_
    assert seen["search"].best_estimator_.epochs == 3


def test_grid_search_with_json_grid_and_file(ratings_csv, tmp_path, capsys, monkeypatch):
    grid = {"regularization": [1.0, 5.0], "epochs": [2, 4]}
    assert (
        _tune(
            ratings_csv, "--model", "baseline", "--search", "grid", "--param-grid", json.dumps(grid)
        )
        == 0
    )
    assert capsys.readouterr().out.startswith("top 4 of 4 settings by rmse (mean over 3 folds)")
    path = tmp_path / "grid.json"
    path.write_text(json.dumps({"regularization": [1.0, 5.0]}))
    seen = {}
    monkeypatch.setattr(cli, "report_tune", lambda s, o, a: seen.update(search=s) or 0)
    assert (
        _tune(ratings_csv, "--model", "baseline", "--search", "grid", "--param-grid", str(path))
        == 0
    )
    assert isinstance(seen["search"], GridSearch) and len(seen["search"].cv_results_) == 2


def test_halving_and_ranking_metric(ratings_csv, capsys, monkeypatch):
    seen = {}
    monkeypatch.setattr(cli, "report_tune", lambda s, o, a: seen.update(search=s, outcome=o) or 0)
    args = ["--model", "biased-mf", "--epochs", "9", "--n-iter", "9", "--holdout", "0.2"]
    assert _tune(ratings_csv, *args, "--halving", "--metric", "ndcg@5") == 0
    search, outcome = seen["search"], seen["outcome"]
    assert search.halving and search.greater_is_better_
    assert list(search.cv_results_.groupby("iter")["n_resources"].first()) == [1, 3, 9]
    assert outcome.test_split == "per user" and outcome.metric == "ndcg@5"
    monkeypatch.undo()
    assert _tune(ratings_csv, *args, "--halving") == 0
    out = capsys.readouterr().out
    assert out.splitlines()[1].split()[:3] == ["rank", "iter", "n_resources"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--param-grid", "{bad json"], "--param-grid must be a JSON object or a JSON file"),
        (
            ["--search", "grid", "--param-grid", '{"factors": {"loguniform_int": [2, 9]}}'],
            "tune: search='grid' takes lists of values; 'factors' is a distribution",
        ),
        (["--param-grid", '{"factor": [2]}'], "BiasedMF has no parameter 'factor'"),
        (["--n-iter", "0"], "n_iter must be an int >= 1; got 0"),
        (["--metric", "ndcg"], "ndcg needs a cut-off"),
    ],
)
def test_errors_are_reported(ratings_csv, capsys, extra, message):
    assert _tune(ratings_csv, "--model", "biased-mf", *extra) == 2
    err = capsys.readouterr().err
    assert err.startswith("factorkit tune: error: ") and message in err


def test_tune_writes_html_report(ratings_csv, tmp_path, capsys):
    out = tmp_path / "report"
    assert (
        _tune(
            ratings_csv, "--model", "baseline", "--n-iter", "2", "--cv", "2", "--report", str(out)
        )
        == 0
    )
    html = (out / "index.html").read_text()
    assert "data:image/png;base64" in html and "http://" not in html
    assert f"report written to {out / 'index.html'}" in capsys.readouterr().out


def test_evaluate_with_ranking_metrics_and_report(ratings_csv, tmp_path, capsys):
    out = tmp_path / "eval"
    code = main(
        ["evaluate", str(ratings_csv), "--model", "baseline", "--cv", "2",
         "--metrics", "rmse,ndcg@5", "--report", str(out), "-q"]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "ndcg@5" in printed and "rmse" in printed
    assert (out / "index.html").exists()


def test_report_without_matplotlib_says_how_to_install(ratings_csv, tmp_path, capsys, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError("no matplotlib")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    code = main(
        [
            "evaluate",
            str(ratings_csv),
            "--model",
            "baseline",
            "--cv",
            "2",
            "--report",
            str(tmp_path / "r"),
        ]
    )
    assert code == 2
    assert "the report needs matplotlib: pip install 'factorkit[plot]'" in capsys.readouterr().err


def test_evaluate_progress_bar_over_folds_on_a_terminal(ratings_csv, capsys, monkeypatch):
    import sys

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert main(["evaluate", str(ratings_csv), "--model", "baseline", "--cv", "2"]) == 0
    err = capsys.readouterr().err
    assert "cross_validate" in err and "2/2" in err
    assert main(["evaluate", str(ratings_csv), "--model", "baseline", "--cv", "2", "-q"]) == 0
    assert "cross_validate" not in capsys.readouterr().err


def test_reports_label_their_split_and_data(ratings_csv, tmp_path):
    out = tmp_path / "eval"
    args = ["evaluate", str(ratings_csv), "--model", "baseline", "--cv", "5", "--seed", "3"]
    assert main([*args, "--report", str(out), "-q"]) == 0
    page = (out / "index.html").read_text()
    assert "fold 0 of the 5-fold split of the cross-validation (fk.split.kfold, seed 3)" in page
    assert "1,200 train / 300 test interactions" in page
    assert f"Data set: <code>{ratings_csv}</code>" in page
    out = tmp_path / "tune"
    args = ["tune", str(ratings_csv), "--model", "baseline", "--n-iter", "2", "--cv", "2"]
    assert main([*args, "--report", str(out), "-q"]) == 0
    page = (out / "index.html").read_text()
    assert "random split, 0.2 of the data held out as test (300 interactions), seed 0" in page
    assert "RandomSearch results (2 settings, metric rmse, mean over 2 splits)" in page
