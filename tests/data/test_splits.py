import re
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import factorkit as fk
from factorkit import split
from factorkit.data import splits
from factorkit.data.synthetic import make_ratings
from factorkit.exceptions import DataError, DataWarning, InvalidParameterError


@pytest.fixture(scope="module")
def data():
    d, _ = make_ratings(n_users=200, n_items=100, n_ratings=3000, random_state=0)
    return d


@pytest.fixture(scope="module")
def untimed():
    d, _ = make_ratings(n_users=50, n_items=30, n_ratings=400, random_state=0, timestamps=False)
    return d


def build(users, items, values=None, ts=None):
    df = pd.DataFrame({"u": users, "i": items})
    df["r"] = np.arange(1, len(df) + 1, dtype=float) if values is None else values
    if ts is not None:
        df["t"] = ts
    return fk.Interactions.from_pandas(
        df, user="u", item="i", rating="r", timestamp=None if ts is None else "t"
    )


def keys(d):
    return d.user_index.astype(np.int64) * d.n_items + d.item_index


def rows(d):
    """(user, item, value[, timestamp]) records of each interaction, as a sorted array."""
    cols = [d.user_index, d.item_index, d.values.astype(np.float64)]
    if d.timestamps is not None:
        cols.append(d.timestamps.astype(np.float64))
    return np.sort(np.rec.fromarrays(cols))


def assert_partition(d, train, test):
    assert train.user_map is d.user_map and train.item_map is d.item_map
    assert test.user_map is d.user_map and test.item_map is d.item_map
    assert len(train) + len(test) == len(d)
    assert not np.intersect1d(keys(train), keys(test)).size
    both = np.concatenate([rows(train), rows(test)])
    assert np.array_equal(np.sort(both), rows(d))
    for part in (train, test):
        assert (np.diff(keys(part)) > 0).all()  # canonical order
        assert part.implicit == d.implicit


def unknown_rows(train, test, users=True):
    bad = train.item_counts[test.item_index] == 0
    if users:
        bad |= train.user_counts[test.user_index] == 0
    return int(bad.sum())


def msg(text):
    return "^" + re.escape(text)


# ---------------------------------------------------------------------- random
def test_random_partition_and_size(data):
    train, test = split.random(data, test_size=0.2, random_state=0)
    assert_partition(data, train, test)
    assert len(test) == 600
    train, test = split.random(data, test_size=7, random_state=0)
    assert len(test) == 7
    _, test = split.random(data, test_size=0.0001, random_state=0)
    assert len(test) == 1  # at least one


def test_random_deterministic_and_varies(data):
    a = split.random(data, random_state=1)[1]
    b = split.random(data, random_state=1)[1]
    c = split.random(data, random_state=2)[1]
    assert np.array_equal(keys(a), keys(b))
    assert not np.array_equal(keys(a), keys(c))


def test_random_is_uniform():
    d = build(np.zeros(10, dtype=int), np.arange(10))
    hits = np.zeros(10)
    for seed in range(400):
        _, test = split.random(d, test_size=3, random_state=seed)
        hits[test.item_index] += 1
    assert hits.sum() == 1200
    assert hits.min() > 80 and hits.max() < 160  # expect 120 each


def test_random_drop_unknown():
    # users 1..9 and items 1..9 have one interaction each: whenever it is in test,
    # the test row is unknown to train.
    d = build([0] * 10 + list(range(1, 10)), list(range(10)) + list(range(11, 20)))
    train, test = split.random(d, test_size=0.5, random_state=0)
    assert unknown_rows(train, test) > 0  # kept by default
    train2, test2 = split.random(d, test_size=0.5, random_state=0, drop_unknown=True)
    assert np.array_equal(keys(train2), keys(train))
    assert len(test2) == len(test) - unknown_rows(train, test)
    assert unknown_rows(train2, test2) == 0


# ---------------------------------------------------------------------- per_user
def test_per_user_fraction(data):
    train, test = split.per_user(data, test_size=0.25, random_state=0)
    assert_partition(data, train, test)
    c = data.user_counts
    expected = np.maximum(np.minimum(np.floor(0.25 * c + 0.5), c - 1), 0)
    assert np.array_equal(test.user_counts, expected)
    assert (train.user_counts >= 1).all()


def test_per_user_count_and_min_train(data):
    train, test = split.per_user(data, test_size=3, min_train=5, random_state=0)
    assert_partition(data, train, test)
    c = data.user_counts
    assert np.array_equal(test.user_counts, np.where(c >= 8, 3, 0))
    assert (train.user_counts[c >= 8] >= 5).all()
    assert np.array_equal(train.user_counts[c < 8], c[c < 8])  # wholly in train


