"""MovieLens: the shipped small data set and read_movielens on every GroupLens layout."""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from factorkit.data.interactions import Interactions
from factorkit.data.io.movielens import ML100K_GENRES, load_movielens_small, read_movielens
from factorkit.exceptions import DataError, DataWarning

# sha256 of the files copied from GroupLens' ml-latest-small.zip (its SHA256SUMS).
SHIPPED_SHA256 = {
    "README.txt": "63d22ac138e80fae37021797ed8e1b9424b5239dc576a137422adf783ae3f404",
    "links.csv": "97ad18e4e56a09363c65676b6cb3482ce3e2cea2372a24620c1599c843325f31",
    "movies.csv": "5a5f32dd9bb3797b8e728a1b98958789d2b13f294a69fdfbc5727f8a9611aa07",
    "ratings.csv": "aa289ca83157595d0df6aea1be6a4ded676ddc4385472e8313a8ed9805352646",
    "tags.csv": "92a9f8bb7916dceef6151209845788c3643f794dfa79d1feaec7121b5960399d",
}


# ---------------------------------------------------------------------- fixtures
def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


def make_ml100k(root: Path) -> Path:
    d = root / "ml-100k"
    _write(d / "u.data", "196\t242\t3\t881250949\n186\t302\t3\t891717742\n196\t302\t4\t881251000\n")
    flags_comedy = "|".join("1" if g == "Comedy" else "0" for g in ML100K_GENRES)
    flags_none = "|".join("0" for _ in ML100K_GENRES)
    flags_two = "|".join("1" if g in ("Action", "Sci-Fi") else "0" for g in ML100K_GENRES)
    _write(
        d / "u.item",
        f"242|Kolya (1996)|24-Jan-1997||http://x|{flags_comedy}\n"
        f"302|L.A. Confidential (1997)|01-Jan-1997||http://y|{flags_two}\n"
        f"267|unknown||||{flags_none}\n"
        f"1300|Café Society (1995)|01-Jan-1995||http://z|{flags_comedy}\n",
        encoding="latin-1",
    )
    _write(d / "u.genre", "".join(f"{g}|{k}\n" for k, g in enumerate(ML100K_GENRES)) + "\n")
    return d


def make_ml1m(root: Path, dirname: str = "ml-1m", encoding: str = "latin-1") -> Path:
    d = root / dirname
    _write(
        d / "ratings.dat",
        "1::1193::5::978300760\n1::661::3::978302109\n2::1193::4.5::978298413\n"
        "3::3::2::978297867\n",
    )
    _write(
        d / "movies.dat",
        "3::Grumpier Old Men (1995)::Comedy|Romance\n"
        "661::James and the Giant Peach (1996)::Animation|Children's|Musical\n"
        "1193::Misérables, Les (1995)::Drama\n",
        encoding=encoding,
    )
    _write(d / "users.dat", "1::F::1::10::48067\n")
    return d


def make_csv(root: Path, dirname: str = "ml-latest-small") -> Path:
    d = root / dirname
    _write(
        d / "ratings.csv",
        "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,4.5,964981247\n"
        "7,3,0.5,1106635946\n7,193609,5.0,1537799250\n",
    )
    _write(
        d / "movies.csv",
        "movieId,title,genres\n"
        "1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy\n"
        '3,"American President, The (1995)",Comedy|Drama|Romance\n'
        "50,Babylon 5,Sci-Fi\n"
        "99,Fawlty Towers (1975–1979),Comedy\n"
        "193609,Amélie (2001),(no genres listed)\n",
    )
    _write(d / "links.csv", "movieId,imdbId,tmdbId\n1,0114709,862\n")
    return d


# ---------------------------------------------------------------------- shipped data
def test_shipped_files_are_the_grouplens_files():
    root = resources.files("factorkit.data").joinpath("resources").joinpath("ml-latest-small")
    for name, digest in SHIPPED_SHA256.items():
        assert hashlib.sha256(root.joinpath(name).read_bytes()).hexdigest() == digest, name


def test_load_movielens_small_counts_and_types():
    data = load_movielens_small()
    assert isinstance(data, Interactions)
    assert (data.n_users, data.n_items, len(data)) == (610, 9724, 100836)
    assert not data.implicit
    assert data.rating_scale == (0.5, 5.0)
    assert data.has_timestamps
    assert data.timestamps.dtype == np.int64
    assert (data.timestamps.min(), data.timestamps.max()) == (828124615, 1537799250)
    assert data.user_ids.ids.dtype.kind == "i" and data.item_ids.ids.dtype.kind == "i"
    assert 1 in data.user_ids and 193609 in data.item_ids
    items, ratings = data.user_items(1)
    assert dict(zip(items.tolist(), ratings.tolist(), strict=True))[1] == 4.0


