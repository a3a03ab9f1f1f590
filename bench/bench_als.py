"""Benchmark fk.ALS: seconds per epoch and achieved GFLOP/s against the float32 GEMM peak.

Run from the repository root:

    python bench/bench_als.py          # MovieLens small + synthetic 10M; k 64, 128; 1, 2 threads
    python bench/bench_als.py --quick  # MovieLens small only

Flop count per epoch (both half-steps), nominal textbook ALS with ``d = k + 1`` unknowns
per row (bias + factors): ``sum_rows (n_r d^2 + d^3 / 3)`` over users and items, i.e. the
Gram's upper triangle (``n d (d+1) / 2`` multiply-adds ~ ``n d^2`` flops) plus a Cholesky
(``d^3 / 3``). The kernel actually executes fewer flops on long-tail rows (``n < d`` use
the ``n x n`` dual system), so "nominal GFLOP/s" is the rate a textbook primal solver
would need to match the time. "Executed GFLOP/s" counts what the kernel does: primal rows
(``n >= d``) build the full square Gram as a GEMM (``2 n d^2``) plus a Cholesky
(``d^3 / 3``); dual rows build ``Y Y^T`` as a GEMM (``2 n^2 k``) plus an ``n x n``
Cholesky (``n^3 / 3``). The peak is the measured float32 GEMM rate of NumPy's
BLAS (4096 x 4096) with the same number of threads.

No popular CPU explicit-rating ALS exists in Python to compare against: ``implicit``'s
ALS is implicit-feedback only (confidence-weighted, no biases), Spark ALS needs a JVM
cluster, and Surprise/LensKit ship SGD or biased-baseline ALS only; so this reports
absolute rates rather than ratios.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits

import factorkit as fk
from factorkit.models.als import ALS


def movielens_small() -> fk.Interactions:
    return fk.datasets.load_movielens_small()


def synthetic(n_ratings: int = 10_000_000, seed: int = 0) -> fk.Interactions:
    """Ratings 1..5 from a rank-10 model on Zipf-skewed users and items (seeded numpy)."""
    rng = np.random.default_rng(seed)
    n_users, n_items, rank = 200_000, 40_000, 10
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
    return fk.Interactions.from_arrays(u, i, np.clip(np.round(r), 1, 5))


def nominal_flops(data: fk.Interactions, k: int) -> float:
    d = k + 1
    total = 0.0
    for counts in (data.user_counts, data.item_counts):
        counts = counts[counts > 0].astype(np.float64)
        total += float(counts.sum()) * d * d + len(counts) * d**3 / 3
    return total


def executed_flops(data: fk.Interactions, k: int) -> float:
    d = k + 1
    total = 0.0
    for counts in (data.user_counts, data.item_counts):
        n = counts[counts > 0].astype(np.float64)
        primal = n >= d
        total += float((2 * n[primal] * d * d + d**3 / 3).sum())
        total += float((2 * n[~primal] ** 2 * k + n[~primal] ** 3 / 3).sum())
    return total


def gemm_peak(n_threads: int, n: int = 4096) -> float:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(np.float32)
    b = rng.standard_normal((n, n)).astype(np.float32)
    with threadpool_limits(limits=n_threads, user_api="blas"):
        a @ b
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            a @ b
            times.append(time.perf_counter() - t0)
    return 2 * n**3 / min(times) / 1e9


def epoch_seconds(data: fk.Interactions, k: int, n_threads: int, epochs: int = 3) -> float:
    """Median over ``epochs`` epochs of one fit (after a warm-up fit that compiles)."""
    ALS(factors=k, epochs=1, random_state=0, n_threads=n_threads).fit(data)
    model = ALS(factors=k, epochs=epochs, random_state=0, n_threads=n_threads).fit(data)
    elapsed = model.history_["elapsed"].to_numpy()
    return statistics.median(np.diff(np.concatenate([[0.0], elapsed])))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="MovieLens small only")
    parser.add_argument("--ratings", type=int, default=10_000_000, help="synthetic size")
    args = parser.parse_args(argv)

    sets = {"MovieLens small": movielens_small()}
    if not args.quick:
        t0 = time.perf_counter()
        sets[f"synthetic {args.ratings / 1e6:g}M"] = synthetic(args.ratings)
        print(f"(synthetic data built in {time.perf_counter() - t0:.1f} s)", file=sys.stderr)
    threads = (1, 2)
    peaks = {t: gemm_peak(t) for t in threads}

    print(f"command: python {' '.join(sys.argv)}")
    print(
        f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}"
    )
    print(
        "float32 GEMM peak (NumPy BLAS, 4096^2): "
        + ", ".join(f"{t} thread(s) {p:.0f} GFLOP/s" for t, p in peaks.items())
    )
    print()
    print(
        "| data | ratings | k | threads | s / epoch | nominal GFLOP/s | executed GFLOP/s "
        "| executed % of GEMM peak |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, data in sets.items():
        for k in (64, 128):
            flops = nominal_flops(data, k)
            done = executed_flops(data, k)
            for t in threads:
                sec = epoch_seconds(data, k, t)
                rate, executed = flops / sec / 1e9, done / sec / 1e9
                print(
                    f"| {name} | {len(data):,} | {k} | {t} | {sec:.3f} | {rate:.1f} | "
                    f"{executed:.1f} | {100 * executed / peaks[t]:.0f}% |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
