"""HybridMF: cold-start and warm accuracy on MovieLens latest-small, and speed.

Cold start: 20% of the items (of ratings >= 4) are held out entirely; models are fitted
on the rest with the shipped item features (genres, tags, year) and rank, for every
training user, the held-out items only; recall@20 and ndcg@20 against each user's
held-out positives. Warm: a per-user 80/20 split with ``fk.evaluate``.

    PYTHONPATH=src:bench python bench/bench_hybrid.py [--seeds 5] [--warm] [--speed] [--lightfm]
    PYTHONPATH=src:bench python bench/bench_hybrid.py --versus-lightfm synthetic --speed-epochs 2

``--lightfm`` runs the same splits through LightFM from bench/.peers when it is
installed there (``bash bench/setup_peers.sh --lightfm SRC_DIR``). ``--versus-lightfm
{movielens,synthetic}`` times fits of LightFM and HybridMF (BPR and WARP each) on the
same data, interleaved, each in its own process (its peak memory is measured there):
MovieLens small with its item features, or :func:`synthetic_hybrid`'s 10M interactions
with 50 features per item.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


def cold_models(factors, epochs):
    """The cold-start comparison's HybridMF variants (name -> unfitted model)."""
    return {
        "HybridMF (bpr)": fk.HybridMF(factors=factors, epochs=epochs),
        "HybridMF (bpr, no item ids)": fk.HybridMF(
            factors=factors, epochs=epochs, item_identity=False
        ),
        "HybridMF (warp, defaults: lr 0.01, 50 epochs)": fk.HybridMF(factors=factors, loss="warp"),
        "HybridMF (softmax, defaults)": fk.HybridMF(factors=factors, loss="softmax"),
        "HybridMF (ials, defaults)": fk.HybridMF(factors=factors, loss="ials"),
    }


def _selected(name: str, only) -> bool:
    """Whether row ``name`` runs: no ``only``, or one of its comma-separated parts is in
    the name."""
    return not only or any(part and part in name for part in only.split(","))


def run_cold(seed: int, features, liked, factors=64, epochs=100, n_threads=2, only=None):
    """One cold split's rows (name -> (recall@20, ndcg@20)) and the first HybridMF's fit
    seconds; ``only``: run just the rows whose name contains it."""
    train, test, cold_ids = cold_split(liked, 0.2, seed)
    users = train.compact().user_map.ids  # users with training interactions
    cold_features = features.transform(features_frame(features, cold_ids))
    rows = {}
    fit_s = float("nan")
    for name, model in cold_models(factors, epochs).items():
        if not _selected(name, only):
            continue
        t = time.perf_counter()
        model.set_params(random_state=seed, n_threads=n_threads).fit(train, item_features=features)
        fit_s = time.perf_counter() - t if np.isnan(fit_s) else fit_s
        rows[name] = cold_metrics(
            model.score_new_items(cold_features, users=users), users, cold_ids, test
        )
    if _selected("ImplicitALS + content_regression", only):
        ials = fk.ImplicitALS(factors=factors, random_state=seed, n_threads=n_threads).fit(train)
        reg = fk.content_regression(ials, features, regularization=1.0)
        rows["ImplicitALS + content_regression"] = cold_metrics(
            reg.score_new_items(cold_features, users=users), users, cold_ids, test
        )
    if not only:
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
    parser.add_argument(
        "--only", help="run only the rows whose name holds this (or one of a comma list)"
    )
    parser.add_argument("--warm-seeds", type=int, default=1)
    parser.add_argument("--speed", action="store_true")
    parser.add_argument("--fold-in", action="store_true", help="only the fold-in timings")
    parser.add_argument("--lightfm", action="store_true")
    parser.add_argument("--versus-lightfm", choices=["movielens", "synthetic"])
    parser.add_argument("--speed-epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--data-cache", help="npz file the --versus-lightfm data is kept in")
    parser.add_argument("--subsample", type=int, default=0, help="--versus-lightfm: fit this many")
    parser.add_argument(
        "--losses", default="bpr,warp", help="--versus-lightfm: the losses to time (comma list)"
    )
    args = parser.parse_args()
    if args.versus_lightfm:
        versus_lightfm(
            args.versus_lightfm, args.speed_epochs, args.repeats, cache=args.data_cache,
            subsample=args.subsample, losses=args.losses.split(","),
        )  # fmt: skip
        return
    liked = fk.datasets.load_movielens_small().to_implicit(min_value=4.0)
    features = fk.datasets.load_movielens_small_item_features()
    results: dict = {}
    for seed in range(args.seeds):
        rows, fit_s = run_cold(seed, features, liked, epochs=args.epochs, only=args.only)
        for name, value in rows.items():
            results.setdefault(name, []).append(value)
        print(f"seed {seed}: HybridMF fit {fit_s:.2f} s, {rows}", flush=True)
    if not args.seeds:
        results = {}
    print("\nCold-start items (20% of items held out; ranking among them), mean +- std over "
          f"{args.seeds} seeds")  # fmt: skip
    print("| model | recall@20 | ndcg@20 |\n|---|---|---|")
    for name, values in results.items():
        v = np.asarray(values)
        print(
            f"| {name} | {v[:, 0].mean():.3f} +- {v[:, 0].std():.3f} | "
            f"{v[:, 1].mean():.3f} +- {v[:, 1].std():.3f} |"
        )
    print(f"(load average {os.getloadavg()[0]:.1f})")
    if args.warm:
        run_warm(
            liked, features, args.epochs, args.warm_seeds, lightfm=args.lightfm, only=args.only
        )
    if args.speed:
        run_speed(liked, features)
    elif args.fold_in:
        run_fold_in(liked, features)
    if args.lightfm:
        run_lightfm(liked, features, args.seeds, args.epochs)


