"""HybridMF with the implicit-ALS loss (``loss="ials"``) on MovieLens small
(docs/cold-start.md, "Implicit feedback: loss='ials'").

Ratings >= 4 are the positives; the shipped item features (genres, tags, year). Two
protocols per seed, two threads:

- ``warm``: a per-user 80/20 split, recall@20 and ndcg@20 from ``fk.evaluate``:
  HybridMF ``loss="ials"`` with the item features (its defaults, and with
  ``feature_regularization=20``), without features (then it is ImplicitALS's
  objective), and ImplicitALS at its defaults;
- ``cold``: every interaction of a random 20% of the items held out; each training user
  ranks the held-out items only, which the models know by their features alone
  (HybridMF's ``score_new_items``; ImplicitALS + ``content_regression``).

Run: ``python docs/examples/hybrid_ials.py`` (seeds 0-4, about a minute);
``--quick`` runs seed 0 only, for the test suite.
"""

from __future__ import annotations

import sys
import time

import numpy as np

import factorkit as fk

quick = "--quick" in sys.argv[1:]
SEEDS = 1 if quick else 5
K = 20


def warm(seed: int, liked, features) -> dict[str, tuple[float, ...]]:
    train, test = fk.split.per_user(liked, test_size=0.2, random_state=seed)
    models = {
        "HybridMF ials, item features": (fk.HybridMF(loss="ials"), True),
        "HybridMF ials, feature_regularization=20": (
            fk.HybridMF(loss="ials", feature_regularization=20.0),
            True,
        ),
        "HybridMF ials, no features": (fk.HybridMF(loss="ials"), False),
        "ImplicitALS() defaults": (fk.ImplicitALS(), False),
    }
    out = {}
    for name, (model, with_features) in models.items():
        model.set_params(random_state=seed, n_threads=2)
        start = time.perf_counter()
        model.fit(train, **({"item_features": features} if with_features else {}))
        seconds = time.perf_counter() - start
        res = fk.evaluate(model, test, metrics=[f"recall@{K}", f"ndcg@{K}"], train=train)
        out[name] = (res[f"recall@{K}"], res[f"ndcg@{K}"], seconds)
    return out


def cold(seed: int, liked, features) -> dict[str, tuple[float, ...]]:
    rng = np.random.default_rng(seed)
    held = np.zeros(liked.n_items, dtype=bool)
    held[rng.choice(liked.n_items, round(0.2 * liked.n_items), replace=False)] = True
    in_test = held[liked.item_index]
    train, test = liked.take(~in_test), liked.take(in_test)
    cold_ids = liked.item_map.ids[held]
    # the held-out items' feature rows, as new items arriving with their features
    rows = fk.Features.from_scipy(features.rows_for(cold_ids), cold_ids, names=features.names)
    users = train.compact().user_map.ids
    out = {}
    for name, reg in (
        ("HybridMF ials, from features", None),
        ("HybridMF ials, feature_regularization=20, from features", 20.0),
    ):
        model = fk.HybridMF(loss="ials", feature_regularization=reg, random_state=seed)
        model.set_params(n_threads=2).fit(train, item_features=features)
        out[name] = ranking(model.score_new_items(rows, users=users), users, cold_ids, test)
    als = fk.ImplicitALS(random_state=seed, n_threads=2).fit(train)
    scores = fk.content_regression(als, features).score_new_items(rows, users=users)
    out["ImplicitALS + content_regression"] = ranking(scores, users, cold_ids, test)
    return out


def ranking(scores, users, cold_ids, test) -> tuple[float, float]:
    """Mean recall@K and ndcg@K of ``scores`` (users x held-out items) against ``test``."""
    column = {item: j for j, item in enumerate(cold_ids.tolist())}
    truth: dict = {}
    users_, items_ = test.user_map.ids[test.user_index], test.item_map.ids[test.item_index]
    for u, i in zip(users_, items_, strict=True):
        truth.setdefault(u, set()).add(column[i])
    discounts = 1.0 / np.log2(np.arange(2, K + 2))
    recalls, ndcgs = [], []
    for row, user in enumerate(users.tolist()):
        relevant = truth.get(user)
        if not relevant:
            continue
        top = np.argsort(-scores[row], kind="stable")[:K]
        hits = np.array([t in relevant for t in top.tolist()], dtype=float)
        n = min(len(relevant), K)
        recalls.append(hits.sum() / n)
        ndcgs.append((hits * discounts).sum() / discounts[:n].sum())
    return float(np.mean(recalls)), float(np.mean(ndcgs))


def table(title: str, per_seed: list[dict], seconds: bool) -> None:
    print(f"\n{title}, mean +- std over {len(per_seed)} seed(s)")
    print("| model | recall@20 | ndcg@20 |" + (" fit s (median) |" if seconds else ""))
    for name in per_seed[0]:
        v = np.array([row[name] for row in per_seed])
        line = f"| {name} | {v[:, 0].mean():.3f} +- {v[:, 0].std():.3f} | "
        line += f"{v[:, 1].mean():.3f} +- {v[:, 1].std():.3f} |"
        print(line + (f" {np.median(v[:, 2]):.2f} |" if seconds else ""))


def main() -> None:
    liked = fk.datasets.load_movielens_small().to_implicit(min_value=4.0)
    features = fk.datasets.load_movielens_small_item_features()
    warm_rows = [warm(seed, liked, features) for seed in range(SEEDS)]
    cold_rows = [cold(seed, liked, features) for seed in range(SEEDS)]
    table("warm: per-user 80/20 split", warm_rows, seconds=True)
    table("cold: 20% of the items held out, ranked among themselves", cold_rows, seconds=False)


if __name__ == "__main__":
    main()
