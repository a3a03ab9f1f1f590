"""Benchmark: TimeSVDpp seconds per epoch against SVDpp's on MovieLens latest-small.

Both models train on the full shipped data with the same factors, at 1 and 2 threads;
numba kernels are compiled (or loaded from cache) by a warm-up fit first. Per-epoch time
is the median of the per-epoch differences of ``history_["elapsed"]`` over all epochs of
``--repeats`` fits (so setup is excluded); the fit column is the median whole ``fit``.
The two models' fits alternate, and the ratio is the median over repeats of the ratio
within one repeat (both models under the same machine load).

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


def epoch_times(model) -> np.ndarray:
    """Seconds of each epoch after the first (the first includes setup)."""
    elapsed = model.history_["elapsed"].to_numpy()
    return np.diff(elapsed)


def measure(makers: dict, data, repeats: int) -> dict:
    """Alternate the models' fits (so both see the same machine load); per model the
    median epoch and fit times, and the median over repeats of the per-repeat ratio."""
    epochs = {name: [] for name in makers}
    fits = {name: [] for name in makers}
    ratios = []
    for _ in range(repeats):
        medians = {}
        for name, make in makers.items():
            start = time.perf_counter()
            model = make().fit(data)
            fits[name].append(time.perf_counter() - start)
            times = epoch_times(model)
            epochs[name].extend(times)
            medians[name] = np.median(times)
        ratios.append(medians["TimeSVDpp"] / medians["SVDpp"])
    return {
        name: (
            float(np.median(epochs[name])),
            float(np.median(fits[name])),
            float(np.median(ratios)),
        )
        for name in makers
    }


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
        result = measure(makers, data, args.repeats)
        for name, (epoch, fit, ratio) in result.items():
            rows.append((threads, name, epoch, fit, ratio if name == "TimeSVDpp" else 1.0))
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    print("| threads | model | s / epoch (median) | fit s (median) | x SVDpp per epoch (median) |")
    print("|---:|---|---:|---:|---:|")
    for threads, name, epoch, fit, ratio in rows:
        print(f"| {threads} | {name} | {epoch:.4f} | {fit:.2f} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