def warm_models(epochs):
    """The warm comparison: name -> (unfitted model, whether it takes item features)."""
    return {
        "HybridMF (bpr, genres+tags+year)": (fk.HybridMF(epochs=epochs), True),
        "HybridMF (warp, defaults: lr 0.01, 50 epochs)": (fk.HybridMF(loss="warp"), True),
        "HybridMF (softmax, defaults)": (fk.HybridMF(loss="softmax"), True),
        "HybridMF (ials, defaults)": (fk.HybridMF(loss="ials"), True),
        "BPR (defaults)": (fk.BPR(), False),
        "ImplicitALS (defaults)": (fk.ImplicitALS(), False),
    }


def run_warm(liked, features, epochs, seeds=1, lightfm=False, threads=2, only=None):
    """Per-user 80/20 splits (seeds 0 .. seeds - 1): recall@20 and ndcg@20 with
    ``fk.evaluate``, mean +- std; ImplicitALS + content_regression is checked to leave
    ImplicitALS's warm recommendations unchanged."""
    metrics = ["recall@20", "ndcg@20"]
    rows: dict = {}
    same = []
    for seed in range(seeds):
        train, test = fk.split.per_user(liked, test_size=0.2, random_state=seed)
        for name, (model, with_features) in warm_models(epochs).items():
            if not _selected(name, only):
                continue
            model.set_params(random_state=seed, n_threads=threads)
            t = time.perf_counter()
            model.fit(train, **({"item_features": features} if with_features else {}))
            fit_s = time.perf_counter() - t
            res = fk.evaluate(model, test, metrics=metrics, train=train)
            rows.setdefault(name, []).append((res["recall@20"], res["ndcg@20"], fit_s))
            print(f"seed {seed} {name}: {res['recall@20']:.4f} {res['ndcg@20']:.4f} "
                  f"{fit_s:.1f} s (load {os.getloadavg()[0]:.1f})", flush=True)  # fmt: skip
            if name.startswith("ImplicitALS"):
                users = model.user_map_.ids
                before = model.recommend(users, k=20)
                reg = fk.content_regression(model, features, regularization=1.0)
                after = reg.model.recommend(users, k=20)
                same.append(
                    bool(
                        np.array_equal(before[0], after[0]) and np.array_equal(before[1], after[1])
                    )
                )
        if lightfm:
            for loss, values in lightfm_warm(train, test, features, seed, threads).items():
                rows.setdefault(f"LightFM ({loss}, 30 epochs)", []).append(values)
    print(f"\nWarm users and items (per-user 80/20 split), mean +- std over {seeds} seeds")
    print("| model | recall@20 | ndcg@20 | fit s |\n|---|---|---|---|")
    for name, values in rows.items():
        v = np.asarray(values)
        print(
            f"| {name} | {v[:, 0].mean():.3f} +- {v[:, 0].std():.3f} | "
            f"{v[:, 1].mean():.3f} +- {v[:, 1].std():.3f} | {np.median(v[:, 2]):.2f} |"
        )
    print(
        "ImplicitALS + content_regression: warm top-20 lists identical to ImplicitALS's on "
        f"{sum(same)} of {len(same)} seeds (the regression leaves the model untouched)"
    )


