"""First-run cost: kernel compilation per model and for ``factorkit demo``, cold cache.

Every measurement runs in a fresh Python process whose numba cache directory is empty
(``NUMBA_CACHE_DIR`` pointing at a new temporary folder; numba then caches there, as it
does in its user-wide cache when site-packages is read-only), so each row is what a user
pays on the first call after installing. Compilation is measured with numba's own
``numba:compile`` events (:mod:`factorkit._compile`), apart from the work itself; a second
fit in the same process shows the warm time. Also runs ``factorkit demo`` end to end
from an empty cache and from the warm one.

    python bench/bench_compile.py            # every recommender, the demo
    python bench/bench_compile.py --repeats 3
    python bench/bench_compile.py --models ALS BPR --no-demo

"CPU s" is the compilations' CPU time, which inflates far less than wall time when
other processes compete for the cores; "load" the one-minute load average at the end.
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

CHILD = r"""
import collections, json, os, sys, time
from numba.core import event
from factorkit._compile import compile_time
import factorkit as fk

# top-level compilations per kernel (a kernel compiling the kernels it calls counts once)
# and their CPU seconds (numba compiles on one thread under its global lock, so the
# process's CPU time during a compilation is the compilation's; unlike wall time it
# hardly inflates when other processes compete for the cores)
kernels = collections.Counter()
cpu = collections.Counter()
stack = []
class PerKernel(event.Listener):
    def on_start(self, ev):
        stack.append((time.perf_counter(), time.process_time()))
    def on_end(self, ev):
        t0, c0 = stack.pop()
        if not stack:
            name = ev.data["dispatcher"].py_func.__qualname__
            kernels[name] += time.perf_counter() - t0
            cpu[name] += time.process_time() - c0
event.register("numba:compile", PerKernel())

name = sys.argv[1]
cls = dict(fk.all_estimators())[name]
data = fk.datasets.load_movielens_small()
tags = fk.get_tags(cls)
if not tags.explicit:
    data = data.to_implicit(min_value=4.0)
params = {"random_state": 0} if "random_state" in cls().get_params() else {}
out = {}
for label, call in (
    ("fit", lambda m: m.fit(data)),
    ("recommend", lambda m: m.recommend(data.user_map.ids[:1], k=10)),
    ("recommend_all", lambda m: sum(len(u) for u, _, _ in m.recommend_all(k=10))),
):
    model = out.get("model") or cls(**params)
    with compile_time() as compiled:
        t0 = time.perf_counter()
        call(model)
        total = time.perf_counter() - t0
    out[label] = {"compile": compiled.seconds, "total": total, "cpu": sum(cpu.values())}
    cpu.clear()
    out["model"] = model
t0 = time.perf_counter()
cls(**params).fit(data)
out["fit_warm"] = time.perf_counter() - t0
del out["model"]
out["kernels"] = kernels.most_common(3)
out["load"] = os.getloadavg()[0]
print(json.dumps(out))
"""


def fresh_env(cache: str) -> dict[str, str]:
    return {**os.environ, "NUMBA_CACHE_DIR": cache, "MPLBACKEND": "Agg"}


def measure_model(name: str) -> dict:
    with tempfile.TemporaryDirectory() as cache:
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, name],
            env=fresh_env(cache),
            capture_output=True,
            text=True,
            check=True,
        )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure_demo() -> tuple[float, float]:
    factorkit = Path(sys.executable).parent / "factorkit"
    argv = [str(factorkit)] if factorkit.exists() else [sys.executable, "-m", "factorkit.cli"]
    with tempfile.TemporaryDirectory() as cache:
        times = []
        for _ in range(2):  # cold, then warm from the cache the first run wrote
            t0 = time.perf_counter()
            subprocess.run([*argv, "demo"], env=fresh_env(cache), capture_output=True, check=True)
            times.append(time.perf_counter() - t0)
    return times[0], times[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--models", nargs="*", default=None)
    parser.add_argument("--no-demo", action="store_true", help="skip the demo's timing")
    args = parser.parse_args()

    import factorkit as fk

    names = args.models or [n for n, _ in fk.all_estimators("recommender")]
    print(
        f"cold-cache compilation, MovieLens small, {os.cpu_count()} cores, median of {args.repeats}"
    )
    print(
        f"{'model':<14}{'fit compile s':>15}{'(CPU s)':>9}{'fit work s':>12}{'warm fit s':>12}"
        f"{'rec. compile s':>16}{'rec_all compile s':>19}{'load':>6}"
        "   slowest kernels to compile, s"
    )
    for name in names:
        runs = [measure_model(name) for _ in range(args.repeats)]

        def med(field, runs=runs):
            return statistics.median(field(r) for r in runs)

        print(
            f"{name:<14}{med(lambda r: r['fit']['compile']):>15.2f}"
            f"{med(lambda r: r['fit']['cpu']):>9.2f}"
            f"{med(lambda r: r['fit']['total'] - r['fit']['compile']):>12.2f}"
            f"{med(lambda r: r['fit_warm']):>12.2f}"
            f"{med(lambda r: r['recommend']['compile']):>16.2f}"
            f"{med(lambda r: r['recommend_all']['compile']):>19.2f}"
            f"{med(lambda r: r['load']):>6.1f}"
            f"   {', '.join(f'{n} {t:.1f}' for n, t in runs[0]['kernels'])}",
            flush=True,
        )
    if args.no_demo:
        return
    demos = [measure_demo() for _ in range(args.repeats)]
    cold = statistics.median(d[0] for d in demos)
    warm = statistics.median(d[1] for d in demos)
    print(f"factorkit demo, whole command: cold cache {cold:.1f} s, warm cache {warm:.1f} s")


if __name__ == "__main__":
    main()
