"""Tests of fk.read_csv / fk.read_parquet: happy paths on every format, and one pinned
message per kind of bad input (file, line, field, expectation, fix)."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import re

import numpy as np
import pandas as pd
import pytest

import factorkit.data.io.csv as csv_io
from factorkit.data.io import _arrow_csv, _numba_csv, _source, read_csv, read_parquet
from factorkit.exceptions import DataError, InvalidParameterError

HEADER = "userId,movieId,rating,timestamp\n"
GOOD = HEADER + "1,10,4.0,100\n1,20,3.5,200\n2,10,5.0,300\n"


@pytest.fixture(params=["native", "arrow", "pandas"])
def engine(request, monkeypatch):
    """Run a test with each fast path: factorkit's own parser (falling back to the others
    on irregular input), pyarrow's reader alone, and pandas' C parser alone (no pyarrow)."""
    if request.param == "arrow":
        pytest.importorskip("pyarrow")
        monkeypatch.setattr(csv_io, "_read_fast", _arrow_csv.read)
    elif request.param == "pandas":  # as if pyarrow were not installed (pandas may use it)
        monkeypatch.setattr(_numba_csv, "read", lambda src, cols: None)
        monkeypatch.setattr(_arrow_csv, "arrow", lambda: None)
    return request.param


@pytest.fixture
def write(tmp_path):
    def _write(text: str | bytes, name: str = "ratings.csv"):
        path = tmp_path / name
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_bytes(text.encode("utf-8"))
        return path

    return _write


def triples(data):
    df = data.to_pandas()
    return sorted(zip(df["user"], df["item"], df.iloc[:, 2].astype(float), strict=True))


# ====================================================================== happy paths
def test_reads_ratings_and_timestamps(write, engine):
    data = read_csv(write(GOOD), timestamp="timestamp")
    assert (data.n_users, data.n_items, len(data)) == (2, 2, 3)
    assert not data.implicit
    assert data.user_ids.ids.tolist() == [1, 2]
    assert data.item_ids.ids.tolist() == [10, 20]
    assert data.values.dtype == np.float32
    df = data.to_pandas()
    assert df.to_dict("list") == {
        "user": [1, 1, 2],
        "item": [10, 20, 10],
        "rating": [4.0, 3.5, 5.0],
        "timestamp": [100, 200, 300],
    }
    assert data.timestamps.dtype == np.int64


def test_without_timestamp_and_implicit(write, engine):
    path = write(GOOD)
    assert read_csv(path).timestamps is None
    data = read_csv(path, rating=None)
    assert data.implicit
    assert data.values.tolist() == [1.0, 1.0, 1.0]


@pytest.mark.parametrize("sep", [",", "\t", ";", "|", " ", "::"])
def test_every_separator(write, engine, sep):
    text = "".join(sep.join(line.split(",")) + "\n" for line in GOOD.splitlines())
    data = read_csv(write(text), timestamp="timestamp", sep=sep)
    assert triples(data) == [(1, 10, 4.0), (1, 20, 3.5), (2, 10, 5.0)]
    assert data.timestamps.tolist() == [100, 200, 300]


def test_movielens_dat_without_header(write, engine):
    path = write("1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n")
    data = read_csv(path, user=0, item=1, rating=2, timestamp=3, sep="::", header=False)
    assert triples(data) == [(1, 661, 3.0), (1, 1193, 5.0), (2, 1193, 4.0)]


def test_double_colon_with_colon_inside_a_field(write, engine):
    path = write("u:1::a::5\nu:2::b::4\n")
    data = read_csv(path, user=0, item=1, rating=2, sep="::", header=False)
    assert triples(data) == [("u:1", "a", 5.0), ("u:2", "b", 4.0)]


def test_positions_with_header(write, engine):
    data = read_csv(write(GOOD), user=1, item=0, rating=2)
    assert triples(data) == [(10, 1, 4.0), (10, 2, 5.0), (20, 1, 3.5)]


def test_other_column_names_and_extra_columns(write, engine):
    path = write("item,who,score,comment\na,x,1,nice\nb,x,2,\nb,y,3,meh\n")
    data = read_csv(path, user="who", item="item", rating="score")
    assert triples(data) == [("x", "a", 1.0), ("x", "b", 2.0), ("y", "b", 3.0)]


def test_string_and_mixed_ids_stay_text(write, engine):
    path = write("u,i,r\nann,007,1\nbob,1.5,2\n")
    data = read_csv(path, user="u", item="i", rating="r")
    assert data.user_ids.ids.tolist() == ["ann", "bob"]
    assert data.item_ids.ids.tolist() == ["007", "1.5"]


def test_blank_lines_crlf_cr_and_bom(write, engine):
    text = "\ufeff\r\n" + GOOD.replace("\n", "\r\n").replace("1,20", "\r\n  \r\n1,20")
    assert triples(read_csv(write(text))) == [(1, 10, 4.0), (1, 20, 3.5), (2, 10, 5.0)]
    cr = write(GOOD.replace("\n", "\r"), name="cr.csv")
    assert len(read_csv(cr)) == 3


def test_quoted_fields(write, engine):
    path = write('u,i,r\n"a, b","x\ny",1\n"c ""q""",z,2\n')
    data = read_csv(path, user="u", item="i", rating="r")
    assert triples(data) == [("a, b", "x\ny", 1.0), ('c "q"', "z", 2.0)]


