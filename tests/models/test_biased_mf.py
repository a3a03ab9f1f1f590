import numpy as np
import pytest

import factorkit as fk
from factorkit.datasets import load_movielens_small
from factorkit.exceptions import DivergenceError, InvalidParameterError
from factorkit.models import sgd as sgd_module
from factorkit.models.sgd import BiasedMF
from factorkit.testing import checkerboard, estimator_checks


@pytest.mark.parametrize(
    "check", estimator_checks(BiasedMF(factors=8, epochs=30, random_state=0)), ids=lambda c: c.name
)
def test_biased_mf_checks(check):
    check()


@pytest.mark.parametrize(
    "check",
    estimator_checks(BiasedMF(factors=8, epochs=30, biased=False, random_state=0)),
    ids=lambda c: c.name,
)
def test_funk_mf_checks(check):
    check()


def raw(data):
    return data.user_map.ids[data.user_index], data.item_map.ids[data.item_index]


def rmse(model, test):
    return float(np.sqrt(np.mean((model.predict(*raw(test)) - test.values) ** 2)))


def low_rank(n_users=400, n_items=300, rank=5, density=0.3, sigma=0.3, seed=0):
    """Ratings 3 + P Q^T + noise on a random subset of cells, split 80/20."""
    rng = np.random.default_rng(seed)
    P = rng.standard_normal((n_users, rank)) / rank**0.25
    Q = rng.standard_normal((n_items, rank)) / rank**0.25
    u, i = np.nonzero(rng.random((n_users, n_items)) < density)
    r = 3.0 + np.einsum("ij,ij->i", P[u], Q[i]) + sigma * rng.standard_normal(len(u))
    test = rng.random(len(u)) < 0.2
    make = fk.Interactions.from_arrays
    return make(u[~test], i[~test], r[~test]), make(u[test], i[test], r[test])


def force_threads(monkeypatch):
    """Let tiny data sets run on every thread (normally they train on one)."""
    monkeypatch.setattr(sgd_module, "_MIN_RATINGS_PER_THREAD", 1)


def test_movielens_small_cross_validated_rmse():
    data = load_movielens_small()
    result = fk.cross_validate(BiasedMF(random_state=0), data, cv=5, metrics=["rmse"])
    assert 0.835 <= result.mean["rmse"] <= 0.860, result.folds


@pytest.mark.parametrize("biased", [True, False])
def test_recovers_low_rank_matrix_to_noise_floor(biased):
    train, test = low_rank(sigma=0.3)
    model = BiasedMF(factors=10, epochs=40, regularization=0.03, biased=biased, random_state=0)
    assert rmse(model.fit(train), test) <= 0.3 * 1.15


@pytest.mark.parametrize(
    "biased, schedule", [(True, "adaptive"), (False, "adaptive"), (True, "decay"), (False, "decay")]
)
def test_bit_for_bit_repeatable_on_one_and_two_threads(monkeypatch, biased, schedule):
    force_threads(monkeypatch)
    train = checkerboard(80, 60, holdout=0.2, random_state=2)[0]
    kw = dict(factors=16, epochs=5, biased=biased, learning_rate_schedule=schedule)
    fits = [BiasedMF(**kw, random_state=7, n_threads=t).fit(train) for t in (1, 2, 2, 1)]
    for other in fits[1:]:
        for name in ("user_factors_", "item_factors_", "user_bias_", "item_bias_"):
            np.testing.assert_array_equal(getattr(other, name), getattr(fits[0], name))
        np.testing.assert_array_equal(other.history_["loss"], fits[0].history_["loss"])
    assert fits[0].user_factors_.dtype == np.float32
    different = BiasedMF(**kw, random_state=8).fit(train)
    assert not np.array_equal(different.user_factors_, fits[0].user_factors_)