_LIGHTFM_WARM_WORKER = r"""
import json, sys, time
import numpy as np, scipy.sparse as sp
from lightfm import LightFM
d = np.load(sys.argv[1], allow_pickle=False)
n_users, n_items = int(d["n_users"]), int(d["n_items"])
r = sp.coo_matrix((np.ones(len(d["u"]), np.float32), (d["u"], d["i"])), shape=(n_users, n_items))
x = sp.csr_matrix((d["x_data"], d["x_indices"], d["x_indptr"]), shape=tuple(d["x_shape"]))
feats = sp.hstack([sp.identity(n_items, format="csr", dtype=np.float32), x], format="csr")
out = {}
for loss in ("bpr", "warp"):
    m = LightFM(no_components=64, loss=loss, learning_rate=0.05, random_state=int(d["seed"]))
    t = time.perf_counter()
    m.fit(r, item_features=feats, epochs=int(d["epochs"]), num_threads=int(d["threads"]))
    b, v = m.get_item_representations(feats)
    _, uv = m.get_user_representations()
    np.savez(sys.argv[2] + f"_{loss}.npz", b=b, v=v, uv=uv)
    out[loss] = time.perf_counter() - t
print(json.dumps(out))
"""


def lightfm_warm(train, test, features, seed, threads, epochs=30):
    """LightFM (bench/.peers) on a warm split, scored through ``fk.evaluate``: its user
    and item representations are loaded into a BPR model's factors (same scoring
    ``p_u . q_i + b_i``, same candidates and exclusions)."""
    from peers import PEER_PYTHON

    skeleton = fk.BPR(factors=64, epochs=1, random_state=seed).fit(train)
    users, items = skeleton.user_map_, skeleton.item_map_  # the positions to fill
    u = users.lookup(train.user_map.ids[train.user_index])
    i = items.lookup(train.item_map.ids[train.item_index])
    x = features.matrix[features.ids.lookup(items.ids)]  # rows follow the model's items
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "warm.npz"
        np.savez(
            path, n_users=len(users), n_items=len(items), u=u, i=i, x_data=x.data,
            x_indices=x.indices, x_indptr=x.indptr, x_shape=np.array(x.shape), seed=seed,
            epochs=epochs, threads=threads,
        )  # fmt: skip
        proc = subprocess.run(
            [PEER_PYTHON, "-c", _LIGHTFM_WARM_WORKER, str(path), str(Path(tmp) / "rep")],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        fit_s = json.loads(proc.stdout.strip().splitlines()[-1])
        for loss in ("bpr", "warp"):
            rep = np.load(Path(tmp) / f"rep_{loss}.npz")
            model = skeleton
            model.user_factors_ = np.ascontiguousarray(rep["uv"], dtype=np.float32)
            model.item_factors_ = np.ascontiguousarray(rep["v"], dtype=np.float32)
            model.item_bias_ = np.ascontiguousarray(rep["b"], dtype=np.float32)
            res = fk.evaluate(model, test, metrics=["recall@20", "ndcg@20"], train=train)
            out[loss] = (res["recall@20"], res["ndcg@20"], fit_s[loss])
            print(f"seed {seed} LightFM {loss}: {res['recall@20']:.4f} {res['ndcg@20']:.4f} "
                  f"{fit_s[loss]:.1f} s", flush=True)  # fmt: skip
    return out


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
    run_fold_in(liked, features, model)


def run_fold_in(liked, features, model=None):
    """Milliseconds per new-user fold-in: from 10 items, from a feature row alone, and
    recommend_new_user from the feature row (k=10 over every item)."""
    if model is None:
        model = fk.HybridMF(epochs=5, random_state=0, n_threads=2)
        model.fit(liked, item_features=features)
    print(f"\nfold-in (load average {os.getloadavg()[0]:.1f})")
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
    batches, cpu = [], []
    for _ in range(5):  # per-call mean of 5 batches; the min is the least disturbed
        t, c = time.perf_counter(), time.process_time()
        for _ in range(400):
            model.fold_in(features=row)
        batches.append((time.perf_counter() - t) / 400 * 1e3)
        cpu.append((time.process_time() - c) / 400 * 1e3)
    print(
        f"fold_in (features only): median {np.median(batches):.4f} ms, "
        f"min {min(batches):.4f} ms over 5 batches of 400 calls; CPU time per call "
        f"median {np.median(cpu):.4f} ms (the process's own, unaffected by waiting)"
    )
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


def synthetic_hybrid(
    n_users=200_000, n_items=50_000, n_interactions=10_000_000, features_per_item=50,
    n_features=10_000, n_topics=50, seed=0,
):  # fmt: skip
    """Implicit interactions whose items' features carry the signal.

    Every item has a topic; 70% of its ``features_per_item`` features are distinct
    features of its topic's pool (``n_features / n_topics`` of them), the rest drawn from
    other topics' pools (noise), each of weight ``1 / features_per_item``. Every user
    likes 3 topics (Dirichlet mix); their activity is log-normal (median about 33
    interactions); each interaction draws one of the user's topics, then an item of that
    topic by a power law on the topic's items (exponent 0.8), or with probability 0.1 a
    uniform item. Draws are deduplicated and subsampled to ``n_interactions``.

    Returns ``(users, items, item_features)``: int64 arrays and a CSR matrix
    ``(n_items, n_features)``.
    """
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    pool = n_features // n_topics
    topic = rng.integers(0, n_topics, n_items)
    n_own = round(0.7 * features_per_item)
    own = np.argsort(rng.random((n_items, pool)), axis=1)[:, :n_own] + (topic * pool)[:, None]
    shift = rng.integers(pool, n_features, (n_items, features_per_item - n_own))
    noise = ((topic * pool)[:, None] + shift) % n_features  # never the item's own pool
    cols = np.hstack([own, noise]).ravel()
    rows = np.repeat(np.arange(n_items), features_per_item)
    weights = np.full(len(cols), 1.0 / features_per_item, np.float32)
    x = sp.csr_matrix((weights, (rows, cols)), shape=(n_items, n_features))
    x.sum_duplicates()
    by_topic = np.argsort(topic, kind="stable")
    counts = np.bincount(topic, minlength=n_topics)
    start = np.r_[0, np.cumsum(counts)[:-1]]
    n_draw = int(n_interactions * 1.3)  # duplicates are dropped below
    activity = rng.lognormal(0.0, 1.0, n_users)
    cdf = np.cumsum(activity / activity.sum())
    users = np.minimum(np.searchsorted(cdf, rng.random(n_draw)), n_users - 1)
    user_topics = rng.integers(0, n_topics, (n_users, 3))
    mix = rng.dirichlet(np.ones(3), n_users).cumsum(axis=1)
    r = rng.random(n_draw)
    slot = (r > mix[users, 0]).astype(np.int64) + (r > mix[users, 1])
    t = user_topics[users, slot]
    m = counts[t].astype(np.float64)
    a = 0.8  # power-law exponent of an item's rank within its topic
    rank = ((m ** (1 - a) - 1) * rng.random(n_draw) + 1) ** (1 / (1 - a))
    items = by_topic[start[t] + np.minimum(rank.astype(np.int64) - 1, counts[t] - 1)]
    noisy = rng.random(n_draw) < 0.1
    items[noisy] = rng.integers(0, n_items, int(noisy.sum()))
    keys = np.unique(users.astype(np.int64) * n_items + items)
    if len(keys) > n_interactions:
        keep = np.sort(rng.permutation(len(keys))[:n_interactions])
        keys = keys[keep]
    return keys // n_items, keys % n_items, x


_SPEED_WORKER = r"""
import json, os, resource, sys, threading, time
import numpy as np, scipy.sparse as sp

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

class Peak(threading.Thread):
    def __init__(self):
        super().__init__(daemon=True)
        self.peak, self.stop = rss(), False
    def run(self):
        while not self.stop:
            self.peak = max(self.peak, rss())
            time.sleep(0.02)

lib, loss, path = sys.argv[1:4]
epochs, threads, subsample = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
d = np.load(path, allow_pickle=False)
n_users, n_items = int(d["n_users"]), int(d["n_items"])
u, i = d["u"], d["i"]
if subsample:  # a random share of the interactions, the same tables and features
    keep = np.sort(np.random.default_rng(0).permutation(len(u))[:subsample])
    u, i = u[keep], i[keep]
x = sp.csr_matrix((d["x_data"], d["x_indices"], d["x_indptr"]), shape=tuple(d["x_shape"]))
k = int(d["k"])
out = {}
if lib == "lightfm":
    from lightfm import LightFM
    r = sp.coo_matrix((np.ones(len(u), np.float32), (u.astype(np.int32), i.astype(np.int32))),
                      shape=(n_users, n_items))
    feats = sp.hstack([sp.identity(n_items, format="csr", dtype=np.float32), x], format="csr")
    model = LightFM(no_components=k, loss=loss, learning_rate=0.05, random_state=0)
    before = rss(); peak = Peak(); peak.start()
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    t = time.perf_counter()
    model.fit_partial(r, item_features=feats, epochs=epochs, num_threads=threads)
    out["fit_s"] = time.perf_counter() - t
else:
    import factorkit as fk
    data = fk.Interactions.from_arrays(u, i, implicit=True)
    features = fk.Features.from_scipy(x, np.arange(n_items))
    lr = 0.01 if loss == "warp" else 0.05
    # compile (or load numba's cache) on a tiny copy first: fit time, not compile time
    small = fk.Interactions.from_arrays(u[:2000], i[:2000], implicit=True)
    fk.HybridMF(factors=k, epochs=1, loss=loss, learning_rate=lr, n_threads=threads).fit(
        small, item_features=features)
    model = fk.HybridMF(factors=k, epochs=epochs, loss=loss, learning_rate=lr,
                        random_state=0, n_threads=threads)
    before = rss(); peak = Peak(); peak.start()
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    t = time.perf_counter()
    model.fit(data, item_features=features)
    out["fit_s"] = time.perf_counter() - t
    out["epoch_s"] = np.diff(np.r_[0.0, model.history_["elapsed"]]).tolist()
end = resource.getrusage(resource.RUSAGE_SELF)
out["cpu_s"] = end.ru_utime + end.ru_stime - cpu.ru_utime - cpu.ru_stime
peak.stop = True; peak.join()
out["rss_before_mb"] = before / 2**20
out["peak_rss_mb"] = max(peak.peak, rss()) / 2**20
with open("/proc/self/status") as f:  # the process's own high-water mark
    out["vmhwm_mb"] = [int(l.split()[1]) for l in f if l.startswith("VmHWM")][0] / 2**10
print(json.dumps(out))
"""


def versus_lightfm(
    kind, epochs, repeats, threads=2, factors=64, cache=None, subsample=0, losses=("bpr", "warp")
):
    """Fit seconds per epoch and peak memory of LightFM and HybridMF, BPR and WARP, on
    the same data; every fit in its own process, the libraries interleaved, ``repeats``
    rounds. ``subsample``: fit only that many of the interactions (drawn at random; the
    same user, item and feature tables), for a per-interaction cost."""
    from peers import PEER_PYTHON

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(cache) if cache else Path(tmp) / "data.npz"
        if not path.exists():
            t = time.perf_counter()
            if kind == "synthetic":
                u, i, x = synthetic_hybrid()
                n_users, n_items = int(u.max()) + 1, x.shape[0]
            else:
                liked = fk.datasets.load_movielens_small().to_implicit(min_value=4.0)
                features = fk.datasets.load_movielens_small_item_features()
                u = liked.user_index
                i = features.ids.lookup(liked.item_map.ids)[liked.item_index]
                x = features.matrix
                n_users, n_items = liked.n_users, x.shape[0]
            np.savez(
                path, n_users=n_users, n_items=n_items, u=u, i=i, x_data=x.data,
                x_indices=x.indices, x_indptr=x.indptr, x_shape=np.array(x.shape), k=factors,
            )  # fmt: skip
            print(f"data built in {time.perf_counter() - t:.1f} s", flush=True)
        d = np.load(path)
        print(
            f"{kind}: {len(d['u']):,} interactions, {int(d['n_users']):,} users, "
            f"{int(d['n_items']):,} items, {len(d['x_data']):,} item-feature entries "
            f"({int(d['x_shape'][1]):,} features); factors={factors}, {epochs} epochs, "
            f"{threads} threads",
            flush=True,
        )
        runs = [(lib, loss) for loss in losses for lib in ("lightfm", "factorkit")]
        rows: dict = {}
        for rep in range(repeats):
            for lib, loss in runs:
                python = PEER_PYTHON if lib == "lightfm" else sys.executable
                env = dict(os.environ, OMP_NUM_THREADS=str(threads))
                load = os.getloadavg()[0]
                proc = subprocess.run(
                    [python, "-c", _SPEED_WORKER, lib, loss, str(path), str(epochs), str(threads),
                     str(subsample)],
                    capture_output=True, text=True, env=env,
                )  # fmt: skip
                if proc.returncode:
                    print(proc.stderr[-2000:], flush=True)
                    continue
                info = json.loads(proc.stdout.strip().splitlines()[-1])
                info["load"] = [load, os.getloadavg()[0]]
                rows.setdefault((lib, loss), []).append(info)
                print(f"round {rep} {lib} {loss}: {json.dumps(info)}", flush=True)
    print("\n| model | fit s / epoch (median) | runs | CPU s / epoch | peak RSS MB (fit's rise) |")
    print("|---|---|---|---|---|")
    for (lib, loss), infos in rows.items():
        per = [r["fit_s"] / epochs for r in infos]
        peak = max(r["peak_rss_mb"] for r in infos)
        rise = max(r["peak_rss_mb"] - r["rss_before_mb"] for r in infos)
        name = "LightFM" if lib == "lightfm" else "HybridMF"
        runs_s = ", ".join(f"{p:.2f}" for p in per)
        cpu = np.median([r["cpu_s"] / epochs for r in infos])
        print(
            f"| {name} ({loss}) | {np.median(per):.3f} | {runs_s} | {cpu:.2f} | "
            f"{peak:.0f} (+{rise:.0f}) |"
        )


if __name__ == "__main__":
    main()
