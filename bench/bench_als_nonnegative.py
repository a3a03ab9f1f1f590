"""Benchmark ``fk.ALS(nonnegative=True)`` against the unconstrained fit on MovieLens small.

Run from the repository root:

    python bench/bench_als_nonnegative.py

80/20 split (``fk.split.random(data, test_size=0.2, random_state=0)``), ``factors=50``,
10 epochs, ``random_state=0``, 2 threads. Prints, per variant, the median fit seconds
over ``--repeats`` fits after a warm-up fit (so compilation is excluded), the test RMSE,
and the share of factor entries that are exactly 0; then each half-step's kernel time
(``als_solve_rows`` on the fitted model's users and items, median of ``--repeats``).
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np

import factorkit as fk
from factorkit._threads import using_threads
from factorkit.kernels.als import als_solve_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    warnings.simplefilter("ignore", fk.exceptions.DataWarning)
    data = fk.datasets.load_movielens_small()
    train, test = fk.split.random(data, test_size=0.2, random_state=0)
    train = train.compact()
    params = {"factors": 50, "epochs": 10, "random_state": 0, "n_threads": 2}
    print("| variant | fit s (10 epochs) | RMSE | zero factor entries | users s | items s |")
    print("|---|---:|---:|---:|---:|---:|")
    for nonneg in (False, True):
        fk.ALS(nonnegative=nonneg, **{**params, "epochs": 1}).fit(train)  # compile
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            model = fk.ALS(nonnegative=nonneg, **params).fit(train)
            times.append(time.perf_counter() - start)
        rmse = fk.evaluate(model, test, metrics=["rmse"])["rmse"]
        zeros = float(np.mean(np.concatenate([model.user_factors_, model.item_factors_]) == 0))
        half = {}
        for side, csr, fixed_f, fixed_b, own_f, own_b in (
            ("users", train.to_csr(), model.item_factors_, model.item_bias_,
             model.user_factors_, model.user_bias_),
            ("items", train.to_csc(), model.user_factors_, model.user_bias_,
             model.item_factors_, model.item_bias_),
        ):  # fmt: skip
            ptr, idx = csr.indptr.astype(np.int64), csr.indices.astype(np.int32)
            val = csr.data.astype(np.float32)
            runs = []
            for _ in range(args.repeats):
                f, b = own_f.copy(), own_b.copy()
                start = time.perf_counter()
                with using_threads(2):
                    als_solve_rows(
                        ptr, idx, val, np.zeros(0), fixed_f, fixed_b, model.global_mean_,
                        0.1, 0.1, True, nonneg, f, b,
                    )  # fmt: skip
                runs.append(time.perf_counter() - start)
            half[side] = statistics.median(runs)
        name = "nonnegative" if nonneg else "unconstrained"
        print(
            f"| {name} | {statistics.median(times):.2f} | {rmse:.4f} | {zeros:.1%} | "
            f"{half['users']:.3f} | {half['items']:.3f} |"
        )


if __name__ == "__main__":
    main()
