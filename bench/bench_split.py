"""Benchmark: synthetic data generation and every split at MovieLens-25M scale.

Times, as the median over ``--repeats`` runs (wall clock, with the process CPU time next
to it, since a shared machine inflates wall time):

* ``make_ratings`` and ``make_implicit`` at ``--n`` interactions, ml-25m shaped
  (162,541 users x 59,047 items at 25M; users scale with ``n``, items with ``sqrt(n)``);
* on the generated ratings (with timestamps): ``split.random``, ``split.per_user``,
  ``split.temporal`` (by ``test_size`` and by ``cutoff``), ``split.leave_last``, and all
  folds of ``split.kfold`` and ``split.user_kfold`` (k=5, each fold materialised).

Prints a markdown table. No peer is timed: no peer library generates data or splits
25M interactions in comparable ways (Surprise and LensKit split in Python per user).

Usage::

    python bench/bench_split.py               # 25M, 3 repeats
    python bench/bench_split.py --n 1000000 --repeats 5
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import time

import numpy as np

from factorkit import split
from factorkit.data.synthetic import make_implicit, make_ratings

N_USERS_25M = 162_541
N_ITEMS_25M = 59_047
N_25M = 25_000_000


def shape_for(n: int) -> tuple[int, int]:
    n_users = max(1, round(N_USERS_25M * n / N_25M))
    n_items = max(1, min(N_ITEMS_25M, round(N_ITEMS_25M * (n / N_25M) ** 0.5)))
    while n_users * n_items < 2 * n:
        n_users *= 2
    return n_users, n_items


def measure(fn, repeats: int) -> dict:
    """Median wall and CPU seconds of ``fn()`` (its result is dropped before the next run)."""
    walls, cpus = [], []
    for _ in range(repeats):
        gc.collect()
        w0, c0 = time.perf_counter(), time.process_time()
        result = fn()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
        del result
    return {"wall": statistics.median(walls), "cpu": statistics.median(cpus), "walls": walls}


def consume(folds) -> int:
    """Materialise every (train, test) fold; return the total test size."""
    total = 0
    for _train, test in folds:
        total += len(test)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=N_25M, help="interactions (default 25M)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    n, repeats = args.n, args.repeats
    n_users, n_items = shape_for(n)
    load0 = os.getloadavg()

    rows = []

    def run(name: str, fn, note: str = "") -> None:
        m = measure(fn, repeats)
        rows.append((name, m, note))
        print(
            f"  {name:34s} wall {m['wall']:6.2f}s  cpu {m['cpu']:6.2f}s  "
            f"runs {', '.join(f'{w:.2f}' for w in m['walls'])}",
            flush=True,
        )

    print(f"n={n:,} ({n_users:,} users x {n_items:,} items), median of {repeats}", flush=True)
    run(
        "make_ratings",
        lambda: make_ratings(n_users, n_items, n, random_state=args.seed),
        "ratings 1-5 step 0.5, timestamps",
    )
    run(
        "make_implicit",
        lambda: make_implicit(n_users, n_items, n, random_state=args.seed),
        "values 1.0, timestamps",
    )
    data, _ = make_ratings(n_users, n_items, n, random_state=args.seed)
    cut = int(np.median(data.timestamps))
    run("split.random(test_size=0.2)", lambda: split.random(data, random_state=0))
    run("split.per_user(test_size=0.2)", lambda: split.per_user(data, random_state=0))
    run("split.per_user(test_size=5)", lambda: split.per_user(data, 5, random_state=0))
    run("split.temporal(test_size=0.2)", lambda: split.temporal(data))
    run("split.temporal(cutoff=median)", lambda: split.temporal(data, cutoff=cut))
    run("split.leave_last(n=1)", lambda: split.leave_last(data))
    run(
        "split.kfold(k=5), all folds",
        lambda: consume(split.kfold(data, k=5, random_state=0)),
        "5 train/test pairs",
    )
    run(
        "split.user_kfold(k=5), all folds",
        lambda: consume(split.user_kfold(data, k=5, random_state=0)),
        "5 train/test pairs",
    )
    load1 = os.getloadavg()

    print()
    print(
        f"{n:,} interactions ({n_users:,} users x {n_items:,} items); median of {repeats} "
        f"runs; {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"numpy {np.__version__}; load average {load0[0]:.1f} at start, {load1[0]:.1f} at end"
    )
    print()
    print("| operation | wall (s) | CPU (s) | M interactions / s (wall) | note |")
    print("|---|---:|---:|---:|---|")
    for name, m, note in rows:
        rate = n / m["wall"] / 1e6
        print(f"| `{name}` | {m['wall']:.2f} | {m['cpu']:.2f} | {rate:.1f} | {note} |")


if __name__ == "__main__":
    main()
