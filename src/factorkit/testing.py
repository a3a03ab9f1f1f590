"""The shared estimator check suite: every factorkit model runs these.

Use from pytest::

    import pytest, factorkit as fk
    from factorkit.testing import estimator_checks

    @pytest.mark.parametrize("check", estimator_checks(fk.BiasedMF(epochs=5)), ids=lambda c: c.name)
    def test_biased_mf(check):
        check()

or call :func:`check_estimator` to run them all at once.
"""

from __future__ import annotations

import functools
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from factorkit.base import Estimator, clone, get_tags
from factorkit.data.interactions import Interactions
from factorkit.exceptions import (
    DataWarning,
    InvalidParameterError,
    NotFittedError,
    UnknownIdError,
)

__all__ = [
    "Check",
    "check_capabilities",
    "check_checkerboard",
    "check_checkerboard_ranking",
    "check_estimator",
    "check_state_round_trip",
    "checkerboard",
    "checkerboard_implicit",
    "estimator_checks",
]


class Check:
    """A named, zero-argument check."""

    def __init__(self, name: str, fn: Callable[[], None]) -> None:
        self.name = name
        self._fn = fn

    def __call__(self) -> None:
        self._fn()

    def __repr__(self) -> str:
        return f"Check({self.name})"


def checkerboard(
    n_users: int = 60, n_items: int = 40, holdout: float = 0.1, random_state: int = 0
) -> tuple[Interactions, Interactions, np.ndarray]:
    """A rank-2 "checkerboard" rating matrix split into train and held-out cells.

    Users in the first half rate items of the first half 5 and the rest 1; users in the
    second half the other way round. Returns ``(train, test, full_matrix)``; ids are
    ``"u<n>"`` and ``"i<n>"`` strings so raw ids never coincide with positions; the
    interactions carry timestamps spread over 100 days (for time-aware models).
    """
    rng = np.random.default_rng(random_state)
    ug = (np.arange(n_users) >= n_users // 2).astype(int)
    ig = (np.arange(n_items) >= n_items // 2).astype(int)
    full = np.where(ug[:, None] == ig[None, :], 5.0, 1.0)
    uu, ii = np.meshgrid(np.arange(n_users), np.arange(n_items), indexing="ij")
    uu, ii = uu.ravel(), ii.ravel()
    test_mask = rng.random(len(uu)) < holdout
    users = np.array([f"u{u}" for u in uu], dtype=object)
    items = np.array([f"i{i}" for i in ii], dtype=object)
    vals = full[uu, ii]
    # timestamps over 100 days (for models that need them; others ignore them)
    ts = 1_600_000_000 + ((uu * 7 + ii * 13) % 100) * 86400
    train = Interactions.from_arrays(
        users[~test_mask], items[~test_mask], vals[~test_mask], timestamps=ts[~test_mask]
    )
    test = Interactions.from_arrays(
        users[test_mask], items[test_mask], vals[test_mask], timestamps=ts[test_mask]
    )
    return train, test, full


def checkerboard_implicit(
    n_users: int = 60, n_items: int = 40, random_state: int = 0
) -> tuple[Interactions, Interactions, np.ndarray]:
    """A rank-2 "checkerboard" of implicit feedback with one held-out item per user.

    Users in the first half interact with every item of the first half, users in the
    second half with every item of the second half; for each user one of those items
    is held out. Returns ``(train, test, full)`` (``full`` is the 0/1 matrix); ids are
    ``"u<n>"`` and ``"i<n>"`` strings, values are absent (implicit 1.0).
    """
    rng = np.random.default_rng(random_state)
    ug = (np.arange(n_users) >= n_users // 2).astype(int)
    ig = (np.arange(n_items) >= n_items // 2).astype(int)
    full = (ug[:, None] == ig[None, :]).astype(float)
    uu, ii = np.nonzero(full)
    # one held-out cell per user, drawn uniformly from the user's row
    held = np.zeros(len(uu), dtype=bool)
    starts = np.searchsorted(uu, np.arange(n_users))
    counts = np.bincount(uu, minlength=n_users)
    held[starts + rng.integers(0, counts)] = True
    users = np.array([f"u{u}" for u in uu], dtype=object)
    items = np.array([f"i{i}" for i in ii], dtype=object)
    train = Interactions.from_arrays(users[~held], items[~held])
    test = Interactions.from_arrays(users[held], items[held])
    return train, test, full


def _small_data() -> tuple[Interactions, Interactions]:
    train, test, _ = checkerboard(40, 30, holdout=0.2, random_state=1)
    return train, test


def _raw(data: Interactions) -> tuple[np.ndarray, np.ndarray]:
    return data.user_map.ids[data.user_index], data.item_map.ids[data.item_index]


def check_fit_returns_self(est: Estimator) -> None:
    train, _ = _small_data()
    model = clone(est)
    assert model.fit(train) is model, "fit must return self"


def check_params_and_clone(est: Estimator) -> None:
    params = est.get_params()
    twin = clone(est)
    assert twin is not est and twin.get_params().keys() == params.keys()
    for k, v in params.items():
        if not callable(v):
            assert twin.get_params()[k] == v or (v != v), f"clone changed {k}"
    name = next(iter(params))
    twin.set_params(**{name: params[name]})
    try:
        twin.set_params(not_a_parameter=1)
    except InvalidParameterError as exc:
        assert "not_a_parameter" in str(exc)
    else:
        raise AssertionError("set_params accepted an unknown parameter")
    train, _ = _small_data()
    fitted = clone(est).fit(train)
    again = clone(fitted)
    try:
        again.get_state()
    except NotFittedError:
        pass
    else:
        raise AssertionError("clone of a fitted model must be unfitted")


def check_not_fitted(est: Estimator) -> None:
    model = clone(est)
    calls = [lambda: model.predict(["u0"], ["i0"])]
    if get_tags(est).can_recommend:
        calls.append(lambda: model.recommend("u0"))
    for call in calls:
        try:
            call()
        except NotFittedError as exc:
            assert "fit" in str(exc)
        else:
            raise AssertionError("an unfitted model must raise NotFittedError")


def check_invalid_params(est: Estimator) -> None:
    train, _ = _small_data()
    bad_values = {int: [0, -1, 1.5, "3"], float: [-1.0, float("nan"), "x"]}
    for name, constraint in est._parameter_constraints.items():
        kind = getattr(constraint, "kind", None) or getattr(
            getattr(constraint, "inner", None), "kind", None
        )
        for bad in bad_values.get(kind, []):
            if constraint.accepts(bad):
                continue
            model = clone(est).set_params(**{name: bad})
            try:
                model.fit(train)
            except InvalidParameterError as exc:
                msg = str(exc)
                assert f"'{name}'" in msg and type(est).__name__ in msg and "must be" in msg, msg
            else:
                raise AssertionError(f"{name}={bad!r} was accepted")


def check_save_load(est: Estimator) -> None:
    from factorkit.persistence import load

    train, test = _small_data()
    model = clone(est).fit(train)
    users, items = _raw(test)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.fk"
        model.save(path)
        loaded = load(path)
    assert type(loaded) is type(model)
    np.testing.assert_array_equal(loaded.predict(users, items), model.predict(users, items))
    if get_tags(est).can_recommend:
        a = model.recommend(users[:5], k=5)
        b = loaded.recommend(users[:5], k=5)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])


#: capability tag -> the methods a class with that tag has (and one without it lacks)
CAPABILITY_METHODS = {
    "can_recommend": ("recommend", "recommend_all"),
    "can_find_similar": ("similar_items", "similar_users"),
    "can_fold_in": ("fold_in", "recommend_new_user"),
    "can_partial_fit": ("partial_fit",),
}


def check_capabilities(est: Estimator) -> None:
    """Each capability tag is true exactly when the class has the tag's methods."""
    tags = get_tags(est)
    for tag, methods in CAPABILITY_METHODS.items():
        for method in methods:
            has = callable(getattr(type(est), method, None))
            assert has == getattr(tags, tag), (
                f"{type(est).__name__}: tag {tag}={getattr(tags, tag)} but "
                f"{'has' if has else 'lacks'} {method}()"
            )


def check_state_round_trip(est: Estimator) -> None:
    """``set_state(get_state())`` on a fresh instance predicts exactly as the original."""
    train, test = _small_data()
    model = clone(est).fit(train)
    twin = clone(est).set_state(model.get_state())
    users, items = _raw(test)
    np.testing.assert_array_equal(twin.predict(users, items), model.predict(users, items))


def check_deterministic(est: Estimator) -> None:
    train, test = _small_data()
    params = est.get_params()
    overrides = {}
    if "n_threads" in params:
        overrides["n_threads"] = 1
    if "random_state" in params:
        overrides["random_state"] = 42
    users, items = _raw(test)
    a = clone(est).set_params(**overrides).fit(train).predict(users, items)
    b = clone(est).set_params(**overrides).fit(train).predict(users, items)
    np.testing.assert_array_equal(a, b)


def check_unknown_ids(est: Estimator) -> None:
    train, _ = _small_data()
    model = clone(est).fit(train)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        p = model.predict(["nobody", "u0"], ["i0", "nothing"])
    assert np.isfinite(p).all(), "fallback predictions must be finite"
    assert any(
        issubclass(w.category, DataWarning) and "2 of 2" in str(w.message) for w in caught
    ), "predict must warn (DataWarning, with the count) when it falls back for unknown ids"
    p_nan = model.predict(["nobody", "u0"], ["i0", "i1"], unknown="nan")
    assert np.isnan(p_nan[0]) and np.isfinite(p_nan[1])
    try:
        model.predict(["nobody"], ["i0"], unknown="error")
    except UnknownIdError as exc:
        assert "nobody" in str(exc)
    else:
        raise AssertionError("unknown='error' must raise UnknownIdError")


def check_checkerboard(est: Estimator, tolerance: float = 0.5) -> None:
    train, test, _ = checkerboard()
    model = clone(est).fit(train)
    users, items = _raw(test)
    err = np.sqrt(np.mean((model.predict(users, items) - test.values) ** 2))
    assert err < tolerance, f"checkerboard held-out RMSE {err:.3f} >= {tolerance}"


def check_checkerboard_ranking(est: Estimator) -> None:
    """Implicit-feedback models: on the implicit checkerboard, every user's held-out item
    comes back at rank 1 of ``recommend`` (training items excluded)."""
    train, test, _ = checkerboard_implicit()
    model = clone(est).fit(train)
    users, items = _raw(test)
    top, _ = model.recommend(users, k=1)
    hits = top[:, 0] == items
    assert hits.all(), (
        f"checkerboard: the held-out item is at rank 1 for {hits.mean():.0%} of users; expected all"
    )


_CHECKS = (
    check_fit_returns_self,
    check_params_and_clone,
    check_not_fitted,
    check_invalid_params,
    check_save_load,
    check_capabilities,
    check_state_round_trip,
    check_deterministic,
    check_unknown_ids,
    check_checkerboard,
)


def estimator_checks(est: Estimator, skip: tuple[str, ...] = ()) -> list[Check]:
    """The checks for ``est`` as named callables (for ``pytest.mark.parametrize``).

    The checkerboard check follows the model's kind: explicit-rating models
    (``get_tags(est).explicit``) must recover held-out ratings (:func:`check_checkerboard`),
    implicit-feedback models must rank each held-out item first
    (:func:`check_checkerboard_ranking`).
    """
    explicit = get_tags(est).explicit
    checks = [
        check_checkerboard_ranking if fn is check_checkerboard and not explicit else fn
        for fn in _CHECKS
    ]
    return [
        Check(fn.__name__, functools.partial(fn, est)) for fn in checks if fn.__name__ not in skip
    ]


def check_estimator(est: Estimator, skip: tuple[str, ...] = ()) -> None:
    """Run every check on ``est``; raises AssertionError on the first failure."""
    for check in estimator_checks(est, skip):
        check()
