import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import factorkit as fk
from factorkit.exceptions import DataError, InvalidParameterError, UnknownIdError


def frame(**cols):
    return pd.DataFrame(cols)


@pytest.fixture
def small():
    df = frame(
        u=["bob", "ann", "ann", "cid", "bob"],
        i=[20, 10, 30, 10, 10],
        r=[3.0, 4.0, 5.0, 1.0, 2.5],
        t=[5, 1, 2, 3, 4],
    )
    return fk.Interactions.from_pandas(df, user="u", item="i", rating="r", timestamp="t")


def test_counts_and_ids(small):
    assert (small.n_users, small.n_items, len(small)) == (3, 3, 5)
    assert small.user_ids.ids.tolist() == ["ann", "bob", "cid"]  # sorted
    assert small.item_ids.ids.tolist() == [10, 20, 30]
    assert not small.implicit
    assert small.rating_scale == (1.0, 5.0)


def test_row_order_does_not_matter():
    """Positions follow sorted ids, so the same interactions in any row order (or from a
    small or a large input, which take different factorize paths) build the same arrays."""
    rng = np.random.default_rng(0)
    pairs = rng.choice(400 * 300, size=70_000, replace=False)
    df = frame(u=pairs // 300 * 7 - 50, i=pairs % 300 + 1000, r=rng.integers(1, 6, len(pairs)))
    built = [
        fk.Interactions.from_pandas(d, user="u", item="i", rating="r")
        for d in (df, df.sample(frac=1.0, random_state=1), df.iloc[::-1])
    ]
    for other in built[1:]:
        np.testing.assert_array_equal(other.user_ids.ids, built[0].user_ids.ids)
        np.testing.assert_array_equal(other.item_ids.ids, built[0].item_ids.ids)
        np.testing.assert_array_equal(other.user_index, built[0].user_index)
        np.testing.assert_array_equal(other.item_index, built[0].item_index)
        np.testing.assert_array_equal(other.values, built[0].values)
    assert (np.diff(built[0].item_ids.ids) > 0).all()
    head = df.iloc[:500]  # under the size where the table lookup starts
    small = fk.Interactions.from_pandas(head, user="u", item="i", rating="r")
    assert small.item_ids.ids.tolist() == sorted(set(head["i"]))


def test_canonical_order_keeps_rows_aligned(small):
    df = small.to_pandas().sort_values(["user", "item"]).reset_index(drop=True)
    expected = frame(
        user=["ann", "ann", "bob", "bob", "cid"],
        item=[10, 30, 10, 20, 10],
        rating=np.float32([4.0, 5.0, 2.5, 3.0, 1.0]),
        timestamp=[1, 2, 4, 5, 3],
    )
    pd.testing.assert_frame_equal(df, expected, check_dtype=False)
    # stored order: by user position then item position
    keys = small.user_index.astype(np.int64) * small.n_items + small.item_index
    assert (np.diff(keys) > 0).all()


def test_csr_and_csc_are_cached_and_consistent(small):
    csr = small.to_csr()
    assert csr is small.to_csr()
    assert csr.dtype == np.float32 and csr.shape == (3, 3)
    dense = csr.toarray()
    assert dense[small.user_map.to_index("ann")[0], small.item_map.to_index(30)[0]] == 5.0
    np.testing.assert_array_equal(small.to_csc().toarray(), dense)
    assert small.to_csc() is small.to_csc()


def test_arrays_are_immutable(small):
    with pytest.raises(ValueError):
        small.values[0] = 9.0
    with pytest.raises(ValueError):
        small.to_csr().data[0] = 9.0


def test_implicit_when_no_rating_column():
    data = fk.Interactions.from_pandas(frame(u=[1, 2], i=[1, 1]), user="u", item="i")
    assert data.implicit
    assert data.values.tolist() == [1.0, 1.0]
    assert "value" in data.to_pandas().columns


def test_missing_column_names_the_columns():
    with pytest.raises(
        DataError, match=r"rating column 'score' not found; the columns are \['u', 'i'\]"
    ):
        fk.Interactions.from_pandas(frame(u=[1], i=[1]), user="u", item="i", rating="score")


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (np.nan, r"row 1: rating is missing; every rating must be a finite number"),
        (np.inf, r"row 1: rating is inf \(infinite\)"),
        ("abc", r"row 1: rating 'abc' is not a number"),
    ],
)
def test_bad_ratings_name_the_row(value, match):
    df = frame(u=[1, 2], i=[1, 1], rating=pd.Series([4.0, value], dtype=object))
    with pytest.raises(DataError, match=match):
        fk.Interactions.from_pandas(df, user="u", item="i", rating="rating")


