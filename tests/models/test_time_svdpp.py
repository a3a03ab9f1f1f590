import re
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest

import factorkit as fk
from factorkit import datasets, split
from factorkit.exceptions import DataError, DataWarning, InvalidParameterError
from factorkit.models.time_svdpp import TimeSVDpp
from factorkit.testing import estimator_checks

DAY = 86400


@pytest.fixture(scope="module")
def movielens():
    return datasets.load_movielens_small()


@pytest.fixture(scope="module")
def fitted(movielens):
    return TimeSVDpp(factors=8, epochs=3, time_bins=4, random_state=0, n_threads=1).fit(movielens)


@pytest.mark.parametrize(
    "check", estimator_checks(TimeSVDpp(epochs=10, random_state=0)), ids=lambda c: c.name
)
def test_time_svdpp_checks(check):
    check()


def _rmse(model, test):
    return fk.evaluate(model, test, metrics=["rmse"])["rmse"]


def test_data_without_timestamps_is_refused(movielens):
    plain = fk.Interactions.from_arrays([1, 1, 2], [1, 2, 1], [4.0, 3.0, 5.0])
    msg = "TimeSVDpp.fit: train has no timestamps, and timeSVD++ models how ratings change"
    with pytest.raises(DataError, match=re.escape(msg)) as info:
        TimeSVDpp(epochs=1).fit(plain)
    assert "timestamp='timestamp'" in str(info.value) and "fk.SVDpp" in str(info.value)
    with pytest.raises(DataError, match="validation has no timestamps"):
        TimeSVDpp(epochs=1).fit(movielens, validation=plain)


