"""HybridMF on ratings (``loss="squared"``) on MovieLens small (docs/cold-start.md,
"Ratings: loss='squared'").

Two protocols per seed, RMSE of the test ratings, one thread (so every figure repeats):

- ``warm``: an 80/20 ``fk.split.random`` split; HybridMF with the shipped item features
  (genres, tags, year), without them, and BiasedMF at the same width and epochs and at
  its defaults. Test items missing from the training ratings are in HybridMF's
  vocabulary (they have features) but get BiasedMF's fallback (mu + b_u);
- ``cold``: every rating of a random 20% of the items held out; the held-out items are
  rated from their features alone (all of them, or the genres only), against the global
  mean and BaselineOnly (mu + b_u, the best a model without item features can do for
  them).

Run: ``python docs/examples/hybrid_ratings.py`` (3 seeds, about half a minute on one
core); ``--quick`` runs one seed without BiasedMF's defaults, for the test suite.
"""

from __future__ import annotations

import sys
import time
import warnings

import numpy as np

import factorkit as fk

quick = "--quick" in sys.argv[1:]
SEEDS = 1 if quick else 3
PARAMS = dict(loss="squared", factors=32, epochs=20, learning_rate=0.01, regularization=0.02)


def rmse(model, test) -> float:
    users = test.user_map.ids[test.user_index]
    items = test.item_map.ids[test.item_index]
    with warnings.catch_warnings():  # fallback predictions for unknown ids are counted in
        warnings.simplefilter("ignore", fk.exceptions.DataWarning)
        pred = model.predict(users, items)
    return float(np.sqrt(np.mean((pred - test.values) ** 2)))


def warm(seed: int, ratings, features) -> dict[str, float]:
    train, test = fk.split.random(ratings, test_size=0.2, random_state=seed)
    out = {}
    start = time.perf_counter()
    model = fk.HybridMF(**PARAMS, random_state=seed, n_threads=1)
    out["HybridMF squared, item features"] = rmse(model.fit(train, item_features=features), test)
    out["(fit seconds)"] = time.perf_counter() - start
    out["HybridMF squared, no features"] = rmse(
        fk.HybridMF(**PARAMS, random_state=seed, n_threads=1).fit(train), test
    )
    out["BiasedMF(factors=32, epochs=20)"] = rmse(
        fk.BiasedMF(factors=32, epochs=20, random_state=seed).fit(train), test
    )
    if not quick:
        out["BiasedMF() defaults"] = rmse(fk.BiasedMF(random_state=seed).fit(train), test)
    return out


def cold(seed: int, ratings, features) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    held = np.zeros(ratings.n_items, dtype=bool)
    held[rng.choice(ratings.n_items, round(0.2 * ratings.n_items), replace=False)] = True
    in_test = held[ratings.item_index]
    train, test = ratings.take(~in_test), ratings.take(in_test)
    model = fk.HybridMF(**PARAMS, random_state=seed, n_threads=1)
    model.fit(train, item_features=features)
    by_genre = fk.HybridMF(**PARAMS, random_state=seed, n_threads=1)
    by_genre.fit(train, item_features=genres(ratings))
    return {
        "HybridMF squared, from item features": rmse(model, test),
        "HybridMF squared, from genres only": rmse(by_genre, test),
        "global mean": float(np.sqrt(np.mean((model.global_mean_ - test.values) ** 2))),
        "BaselineOnly (mu + b_u)": rmse(fk.BaselineOnly().fit(train), test),
    }


def genres(ratings) -> fk.Features:
    """The 20 genres alone (no tags, no year): features no user's activity shaped."""
    meta = ratings.item_metadata.reset_index()
    return fk.Features.from_pandas(meta[["movieId", "genres"]], id="movieId", sep="|")


def table(title: str, runs: list[dict[str, float]]) -> None:
    print(f"\n{title}, mean +- std over {len(runs)} seed(s)")
    print("| model | test RMSE |\n|---|---|")
    for name in runs[0]:
        v = np.array([r[name] for r in runs])
        print(f"| {name} | {v.mean():.3f} +- {v.std():.3f} |")


def main() -> None:
    ratings = fk.datasets.load_movielens_small()
    features = fk.datasets.load_movielens_small_item_features()
    print(f"HybridMF({', '.join(f'{k}={v!r}' for k, v in PARAMS.items())}), n_threads=1")
    table("Warm: 80/20 random split", [warm(s, ratings, features) for s in range(SEEDS)])
    table(
        "Cold items: 20% of the items held out entirely",
        [cold(s, ratings, features) for s in range(SEEDS)],
    )


if __name__ == "__main__":
    main()
