"""Peak memory of ImplicitALS / ALS / BiasedMF fits against implicit's ALS (issue 11 item 5).

Run from the repository root with factorkit's environment; implicit runs in the peer
environment (``bench/peers.py``). Every configuration runs in a fresh process:

    python bench/bench_memory.py                       # 25M ratings, k=64, 2 iterations
    python bench/bench_memory.py --n 10_000_000 --models ImplicitALS,implicit

Data: synthetic COO arrays (int32 user ids, int32 item ids, float32 ratings 0.5..5 in
half steps, no repeated pair, rows in random order) generated once, seeded, and saved as
``.npy`` in ``bench/data/`` (gitignored). Each worker process:

1. imports its library and fits a tiny data set (so compiled kernels are loaded, from
   numba's on-disk cache for factorkit; the warm-up runs once in a throw-away process
   first, so no process here compiles), then records its RSS as ``base``;
2. loads the three arrays (``np.load``) and builds its own structure from them:
   ``fk.Interactions.from_arrays(users, items, values)`` or, for implicit,
   ``scipy.sparse.csr_matrix((values, (users, items)))``; deletes the raw arrays;
3. resets the kernel's peak-RSS mark (``/proc/self/clear_refs``), fits ``factors=k`` for
   ``--iterations`` iterations, and records the peak again.

Reported per configuration: ``peak`` (the process's high-water RSS over all of it,
``VmHWM``, the figure a user's machine has to hold), ``build`` (the high-water during
loading and building), ``fit`` (the high-water during fit), each also as bytes per
interaction above ``base``; and the bytes of the main arrays alive after fit, counted
from the objects (distinct buffers only, no tracemalloc).

implicit's ``AlternatingLeastSquares(alpha=a)`` weighs an interaction ``a * r``, the same
model as ``fk.ImplicitALS(alpha=a - 1)`` on binary data; ``--alpha`` is factorkit's
(default 2.0, its default), implicit gets ``alpha + 1``. With ``alpha + 1 != 1``
implicit keeps a scaled copy of the matrix; ``implicit-a1`` runs implicit with
``alpha=1`` (its default and its cheapest path) for reference.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers import PEER_PYTHON

DATA = Path(__file__).resolve().parent / "data"
MODELS = ("implicit", "implicit-a1", "ImplicitALS", "ALS", "BiasedMF")


# ---------------------------------------------------------------------- data
def data_paths(n: int) -> dict[str, Path]:
    stem = f"memory_{n}"
    return {k: DATA / f"{stem}_{k}.npy" for k in ("users", "items", "values")}


def generate(n: int, seed: int = 0) -> dict[str, Path]:
    """Synthetic ratings with skewed user activity and item popularity, saved once."""
    paths = data_paths(n)
    if all(p.exists() for p in paths.values()):
        return paths
    t = time.perf_counter()
    rng = np.random.default_rng(seed)
    n_users, n_items = max(n // 150, 10), max(n // 400, 10)  # about MovieLens 25M's shape
    user_w = rng.lognormal(0.0, 1.0, n_users)
    item_w = 1.0 / np.arange(1, n_items + 1) ** 0.8
    keys = np.empty(0, dtype=np.int64)
    while len(keys) < n:
        m = int((n - len(keys)) * 1.15) + 1000
        u = rng.choice(n_users, m, p=user_w / user_w.sum()).astype(np.int64)
        i = rng.choice(n_items, m, p=item_w / item_w.sum()).astype(np.int64)
        keys = np.unique(np.concatenate([keys, u * n_items + i]))
    keys = keys[rng.permutation(len(keys))[:n]]  # random row order, n distinct pairs
    DATA.mkdir(exist_ok=True)
    np.save(paths["users"], (keys // n_items).astype(np.int32))
    np.save(paths["items"], (keys % n_items).astype(np.int32))
    np.save(paths["values"], (rng.integers(1, 11, n) / 2).astype(np.float32))
    print(f"generated {n:,} ratings in {time.perf_counter() - t:.0f}s", file=sys.stderr)
    return paths


# ---------------------------------------------------------------------- measuring
def _status(field: str) -> int:
    """A ``/proc/self/status`` field in bytes (VmRSS, VmHWM)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)


def array_bytes(*objects) -> int:
    """Bytes of the distinct NumPy buffers reachable from ``objects`` (arrays, scipy
    matrices, objects with array attributes, one level deep)."""
    seen: dict[int, int] = {}

    def add(a):
        if isinstance(a, np.ndarray):
            base = a
            while isinstance(base.base, np.ndarray):
                base = base.base
            seen[base.__array_interface__["data"][0]] = max(
                seen.get(base.__array_interface__["data"][0], 0), base.nbytes
            )
        elif _is_sparse(a):
            for x in (a.data, a.indices, a.indptr):
                add(x)

    for obj in objects:
        if isinstance(obj, np.ndarray) or _is_sparse(obj):
            add(obj)
            continue
        attrs = dict(getattr(obj, "__dict__", {}))
        for slot in getattr(type(obj), "__slots__", ()):
            if hasattr(obj, slot) and slot != "__dict__":
                attrs[slot] = getattr(obj, slot)
        for v in attrs.values():
            if isinstance(v, tuple):
                for x in v:
                    add(x)
            else:
                add(v)
    return sum(seen.values())


def _is_sparse(a) -> bool:
    return type(a).__module__.startswith("scipy.sparse")


# ---------------------------------------------------------------------- worker
def _load(paths: dict[str, str]):
    return (np.load(paths["users"]), np.load(paths["items"]), np.load(paths["values"]))


