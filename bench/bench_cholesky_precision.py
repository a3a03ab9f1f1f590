"""ImplicitALS(solver="cholesky"): float64 against float32 factorisation, interleaved.

From ``CHOLESKY_FLOAT32_MIN_FACTORS`` factors on (:mod:`factorkit.kernels.implicit_als`)
each row's system is assembled and factorised in float32. This fits the same model both
ways on MovieLens small's positives (ratings >= 4; the 80/20 per-user split of
``bench_implicit_als.py``), alternating the two in one process, and reports seconds per
iteration (median over iterations 2..n), the final training loss and recall@20 (the same
NumPy code as ``bench_implicit_als.py``), with the load average:

    python bench/bench_cholesky_precision.py --factors 128 256 --iterations 5 --rounds 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_implicit_als import positives_movielens, recall_at

import factorkit as fk
from factorkit.kernels import implicit_als as kernels


def fit(train, factors, iterations, threads, precision):
    # float64: the float32 path's threshold out of reach; float32: at every size here
    kernels.CHOLESKY_FLOAT32_MIN_FACTORS = 10**9 if precision == "float64" else 1

    def make(epochs):
        return fk.ImplicitALS(
            factors=factors, epochs=epochs, alpha=2.0, regularization=20.0,
            solver="cholesky", n_threads=threads, random_state=0,
        )  # fmt: skip

    make(1).fit(train.select_users(train.user_map.ids[:200]))  # load compiled kernels
    return make(iterations).fit(train)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--factors", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    default = kernels.CHOLESKY_FLOAT32_MIN_FACTORS
    train, test = fk.split.per_user(positives_movielens(), test_size=0.2, random_state=0)
    train_csr, test_csr = train.to_csr().tocsr(), test.to_csr().tocsr()
    print("| k | factorisation | s / iteration | final loss | recall@20 | load |")
    print("|---:|---|---:|---:|---:|---:|")
    for r in range(args.rounds):
        for factors in args.factors:
            order = ("float64", "float32") if r % 2 == 0 else ("float32", "float64")
            for precision in order:
                m = fit(train, factors, args.iterations, args.threads, precision)
                elapsed = m.history_["elapsed"].to_numpy()
                per_it = np.diff(np.concatenate([[0.0], elapsed]))[1:]
                u = np.zeros((train.n_users, factors), np.float32)
                i = np.zeros((train.n_items, factors), np.float32)
                u[np.flatnonzero(train.user_counts)] = m.user_factors_
                i[np.flatnonzero(train.item_counts)] = m.item_factors_
                loss = float(m.history_["loss"].to_numpy()[-1])
                rec = recall_at(u, i, train_csr, test_csr)
                print(
                    f"| {factors} | {precision} | {statistics.median(per_it):.4f} | {loss:.9f}"
                    f" | {rec:.4f} | {os.getloadavg()[0]:.1f} |",
                    flush=True,
                )
    kernels.CHOLESKY_FLOAT32_MIN_FACTORS = default


if __name__ == "__main__":
    main()
