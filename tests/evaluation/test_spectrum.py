"""Rank selection: singular_value_spectrum against numpy, factors_curve."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import factorkit as fk
from factorkit.evaluation.spectrum import factors_curve, singular_value_spectrum
from factorkit.exceptions import DataError, InvalidParameterError

COLUMNS = ["component", "singular_value", "explained_energy", "cumulative_energy"]


@pytest.fixture(scope="module")
def dense():
    return np.random.default_rng(0).normal(3.0, 1.0, size=(12, 8))


@pytest.mark.parametrize("center", ["global", "user", "item", None])
def test_dense_matches_numpy(dense, center):
    x = dense.copy()
    if center == "global":
        x -= x.mean()
    elif center == "user":
        x -= x.mean(axis=1, keepdims=True)
    elif center == "item":
        x -= x.mean(axis=0, keepdims=True)
    expected = np.linalg.svd(x, compute_uv=False)
    spec = singular_value_spectrum(dense, k=5, center=center)
    assert list(spec.columns) == COLUMNS
    assert spec["component"].tolist() == [1, 2, 3, 4, 5]
    np.testing.assert_allclose(spec["singular_value"], expected[:5], rtol=1e-10)
    energy = expected**2 / np.sum(expected**2)
    np.testing.assert_allclose(spec["explained_energy"], energy[:5], rtol=1e-10)
    np.testing.assert_allclose(spec["cumulative_energy"], np.cumsum(energy)[:5], rtol=1e-10)


def test_sparse_fully_observed_equals_dense(dense):
    a = singular_value_spectrum(sp.csr_matrix(dense), k=8, center="user")
    b = singular_value_spectrum(dense, k=8, center="user")
    pd.testing.assert_frame_equal(a, b)
    assert a["cumulative_energy"].iloc[-1] == pytest.approx(1.0)


def test_sparse_centres_observed_entries_only():
    rng = np.random.default_rng(1)
    x = rng.integers(1, 6, size=(20, 15)).astype(float)
    mask = rng.random(x.shape) < 0.4
    m = sp.csr_matrix(np.where(mask, x, 0.0))
    ref = np.zeros_like(x)
    for u in range(x.shape[0]):
        obs = mask[u]
        if obs.any():
            ref[u, obs] = x[u, obs] - x[u, obs].mean()
    spec = singular_value_spectrum(m, k=6, center="user")
    np.testing.assert_allclose(spec["singular_value"], np.linalg.svd(ref, compute_uv=False)[:6])


def test_known_rank_concentrates_energy():
    rng = np.random.default_rng(2)
    rank = 4
    x = rng.normal(size=(300, rank)) @ rng.normal(size=(rank, 200)) * 3.0
    x += rng.normal(scale=0.01, size=x.shape)
    m = sp.csr_matrix(x)
    spec = singular_value_spectrum(m, k=20, center=None)
    assert spec["cumulative_energy"].iloc[rank - 1] > 0.999
    assert spec["explained_energy"].iloc[rank:].sum() < 1e-3
    gap = spec["singular_value"].iloc[rank - 1] / spec["singular_value"].iloc[rank]
    assert gap > 50


def test_arpack_path_matches_dense(monkeypatch):
    from factorkit.evaluation import spectrum as mod

    rng = np.random.default_rng(3)
    m = sp.random(120, 90, density=0.2, random_state=rng, format="csr") * 5
    dense = mod.singular_value_spectrum(m, k=10, center="item")
    monkeypatch.setattr(mod, "_DENSE_CELLS", 0)  # force svds
    sparse = mod.singular_value_spectrum(m, k=10, center="item")
    np.testing.assert_allclose(sparse["singular_value"], dense["singular_value"], rtol=1e-6)
    np.testing.assert_allclose(sparse["cumulative_energy"], dense["cumulative_energy"], rtol=1e-6)


def test_interactions_and_k_capped():
    data = fk.Interactions.from_pandas(
        pd.DataFrame({"u": [1, 1, 2, 3], "i": ["a", "b", "a", "c"], "r": [5.0, 3.0, 4.0, 1.0]}),
        user="u",
        item="i",
        rating="r",
    )
    spec = singular_value_spectrum(data, k=10, center="global")
    assert len(spec) == 3  # min(3 users, 3 items)
    assert bool(spec["singular_value"].is_monotonic_decreasing)


def test_movielens_spectrum_fast_path():
    data = fk.datasets.load_movielens_small()
    spec = singular_value_spectrum(data, k=20, center="user")
    assert len(spec) == 20
    assert 0 < spec["cumulative_energy"].iloc[-1] < 1
    assert bool(spec["singular_value"].is_monotonic_decreasing)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"k": 0}, InvalidParameterError, "k must be an int >= 1"),
        ({"k": True}, InvalidParameterError, "k must be an int >= 1"),
        ({"center": "row"}, InvalidParameterError, "center must be one of"),
    ],
)
def test_bad_arguments(dense, kwargs, error, match):
    with pytest.raises(error, match=match):
        singular_value_spectrum(dense, **kwargs)


def test_bad_data():
    with pytest.raises(DataError, match=r"must be an Interactions, a scipy\.sparse matrix"):
        singular_value_spectrum("ratings.csv")
    with pytest.raises(DataError, match="must be 2-D"):
        singular_value_spectrum(np.ones(3))
    with pytest.raises(DataError, match="NaN or infinite"):
        singular_value_spectrum(np.array([[1.0, np.nan], [2.0, 3.0]]))


@pytest.fixture(scope="module")
def ml_split():
    return fk.split.random(fk.datasets.load_movielens_small(), test_size=0.2, random_state=0)


def test_factors_curve(ml_split):
    train, test = ml_split
    est = fk.BiasedMF(epochs=3, random_state=0)
    curve = factors_curve(est, train, test, factors=[2, 6], metric="RMSE", train_score=True)
    assert list(curve.columns) == ["factors", "rmse", "train_rmse", "fit_time"]
    assert curve["factors"].tolist() == [2, 6]
    model = fk.BiasedMF(epochs=3, random_state=0, factors=6).fit(train)
    assert curve["rmse"].iloc[1] == pytest.approx(fk.evaluate(model, test, ["rmse"])["rmse"])
    assert not hasattr(est, "item_factors_")  # the estimator passed in stays unfitted


def test_factors_curve_errors(ml_split):
    train, test = ml_split
    with pytest.raises(InvalidParameterError, match="has no 'factors' parameter"):
        factors_curve(fk.BaselineOnly(), train, test)
    with pytest.raises(InvalidParameterError, match="ints >= 1"):
        factors_curve(fk.BiasedMF(), train, test, factors=[0])
    with pytest.raises(InvalidParameterError, match="estimator instance"):
        factors_curve(fk.BiasedMF, train, test)
    with pytest.raises(InvalidParameterError):
        factors_curve(fk.BiasedMF(), train, test, metric="nope")