def test_missing_ids_name_the_row():
    df = frame(u=[1.0, np.nan], i=[1, 1])
    with pytest.raises(DataError, match=r"row 1: user id is missing"):
        fk.Interactions.from_pandas(df, user="u", item="i")


def test_negative_implicit_values_rejected():
    df = frame(u=[1, 2], i=[1, 1], c=[3, -1])
    with pytest.raises(
        DataError, match=r"row 1: c -1 is negative, but implicit feedback must be >= 0"
    ):
        fk.Interactions.from_pandas(df, user="u", item="i", rating="c", implicit=True)


def test_duplicates_error_names_both_rows():
    df = frame(u=[1, 1, 2, 1], i=[5, 6, 5, 5], r=[1.0, 2.0, 3.0, 4.0])
    with pytest.raises(
        DataError, match=r"row 0 and row 3 both hold user 1 and item 5.*duplicates='last'"
    ):
        fk.Interactions.from_pandas(df, user="u", item="i", rating="r")


@pytest.mark.parametrize(("policy", "expected"), [("last", 4.0), ("mean", 2.5), ("sum", 5.0)])
def test_duplicate_policies(policy, expected):
    df = frame(u=[1, 1, 2, 1], i=[5, 6, 5, 5], r=[1.0, 2.0, 3.0, 4.0], t=[10, 11, 12, 13])
    data = fk.Interactions.from_pandas(
        df, user="u", item="i", rating="r", timestamp="t", duplicates=policy
    )
    assert len(data) == 3
    out = data.to_pandas().set_index(["user", "item"])
    assert out.loc[(1, 5), "rating"] == expected
    assert out.loc[(1, 5), "timestamp"] == 13


def test_unknown_duplicates_policy():
    with pytest.raises(
        DataError,
        match=r"duplicates must be one of \['error', 'last', 'mean', 'sum'\]; got 'first'",
    ):
        fk.Interactions.from_arrays([1], [1], duplicates="first")


def test_from_arrays_length_mismatch():
    with pytest.raises(DataError, match="users has 2 entries but items has 1"):
        fk.Interactions.from_arrays([1, 2], [1])


def test_from_scipy_round_trip_and_ids():
    m = sp.csr_matrix(np.array([[0, 2.0, 0], [1.0, 0, 3.0]], dtype=np.float32))
    data = fk.Interactions.from_scipy(m, user_ids=["a", "b"], item_ids=[7, 8, 9])
    np.testing.assert_array_equal(data.to_csr().toarray(), m.toarray())
    assert data.user_items("b")[0].tolist() == [7, 9]


def test_from_scipy_errors():
    with pytest.raises(DataError, match="user_ids has 1 entries but the matrix has 2 rows"):
        fk.Interactions.from_scipy(sp.csr_matrix(np.eye(2)), user_ids=["a"])
    with pytest.raises(DataError, match=r"expects a scipy\.sparse matrix; got ndarray"):
        fk.Interactions.from_scipy(np.eye(2))
    bad = sp.csr_matrix(np.array([[np.nan, 1.0]]))
    with pytest.raises(DataError, match=r"entry \(0, 0\) is nan; values must be finite"):
        fk.Interactions.from_scipy(bad)


def test_datetime_timestamps_become_unix_seconds():
    df = frame(u=[1], i=[1], t=pd.to_datetime(["2020-01-01T00:00:10"]))
    data = fk.Interactions.from_pandas(df, user="u", item="i", timestamp="t")
    assert data.timestamps.tolist() == [1577836810]


def test_selection_shares_maps(small):
    sub = small.select_users(["ann"])
    assert len(sub) == 2 and sub.user_map is small.user_map and sub.shares_ids_with(small)
    assert len(small.select_items([10])) == 3
    assert len(small.take(np.array([True, False, True, False, True]))) == 3
    with pytest.raises(UnknownIdError, match="unknown user id 'zed'"):
        small.select_users(["zed"])


