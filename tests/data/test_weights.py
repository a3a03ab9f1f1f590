import datetime as dt
import re

import numpy as np
import pytest

import factorkit as fk
from factorkit.exceptions import DataError, InvalidParameterError

DAY = 86400


@pytest.fixture(scope="module")
def data():
    return fk.Interactions.from_arrays(
        ["a", "a", "b", "c"],
        [1, 2, 1, 3],
        [4.0, 3.0, 5.0, 2.0],
        timestamps=[0, DAY, 3 * DAY, 2 * DAY],
    )


def test_weights_halve_every_half_life_from_the_latest_time(data):
    w = fk.time_decay(data, half_life="1d")
    ages = (data.timestamps.max() - data.timestamps) / DAY
    np.testing.assert_allclose(w, 0.5**ages)
    assert w.max() == 1.0 and len(w) == len(data)
    # aligned with the interactions: the latest one weighs 1
    assert w[np.argmax(data.timestamps)] == 1.0


@pytest.mark.parametrize(
    ("half_life", "seconds"),
    [
        (DAY, DAY),
        (2.5 * DAY, 2.5 * DAY),
        ("36h", 36 * 3600),
        ("90min", 5400),
        ("2w", 14 * DAY),
        ("0.5y", 0.5 * 365.25 * DAY),
        ("1e5s", 1e5),
        (" 3 D ", 3 * DAY),
        (dt.timedelta(days=2), 2 * DAY),
    ],
)
def test_half_life_units(data, half_life, seconds):
    ages = data.timestamps.max() - data.timestamps
    np.testing.assert_allclose(fk.time_decay(data, half_life=half_life), 0.5 ** (ages / seconds))


def test_now_moves_the_reference(data):
    w = fk.time_decay(data, "1d", now=DAY)
    np.testing.assert_allclose(w, 0.5 ** ((DAY - data.timestamps) / DAY))
    assert w.max() > 1  # interactions after now weigh more than 1
    same = fk.time_decay(data, "1d", now="1970-01-02")
    np.testing.assert_allclose(same, w)


def test_now_user_measures_age_within_each_users_history(data):
    """Each user's latest interaction weighs 1; earlier ones halve per half-life from it."""
    w = fk.time_decay(data, "1d", now="user")
    ts = data.timestamps
    latest = {u: ts[data.user_index == u].max() for u in np.unique(data.user_index)}
    expected = [0.5 ** ((latest[u] - t) / DAY) for u, t in zip(data.user_index, ts, strict=True)]
    np.testing.assert_allclose(w, expected)
    assert sorted(w.tolist()) == [0.5, 1.0, 1.0, 1.0]  # a's two, b's one, c's one


def test_movielens_weights():
    ml = fk.datasets.load_movielens_small()
    w = fk.time_decay(ml, half_life="365d")
    assert w.shape == (len(ml),) and (w > 0).all() and (w <= 1).all()
    young = ml.timestamps >= ml.timestamps.max() - 365 * DAY
    assert (w[young] >= 0.5).all() and (w[~young] < 0.5).all()


@pytest.mark.parametrize(
    ("half_life", "found"),
    [
        (0, "0"),
        (-3.0, "-3.0"),
        (float("nan"), "nan"),
        (float("inf"), "inf"),
        ("-2d", "'-2d'"),
        ("180 days", "'180 days'"),
        ("10x", "'10x'"),
        ("d", "'d'"),
        (None, "None"),
        (True, "True"),
    ],
)
def test_bad_half_life_is_refused(data, half_life, found):
    msg = (
        "time_decay: half_life must be a positive finite number of seconds or a string "
        "such as '180d' (units: s, min, h, d, w, y); got "
    )
    with pytest.raises(InvalidParameterError, match=re.escape(msg)) as info:
        fk.time_decay(data, half_life=half_life)
    assert str(info.value).endswith(found), str(info.value)


@pytest.mark.parametrize("now", [float("nan"), "not a date", [1, 2]])
def test_bad_now_is_refused(data, now):
    with pytest.raises(
        InvalidParameterError, match=r"time_decay: now must be None, 'user', Unix seconds"
    ):
        fk.time_decay(data, "1d", now=now)


def test_data_without_timestamps_is_refused():
    plain = fk.Interactions.from_arrays(["a"], [1], [4.0])
    with pytest.raises(DataError, match=r"time_decay: data has no timestamps, and the weights"):
        fk.time_decay(plain, "1d")
    with pytest.raises(DataError, match=r"time_decay: data must be a factorkit Interactions"):
        fk.time_decay(np.zeros(3), "1d")
