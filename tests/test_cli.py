import pytest

import factorkit as fk
from factorkit.cli import main


@pytest.fixture
def ratings_csv(tmp_path):
    path = tmp_path / "ratings.csv"
    rows = ["userId,movieId,rating"]
    for u in range(1, 21):
        for i in range(1, 16):
            if (u * 7 + i * 3) % 4:
                rows.append(f"{u},{i},{1 + (u + i) % 5}")
    path.write_text("\n".join(rows) + "\n")
    return path


def test_fit_predict_info_round_trip(ratings_csv, tmp_path, capsys):
    out = tmp_path / "model.fk"
    assert (
        main(
            [
                "fit",
                str(ratings_csv),
                "--model",
                "baseline",
                "--epochs",
                "3",
                "--out",
                str(out),
                "-q",
            ]
        )
        == 0
    )
    model = fk.load(out)
    assert main(["predict", str(out), "--user", "1", "--item", "2", "--item", "999"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("user 1\titem 2\t")
    assert float(lines[0].split("\t")[2]) == pytest.approx(model.predict([1], [2])[0], abs=1e-4)
    assert float(lines[1].split("\t")[2]) == pytest.approx(model.predict([1], [999])[0], abs=1e-4)
    assert main(["info", str(out)]) == 0
    info = capsys.readouterr().out
    assert "model:      BaselineOnly" in info and "users:      20" in info


def test_evaluate_prints_folds_mean_std(ratings_csv, capsys):
    assert main(["evaluate", str(ratings_csv), "--model", "baseline", "--cv", "3", "-q"]) == 0
    out = capsys.readouterr().out
    assert "3-fold cross-validation" in out
    for word in ("rmse", "mae", "fit_time", "mean", "std"):
        assert word in out


def test_flag_that_does_not_apply(ratings_csv, tmp_path, capsys):
    code = main(
        [
            "fit",
            str(ratings_csv),
            "--model",
            "baseline",
            "--factors",
            "8",
            "--out",
            str(tmp_path / "m.fk"),
        ]
    )
    assert code == 2
    assert "--factors does not apply to BaselineOnly" in capsys.readouterr().err


def test_missing_data_file(capsys):
    assert main(["fit", "nope.csv", "--model", "baseline", "--out", "x.fk"]) == 2
    assert "DATA 'nope.csv' is neither a file nor a built-in data set" in capsys.readouterr().err


def test_predict_non_integer_user(ratings_csv, tmp_path, capsys):
    out = tmp_path / "model.fk"
    main(["fit", str(ratings_csv), "--model", "baseline", "--out", str(out), "-q"])
    assert main(["predict", str(out), "--user", "abc", "--item", "1"]) == 2
    assert "user id 'abc' is not an integer" in capsys.readouterr().err


def test_demo_runs_on_builtin_data(capsys):
    assert main(["demo", "-q"]) == 0
    out = capsys.readouterr().out
    assert "610 users x 9,724 items, 100,836 ratings" in out
    assert "rating histogram" in out


@pytest.fixture(scope="module")
def biased_mf_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "mf.fk"
    assert (
        main(
            [
                "fit",
                "movielens-small",
                "--model",
                "biased-mf",
                "--epochs",
                "5",
                "--out",
                str(path),
                "-q",
            ]
        )
        == 0
    )
    return path


def test_recommend_one_user_with_titles(biased_mf_file, capsys):
    assert main(["recommend", str(biased_mf_file), "--user", "1", "-k", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    # rating models say what the score is: the predicted rating before clipping
    assert lines.pop(0) == (
        "(score: predicted rating, unclipped; `factorkit predict` clips to the scale)"
    )
    assert lines[0].split() == ["rank", "item", "score", "title"]
    assert len(lines) == 4
    model = fk.load(biased_mf_file)
    items, _ = model.recommend(1, k=3)
    titles = fk.datasets.load_movielens_small().item_metadata["title"]
    for line, item in zip(lines[1:], items, strict=True):
        assert line.split()[1] == str(item)
        assert line.endswith(titles[item])


def test_similar_names_the_query_item(biased_mf_file, capsys):
    assert main(["similar", str(biased_mf_file), "--item", "1", "-k", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("items most similar to 1 (Toy Story (1995))")


def test_recommend_all_to_parquet_and_csv(biased_mf_file, tmp_path):
    import pandas as pd

    for name in ("recs.parquet", "recs.csv"):
        out = tmp_path / name
        assert (
            main(
                [
                    "recommend",
                    str(biased_mf_file),
                    "--all",
                    "-k",
                    "4",
                    "--out",
                    str(out),
                    "--batch-size",
                    "100",
                    "-q",
                ]
            )
            == 0
        )
        frame = pd.read_parquet(out) if name.endswith("parquet") else pd.read_csv(out)
        assert list(frame.columns) == ["user", "rank", "item", "score"]
        assert len(frame) == 610 * 4 and frame["user"].nunique() == 610


def test_recommend_all_needs_out(biased_mf_file, capsys):
    assert main(["recommend", str(biased_mf_file), "--all"]) == 2
    assert "--all writes to a file: pass --out recs.parquet" in capsys.readouterr().err


@pytest.mark.parametrize("model", ["implicit-als", "bpr"])
def test_implicit_models_from_ratings_with_min_rating(model, tmp_path, capsys):
    out = tmp_path / f"{model}.fk"
    assert (
        main(
            [
                "fit",
                "movielens-small",
                "--model",
                model,
                "--min-rating",
                "4",
                "--epochs",
                "5",
                "--out",
                str(out),
                "-q",
            ]
        )
        == 0
    )
    fitted = fk.load(out)
    assert not fk.get_tags(fitted).explicit
    assert main(["recommend", str(out), "--user", "1", "-k", "5"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 6 and lines[0].split()[0] == "rank"
    # evaluation of an implicit model defaults to top-10 ranking metrics
    assert (
        main(
            [
                "evaluate",
                "movielens-small",
                "--model",
                model,
                "--min-rating",
                "4",
                "--epochs",
                "3",
                "--cv",
                "2",
                "-q",
            ]
        )
        == 0
    )
    assert "ndcg@10" in capsys.readouterr().out


def test_predict_for_unknown_ids_warns_in_cli_terms(biased_mf_file, capsys):
    assert main(["predict", str(biased_mf_file), "--user", "99999", "--item", "318"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("user 99999\titem 318\t")
    assert captured.err.strip() == (
        "factorkit predict: warning: 1 of 1 (user, item) pairs have a user or item the model "
        "does not know; they get the fallback prediction (global mean plus the known bias). "
        "Pass --unknown nan or --unknown error to mark or reject them."
    )
    assert main(["predict", str(biased_mf_file), "--user", "1", "--item", "318"]) == 0
    assert capsys.readouterr().err == ""


def test_fit_with_time_decay_weighs_recent_ratings_more(tmp_path, capsys):
    """--time-decay passes fk.time_decay weights as sample_weight: the saved model is the
    one the library fits with those weights, and the output says how they spread."""
    out = tmp_path / "m.fk"
    argv = ["fit", "movielens-small", "--model", "baseline", "--out", str(out)]
    assert main([*argv, "--time-decay", "365d"]) == 0
    text = capsys.readouterr().out
    assert "weighted by age: half-life 365d, weights " in text and "(latest)" in text
    data = fk.datasets.load_movielens_small()
    expected = fk.BaselineOnly().fit(data, sample_weight=fk.time_decay(data, half_life="365d"))
    unweighted = fk.BaselineOnly().fit(data)
    got = fk.load(out).predict([1, 2], [50, 50])
    assert got == pytest.approx(expected.predict([1, 2], [50, 50]), abs=1e-5)
    assert got != pytest.approx(unweighted.predict([1, 2], [50, 50]), abs=1e-3)


def test_time_decay_errors_speak_flags(ratings_csv, tmp_path, capsys):
    out = ["--out", str(tmp_path / "m.fk")]
    argv = ["fit", str(ratings_csv), "--model", "baseline", *out, "--time-decay", "30d"]
    assert main(argv) == 2
    assert (
        "--time-decay weighs each rating by its age and needs the times: pass "
        "--timestamp-col COLUMN (Unix seconds)" in capsys.readouterr().err
    )
    argv = ["fit", "movielens-small", "--model", "baseline", *out, "--time-decay", "soon"]
    assert main(argv) == 2
    assert (
        "--time-decay must be a positive number of seconds or a number with a unit (s, min, "
        "h, d, w, y), e.g. --time-decay 180d; got 'soon'" in capsys.readouterr().err
    )