def test_per_user_small_users():
    # user a: 1, b: 2, c: 3, d: 10 interactions
    users = ["a"] + ["b"] * 2 + ["c"] * 3 + ["d"] * 10
    d = build(users, list(range(len(users))))
    _, test = split.per_user(d, test_size=0.5, min_train=1, random_state=0)
    pos = d.user_map.to_index(["a", "b", "c", "d"])
    assert test.user_counts[pos].tolist() == [0, 1, 2, 5]  # round half up, capped
    _, test = split.per_user(d, test_size=0.5, min_train=2, random_state=0)
    assert test.user_counts[pos].tolist() == [0, 0, 1, 5]
    _, test = split.per_user(d, test_size=2, min_train=0, random_state=0)
    assert test.user_counts[pos].tolist() == [0, 2, 2, 2]
    _, test = split.per_user(d, test_size=0.9, min_train=0, random_state=0)
    assert test.user_counts[pos].tolist() == [1, 2, 3, 9]


def test_per_user_deterministic_varies_and_uniform_within_user():
    d = build(["x"] * 8 + ["y"] * 4, list(range(12)))
    a = split.per_user(d, test_size=0.5, random_state=3)[1]
    b = split.per_user(d, test_size=0.5, random_state=3)[1]
    assert np.array_equal(keys(a), keys(b))
    hits = np.zeros(12)
    for seed in range(300):
        _, test = split.per_user(d, test_size=0.5, random_state=seed)
        hits[test.item_index] += 1
    assert hits[:8].min() > 110 and hits[:8].max() < 190  # expect 150 each
    assert hits[8:].min() > 110 and hits[8:].max() < 190


def test_per_user_warns_when_nobody_qualifies():
    d = build(["a", "b"], [1, 2])
    with pytest.warns(DataWarning, match="per_user: no user has enough interactions"):
        train, test = split.per_user(d, test_size=1, random_state=0)
    assert len(test) == 0 and len(train) == 2


def test_per_user_drop_unknown_items():
    d = build(["a", "a", "b", "b"], [1, 2, 1, 3])
    kept = split.per_user(d, test_size=1, random_state=0, drop_unknown=False)
    dropped = split.per_user(d, test_size=1, random_state=0, drop_unknown=True)
    assert len(dropped[1]) == len(kept[1]) - unknown_rows(*kept)
    assert unknown_rows(*dropped) == 0


# ---------------------------------------------------------------------- temporal
def test_temporal_fraction_orders_by_time(data):
    train, test = split.temporal(data, test_size=0.2)
    assert_partition(data, train, test)
    assert len(test) == 600
    assert train.timestamps.max() <= test.timestamps.min()
    assert len(split.temporal(data)[1]) == 600  # 0.2 by default
    assert len(split.temporal(data, test_size=10)[1]) == 10


def test_temporal_ties_go_to_test_in_canonical_order():
    d = build([0, 0, 1, 1, 2, 2], [0, 1, 0, 1, 0, 1], ts=[1, 5, 5, 5, 5, 2])
    train, test = split.temporal(d, test_size=2)
    # four interactions share t=5; the last two in (user, item) order go to test
    assert keys(test).tolist() == [2 * 1 + 1, 2 * 2 + 0]  # (1, 1) and (2, 0)
    assert train.timestamps.max() <= test.timestamps.min()
    assert_partition(d, train, test)


def test_temporal_cutoff(data):
    cut = int(np.median(data.timestamps))
    train, test = split.temporal(data, cutoff=cut)
    assert_partition(data, train, test)
    assert test.timestamps.min() >= cut > train.timestamps.max()
    by_date = split.temporal(data, cutoff="2020-07-01")
    by_stamp = split.temporal(data, cutoff=pd.Timestamp("2020-07-01", tz="UTC"))
    by_np = split.temporal(data, cutoff=np.datetime64("2020-07-01T00:00:00"))
    secs = int(pd.Timestamp("2020-07-01").timestamp())
    for train, test in (by_date, by_stamp, by_np):
        assert test.timestamps.min() >= secs > train.timestamps.max()


def test_temporal_float_timestamps():
    d = build([0, 1, 2, 3], [0, 0, 0, 0], ts=[0.5, 0.25, 2.5, 1.75])
    train, test = split.temporal(d, test_size=0.5)
    assert sorted(test.timestamps.tolist()) == [1.75, 2.5]
    train, test = split.temporal(d, cutoff=0.4)
    assert sorted(train.timestamps.tolist()) == [0.25]


