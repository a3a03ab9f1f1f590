"""Benchmark fk.ImplicitALS against implicit 0.7.3's AlternatingLeastSquares (CPU).

Run from the repository root with factorkit's environment; the peer runs in its own
environment (``--peer-python``, default /work/benchvenv/bin/python) in a subprocess, on
the same training-matrix file:

    python bench/bench_implicit_als.py                 # MovieLens small + synthetic 20M
    python bench/bench_implicit_als.py --quick         # MovieLens small only
    python bench/bench_implicit_als.py --fold-in       # fold_in latency only

Both libraries minimise the same objective: on binary data factorkit's confidence
``1 + alpha * r`` equals implicit's ``alpha' * r`` with ``alpha' = 1 + alpha``; the
regularisation is the same plain ``lambda |x|^2`` (``regularization_exponent=0``).
Same iterations, factors, threads; BLAS is single-threaded in both (implicit limits it
itself; factorkit runs its Gram under one BLAS thread). Seconds per iteration are the
median of the timed iterations of one fit (after a warm-up fit that compiles/loads the
numba kernels); recall@20 is computed by the same NumPy code from each library's
factors (training items excluded). The synthetic set is generated once by
``fk.datasets.make_implicit`` (seeded) and cached in ``bench/data/`` (gitignored).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from peers import PEER_PYTHON

DATA = Path(__file__).resolve().parent / "data"


# ---------------------------------------------------------------------- peer side
def run_peer(args: argparse.Namespace) -> None:
    """Runs inside the peer environment: fit implicit's ALS, save factors and timings."""
    from implicit.cpu.als import AlternatingLeastSquares

    f = np.load(args.data)
    train = sp.csr_matrix((f["data"], f["indices"], f["indptr"]), shape=tuple(f["shape"]))
    times: list[float] = []

    def cb(iteration, elapsed, loss):
        times.append(elapsed)

    def model():
        return AlternatingLeastSquares(
            factors=args.factors,
            regularization=args.regularization,
            alpha=args.alpha,
            iterations=args.iterations,
            use_cg=bool(args.use_cg),
            num_threads=args.threads,
            random_state=0,
        )

    warm = model()
    warm.iterations = 1
    warm.fit(train[: min(train.shape[0], 2000)], show_progress=False)
    m = model()
    m.fit(train, show_progress=False, callback=cb)
    np.savez(args.out, user=m.user_factors, item=m.item_factors, times=np.array(times))


# ---------------------------------------------------------------------- our side
def positives_movielens():
    import factorkit as fk

    data = fk.datasets.load_movielens_small()
    liked = data.take(data.values >= 4.0)
    return fk.Interactions.from_arrays(
        liked.user_map.to_ids(liked.user_index), liked.item_map.to_ids(liked.item_index)
    )


def synthetic_20m():
    import factorkit as fk

    path = DATA / "implicit_synthetic_20M_0.npz"
    if path.exists():
        f = np.load(path)
        return fk.Interactions.from_arrays(f["users"], f["items"])
    t = time.perf_counter()
    data, _ = fk.datasets.make_implicit(
        n_users=140_000,
        n_items=28_000,
        n_interactions=20_000_000,
        rank=32,
        random_state=0,
        timestamps=False,
    )
    DATA.mkdir(exist_ok=True)
    users = data.user_map.to_ids(data.user_index)
    items = data.item_map.to_ids(data.item_index)
    np.savez(path, users=users, items=items)
    print(f"generated {path.name} in {time.perf_counter() - t:.0f}s", file=sys.stderr)
    return data


def recall_at(user_f, item_f, train_csr, test_csr, k=20, max_users=5000, seed=0):
    """Mean recall@k over test users (a seeded sample of at most max_users)."""
    users = np.flatnonzero(np.diff(test_csr.indptr))
    if len(users) > max_users:
        users = np.sort(np.random.default_rng(seed).choice(users, max_users, replace=False))
    out = []
    for lo in range(0, len(users), 1000):
        u = users[lo : lo + 1000]
        scores = user_f[u].astype(np.float32) @ item_f.T.astype(np.float32)
        seen = train_csr[u]
        scores[np.repeat(np.arange(len(u)), np.diff(seen.indptr)), seen.indices] = -np.inf
        top = np.argpartition(-scores, k, axis=1)[:, :k]
        truth = test_csr[u]
        for r in range(len(u)):
            t = truth.indices[truth.indptr[r] : truth.indptr[r + 1]]
            out.append(np.isin(top[r], t).sum() / len(t))
    return float(np.mean(out))


def ours(train, factors, threads, iterations, solver, alpha, reg):
    from factorkit.models.implicit_als import ImplicitALS

    def make(epochs):
        return ImplicitALS(
            factors=factors,
            epochs=epochs,
            alpha=alpha,
            regularization=reg,
            solver=solver,
            n_threads=threads,
            random_state=0,
        )

    make(1).fit(train.select_users(train.user_map.ids[:200]))  # load compiled kernels
    m = make(iterations).fit(train)
    elapsed = m.history_["elapsed"].to_numpy()
    times = np.diff(np.concatenate([[0.0], elapsed]))
    return m.user_factors_, m.item_factors_, times


def peer(data_file, factors, threads, iterations, use_cg, alpha, reg, python):
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "peer.npz"
        cmd = [
            python, __file__, "--peer", "--data", str(data_file), "--out", str(out),
            "--factors", str(factors), "--threads", str(threads),
            "--iterations", str(iterations), "--use-cg", str(int(use_cg)),
            "--alpha", str(alpha), "--regularization", str(reg),
        ]  # fmt: skip
        env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        subprocess.run(cmd, check=True, env=env)
        f = np.load(out)
        return f["user"], f["item"], f["times"]


