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
    python bench/bench_knn.py --synthetic 1000000 --folds 1 --peer-timeout 600

``--synthetic N`` replaces MovieLens by N seeded synthetic ratings shaped as MovieLens-10M
(scaled); Surprise runs are skipped when its dense similarity matrices would not fit
(``--peer-max-gib``) and stopped after ``--peer-timeout`` seconds.
"""

from __future__ import annotations

import argparse
import json
import os
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
    start, cpu = time.perf_counter(), time.process_time()
    algo.fit(trainset)
    predictions = algo.test(testset)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"times": [seconds], "cpu": [cpu], "rmse": accuracy.rmse(predictions, verbose=False),
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
    times, cpus, rmse = [], [], None
    for _ in range(spec["repeats"]):
        start, cpu = time.perf_counter(), time.process_time()
        pred = cls(**spec["params"]).fit(train).predict(users, items)
        times.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)  # every thread's
        rmse = float(np.sqrt(np.mean((pred - test.values) ** 2)))
    return {"times": times, "cpu": cpus, "rmse": rmse, "peak_mib": _peak_mib()}


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


def _run(python: str, worker: str, spec: dict, tmp: str, timeout: float | None = None):
    """One worker in its own process; None when it ran past ``timeout`` seconds or died
    (out of memory: the reason is printed)."""
    path = Path(tmp) / "spec.json"
    path.write_text(json.dumps(spec))
    cmd = [python, str(HERE), "--worker", worker, "--spec", str(path)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        print(f"{worker} {spec.get('cls')}: no result within {timeout:.0f} s", file=sys.stderr)
        return None
    if out.returncode != 0:
        print(f"{worker} {spec.get('cls')}: exit {out.returncode}\n{out.stderr[-2000:]}",
              file=sys.stderr)  # fmt: skip
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def synthetic_ratings(n: int, seed: int) -> pd.DataFrame:
    """``n`` ratings shaped as MovieLens-10M scaled to ``n`` (69,878 users x 10,677
    items at 10M: users in proportion, items as the square root), 0.5-5 in half stars,
    from :func:`factorkit.datasets.make_ratings` (seeded)."""
    import factorkit as fk

    scale = n / 10_000_000
    n_users = max(10, round(69_878 * scale))
    n_items = max(10, round(10_677 * scale**0.5))
    data, _ = fk.datasets.make_ratings(n_users, n_items, n, rating_scale=SCALE,
                                       random_state=seed, timestamps=False)  # fmt: skip
    return pd.DataFrame({"user": data.user_index, "item": data.item_index,
                         "rating": data.values.astype(np.float64)})  # fmt: skip


# ---------------------------------------------------------------------- driver
def _explicit(ratings, args, tmp) -> list[str]:
    fold = np.random.default_rng(args.seed).integers(0, 5, len(ratings))
    lines = [
        f"## Ratings: fit + predict, {args.folds} of 5 folds (k = {K})",
        "",
        "| model | library | fit+predict s (median) | speed-up | CPU s (all threads) | "
        "CPU speed-up | RMSE (mean) | peak RSS MiB |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    n_users, n_items = ratings.user.nunique(), ratings.item.nunique()
    for label, s_cls, sim, f_cls, params in EXPLICIT:
        if args.models and not any(m in label for m in args.models):
            continue
        # Surprise holds dense n x n similarity, support and sum matrices (float64)
        n_ent = n_users if sim["user_based"] else n_items
        surprise_gib = 3 * 8 * n_ent**2 / 2**30
        results = {"Surprise": [], "factorkit, same settings": [], "factorkit defaults": []}
        for f in range(args.folds):
            train_csv, test_csv = f"{tmp}/train{f}.csv", f"{tmp}/test{f}.csv"
            ratings[fold != f].to_csv(train_csv, index=False)
            ratings[fold == f].to_csv(test_csv, index=False)
            base = {"train": train_csv, "test": test_csv}
            spec = {**base, "cls": s_cls, "sim": sim}
            if args.skip_peer:
                pass
            elif surprise_gib > args.peer_max_gib:
                print(f"{label}: Surprise skipped, its similarity matrices alone need "
                      f"{surprise_gib:.0f} GiB", file=sys.stderr)  # fmt: skip
            else:
                ran = _run(args.peer_python, "surprise", spec, tmp, args.peer_timeout)
                if ran:
                    results["Surprise"].append(ran)
            same = {**params, "max_neighbours": None, "neighbours": K, "n_threads": args.threads}
            spec = {**base, "cls": f_cls, "params": same, "repeats": args.repeats}
            if 12 * n_ent**2 / 2**30 <= args.peer_max_gib:  # the full table: 12 B a pair
                ran = _run(sys.executable, "factorkit", spec, tmp)
                results["factorkit, same settings"].append(ran)
            spec["params"] = {"n_threads": args.threads}
            results["factorkit defaults"].append(_run(sys.executable, "factorkit", spec, tmp))
        done = results["Surprise"]
        ref = np.median([t for r in done for t in r["times"]]) if done else float("nan")
        ref_cpu = np.median([t for r in done for t in r["cpu"]]) if done else float("nan")
        for lib, runs in results.items():
            runs = [r for r in runs if r]
            if not runs:
                lines.append(f"| {label} | {lib} | not run | | | | | |")
                continue
            t = float(np.median([x for r in runs for x in r["times"]]))
            cpu = float(np.median([x for r in runs for x in r["cpu"]]))
            rmse = float(np.mean([r["rmse"] for r in runs]))
            peak = max(r["peak_mib"] for r in runs)
            name = label if lib == "Surprise" else f"{f_cls}" + (
                "" if lib == "factorkit defaults" else f" {params}"
            )  # fmt: skip
            lines.append(f"| {name} | {lib} | {t:.3f} | {ref / t:.1f}x | {cpu:.3f} | "
                         f"{ref_cpu / cpu:.1f}x | {rmse:.4f} | {peak:.0f} |")  # fmt: skip
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
    parser.add_argument("--synthetic", type=int, default=None, metavar="N",
                        help="ratings: N synthetic ratings shaped as MovieLens-10M scaled "
                        "to N instead of --data (implies --skip-implicit)")  # fmt: skip
    parser.add_argument("--models", nargs="*", default=None,
                        help="only the rating models whose label contains one of these "
                        "words (e.g. item, user, KNNBasic)")  # fmt: skip
    parser.add_argument(
        "--peer-timeout",
        type=float,
        default=None,
        help="seconds a Surprise run may take (none: no limit)",
    )
    parser.add_argument("--peer-max-gib", type=float, default=8.0,
                        help="skip runs whose dense similarity matrices (Surprise) or full "
                        "neighbour table (factorkit, same settings) need more GiB")  # fmt: skip
    parser.add_argument("--skip-peer", action="store_true", help="factorkit's rows only")
    parser.add_argument("--skip-explicit", action="store_true")
    parser.add_argument("--skip-implicit", action="store_true")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(WORKERS[args.worker](json.loads(Path(args.spec).read_text()))))
        return
    if args.synthetic:
        ratings = synthetic_ratings(args.synthetic, args.seed)
        args.skip_implicit = True
        title = (f"synthetic ratings ({len(ratings):,} ratings, {ratings.user.nunique():,} "
                 f"users x {ratings.item.nunique():,} items)")  # fmt: skip
    else:
        ratings = pd.read_csv(args.data).rename(columns={"userId": "user", "movieId": "item"})
        ratings = ratings[["user", "item", "rating"]]
        title = f"MovieLens latest-small ({len(ratings):,} ratings)"
    load = "load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())
    lines = [f"# Neighbour models on {title}", "", f"Start: {load}", ""]
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_explicit:
            lines += [*_explicit(ratings, args, tmp), ""]
        if not args.skip_implicit:
            lines += [*_implicit(ratings, args, tmp), ""]
    lines.append("End: load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()))
    lines.append("Command: `" + " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]) + "`")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