def test_temporal_drop_unknown(data):
    train, test = split.temporal(data, test_size=0.5)
    n_bad = unknown_rows(train, test)
    assert n_bad > 0
    _, test2 = split.temporal(data, test_size=0.5, drop_unknown=True)
    assert len(test2) == len(test) - n_bad


# ---------------------------------------------------------------------- leave_last
def test_leave_last_takes_each_users_latest(data):
    train, test = split.leave_last(data, n=2)
    assert_partition(data, train, test)
    c = data.user_counts
    assert np.array_equal(test.user_counts, np.where(c >= 3, 2, 0))
    for u in np.flatnonzero(c >= 3)[:50]:
        lo, hi = train.indptr[u], train.indptr[u + 1]
        tlo, thi = test.indptr[u], test.indptr[u + 1]
        assert train.timestamps[lo:hi].max() <= test.timestamps[tlo:thi].min()


def test_leave_last_ties_and_min_train():
    # user 0: t = 3, 9, 9, 1 on items 0..3: the two t=9 tie; item 2 counts as later
    d = build([0, 0, 0, 0, 1, 1], [0, 1, 2, 3, 0, 1], ts=[3, 9, 9, 1, 4, 4])
    _, test = split.leave_last(d, n=1)
    assert sorted(keys(test).tolist()) == [2, 4 + 1]
    _, test = split.leave_last(d, n=2)
    assert sorted(keys(test).tolist()) == [1, 2]  # user 1 has only 2: stays in train
    _, test = split.leave_last(d, n=2, min_train=0)
    assert sorted(keys(test).tolist()) == [1, 2, 4, 5]
    warning = "leave_last: no user has enough interactions to hold any out with n=5 and min_train=1"
    with pytest.warns(DataWarning, match=msg(warning)):
        split.leave_last(d, n=5)


@pytest.mark.parametrize(
    "ts",
    [
        [3.5, 9.25, 9.25, 1.0, 4.0, 4.5],  # float timestamps: dense-rank path
        [3, 2**62, 2**62, -(2**62), 4, 5],  # span too wide to pack: dense-rank path
    ],
)
def test_leave_last_wide_or_float_keys(ts):
    d = build([0, 0, 0, 0, 1, 1], [0, 1, 2, 3, 0, 1], ts=ts)
    _, test = split.leave_last(d, n=1)
    assert sorted(keys(test).tolist()) == [2, 5]


def test_order_within_users_matches_lexsort(data):
    pos, rank, users = splits._order_within_users(data, data.timestamps, None)
    expected = np.lexsort((np.arange(len(data)), data.timestamps, data.user_index))
    assert np.array_equal(pos, expected)
    assert np.array_equal(users, data.user_index[pos])
    assert np.array_equal(rank, np.arange(len(data)) - data.indptr[users])


# ---------------------------------------------------------------------- kfold
def test_kfold_partitions(data):
    folds = list(split.kfold(data, k=4, random_state=0))
    assert len(folds) == 4
    seen = np.zeros(len(data), dtype=int)
    for train, test in folds:
        assert_partition(data, train, test)
        seen[np.searchsorted(keys(data), keys(test))] += 1
    assert (seen == 1).all()
    sizes = [len(test) for _, test in split.kfold(data, k=7, random_state=0)]
    assert sizes == [429] * 4 + [428] * 3


def test_kfold_deterministic_and_shuffle_false(data):
    a = [keys(t) for _, t in split.kfold(data, k=3, random_state=5)]
    b = [keys(t) for _, t in split.kfold(data, k=3, random_state=5)]
    c = [keys(t) for _, t in split.kfold(data, k=3, random_state=6)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[0], c[0])
    blocks = [keys(t) for _, t in split.kfold(data, k=3, shuffle=False)]
    assert np.array_equal(np.concatenate(blocks), keys(data))  # contiguous, in order


def test_kfold_leave_one_out_and_drop_unknown():
    d = build(["a", "a", "b", "b", "c"], [1, 2, 1, 2, 3])
    folds = list(split.kfold(d, k=5, random_state=0))
    assert all(len(test) == 1 for _, test in folds)
    dropped = list(split.kfold(d, k=5, random_state=0, drop_unknown=True))
    # only c's interaction (unknown user and item once held out) is dropped
    assert sum(len(test) for _, test in dropped) == 4


