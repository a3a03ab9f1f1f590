"""Two source trees against each other, interleaved: first-run compilation and warm fits.

Every sample is a fresh process with ``PYTHONPATH`` set to one tree's ``src``; the trees
alternate (A B, then B A, ...), so load that drifts during the run hits both alike.
Reports CPU seconds next to wall seconds: on a shared machine wall time mostly measures
the scheduler, while CPU time inflates far less.

    # compile: each model's first fit from an empty numba cache (bench_compile.py's child)
    python bench/bench_ab.py compile --a /tmp/base/src --b src --rounds 2 ALS BPR
    # warm: a one-epoch fit to load the kernels, then timed fits; data "ml" (MovieLens
    # small) or "syn" (make_ratings(40_000, 8_000, 2_000_000, rank=10, random_state=0))
    python bench/bench_ab.py warm --a /tmp/base/src --b src --rounds 2 ALS,ml,1,10,2 ALS,syn,2,2,1

A warm config is ``model,data,threads,epochs,timed_fits``; implicit models fit the
ratings >= 4. ``git worktree add /tmp/base <commit>`` gives the base tree.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import bench_compile

WARM_CHILD = r"""
import json, os, sys, time
import numpy as np
import factorkit as fk
model, data_name, threads, epochs, reps, cache = sys.argv[1:7]
threads, epochs, reps = int(threads), int(epochs), int(reps)
if data_name == "ml":
    data = fk.datasets.load_movielens_small()
else:
    z = np.load(cache)
    data = fk.Interactions.from_arrays(z["u"], z["i"], z["r"])
cls = getattr(fk, model)
if not fk.get_tags(cls).explicit:
    data = data.to_implicit(min_value=4.0)
kw = dict(random_state=0, n_threads=threads, epochs=epochs)
cls(**dict(kw, epochs=1)).fit(data)
wall, cpu = [], []
for _ in range(reps):
    c0, t0 = time.process_time(), time.perf_counter()
    cls(**kw).fit(data)
    wall.append(time.perf_counter() - t0)
    cpu.append(time.process_time() - c0)
print(json.dumps({"wall": wall, "cpu": cpu, "load": os.getloadavg()[0]}))
"""


def synthetic(path: Path, tree: str) -> None:
    """The 2M-rating set's raw columns, made once by tree ``tree``."""
    if path.exists():
        return
    code = (
        "import sys, numpy as np, factorkit as fk\n"
        "d, _ = fk.datasets.make_ratings(40_000, 8_000, 2_000_000, rank=10, random_state=0)\n"
        "np.savez(sys.argv[1], u=np.asarray(d.user_map.ids)[d.user_index],"
        " i=np.asarray(d.item_map.ids)[d.item_index], r=np.asarray(d.values, np.float32))\n"
    )
    env = {**os.environ, "PYTHONPATH": tree}
    subprocess.run([sys.executable, "-c", code, str(path)], env=env, check=True)


def warm_sample(tree: str, config: list[str], cache: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": tree}
    proc = subprocess.run(
        [sys.executable, "-c", WARM_CHILD, *config, str(cache)],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(proc.stdout.strip().splitlines()[-1])


def compile_sample(tree: str, model: str) -> dict:
    os.environ["PYTHONPATH"] = tree  # bench_compile's child inherits the environment
    out = bench_compile.measure_model(model)
    return {"wall": [out["fit"]["compile"]], "cpu": [out["fit"]["cpu"]], "load": out["load"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["compile", "warm"])
    parser.add_argument("--a", required=True, help="the first tree's src folder (base)")
    parser.add_argument("--b", required=True, help="the second tree's src folder (new)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("configs", nargs="+", help="models (compile) or warm configs")
    args = parser.parse_args()
    trees = {"a": str(Path(args.a).resolve()), "b": str(Path(args.b).resolve())}
    cache = Path(tempfile.gettempdir()) / "factorkit_bench_ab_syn2m.npz"
    res: dict[tuple[str, str], dict[str, list[float]]] = {}
    for r in range(args.rounds):
        for config in args.configs:
            for label in ("a", "b") if r % 2 == 0 else ("b", "a"):
                if args.what == "compile":
                    out = compile_sample(trees[label], config)
                else:
                    parts = config.split(",")
                    if parts[1] == "syn":
                        synthetic(cache, trees["a"])
                    out = warm_sample(trees[label], parts, cache)
                acc = res.setdefault((config, label), {"wall": [], "cpu": [], "load": []})
                for key in ("wall", "cpu"):
                    acc[key].extend(out[key])
                acc["load"].append(out["load"])
                print(
                    f"{config} {label}: cpu {' '.join(f'{c:.3f}' for c in out['cpu'])}"
                    f"  wall {' '.join(f'{w:.3f}' for w in out['wall'])}  load {out['load']:.1f}",
                    flush=True,
                )
    print("medians: cpu s a, b, b/a | wall s a, b | load")
    for config in args.configs:
        a, b = res[(config, "a")], res[(config, "b")]
        ca, cb = statistics.median(a["cpu"]), statistics.median(b["cpu"])
        wa, wb = statistics.median(a["wall"]), statistics.median(b["wall"])
        loads = a["load"] + b["load"]
        print(
            f"{config:<24} {ca:8.3f} {cb:8.3f} {cb / ca:6.2f} | {wa:8.3f} {wb:8.3f}"
            f" | {min(loads):.1f}-{max(loads):.1f}"
        )


if __name__ == "__main__":
    main()
