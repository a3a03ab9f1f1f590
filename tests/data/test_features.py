"""fk.Features: column kinds, vocabulary, transform, bad input, the MovieLens loader."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import factorkit as fk
from factorkit.exceptions import DataError, DataWarning


@pytest.fixture()
def frame():
    return pd.DataFrame(
        {
            "movie": [10, 20, 30],
            "genres": ["Comedy|Drama", "Drama", "Horror"],
            "tags": [["funny", "dark"], [], None],
            "country": ["fr", "us", "us"],
            "year": [1990, 2000, 2010],
        }
    )


def test_column_kinds_and_weights(frame):
    f = fk.Features.from_pandas(frame, id="movie", sep="|")
    assert f.names.tolist() == [
        "genres=Comedy", "genres=Drama", "genres=Horror",
        "tags=dark", "tags=funny",
        "country=fr", "country=us",
        "year",
    ]  # fmt: skip
    m = f.matrix.toarray()
    assert f.matrix.dtype == np.float32 and f.matrix.format == "csr"
    # multi-label: an id's labels in one column share a weight of 1
    np.testing.assert_allclose(m[0, :3], [0.5, 0.5, 0.0])
    np.testing.assert_allclose(m[0, 3:5], [0.5, 0.5])
    np.testing.assert_allclose(m[1:, 3:5], 0.0)  # empty list and None: no labels
    np.testing.assert_allclose(m[:, 5:7], [[1, 0], [0, 1], [0, 1]])  # one-hot
    np.testing.assert_allclose(m[:, 7], [-1.2247449, 0.0, 1.2247449], rtol=1e-6)
    assert f.ids.ids.tolist() == [10, 20, 30] and f.kind == "item"


def test_transform_keeps_vocabulary_and_scaling(frame):
    f = fk.Features.from_pandas(frame, id="movie", columns=["genres", "year"], sep="|")
    new = pd.DataFrame(
        {"movie": [99, 98], "genres": ["Horror|Western", "Drama"], "year": [2000, 2020]}
    )
    with pytest.warns(DataWarning, match="1 value"):
        g = f.transform(new)
    assert g.names.tolist() == f.names.tolist()
    assert g.ids.ids.tolist() == [99, 98]
    m = g.matrix.toarray()
    np.testing.assert_allclose(m[0, :3], [0.0, 0.0, 1.0])  # Western left out, Horror kept
    np.testing.assert_allclose(m[:, 3], [0.0, 2.4494898], rtol=1e-6)


def test_kinds_can_be_forced(frame):
    f = fk.Features.from_pandas(frame, id="movie", columns=["year"], categorical=["year"])
    assert f.names.tolist() == ["year=1990", "year=2000", "year=2010"]


@pytest.mark.parametrize(
    ("edit", "kwargs", "message"),
    [
        (lambda d: d.assign(movie=[10, 10, 30]), {}, r"item id 10 appears in rows \[0, 1\]"),
        (
            lambda d: d.assign(year=[1990, "n/a", 2010]),
            {"numeric": ["year"]},
            r"numeric column 'year' row 1 holds 'n/a', which is not a number",
        ),
        (
            lambda d: d.assign(year=[1990, np.nan, 2010]),
            {},
            r"numeric column 'year' row 1 is NaN .*fillna",
        ),
        (
            lambda d: d.assign(country=["fr", None, "us"]),
            {},
            r"categorical column 'country' row 1 is NaN",
        ),
        (lambda d: d.assign(movie=[10, np.nan, 30]), {}, r"row 1 has no id \(NaN\)"),
        (lambda d: d, {"columns": ["nope"]}, r"column\(s\) \['nope'\] not in the DataFrame"),
    ],
    ids=["duplicate", "non-numeric", "nan-numeric", "nan-categorical", "nan-id", "missing"],
)
def test_bad_input_is_named(frame, edit, kwargs, message):
    with pytest.raises(DataError, match=message):
        fk.Features.from_pandas(edit(frame), id="movie", sep="|", **kwargs)


def test_vocabulary_mismatch_is_named(frame):
    f = fk.Features.from_pandas(frame, id="movie", sep="|")
    g = fk.Features.from_pandas(frame.drop(columns="year"), id="movie", sep="|")
    with pytest.raises(
        DataError, match=r"vocabulary does not match .*missing: \['year'\].*transform"
    ):
        g.check_vocabulary(f.names, "model.score_new_items")


def test_from_scipy_checks_shapes():
    import scipy.sparse as sp

    f = fk.Features.from_scipy(sp.eye(3), ids=["a", "b", "c"], kind="user")
    assert f.names.tolist() == ["f0", "f1", "f2"] and f.kind == "user"
    with pytest.raises(DataError, match="matrix is 3 x 3 but there are 2 ids"):
        fk.Features.from_scipy(sp.eye(3), ids=["a", "b"])
    with pytest.raises(DataError, match="NaN or infinite"):
        fk.Features.from_scipy(np.array([[np.nan]]), ids=["a"])


def test_movielens_small_item_features():
    f = fk.datasets.load_movielens_small_item_features()
    data = fk.datasets.load_movielens_small()
    assert f.n_ids == 9742 and f.kind == "item"
    genres = [n for n in f.names if n.startswith("genres=")]
    assert len(genres) == 20
    assert sum(n.startswith("tags=") for n in f.names) > 1000
    # every rated movie has a row; ids are the raw movieId
    assert (f.ids.lookup(data.item_map.ids) >= 0).all()
    row = f.rows_for([1]).toarray()[0]
    names = f.names[row != 0].tolist()
    assert "genres=Animation" in names and "tags=pixar" in names and "year" in names