def test_kfold_validates_eagerly(data):
    with pytest.raises(InvalidParameterError, match=msg("kfold: k must be an int >= 2; got 1")):
        split.kfold(data, k=1)  # raises at the call, before iteration


# ---------------------------------------------------------------------- user_kfold
def test_user_kfold_holds_out_whole_users(data):
    folds = list(split.user_kfold(data, k=4, random_state=0))
    active = np.flatnonzero(data.user_counts)
    all_test_users = []
    for train, test in folds:
        assert_partition(data, train, test)
        test_users = np.flatnonzero(test.user_counts)
        assert len(test_users) == len(active) // 4
        assert (train.user_counts[test_users] == 0).all()  # unseen by design
        assert np.array_equal(test.user_counts[test_users], data.user_counts[test_users])
        all_test_users.append(test_users)
    everyone = np.concatenate(all_test_users)
    assert np.array_equal(np.sort(everyone), active)  # disjoint and complete


def test_user_kfold_deterministic_and_drop_unknown_items():
    d = build(["a", "a", "b", "c", "c", "d"], [1, 2, 1, 3, 1, 2])
    a = [keys(t) for _, t in split.user_kfold(d, k=2, random_state=0)]
    b = [keys(t) for _, t in split.user_kfold(d, k=2, random_state=0)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    for (train, test), (_, test2) in zip(
        split.user_kfold(d, k=4, random_state=0),
        split.user_kfold(d, k=4, random_state=0, drop_unknown=True),
        strict=True,
    ):
        assert len(test2) == len(test) - unknown_rows(train, test, users=False)
        assert len(test2) > 0  # test users themselves are never dropped


# ---------------------------------------------------------------------- properties
@st.composite
def small_data(draw):
    n_users = draw(st.integers(1, 6))
    n_items = draw(st.integers(2, 6))
    cells = draw(
        st.lists(
            st.tuples(st.integers(0, n_users - 1), st.integers(0, n_items - 1)),
            min_size=2,
            max_size=n_users * n_items,
            unique=True,
        )
    )
    u, i = zip(*cells, strict=True)
    ts = draw(st.lists(st.integers(0, 3), min_size=len(u), max_size=len(u)))
    return build(list(u), list(i), ts=ts)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(d=small_data(), seed=st.integers(0, 2**32 - 1), frac=st.floats(0.05, 0.95))
def test_every_split_partitions(d, seed, frac):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        results = [
            split.random(d, test_size=frac, random_state=seed),
            split.per_user(d, test_size=frac, random_state=seed),
            split.temporal(d, test_size=frac),
            split.leave_last(d, n=1),
        ]
    for train, test in results:
        assert_partition(d, train, test)
    train, test = results[2]
    assert train.timestamps.max() <= test.timestamps.min()
    k = min(len(d), 3)
    tested = np.concatenate([keys(t) for _, t in split.kfold(d, k=k, random_state=seed)])
    assert np.array_equal(np.sort(tested), keys(d))


# ---------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda d: split.random(d, test_size=1.5), InvalidParameterError,
         "random: test_size must be a float in (0, 1) or an int >= 1; got 1.5"),
        (lambda d: split.random(d, test_size=0), InvalidParameterError,
         "random: test_size must be a float in (0, 1) or an int >= 1; got 0"),
        (lambda d: split.random(d, test_size=True), InvalidParameterError,
         "random: test_size must be a float in (0, 1) or an int >= 1; got True"),
        (lambda d: split.random(d, test_size=3000), InvalidParameterError,
         "random: test_size must leave at least one interaction for training; got 3000, "
         "which puts 3000 of the 3000 interactions in test"),
        (lambda d: split.random(d, random_state=-1), InvalidParameterError,
         "random: random_state must be None, an int >= 0 or a numpy.random.Generator; "
         "got -1"),
        (lambda d: split.random(d, drop_unknown="no"), InvalidParameterError,
         "random: drop_unknown must be a bool; got 'no'"),
        (lambda d: split.random(d.to_pandas()), InvalidParameterError,
         "random: data must be an Interactions; got DataFrame. Build one with "
         "fk.Interactions.from_pandas(...) or fk.read_csv(...)"),
        (lambda d: split.random(d.take(np.zeros(len(d), dtype=bool))), DataError,
         "random: data has no interactions; there is nothing to split"),
        (lambda d: split.per_user(d, test_size=1.5), InvalidParameterError,
         "per_user: test_size must be a float in (0, 1) or an int >= 1; got 1.5"),
        (lambda d: split.per_user(d, min_train=-1), InvalidParameterError,
         "per_user: min_train must be an int >= 0; got -1"),
        (lambda d: split.per_user(d, random_state="x"), InvalidParameterError,
         "per_user: random_state must be None, an int >= 0 or a numpy.random.Generator; "
         "got 'x'"),
        (lambda d: split.temporal(d, test_size=-0.2), InvalidParameterError,
         "temporal: test_size must be a float in (0, 1) or an int >= 1; got -0.2"),
        (lambda d: split.temporal(d, test_size=0.2, cutoff=5), InvalidParameterError,
         "temporal: pass test_size or cutoff, not both; got test_size=0.2 and cutoff=5"),
        (lambda d: split.temporal(d, cutoff=0), InvalidParameterError,
         "temporal: cutoff must fall within the timestamps ({lo} .. {hi}) so "
         "that train and test are both non-empty; got 0, which leaves train empty"),
        (lambda d: split.temporal(d, cutoff=2 * 10**9), InvalidParameterError,
         "temporal: cutoff must fall within the timestamps ({lo} .. {hi}) so "
         "that train and test are both non-empty; got 2000000000, which leaves test empty"),
        (lambda d: split.temporal(d, cutoff="not a date"), InvalidParameterError,
         "temporal: cutoff must be a number or a datetime-like (datetime, "
         "numpy.datetime64, ISO string); got 'not a date'"),
        (lambda d: split.temporal(d, cutoff=[1]), InvalidParameterError,
         "temporal: cutoff must be a number or a datetime-like"),
        (lambda d: split.leave_last(d, n=0), InvalidParameterError,
         "leave_last: n must be an int >= 1; got 0"),
        (lambda d: split.leave_last(d, min_train=1.5), InvalidParameterError,
         "leave_last: min_train must be an int >= 0; got 1.5"),
        (lambda d: split.kfold(d, k=1), InvalidParameterError,
         "kfold: k must be an int >= 2; got 1"),
        (lambda d: split.kfold(d, k=3001), InvalidParameterError,
         "kfold: k must be <= the number of interactions (3000); got 3001"),
        (lambda d: split.kfold(d, shuffle=None), InvalidParameterError,
         "kfold: shuffle must be a bool; got None"),
        (lambda d: split.user_kfold(d, k=201), InvalidParameterError,
         "user_kfold: k must be <= the number of users with interactions (200); got 201"),
        (lambda d: split.user_kfold(d, k="5"), InvalidParameterError,
         "user_kfold: k must be an int >= 2; got '5'"),
    ],
)  # fmt: skip
def test_errors(data, call, error, message):
    message = message.format(lo=data.timestamps.min(), hi=data.timestamps.max())
    with pytest.raises(error, match=msg(message)):
        call(data)