def test_load_movielens_small_metadata():
    meta = load_movielens_small().item_metadata
    assert list(meta.columns) == ["title", "genres", "year"]
    assert meta.index.name == "movieId" and meta.index.is_unique
    assert len(meta) == 9742
    assert meta.loc[1, "title"] == "Toy Story (1995)"
    assert meta.loc[1, "genres"] == "Adventure|Animation|Children|Comedy|Fantasy"
    assert meta.loc[1, "year"] == 1995
    assert str(meta["year"].dtype) == "Int64"
    assert meta["year"].isna().sum() == 12  # titles such as "Babylon 5" carry no year
    assert pd.isna(meta.loc[meta["title"] == "Babylon 5", "year"]).all()


def test_load_movielens_small_returns_independent_metadata():
    a = load_movielens_small()
    a.item_metadata.loc[1, "title"] = "changed"
    b = load_movielens_small()
    assert b.item_metadata.loc[1, "title"] == "Toy Story (1995)"
    assert a is not b and a.user_map is b.user_map  # read-only parts are shared
    with pytest.raises(ValueError, match=r"read-only"):
        b.values[0] = 1.0


def test_read_movielens_reads_the_shipped_directory_like_any_other(tmp_path):
    root = resources.files("factorkit.data").joinpath("resources").joinpath("ml-latest-small")
    data = read_movielens(Path(str(root)))
    small = load_movielens_small()
    assert len(data) == len(small) and np.array_equal(data.values, small.values)


# ---------------------------------------------------------------------- layouts
def test_ml100k_layout(tmp_path):
    data = read_movielens(make_ml100k(tmp_path))
    assert (data.n_users, data.n_items, len(data)) == (2, 2, 3)
    assert sorted(data.user_ids) == [186, 196] and sorted(data.item_ids) == [242, 302]
    df = data.to_pandas().set_index(["user", "item"])
    assert df.loc[(196, 302), "rating"] == 4.0
    assert df.loc[(196, 302), "timestamp"] == 881251000
    meta = data.item_metadata
    assert meta.loc[1300, "title"] == "Café Society (1995)"  # latin-1 decoded
    assert meta.loc[302, "genres"] == "Action|Sci-Fi"
    assert meta.loc[242, "genres"] == "Comedy" and meta.loc[242, "year"] == 1996
    assert meta.loc[267, "title"] == "unknown" and pd.isna(meta.loc[267, "year"])
    assert meta.loc[267, "genres"] == ""


def test_ml1m_layout_latin1(tmp_path):
    data = read_movielens(make_ml1m(tmp_path))
    assert (data.n_users, data.n_items, len(data)) == (3, 3, 4)
    assert sorted(data.item_ids) == [3, 661, 1193]
    df = data.to_pandas().set_index(["user", "item"])
    assert df.loc[(2, 1193), "rating"] == 4.5
    assert df.loc[(3, 3), "timestamp"] == 978297867
    assert data.item_metadata.loc[1193, "title"] == "Misérables, Les (1995)"
    assert data.item_metadata.loc[661, "genres"] == "Animation|Children's|Musical"


def test_ml10m_layout_utf8_in_subdirectory(tmp_path):
    # ml-10m.zip unpacks to ml-10M100K/; passing the parent finds it.
    make_ml1m(tmp_path / "ml-10m", dirname="ml-10M100K", encoding="utf-8")
    data = read_movielens(tmp_path / "ml-10m")
    assert len(data) == 4
    assert data.item_metadata.loc[1193, "title"] == "Misérables, Les (1995)"


def test_csv_layout(tmp_path):
    data = read_movielens(make_csv(tmp_path))
    assert (data.n_users, data.n_items, len(data)) == (2, 3, 4)
    assert sorted(data.user_ids) == [1, 7] and sorted(data.item_ids) == [1, 3, 193609]
    meta = data.item_metadata
    assert len(meta) == 5  # unrated movies stay in the metadata
    assert meta.loc[3, "title"] == "American President, The (1995)"
    assert meta.loc[193609, "title"] == "Amélie (2001)"
    assert meta.loc[193609, "genres"] == "(no genres listed)"
    assert meta.loc[99, "year"] == 1975
    assert pd.isna(meta.loc[50, "year"])
    assert data.to_pandas().query("user == 7 and item == 3")["rating"].item() == 0.5