def test_iso_datetime_timestamps(write, engine):
    path = write("u,i,r,t\n1,1,1,2020-01-01T00:00:00\n1,2,2,2020-01-01T00:01:00\n")
    data = read_csv(path, user="u", item="i", rating="r", timestamp="t")
    assert data.timestamps.tolist() == [1577836800, 1577836860]


def test_gzip(tmp_path, engine):
    path = tmp_path / "ratings.csv.gz"
    with gzip.open(path, "wt") as f:
        f.write(GOOD)
    assert len(read_csv(path)) == 3


def test_duplicates_policies_and_item_metadata(write, engine):
    path = write(GOOD + "1,10,2.0,400\n")
    assert triples(read_csv(path, duplicates="last"))[0] == (1, 10, 2.0)
    assert triples(read_csv(path, duplicates="mean"))[0] == (1, 10, 3.0)
    meta = pd.DataFrame({"title": ["A", "B"]}, index=[10, 20])
    assert read_csv(write(GOOD), item_metadata=meta).item_metadata is meta


# ====================================================================== errors: values
def pinned(path, match, **kw):
    with pytest.raises(DataError, match=match):
        read_csv(path, **kw)


def test_non_numeric_rating(write, engine):
    pinned(
        write(HEADER + "1,10,4,1\n1,20,abc,2\n"),
        r"^ratings\.csv line 3: rating 'abc' is not a number$",
    )


def test_empty_rating(write, engine):
    pinned(
        write(HEADER + "1,10,4,1\n1,20,,2\n"),
        r"^ratings\.csv line 3: rating is missing; every rating must be a finite number\. "
        r"Fill or remove that row\.$",
    )


def test_nan_rating(write, engine):
    pinned(
        write(HEADER + "1,10,4,1\n1,20,nan,2\n"),
        r"^ratings\.csv line 3: rating 'nan' is not a number$",
    )


def test_na_rating_is_not_a_number(write, engine):
    pinned(write(HEADER + "1,10,NA,1\n"), r"ratings\.csv line 2: rating 'NA' is not a number")


def test_infinite_rating(write, engine):
    pinned(
        write(HEADER + "1,10,4,1\n\n1,20,inf,2\n"),
        r"ratings\.csv line 4: rating is inf \(infinite\)",
    )


def test_rating_too_large_for_float32(write, engine):
    pinned(
        write(HEADER + "1,10,1e300,1\n"),
        r"ratings\.csv line 2: rating 1e\+300 does not fit in float32",
    )


def test_non_numeric_timestamp(write, engine):
    pinned(
        write(HEADER + "1,10,4,1\n1,20,3,yesterday\n"),
        r"^ratings\.csv line 3: timestamp 'yesterday' is not a number$",
        timestamp="timestamp",
    )


def test_missing_timestamp(write, engine):
    pinned(
        write(HEADER + "1,10,4,\n"),
        r"ratings\.csv line 2: timestamp is missing",
        timestamp="timestamp",
    )


def test_missing_user_and_item_ids(write, engine):
    pinned(
        write(HEADER + "1,10,4,1\n,20,3,2\n"),
        r"^ratings\.csv line 3: user id is missing; every interaction needs a user id\. "
        r"Fill or remove the incomplete rows first\.$",
    )
    pinned(write(HEADER + "a,10,4,1\nb,,3,2\n"), r"^ratings\.csv line 3: item id is missing")


