"""Report figures and the self-contained HTML page."""

import re
import sys
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest

import factorkit as fk
from factorkit.evaluation.spectrum import singular_value_spectrum
from factorkit.exceptions import FactorkitError
from factorkit.report import (
    ReportData,
    activity_errors,
    compute_report,
    item_map_table,
    plot_error_by_activity,
    plot_factors_curve,
    plot_item_map,
    plot_learning_curves,
    plot_recommendation_popularity,
    plot_search_results,
    plot_spectrum,
    recommendation_popularity,
    render_html,
    write_report,
)


@pytest.fixture(scope="module")
def figure_cls():
    """matplotlib's Figure class; skips the test where matplotlib is not installed."""
    return pytest.importorskip("matplotlib.figure").Figure


@pytest.fixture(scope="module")
def fitted(figure_cls):
    data = fk.datasets.load_movielens_small()
    train, test = fk.split.random(data, test_size=0.2, random_state=0)
    model = fk.BiasedMF(factors=8, epochs=4, random_state=0).fit(train, validation=test)
    return model, train, test


def _titles(fig):
    return [ax.get_title() for ax in fig.axes]


def test_learning_curves(fitted, figure_cls):
    model, _, _ = fitted
    fig = plot_learning_curves(model)
    assert isinstance(fig, figure_cls)
    assert _titles(fig) == ["Training loss", "Validation RMSE"]
    assert [ax.get_xlabel() for ax in fig.axes] == ["epoch", "epoch"]
    assert fig.axes[1].get_ylabel() == "RMSE (rating points)"
    no_val = model.history_.drop(columns=["val_rmse"])
    assert _titles(plot_learning_curves(no_val)) == ["Training loss"]
    with pytest.raises(fk.exceptions.DataError, match="history_ DataFrame"):
        plot_learning_curves(pd.DataFrame())


def test_factors_curve_figure(figure_cls):
    curve = pd.DataFrame(
        {"factors": [5, 20, 100], "rmse": [0.9, 0.87, 0.88], "train_rmse": [0.8, 0.7, 0.5]}
    )
    ax = plot_factors_curve(curve).axes[0]
    assert ax.get_title() == "RMSE versus number of factors"
    assert ax.get_xlabel() == "factors (rank of the model)"
    assert ax.get_ylabel() == "held-out RMSE (rating points)"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "best: 20 factors, 0.8700" in labels
    ndcg = pd.DataFrame({"factors": [5, 20], "ndcg@10": [0.1, 0.2]})
    ax = plot_factors_curve(ndcg).axes[0]
    assert "best: 20 factors" in ax.get_legend().get_texts()[-1].get_text()


def test_error_by_activity(fitted):
    model, train, test = fitted
    table = activity_errors(model, train, test)
    assert table["ratings"].sum() == len(test)
    assert table["activity"].iloc[0] == "11-20"  # MovieLens users have >= 20 ratings
    err = model.predict(test.user_map.ids[test.user_index], test.item_map.ids[test.item_index])
    overall = np.sqrt(np.mean((err - test.values) ** 2))
    pooled = np.sqrt(np.sum(table["rmse"] ** 2 * table["ratings"]) / table["ratings"].sum())
    assert pooled == pytest.approx(overall)
    fig = plot_error_by_activity(table)
    ax = fig.axes[0]
    assert ax.get_title() == "Error by user activity"
    assert ax.get_xlabel() == "user's number of training ratings"
    assert ax.get_ylabel() == "test RMSE (rating points)"
    assert [t.get_text() for t in ax.get_xticklabels()] == table["activity"].tolist()


def test_activity_buckets_include_new_users(figure_cls):
    train = fk.Interactions.from_pandas(
        pd.DataFrame({"u": [1, 1, 2], "i": [1, 2, 1], "r": [4.0, 2.0, 5.0]}), "u", "i", "r"
    )
    test = fk.Interactions.from_pandas(
        pd.DataFrame({"u": [1, 3], "i": [1, 2], "r": [3.0, 1.0]}), "u", "i", "r"
    )
    model = fk.BaselineOnly().fit(train)
    table = activity_errors(model, train, test, edges=[1, 2])
    assert table["activity"].tolist() == ["0", "2+"]
    assert table["users"].tolist() == [1, 1]


def test_recommendation_popularity(fitted):
    model, train, _ = fitted
    table = recommendation_popularity(model, k=5)
    assert table["recommended"].sum() == 5 * train.user_counts.astype(bool).sum()
    counts = dict(zip(train.item_map.ids, train.item_counts, strict=True))
    row = table.iloc[0]
    assert row["train_count"] == counts[row["item"]]
    ax = plot_recommendation_popularity(table).axes[0]
    assert ax.get_title() == "Popularity of recommended items"
    assert ax.get_xlabel() == "item's number of training ratings (log scale)"
    assert ax.get_xscale() == "log"