@pytest.mark.parametrize(
    ("maker", "filename"),
    [(make_ml100k, "u.data"), (make_ml1m, "ratings.dat"), (make_csv, "ratings.csv")],
)
def test_ratings_file_path_is_accepted(tmp_path, maker, filename):
    d = maker(tmp_path)
    assert len(read_movielens(d / filename)) == len(read_movielens(str(d)))


def test_missing_movie_file_warns_and_leaves_metadata_none(tmp_path):
    d = make_csv(tmp_path)
    (d / "movies.csv").unlink()
    with pytest.warns(DataWarning, match=r"movies.csv not found next to .*ratings.csv"):
        data = read_movielens(d)
    assert data.item_metadata is None and len(data) == 4


# ---------------------------------------------------------------------- errors
def test_missing_path(tmp_path):
    with pytest.raises(DataError, match=r"nope' does not exist; pass the directory unpacked"):
        read_movielens(tmp_path / "nope")


def test_not_a_path():
    with pytest.raises(DataError, match=r"path must be a str or path-like .* got int"):
        read_movielens(3)


def test_unrecognised_directory_lists_what_was_looked_for(tmp_path):
    _write(tmp_path / "stuff" / "notes.txt", "hi")
    _write(tmp_path / "data.csv", "a,b\n")
    with pytest.raises(
        DataError,
        match=r"no MovieLens data found in .*; looked for u\.data \(ml-100k\), ratings\.dat "
        r"\(ml-1m, ml-10m\) and ratings\.csv .* found \[data\.csv, stuff/\]",
    ):
        read_movielens(tmp_path)


def test_empty_directory(tmp_path):
    with pytest.raises(DataError, match=r"found an empty directory"):
        read_movielens(tmp_path)


def test_several_datasets_in_one_directory(tmp_path):
    make_ml1m(tmp_path)
    make_csv(tmp_path)
    with pytest.raises(DataError, match=r"holds several MovieLens data sets \(ml-1m, ml-latest"):
        read_movielens(tmp_path)


def test_zip_path_says_unzip(tmp_path):
    z = _write(tmp_path / "ml-1m.zip", "PK")
    with pytest.raises(DataError, match=r"is a zip archive; unzip it first"):
        read_movielens(z)


def test_other_file_is_rejected(tmp_path):
    f = _write(tmp_path / "movies.csv", "movieId,title,genres\n")
    with pytest.raises(DataError, match=r"'movies\.csv' is not a MovieLens ratings file"):
        read_movielens(f)


def test_bad_rating_names_file_and_line(tmp_path):
    d = make_csv(tmp_path)
    _write(d / "ratings.csv", "userId,movieId,rating,timestamp\n1,1,4.0,1\n1,3,abc,2\n")
    with pytest.raises(DataError, match=r"ratings\.csv line 3: rating 'abc' is not a number"):
        read_movielens(d)


def test_missing_rating_names_line_in_dat(tmp_path):
    d = make_ml1m(tmp_path)
    _write(d / "ratings.dat", "1::1193::5::978300760\n1::661::\n")
    with pytest.raises(DataError, match=r"ratings\.dat line 2: rating is missing"):
        read_movielens(d)


def test_single_colon_separator_in_dat(tmp_path):
    d = make_ml1m(tmp_path)
    _write(d / "ratings.dat", "1::1193::5::978300760\n1:661:3:978302109:::\n")
    with pytest.raises(
        DataError, match=r"ratings.dat line 2 is not UserID::MovieID::Rating::Timestamp"
    ):
        read_movielens(d)


def test_wrong_field_count_in_dat(tmp_path):
    d = make_ml1m(tmp_path)
    _write(d / "ratings.dat", "1::1193::5\n")
    with pytest.raises(DataError, match=r"ratings.dat line 1 has 5 ':'-separated fields"):
        read_movielens(d)


def test_extra_field_in_u_data(tmp_path):
    d = make_ml100k(tmp_path)
    _write(d / "u.data", "1\t2\t3\t4\n1\t3\t3\t4\t9\n")
    with pytest.raises(DataError, match=r"u.data is malformed: .*Expected 4 fields in line 2"):
        read_movielens(d)


