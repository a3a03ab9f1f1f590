import re
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest

import factorkit as fk
from factorkit import datasets, split
from factorkit.exceptions import DataError, DataWarning, InvalidParameterError, ModelFormatError
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
    # users unseen in training: the closed-form item baseline travels with the file
    np.testing.assert_array_equal(loaded.item_fallback_bias_, fitted.item_fallback_bias_)
    with pytest.warns(DataWarning, match="unknown to the model"):
        got = loaded.predict([999999] * 20, items, times=times)
    with pytest.warns(DataWarning, match="unknown to the model"):
        np.testing.assert_array_equal(got, fitted.predict([999999] * 20, items, times=times))


def _item_baseline(data, shrinkage, weights=None):
    """``sum w (r - mu) / (shrinkage + sum w)`` per item, the model's order, in float64."""
    w = np.ones(len(data)) if weights is None else weights
    mu = np.average(data.values, weights=w)
    num = np.bincount(data.item_index, w * (data.values - mu), minlength=data.n_items)
    return num / (shrinkage + np.bincount(data.item_index, w, minlength=data.n_items))


def test_unknown_users_get_the_closed_form_item_baseline(fitted, movielens):
    """A user unseen in training: mu + c_i + the item's bin offset at the asked time; c_i
    is the item's mean deviation shrunk by fallback_regularization (not the learnt b_i)."""
    m = fitted
    assert m.fallback_regularization == 3.0
    want = _item_baseline(movielens, 3.0)
    np.testing.assert_allclose(m.item_fallback_bias_, want, rtol=1e-5, atol=1e-6)
    assert m.item_fallback_bias_.dtype == np.float32
    assert np.abs(m.item_fallback_bias_ - m.item_bias_).max() > 0.1  # a different estimate
    items = m.item_map_.ids[:300]
    t = 1.2e9  # 2008-01-10: a bin inside the training period
    with pytest.warns(DataWarning, match="300 of 300 .* unknown to the model"):
        got = m.predict([999999] * 300, items, times=t)
    bins = m._bins(np.full(300, np.floor(t / DAY) - m.time_origin_))
    assert 0 < bins[0] < m.time_bins - 1
    expected = m.global_mean_ + m.item_fallback_bias_[:300] + m.item_bin_bias_[np.arange(300), bins]
    np.testing.assert_allclose(got, np.clip(expected, 0.5, 5.0), rtol=1e-6)
    # unknown item, unknown user: the global mean; unknown="nan" still marks them
    with pytest.warns(DataWarning):
        assert m.predict([999999], [-1])[0] == pytest.approx(m.global_mean_)
    assert np.isnan(m.predict([999999], [items[0]], unknown="nan")).all()


