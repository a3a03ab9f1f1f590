"""Benchmark fk.distributed: seconds per epoch on a Dask LocalCluster against one process on
the same cores, and the bytes of factors sent per epoch.

Run from the repository root (needs the ``dask`` extra):

    python bench/bench_distributed.py                      # 25M synthetic ratings, 2 workers
    python bench/bench_distributed.py --ratings 2000000    # smaller
    python bench/bench_distributed.py --quick              # MovieLens small

The synthetic ratings are written to a Parquet dataset (one file per 1M ratings) in a
temporary directory and read by the workers with ``fk.distributed.read_parquet``: the
client never holds the interactions. The one-process baseline reads the same data into
``fk.Interactions`` and fits with ``n_threads`` equal to the number of workers (each
worker has one thread and one numba thread: the same cores). Seconds per epoch are the
median over epochs after the first (the first includes loading compiled kernels);
Every model is fitted ``--repeats`` times in each configuration, interleaved (one
process, Dask with ``exchange="broadcast"``, Dask with ``exchange="routed"``, then again),
so load from other jobs on a shared machine falls on all three alike; the table gives
medians and the load average. Communication per epoch, from ``history_``: ``client->``
the factor bytes the client sends to the workers (each broadcast copy counted),
``w<->w`` the bytes of routed out-blocks moved between different workers, ``->client``
the solved factors the client gathers.

Spark ALS is compared in ``bench/bench_spark.py`` (its own environment, never the test one).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time

import numpy as np
import pandas as pd

import factorkit as fk


def synthetic(n_ratings: int, seed: int = 0) -> pd.DataFrame:
    """Ratings 1..5 from a rank-10 model on Zipf-skewed users and items (as bench_als)."""
    rng = np.random.default_rng(seed)
    n_users = max(1000, n_ratings // 50)
    n_items = max(500, n_ratings // 400)
    rank = 10
    pu = 1.0 / np.arange(1, n_users + 1) ** 0.6
    pi = 1.0 / np.arange(1, n_items + 1) ** 0.9
    m = int(n_ratings * 1.15)
    u = rng.choice(n_users, m, p=pu / pu.sum())
    i = rng.choice(n_items, m, p=pi / pi.sum())
    key = np.unique(u.astype(np.int64) * n_items + i)
    key = rng.permutation(key)[:n_ratings]
    u, i = key // n_items, key % n_items
    p = rng.standard_normal((n_users, rank)).astype(np.float32) / np.sqrt(rank)
    q = rng.standard_normal((n_items, rank)).astype(np.float32)
    r = 3.5 + np.einsum("ij,ij->i", p[u], q[i]) + rng.standard_normal(len(u)) * 0.5
    return pd.DataFrame(
        {"user": u, "item": i, "rating": np.clip(np.round(r), 1, 5).astype(np.float32)}
    )


def write_parquet(df: pd.DataFrame, root: str, rows_per_file: int = 1_000_000) -> str:
    path = os.path.join(root, "ratings")
    os.makedirs(path)
    for j, lo in enumerate(range(0, len(df), rows_per_file)):
        df.iloc[lo : lo + rows_per_file].to_parquet(
            os.path.join(path, f"part-{j:04d}.parquet"), index=False
        )
    return path


def per_epoch(history: pd.DataFrame) -> float:
    if "epoch_seconds" in history:
        secs = history["epoch_seconds"].to_numpy()
    else:
        secs = np.diff(np.concatenate([[0.0], history["elapsed"].to_numpy()]))
    return statistics.median(secs[1:]) if len(secs) > 1 else float(secs[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ratings", type=int, default=25_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--factors", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="MovieLens small only")
    parser.add_argument("--models", default="als,ials", help="comma list: als, ials, dsgd")
    parser.add_argument("--exchange", default="both", help="broadcast, routed or both")
    parser.add_argument("--repeats", type=int, default=2, help="interleaved fits per setup")
    args = parser.parse_args()

    from distributed import Client, LocalCluster
    from factorkit import distributed as fkd

    w = args.workers
    with tempfile.TemporaryDirectory() as root:
        t0 = time.perf_counter()
        if args.quick:
            df = fk.datasets.load_movielens_small().to_pandas()[["user", "item", "rating"]]
            name = "MovieLens small"
        else:
            df = synthetic(args.ratings)
            name = f"synthetic {args.ratings / 1e6:g}M"
        path = write_parquet(df, root)
        local_data = fk.Interactions.from_pandas(df, "user", "item", "rating")
        del df
        print(f"# {name}: {local_data!r} (prepared in {time.perf_counter() - t0:.1f} s)")
        print(
            f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
            f"{w} workers x 1 thread vs 1 process x {w} threads, k={args.factors}"
        )
        cluster = LocalCluster(
            n_workers=w,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            env={"NUMBA_NUM_THREADS": "1"},
        )
        client = Client(cluster)
        t0 = time.perf_counter()
        ddata = fkd.read_parquet(path, "user", "item", "rating", client=client)
        build = time.perf_counter() - t0
        print(f"# {ddata!r}; built on the workers in {build:.1f} s (load {os.getloadavg()})")
        print(
            "| model | data | one process s/epoch | exchange | Dask s/epoch | ratio | "
            "client-> MiB/epoch | w<->w MiB/epoch | ->client MiB/epoch | worker task s/epoch |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|")
        k = args.factors
        models = {
            "als": lambda t: fk.ALS(factors=k, epochs=args.epochs, random_state=0, n_threads=t),
            "ials": lambda t: fk.ImplicitALS(
                factors=k, epochs=args.epochs, random_state=0, n_threads=t
            ),
            "dsgd": lambda t: fk.BiasedMF(
                factors=k, epochs=args.epochs, random_state=0, n_threads=t
            ),
        }
        exchanges = ["broadcast", "routed"] if args.exchange == "both" else [args.exchange]
        mib = 2**20
        for key in args.models.split(","):
            local_s: list[float] = []
            dist: dict[str, list] = {x: [] for x in exchanges}
            for rep in range(args.repeats):
                local = models[key](w).fit(local_data)
                local_s.append(per_epoch(local.history_))
                load = os.getloadavg()[0]
                print(f"# {key} rep {rep}: one process {local_s[-1]:.2f} s/epoch", end="")
                for x in exchanges:
                    fitted = fkd.fit(models[key](1), ddata, exchange=x)
                    h = fitted.history_
                    dist[x].append((per_epoch(h), h))
                    print(f", {x} {dist[x][-1][0]:.2f}", end="")
                print(f" (load {load:.1f})", flush=True)
            a = statistics.median(local_s)
            for x in exchanges:
                b = statistics.median(t for t, _ in dist[x])
                h = dist[x][-1][1]
                last = h.iloc[-1]
                tasks = statistics.median(
                    h["task_seconds"].to_numpy()[1:] if len(h) > 1 else h["task_seconds"]
                )
                print(
                    f"| {type(local).__name__} | {name} | {a:.2f} | {x} | {b:.2f} | {b / a:.2f}x | "
                    f"{last['bytes_sent'] / mib:.1f} | {last['bytes_exchanged'] / mib:.1f} | "
                    f"{last['bytes_received'] / mib:.1f} | {tasks:.2f} |",
                    flush=True,
                )
        print(f"# load average after: {os.getloadavg()}")
        client.close()
        cluster.close()
    print("# Spark ALS: python bench/bench_spark.py", file=sys.stderr)


if __name__ == "__main__":
    main()