def test_negative_implicit(write, engine):
    pinned(
        write("u,i,clicks\n1,1,2\n1,2,-1\n"),
        r"^ratings\.csv line 3: clicks -1 is negative, but implicit feedback must be >= 0 "
        r"\(counts, clicks, play time\); pass implicit=False for signed ratings$",
        user="u",
        item="i",
        rating="clicks",
        implicit=True,
    )


def test_duplicates_name_both_file_lines(write, engine):
    pinned(
        write(HEADER + "1,10,4,1\n\n1,20,3,2\n\n1,10,5,3\n"),
        r"^ratings\.csv line 2 and ratings\.csv line 6 both hold user 1 and item 10; each "
        r"\(user, item\) pair may appear once\. Pass duplicates='last', 'mean' or 'sum' to "
        r"combine them\.$",
    )


def test_line_numbers_count_blank_and_continued_lines(write, engine):
    text = '\n\nu,i,r\n\n"a\nb",1,1\n   \n\r\nc,2,oops\n'
    pinned(
        write(text),
        r"^ratings\.csv line 9: r 'oops' is not a number$",
        user="u",
        item="i",
        rating="r",
    )


# ====================================================================== errors: structure
def test_too_many_fields(write, engine):
    pinned(
        write(HEADER + "1,10,4,1\n1,20,3,2\n1,30,3,2,9\n"),
        r"^ratings\.csv line 4: expected 4 fields \(as in the header\), got 5; every line "
        r"needs one value per column, separated by commas\. Fix or remove that line\.$",
    )


def test_too_few_fields(write, engine):
    pinned(
        write(HEADER + "1,10,4,1\n\n1,20,3,2\n1,30\n"),
        r"^ratings\.csv line 5: expected 4 fields \(as in the header\), got 2;",
    )


def test_too_few_fields_in_unused_column(write, engine):
    pinned(
        write(HEADER + "1,10,4,1\n1,20,3\n"),
        r"^ratings\.csv line 3: expected 4 fields \(as in the header\), got 3;",
    )


def test_trailing_separator(write, engine):
    pinned(
        write("u,i,r\n1,2,3,\n"),
        r"ratings\.csv line 2: expected 3 fields \(as in the header\), got 4",
        user="u",
        item="i",
        rating="r",
    )


def test_too_many_fields_without_header(write, engine):
    pinned(
        write("1::2::3\n1::3::4::5\n"),
        r"^ratings\.csv line 2: expected 3 fields \(as in the first line\), got 4 \(a field may "
        r"contain '::'\); every line needs one value per column, separated by '::'\.",
        user=0,
        item=1,
        rating=2,
        sep="::",
        header=False,
    )


def test_unterminated_quote(write, engine):
    pinned(
        write(HEADER + '1,10,4,1\n"2,20,3,2\n1,30,3,3\n'),
        r"^ratings\.csv line 3: malformed quoting",
    )


def test_invalid_utf8(write, engine):
    pinned(
        write(HEADER.encode() + b"1,10,4,1\nj\xe9r\xf4me,20,3,2\n"),
        r"^ratings\.csv line 3: not valid UTF-8 text \(byte 0xe9 at character 2\); "
        r"save the file as UTF-8$",
    )


def test_empty_file(write):
    pinned(
        write(""),
        r"^ratings\.csv is empty \(0 bytes\); expected a header line, then one line per "
        r"interaction$",
    )


def test_header_only(write):
    pinned(
        write(HEADER + "\n  \n"),
        r"^ratings\.csv has a header line but no data lines; expected one line per "
        r"interaction after the header$",
    )


def test_blank_only(write):
    pinned(write("\n\n \n"), r"^ratings\.csv has no data: it holds only blank lines;")


def test_missing_column_lists_columns(write):
    pinned(
        write(GOOD),
        r"^ratings\.csv: rating column 'score' not found; the header has 4 columns: "
        r"\['userId', 'movieId', 'rating', 'timestamp'\]\. Pass rating=<one of the column "
        r"names>, or header=False and 0-based column positions\.$",
        rating="score",
    )


def test_missing_column_suggests_separator(write):
    pinned(
        write(GOOD.replace(",", "\t")),
        r"^ratings\.csv: user column 'userId' not found; the header has 1 column: "
        r"\['userId\\tmovieId\\trating\\ttimestamp'\]\. The file looks tab-separated; pass "
        r"sep='\\t'\.",
    )
    pinned(write(GOOD.replace(",", ";")), r"The file looks semicolon-separated; pass sep=';'")
    pinned(write(GOOD.replace(",", "::")), r"The file looks '::'-separated; pass sep='::'")


