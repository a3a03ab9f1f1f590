import numpy as np
import pytest

import factorkit as fk
import factorkit.datasets
import factorkit.split
from factorkit.exceptions import InvalidParameterError
from factorkit.kernels.als import als_solve_rows
from factorkit.models.als import ALS
from factorkit.testing import estimator_checks


@pytest.mark.parametrize("check", estimator_checks(ALS(epochs=5)), ids=lambda c: c.name)
def test_als_checks(check):
    check()


def low_rank(n_users=600, n_items=500, rank=5, density=0.3, noise=0.3, seed=0):
    """Ratings 3 + p_u . q_i + N(0, noise^2) from rank-5 factors; 20% held out."""
    rng = np.random.default_rng(seed)
    p = rng.standard_normal((n_users, rank)) / np.sqrt(rank)
    q = rng.standard_normal((n_items, rank))
    u, i = np.nonzero(rng.random((n_users, n_items)) < density)
    r = 3.0 + np.einsum("ij,ij->i", p[u], q[i]) + rng.standard_normal(len(u)) * noise
    test = rng.random(len(u)) < 0.2
    train = fk.Interactions.from_arrays(u[~test], i[~test], r[~test])
    return train, fk.Interactions.from_arrays(u[test], i[test], r[test])


@pytest.fixture(scope="module")
def synthetic():
    return low_rank()


def rmse(model, data):
    return fk.evaluate(model, data, metrics=["rmse"])["rmse"]


def test_recovers_low_rank_matrix_near_noise_floor(synthetic):
    train, test = synthetic
    model = ALS(factors=5, regularization=0.01, random_state=0).fit(train)
    # noise floor 0.3; what remains is estimation error from ~36 ratings per user
    assert rmse(model, test) < 0.33


def test_movielens_5fold_cv_rmse():
    data = fk.datasets.load_movielens_small()
    scores = [
        rmse(ALS(random_state=0).fit(train), test)
        for train, test in fk.split.kfold(data, k=5, random_state=0)
    ]
    assert 0.82 < np.mean(scores) <= 0.865, scores


def test_deterministic_and_independent_of_thread_count(synthetic):
    train, test = synthetic
    users, items = test.user_map.ids[test.user_index], test.item_map.ids[test.item_index]
    preds = [
        ALS(factors=8, epochs=3, random_state=1, n_threads=n).fit(train).predict(users, items)
        for n in (1, 1, 2)
    ]
    np.testing.assert_array_equal(preds[0], preds[1])
    np.testing.assert_array_equal(preds[0], preds[2])


def test_objective_never_increases(synthetic):
    # every half-step is an exact minimisation, so the regularised loss is monotone
    model = ALS(factors=8, epochs=8, random_state=0).fit(synthetic[0])
    loss = model.history_["loss"].to_numpy()
    assert (np.diff(loss) <= 1e-6 * loss[:-1]).all(), loss


@pytest.mark.parametrize("weighted", [True, False])
def test_larger_regularization_shrinks_factors(synthetic, weighted):
    # p_u . q_i is unchanged by p -> c p, q -> q / c, so compare |P|^2 + |Q|^2 (the
    # penalised quantity) and the interaction part P Q^T itself
    sq_norms, products = [], []
    for lam in (0.01, 0.1, 1.0):
        lam = lam if weighted else lam * 30
        model = ALS(factors=8, epochs=5, regularization=lam, weighted_regularization=weighted)
        model.set_params(random_state=0).fit(synthetic[0])
        p, q = model.user_factors_.astype(float), model.item_factors_.astype(float)
        sq_norms.append((p**2).sum() + (q**2).sum())
        products.append(np.linalg.norm(p @ q.T))
    assert np.all(np.diff(sq_norms) < 0), sq_norms
    assert np.all(np.diff(products) < 0), products


def test_early_stopping_keeps_best_epoch(synthetic):
    train, test = synthetic
    # 32 factors with little shrinkage overfit after the third epoch
    model = ALS(factors=32, regularization=0.01, epochs=15, early_stopping=2, random_state=0)
    model.fit(train, validation=test)
    hist = model.history_
    best = int(hist["val_rmse"].idxmin())
    assert len(hist) < 15 and len(hist) == best + 1 + 2
    assert hist.attrs["best_epoch"] == best + 1
    assert rmse(model, test) == pytest.approx(hist["val_rmse"][best], abs=1e-9)
    assert rmse(model, test) < hist["val_rmse"].iloc[-1]


def test_fold_in_solves_the_training_problem_for_a_user(synthetic):
    train = synthetic[0]
    for weighted in (True, False):
        model = ALS(factors=6, epochs=3, weighted_regularization=weighted, random_state=0)
        model.fit(train)
        user = train.user_map.ids[7]
        items, ratings = train.user_items(user)
        folded = model.fold_in(items, ratings)
        pos = model.item_map_.to_index(items)
        f, b = np.zeros((1, 6), np.float32), np.zeros(1, np.float32)
        als_solve_rows(
            np.array([0, len(pos)]), pos.astype(np.int32), ratings.astype(np.float32),
            np.zeros(0), model.item_factors_, model.item_bias_, model.global_mean_,
            0.1, 0.1, weighted, f, b,
        )  # fmt: skip
        np.testing.assert_allclose(folded.factors, f[0], atol=1e-5)
        assert folded.bias == pytest.approx(float(b[0]), abs=1e-5)


def test_history_records_validation_rmse(synthetic):
    train, test = synthetic
    model = ALS(factors=4, epochs=3, random_state=0).fit(train, validation=test)
    assert list(model.history_.columns) == ["epoch", "loss", "val_rmse", "elapsed"]
    assert model.history_["val_rmse"].iloc[-1] == pytest.approx(rmse(model, test))


def test_fitted_state_shapes_and_dtypes(synthetic):
    train = synthetic[0]
    model = ALS(factors=7, epochs=2, random_state=0).fit(train)
    assert model.user_factors_.shape == (train.n_users, 7)
    assert model.item_factors_.shape == (train.n_items, 7)
    for name in ("user_factors_", "item_factors_", "user_bias_", "item_bias_"):
        assert getattr(model, name).dtype == np.float32
    assert model.global_mean_ == pytest.approx(float(np.mean(train.values)))


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"regularization": 0.0}, r"'regularization' parameter of ALS must be a number > 0"),
        ({"factors": 0}, r"'factors' parameter of ALS must be an int >= 1; got 0"),
        ({"weighted_regularization": 1}, r"'weighted_regularization' .* must be a bool"),
        ({"init_scale": 0.0}, r"'init_scale' parameter of ALS must be a number > 0"),
        ({"n_threads": 0}, r"'n_threads' parameter of ALS must be None \(all cores\)"),
    ],
)
def test_invalid_parameters_are_named(synthetic, params, match):
    with pytest.raises(InvalidParameterError, match=match):
        ALS(**params).fit(synthetic[0])


def test_early_stopping_needs_validation(synthetic):
    with pytest.raises(InvalidParameterError, match="early_stopping=2 needs validation data"):
        ALS(early_stopping=2).fit(synthetic[0])