def fold_in_latency(n=2000):
    from factorkit.models.implicit_als import ImplicitALS

    model = ImplicitALS(random_state=0).fit(positives_movielens())
    rng = np.random.default_rng(0)
    ids = model.item_map_.ids
    rows = []
    for name in ("fold_in", "recommend_new_user"):
        fn = getattr(model, name)
        times = []
        for t in range(n + 20):
            items = rng.choice(ids, 20, replace=False)
            start = time.perf_counter()
            fn(items)
            if t >= 20:
                times.append(time.perf_counter() - start)
        ms = np.array(times) * 1e3
        rows.append((name, np.median(ms), np.percentile(ms, 99)))
    print("\n### New-user latency (MovieLens small positives, factors 64, 20 items)\n")
    print("| call | median ms | p99 ms |\n|---|---:|---:|")
    for name, med, p99 in rows:
        print(f"| {name} | {med:.3f} | {p99:.3f} |")


def bench(args: argparse.Namespace) -> None:
    import factorkit as fk

    sets = [("MovieLens small (ratings >= 4)", "ml", positives_movielens, args.ml_iterations)]
    if not args.quick:
        sets.append(("synthetic 20M", "synth20m", synthetic_20m, args.synthetic_iterations))
    rows = []
    for name, slug, load, iterations in sets:
        data = load()
        train, test = fk.split.per_user(data, test_size=0.2, random_state=0)
        train_csr = train.to_csr().tocsr()
        test_csr = test.to_csr().tocsr()
        DATA.mkdir(exist_ok=True)
        data_file = DATA / f"implicit_als_train_{slug}.npz"
        np.savez(
            data_file, indptr=train_csr.indptr, indices=train_csr.indices,
            data=train_csr.data, shape=np.array(train_csr.shape),
        )  # fmt: skip
        print(f"{name}: {train!r}", file=sys.stderr)
        for factors in args.factors:
            for threads in args.threads:
                runs = [("factorkit cg", "cg", None), ("implicit cg", None, True)]
                if factors <= args.cholesky_max_factors or name.startswith("MovieLens"):
                    runs += [
                        ("factorkit cholesky", "cholesky", None),
                        ("implicit cholesky", None, False),
                    ]
                for label, solver, use_cg in runs:
                    if solver is not None:
                        u, i, times = ours(
                            train, factors, threads, iterations, solver, args.alpha, args.reg
                        )
                        # our positions are train.compact()'s; map to train's
                        full_u = np.zeros((train.n_users, factors), np.float32)
                        full_i = np.zeros((train.n_items, factors), np.float32)
                        full_u[np.flatnonzero(train.user_counts)] = u
                        full_i[np.flatnonzero(train.item_counts)] = i
                        u, i = full_u, full_i
                    else:
                        u, i, times = peer(
                            data_file, factors, threads, iterations, use_cg,
                            1.0 + args.alpha, args.reg, args.peer_python,
                        )  # fmt: skip
                    rec = recall_at(u, i, train_csr, test_csr)
                    timed = times[1:] if len(times) > 3 else times
                    row = (name, factors, threads, label, statistics.median(timed), rec)
                    rows.append(row)
                    print(json.dumps(row), file=sys.stderr)
    print(f"\n### ImplicitALS vs implicit {args.peer_version} ({platform.processor() or ''})\n")
    print(f"`{' '.join(sys.argv)}`; alpha={args.alpha} (implicit: {1 + args.alpha}), ")
    print(f"regularization={args.reg}; iterations: MovieLens {args.ml_iterations}, ")
    print(f"synthetic {args.synthetic_iterations}; {os.cpu_count()} cores.\n")
    print("| data | k | threads | library / solver | s / iteration | vs implicit | recall@20 |")
    print("|---|---:|---:|---|---:|---:|---:|")
    ref = {(r[0], r[1], r[2], r[3].split()[1]): r[4] for r in rows if r[3].startswith("implicit")}
    for name, k, t, label, sec, rec in rows:
        base = ref.get((name, k, t, label.split()[1]))
        ratio = f"{sec / base:.2f}x" if base else "-"
        print(f"| {name} | {k} | {t} | {label} | {sec:.4f} | {ratio} | {rec:.4f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="MovieLens small only")
    ap.add_argument("--fold-in", action="store_true", help="new-user latency only")
    ap.add_argument("--factors", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--threads", type=int, nargs="+", default=[2, 1])
    ap.add_argument("--ml-iterations", type=int, default=15)
    ap.add_argument("--synthetic-iterations", type=int, default=4)
    ap.add_argument("--cholesky-max-factors", type=int, default=64)
    ap.add_argument("--alpha", type=float, default=2.0)
    ap.add_argument("--reg", type=float, default=20.0)
    ap.add_argument("--peer-python", default=PEER_PYTHON)
    ap.add_argument("--peer-version", default="0.7.3")
    # peer mode
    ap.add_argument("--peer", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--iterations", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--use-cg", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--regularization", type=float, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.peer:
        args.factors, args.threads = args.factors[0], args.threads[0]
        run_peer(args)
    elif args.fold_in:
        fold_in_latency()
    else:
        bench(args)
        fold_in_latency()


if __name__ == "__main__":
    main()
