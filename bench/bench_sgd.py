"""Benchmark: factorkit BiasedMF against Surprise SVD, and raw SGD throughput.

Part 1, MovieLens latest-small (one seeded 80/20 interaction-level split, written to CSV
files that each side reads):

* like for like: both with Surprise's SVD defaults (100 factors, 20 epochs,
  lr 0.005, reg 0.02, init std 0.1, constant learning rate): fit-time ratio and RMSE;
* time to quality: factorkit with its own defaults, trained only for the epochs it needs
  to reach the test RMSE that Surprise's SVD reaches, against Surprise's fit time.

Part 2, a seeded synthetic set of 10M ratings (skewed user activity and item popularity),
k=64: rating updates per second of a BiasedMF epoch, total and per thread, on 1 and 2
threads (median epoch of each fit, median over ``--repeats`` fits).

Fit times (wall and the fitting process's CPU time) are medians over ``--repeats`` runs,
peer and factorkit alternating so that both see the same machine load. factorkit's numba
kernels are warmed up first; compile time (empty cache) and cache-load time are measured
in fresh processes and reported separately. Surprise runs in its own virtual environment
(``--peer-python``) in a subprocess and is single-threaded, so factorkit is reported on 1
and on 2 threads.

Usage::

    python bench/bench_sgd.py
    python bench/bench_sgd.py --skip-throughput      # part 1 only
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from peers import PEER_PYTHON

HERE = Path(__file__).resolve().parent
ML_SMALL = HERE.parent / "src/factorkit/data/resources/ml-latest-small/ratings.csv"
SCALE = (0.5, 5.0)
# Surprise SVD's defaults (n_factors, n_epochs, lr_all, reg_all, init_std_dev)
FACTORS, EPOCHS, LR, REG, INIT = 100, 20, 0.005, 0.02, 0.1


# ---------------------------------------------------------------------- helpers
def timed(fn) -> tuple[float, float]:
    """Wall and CPU (this process) seconds of one ``fn()`` call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def subprocess_json(cmd: list[str], env: dict | None = None) -> dict:
    """Run ``cmd`` and parse the last line of its stdout as JSON."""
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def split_ml_small(tmp: Path, seed: int = 0) -> tuple[str, str]:
    df = pd.read_csv(ML_SMALL).rename(columns={"userId": "user", "movieId": "item"})
    test = np.random.default_rng(seed).random(len(df)) < 0.2
    train_csv, test_csv = str(tmp / "train.csv"), str(tmp / "test.csv")
    df[~test][["user", "item", "rating"]].to_csv(train_csv, index=False)
    df[test][["user", "item", "rating"]].to_csv(test_csv, index=False)
    return train_csv, test_csv


# ---------------------------------------------------------------------- peer worker
def surprise_worker(train_csv: str, test_csv: str) -> dict:
    """Runs under the peer's interpreter (only pandas, numpy and surprise are imported):
    one timed fit of Surprise's SVD, and its test RMSE."""
    import surprise
    from surprise import SVD, Dataset, Reader, accuracy

    train = pd.read_csv(train_csv)
    test = pd.read_csv(test_csv)
    trainset = Dataset.load_from_df(
        train[["user", "item", "rating"]], Reader(rating_scale=SCALE)
    ).build_full_trainset()
    testset = list(test[["user", "item", "rating"]].itertuples(index=False, name=None))
    algo = SVD(
        n_factors=FACTORS, n_epochs=EPOCHS, lr_all=LR, reg_all=REG, init_std_dev=INIT,
        random_state=0,
    )  # fmt: skip
    wall, cpu = timed(lambda: algo.fit(trainset))
    rmse = accuracy.rmse(algo.test(testset), verbose=False)
    return {"wall": wall, "cpu": cpu, "rmse": rmse, "version": surprise.__version__}