def test_fallback_leaves_known_users_alone(movielens):
    """fallback_regularization changes predictions for unknown users only."""
    a = TimeSVDpp(factors=4, epochs=2, time_bins=4, random_state=0, n_threads=1).fit(movielens)
    b = TimeSVDpp(
        factors=4, epochs=2, time_bins=4, fallback_regularization=50.0, random_state=0, n_threads=1
    ).fit(movielens)
    users, items = movielens.user_map.ids[:40], movielens.item_map.ids[:40]
    np.testing.assert_array_equal(a.predict(users, items), b.predict(users, items))
    np.testing.assert_array_equal(a.recommend(users[0], k=10)[0], b.recommend(users[0], k=10)[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        new_a, new_b = a.predict([-5] * 40, items), b.predict([-5] * 40, items)
    assert np.abs(new_a - new_b).max() > 0.05  # shrunk harder towards the global mean
    np.testing.assert_allclose(
        b.item_fallback_bias_, _item_baseline(movielens, 50.0), rtol=1e-5, atol=1e-6
    )


def test_fallback_baseline_is_weighted():
    """With sample_weight, c_i uses the weighted mean and weighted counts: weight 0
    removes a rating, weight 2 counts it twice."""
    data = fk.Interactions.from_arrays(
        [1, 1, 2, 2, 3], [10, 20, 10, 20, 10], [5.0, 2.0, 4.0, 3.0, 1.0],
        timestamps=[1.0e9, 1.1e9, 1.2e9, 1.3e9, 1.4e9],
    )  # fmt: skip
    assert data.values.tolist() == [5.0, 2.0, 4.0, 3.0, 1.0]  # the canonical order
    w = np.array([2.0, 1.0, 1.0, 1.0, 0.0])
    m = TimeSVDpp(factors=2, epochs=1, time_bins=1, random_state=0, n_threads=1)
    m.fit(data, sample_weight=w)
    mu = np.average(data.values, weights=w)
    assert m.global_mean_ == pytest.approx(mu)
    c10 = (2 * (5 - mu) + (4 - mu)) / (3.0 + 3.0)
    c20 = ((2 - mu) + (3 - mu)) / (3.0 + 2.0)
    pos = m.item_map_.lookup([10, 20])
    np.testing.assert_allclose(m.item_fallback_bias_[pos], [c10, c20], rtol=1e-6)


def test_state_without_fallback_predicts_unknown_users_with_item_bias(fitted):
    """A state saved before item_fallback_bias_ existed loads, and predicts unknown users
    as that version did (mu + b_i + bin offset)."""
    state = fitted.get_state()
    assert "item_fallback_bias_" in TimeSVDpp.state_names()["arrays"]
    state.pop("item_fallback_bias_")
    old = TimeSVDpp(**fitted.get_params()).set_state(fitted.get_state())
    old.set_state(state)  # over a state that had one: nothing of it is left
    assert "item_fallback_bias_" not in old.get_state()
    items = fitted.item_map_.ids[:50]
    with pytest.warns(DataWarning):
        got = old.predict([-5] * 50, items, times=1.2e9)
    bins = old._bins(np.full(50, np.floor(1.2e9 / DAY) - old.time_origin_))
    want = old.global_mean_ + old.item_bias_[:50] + old.item_bin_bias_[np.arange(50), bins]
    np.testing.assert_allclose(got, np.clip(want, 0.5, 5.0), rtol=1e-6)
    users = fitted.user_map_.ids[:50]
    np.testing.assert_array_equal(old.predict(users, items), fitted.predict(users, items))


def _tampered(files, path, edit):
    """``path`` rewritten with one array edited, every checksum recomputed."""
    meta, arrays = files.read(path)
    edit(arrays)
    return files.write(path.with_name("edited.fk"), meta, arrays)


def _set_array(name, value):
    return lambda arrays: arrays.__setitem__(name, value(arrays[name]))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            _set_array("item_fallback_bias_", lambda a: a[:-3]),
            "array 'item_fallback_bias_' shape: expected 9724 rows (one per id); found (9721,)",
        ),
        (
            _set_array(
                "item_fallback_bias_", lambda a: np.where(np.arange(len(a)) == 7, np.nan, a)
            ),
            "array 'item_fallback_bias_': expected finite values; found 'NaN or infinity'",
        ),
        (
            _set_array("item_fallback_bias_", lambda a: a.astype(np.int64)),
            "array 'item_fallback_bias_': expected a 1-D float vector",
        ),
        (
            _set_array("item_fallback_bias_", lambda a: np.stack([a, a], axis=1)),
            "array 'item_fallback_bias_': expected a 1-D float vector",
        ),
    ],
    ids=["short", "nan", "integers", "2-D"],
)
def test_tampered_fallback_bias_is_refused(model_files, fitted, tmp_path, edit, message):
    path = tmp_path / "time.fk"
    fitted.save(path)
    edited = _tampered(model_files, path, edit)
    with pytest.raises(ModelFormatError) as info:
        fk.load(edited)
    assert str(info.value).startswith(str(edited)) and message in str(info.value)


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
@pytest.mark.filterwarnings("ignore::factorkit.exceptions.DataWarning")  # unknown ids
def test_accuracy_against_svdpp_and_biased_mf(movielens):
    """The accuracy goal on the shipped data (numbers: docs/time.md)."""
    scores = {name: [] for name in ("time", "svdpp", "biased")}
    for train, test in split.kfold(movielens, k=5, random_state=0):
        scores["time"].append(_rmse(TimeSVDpp(random_state=0).fit(train), test))
        scores["svdpp"].append(_rmse(fk.SVDpp(random_state=0).fit(train), test))
        scores["biased"].append(_rmse(fk.BiasedMF(random_state=0).fit(train), test))
    cv = {name: np.mean(v) for name, v in scores.items()}
    assert 0.80 < cv["time"] < cv["svdpp"] - 0.004 < cv["biased"], cv
    train, test = split.temporal(movielens, test_size=0.2)
    known = split.temporal(movielens, test_size=0.2, drop_unknown=True)[1]
    models = {
        "time": TimeSVDpp(random_state=0).fit(train),
        "svdpp": fk.SVDpp(random_state=0).fit(train),
        "biased": fk.BiasedMF(random_state=0).fit(train),
        "baseline": fk.BaselineOnly().fit(train),
    }
    temporal = {name: _rmse(model, test) for name, model in models.items()}
    others = min(v for name, v in temporal.items() if name != "time")
    # all test ratings (90% by users new after the cut: the closed-form item baseline)
    assert 0.95 < temporal["time"] < others - 0.002, temporal
    known_only = {name: _rmse(model, known) for name, model in models.items()}
    others = min(v for name, v in known_only.items() if name != "time")
    assert 0.85 < known_only["time"] < others, known_only