def test_item_map_labels_titles_without_overlap(fitted):
    model, _, _ = fitted
    fig = plot_item_map(model, n_labels=12)
    ax = fig.axes[0]
    assert ax.get_title() == "Item factor map"
    assert ax.get_xlabel().startswith("component 1 (")
    assert ax.get_ylabel().startswith("component 2 (")
    labels = [t.get_text() for t in ax.texts]
    assert "Forrest Gump (1994)" in labels
    assert 6 <= len(labels) <= 12
    renderer = fig.canvas.get_renderer()
    from matplotlib.text import Text

    boxes = [Text.get_window_extent(t, renderer) for t in ax.texts]
    for a in range(len(boxes)):
        for b in range(a + 1, len(boxes)):
            assert not boxes[a].overlaps(boxes[b]), (labels[a], labels[b])


def test_spectrum_figure(figure_cls):
    x = np.random.default_rng(0).normal(size=(40, 30))
    fig = plot_spectrum(singular_value_spectrum(x, k=30, center=None))
    assert _titles(fig) == ["Singular values", "Cumulative energy"]
    assert fig.axes[1].get_ylabel() == "cumulative energy (% of total)"
    assert any(t.get_text().startswith("90%:") for t in fig.axes[1].texts)


class FakeSearch:
    """Duck-typed stand-in for a fitted search (scikit-learn style cv_results_)."""

    metric = "rmse"
    best_params_: ClassVar[dict] = {"factors": 50, "regularization": 0.05}
    cv_results_: ClassVar[dict] = {
        "params": [
            {"factors": 10, "regularization": 0.05},
            {"factors": 50, "regularization": 0.05},
            {"factors": 100, "regularization": 0.1},
        ],
        "mean_test_rmse": [0.88, 0.86, 0.87],
        "std_test_rmse": [0.01, 0.01, 0.02],
        "mean_fit_time": [0.1, 0.3, 0.5],
    }


def test_search_figure(figure_cls):
    ax = plot_search_results(FakeSearch()).axes[0]
    assert ax.get_title() == "Parameter search"
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    assert ticks[-1] == "factors=50, regularization=0.05"  # best on top
    assert "lower is better" in ax.get_xlabel()
    with pytest.raises(fk.exceptions.DataError, match="'mean_<metric>' or 'mean_test_score'"):
        plot_search_results({"params": [{}], "score": [1.0]})


def test_write_report(fitted, tmp_path):
    model, train, test = fitted
    cv = fk.evaluation.CrossValidationResult(
        pd.DataFrame({"rmse": [0.9, 0.91], "fit_time": [0.1, 0.1]}).rename_axis("fold")
    )
    path = write_report(
        tmp_path / "out",
        model=model,
        train=train,
        test=test,
        title="Test <report>",
        search=FakeSearch(),
        cv_result=cv,
        metrics=["rmse", "ndcg@10"],
        factors=pd.DataFrame({"factors": [4, 8], "rmse": [0.9, 0.89]}),
        spectrum_k=10,
        n_labels=5,
    )
    assert path == tmp_path / "out" / "index.html"
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert "<title>Test &lt;report&gt;</title>" in page
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 7  # learning, spectrum, factors, search, activity, popularity, map
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page)
    assert "http://" not in page and "https://" not in page
    assert "<link" not in page and "<script" not in page
    assert page.count('<table class="data">') >= 7
    for heading in ("Summary", "Learning curves", "Rank selection", "Model selection",
                    "Error by user activity", "Recommendations", "Item factor map"):  # fmt: skip
        assert f"<h2>{heading}</h2>" in page
    assert '<td class="text">ndcg@10</td>' in page
    assert "<h3>Most recommended items</h3>" in page and "<h3>Cross-validation</h3>" in page


def test_write_report_minimal_sections(tmp_path, figure_cls):
    data = fk.datasets.load_movielens_small()
    train, test = fk.split.random(data, test_size=0.2, random_state=1)
    model = fk.BaselineOnly().fit(train)
    page = write_report(
        tmp_path, model=model, train=train, test=test, metrics=["rmse"], spectrum_k=0
    ).read_text()
    assert "<h2>Item factor map</h2>" not in page  # BaselineOnly has no factors
    assert "<h2>Rank selection</h2>" not in page
    assert "<h2>Error by user activity</h2>" in page


def test_write_report_argument_errors(fitted, tmp_path):
    model, train, test = fitted
    with pytest.raises(fk.exceptions.DataError, match="train must be a factorkit Interactions"):
        write_report(tmp_path, model=model, train=train.to_pandas(), test=test)
    with pytest.raises(fk.exceptions.NotFittedError):
        write_report(tmp_path, model=fk.BiasedMF(), train=train, test=test)


def test_missing_matplotlib_error(tmp_path, monkeypatch):
    data = fk.datasets.load_movielens_small()
    train, test = fk.split.random(data, test_size=0.2, random_state=0)
    model = fk.BaselineOnly().fit(train)
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    message = re.escape("the report needs matplotlib: pip install 'factorkit[plot]'")
    with pytest.raises(FactorkitError, match=message):
        write_report(tmp_path, model=model, train=train, test=test)
    with pytest.raises(FactorkitError, match=message):
        plot_spectrum(pd.DataFrame({"component": [1], "singular_value": [1.0]}))
    assert not (tmp_path / "index.html").exists()


