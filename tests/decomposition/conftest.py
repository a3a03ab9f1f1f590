import numpy as np
import pytest


@pytest.fixture(scope="session")
def lowrank_noisy():
    """A 120x80 matrix: rank 6 with decaying singular values, plus small noise."""
    rng = np.random.default_rng(0)
    U, _ = np.linalg.qr(rng.normal(size=(120, 6)))
    V, _ = np.linalg.qr(rng.normal(size=(80, 6)))
    s = np.array([50.0, 30.0, 20.0, 10.0, 5.0, 2.0])
    return (U * s) @ V.T + 0.01 * rng.normal(size=(120, 80))


@pytest.fixture(scope="session")
def nonneg_lowrank():
    """A 500x400 non-negative matrix of rank 5."""
    rng = np.random.default_rng(1)
    return rng.random((500, 5)) @ rng.random((5, 400))