# ---------------------------------------------------------------------- factorkit side
def compile_worker() -> dict:
    """First fit in a fresh process: with an empty cache this is numba's compile time."""
    start = time.perf_counter()
    from factorkit.data.interactions import Interactions
    from factorkit.models.sgd import BiasedMF

    imported = time.perf_counter()
    data = Interactions.from_arrays([1, 1, 2, 3], [1, 2, 1, 3], [4.0, 3.0, 5.0, 2.0])
    BiasedMF(factors=2, epochs=1).fit(data)
    return {"import": imported - start, "first_fit": time.perf_counter() - imported}


def compile_times() -> tuple[float, float]:
    cmd = [sys.executable, __file__, "--compile-worker"]
    with tempfile.TemporaryDirectory() as cache:
        cold = subprocess_json(cmd, env={**os.environ, "NUMBA_CACHE_DIR": cache})
    warm = subprocess_json(cmd)  # the default cache, filled by the cold run or earlier
    return cold["first_fit"], warm["first_fit"]


def load_csv(path: str):
    from factorkit.data.interactions import Interactions

    return Interactions.from_pandas(pd.read_csv(path), user="user", item="item", rating="rating")


def rmse_of(model, test) -> float:
    users = test.user_map.ids[test.user_index]
    items = test.item_map.ids[test.item_index]
    return float(np.sqrt(np.mean((model.predict(users, items) - test.values) ** 2)))


def ml_small(peer_python: str, repeats: int, skip_peer: bool) -> dict:
    """Part 1. Peer and factorkit fits alternate, so both see the same machine load."""
    from factorkit.models.sgd import BiasedMF

    def like_for_like(n_threads):
        return BiasedMF(
            factors=FACTORS, epochs=EPOCHS, learning_rate=LR, regularization=REG,
            init_scale=INIT, learning_rate_decay=1.0, learning_rate_schedule="decay",
            random_state=0, n_threads=n_threads,
        )  # fmt: skip

    with tempfile.TemporaryDirectory() as tmp:
        train_csv, test_csv = split_ml_small(Path(tmp))
        train, test = load_csv(train_csv), load_csv(test_csv)
        BiasedMF(epochs=1).fit(train)  # warm-up (compile or cache load)

        def peer() -> dict:
            if skip_peer:
                return {"wall": float("nan"), "cpu": float("nan"), "rmse": 0.873, "version": "-"}
            cmd = [peer_python, __file__, "--surprise-worker", train_csv, test_csv]
            return subprocess_json(cmd)

        first = peer()
        target = first["rmse"]
        # factorkit's defaults: the first epoch whose test RMSE reaches Surprise's
        tuned = BiasedMF(random_state=0).fit(train, validation=test)
        hist = tuned.history_
        reached = hist["epoch"][hist["val_rmse"] <= target]
        reach = int(reached.iloc[0]) if len(reached) else len(hist)
        runs: dict = {"surprise": []}
        for rep in range(repeats):
            runs["surprise"].append(first if rep == 0 else peer())
            for t in (1, 2):
                fits = {
                    "same": like_for_like(t),
                    "default": BiasedMF(random_state=0, n_threads=t),
                    "reach": BiasedMF(epochs=reach, random_state=0, n_threads=t),
                }
                for name, model in fits.items():
                    runs.setdefault((name, t), []).append(timed(lambda m=model: m.fit(train)))
        return {
            "surprise_wall": statistics.median(r["wall"] for r in runs["surprise"]),
            "surprise_cpu": statistics.median(r["cpu"] for r in runs["surprise"]),
            "surprise_rmse": target,
            "version": first["version"],
            "same_rmse": rmse_of(like_for_like(1).fit(train), test),
            "default_rmse": float(hist["val_rmse"].iloc[-1]),
            "default_epochs": len(hist),
            "reach_epochs": reach,
            "reach_rmse": float(hist["val_rmse"].iloc[reach - 1]),
            "fits": {
                key: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v))
                for key, v in runs.items()
                if key != "surprise"
            },
        }


