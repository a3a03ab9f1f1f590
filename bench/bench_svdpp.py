"""Benchmark: factorkit SVDpp against Surprise SVDpp on MovieLens latest-small.

Both libraries train on the same 80/20 interaction-level split (written to CSV files that
each side reads), with Surprise's defaults of 20 factors and 20 epochs. Fit times are
medians over ``--repeats`` runs; factorkit's numba kernels are warmed up first and their
compile time (empty cache) and cache-load time are reported separately. Surprise runs in
its own virtual environment (``--peer-python``) in a subprocess.

Usage::

    python bench/bench_svdpp.py

Prints a markdown table with fit-time ratios (Surprise / factorkit) and RMSE.
"""

from __future__ import annotations

import argparse
import json
import os
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
FACTORS, EPOCHS = 20, 20
#: Surprise's SVDpp defaults, spelled in factorkit's parameters
SURPRISE_HYPERPARAMETERS = dict(
    learning_rate=0.007,
    regularization=0.02,
    bias_learning_rate=0.007,
    bias_regularization=0.02,
    implicit_learning_rate=0.007,
    implicit_regularization=0.02,
    init_scale=0.1,
    learning_rate_decay=1.0,
)


# ---------------------------------------------------------------------- peer worker
def surprise_worker(train_csv: str, test_csv: str, repeats: int, cache_ratings: bool) -> dict:
    """Runs under the peer's interpreter: only pandas, numpy and surprise are imported."""
    from surprise import Dataset, Reader, SVDpp, accuracy

    train = pd.read_csv(train_csv)
    test = pd.read_csv(test_csv)
    trainset = Dataset.load_from_df(
        train[["user", "item", "rating"]], Reader(rating_scale=SCALE)
    ).build_full_trainset()
    testset = list(test[["user", "item", "rating"]].itertuples(index=False, name=None))
    times, rmses = [], []
    for run in range(repeats):
        algo = SVDpp(
            n_factors=FACTORS, n_epochs=EPOCHS, random_state=run, cache_ratings=cache_ratings
        )
        start = time.perf_counter()
        algo.fit(trainset)
        times.append(time.perf_counter() - start)
        rmses.append(accuracy.rmse(algo.test(testset), verbose=False))
    return {"times": times, "rmses": rmses}


# ---------------------------------------------------------------------- factorkit side
def factorkit_compile_worker() -> dict:
    """First and second fit of a tiny model in this fresh process."""
    import factorkit as fk
    from factorkit.models.svdpp import SVDpp

    data = fk.Interactions.from_arrays([1, 1, 2, 2, 3], [1, 2, 1, 3, 2], [4.0, 3, 5, 2, 1])
    start = time.perf_counter()
    SVDpp(factors=4, epochs=2, random_state=0).fit(data).predict([1], [3])
    first = time.perf_counter() - start
    start = time.perf_counter()
    SVDpp(factors=4, epochs=2, random_state=0).fit(data).predict([1], [3])
    second = time.perf_counter() - start
    return {"first": first, "second": second}


def run_factorkit(train_csv: str, test_csv: str, repeats: int, n_threads: int | None, **params):
    import factorkit as fk
    from factorkit.models.svdpp import SVDpp

    def load(path: str):
        return fk.Interactions.from_pandas(
            pd.read_csv(path), user="user", item="item", rating="rating"
        )

    train, test = load(train_csv), load(test_csv)
    kwargs = dict(factors=FACTORS, epochs=EPOCHS, n_threads=n_threads, **params)
    SVDpp(**{**kwargs, "epochs": 1}, random_state=0).fit(train)  # warm up the kernels
    times, rmses = [], []
    for run in range(repeats):
        start = time.perf_counter()
        model = SVDpp(**kwargs, random_state=run).fit(train)
        times.append(time.perf_counter() - start)
        rmses.append(fk.evaluate(model, test, metrics=["rmse"])["rmse"])
    return {"times": times, "rmses": rmses}


