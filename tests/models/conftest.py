"""Fixtures shared by the model tests (a test module's own fixture of the same name wins)."""

import pytest

import factorkit as fk


@pytest.fixture(scope="session")
def liked():
    """The shipped MovieLens small as implicit feedback: ratings >= 4 are positives."""
    return fk.datasets.load_movielens_small().to_implicit(min_value=4.0)


@pytest.fixture(scope="session")
def features():
    """The shipped item features: genres, tags and release year."""
    return fk.datasets.load_movielens_small_item_features()