def test_reference_formula(fitted, movielens):
    """predict at given times is Koren's formula evaluated on the fitted arrays."""
    m = fitted
    rng = np.random.default_rng(0)
    rows = rng.choice(len(movielens), 200, replace=False)
    users = movielens.user_map.ids[movielens.user_index[rows]]
    items = movielens.item_map.ids[movielens.item_index[rows]]
    times = movielens.timestamps[rows]
    got = m.predict(users, items, times=times)
    u, i = m.user_map_.lookup(users), m.item_map_.lookup(items)
    day = np.floor(times / DAY) - m.time_origin_  # training times: inside every user's span
    delta = day - m.user_mean_day_[u]
    dev = np.sign(delta) * np.abs(delta) ** m.drift_exponent
    bins = np.minimum((day // m.bin_width_).astype(int), m.time_bins - 1)
    day_bias = np.zeros(len(u))
    for n, (uu, dd) in enumerate(zip(u, day, strict=True)):
        lo, hi = m.day_indptr_[uu], m.day_indptr_[uu + 1]
        hit = np.flatnonzero(m.day_values_[lo:hi] == dd)
        assert len(hit) == 1  # a training rating's day always has a slot
        day_bias[n] = m.day_bias_[lo + hit[0]]
    ptr, idx = m.seen_indptr_, m.seen_indices_
    z = np.array([m.implicit_factors_[idx[ptr[a] : ptr[a + 1]]].sum(0) for a in u])
    z /= np.sqrt(np.diff(ptr)[u])[:, None]
    vec = m.user_factors_[u] + m.user_drift_factors_[u] * dev[:, None] + z
    want = (
        m.global_mean_
        + m.user_bias_[u]
        + m.user_drift_[u] * dev
        + day_bias
        + m.item_bias_[i]
        + m.item_bin_bias_[i, bins]
        + np.einsum("ij,ij->i", vec, m.item_factors_[i])
    )
    np.testing.assert_allclose(got, np.clip(want, 0.5, 5.0), rtol=1e-5, atol=1e-5)
    assert np.abs(m.day_bias_).max() > 0 and np.abs(m.user_drift_factors_).max() > 0


def test_now_is_each_users_last_training_day(fitted, movielens):
    m = fitted
    users = m.user_map_.ids[:50]
    items = np.full(50, 318)
    now = m.predict(users, items)
    # a time after all training (2020-09-13; the data end in 2018) holds the user terms at
    # the last day (no day bias) and the item bin at the last bin: the same as "now" for a
    # user active on the last day
    future = m.predict(users, items, times=1.6e9)
    last_bin = m._bins(m.user_last_day_[:50]) == m.time_bins - 1
    np.testing.assert_allclose(now[last_bin], future[last_bin], rtol=1e-6)
    assert last_bin.any() and (~last_bin).any()
    # the user terms stop drifting after the last day: every later time predicts alike
    later = m.predict(users, items, times=1.7e9)  # 2023-11-14
    np.testing.assert_array_equal(future, later)


def test_times_before_the_first_day_warn_and_clamp(fitted):
    m = fitted
    users, items = m.user_map_.ids[:3], [1, 50, 318]
    first = (m.time_origin_ + m.user_first_day_[:3]) * DAY
    origin = m.time_origin_ * DAY
    # before the data: user terms at each user's first day, item terms at the first bin
    with pytest.warns(DataWarning, match=r"3 of 3 times fall before their user's first"):
        early = m.predict(users, items, times=origin - 10 * DAY)
    with pytest.warns(DataWarning, match=r"3 of 3 times"):
        earlier = m.predict(users, items, times=origin - 4000 * DAY)
    np.testing.assert_array_equal(early, earlier)
    with pytest.warns(DataWarning, match=r"1 of 3 times"):
        m.predict(users, items, times=[first[0] - DAY, first[1], first[2] + DAY])
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        m.predict(users, items, times=first)


def test_times_may_be_datetimes(fitted):
    a = fitted.predict([1, 2], [50, 50], times=["2018-01-01", "2018-06-01T12:00:00"])
    seconds = [1514764800, 1527854400]
    np.testing.assert_array_equal(a, fitted.predict([1, 2], [50, 50], times=seconds))
    np.testing.assert_array_equal(
        fitted.predict([1, 2], [50, 50], times=1514764800),
        fitted.predict([1, 2], [50, 50], times=[1514764800, 1514764800]),
    )


@pytest.mark.parametrize(
    ("times", "message"),
    [
        ([np.nan, 0.0], "TimeSVDpp.predict: times must be finite; got 1 NaN or infinite value"),
        ([0.0, 1.0, 2.0], "TimeSVDpp.predict: times has 3 entries for 2 (user, item) pairs"),
        (["yesterday", "today"], "TimeSVDpp.predict: times must be Unix seconds or datetime"),
        ([True, False], "TimeSVDpp.predict: times must be Unix seconds or datetime-likes; got"),
        (
            [1514764800, 1514764800000],
            "TimeSVDpp.predict: 1 of 2 times are in the future (entry 1 is 1514764800000 Unix "
            "seconds, after today); times must be Unix seconds (seconds since 1970-01-01 UTC). "
            "They look like milliseconds: divide by 1000.",
        ),
        (["2199-01-01", "2018-01-01"], "TimeSVDpp.predict: 1 of 2 times are in the future"),
        (["2999-01-01", "2018-01-01"], "datetime-likes between 1677 and 2262; got"),
    ],
)
def test_bad_times_are_refused(fitted, times, message):
    with pytest.raises(DataError, match=re.escape(message)):
        fitted.predict([1, 2], [50, 50], times=times)


def test_training_timestamps_in_the_future_are_refused():
    """Milliseconds read as seconds put every rating in the future: an error, not a fit."""
    ms = fk.Interactions.from_arrays(
        [1, 1, 2], [1, 2, 1], [4.0, 3.0, 5.0], timestamps=[1514764800000] * 3
    )
    msg = (
        "TimeSVDpp.fit: 3 of 3 train timestamps are in the future (entry 0 is 1514764800000 "
        "Unix seconds, after today); times must be Unix seconds (seconds since 1970-01-01 "
        "UTC). They look like milliseconds: divide by 1000."
    )
    with pytest.raises(DataError, match=re.escape(msg)):
        TimeSVDpp(epochs=1).fit(ms)


def test_ranking_matches_predict_at_now(fitted):
    """recommend's scores order items as predict(times=None) does, item bins included."""
    m = fitted
    for u in (0, 7, len(m.user_map_) - 1):
        ((_, _, scores),) = m.score_blocks([u])
        pred = m.predict(np.repeat(m.user_map_.ids[u], len(m.item_map_)), m.item_map_.ids)
        inside = (pred > 0.5) & (pred < 5.0)
        offset = pred[inside] - scores[0][inside]
        assert inside.sum() > 100
        assert np.ptp(offset) < 1e-4  # a per-user constant: mu + b_u
        assert offset[0] == pytest.approx(m.global_mean_ + m.user_bias_[u], abs=1e-4)
        top, _ = m.top_items([u], 5)
        np.testing.assert_array_equal(top[0], np.argsort(-scores[0], kind="stable")[:5])
    # recommend's scores are the unclipped ratings predict gives at "now"
    items, recs = m.recommend(m.user_map_.ids[3], k=500, exclude_seen=False)
    pred = m.predict(np.repeat(m.user_map_.ids[3], 500), items)
    inside = pred < 5.0
    assert inside.sum() > 100
    np.testing.assert_allclose(recs[inside], pred[inside], rtol=1e-5)


def test_save_load_round_trip(fitted):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "time.fk"
        fitted.save(path)
        loaded = fk.load(path)
    users, items = fitted.user_map_.ids[:20], fitted.item_map_.ids[:20]
    times = np.full(20, 1.6e9)
    np.testing.assert_array_equal(
        loaded.predict(users, items, times=times), fitted.predict(users, items, times=times)
    )
    np.testing.assert_array_equal(
        loaded.recommend(users[0], k=5)[0], fitted.recommend(users[0], k=5)[0]
    )
    assert loaded.item_bin_bias_.shape == (len(fitted.item_map_), 4)


def test_deterministic_with_one_thread(movielens):
    small = movielens.select_users(movielens.user_map.ids[:100])
    a = TimeSVDpp(factors=4, epochs=2, random_state=7, n_threads=1).fit(small)
    b = TimeSVDpp(factors=4, epochs=2, random_state=7, n_threads=1).fit(small)
    state_b = b.get_state()
    for name, value in a.get_state().items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(value, state_b[name], err_msg=name)


@pytest.mark.filterwarnings("ignore::factorkit.exceptions.DataWarning")
def test_validation_history_uses_validation_times(movielens):
    train, valid = split.temporal(movielens, test_size=0.1)
    model = TimeSVDpp(factors=8, epochs=3, random_state=0).fit(train, validation=valid)
    assert list(model.history_.columns[:3]) == ["epoch", "loss", "val_rmse"]
    assert model.history_["val_rmse"].iloc[-1] == pytest.approx(_rmse(model, valid), abs=1e-9)


def test_invalid_parameter_message(movielens):
    msg = "The 'time_bins' parameter of TimeSVDpp must be an int >= 1; got 0."
    with pytest.raises(InvalidParameterError, match=re.escape(msg)):
        TimeSVDpp(time_bins=0).fit(movielens)
    with pytest.raises(InvalidParameterError, match=r"'drift_exponent'.*in \[0, 1\]"):
        TimeSVDpp(drift_exponent=1.5).fit(movielens)


def test_no_fold_in_or_partial_fit():
    tags = fk.get_tags(TimeSVDpp)
    assert tags.requires_timestamps and tags.cli_name == "time-svdpp"
    assert not hasattr(TimeSVDpp(), "fold_in") and not hasattr(TimeSVDpp(), "partial_fit")


@pytest.mark.slow
def test_accuracy_against_svdpp_and_biased_mf(movielens):
    """The accuracy goal on the shipped data (numbers: docs/time.md)."""
    scores = {name: [] for name in ("time", "svdpp", "biased")}
    for train, test in split.kfold(movielens, k=5, random_state=0):
        scores["time"].append(_rmse(TimeSVDpp(random_state=0).fit(train), test))
        scores["svdpp"].append(_rmse(fk.SVDpp(random_state=0).fit(train), test))
        scores["biased"].append(_rmse(fk.BiasedMF(random_state=0).fit(train), test))
    cv = {name: np.mean(v) for name, v in scores.items()}
    assert 0.80 < cv["time"] < cv["svdpp"] - 0.004 < cv["biased"], cv
    train, test = split.temporal(movielens, test_size=0.2, drop_unknown=True)
    temporal = {
        "time": _rmse(TimeSVDpp(random_state=0).fit(train), test),
        "svdpp": _rmse(fk.SVDpp(random_state=0).fit(train), test),
        "biased": _rmse(fk.BiasedMF(random_state=0).fit(train), test),
    }
    assert 0.85 < temporal["time"] < min(temporal["svdpp"], temporal["biased"]), temporal