def synthetic(n: int, seed: int = 0):
    """``n`` distinct (user, item) ratings, skewed activity and popularity, 0.5..5.

    Cached under ``bench/data/`` (deduplicating 10M keys takes a while on a busy machine).
    """
    from factorkit.data.idmap import IdMap
    from factorkit.data.interactions import Interactions

    n_users, n_items = max(10, n // 60), max(10, int(6 * n**0.5))
    cache = HERE / "data" / f"sgd_synthetic_{n}_{seed}.npz"
    if cache.exists():
        with np.load(cache) as f:
            u, i, r = f["u"], f["i"], f["r"]
    else:
        rng = np.random.default_rng(seed)
        uw = rng.lognormal(0.0, 1.0, n_users)
        ucdf = np.cumsum(uw / uw.sum())
        icdf = np.cumsum(rng.permutation(1.0 / np.arange(1, n_items + 1) ** 0.8))
        icdf /= icdf[-1]
        keys = np.empty(0, dtype=np.int64)
        while len(keys) < n:
            m = int((n - len(keys)) * 1.1) + 1000
            u = np.minimum(np.searchsorted(ucdf, rng.random(m)), n_users - 1)
            i = np.minimum(np.searchsorted(icdf, rng.random(m)), n_items - 1)
            keys = np.unique(np.concatenate([keys, u.astype(np.int64) * n_items + i]))
        keys = np.sort(rng.choice(keys, n, replace=False))
        u, i = (keys // n_items).astype(np.int32), (keys % n_items).astype(np.int32)
        r = np.clip(np.round(rng.normal(3.5, 1.0, n) * 2) / 2, 0.5, 5.0).astype(np.float32)
        cache.parent.mkdir(exist_ok=True)
        np.savez(cache, u=u, i=i, r=r)
    return Interactions(
        u, i, r, IdMap(np.arange(n_users), "user"), IdMap(np.arange(n_items), "item")
    ).compact()


def throughput(data, k: int, n_threads: int, epochs: int, repeats: int) -> dict:
    """Updates/s of one epoch: per fit the median epoch, then the median over fits.

    Also updates per CPU-second (this process, all threads): a contention-robust measure
    of the kernel's per-thread speed, from the CPU time between consecutive epochs.
    """
    from factorkit.models.sgd import BiasedMF

    BiasedMF(factors=k, epochs=1).fit(data.take(np.arange(1000)))  # warm-up
    epoch_medians, cpu_medians, fit_times = [], [], []
    for run in range(repeats):
        cpu: list[float] = []
        model = BiasedMF(
            factors=k, epochs=epochs, random_state=run, n_threads=n_threads,
            callbacks=lambda record, c=cpu: c.append(time.process_time()),
        )  # fmt: skip
        fit_times.append(timed(lambda m=model: m.fit(data))[0])
        elapsed = model.history_["elapsed"].to_numpy()
        epoch_medians.append(float(np.median(np.diff(elapsed))))
        cpu_medians.append(float(np.median(np.diff(cpu))))
    epoch = statistics.median(epoch_medians)
    return {
        "epoch_time": epoch,
        "updates_per_s": len(data) / epoch,
        "updates_per_cpu_s": len(data) / statistics.median(cpu_medians),
        "fit_time": statistics.median(fit_times),
    }


# ---------------------------------------------------------------------- main
def report_ml_small(args) -> None:
    res = ml_small(args.peer_python, args.repeats, args.skip_peer)
    s_wall, s_cpu, s_rmse = res["surprise_wall"], res["surprise_cpu"], res["surprise_rmse"]
    fits = res["fits"]
    print("## MovieLens latest-small, 80/20 split: BiasedMF vs Surprise SVD\n")
    print(f"Like for like: {FACTORS} factors, {EPOCHS} epochs, lr {LR}, reg {REG}, "
          f"init std {INIT}, constant learning rate (Surprise {res['version']}). "
          f"Medians of {args.repeats} alternating runs.\n")  # fmt: skip
    print("| library | threads | fit wall (s) | fit CPU (s) | Surprise / this, wall | "
          "Surprise / this, CPU | test RMSE |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|")
    print(f"| Surprise SVD | 1 | {s_wall:.3f} | {s_cpu:.3f} | 1.0 | 1.0 | {s_rmse:.4f} |")
    for t in (1, 2):
        w, c = fits[("same", t)]
        print(f"| factorkit BiasedMF | {t} | {w:.3f} | {c:.3f} | {s_wall / w:.1f}x | "
              f"{s_cpu / c:.1f}x | {res['same_rmse']:.4f} |")  # fmt: skip
    print(f"\nTime to reach Surprise SVD's test RMSE ({s_rmse:.4f}) with factorkit's defaults: "
          f"the first epoch at or below it is epoch {res['reach_epochs']} (RMSE "
          f"{res['reach_rmse']:.4f}); fit time of just those epochs:\n")  # fmt: skip
    n_all = res["default_epochs"]
    print("| threads | fit wall (s) | Surprise / this, wall | fit CPU (s) | "
          f"Surprise / this, CPU | all {n_all} epochs: wall (s), RMSE |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---|")
    for t in (1, 2):
        w, c = fits[("reach", t)]
        dw, _ = fits[("default", t)]
        print(f"| {t} | {w:.3f} | {s_wall / w:.0f}x | {c:.3f} | {s_cpu / c:.0f}x | "
              f"{dw:.3f}, {res['default_rmse']:.4f} |")  # fmt: skip
    print(
        "\n(CPU time is the fitting process's own, so it is robust to other load on the "
        "machine. Surprise is single-threaded; factorkit uses every core by default.)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--peer-python", default=PEER_PYTHON)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--n", type=int, default=10_000_000, help="synthetic ratings (part 2)")
    ap.add_argument("--k", type=int, default=64, help="factors for part 2")
    ap.add_argument("--epochs", type=int, default=6, help="epochs per fit in part 2")
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--skip-ml-small", action="store_true")
    ap.add_argument("--skip-peer", action="store_true")
    ap.add_argument("--compile-worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--surprise-worker", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.compile_worker:
        print(json.dumps(compile_worker()))
        return
    if args.surprise_worker:
        print(json.dumps(surprise_worker(*args.surprise_worker)))
        return

    from factorkit._threads import resolve_threads

    command = " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv])
    print(f"command: `{command}`\n")
    print(f"cores: {os.cpu_count()}, factorkit threads available: {resolve_threads(None)}, "
          f"load average before: {os.getloadavg()[0]:.2f}\n")  # fmt: skip
    cold, warm = compile_times()
    print(f"numba compile (empty cache, first fit): {cold:.2f} s; cached load: {warm:.2f} s\n")

    if not args.skip_ml_small:
        report_ml_small(args)
    if args.skip_throughput:
        return
    start = time.perf_counter()
    data = synthetic(args.n)
    made = time.perf_counter() - start
    print(f"\n## Throughput: synthetic {len(data):,} ratings ({data.n_users:,} users x "
          f"{data.n_items:,} items, loaded/built in {made:.1f} s), k={args.k}\n")  # fmt: skip
    print("| threads | epoch wall (s) | updates/s (M) | per thread (M) | updates per "
          f"CPU-second (M) | fit wall, {args.epochs} epochs (s) |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|")
    for t in (1, 2):
        r = throughput(data, args.k, t, args.epochs, args.repeats)
        print(f"| {t} | {r['epoch_time']:.3f} | {r['updates_per_s'] / 1e6:.1f} | "
              f"{r['updates_per_s'] / 1e6 / t:.1f} | {r['updates_per_cpu_s'] / 1e6:.1f} | "
              f"{r['fit_time']:.2f} |")  # fmt: skip
    print("\n(Epoch times exclude the one-off layout; the first epoch is left out of the "
          "medians.)")  # fmt: skip
    print(f"\nload average after: {os.getloadavg()[0]:.2f} (other work on the machine slows "
          "both sides; figures are medians)")  # fmt: skip


if __name__ == "__main__":
    main()
