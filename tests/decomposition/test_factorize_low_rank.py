import numpy as np
import pytest

import factorkit as fk
from factorkit.exceptions import DataError, InvalidParameterError

R3 = np.array([[5, 0, 4], [4, 2, 0], [0, 1, 2]])
R5 = np.array(
    [
        [5, 4, 0, 0, 0, 5],
        [0, 0, 4, 5, 4, 0],
        [4, 5, 0, 0, 0, 0],
        [0, 0, 3, 0, 5, 0],
        [2, 0, 0, 3, 0, 1],
    ]
)


@pytest.mark.parametrize("method", ["als", "sgd"])
def test_factorize_fits_known_entries(method):
    U, V, R_hat = fk.factorize(R5, factors=2, missing=0, method=method)
    assert U.shape == (5, 2) and V.shape == (6, 2)
    np.testing.assert_allclose(R_hat, U @ V.T)
    known = R5 > 0
    rmse = np.sqrt(np.mean((R_hat[known] - R5[known]) ** 2))
    assert rmse < 0.5
    assert np.isfinite(R_hat).all()


def test_factorize_nan_marker_and_progress(capsys):
    R = np.where(R3 == 0, np.nan, R3.astype(float))
    _, _, R_hat = fk.factorize(R, factors=2, missing=np.nan, epochs=5, progress=True)
    out = capsys.readouterr().out
    assert out.count("loss") == 5 and "epoch    5/5" in out
    _, _, same = fk.factorize(R3, factors=2, missing=0, epochs=5)
    np.testing.assert_allclose(R_hat, same)  # NaN and 0 markers give the same problem


def test_factorize_bad_input():
    with pytest.raises(InvalidParameterError, match="factorize: method must be one of"):
        fk.factorize(R3, method="svd")
    with pytest.raises(InvalidParameterError, match="factors=4 is larger than"):
        fk.factorize(R3, factors=4)
    with pytest.raises(DataError, match="R contains NaN but missing=0"):
        fk.factorize(np.where(R3 == 0, np.nan, R3), missing=0)
    with pytest.raises(DataError, match="R must be a 2-D matrix; got 1-D"):
        fk.factorize([1, 2, 3])
    with pytest.raises(DataError, match="no known entry"):
        fk.factorize(np.zeros((2, 2)), factors=1)


def test_low_rank_criteria():
    rng = np.random.default_rng(0)
    s = 0.7 ** np.arange(40)
    U, _ = np.linalg.qr(rng.normal(size=(60, 40)))
    V, _ = np.linalg.qr(rng.normal(size=(50, 40)))
    X = ((U * s) @ V.T).astype(np.float32)
    energy = np.cumsum(s**2) / np.sum(s**2)
    approx = fk.low_rank(X, energy=0.99)
    assert approx.report.rank == int(np.searchsorted(energy, 0.99) + 1)
    assert approx.report.energy >= 0.99
    approx = fk.low_rank(X, max_error=0.05)
    assert approx.report.relative_error <= 0.05
    smaller = fk.low_rank(X, rank=approx.report.rank - 1)
    assert smaller.report.relative_error > 0.05  # the smallest rank that meets it
    left, right, report = fk.low_rank(X, rank=5)
    assert left.shape == (60, 5) and right.shape == (5, 50) and left.dtype == np.float32
    assert report.storage_ratio == pytest.approx(5 * (60 + 50) / (60 * 50))
    want = np.sqrt((s[5:] ** 2).sum() / (s**2).sum())
    assert report.relative_error == pytest.approx(want, rel=1e-3)
    assert "rank 5" in str(report)


def test_low_rank_rgb_image_psnr():
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:64, 0:80]
    base = np.stack([np.sin(xx / 9.0) * np.cos(yy / 7.0), xx / 80.0, yy / 64.0], axis=-1)
    img = np.clip(127 + 100 * base + rng.normal(0, 3, base.shape), 0, 255).astype(np.uint8)
    approx = fk.low_rank(img, rank=8)
    out = approx.reconstruct()
    assert out.shape == img.shape and out.dtype == np.uint8
    mse = np.mean((out.astype(float) - img) ** 2)
    assert approx.report.psnr == pytest.approx(10 * np.log10(255**2 / mse), rel=1e-6)
    assert approx.report.psnr > 30
    assert approx.left.shape == (3, 64, 8)


def test_denoising_recovers_the_truth():
    rng = np.random.default_rng(2)
    truth = rng.normal(size=(200, 4)) @ rng.normal(size=(4, 150))
    noisy = truth + 0.5 * rng.normal(size=truth.shape)
    recovered = fk.low_rank(noisy, rank=4).reconstruct()
    noise_err = np.linalg.norm(noisy - truth) / np.linalg.norm(truth)
    err = np.linalg.norm(recovered - truth) / np.linalg.norm(truth)
    assert err < 0.3 * noise_err


def test_low_rank_bad_input():
    X = np.ones((4, 3))
    with pytest.raises(InvalidParameterError, match="exactly one of rank=, energy= or max_error="):
        fk.low_rank(X, rank=2, energy=0.9)
    with pytest.raises(InvalidParameterError, match=r"exactly one .* got none"):
        fk.low_rank(X)
    with pytest.raises(InvalidParameterError, match="rank=4 is larger than"):
        fk.low_rank(X, rank=4)
    with pytest.raises(
        InvalidParameterError,
        match=r"low_rank: energy must be None or a number in \(0, 1\]; got 1.5",
    ):
        fk.low_rank(X, energy=1.5)
    with pytest.raises(DataError, match=r"non-empty 2-D matrix or a 3-D .* got shape \(3,\)"):
        fk.low_rank(np.ones(3), rank=1)
    with pytest.raises(DataError, match="1 non-finite value"):
        fk.low_rank(np.array([[1.0, np.nan], [1.0, 2.0]]), rank=1)
    with pytest.raises(DataError, match="must hold numbers; got dtype <U1"):
        fk.low_rank(np.array([["a"]]), rank=1)


def test_rank_sweep_matches_low_rank():
    X = np.random.default_rng(3).random((50, 40)).astype(np.float32)
    sweep = fk.decomposition.rank_sweep(X, [12, 3, 7])
    assert [r.rank for r in sweep] == [3, 7, 12]
    for report in sweep:
        single = fk.low_rank(X, rank=report.rank).report
        assert report.relative_error == pytest.approx(single.relative_error, rel=1e-5)
        assert report.storage_ratio == single.storage_ratio