def test_epochs_that_change_worker_count_give_the_same_bits(monkeypatch):
    # under load the fit may move each epoch between 2 workers and 1 (AdaptiveWorkers):
    # that must change the speed only, never the factors
    force_threads(monkeypatch)
    train = checkerboard(80, 60, holdout=0.2, random_state=2)[0]
    kw = dict(factors=16, epochs=6, random_state=7)
    steady = BiasedMF(**kw, n_threads=1).fit(train)
    calls = []

    def alternate(self):
        calls.append(len(calls) % 2 + 1)
        return calls[-1]

    monkeypatch.setattr(sgd_module.AdaptiveWorkers, "next", alternate)
    switching = BiasedMF(**kw, n_threads=2).fit(train)
    assert calls == [1, 2, 1, 2, 1, 2]
    for name in ("user_factors_", "item_factors_", "user_bias_", "item_bias_"):
        np.testing.assert_array_equal(getattr(switching, name), getattr(steady, name))


def test_loss_decreases_and_history_columns():
    train, test = low_rank(n_users=100, n_items=80)
    model = BiasedMF(factors=5, epochs=10, random_state=0).fit(train, validation=test)
    hist = model.history_
    assert list(hist.columns) == ["epoch", "loss", "val_rmse", "elapsed"]
    assert hist["epoch"].tolist() == list(range(1, 11))
    assert hist["loss"].iloc[-1] < hist["loss"].iloc[0]
    assert hist["val_rmse"].iloc[-1] == pytest.approx(rmse(model, test))


def test_early_stopping_keeps_best_epoch():
    train, test = low_rank(n_users=100, n_items=80, density=0.2)
    # no regularisation and many factors: overfits after a few epochs
    model = BiasedMF(
        factors=50, epochs=60, learning_rate=0.03, regularization=0.0, learning_rate_decay=1.0,
        learning_rate_schedule="decay", early_stopping=3, random_state=0,
    ).fit(train, validation=test)  # fmt: skip
    hist = model.history_
    best = hist.attrs["best_epoch"]
    assert len(hist) < 60 and len(hist) == best + 3
    assert hist["val_rmse"].min() == pytest.approx(hist["val_rmse"].iloc[best - 1])
    assert rmse(model, test) == pytest.approx(hist["val_rmse"].iloc[best - 1], rel=1e-6)
    assert rmse(model, test) < hist["val_rmse"].iloc[-1]


def test_early_stopping_needs_validation():
    train, _ = low_rank(n_users=50, n_items=40)
    with pytest.raises(InvalidParameterError, match="early_stopping=2 needs validation data"):
        BiasedMF(epochs=3, early_stopping=2).fit(train)


def test_callbacks_receive_records_and_can_stop():
    train, test = low_rank(n_users=50, n_items=40)
    records = []

    def stop_at_three(record):
        records.append(record)
        return record["epoch"] == 3

    model = BiasedMF(factors=4, epochs=10, callbacks=[stop_at_three], random_state=0)
    model.fit(train, validation=test)
    assert [r["epoch"] for r in records] == [1, 2, 3]
    assert set(records[0]) == {"epoch", "loss", "val_rmse", "elapsed", "model"}
    assert records[0]["model"] is model
    assert len(model.history_) == 3


def test_divergence_names_learning_rate():
    train, _ = low_rank(n_users=50, n_items=40)
    msg = (
        r"BiasedMF training diverged at epoch \d+ \(loss is (nan|inf)\); "
        r"lower learning_rate \(now 1000\.0\)"
    )
    with pytest.raises(DivergenceError, match=msg):
        BiasedMF(factors=4, epochs=20, learning_rate=1000.0, random_state=0).fit(train)


def test_invalid_parameter_message():
    train, _ = low_rank(n_users=20, n_items=20)
    msg = r"The 'factors' parameter of BiasedMF must be an int >= 1; got 0\."
    with pytest.raises(InvalidParameterError, match=msg):
        BiasedMF(factors=0).fit(train)
    with pytest.raises(InvalidParameterError, match="'learning_rate_decay' parameter"):
        BiasedMF(learning_rate_decay=1.5).fit(train)
    msg = (
        r"The 'learning_rate_schedule' parameter of BiasedMF must be one of 'adaptive', "
        r"'decay'; got 'adagrad'\."
    )
    with pytest.raises(InvalidParameterError, match=msg):
        BiasedMF(learning_rate_schedule="adagrad").fit(train)


