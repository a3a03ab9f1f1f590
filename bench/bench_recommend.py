"""Benchmark: top-N for every user, factorkit against implicit 0.7.3's batched recommend.

Both libraries rank the same factors (an ``fk.ImplicitALS`` fitted for a few iterations,
handed to implicit's ``AlternatingLeastSquares`` as its ``user_factors`` /
``item_factors``) and exclude each user's training items:

* factorkit: ``model.recommend(all_users, k=20)`` (one call, 2-D result) and
  ``model.recommend_all(k=20)`` (streamed in blocks);
* implicit: ``model.recommend(all_userids, user_items, N=20,
  filter_already_liked_items=True)``, run in its own virtual environment
  (``bench/.peers``, see ``bench/setup_peers.sh``) on the same files.

Reported: users per second (median of ``--repeats`` calls after a warm-up call), on 1
and 2 threads, and the share of top-20 lists that agree item for item (ties aside).

Usage::

    python bench/bench_recommend.py
    python bench/bench_recommend.py --datasets ml --repeats 5
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
import scipy.sparse as sp
from peers import PEER_PYTHON

K = 20


# ---------------------------------------------------------------------- peer side
def run_peer(args: argparse.Namespace) -> None:
    """Runs inside the peer environment: time implicit's batched recommend."""
    from implicit.cpu.als import AlternatingLeastSquares

    f = np.load(args.data)
    train = sp.csr_matrix((f["data"], f["indices"], f["indptr"]), shape=tuple(f["shape"]))
    model = AlternatingLeastSquares(factors=f["user"].shape[1], num_threads=args.threads[0])
    model.user_factors = np.ascontiguousarray(f["user"], dtype=np.float32)
    model.item_factors = np.ascontiguousarray(f["item"], dtype=np.float32)
    users = np.arange(train.shape[0])
    times = []
    for rep in range(args.repeats + 1):
        start = time.perf_counter()
        ids, _ = model.recommend(users, train, N=K, filter_already_liked_items=True)
        if rep:
            times.append(time.perf_counter() - start)
    np.savez(args.out, ids=ids, times=np.array(times))


# ---------------------------------------------------------------------- our side
def load(name: str):
    from bench_implicit_als import positives_movielens, synthetic_20m

    return positives_movielens() if name == "ml" else synthetic_20m()


def bench(args: argparse.Namespace) -> None:
    import factorkit as fk

    rows = []
    for name in args.datasets:
        data = load(name)
        model = fk.ImplicitALS(factors=args.factors, epochs=3, random_state=0).fit(data)
        train = data  # every user of the fit; positions are the model's
        users = model.user_map_.ids
        # the training matrix in the model's positions, for implicit
        csr = sp.csr_matrix(
            (
                np.ones(len(train), np.float32),
                (
                    model.user_map_.to_index(train.user_map.to_ids(train.user_index)),
                    model.item_map_.to_index(train.item_map.to_ids(train.item_index)),
                ),
            ),
            shape=(len(model.user_map_), len(model.item_map_)),
        )
        label = "MovieLens small (ratings >= 4)" if name == "ml" else "synthetic 20M"
        print(f"{label}: {len(users):,} users x {csr.shape[1]:,} items", file=sys.stderr)
        with tempfile.TemporaryDirectory() as tmp:
            data_file = Path(tmp) / "data.npz"
            np.savez(
                data_file, indptr=csr.indptr, indices=csr.indices, data=csr.data,
                shape=np.array(csr.shape), user=model.user_factors_, item=model.item_factors_,
            )  # fmt: skip
            for threads in args.threads:
                model.set_params(n_threads=threads)
                model.recommend(users[:100], k=K)  # load the kernels
                times = []
                for _ in range(args.repeats):
                    start = time.perf_counter()
                    ours, _ = model.recommend(users, k=K)
                    times.append(time.perf_counter() - start)
                streamed = []
                for _ in range(args.repeats):
                    start = time.perf_counter()
                    for _block in model.recommend_all(k=K):
                        pass
                    streamed.append(time.perf_counter() - start)
                out = Path(tmp) / "peer.npz"
                cmd = [
                    args.peer_python, __file__, "--peer", "--data", str(data_file),
                    "--out", str(out), "--threads", str(threads),
                    "--repeats", str(args.repeats),
                ]  # fmt: skip
                env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
                subprocess.run(cmd, check=True, env=env)
                peer = np.load(out)
                ours_pos = model.item_map_.to_index(ours.reshape(-1)).reshape(ours.shape)
                agree = float(np.mean(np.all(ours_pos == peer["ids"], axis=1)))
                n = len(users)
                row = {
                    "data": label,
                    "threads": threads,
                    "factorkit": n / statistics.median(times),
                    "factorkit_stream": n / statistics.median(streamed),
                    "implicit": n / statistics.median(peer["times"]),
                    "agree": agree,
                }
                rows.append(row)
                print(json.dumps(row), file=sys.stderr)
    print(f"\n`{' '.join(sys.argv)}`; top-{K}, factors {args.factors}, training items "
          f"excluded; users/s, median of {args.repeats}; {os.cpu_count()} cores.\n")  # fmt: skip
    print("| data | threads | factorkit `recommend` users/s | factorkit `recommend_all` users/s "
          "| implicit users/s | factorkit / implicit | identical top-20 lists |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['data']} | {r['threads']} | {r['factorkit']:,.0f} | "
              f"{r['factorkit_stream']:,.0f} | {r['implicit']:,.0f} | "
              f"{r['factorkit'] / r['implicit']:.2f}x | {r['agree']:.1%} |")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", nargs="+", default=["ml", "synthetic"])
    ap.add_argument("--factors", type=int, default=64)
    ap.add_argument("--threads", type=int, nargs="+", default=[2, 1])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--peer-python", default=PEER_PYTHON)
    ap.add_argument("--peer", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.peer:
        run_peer(args)
    else:
        bench(args)


if __name__ == "__main__":
    main()