def test_compact_drops_empty_ids(small):
    sub = small.select_users(["cid"]).compact()
    assert (sub.n_users, sub.n_items) == (1, 1)
    assert sub.to_pandas()["item"].tolist() == [10]


def test_repr_tells_what_it_holds(small):
    text = repr(small)
    assert "3 users x 3 items, 5 ratings" in text and "values in [1, 5]" in text


def test_idmap_lookup_and_errors():
    m = fk.IdMap([10, 20, 30], kind="item")
    assert m.lookup([30, 99]).tolist() == [2, -1]
    assert m[1] == 20 and 20 in m and len(m) == 3
    with pytest.raises(
        UnknownIdError,
        match=r"unknown item id 99: it is not among the 3 item ids.*ids here look like 10",
    ):
        m.to_index([10, 99])
    with pytest.raises(ValueError, match="item id 10 appears twice"):
        fk.IdMap([10, 10], kind="item")


def test_low_level_constructor_rejects_repeated_pairs():
    m = fk.IdMap([1, 2], kind="user")
    i = fk.IdMap([7], kind="item")
    with pytest.raises(
        DataError, match=r"the \(user, item\) pairs repeat; build through from_pandas"
    ):
        fk.Interactions(np.array([1, 0, 1]), np.array([0, 0, 0]), np.ones(3), m, i)


def test_to_implicit_keeps_positives_and_shares_maps(small):
    liked = small.to_implicit(min_value=3.0)
    assert liked.implicit and liked.user_map is small.user_map
    assert sorted(zip(liked.to_pandas()["user"], liked.to_pandas()["item"], strict=True)) == [
        ("ann", 10),
        ("ann", 30),
        ("bob", 20),
    ]
    assert set(liked.values.tolist()) == {1.0}
    assert len(small.to_implicit()) == len(small)
    with pytest.raises(DataError, match="to_implicit: min_value must be a finite number; got nan"):
        small.to_implicit(min_value=float("nan"))


# ---------------------------------------------------------------------- id types
@pytest.mark.parametrize(
    ("ids", "query", "match"),
    [
        (
            [1, 2, 3],
            "1",
            r"^item id '1' is a string, but the 3 item ids here are integers \(e\.g\. 1\); "
            r"pass integers, e\.g\. 1$",
        ),
        (
            [1, 2, 3],
            ["x", "2"],
            r"^item id 'x' is a string, but the 3 item ids here are integers \(e\.g\. 1\); "
            r"pass integers$",
        ),
        (
            ["a", "b"],
            np.array([318]),
            r"^item id 318 is an integer, but the 2 item ids here are strings \(e\.g\. 'a'\); "
            r"pass strings, e\.g\. '318'$",
        ),
    ],
)
def test_idmap_rejects_ids_of_the_other_type(ids, query, match):
    m = fk.IdMap(ids, kind="item")
    for method in (m.lookup, m.to_index):
        with pytest.raises(UnknownIdError, match=match):
            method(query)


def test_idmap_mixed_vocabularies_and_queries_still_look_up():
    mixed = fk.IdMap([7, "a"], kind="user")
    assert mixed.ids.tolist() == [7, "a"]  # a list keeps each id's type
    assert mixed.lookup(["a", 7, "7", 3]).tolist() == [1, 0, -1, -1]
    ints = fk.IdMap([10, 20], kind="item")
    assert ints.lookup([20, "20"]).tolist() == [1, -1]  # a mixed query: the str is unknown
    assert ints.lookup(np.array([10.0])).tolist() == [0]
    assert ints.lookup([]).tolist() == []


def test_model_rejects_id_of_the_wrong_type():
    """predict / recommend on integer ids must not silently fall back for "1"."""
    df = pd.DataFrame({"u": [1, 1, 2, 2, 3], "i": [10, 20, 10, 30, 20], "r": [4, 3, 5, 2, 4.0]})
    model = fk.BaselineOnly(epochs=2).fit(fk.Interactions.from_pandas(df, "u", "i", "r"))
    assert np.isfinite(model.predict(1, 10)).all()
    with pytest.raises(UnknownIdError, match=r"^user id '1' is a string, but the 3 user ids"):
        model.predict("1", 10)
    with pytest.raises(UnknownIdError, match=r"^item id '10' is a string, but the 3 item ids"):
        model.predict(1, "10")


