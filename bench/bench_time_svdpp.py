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

``--compile [SRC ...]`` measures instead the first fit from an empty numba cache, each
run in a fresh process (``NUMBA_CACHE_DIR`` a new folder): the process CPU seconds of
the first fit minus those of a second, warm fit in the same process (compilation; CPU
time, because on a shared machine wall time mostly measures the other tenants) and the
wall seconds of numba's compile events. With source folders (an older commit's
``src``, exported with ``git archive``) the trees alternate run by run, this one first::

    mkdir -p /tmp/old && git archive 369843a src | tar -x -C /tmp/old
    python bench/bench_time_svdpp.py --compile /tmp/old/src --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


_COMPILE_CHILD = r"""
import json, time
from factorkit._compile import compile_time
import factorkit as fk
data = fk.datasets.load_movielens_small()
out = {}
for label in ("cold", "warm"):
    with compile_time() as compiled:
        cpu = time.process_time()
        fk.TimeSVDpp(random_state=0).fit(data)
        cpu = time.process_time() - cpu
    out[label] = {"cpu": cpu, "compile_wall": compiled.seconds}
print(json.dumps(out))
"""


def compile_runs(sources: list[str], repeats: int) -> None:
    """Cold-cache first fits of TimeSVDpp for each source tree, alternating."""
    here = str(Path(__file__).resolve().parents[1] / "src")
    trees = [here, *sources]
    runs: dict[str, list[dict]] = {tree: [] for tree in trees}
    for _ in range(repeats):
        for tree in trees:
            with tempfile.TemporaryDirectory() as cache:
                env = {**os.environ, "NUMBA_CACHE_DIR": cache, "PYTHONPATH": tree}
                proc = subprocess.run(
                    [sys.executable, "-c", _COMPILE_CHILD],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=True,
                )
            runs[tree].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    print(
        "| source | first fit CPU s - warm fit CPU s (median; runs) "
        "| compile events, wall s (median) |"
    )
    print("|---|---|---:|")
    for tree, results in runs.items():
        extra = [r["cold"]["cpu"] - r["warm"]["cpu"] for r in results]
        wall = statistics.median(r["cold"]["compile_wall"] for r in results)
        shown = ", ".join(f"{x:.2f}" for x in extra)
        print(f"| {tree} | {statistics.median(extra):.2f} ({shown}) | {wall:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--factors", type=int, default=50)
    parser.add_argument("--compile", nargs="*", default=None, metavar="SRC")
    args = parser.parse_args()
    if args.compile is not None:
        compile_runs(args.compile, args.repeats)
        return
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
