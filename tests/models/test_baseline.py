import numpy as np
import pytest

import factorkit as fk
from factorkit.testing import estimator_checks


@pytest.mark.parametrize("check", estimator_checks(fk.BaselineOnly()), ids=lambda c: c.name)
def test_baseline_checks(check):
    if check.name == "check_checkerboard":
        pytest.skip("biases alone cannot recover an interaction pattern")
    check()


def test_baseline_matches_closed_form_single_sweep():
    data = fk.Interactions.from_arrays([1, 1, 2], [10, 20, 10], [4.0, 2.0, 5.0])
    model = fk.BaselineOnly(epochs=1, regularization=1.0, user_regularization=2.0).fit(data)
    mu = 11 / 3
    bi = np.array([(4 - mu + 5 - mu) / 3, (2 - mu) / 2])
    bu = np.array([((4 - mu - bi[0]) + (2 - mu - bi[1])) / 4, (5 - mu - bi[0]) / 3])
    np.testing.assert_allclose(model.item_bias_, bi)
    np.testing.assert_allclose(model.user_bias_, bu)
    assert model.global_mean_ == pytest.approx(mu)


def test_baseline_accuracy_on_movielens_small_5fold():
    data = fk.datasets.load_movielens_small()
    result = fk.cross_validate(
        fk.BaselineOnly(), data, cv=5, metrics=["rmse", "mae"], random_state=0
    )
    rmse = result.mean["rmse"]
    assert 0.85 <= rmse <= 0.870, rmse  # measured 0.8651; Surprise 1.1.5 BaselineOnly: 0.8727


def test_baseline_trains_on_one_blas_thread():
    """Its epochs' only BLAS calls are dot products of rating-length vectors, which a
    multi-threaded BLAS splits over threads that then spin beside NumPy's bincounts
    (4x slower a fit on a busy machine, docs/benchmarks.md, issue 11 item 1)."""
    from threadpoolctl import threadpool_info

    seen = []

    def blas_threads(record):
        seen.append({i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"})

    data = fk.datasets.load_movielens_small()
    fk.BaselineOnly(epochs=2, callbacks=blas_threads).fit(data)
    assert seen == [{1}, {1}]