def worker_implicit(args, paths) -> dict:
    import scipy.sparse as sp
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, "blas")  # what implicit asks for; keeps BLAS buffers out
    alpha = 1.0 if args.model == "implicit-a1" else args.alpha + 1.0

    def model(iterations):
        return AlternatingLeastSquares(
            factors=args.factors, iterations=iterations, alpha=alpha, regularization=20.0,
            use_cg=True, num_threads=args.threads, calculate_training_loss=False,
            random_state=0,
        )  # fmt: skip

    tiny = sp.random(200, 100, density=0.05, format="csr", dtype=np.float32, random_state=0)
    model(1).fit(tiny, show_progress=False)
    gc.collect()
    out = {"base": _status("VmRSS")}
    users, items, values = _load(paths)
    n = len(values)
    shape = (int(users.max()) + 1, int(items.max()) + 1)
    matrix = sp.csr_matrix((values, (users, items)), shape=shape)
    del users, items, values
    gc.collect()
    out.update(build_peak=_status("VmHWM"), built=_status("VmRSS"), n=n)
    out["structure_bytes"] = array_bytes(matrix)
    _reset_peak()
    m = model(args.iterations)
    m.fit(matrix, show_progress=False)
    out.update(fit_peak=_status("VmHWM"), after=_status("VmRSS"))
    out["arrays_after_fit"] = array_bytes(matrix, m.user_factors, m.item_factors)
    out["factors_bytes"] = m.user_factors.nbytes + m.item_factors.nbytes
    return out


def worker_factorkit(args, paths) -> dict:
    import factorkit as fk

    def model(epochs):
        common = dict(factors=args.factors, epochs=epochs, n_threads=args.threads, random_state=0)
        if args.model == "ImplicitALS":
            return fk.ImplicitALS(alpha=args.alpha, regularization=20.0, **common)
        if args.model == "ALS":
            return fk.ALS(**common)
        return fk.BiasedMF(**common)

    rng = np.random.default_rng(0)
    tiny = fk.Interactions.from_arrays(
        rng.integers(0, 200, 1000), rng.integers(0, 100, 1000), rng.integers(1, 6, 1000) / 1.0,
        duplicates="last",
    )  # fmt: skip
    model(1).fit(tiny)
    if args.warmup:
        return {}
    del tiny
    gc.collect()
    out = {"base": _status("VmRSS")}
    users, items, values = _load(paths)
    n = len(values)
    data = fk.Interactions.from_arrays(users, items, values)
    del users, items, values
    gc.collect()
    out.update(build_peak=_status("VmHWM"), built=_status("VmRSS"), n=n)
    out["structure_bytes"] = array_bytes(data)
    _reset_peak()
    m = model(args.iterations).fit(data)
    out.update(fit_peak=_status("VmHWM"), after=_status("VmRSS"))
    out["interactions_after_fit"] = array_bytes(data)
    out["arrays_after_fit"] = array_bytes(data, m)
    out["factors_bytes"] = m.user_factors_.nbytes + m.item_factors_.nbytes
    return out


def worker(args) -> None:
    paths = data_paths(args.n)
    fn = worker_implicit if args.model.startswith("implicit") else worker_factorkit
    out = fn(args, {k: str(v) for k, v in paths.items()})
    if args.warmup:
        return
    out["peak"] = max(out["build_peak"], out["fit_peak"])
    print(json.dumps(out))


# ---------------------------------------------------------------------- driver
def run_one(args, model: str, warmup: bool = False) -> dict:
    python = PEER_PYTHON if model.startswith("implicit") else sys.executable
    cmd = [python, __file__, "--worker", "--model", model, "--n", str(args.n)]
    cmd += ["--factors", str(args.factors), "--iterations", str(args.iterations)]
    cmd += ["--threads", str(args.threads), "--alpha", str(args.alpha)]
    cmd += ["--warmup"] if warmup else []
    env = dict(os.environ)
    if model.startswith("implicit"):
        env.pop("PYTHONPATH", None)
    t = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if res.returncode != 0:
        raise RuntimeError(f"{model} failed:\n{res.stderr[-3000:]}")
    if warmup:
        return {}
    out = json.loads(res.stdout.strip().splitlines()[-1])
    out["seconds"] = time.perf_counter() - t
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=lambda s: int(s.replace("_", "")), default=25_000_000)
    p.add_argument("--factors", type=int, default=64)
    p.add_argument("--iterations", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--alpha", type=float, default=2.0)
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--model", help=argparse.SUPPRESS)
    p.add_argument("--warmup", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args)
    generate(args.n)
    models = args.models.split(",")
    print(f"# {platform.node()} n={args.n:,} k={args.factors} iterations={args.iterations}")
    mb = 1 << 20
    print(
        f"{'model':<12} {'peak MiB':>9} {'build':>7} {'fit':>7} {'base':>6} "
        f"{'peak B/nnz':>10} {'fit B/nnz':>9} {'arrays B/nnz':>12} {'factors MiB':>11} {'s':>5}"
    )
    for model in models:  # numba's on-disk cache filled, so no measured process compiles
        if not model.startswith("implicit"):
            run_one(args, model, warmup=True)
    for _ in range(args.repeat):
        for model in models:
            r = run_one(args, model)
            n, base = r["n"], r["base"]
            print(
                f"{model:<12} {r['peak'] / mb:9.0f} {r['build_peak'] / mb:7.0f} "
                f"{r['fit_peak'] / mb:7.0f} {base / mb:6.0f} {(r['peak'] - base) / n:10.1f} "
                f"{(r['fit_peak'] - base) / n:9.1f} "
                f"{(r['arrays_after_fit'] - r['factors_bytes']) / n:12.1f} "
                f"{r['factors_bytes'] / mb:11.0f} {r['seconds']:5.0f}",
                flush=True,
            )
            print("  " + json.dumps(r), file=sys.stderr)
    print(f"# load: {os.getloadavg()}")


if __name__ == "__main__":
    main()
