"""Benchmark: factorkit BiasedMF against libmf at equal epochs (issue 11 item 4).

libmf (Chin, Yuan, Juan & Lin, National Taiwan University) is the reference parallel SGD
for matrix factorization; its default learning-rate schedule is per-row adaptive
(Chin, Zhuang, Juan & Lin, PAKDD 2015). Its command-line tools are built from source
with ``make`` (``bash bench/setup_peers.sh --libmf SRC``, where SRC holds a checkout of
github.com/cjlin1/libmf) into ``bench/.peers/libmf``; override with ``--libmf-dir``.

Both sides train on the same files (one rating per line, ``user item rating`` in the
same integer positions), with the same ``k``, the same L2 regularization (per rating on
both sides: libmf's ``-l2``, factorkit's ``regularization``), the same number of epochs
and threads. factorkit runs at its defaults otherwise (learning rate, schedule, init);
libmf at its own (``-r 0.1``, adaptive). Data sets:

* a seeded synthetic set from ``fk.datasets.make_ratings`` (MovieLens-25M's shape scaled
  to ``--n`` ratings), 10% held out at random;
* MovieLens latest-small (shipped), 10% held out at random.

Accuracy: test RMSE after every epoch, from libmf's ``-p`` validation output and
factorkit's ``history_["val_rmse"]`` (both score every held-out rating: an id without
training ratings gets libmf's global mean, factorkit's fallback). Time: medians of
``--repeats`` alternating fits without validation; libmf's wall time includes parsing
its text file, so its training time is estimated as ``(wall(T) - wall(1)) * T / (T - 1)``.

Usage::

    python bench/bench_libmf.py                       # both data sets, k=64, 20 epochs
    python bench/bench_libmf.py --data ml-small --epochs 30
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
LIBMF_DIR = HERE / ".peers" / "libmf"


def shape_for(n: int) -> tuple[int, int]:
    """MovieLens-25M's users and items scaled to ``n`` ratings (bench/bench_split.py's)."""
    n_users = max(1, round(162_541 * n / 25_000_095))
    n_items = max(1, min(59_047, round(59_047 * (n / 25_000_095) ** 0.5)))
    while n_users * n_items < 2 * n:
        n_users *= 2
    return n_users, n_items


def load(name: str, n: int, seed: int):
    import factorkit as fk

    if name == "ml-small":
        data = fk.datasets.load_movielens_small()
        label = "MovieLens latest-small"
    else:
        cache = HERE / "data" / f"libmf_make_ratings_{n}_{seed}.npz"
        n_users, n_items = shape_for(n)
        if cache.exists():
            with np.load(cache) as f:
                data = fk.Interactions.from_arrays(f["u"], f["i"], f["r"])
        else:
            data, _ = fk.datasets.make_ratings(n_users, n_items, n, random_state=seed)
            cache.parent.mkdir(exist_ok=True)
            ids = data.user_map.ids[data.user_index], data.item_map.ids[data.item_index]
            np.savez(cache, u=ids[0], i=ids[1], r=data.values)
        label = f"make_ratings({n_users:,}, {n_items:,}, {n:,}, random_state={seed})"
    train, test = fk.split.random(data, test_size=0.1, random_state=seed)
    return label, train, test


def write_libmf(data, path: Path) -> None:
    """``user item rating`` lines in factorkit's positions (the split shares them)."""
    table = np.column_stack([data.user_index, data.item_index, data.values])
    np.savetxt(path, table, fmt=["%d", "%d", "%.6g"], delimiter=" ")


def libmf_train(
    libmf: Path, train: Path, test: Path | None, k: int, reg: float, epochs: int, threads: int
) -> tuple[float, list[float]]:
    """One ``mf-train`` run: its wall seconds and, with ``test``, the per-epoch test RMSE."""
    cmd = [str(libmf / "mf-train"), "-k", str(k), "-l2", str(reg), "-t", str(epochs)]
    cmd += ["-s", str(threads)]
    cmd += ["-p", str(test)] if test is not None else ["--quiet"]
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        out = subprocess.run(
            [*cmd, str(train), str(Path(tmp) / "model")], check=True, capture_output=True,
            text=True,
        ).stdout  # fmt: skip
        wall = time.perf_counter() - start
    # lines "iter tr_rmse va_rmse obj"
    rmse = [float(m.group(1)) for m in re.finditer(r"^\s*\d+\s+\S+\s+(\S+)\s+\S+$", out, re.M)]
    return wall, rmse


def factorkit_fit(train, test, k, reg, epochs, threads, seed, overrides):
    from factorkit import BiasedMF

    model = BiasedMF(
        factors=k, epochs=epochs, regularization=reg, n_threads=threads, random_state=seed,
        **overrides,
    )  # fmt: skip
    start = time.perf_counter()
    model.fit(train, validation=test)
    wall = time.perf_counter() - start
    return wall, (model.history_["val_rmse"].tolist() if test is not None else [])