def _subprocess_json(cmd: list[str], env: dict | None = None) -> dict:
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _compile_times() -> tuple[float, float]:
    """(compile from an empty numba cache, load from the warm cache) in seconds."""
    cmd = [sys.executable, str(HERE), "--worker", "factorkit-compile"]
    with tempfile.TemporaryDirectory() as cache:
        cold = _subprocess_json(cmd, {**os.environ, "NUMBA_CACHE_DIR": cache})
    _subprocess_json(cmd)  # make sure the default cache is filled
    warm = _subprocess_json(cmd)
    return cold["first"] - cold["second"], warm["first"] - warm["second"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="MovieLens ratings.csv")
    parser.add_argument("--peer-python", default=PEER_PYTHON)
    parser.add_argument("--repeats", type=int, default=3, help="runs per configuration")
    parser.add_argument(
        "--surprise-repeats", type=int, default=None, help="runs for Surprise (default --repeats)"
    )
    parser.add_argument("--skip-cache-ratings", action="store_true", help="skip cache_ratings=True")
    parser.add_argument("--seed", type=int, default=0, help="seed of the 80/20 split")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--train", help=argparse.SUPPRESS)
    parser.add_argument("--test", help=argparse.SUPPRESS)
    parser.add_argument("--cache-ratings", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker == "surprise":
        print(json.dumps(surprise_worker(args.train, args.test, args.repeats, args.cache_ratings)))
        return
    if args.worker == "factorkit-compile":
        print(json.dumps(factorkit_compile_worker()))
        return

    ratings = pd.read_csv(args.data).rename(columns={"userId": "user", "movieId": "item"})[
        ["user", "item", "rating"]
    ]
    in_test = np.random.default_rng(args.seed).random(len(ratings)) < 0.2
    s_repeats = args.surprise_repeats or args.repeats
    from factorkit._threads import resolve_threads

    n_all = resolve_threads(None)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        train_csv, test_csv = f"{tmp}/train.csv", f"{tmp}/test.csv"
        ratings[~in_test].to_csv(train_csv, index=False)
        ratings[in_test].to_csv(test_csv, index=False)
        compile_cold, compile_cached = _compile_times()
        fk_runs = [
            ("factorkit SVDpp, Surprise's hyperparameters, 1 thread", 1, SURPRISE_HYPERPARAMETERS),
            (
                f"factorkit SVDpp, Surprise's hyperparameters, {n_all} threads",
                None,
                SURPRISE_HYPERPARAMETERS,
            ),
            ("factorkit SVDpp, factorkit default rates, 1 thread", 1, {}),
            (f"factorkit SVDpp, factorkit default rates, {n_all} threads", None, {}),
        ]
        for name, threads, params in fk_runs:
            rows.append((name, run_factorkit(train_csv, test_csv, args.repeats, threads, **params)))
        peer = [args.peer_python, str(HERE), "--worker", "surprise", "--train", train_csv]
        peer += ["--test", test_csv, "--repeats", str(s_repeats)]
        rows.append(("Surprise SVDpp (defaults)", _subprocess_json(peer)))
        if not args.skip_cache_ratings:
            result = _subprocess_json([*peer, "--cache-ratings"])
            rows.append(("Surprise SVDpp, cache_ratings=True", result))

    reference = next(r for name, r in rows if name == "Surprise SVDpp (defaults)")
    ref_time = float(np.median(reference["times"]))
    command = " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv])
    print(f"# SVDpp on MovieLens latest-small ({len(ratings):,} ratings), 80/20 split")
    print()
    print(f"{FACTORS} factors, {EPOCHS} epochs; fit seconds are medians of the runs; RMSE is the")
    print("mean over runs (seeds 0..n-1). Speed-up = Surprise (defaults) time / this time.")
    print()
    print("| configuration | runs | fit s (median) | speed-up vs Surprise | test RMSE |")
    print("|---|---:|---:|---:|---:|")
    for name, r in rows:
        t = float(np.median(r["times"]))
        rmse = np.mean(r["rmses"])
        ratio = ref_time / t
        ratio_s = f"{ratio:.0f}x" if ratio >= 10 else f"{ratio:.2f}x"
        print(f"| {name} | {len(r['times'])} | {t:.3f} | {ratio_s} | {rmse:.4f} |")
    print()
    print(
        f"numba compile time (not in fit times): {compile_cold:.1f} s with an empty cache, "
        f"{compile_cached:.2f} s to load from the on-disk cache."
    )
    print(f"Machine: {os.cpu_count()} cores visible; factorkit used up to {n_all} threads.")
    print(f"Command: `{command}`")


if __name__ == "__main__":
    main()