def test_position_out_of_range(write):
    pinned(
        write("1,2\n"),
        r"^ratings\.csv: rating column position 2 is out of range; the first line has 2 "
        r"fields \(positions 0\.\.1\)\.$",
        user=0,
        item=1,
        rating=2,
        header=False,
    )


def test_duplicate_header_name(write):
    pinned(
        write("a,a,r\n1,2,3\n"),
        r"user column 'a' appears 2 times in the header \(positions \[0, 1\]\)",
        user="a",
        item=1,
        rating="r",
    )


def test_file_not_found(tmp_path):
    with pytest.raises(
        FileNotFoundError, match=r"^nope\.csv: no such file: '.*nope\.csv'; check the path"
    ):
        read_csv(tmp_path / "nope.csv")


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"sep": ":"}, r"^read_csv: sep must be one of ',', '\\t', ';', '\|', ' ', '::'; got ':'$"),
        (
            {"header": False},
            r"^with header=False, user must be a 0-based column position \(int\); got "
            r"'userId'\. For example user=0, item=1, rating=2\.$",
        ),
        (
            {"user": 1.5},
            r"^read_csv: user must be a column name \(str\) or a 0-based column position \(int\); "
            r"got 1\.5$",
        ),
        (
            {"item": None},
            r"^read_csv: item must be a column name \(str\) or a 0-based column position \(int\); "
            r"got None$",
        ),
        (
            {"item": "userId"},
            r"^user='userId' and item='userId' both name column 'userId'; each role needs its "
            r"own column\. Pass item=<another column>\.$",
        ),
        (
            {"duplicates": "first"},
            r"^read_csv: duplicates must be one of 'error', 'last', 'mean', 'sum'; got 'first'$",
        ),
    ],
)
def test_bad_parameters(write, kw, match):
    with pytest.raises(InvalidParameterError, match=match):
        read_csv(write(GOOD), **kw)


def test_buffer_is_not_a_path():
    with pytest.raises(
        InvalidParameterError,
        match=r"^read_csv expects a file path \(str or os\.PathLike\); got StringIO\.",
    ):
        read_csv(io.StringIO(GOOD))


# ====================================================================== parquet
@pytest.fixture
def parquet(tmp_path):
    pytest.importorskip("pyarrow")

    def _write(df: pd.DataFrame, name: str = "ratings.parquet"):
        path = tmp_path / name
        df.to_parquet(path, index=False)
        return path

    return _write


def test_parquet_happy(parquet):
    df = pd.DataFrame(
        {
            "userId": ["a", "a", "b"],
            "movieId": [10, 20, 10],
            "rating": [4.0, 3.5, 5.0],
            "ts": [1, 2, 3],
        }
    )
    data = read_parquet(parquet(df), timestamp="ts")
    assert triples(data) == [("a", 10, 4.0), ("a", 20, 3.5), ("b", 10, 5.0)]
    assert data.timestamps.tolist() == [1, 2, 3]
    implicit = read_parquet(parquet(df), user=1, item=0, rating=None)
    assert implicit.implicit and implicit.user_ids.ids.tolist() == [10, 20]


