"""HybridMF: cold-start and warm accuracy on MovieLens latest-small, and speed.

Cold start: 20% of the items (of ratings >= 4) are held out entirely; models are fitted
on the rest with the shipped item features (genres, tags, year) and rank, for every
training user, the held-out items only; recall@20 and ndcg@20 against each user's
held-out positives. Warm: a per-user 80/20 split with ``fk.evaluate``.

    PYTHONPATH=src python bench/bench_hybrid.py [--seeds 5] [--warm] [--speed] [--lightfm]

``--lightfm`` runs the same splits through LightFM from bench/.peers when it is
installed there (see bench/setup_peers.sh).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import factorkit as fk


def cold_split(data, fraction: float, seed: int):
    """(train, test, cold item ids): every interaction of a random ``fraction`` of the
    items goes to test."""
    rng = np.random.default_rng(seed)
    n = data.n_items
    cold = np.zeros(n, dtype=bool)
    cold[rng.choice(n, round(fraction * n), replace=False)] = True
    in_test = cold[data.item_index]
    return data.take(~in_test), data.take(in_test), data.item_map.ids[cold]


def cold_metrics(scores: np.ndarray, users, cold_ids, test, k: int = 20):
    """Mean recall@k and ndcg@k of ``scores`` (users x cold items) against ``test``."""
    col = {v: j for j, v in enumerate(np.asarray(cold_ids).tolist())}
    truth: dict = {}
    for u, i in zip(
        test.user_map.ids[test.user_index].tolist(),
        test.item_map.ids[test.item_index].tolist(),
        strict=True,
    ):
        truth.setdefault(u, set()).add(col[i])
    recalls, ndcgs = [], []
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    for row, u in enumerate(np.asarray(users).tolist()):
        rel = truth.get(u)
        if not rel:
            continue
        top = np.argpartition(-scores[row], k)[:k]
        top = top[np.argsort(-scores[row][top], kind="stable")]
        hits = np.array([t in rel for t in top.tolist()], dtype=float)
        recalls.append(hits.sum() / min(len(rel), k))
        ndcgs.append((hits * discounts).sum() / discounts[: min(len(rel), k)].sum())
    return float(np.mean(recalls)), float(np.mean(ndcgs))


def feature_knn_scores(features, train, users, cold_ids):
    """Features-only baseline: cosine of each cold item's features with the mean of the
    user's training items' (row-normalised) features."""
    import scipy.sparse as sp

    x = features.matrix.tocsr()
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1))).ravel()
    x = sp.diags(1.0 / np.where(norms > 0, norms, 1.0)) @ x
    item_rows = features.ids.lookup(train.item_map.ids)
    r = train.to_csr()
    r = r[:, item_rows >= 0]
    xi = x[item_rows[item_rows >= 0]]
    upos = train.user_map.lookup(users)
    profiles = r[upos] @ xi
    cold = x[features.ids.lookup(cold_ids)]
    return np.asarray((profiles @ cold.T).todense())


def popular_scores(train, users, cold_ids):
    """MostPopular: a held-out item has no training interaction, so every cold item
    scores 0; ties are broken by id order, the fallback a popularity model has."""
    model = fk.MostPopular().fit(train)
    pos = model.item_map_.lookup(cold_ids)
    base = np.where(pos >= 0, 0.0, 0.0) - np.arange(len(cold_ids)) * 1e-9
    return np.tile(base, (len(users), 1))


def run_cold(seed: int, features, liked, factors=64, epochs=100, n_threads=2):
    train, test, cold_ids = cold_split(liked, 0.2, seed)
    users = train.compact().user_map.ids  # users with training interactions
    rows = {}
    t = time.perf_counter()
    model = fk.HybridMF(factors=factors, epochs=epochs, random_state=seed, n_threads=n_threads).fit(
        train, item_features=features
    )
    fit_s = time.perf_counter() - t
    cold_features = features.transform(features_frame(features, cold_ids))
    rows["HybridMF (bpr)"] = cold_metrics(
        model.score_new_items(cold_features, users=users), users, cold_ids, test
    )
    model_nid = fk.HybridMF(
        factors=factors, epochs=epochs, item_identity=False, random_state=seed,
        n_threads=n_threads,
    ).fit(train, item_features=features)  # fmt: skip
    rows["HybridMF (bpr, no item ids)"] = cold_metrics(
        model_nid.score_new_items(cold_features, users=users), users, cold_ids, test
    )
    warp = fk.HybridMF(
        factors=factors, epochs=50, loss="warp", learning_rate=0.01, random_state=seed,
        n_threads=n_threads,
    ).fit(train, item_features=features)  # fmt: skip
    rows["HybridMF (warp, lr 0.01, 50 epochs)"] = cold_metrics(
        warp.score_new_items(cold_features, users=users), users, cold_ids, test
    )
    ials = fk.ImplicitALS(factors=factors, random_state=seed, n_threads=n_threads).fit(train)
    reg = fk.content_regression(ials, features, regularization=1.0)
    rows["ImplicitALS + content_regression"] = cold_metrics(
        reg.score_new_items(cold_features, users=users), users, cold_ids, test
    )
    rows["features kNN"] = cold_metrics(
        feature_knn_scores(features, train, users, cold_ids), users, cold_ids, test
    )
    rows["MostPopular"] = cold_metrics(
        popular_scores(train, users, cold_ids), users, cold_ids, test
    )
    return rows, fit_s


_FRAME_CACHE: dict = {}


def features_frame(features, ids):
    """Features rows of ``ids`` rebuilt as the source DataFrame of the shipped loader
    (so ``transform`` is exercised as a user would)."""
    import pandas as pd

    key = id(features)
    if key not in _FRAME_CACHE:
        from factorkit.data.features import _movielens_small_frame

        _FRAME_CACHE[key] = _movielens_small_frame().set_index("movieId")
    frame = _FRAME_CACHE[key]
    return pd.DataFrame(frame.loc[np.asarray(ids)]).reset_index()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--warm", action="store_true")
    parser.add_argument("--speed", action="store_true")
    parser.add_argument("--lightfm", action="store_true")
    args = parser.parse_args()
    liked = fk.datasets.load_movielens_small().to_implicit(min_value=4.0)
    features = fk.datasets.load_movielens_small_item_features()
    results: dict = {}
    for seed in range(args.seeds):
        rows, fit_s = run_cold(seed, features, liked, epochs=args.epochs)
        for name, value in rows.items():
            results.setdefault(name, []).append(value)
        print(f"seed {seed}: HybridMF fit {fit_s:.2f} s", flush=True)
    print("\nCold-start items (20% of items held out; ranking among them), mean +- std over "
          f"{args.seeds} seeds")  # fmt: skip
    print("| model | recall@20 | ndcg@20 |\n|---|---|---|")
    for name, values in results.items():
        v = np.asarray(values)
        print(
            f"| {name} | {v[:, 0].mean():.3f} +- {v[:, 0].std():.3f} | "
            f"{v[:, 1].mean():.3f} +- {v[:, 1].std():.3f} |"
        )
    if args.warm:
        run_warm(liked, features, args.epochs)
    if args.speed:
        run_speed(liked, features)
    if args.lightfm:
        run_lightfm(liked, features, args.seeds, args.epochs)


def run_warm(liked, features, epochs):
    train, test = fk.split.per_user(liked, test_size=0.2, random_state=0)
    metrics = ["recall@20", "ndcg@20"]
    print("\nWarm users and items (per-user 80/20 split, seed 0)")
    print("| model | recall@20 | ndcg@20 | fit s |\n|---|---|---|---|")
    models = {
        "HybridMF (bpr, genres+tags+year)": (
            fk.HybridMF(epochs=epochs, random_state=0, n_threads=2),
            {"item_features": features},
        ),
        "HybridMF (warp, lr 0.01, 50 epochs)": (
            fk.HybridMF(epochs=50, loss="warp", learning_rate=0.01, random_state=0, n_threads=2),
            {"item_features": features},
        ),
        "BPR (defaults)": (fk.BPR(random_state=0, n_threads=2), {}),
        "ImplicitALS (defaults)": (fk.ImplicitALS(random_state=0, n_threads=2), {}),
    }
    for name, (model, kw) in models.items():
        t = time.perf_counter()
        model.fit(train, **kw)
        fit_s = time.perf_counter() - t
        res = fk.evaluate(model, test, metrics=metrics, train=train)
        print(f"| {name} | {res['recall@20']:.3f} | {res['ndcg@20']:.3f} | {fit_s:.2f} |")


def run_speed(liked, features):
    """Seconds per epoch (median of 5 one-epoch fits after a warm-up) and fold-in time."""
    print("\nSpeed (MovieLens small, ratings >= 4, genres+tags+year, factors=64)")
    for threads in (1, 2):
        times = []
        for rep in range(6):
            model = fk.HybridMF(epochs=5, random_state=rep, n_threads=threads)
            model.fit(liked, item_features=features)
            if rep:
                times.append(float(np.diff(np.r_[0.0, model.history_["elapsed"]]).mean()))
        print(f"n_threads={threads}: {np.median(times):.4f} s / epoch")
    items = liked.item_map.ids[:10]
    model.fold_in(items)
    t = time.perf_counter()
    for _ in range(200):
        model.fold_in(items)
    print(f"fold_in (10 items): {(time.perf_counter() - t) / 200 * 1e3:.3f} ms")
    # a user feature for the features-only path: the user's activity decile
    import pandas as pd

    counts = liked.user_counts
    frame = pd.DataFrame(
        {"user": liked.user_map.ids, "activity": pd.qcut(counts, 10, labels=False).astype(str)}
    )
    user_features = fk.Features.from_pandas(frame, id="user", kind="user")
    model = fk.HybridMF(epochs=5, random_state=0, n_threads=2)
    model.fit(liked, user_features=user_features, item_features=features)
    row = user_features.transform(pd.DataFrame({"user": [-1], "activity": ["3"]}))
    model.fold_in(features=row)
    t = time.perf_counter()
    for _ in range(2000):
        model.fold_in(features=row)
    print(f"fold_in (features only): {(time.perf_counter() - t) / 2000 * 1e3:.4f} ms")
    t = time.perf_counter()
    for _ in range(200):
        model.recommend_new_user(features=row, k=10)
    print(
        f"recommend_new_user (features only, k=10): {(time.perf_counter() - t) / 200 * 1e3:.3f} ms"
    )


_LIGHTFM_WORKER = r"""
import json, sys, time
import numpy as np, scipy.sparse as sp
from lightfm import LightFM
d = np.load(sys.argv[1], allow_pickle=False)
n_users, n_items = int(d["n_users"]), int(d["n_items"])
r = sp.coo_matrix((np.ones(len(d["u"]), np.float32), (d["u"], d["i"])), shape=(n_users, n_items))
x = sp.csr_matrix((d["x_data"], d["x_indices"], d["x_indptr"]), shape=tuple(d["x_shape"]))
out = {}
for loss in ("bpr", "warp"):
    feats = sp.hstack([sp.identity(n_items, format="csr", dtype=np.float32), x], format="csr")
    m = LightFM(
        no_components=int(d["k"]), loss=loss, learning_rate=0.05, random_state=int(d["seed"])
    )
    times = []
    for _ in range(int(d["epochs"])):
        t = time.perf_counter()
        m.fit_partial(r, item_features=feats, epochs=1, num_threads=int(d["threads"]))
        times.append(time.perf_counter() - t)
    cold = d["cold"]
    b, v = m.get_item_representations(feats[cold])
    ub, uv = m.get_user_representations()
    scores = uv[d["users"]] @ v.T + b
    np.save(sys.argv[2] + f"_{loss}.npy", scores.astype(np.float32))
    out[loss] = {"epoch_s": float(np.median(times)), "fit_s": float(np.sum(times))}