# ---------------------------------------------------------------------- from_dense / from_dict
def test_from_dense_with_zero_and_nan_markers():
    R = np.array([[5.0, 0.0, 3.0], [0.0, 0.0, 0.0], [0.0, 4.0, 1.0]])
    data = fk.Interactions.from_dense(R)
    assert data.shape == (3, 3) and len(data) == 4 and not data.implicit
    assert data.user_ids.ids.tolist() == [0, 1, 2]  # an empty row keeps its user
    np.testing.assert_array_equal(data.to_csr().toarray(), R)
    nan = np.where(R == 0, np.nan, R)
    nan[1, 1] = 0.0  # a real rating of 0 with the NaN marker
    data = fk.Interactions.from_dense(nan, missing=np.nan)
    assert len(data) == 5 and data.user_items(1)[0].tolist() == [1]
    assert len(fk.Interactions.from_dense([[1, -1], [-1, 2]], missing=-1)) == 2


@pytest.mark.parametrize(
    ("R", "kw", "err", "match"),
    [
        (np.ones(3), {}, DataError, r"^Interactions\.from_dense: R must be a 2-D array \(users "
         r"x items\); got 1-D with shape \(3,\)\. A single user's ratings are "
         r"R\[np\.newaxis, :\]\.$"),
        (np.ones((0, 4)), {}, DataError,
         r"^Interactions\.from_dense: R is empty \(shape \(0, 4\)\); expected users x items$"),
        (np.zeros((2, 2)), {}, DataError,
         r"^Interactions\.from_dense: R has no interactions: every entry equals missing=0$"),
        ([[1.0, np.nan]], {}, DataError,
         r"^Interactions\.from_dense: R\[0, 1\] is nan; ratings must be finite numbers\. Mark "
         r"entries without a rating with the missing value \(pass missing=np\.nan to use "
         r"NaN\)$"),
        ([[1.0, np.inf]], {"missing": np.nan}, DataError,
         r"^Interactions\.from_dense: R\[0, 1\] is inf; ratings must be finite numbers\. Mark "
         r"entries without a rating with the missing value$"),
        ([["a", "b"]], {}, DataError,
         r"^Interactions\.from_dense: R must hold numbers; got dtype <U1\."),
        ([[1.0]], {"missing": "0"}, InvalidParameterError,
         r"^Interactions\.from_dense: missing must be a finite number or numpy\.nan; got '0'$"),
    ],
)  # fmt: skip
def test_from_dense_bad_input(R, kw, err, match):
    with pytest.raises(err, match=match):
        fk.Interactions.from_dense(R, **kw)


def test_from_dict():
    data = fk.Interactions.from_dict({(1, "a"): 4.0, (2, "a"): 3, (1, "b"): 5.5})
    assert triples_of(data) == [(1, "a", 4.0), (1, "b", 5.5), (2, "a", 3.0)]
    implicit = fk.Interactions.from_dict({("u", 1): 2, ("v", 1): 1}, implicit=True)
    assert implicit.implicit and implicit.values.tolist() == [2.0, 1.0]


@pytest.mark.parametrize(
    ("ratings", "match"),
    [
        ({}, r"^Interactions\.from_dict: ratings is empty; expected at least one \(user, item\) "
         r"pair$"),
        ([((1, 2), 3.0)], r"^Interactions\.from_dict: ratings must be a dict "
         r"\{\(user, item\): value\}; got list$"),
        ({(1, 2): 3.0, 7: 1.0}, r"^Interactions\.from_dict: key 7 is not a \(user, item\) pair; "
         r"write each entry as \(user, item\): value$"),
        ({(1, 2): float("nan")}, r"^Interactions\.from_dict: the value of tuple \(1, 2\) is nan; "
         r"expected a finite number$"),
        ({(1, 2): "5"}, r"^Interactions\.from_dict: the value of tuple \(1, 2\) is '5'; "
         r"expected a finite number$"),
    ],
)  # fmt: skip
def test_from_dict_bad_input(ratings, match):
    with pytest.raises(DataError, match=match):
        fk.Interactions.from_dict(ratings)


def triples_of(data):
    df = data.to_pandas()
    return sorted(zip(df["user"], df["item"], df["rating"].astype(float), strict=True))