def test_parquet_errors(parquet, tmp_path):
    base = {"userId": [1, 1, 2], "movieId": [10, 20, 10]}
    pinned_pq = [
        ({**base, "rating": [4.0, None, 5.0]}, {}, r"^ratings\.parquet row 1: rating is missing;"),
        (
            {**base, "rating": ["4", "abc", "5"]},
            {},
            r"^ratings\.parquet row 1: rating 'abc' is not a number$",
        ),
        (
            {**base, "rating": [4.0, 3.0, -1.0]},
            {"implicit": True},
            r"^ratings\.parquet row 2: rating -1 is negative",
        ),
        (
            {"userId": [1, None, 2], "movieId": [10, 20, 10], "rating": [1.0, 2, 3]},
            {},
            r"^ratings\.parquet row 1: user id is missing",
        ),
        (
            {"userId": [1, 2, 1], "movieId": [10, 20, 10], "rating": [1.0, 2, 3]},
            {},
            r"^ratings\.parquet row 0 and ratings\.parquet row 2 both hold user 1 and item 10;",
        ),
        (
            {**base, "rating": [True, False, True]},
            {},
            r"^ratings\.parquet: rating column 'rating' holds booleans; expected numbers\.",
        ),
        (
            {**base, "score": [1.0, 2, 3]},
            {},
            r"^ratings\.parquet: rating column 'rating' not found; the file has 3 columns: "
            r"\['userId', 'movieId', 'score'\]\. Pass rating=<one of those names>\.$",
        ),
        (
            {**base, "rating": [1.0, 2, 3]},
            {"timestamp": 5},
            r"^ratings\.parquet: timestamp column position 5 is out of range; the file "
            r"has 3 columns",
        ),
    ]
    for cols, kw, match in pinned_pq:
        with pytest.raises(DataError, match=match):
            read_parquet(parquet(pd.DataFrame(cols)), **kw)
    with pytest.raises(
        DataError, match=r"^empty\.parquet has no rows; expected one row per interaction$"
    ):
        read_parquet(
            parquet(pd.DataFrame({**base, "rating": [1.0, 2, 3]}).iloc[:0], "empty.parquet")
        )
    bad = tmp_path / "bad.parquet"
    bad.write_text("not parquet")
    with pytest.raises(DataError, match=r"^bad\.parquet is not a readable Parquet file \("):
        read_parquet(bad)
    with pytest.raises(FileNotFoundError, match=r"^nope\.parquet: no such file"):
        read_parquet(tmp_path / "nope.parquet")
    with pytest.raises(
        InvalidParameterError,
        match=r"^user='userId' and item=0 both name column 'userId'; each role needs its own "
        r"column\. Pass item=<another column>\.$",
    ):
        read_parquet(parquet(pd.DataFrame({**base, "rating": [1.0, 2, 3]})), item=0)


# ====================================================================== internals
def test_pieces_and_chunks_join_up(write, engine, monkeypatch):
    """Tiny pieces (pyarrow) and chunks (pandas) give the same result as one read."""
    monkeypatch.setattr(_source, "SEGMENT_BYTES", 48)
    monkeypatch.setattr(_source, "CHUNK_ROWS", 2)
    pieces = []
    segments = _arrow_csv._arrow_segments

    def spy(*args):
        for table in segments(*args):
            pieces.append(table.num_rows)
            yield table

    monkeypatch.setattr(_arrow_csv, "_arrow_segments", spy)
    rows = [f"{u},{i},{(u + i) % 5 + 1}.0,{u * 100 + i}" for u in range(1, 8) for i in (3, 1, 2)]
    data = read_csv(write(HEADER + "\n".join(rows) + "\n"), timestamp="timestamp")
    assert len(data) == 21 and data.n_users == 7 and data.n_items == 3
    assert triples(data)[:3] == [(1, 1, 3.0), (1, 2, 4.0), (1, 3, 5.0)]
    df = data.to_pandas().sort_values(["user", "item"])
    assert df["timestamp"].tolist() == [u * 100 + i for u in range(1, 8) for i in (1, 2, 3)]
    if engine == "arrow":
        assert len(pieces) > 5 and sum(pieces) == 21
    # A line longer than a piece, and quotes, make the pyarrow path read serially.
    long_line = write(HEADER + "1,10,4.0,100\n2," + "0" * 60 + "7,5.0,200\n", "long.csv")
    assert read_csv(long_line).item_ids.ids.tolist() == [7, 10]
    quoted = write(HEADER + '1,10,4.0,100\n2,"20",5.0,200\n', "quoted.csv")
    assert triples(read_csv(quoted)) == [(1, 10, 4.0), (2, 20, 5.0)]


def test_types_change_further_down(write, engine, monkeypatch):
    """A guess from the first line that fails later (int32 ids, int ids) is not an error."""
    monkeypatch.setattr(_source, "CHUNK_ROWS", 1)
    big = write(HEADER + "1,10,4,1\n2,9000000000,3,2\n")
    assert read_csv(big).item_ids.ids.tolist() == [10, 9_000_000_000]
    mixed = write(HEADER + "1,10,4,1\n2,x7,3,2\n", "mixed.csv")
    assert read_csv(mixed).item_ids.ids.tolist() == ["10", "x7"]
    floats = write(HEADER + "1,10,4,1\n2,20,3,2.5\n", "floats.csv")
    assert read_csv(floats, timestamp="timestamp").timestamps.tolist() == [1.0, 2.5]