def test_u_data_with_wrong_columns(tmp_path):
    d = make_ml100k(tmp_path)
    _write(d / "u.data", "1\t2\t3\n")
    with pytest.raises(DataError, match=r"u\.data line 1 has 3 tab-separated fields"):
        read_movielens(d)


def test_text_user_id(tmp_path):
    d = make_csv(tmp_path)
    _write(d / "ratings.csv", "userId,movieId,rating,timestamp\n1,1,4.0,1\nbob,3,4,2\n")
    with pytest.raises(DataError, match=r"ratings\.csv line 3: user id 'bob' is not an integer"):
        read_movielens(d)


def test_duplicate_rating_pair(tmp_path):
    d = make_csv(tmp_path)
    _write(d / "ratings.csv", "userId,movieId,rating,timestamp\n1,1,4.0,1\n1,1,3.0,2\n")
    with pytest.raises(DataError, match=r"ratings\.csv line 2 and ratings\.csv line 3 both hold"):
        read_movielens(d)


def test_duplicates_policy_is_passed_through(tmp_path):
    d = make_csv(tmp_path)
    _write(d / "ratings.csv", "userId,movieId,rating,timestamp\n1,1,4.0,1\n1,1,3.0,2\n")
    data = read_movielens(d, duplicates="last")
    assert len(data) == 1 and data.values.tolist() == [3.0]


def test_ratings_csv_without_expected_header(tmp_path):
    d = make_csv(tmp_path)
    _write(d / "ratings.csv", "userId,movieId,rating\n1,1,4\n")
    with pytest.raises(
        DataError,
        match=r"ratings\.csv has no 'timestamp' column; its header is 'userId,movieId,rating', "
        r"but a MovieLens ratings\.csv starts with the header userId,movieId,rating,timestamp",
    ):
        read_movielens(d)


def test_empty_ratings_file(tmp_path):
    d = make_csv(tmp_path)
    _write(d / "ratings.csv", "")
    with pytest.raises(DataError, match=r"ratings\.csv is empty"):
        read_movielens(d)


def test_bad_movie_id_in_movies_dat(tmp_path):
    d = make_ml1m(tmp_path)
    _write(d / "movies.dat", "3::Heat (1995)::Action\nx::Bad::Drama\n")
    with pytest.raises(DataError, match=r"movies\.dat line 2: movie id 'x' is not an integer"):
        read_movielens(d)


def test_short_line_in_movies_dat(tmp_path):
    d = make_ml1m(tmp_path)
    _write(d / "movies.dat", "3::Heat (1995)\n")
    with pytest.raises(DataError, match=r"movies\.dat line 1: expected MovieID::Title::Genres"):
        read_movielens(d)


def test_duplicate_movie_id_in_movies_csv(tmp_path):
    d = make_csv(tmp_path)
    _write(d / "movies.csv", "movieId,title,genres\n1,A,Drama\n2,B,Drama\n1,C,Drama\n")
    with pytest.raises(DataError, match=r"movies\.csv: lines 2 and 4 both describe movie id 1"):
        read_movielens(d)


def test_movies_csv_missing_column(tmp_path):
    d = make_csv(tmp_path)
    _write(d / "movies.csv", "movieId,name\n1,A\n")
    with pytest.raises(DataError, match=r"movies\.csv: column 'title' not found"):
        read_movielens(d)


def test_u_item_wrong_field_count(tmp_path):
    d = make_ml100k(tmp_path)
    _write(d / "u.item", "1|Toy Story (1995)|x\n")
    with pytest.raises(DataError, match=r"u.item line 1: expected 24 '\|'-separated fields"):
        read_movielens(d)


def test_u_item_bad_genre_flag(tmp_path):
    d = make_ml100k(tmp_path)
    flags = "|".join(["2"] + ["0"] * (len(ML100K_GENRES) - 1))
    _write(d / "u.item", f"1|Toy Story (1995)|||url|{flags}\n")
    with pytest.raises(DataError, match=r"u\.item line 1: genre flags must be 0 or 1"):
        read_movielens(d)


# ---------------------------------------------------------------------- public module
def test_public_module_exports():
    pytest.importorskip("factorkit.data.synthetic")
    import factorkit.datasets as ds
    from factorkit.data.io import download, movielens

    assert ds.load_movielens_small is movielens.load_movielens_small
    assert ds.read_movielens is movielens.read_movielens
    assert ds.load_movielens is download.load_movielens
    assert callable(ds.make_ratings) and callable(ds.make_implicit)
