"""Benchmark: ``factorkit tune`` on the shipped MovieLens small, tuned vs default RMSE.

Runs exactly the issue's acceptance command in a fresh subprocess::

    factorkit tune movielens-small --model biased-mf --search random --n-iter 30

(a seeded 80/20 split; random search of 30 settings by 3-fold CV on the 80%; the best
refitted on the 80%, scored on the 20% next to the default model), and prints one
markdown table row: held-out RMSE of the tuned and the default model, wall time and CPU
time of the whole command (the child's user + system time over all its threads), the
core count and the load average, since a shared machine stretches wall time but not CPU
time. Extra arguments are passed to the command (e.g. ``--n-jobs 2`` or ``--halving``).

Usage::

    python bench/bench_tune.py
    python bench/bench_tune.py --n-jobs -1
"""

from __future__ import annotations

import os
import re
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path

COMMAND = [
    "tune",
    "movielens-small",
    "--model",
    "biased-mf",
    "--search",
    "random",
    "--n-iter",
    "30",
]


def factorkit_command() -> list[str]:
    exe = Path(sys.executable).with_name("factorkit")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "factorkit.cli"]


def main(extra: list[str]) -> int:
    args = [*COMMAND, *extra, "-q"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.run(
        [*factorkit_command(), *args], capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        return proc.returncode
    sys.stderr.write(proc.stdout)
    tuned = float(re.search(r"^\s+tuned\s+([0-9.]+)", proc.stdout, re.M).group(1))
    default = float(re.search(r"^\s+defaults\s+([0-9.]+)", proc.stdout, re.M).group(1))
    command = "factorkit " + shlex.join(args[:-1])
    print(
        "| command | tuned RMSE | default RMSE | wall s | CPU s | cores | load |\n"
        "|---|---|---|---|---|---|---|\n"
        f"| `{command}` | {tuned:.4f} | {default:.4f} | {wall:.1f} | {cpu:.1f} | "
        f"{os.cpu_count()} | {load:.1f} |"
    )
    return 0 if tuned < default else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