def test_canonical_sort_without_scipy_internals(monkeypatch):
    """The NumPy fallback of the (user, item) sort gives the same order."""
    from scipy.sparse import _sparsetools

    from factorkit.data import interactions

    rng = np.random.default_rng(0)
    users = rng.integers(0, 7, 200).astype(np.int32)
    items = rng.integers(0, 9, 200).astype(np.int32)
    fast = interactions._canonical_sort(users, items, 7, 9)
    monkeypatch.delattr(_sparsetools, "coo_tocsr")
    slow = interactions._canonical_sort(users, items, 7, 9)
    expected = np.argsort(users.astype(np.int64) * 9 + items, kind="stable")
    for got in (fast, slow):
        np.testing.assert_array_equal(got.order, expected)
        np.testing.assert_array_equal(got.items, items[expected])
        assert got.duplicates


@pytest.mark.parametrize(
    "text",
    [
        "\n\nu,i,r\n\n1,2,3\n  \n\t\n4,5,6\r\n\r\n7,8,9",
        "u,i,r\r\n1,2,3\r\n \r\n4,5,6\r\n",
        "u,i,r\n1,2,3\n4,5\n",
        "u,i,r\n1,2,3\n\n4,5,6,7\n",
        "u,i,r\n1,2,3\n4,5,\xe96\n",
    ],
)
def test_byte_scan_agrees_with_line_scan(write, text, monkeypatch):
    """The vectorised scan and the line-by-line scan find the same lines and errors."""

    def outcome():
        src = _source.CsvFile(write(text), ",", True)
        try:
            lines = src.line_map()
        except DataError as exc:
            return str(exc)
        return [lines.line(r) for r in range(lines.n_records)]

    fast = outcome()
    monkeypatch.setattr(_source.CsvFile, "_scan_bytes", lambda self: None)
    assert outcome() == fast


def test_careful_pass_in_chunks(write, engine, monkeypatch):
    """The careful pass reads in chunks: lines stay exact, id kinds may change midway."""
    monkeypatch.setattr(_source, "CHUNK_ROWS", 2)
    body = "1,10,4,1\n  \n2,20,3,2\n3,30,2,3\n"
    data = read_csv(write(HEADER + body + "4,40,1,4\n"), timestamp="timestamp")
    assert data.user_ids.ids.tolist() == [1, 2, 3, 4]
    assert data.user_ids.ids.dtype == np.int64
    assert triples(data) == [(1, 10, 4.0), (2, 20, 3.0), (3, 30, 2.0), (4, 40, 1.0)]
    mixed = read_csv(write(HEADER + body + "4,40,1,4\nx.5,50,5,5\n", "mixed.csv"))
    assert mixed.user_ids.ids.tolist() == ["1", "2", "3", "4", "x.5"]
    pinned(
        write(HEADER + body + "4,40,abc,4\n", "bad.csv"),
        r"^bad\.csv line 6: rating 'abc' is not a number$",
    )
    pinned(
        write(HEADER + body + "4,40,1,4\n4,40,2,5\n", "dup.csv"),
        r"^dup\.csv line 6 and dup\.csv line 7 both hold user 4 and item 40;",
    )


def test_table_factorize_matches_pandas():
    """The table-lookup factorize used for large integer id columns equals pd.factorize
    with sorted codes."""
    from factorkit.data import interactions

    rng = np.random.default_rng(0)
    for ids in (
        rng.integers(0, 50_000, 300_000).astype(np.int32),
        np.sort(rng.integers(1, 9_000, 300_000)),
        rng.zipf(1.5, 300_000) % 70_000,
        rng.integers(-5_000, 5_000, 300_000),
    ):
        codes, uniques = interactions._factorize_small_ints(ids)
        expected_codes, expected_uniques = pd.factorize(ids, sort=True)
        np.testing.assert_array_equal(codes, expected_codes)
        np.testing.assert_array_equal(uniques, expected_uniques)
        assert codes.dtype == np.int32 and uniques.dtype == np.int64
    # Ids spread far wider than there are rows: a table would be mostly empty.
    assert interactions._factorize_small_ints(np.array([0, 2**40])) is None


