"""Benchmark: factorkit BPR against implicit's CPU BayesianPersonalizedRanking (0.7.3).

Both libraries train on the same training matrix (written once to an ``.npz`` file that
each side reads; users and items in the same positions) with the same factors,
iterations, learning rate, regularization and thread count. Reported per configuration:
seconds per epoch (fit time / epochs, median of ``--repeats`` fits; factorkit's numba
kernels are compiled before timing) and recall@20 / ndcg@20 on a per-user 20% holdout,
both computed by ``fk.evaluate`` (implicit's factors, whose last column carries the item
bias, are scored through a factorkit model shell, training items excluded).

Data sets:

- ``ml``: MovieLens latest-small (shipped), ratings >= 4 as positives;
- ``synthetic``: ``fk.datasets.make_implicit`` with 150,000 users, 40,000 items and 20M
  interactions (seed 0), cached under ``bench/data/`` (``bpr_implicit_20M_seed0.npz``);
  ranking metrics on ``--eval-users`` sampled test users.

implicit runs in its own virtual environment (``--peer-python``) in a subprocess; its
samplers draw negatives in proportion to item popularity, so the factorkit rows are
reported for the default uniform sampler and, on MovieLens, for ``sampler="popularity",
popularity_exponent=1`` (the same distribution as implicit's). On the 20M set, a few
epochs are timed (``--epochs-synthetic``), so its recall figures compare the libraries
after equal training, not converged models.

Usage::

    python bench/bench_bpr.py

Prints markdown tables and the command line.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from peers import PEER_PYTHON

HERE = Path(__file__).resolve()
DATA_DIR = HERE.parent / "data"
SYNTH = dict(n_users=150_000, n_items=40_000, n_interactions=20_000_000, random_state=0)
SYNTH_FILE = DATA_DIR / "bpr_implicit_20M_seed0.npz"
LEARNING_RATE, REGULARIZATION = 0.05, 0.01


# ---------------------------------------------------------------------- peer worker
def implicit_worker(args: dict) -> dict:
    """Runs under the peer's interpreter: only numpy, scipy and implicit are imported."""
    import scipy.sparse as sp
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    z = np.load(args["train"])
    mat = sp.csr_matrix(
        (np.ones(len(z["indices"]), dtype=np.float32), z["indices"], z["indptr"]),
        shape=tuple(z["shape"]),
    )
    times = []
    model = None
    for run in range(args["repeats"]):
        model = BayesianPersonalizedRanking(
            factors=args["factors"],
            learning_rate=args["learning_rate"],
            regularization=args["regularization"],
            iterations=args["epochs"],
            num_threads=args["threads"],
            random_state=run,
        )
        start = time.perf_counter()
        model.fit(mat, show_progress=False)
        times.append(time.perf_counter() - start)
    np.savez(args["out"], user_factors=model.user_factors, item_factors=model.item_factors)
    return {"times": times}


# ---------------------------------------------------------------------- factorkit side
def load_data(name: str):
    import factorkit as fk

    if name == "ml":
        data = fk.datasets.load_movielens_small()
        data = data.take(data.values >= 4.0)
    else:
        if SYNTH_FILE.exists():
            z = np.load(SYNTH_FILE)
            data = fk.Interactions.from_arrays(z["users"], z["items"])
        else:
            data, _ = fk.datasets.make_implicit(**SYNTH, timestamps=False)
            DATA_DIR.mkdir(parents=True, exist_ok=True)
            users = data.user_map.ids[data.user_index]
            items = data.item_map.ids[data.item_index]
            np.savez(SYNTH_FILE, users=users, items=items)
    return fk.split.per_user(data, test_size=0.2, random_state=0)


def ranking(model, test, train, eval_users: int | None) -> dict:
    import factorkit as fk

    if eval_users is not None:
        users = np.unique(test.user_index)
        pick = np.random.default_rng(0).choice(users, min(eval_users, len(users)), replace=False)
        test = test.select_users(test.user_map.ids[pick])
    return fk.evaluate(model, test, ["recall@20", "ndcg@20"], train=train)


def peer_shell(model, factors_file: str):
    """A copy of a fitted factorkit BPR that scores with implicit's factors."""
    import copy

    z = np.load(factors_file)
    shell = copy.copy(model)
    shell.user_factors_ = np.ascontiguousarray(z["user_factors"], dtype=np.float32)
    shell.item_factors_ = np.ascontiguousarray(z["item_factors"], dtype=np.float32)
    shell.item_bias_ = np.zeros(len(shell.item_factors_), dtype=np.float32)
    shell.user_bias_ = np.zeros(len(shell.user_factors_), dtype=np.float32)
    return shell