def test_real_grid_search_in_report(figure_cls, tmp_path):
    search_mod = pytest.importorskip("factorkit.evaluation.search")
    data = fk.datasets.load_movielens_small()
    train, test = fk.split.random(data, test_size=0.2, random_state=0)
    search = search_mod.GridSearch(
        fk.BiasedMF(epochs=2, random_state=0), {"factors": [2, 4]}, cv=2, metric="rmse"
    ).fit(train)
    ax = plot_search_results(search).axes[0]
    best = search.best_params_["factors"]
    assert ax.get_yticklabels()[-1].get_text() == f"factors={best}"
    model = search.best_estimator_ if hasattr(search, "best_estimator_") else None
    model = model or fk.BiasedMF(epochs=2, factors=best, random_state=0).fit(train)
    page = write_report(
        tmp_path, model=model, train=train, test=test, search=search, metrics=["rmse"],
        spectrum_k=0,
    ).read_text()  # fmt: skip
    assert "<h2>Model selection</h2>" in page and "mean_rmse" in page


def test_compute_report_is_plain_data_with_sources(fitted):
    model, train, test = fitted
    report = compute_report(
        model, train, test, metrics=["rmse"], spectrum_k=5, split="my split", data_name="ml"
    )
    assert isinstance(report, ReportData)
    assert report.split == "my split" and report.data_name == "ml"
    assert report.metrics["metric"].tolist() == ["rmse"]
    assert report.metrics["test value"].iloc[0] == pytest.approx(
        fk.evaluate(model, test, ["rmse"])["rmse"]
    )
    for name in ("metrics", "learning", "spectrum", "activity", "recommendations", "items"):
        assert repr(model) in report.sources[name] or "Training matrix" in report.sources[name]
    assert "my split" in report.sources["metrics"]
    assert f"test ({len(test):,} interactions" in report.sources["metrics"]
    assert "validation data passed to fit" in report.sources["learning"]
    assert len(report.spectrum) == 5 and report.factors_curve is None and report.search is None
    assert list(report.item_map.columns) == ["item", "title", "train_count", "x", "y"]


def test_compute_report_needs_no_matplotlib(monkeypatch):
    data = fk.datasets.load_movielens_small()
    train, test = fk.split.random(data, test_size=0.2, random_state=0)
    model = fk.BaselineOnly().fit(train)
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    report = compute_report(model, train, test, metrics=["rmse"], spectrum_k=0)
    assert report.activity is not None and report.popularity is not None
    assert "how they were split was not given" in report.split


def test_render_html_labels_every_figure(fitted, tmp_path):
    model, train, test = fitted
    report = compute_report(
        model, train, test, metrics=["rmse"], spectrum_k=5, factors=[2, 4],
        cv_result=fk.evaluation.CrossValidationResult(pd.DataFrame({"rmse": [0.9, 0.91]})),
        search=FakeSearch(), split="fk.split.random, test_size 0.2, seed 0",
    )  # fmt: skip
    page = render_html(report, tmp_path).read_text()
    sections = re.findall(r'<section id="(\w+)">(.*?)</section>', page)
    assert [a for a, _ in sections] == [
        "summary", "learning", "rank", "selection", "activity", "recommendations", "items",
    ]  # fmt: skip
    for anchor, body in sections:
        n_figures = body.count("<img ")
        assert body.count('<p class="source">Source: ') >= max(1, n_figures), anchor
    assert "Split: fk.split.random, test_size 0.2, seed 0" in page
    assert "refitted on train" in page and "fk.cross_validate result passed as cv_result" in page
    assert html_escape(repr(model)) in page


def html_escape(text):
    import html

    return html.escape(text)


def test_item_map_table_drives_the_figure(fitted):
    model, train, _ = fitted
    table = item_map_table(model, min_count=20, train=train)
    assert (table["train_count"] >= 20).all() and table["train_count"].is_monotonic_decreasing
    assert sum(table.attrs["variance"]) <= 100.0 + 1e-9
    ax = plot_item_map(table, n_labels=3).axes[0]
    assert ax.get_xlabel() == f"component 1 ({table.attrs['variance'][0]:.0f}% of variance)"
    assert 1 <= len(ax.texts) <= 3


def test_write_report_rejects_bad_arguments(fitted, tmp_path):
    model, train, test = fitted
    with pytest.raises(fk.exceptions.InvalidParameterError, match="write_report: title must be"):
        write_report(tmp_path, model=model, train=train, test=test, title=3)
    with pytest.raises(fk.exceptions.InvalidParameterError, match="write_report: k must be"):
        write_report(tmp_path, model=model, train=train, test=test, k=0)
    with pytest.raises(
        fk.exceptions.InvalidParameterError,
        match="write_report: model must be a fitted factorkit estimator",
    ):
        write_report(tmp_path, model="model", train=train, test=test)