@pytest.mark.parametrize(
    ("sep", "newline", "header", "last_newline"),
    [(",", "\n", True, True), ("\t", "\r\n", False, False), ("::", "\n", False, True)],
)
def test_native_parser_agrees_with_pyarrow(write, monkeypatch, sep, newline, header, last_newline):
    """factorkit's own parser takes the common layout, in tiny pieces too, and builds
    exactly what pyarrow's reader builds."""
    rng = np.random.default_rng(3)
    n = 3_000
    lines = [
        f"{u}{sep}{i}{sep}{r}{sep}{t}"
        for u, i, r, t in zip(
            rng.integers(1, 200, n),
            rng.integers(1, 5_000, n),
            rng.choice(["0.5", "3", "4.25", "1e0"], n),
            rng.integers(0, 2_000_000_000, n),
            strict=True,
        )
    ]
    text = (HEADER.replace(",", sep).replace("\n", newline) if header else "") + newline.join(lines)
    path = write(text + (newline if last_newline else ""))
    cols = {"user": 0, "item": 1, "rating": 2, "timestamp": 3}
    kw = {**cols, "sep": sep, "header": header, "duplicates": "last"}
    native = _numba_csv.read
    used = []
    monkeypatch.setattr(_numba_csv, "read", lambda *a: used.append(native(*a)) or used[-1])
    monkeypatch.setattr(_source, "SEGMENT_BYTES", 4096)  # many pieces, lines cut across
    got = read_csv(path, **kw)
    assert used and used[0] is not None  # the native parser did the work
    monkeypatch.setattr(csv_io, "_read_fast", _arrow_csv.read)
    want = read_csv(path, **kw)
    assert got.user_ids.ids.tolist() == want.user_ids.ids.tolist()
    assert got.item_ids.ids.tolist() == want.item_ids.ids.tolist()
    for name in ("user_index", "item_index", "values", "timestamps"):
        np.testing.assert_array_equal(getattr(got, name), getattr(want, name))


# ====================================================================== damaged files
BODY = GOOD.encode() + b"".join(
    b"%d,%d,3.0,%d\n" % (u, i, u + i) for u in range(3, 60) for i in (1, 2)
)