def run_peer(peer_python: str, payload: dict) -> dict:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    out = subprocess.run(
        [peer_python, str(HERE), "--worker", json.dumps(payload)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_dataset(name: str, opts: argparse.Namespace, tmp: Path) -> list[dict]:
    from factorkit.models.bpr import BPR

    t0 = time.perf_counter()
    train, test = load_data(name)
    print(f"[{name}] data ready in {time.perf_counter() - t0:.1f}s: {train!r}", file=sys.stderr)
    epochs = opts.epochs_ml if name == "ml" else opts.epochs_synthetic
    eval_users = None if name == "ml" else opts.eval_users
    warm = BPR(factors=8, epochs=1, n_threads=1, random_state=0).fit(train)  # compile
    train_file = tmp / f"{name}_train.npz"
    np.savez(
        train_file,
        indptr=warm.seen_indptr_.astype(np.int32),
        indices=warm.seen_indices_,
        shape=np.array([len(warm.user_map_), len(warm.item_map_)]),
    )
    rows = []
    variants = {"uniform": {}}
    if name == "ml":  # (on the large set only the default, to keep the run short)
        variants["popularity^1"] = dict(sampler="popularity", popularity_exponent=1.0)
    for factors in opts.factors:
        for threads in opts.threads:
            row = dict(data=name, factors=factors, threads=threads, epochs=epochs)
            for label, extra in variants.items():
                times, model = [], None
                for run in range(opts.repeats):
                    model = BPR(
                        factors=factors,
                        epochs=epochs,
                        learning_rate=LEARNING_RATE,
                        regularization=REGULARIZATION,
                        n_threads=threads,
                        random_state=run,
                        **extra,
                    )
                    start = time.perf_counter()
                    model.fit(train)
                    times.append(time.perf_counter() - start)
                row[f"fk {label} s/epoch"] = float(np.median(times)) / epochs
                row[f"fk {label}"] = ranking(model, test, train, eval_users)
            factors_file = tmp / f"{name}_peer_factors.npz"
            payload = dict(
                train=str(train_file),
                out=str(factors_file),
                factors=factors,
                epochs=epochs,
                threads=threads,
                learning_rate=LEARNING_RATE,
                regularization=REGULARIZATION,
                repeats=opts.repeats,
            )
            if opts.peer_python:
                peer = run_peer(opts.peer_python, payload)
                row["implicit s/epoch"] = float(np.median(peer["times"])) / epochs
                row["implicit"] = ranking(peer_shell(model, factors_file), test, train, eval_users)
            print(json.dumps(row), file=sys.stderr)
            rows.append(row)
    return rows


def table(rows: list[dict]) -> str:
    head = (
        "| data | factors | threads | epochs | factorkit s/epoch | implicit s/epoch "
        "| implicit / factorkit | factorkit (pop^1) s/epoch | recall@20 fk | recall@20 fk "
        "pop^1 | recall@20 implicit | ndcg@20 fk | ndcg@20 fk pop^1 | ndcg@20 implicit |"
    )
    lines = [head, "|" + "---|" * 14]
    for r in rows:
        fk_t, pk = r["fk uniform s/epoch"], r.get("implicit s/epoch", float("nan"))
        lines.append(
            f"| {r['data']} | {r['factors']} | {r['threads']} | {r['epochs']} "
            f"| {fk_t:.4f} | {pk:.4f} | {pk / fk_t:.2f} "
            f"| {r.get('fk popularity^1 s/epoch', float('nan')):.4f} "
            + "".join(
                f"| {r.get(k, {}).get(m, float('nan')):.4f} "
                for m in ("recall@20", "ndcg@20")
                for k in ("fk uniform", "fk popularity^1", "implicit")
            )
            + "|"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--peer-python", default=PEER_PYTHON)
    parser.add_argument("--datasets", nargs="+", default=["ml", "synthetic"])
    parser.add_argument("--factors", nargs="+", type=int, default=[64, 128])
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs-ml", type=int, default=100)
    parser.add_argument("--epochs-synthetic", type=int, default=2)
    parser.add_argument("--eval-users", type=int, default=2_000)
    opts = parser.parse_args()
    if opts.worker:
        print(json.dumps(implicit_worker(json.loads(opts.worker))))
        return
    if opts.peer_python and not Path(opts.peer_python).exists():
        parser.error(f"--peer-python {opts.peer_python} does not exist")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in opts.datasets:
            rows += bench_dataset(name, opts, Path(tmp))
    print(f"Command: {shlex.join([sys.executable, *sys.argv])}\n")
    print(f"Machine: {os.cpu_count()} cores; medians of {opts.repeats} fits.\n")
    print(table(rows))


if __name__ == "__main__":
    main()
