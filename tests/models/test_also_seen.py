"""exclude_seen means everything the user interacted with, including the interactions
to_implicit left out as feedback (ratings below min_value): API, save/load, CLI."""

from __future__ import annotations

import numpy as np
import pytest

import factorkit as fk
from factorkit.cli import main


@pytest.fixture(scope="module")
def data():
    return fk.datasets.load_movielens_small()


@pytest.fixture(scope="module")
def liked(data):
    return data.to_implicit(min_value=4.0)


@pytest.fixture(scope="module")
def model(liked):
    return fk.ImplicitALS(factors=16, epochs=3, random_state=0).fit(liked)


def _low_rated(data, user):
    frame = data.to_pandas()
    rows = frame[(frame["user"] == user) & (frame["rating"] < 4.0)]
    return set(rows["item"].tolist())


def test_to_implicit_keeps_the_left_out_pairs_and_splits_drop_them(data, liked):
    users, _ = liked.also_seen
    assert len(users) == len(data) - len(liked) == int((data.values < 4.0).sum())
    assert liked.compact().also_seen is not None
    train, test = fk.split.random(liked, test_size=0.2, random_state=0)
    assert train.also_seen is None and test.also_seen is None
    assert data.to_implicit().also_seen is None  # nothing left out


def test_recommend_never_returns_items_the_user_rated_below_the_threshold(data, model):
    for user in (1, 2, 3, 414):
        low = _low_rated(data, user) & set(model.item_map_.ids.tolist())
        assert low, user
        items, _ = model.recommend(user, k=300)
        assert not low & set(items.tolist()), user
        everything, _ = model.recommend(user, k=300, exclude_seen=False)
        assert low & set(everything.tolist()) or len(low) < 3
    total = 0
    for users, items, _ in model.recommend_all(k=20):
        for user, row in zip(users.tolist(), items.tolist(), strict=True):
            total += len(_low_rated(data, user) & set(row))
    assert total == 0


def test_the_structure_survives_save_load_and_partial_fit(model, liked, tmp_path):
    path = tmp_path / "m.fk"
    model.save(path)
    loaded = fk.load(path)
    for user in (1, 7):
        assert np.array_equal(loaded.recommend(user, k=50)[0], model.recommend(user, k=50)[0])
    new = fk.Interactions.from_arrays([999_999, 999_999], [1, 50], [1.0, 1.0], implicit=True)
    loaded.partial_fit(new)
    loaded.save(path)
    again = fk.load(path)
    assert len(again.recommend(999_999, k=5)[0]) == 5
    assert not _low_rated_set(liked, 1) & set(again.recommend(1, k=300)[0].tolist())


def _low_rated_set(liked, user):
    users, items = liked.also_seen
    pos = liked.user_map.to_index([user])[0]
    return set(liked.item_map.ids[items[users == pos]].tolist())


def test_cli_recommend_leaves_out_what_the_user_rated_low(data, tmp_path, capsys):
    out = tmp_path / "clicks.fk"
    fit = ["fit", "movielens-small", "--model", "implicit-als", "--min-rating", "4"]
    assert main([*fit, "--factors", "16", "--epochs", "3", "--out", str(out), "-q"]) == 0
    capsys.readouterr()
    assert main(["recommend", str(out), "--user", "1", "-k", "50"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()[1:]
    recommended = {int(line.split()[1]) for line in lines}
    assert len(recommended) == 50
    assert not recommended & _low_rated(data, 1)