@pytest.mark.parametrize(
    ("suffix", "compress"),
    [(".gz", gzip.compress), (".bz2", bz2.compress), (".xz", lzma.compress)],
)
def test_truncated_compressed_file_names_it(write, engine, suffix, compress):
    blob = compress(BODY)
    name = f"ratings.csv{suffix}"
    kind = {".gz": "gzip", ".bz2": "bzip2", ".xz": "xz"}[suffix]
    with pytest.raises(
        DataError,
        match=rf"^ratings\.csv{re.escape(suffix)}: the {kind}-compressed data is truncated or "
        r"corrupt \(.+\); the file was probably cut short while downloading or copying\. "
        r"Fetch or compress it again\.$",
    ):
        read_csv(write(blob[: len(blob) // 2], name))


def test_corrupt_gzip_names_it(write, engine):
    blob = bytearray(gzip.compress(BODY))
    blob[len(blob) // 2 : len(blob) // 2 + 16] = b"\xff" * 16
    with pytest.raises(DataError, match=r"^ratings\.csv\.gz: the gzip-compressed data is "):
        read_csv(write(bytes(blob), "ratings.csv.gz"))


def test_compression_is_told_by_content_not_name(write, engine):
    want = triples(read_csv(write(BODY)))
    assert triples(read_csv(write(gzip.compress(BODY), "gzipped.csv"))) == want
    assert triples(read_csv(write(bz2.compress(BODY), "bzipped.txt"))) == want
    assert triples(read_csv(write(BODY, "plain.csv.gz"))) == want


@pytest.mark.parametrize(
    ("head", "match"),
    [
        (
            b"\x28\xb5\x2f\xfd\x00\x00",
            r"^data\.bin is Zstandard-compressed, which read_csv does not decompress; "
            r"decompress it first \(zstd -d data\.bin\) or recompress it with gzip$",
        ),
        (
            b"PK\x03\x04\x14\x00",
            r"^data\.bin is a zip archive; extract the CSV file from it first \(unzip data\.bin\)$",
        ),
        (b"PAR1\x15\x04", r"^data\.bin is a Parquet file, not CSV; read it with fk\.read_parquet$"),
    ],
)
def test_foreign_formats_get_their_fix(write, head, match):
    with pytest.raises(DataError, match=match):
        read_csv(write(head + b"\x00" * 64, "data.bin"))


@pytest.fixture
def small_line_bound(monkeypatch):
    """Lines may be at most 4 KiB, so that a few hundred KiB show the bound at work."""
    monkeypatch.setattr(_source, "MAX_LINE_BYTES", 4096)
    monkeypatch.setattr(_source, "SEGMENT_BYTES", 64 << 10)
    monkeypatch.setattr(_source, "SCAN_BYTES", 16 << 10)


NUL_MATCH = (
    r"^ratings\.csv{gz} line 4: binary data \(a NUL byte at character {col}\); expected text\. "
    r"The file is damaged, or not a CSV file: check its content\.$"
)


@pytest.mark.parametrize("compressed", [False, True])
@pytest.mark.parametrize("size", [300 << 10, 3 << 20])
def test_binary_data_fails_fast(write, engine, small_line_bound, compressed, size):
    """Two good lines, then a run of NUL bytes without a line break: the error names the
    line whether or not the parser needs the column the NULs start in."""
    for tail, col in ((b"", 1), (b"3,30,2.5,", 10)):
        blob = HEADER.encode() + b"1,10,4.0,100\n2,20,3.5,200\n" + tail + b"\x00" * size
        name = "ratings.csv.gz" if compressed else "ratings.csv"
        with pytest.raises(DataError, match=NUL_MATCH.format(gz=r"\.gz" * compressed, col=col)):
            read_csv(write(gzip.compress(blob) if compressed else blob, name))


def test_binary_data_default_bound(write, engine):
    """The shipped bounds (1 MiB lines, 64 MiB pieces) on a 3 MiB file."""
    blob = HEADER.encode() + b"1,10,4.0,100\n2,20,3.5,200\n" + b"\x00" * (3 << 20)
    with pytest.raises(DataError, match=NUL_MATCH.format(gz="", col=1)):
        read_csv(write(blob))


@pytest.mark.parametrize("compressed", [False, True])
def test_no_line_break_fails_fast(write, engine, small_line_bound, compressed):
    blob = HEADER.encode() + b"1,10,4.0,100\n2,20,3.5,200\n" + b"7" * (300 << 10)
    name = "ratings.csv.gz" if compressed else "ratings.csv"
    gz = r"\.gz" * compressed
    with pytest.raises(
        DataError,
        match=rf"^ratings\.csv{gz} line 4: no line break within 4096 bytes; "
        r"expected one short line per interaction\. Check that this is the ratings file \(CSV "
        r"text\) and not another kind of file\.$",
    ):
        read_csv(write(gzip.compress(blob) if compressed else blob, name))


def test_long_lines_below_the_bound_and_cr_line_ends_still_read(write, engine, small_line_bound):
    rows = "".join(f"{u},{u % 7},{u % 5}.5,{u}\n" for u in range(1, 3000))
    assert len(read_csv(write(HEADER + rows))) == 2999  # many pieces, each line short
    assert len(read_csv(write((HEADER + rows).replace("\n", "\r"), "cr.csv"))) == 2999


def test_nul_byte_in_the_middle_names_its_line(write, engine):
    blob = BODY + b"5,5,4.0,5\x00\n"
    n = blob.count(b"\n")
    with pytest.raises(
        DataError, match=rf"^ratings\.csv line {n}: binary data \(a NUL byte at character 10\)"
    ):
        read_csv(write(blob))


# ====================================================================== id types
def test_id_beyond_64_bits_names_file_line_and_column(write, engine):
    body = HEADER + "1,10,4.0,100\n2,20,3.5,200\n3,99999999999999999999,5.0,300\n4,30,1.0,400\n"
    with pytest.raises(
        DataError,
        match=r"^ratings\.csv line 4: item id 99999999999999999999 in column 'movieId' does "
        r"not fit a 64-bit integer, while every other item id is an integer\. Fix the id, or, "
        r"if the ids are labels rather than numbers, read them as text: "
        r"fk\.Interactions\.from_pandas\(pandas\.read_csv\(path, dtype=\{'movieId': str\}\), "
        r"\.\.\.\)$",
    ):
        read_csv(write(body))
    headless = write("7,1,4.0\n-8,2,3.0\n9223372036854775808,3,1.0\n", "headless.csv")
    with pytest.raises(DataError, match=r"^headless\.csv line 3: user id 9223372036854775808 in "):
        read_csv(headless, user=0, item=1, rating=2, header=False)


def test_unsigned_64_bit_and_text_ids_still_read(write, engine):
    big = write(HEADER + "1,10,4.0,1\n2,18446744073709551615,3.0,2\n")
    assert read_csv(big).item_ids.ids.tolist() == [10, 18446744073709551615]
    text = write(HEADER + "1,10,4.0,1\n2,99999999999999999999x,3.0,2\n", "text.csv")
    assert read_csv(text).item_ids.ids.tolist() == ["10", "99999999999999999999x"]


def test_text_that_starts_like_a_magic_number_is_text(write):
    data = read_csv(write("BZh9,item,rating\n1,10,4.0\n"), user="BZh9", item="item")
    assert data.user_ids.ids.tolist() == [1]