def compare(args, name: str) -> dict:
    label, train, test = load(name, args.n, args.seed)
    overrides = dict(eval(f"dict({args.factorkit_params})"))  # bench-only: trusted CLI text
    libmf = Path(args.libmf_dir)
    out: dict = {"label": label, "n_train": len(train), "n_test": len(test)}
    with tempfile.TemporaryDirectory() as tmp:
        tr, te = Path(tmp) / "train.txt", Path(tmp) / "test.txt"
        write_libmf(train, tr)
        write_libmf(test, te)
        from factorkit import BiasedMF

        BiasedMF(factors=4, epochs=1, **overrides).fit(train.take(np.arange(1000)))  # warm-up
        if not args.time_only:  # accuracy curves (validation after every epoch, both sides)
            _, out["libmf_rmse"] = libmf_train(
                libmf, tr, te, args.k, args.reg, args.epochs, args.threads
            )
            _, out["fk_rmse"] = factorkit_fit(
                train, test, args.k, args.reg, args.epochs, args.threads, args.seed, overrides
            )
            report_accuracy(args, out)
        # fit time without validation, alternating
        lw, l1, fw = [], [], []
        for _ in range(args.repeats):
            lw.append(libmf_train(libmf, tr, None, args.k, args.reg, args.epochs, args.threads)[0])
            l1.append(libmf_train(libmf, tr, None, args.k, args.reg, 1, args.threads)[0])
            fit = factorkit_fit(
                train, None, args.k, args.reg, args.epochs, args.threads, args.seed, overrides
            )
            fw.append(fit[0])
        t = args.epochs
        out["libmf_wall"] = statistics.median(lw)
        out["libmf_train"] = statistics.median(
            [(a - b) * t / max(t - 1, 1) for a, b in zip(lw, l1, strict=True)]
        )
        out["fk_wall"] = statistics.median(fw)
    return out


def epoch_times(args, name: str) -> None:
    """Seconds per epoch of the two schedules (their own learning rates), alternating:
    per fit the median epoch (the first is left out), then the median over fits."""
    from factorkit import BiasedMF

    label, train, _ = load(name, args.n, args.seed)
    runs: dict[str, list[float]] = {"adaptive": [], "decay": []}
    for sched in runs:  # warm-up (compile or cache load)
        BiasedMF(factors=4, epochs=1, learning_rate_schedule=sched).fit(train.take(np.arange(99)))
    for _ in range(args.repeats):
        for sched, lr in (("adaptive", 0.1), ("decay", 0.03)):
            model = BiasedMF(
                factors=args.k, epochs=6, learning_rate=lr, learning_rate_schedule=sched,
                n_threads=args.threads, random_state=args.seed,
            ).fit(train)  # fmt: skip
            runs[sched].append(float(np.median(np.diff(model.history_["elapsed"]))))
    print(f"### Seconds per epoch, {label}, k={args.k}, {args.threads} threads\n")
    for sched, times in runs.items():
        t = statistics.median(times)
        print(f"- {sched}: {t:.3f} s an epoch, {len(train) / t / 1e6:.1f} M updates/s")
    print(f"\nload average now {os.getloadavg()[0]:.2f}\n", flush=True)


def report_accuracy(args, res: dict) -> None:
    lm, fk_ = res["libmf_rmse"], res["fk_rmse"]
    print(f"### {res['label']}: {res['n_train']:,} training, {res['n_test']:,} test ratings\n")
    print(f"k={args.k}, l2={args.reg}, {args.epochs} epochs, {args.threads} threads; "
          f"factorkit overrides: {args.factorkit_params or 'none (defaults)'}\n")  # fmt: skip
    print("| epoch | libmf test RMSE | factorkit test RMSE | factorkit - libmf |")
    print("|---:|---:|---:|---:|")
    marks = sorted({1, 2, 3, 5, 10, 15, 20, 25, 30, 40, 50, args.epochs})
    for e in [m for m in marks if m <= min(len(lm), len(fk_))]:
        print(f"| {e} | {lm[e - 1]:.4f} | {fk_[e - 1]:.4f} | {fk_[e - 1] - lm[e - 1]:+.4f} |")
    ahead = sum(f <= m for f, m in zip(fk_, lm, strict=False))
    print(f"\nfactorkit at or below libmf after {ahead} of {min(len(lm), len(fk_))} epochs. "
          f"Load average now {os.getloadavg()[0]:.2f}.\n", flush=True)  # fmt: skip


def report_time(args, res: dict) -> None:
    print(f"{res['label']}, fit time, medians of {args.repeats} alternating runs: libmf mf-train "
          f"{res['libmf_wall']:.2f} s wall (training alone about {res['libmf_train']:.2f} s), "
          f"factorkit fit {res['fk_wall']:.2f} s. Load average now "
          f"{os.getloadavg()[0]:.2f}.\n", flush=True)  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", choices=["synthetic", "ml-small", "both"], default="both")
    ap.add_argument("--n", type=int, default=10_000_000, help="synthetic ratings")
    ap.add_argument("--k", type=int, default=64)
    ap.add_argument("--reg", type=float, default=0.1)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--time-only", action="store_true", help="skip the accuracy curves")
    ap.add_argument(
        "--epoch-time", action="store_true",
        help="only seconds per epoch of the adaptive and the decay schedule",
    )  # fmt: skip
    ap.add_argument("--libmf-dir", default=os.environ.get("FACTORKIT_LIBMF", str(LIBMF_DIR)))
    ap.add_argument(
        "--factorkit-params", default="",
        help="extra BiasedMF arguments, e.g. \"learning_rate_schedule='decay'\"",
    )  # fmt: skip
    args = ap.parse_args()
    command = " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv])
    print(f"command: `{command}`\n")
    print(f"cores: {os.cpu_count()}, load average before: {os.getloadavg()[0]:.2f}\n", flush=True)
    names = ["synthetic", "ml-small"] if args.data == "both" else [args.data]
    for name in names:
        if args.epoch_time:
            epoch_times(args, name)
        else:
            report_time(args, compare(args, name))


if __name__ == "__main__":
    main()
