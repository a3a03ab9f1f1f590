"""Data read by the command line: --duplicates, and reader fixes written as CLI flags."""

from __future__ import annotations

import pytest

from factorkit.cli import main

HEADER = "userId,movieId,rating\n"


@pytest.fixture
def ratings(tmp_path):
    def _write(text: str, name: str = "ratings.csv") -> str:
        path = tmp_path / name
        path.write_text(text)
        return str(path)

    return _write


def run(argv, capsys):
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_duplicates_hint_is_a_flag_and_the_flag_works(ratings, capsys, tmp_path):
    path = ratings(HEADER + "1,10,4.0\n1,20,3.0\n2,10,5.0\n1,10,2.0\n")
    model = str(tmp_path / "m.fk")
    code, _, err = run(["fit", path, "--model", "baseline", "--out", model], capsys)
    assert code == 2
    assert err == (
        "factorkit fit: error: ratings.csv line 2 and ratings.csv line 5 both hold user 1 and "
        "item 10; each (user, item) pair may appear once. Pass --duplicates last, mean or sum "
        "to combine them.\n"
    )
    code, _, err = run(
        ["fit", path, "--model", "baseline", "--duplicates", "mean", "--out", model], capsys
    )
    assert code == 0, err
    code, out, _ = run(["predict", model, "--user", "1", "--item", "10"], capsys)
    assert code == 0 and "3" in out  # the mean of 4.0 and 2.0


def test_separator_hint_is_a_flag(ratings, capsys):
    path = ratings("userId;movieId;rating\n1;10;4.0\n")
    code, _, err = run(["fit", path, "--model", "baseline", "--out", "unused.fk"], capsys)
    assert code == 2
    assert err == (
        "factorkit fit: error: ratings.csv: user column 'userId' not found; the header has 1 "
        "column: ['userId;movieId;rating']. The file looks semicolon-separated; pass --sep ';'. "
        "Pass --user-col <one of the column names>, or --no-header and 0-based column "
        "positions.\n"
    )


def test_tab_separator_and_no_header_hints(ratings, capsys):
    path = ratings("1\t10\t4.0\n")
    code, _, err = run(
        ["fit", path, "--model", "baseline", "--no-header", "--user-col", "0",
         "--item-col", "1", "--out", "unused.fk"],
        capsys,
    )  # fmt: skip
    assert code == 2
    assert err == (
        "factorkit fit: error: ratings.csv: item column position 1 is out of range; the first "
        "line has 1 field (positions 0..0). The file looks tab-separated; pass --sep '\\t'.\n"
    )
    code, _, err = run(
        ["fit", path, "--model", "baseline", "--no-header", "--sep", "\\t", "--out", "x.fk"],
        capsys,
    )
    assert code == 2
    assert err == (
        "factorkit fit: error: with --no-header, user must be a 0-based column position (int); "
        "got 'userId'. For example --user-col 0, --item-col 1, --rating-col 2.\n"
    )


def test_bad_duplicates_choice_is_refused_by_the_parser(ratings, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["fit", ratings(HEADER + "1,10,4.0\n"), "--duplicates", "first"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "argument --duplicates: invalid choice: 'first'" in err
    assert "'error', 'last', 'mean', 'sum'" in err


def test_python_callers_keep_python_hints(ratings):
    """The CLI's flag style ends with the call: the API still says sep=';'."""
    import factorkit as fk
    from factorkit.exceptions import DataError

    path = ratings("userId;movieId;rating\n1;10;4.0\n")
    with pytest.raises(DataError, match=r"pass sep=';'\. Pass user=<one of the column names>"):
        fk.read_csv(path)


def test_two_roles_on_one_column_name_the_flags(ratings, capsys):
    path = ratings(HEADER + "1,10,4.0\n")
    code, _, err = run(
        ["fit", path, "--model", "baseline", "--item-col", "userId", "--out", "unused.fk"],
        capsys,
    )
    assert code == 2
    assert err == (
        "factorkit fit: error: --user-col userId and --item-col userId both name column "
        "'userId'; each role needs its own column. Pass --item-col <another column>.\n"
    )
