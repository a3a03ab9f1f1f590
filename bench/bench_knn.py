"""Benchmark: factorkit's neighbour models against Surprise's KNN and implicit's item-item.

Ratings: ItemKNN / UserKNN against Surprise's KNNBasic, KNNWithMeans and KNNBaseline on
the same folds of MovieLens latest-small (k = 40; Surprise's default similarity, MSD, for
Basic / WithMeans; ``pearson_baseline`` with shrinkage 100 for Baseline), first with the
same settings (factorkit keeping every positive similarity, ``max_neighbours=None``, as
Surprise's full matrix does), then with factorkit's defaults. Time = fit + predicting the
test fold. Implicit: ImplicitItemKNN against implicit's ItemItemRecommender,
CosineRecommender and BM25Recommender (K = 20) on one 80/20 split of the ratings >= 4;
fit time, top-20 time for every test user (seen items excluded) and recall@20, computed
by this script from both libraries' lists. implicit's K = 20 keeps the item itself among
its 20 neighbours, so factorkit runs with ``neighbours=19``: the same 19 other items.
Every configuration runs in its own process (peak RSS reported, interpreter included);
peers run in their own environment (``--peer-python``). factorkit's kernels are warmed up
(compiled) before timing.

Usage::

    python bench/bench_knn.py --folds 5 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from peers import PEER_PYTHON

HERE = Path(__file__).resolve()
DEFAULT_DATA = HERE.parents[1] / "src/factorkit/data/resources/ml-latest-small/ratings.csv"
SCALE = (0.5, 5.0)
K = 40

#: (label, Surprise class, sim options, factorkit class, factorkit params for the same model)
EXPLICIT = [
    ("KNNBasic item msd", "KNNBasic", {"name": "msd", "user_based": False}, "ItemKNN",
     {"centering": "none", "similarity": "msd", "shrinkage": 0.0}),
    ("KNNWithMeans item msd", "KNNWithMeans", {"name": "msd", "user_based": False}, "ItemKNN",
     {"centering": "mean", "similarity": "msd", "shrinkage": 0.0}),
    ("KNNBaseline item pearson_baseline", "KNNBaseline",
     {"name": "pearson_baseline", "user_based": False, "shrinkage": 100}, "ItemKNN",
     {"centering": "baseline", "similarity": "pearson_baseline", "shrinkage": 100.0}),
    ("KNNBasic user msd", "KNNBasic", {"name": "msd", "user_based": True}, "UserKNN",
     {"centering": "none", "similarity": "msd", "shrinkage": 0.0}),
    ("KNNWithMeans user msd", "KNNWithMeans", {"name": "msd", "user_based": True}, "UserKNN",
     {"centering": "mean", "similarity": "msd", "shrinkage": 0.0}),
    ("KNNBaseline user pearson_baseline", "KNNBaseline",
     {"name": "pearson_baseline", "user_based": True, "shrinkage": 100}, "UserKNN",
     {"centering": "baseline", "similarity": "pearson_baseline", "shrinkage": 100.0}),
]  # fmt: skip
IMPLICIT = [
    ("item-item dot", "ItemItemRecommender", "dot"),
    ("cosine", "CosineRecommender", "cosine"),
    ("BM25", "BM25Recommender", "bm25"),
]


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------------- workers
def surprise_worker(spec: dict) -> dict:
    import surprise
    from surprise import Dataset, Reader, accuracy

    train = pd.read_csv(spec["train"])
    test = pd.read_csv(spec["test"])
    trainset = Dataset.load_from_df(
        train[["user", "item", "rating"]], Reader(rating_scale=SCALE)
    ).build_full_trainset()
    testset = list(test[["user", "item", "rating"]].itertuples(index=False, name=None))
    algo = getattr(surprise, spec["cls"])(k=K, sim_options=spec["sim"], verbose=False)
    start = time.perf_counter()
    algo.fit(trainset)
    predictions = algo.test(testset)
    seconds = time.perf_counter() - start
    return {"times": [seconds], "rmse": accuracy.rmse(predictions, verbose=False),
            "peak_mib": _peak_mib()}  # fmt: skip


def factorkit_worker(spec: dict) -> dict:
    import warnings

    import factorkit as fk

    warnings.simplefilter("ignore")  # unknown test ids fall back, as in Surprise

    def load(path):
        return fk.Interactions.from_pandas(pd.read_csv(path), user="user", item="item",
                                           rating="rating")  # fmt: skip

    train, test = load(spec["train"]), load(spec["test"])
    cls = getattr(fk, spec["cls"])
    users = test.user_map.ids[test.user_index]
    items = test.item_map.ids[test.item_index]
    cls(**spec["params"]).fit(train.select_users(train.user_map.ids[:50])).predict(users, items)
    times, rmse = [], None
    for _ in range(spec["repeats"]):
        start = time.perf_counter()
        pred = cls(**spec["params"]).fit(train).predict(users, items)
        times.append(time.perf_counter() - start)
        rmse = float(np.sqrt(np.mean((pred - test.values) ** 2)))
    return {"times": times, "rmse": rmse, "peak_mib": _peak_mib()}


def implicit_worker(spec: dict) -> dict:
    import implicit.nearest_neighbours as nn
    import scipy.sparse as sp

    train = pd.read_csv(spec["train"])
    users = np.array(spec["users"])
    shape = (spec["n_users"], spec["n_items"])
    ui = sp.csr_matrix((np.ones(len(train)), (train.user, train.item)), shape=shape)
    times, top_times = [], []
    for _ in range(spec["repeats"]):
        model = getattr(nn, spec["cls"])(K=20, num_threads=spec["threads"])
        start = time.perf_counter()
        model.fit(ui, show_progress=False)
        times.append(time.perf_counter() - start)
        start = time.perf_counter()
        ids, _ = model.recommend(users, ui[users], N=20, filter_already_liked_items=True)
        top_times.append(time.perf_counter() - start)
    return {"times": times, "top_times": top_times, "lists": ids.tolist(),
            "peak_mib": _peak_mib()}  # fmt: skip


def factorkit_implicit_worker(spec: dict) -> dict:
    import factorkit as fk

    train = pd.read_csv(spec["train"])
    data = fk.Interactions.from_arrays(train.user.to_numpy(), train.item.to_numpy())
    users = np.array(spec["users"])
    # implicit's K = 20 counts the item itself among its neighbours: 19 others
    params = {"similarity": spec["cls"], "neighbours": 19, "n_threads": spec["threads"] or None}
    fk.ImplicitItemKNN(**params).fit(data).recommend(users[:5], k=20)  # warm up
    times, top_times = [], []
    for _ in range(spec["repeats"]):
        start = time.perf_counter()
        model = fk.ImplicitItemKNN(**params).fit(data)
        times.append(time.perf_counter() - start)
        start = time.perf_counter()
        ids, _ = model.recommend(users, k=20)
        top_times.append(time.perf_counter() - start)
    return {"times": times, "top_times": top_times, "lists": ids.tolist(),
            "peak_mib": _peak_mib()}  # fmt: skip


WORKERS = {
    "surprise": surprise_worker,
    "factorkit": factorkit_worker,
    "implicit": implicit_worker,
    "factorkit-implicit": factorkit_implicit_worker,
}


def _run(python: str, worker: str, spec: dict, tmp: str) -> dict:
    path = Path(tmp) / "spec.json"
    path.write_text(json.dumps(spec))
    cmd = [python, str(HERE), "--worker", worker, "--spec", str(path)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------- driver
def _explicit(ratings, args, tmp) -> list[str]:
    fold = np.random.default_rng(args.seed).integers(0, 5, len(ratings))
    lines = [
        f"## Ratings: fit + predict, {args.folds} of 5 folds (k = {K})",
        "",
        "| model | library | fit+predict s (median) | speed-up | RMSE (mean) | peak RSS MiB |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for label, s_cls, sim, f_cls, params in EXPLICIT:
        results = {"Surprise": [], "factorkit, same settings": [], "factorkit defaults": []}
        for f in range(args.folds):
            train_csv, test_csv = f"{tmp}/train{f}.csv", f"{tmp}/test{f}.csv"
            ratings[fold != f].to_csv(train_csv, index=False)
            ratings[fold == f].to_csv(test_csv, index=False)
            base = {"train": train_csv, "test": test_csv}
            spec = {**base, "cls": s_cls, "sim": sim}
            results["Surprise"].append(_run(args.peer_python, "surprise", spec, tmp))
            same = {**params, "max_neighbours": None, "neighbours": K, "n_threads": args.threads}
            spec = {**base, "cls": f_cls, "params": same, "repeats": args.repeats}
            results["factorkit, same settings"].append(_run(sys.executable, "factorkit", spec, tmp))
            spec["params"] = {"n_threads": args.threads}
            results["factorkit defaults"].append(_run(sys.executable, "factorkit", spec, tmp))
        ref = np.median([t for r in results["Surprise"] for t in r["times"]])
        for lib, runs in results.items():
            t = float(np.median([x for r in runs for x in r["times"]]))
            rmse = float(np.mean([r["rmse"] for r in runs]))
            peak = max(r["peak_mib"] for r in runs)
            name = label if lib == "Surprise" else f"{f_cls}" + (
                "" if lib == "factorkit defaults" else f" {params}"
            )  # fmt: skip
            lines.append(f"| {name} | {lib} | {t:.3f} | {ref / t:.1f}x | {rmse:.4f} | {peak:.0f} |")
        print("\n".join(lines[-3:]), file=sys.stderr, flush=True)
    return lines


def _implicit(ratings, args, tmp) -> list[str]:
    liked = ratings[ratings.rating >= 4.0].copy()
    liked["user"] = pd.factorize(liked.user)[0]
    liked["item"] = pd.factorize(liked.item)[0]
    held = np.random.default_rng(args.seed).random(len(liked)) < 0.2
    train, test = liked[~held], liked[held]
    train_csv = f"{tmp}/liked.csv"
    train.to_csv(train_csv, index=False)
    users = sorted(set(test.user) & set(train.user))
    truth = test.groupby("user").item.apply(set)
    spec = {"train": train_csv, "users": [int(u) for u in users], "repeats": args.repeats,
            "n_users": int(liked.user.max()) + 1, "n_items": int(liked.item.max()) + 1,
            "threads": args.threads or 0}  # fmt: skip
    lines = [
        "## Implicit feedback: ratings >= 4, one 80/20 split, K = 20, top-20 for "
        f"{len(users)} users",
        "",
        "| model | library | fit s | top-20 s | top-N speed-up | recall@20 | peak RSS MiB |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]

    def recall(lists):
        return float(np.mean([len(truth[u] & set(row)) / len(truth[u])
                              for u, row in zip(users, lists, strict=True)]))  # fmt: skip

    for label, peer_cls, sim in IMPLICIT:
        peer = _run(args.peer_python, "implicit", {**spec, "cls": peer_cls}, tmp)
        ours = _run(sys.executable, "factorkit-implicit", {**spec, "cls": sim}, tmp)
        ref = float(np.median(peer["top_times"]))
        for lib, r in (
            ("implicit " + peer_cls, peer),
            (f"factorkit ImplicitItemKNN({sim!r}, neighbours=19)", ours),
        ):
            fit, top = float(np.median(r["times"])), float(np.median(r["top_times"]))
            lines.append(f"| {label} | {lib} | {fit:.3f} | {top:.3f} | {ref / top:.1f}x | "
                         f"{recall(r['lists']):.4f} | {r['peak_mib']:.0f} |")  # fmt: skip
        print("\n".join(lines[-2:]), file=sys.stderr, flush=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="MovieLens ratings.csv")
    parser.add_argument("--peer-python", default=PEER_PYTHON)
    parser.add_argument("--folds", type=int, default=5, help="folds of the 5-fold split to run")
    parser.add_argument("--repeats", type=int, default=3, help="factorkit runs per fold")
    parser.add_argument("--threads", type=int, default=None, help="factorkit / implicit threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-explicit", action="store_true")
    parser.add_argument("--skip-implicit", action="store_true")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(WORKERS[args.worker](json.loads(Path(args.spec).read_text()))))
        return
    ratings = pd.read_csv(args.data).rename(columns={"userId": "user", "movieId": "item"})
    ratings = ratings[["user", "item", "rating"]]
    lines = [f"# Neighbour models on MovieLens latest-small ({len(ratings):,} ratings)", ""]
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_explicit:
            lines += [*_explicit(ratings, args, tmp), ""]
        if not args.skip_implicit:
            lines += [*_implicit(ratings, args, tmp), ""]
    lines.append("Command: `" + " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]) + "`")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
