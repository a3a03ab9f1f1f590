"""The ziggurat normal sampler against scipy's normal distribution."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from factorkit._threads import max_threads, using_threads
from factorkit.kernels.random import (
    _ACCEPT,
    _X,
    random_normal_fill,
    splitmix64_below,
    splitmix64_next,
    splitmix64_unit,
)


def test_tables_are_layers_of_equal_area():
    """Each layer above the base is a rectangle of the same area under the density."""
    f = np.exp(-0.5 * _X * _X)
    area = _X[1:128] * (f[2:129] - f[1:128])
    np.testing.assert_allclose(area, area[0], rtol=1e-8)
    base = _X[1] * f[1] + stats.norm.sf(_X[1]) * np.sqrt(2 * np.pi)  # rectangle + tail
    assert base == pytest.approx(area[0], rel=1e-6)
    assert (_ACCEPT[1:127] > 0.7).all() and _ACCEPT[127] == 0.0


def test_draws_follow_the_normal_distribution():
    x = random_normal_fill(np.empty(1_000_000), seed=5)
    assert stats.kstest(x, "norm").pvalue > 0.01
    assert abs(x.mean()) < 0.005 and abs(x.std() - 1.0) < 0.005
    # the tail beyond the base layer comes from its own method: check its mass and shape
    tail = np.abs(x[np.abs(x) > _X[1]])
    assert len(tail) / len(x) == pytest.approx(2 * stats.norm.sf(_X[1]), rel=0.1)
    conditional = stats.truncnorm(_X[1], np.inf)
    assert stats.kstest(tail, conditional.cdf).pvalue > 0.01


def test_values_depend_on_seed_and_shape_not_threads():
    out = []
    for threads in sorted({1, min(2, max_threads())}):
        with using_threads(threads):
            out.append(random_normal_fill(np.empty((300, 50), np.float32), seed=3, scale=2.0))
    np.testing.assert_array_equal(out[0], out[-1])
    assert out[0].dtype == np.float32 and out[0].std() == pytest.approx(2.0, rel=0.02)
    other = random_normal_fill(np.empty((300, 50), np.float32), seed=4, scale=2.0)
    assert not np.array_equal(out[0], other)


def test_columns_fills_only_the_leading_columns():
    out = np.full((100, 8), 7.0)
    random_normal_fill(out, seed=1, columns=5)
    assert (out[:, 5:] == 7.0).all() and not (out[:, :5] == 7.0).any()
    with pytest.raises(ValueError, match="C-ordered"):
        random_normal_fill(np.empty((10, 4)).T, seed=1)


def _splitmix64_reference(state: int, n: int) -> list[int]:
    """splitmix64 in Python integers (Steele, Lea & Flood 2014)."""
    mask = (1 << 64) - 1
    out = []
    for _ in range(n):
        state = (state + 0x9E3779B97F4A7C15) & mask
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        out.append(z ^ (z >> 31))
    return out


def test_splitmix64_matches_the_reference_generator():
    state = 1234567
    got = []
    for _ in range(5):
        # numba hands a uint64 back as a Python int: state must go in as uint64 again
        state, bits = splitmix64_next(np.uint64(state))
        got.append(int(bits))
    assert got == _splitmix64_reference(1234567, 5)
    # the published first output for seed 0
    assert int(splitmix64_next(np.uint64(0))[1]) == 0xE220A8397B1DCDAF


@pytest.mark.parametrize("n", [1, 3, 1000, 2**32 - 1, 2**32 + 3, 2**40])
def test_splitmix64_below_is_in_range_and_matches_its_definition(n):
    for bits in _splitmix64_reference(n, 50):
        v = splitmix64_below(np.uint64(bits), n)
        expected = ((bits >> 32) * n) >> 32 if n < 2**32 else bits % n
        assert v == expected and 0 <= v < n


def test_splitmix64_unit_is_in_the_unit_interval():
    values = [splitmix64_unit(np.uint64(b)) for b in _splitmix64_reference(7, 200)]
    assert all(0.0 <= v < 1.0 for v in values)
    assert splitmix64_unit(np.uint64(2**64 - 1)) == 1.0 - 2.0**-53
    assert splitmix64_unit(np.uint64(0)) == 0.0