print(json.dumps(out))
"""


def run_lightfm(liked, features, seeds, epochs, threads=2):
    """LightFM (bench/.peers) on the same cold splits and features: accuracy and time."""
    import json
    import subprocess
    import tempfile
    from pathlib import Path

    from peers import PEER_PYTHON

    print(f"\nLightFM on the same cold splits (factors=64, {epochs} epochs, {threads} threads)")
    print("| model | recall@20 | ndcg@20 | s / epoch |\n|---|---|---|---|")
    rows: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(seeds):
            train, test, cold_ids = cold_split(liked, 0.2, seed)
            compact = train.compact()
            users = compact.user_map.ids
            # LightFM's item index: every item with features (warm and cold alike)
            item_ids = features.ids.ids
            u = compact.user_index
            i = features.ids.lookup(compact.item_map.ids)[compact.item_index]
            x = features.matrix
            path = Path(tmp) / f"split{seed}.npz"
            np.savez(
                path, n_users=compact.n_users, n_items=len(item_ids), u=u, i=i,
                x_data=x.data, x_indices=x.indices, x_indptr=x.indptr,
                x_shape=np.array(x.shape), k=64, seed=seed, epochs=epochs, threads=threads,
                cold=features.ids.lookup(cold_ids), users=np.arange(len(users)),
            )  # fmt: skip
            proc = subprocess.run(
                [PEER_PYTHON, "-c", _LIGHTFM_WORKER, str(path), str(Path(tmp) / f"s{seed}")],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            info = json.loads(proc.stdout.strip().splitlines()[-1])
            for loss in ("bpr", "warp"):
                scores = np.load(Path(tmp) / f"s{seed}_{loss}.npy")
                rec, ndcg = cold_metrics(scores, users, cold_ids, test)
                rows.setdefault(loss, []).append((rec, ndcg, info[loss]["epoch_s"]))
    for loss, values in rows.items():
        v = np.asarray(values)
        print(
            f"| LightFM ({loss}) | {v[:, 0].mean():.3f} +- {v[:, 0].std():.3f} | "
            f"{v[:, 1].mean():.3f} +- {v[:, 1].std():.3f} | {np.median(v[:, 2]):.4f} |"
        )


if __name__ == "__main__":
    main()
