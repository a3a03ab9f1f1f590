"""Check that a change keeps fitted models bit for bit: save fitted arrays, compare later.

Fits BPR, SVDpp, ALS, ImplicitALS (CG and Cholesky) and BiasedMF on MovieLens small with
a fixed seed, for ``n_threads=1`` and 2, a few epochs each, and saves their factors,
biases and one user's top-10 scores. Run it on the code before a change with ``--save``
and after with ``--compare``: with ``n_threads=1`` every model must come out identical
unless the change meant to alter arithmetic. (Hogwild models, BPR and SVDpp, differ
between runs on two threads by design.)

Usage::

    PYTHONPATH=<old tree>/src python bench/fit_fingerprints.py --save /tmp/before.npz
    PYTHONPATH=src python bench/fit_fingerprints.py --compare /tmp/before.npz

Run both sides with their numba caches warm (run each command once before the one that
counts): BiasedMF fitted by kernels compiled in the running process came out up to one
float32 ulp away from the same source loaded from the cache (seen for the old and the
new tree alike, December 2026), which ``--compare`` reports as a difference.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

import factorkit as fk


def fingerprints() -> dict[str, np.ndarray]:
    data = fk.datasets.load_movielens_small()
    out: dict[str, np.ndarray] = {}
    for n_threads in (1, 2):
        models = {
            "bpr": fk.BPR(factors=16, epochs=3, random_state=0, n_threads=n_threads),
            "svdpp": fk.SVDpp(factors=8, epochs=2, random_state=0, n_threads=n_threads),
            "als": fk.ALS(factors=16, epochs=2, random_state=0, n_threads=n_threads),
            "ials": fk.ImplicitALS(factors=16, epochs=2, random_state=0, n_threads=n_threads),
            "ials_chol": fk.ImplicitALS(
                factors=16, epochs=2, solver="cholesky", random_state=0, n_threads=n_threads
            ),
            "mf": fk.BiasedMF(factors=16, epochs=3, random_state=0, n_threads=n_threads),
        }
        for name, model in models.items():
            model.fit(data)
            for attr in ("user_factors_", "item_factors_", "user_bias_", "item_bias_"):
                out[f"{name}{n_threads}.{attr}"] = np.asarray(getattr(model, attr))
            out[f"{name}{n_threads}.rec"] = np.asarray(model.recommend(1, k=10)[1])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--save", help="write the fingerprints to this .npz")
    group.add_argument("--compare", help="compare with fingerprints saved earlier")
    args = parser.parse_args(argv)
    current = fingerprints()
    if args.save:
        np.savez(args.save, **current)
        return 0
    saved = np.load(args.compare)
    changed = 0
    for key in sorted(saved.files):
        a, b = saved[key], current[key]
        if a.shape == b.shape and np.array_equal(a, b, equal_nan=True):
            print(f"{key:28s} identical")
            continue
        changed += key.split(".")[0].endswith("1")
        diff = np.nanmax(np.abs(a - b)) if a.shape == b.shape else float("nan")
        print(f"{key:28s} differs (max |d| = {diff:.3g})")
    print(f"{changed} single-thread arrays differ", file=sys.stderr)
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main())