@pytest.mark.parametrize(
    ("call", "what"),
    [(split.temporal, "a temporal"), (split.leave_last, "a leave-last")],
)
def test_time_splits_need_timestamps(untimed, call, what):
    name = call.__name__
    with pytest.raises(DataError, match=msg(
        f"{name}: data has no timestamps, and {what} split orders interactions by time. "
        "Build the data with a timestamp column (e.g. fk.read_csv(path, ..., "
        "timestamp='timestamp')) or use split.random / split.per_user instead."
    )):  # fmt: skip
        call(untimed)


def test_public_module_exports():
    assert split.__all__ == ["kfold", "leave_last", "per_user", "random", "temporal", "user_kfold"]
    for name in split.__all__:
        assert getattr(split, name) is getattr(splits, name)


def test_float_test_size_is_kept_within_one_and_n_minus_one():
    d = build(["a", "b"], [1, 2], ts=[1, 2])
    assert [len(p) for p in split.random(d, test_size=0.9, random_state=0)] == [1, 1]
    assert [len(p) for p in split.temporal(d, test_size=0.01)] == [1, 1]
    one = build(["a"], [1], ts=[1])
    with pytest.raises(DataError, match=msg("random: data has only 1 interaction; a split "
                                            "needs at least 2")):  # fmt: skip
        split.random(one)
    with pytest.raises(DataError, match=msg("temporal: data has only 1 interaction")):
        split.temporal(one)


def test_generator_random_state(data):
    gen = np.random.default_rng(0)
    a = split.random(data, random_state=gen)[1]
    b = split.random(data, random_state=gen)[1]  # the generator moved on
    assert not np.array_equal(keys(a), keys(b))
