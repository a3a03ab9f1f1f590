"""Benchmark: TimeSVDpp seconds per epoch against SVDpp's on MovieLens latest-small.

Both models train on the full shipped data with the same factors, at 1 and 2 threads;
numba kernels are compiled (or loaded from cache) by a warm-up fit first. Per-epoch time
is the median of the per-epoch differences of ``history_["elapsed"]`` over all epochs of
``--repeats`` fits (so setup is excluded); the fit column is the median whole ``fit``.

Usage::

    python bench/bench_time_svdpp.py [--repeats 3] [--epochs 10] [--factors 50]

Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

import factorkit as fk


def measure(make, data, repeats: int) -> tuple[float, float]:
    per_epoch, fits = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        model = make().fit(data)
        fits.append(time.perf_counter() - start)
        elapsed = model.history_["elapsed"].to_numpy()
        per_epoch.extend(np.diff(np.concatenate([[0.0], elapsed]))[1:])  # epoch 1 has setup
    return float(np.median(per_epoch)), float(np.median(fits))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--factors", type=int, default=50)
    args = parser.parse_args()
    data = fk.datasets.load_movielens_small()
    rows = []
    for threads in (1, 2):
        common = dict(factors=args.factors, epochs=args.epochs, random_state=0, n_threads=threads)
        makers = {
            "SVDpp": lambda c=common: fk.SVDpp(**c),
            "TimeSVDpp": lambda c=common: fk.TimeSVDpp(**c),
        }
        for make in makers.values():  # warm-up: compile or load the kernels
            make().set_params(epochs=1).fit(data)
        result = {name: measure(make, data, args.repeats) for name, make in makers.items()}
        ratio = result["TimeSVDpp"][0] / result["SVDpp"][0]
        for name, (epoch, fit) in result.items():
            rows.append((threads, name, epoch, fit, ratio if name == "TimeSVDpp" else 1.0))
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    print("| threads | model | s / epoch (median) | fit s (median) | x SVDpp per epoch |")
    print("|---:|---|---:|---:|---:|")
    for threads, name, epoch, fit, ratio in rows:
        print(f"| {threads} | {name} | {epoch:.4f} | {fit:.2f} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