def test_schedules_differ_and_both_fit_low_rank_data():
    """The adaptive schedule is the default; "decay" with its own step (0.03, the former
    default) is the per-epoch decay, and both reach the noise floor's neighbourhood."""
    train, test = low_rank(sigma=0.3)
    assert BiasedMF().learning_rate_schedule == "adaptive"
    kw = dict(factors=10, epochs=40, regularization=0.03, random_state=0)
    adaptive = BiasedMF(**kw).fit(train)
    decay = BiasedMF(**kw, learning_rate=0.03, learning_rate_schedule="decay").fit(train)
    assert not np.array_equal(adaptive.user_factors_, decay.user_factors_)
    for model in (adaptive, decay):
        assert rmse(model, test) <= 0.3 * 1.15


def test_schedule_survives_save_and_load(tmp_path):
    train, test = low_rank(n_users=60, n_items=50)
    model = BiasedMF(factors=4, epochs=3, learning_rate_schedule="decay", random_state=0)
    model.fit(train)
    model.save(tmp_path / "m.fk")
    loaded = fk.load(tmp_path / "m.fk")
    assert loaded.learning_rate_schedule == "decay"
    assert loaded.get_params() == model.get_params()
    np.testing.assert_array_equal(loaded.predict(*raw(test)), model.predict(*raw(test)))


def test_unknown_ids_fall_back_to_mean_and_known_bias():
    data = fk.Interactions.from_arrays(
        ["a", "a", "b", "b", "c"], ["x", "y", "x", "z", "y"], [5.0, 3.0, 4.0, 1.0, 2.0]
    )
    model = BiasedMF(factors=2, epochs=20, random_state=0).fit(data)
    mu = model.global_mean_
    assert mu == pytest.approx(3.0)
    item_x = model.item_map_.to_index(["x"])[0]
    user_a = model.user_map_.to_index(["a"])[0]
    p = model.predict(["nobody", "a", "nobody"], ["x", "nothing", "nothing"])
    np.testing.assert_allclose(
        p, [mu + model.item_bias_[item_x], mu + model.user_bias_[user_a], mu], rtol=1e-6
    )


def test_funk_mf_keeps_the_global_mean_only():
    train, _ = low_rank(n_users=100, n_items=80)
    model = BiasedMF(factors=5, epochs=5, biased=False, random_state=0).fit(train)
    assert not model.user_bias_.any() and not model.item_bias_.any()
    assert model.global_mean_ == pytest.approx(float(train.values.mean()), rel=1e-6)
    with pytest.warns(fk.exceptions.DataWarning, match="1 of 1"):
        fallback = model.predict([10**9], [10**9])[0]  # unknown ids of the right type
    assert fallback == pytest.approx(model.global_mean_)
    u, i = model.user_map_.ids[0], model.item_map_.ids[0]
    p, q = model.user_factors_[0], model.item_factors_[0]
    assert model.predict([u], [i])[0] == pytest.approx(model.global_mean_ + p @ q, rel=1e-6)


def test_fold_in_recovers_a_training_user():
    train, _ = low_rank(n_users=200, n_items=150, density=0.4)
    model = BiasedMF(factors=5, epochs=40, regularization=0.03, random_state=0).fit(train)
    user = train.user_map.ids[0]
    items, ratings = train.user_items(user)
    folded = model.fold_in(items, ratings)
    # the folded-in user scores every item about as the trained user does
    fitted = model.predict(user, model.item_map_.ids)
    again = (
        model.global_mean_ + folded.bias + model.item_bias_ + model.item_factors_ @ folded.factors
    )
    assert np.corrcoef(fitted, again)[0, 1] > 0.98
    rec_items, scores = model.recommend_new_user(items, ratings, k=5)
    assert len(rec_items) == 5 and not set(rec_items) & set(items)
    assert (np.diff(scores) <= 0).all()


def test_model_positions_follow_the_training_layout():
    # users and items are relabelled for training; raw ids in and out are unaffected
    train, _ = low_rank(n_users=60, n_items=50)
    model = BiasedMF(factors=4, epochs=5, random_state=0).fit(train)
    assert sorted(model.user_map_.ids.tolist()) == sorted(train.user_map.ids.tolist())
    user = model.user_map_.ids[3]
    seen = set(train.user_items(user)[0].tolist())
    recs, _ = model.recommend(user, k=len(model.item_map_) - len(seen))
    assert not seen & set(recs.tolist())
    assert len(recs) == len(model.item_map_) - len(seen)
