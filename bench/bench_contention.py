"""Benchmark: single-row paths and fits on a quiet machine and with both cores busy.

A "competitor" is one CPU-bound process per core (pure-Python loops, started and stopped
by this script), standing in for the other jobs of a shared machine. Measured on
MovieLens small, through the public API only (``fk.*``), for default threads and for
``n_threads=1``:

* single-row paths, p50 and p99 milliseconds per call over ``--calls`` calls:
  ``recommend(user, k=10)``, ``recommend_new_user(items, ratings, k=10)``,
  ``fold_in(items, ratings)`` and ``predict`` for 5 pairs (models that have them);
  with ``--blas1`` also each path inside ``threadpoolctl.threadpool_limits(1, "blas")``,
  the policy the models adopt (one BLAS thread on single-row paths);
* each model's ``fit`` (default hyperparameters, fixed seed): median seconds of
  ``--repeats`` fits, quiet and loaded, the slowdown factor loaded / quiet, and default
  threads over one thread (fits of the two settings alternate inside one window, so
  both see the same load; ``n_threads=1`` of a model without that parameter, such as
  BaselineOnly, limits numba and BLAS to one thread; fits shorter than
  ``--min-seconds / --repeats`` get more repeats, so that each setting has at least
  ``--min-seconds`` of fits);
* the other parallel paths (``--part paths``): ``recommend_all`` (the top-k kernel) of an
  ImplicitALS model on MovieLens small, ``fk.read_csv`` of a ``--csv-rows`` synthetic
  ratings file, and ``fk.split.random`` / ``fk.split.temporal`` of that data; "1" runs
  them with numba limited to one thread (readers and splits take no ``n_threads``);
  alternating and with ratios as the fits are.

Usage::

    python bench/bench_contention.py                      # everything, short
    python bench/bench_contention.py --part single --blas1 --calls 200
    python bench/bench_contention.py --part fit --repeats 3 --models BiasedMF ALS
    python bench/bench_contention.py --part paths --repeats 5 --csv-rows 2000000
    python bench/bench_contention.py --json results.json  # also write the figures

The machine this runs on may be shared: "quiet" then means "without our competitor",
not idle. Run it when the load average is low and keep repeats few.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import multiprocessing as mp
import os
import statistics
import sys
import time

import numpy as np

import factorkit as fk

MODELS = ("BaselineOnly", "BiasedMF", "SVDpp", "ALS", "ImplicitALS", "BPR")
#: models whose single-row paths are timed (one per solver family)
SINGLE_ROW_MODELS = ("BiasedMF", "SVDpp", "ALS", "ImplicitALS", "BPR")


def _spin(stop) -> None:  # pragma: no cover - runs in the competitor processes
    # also stop when the parent dies without setting ``stop`` (killed by a signal, where
    # multiprocessing's daemon clean-up does not run): an orphan is re-parented
    parent = os.getppid()
    x = 0
    while not stop.is_set() and os.getppid() == parent:
        for _ in range(100_000):
            x = (x * 1103515245 + 12345) & 0x7FFFFFFF


@contextlib.contextmanager
def competitor(n_procs: int):
    """``n_procs`` busy processes for the duration of the block (none when 0)."""
    if n_procs <= 0:
        yield
        return
    ctx = mp.get_context("spawn")  # never fork a process that holds numba/OpenMP threads
    stop = ctx.Event()
    procs = [ctx.Process(target=_spin, args=(stop,), daemon=True) for _ in range(n_procs)]
    for p in procs:
        p.start()
    time.sleep(1.0)  # let them get going (spawn imports take a moment)
    try:
        yield
    finally:
        stop.set()
        for p in procs:
            p.join(timeout=5)
            if p.is_alive():
                p.kill()


def _percentiles(times: list[float]) -> tuple[float, float]:
    a = np.asarray(times) * 1e3
    return float(np.percentile(a, 50)), float(np.percentile(a, 99))


def _single_row_calls(model, data):
    """(name, zero-argument callable) for each single-row path the model has."""
    frame = data.to_pandas()
    user = frame["user"].iloc[0]
    history = frame[frame["user"] == user]
    items = history["item"].to_numpy()[:20]
    ratings = history["rating"].to_numpy()[:20] if "rating" in frame else None
    pairs_u = frame["user"].to_numpy()[:5]
    pairs_i = frame["item"].to_numpy()[:5]
    calls = [("recommend(user, k=10)", lambda: model.recommend(user, k=10))]
    if hasattr(model, "recommend_new_user"):
        calls.append(
            ("recommend_new_user(20 items)", lambda: model.recommend_new_user(items, ratings, k=10))
        )
    if hasattr(model, "fold_in"):
        calls.append(("fold_in(20 items)", lambda: model.fold_in(items, ratings)))
    calls.append(("predict(5 pairs)", lambda: model.predict(pairs_u, pairs_i)))
    return calls


def _time_calls(fn, n_calls: int, blas1: bool) -> list[float]:
    from threadpoolctl import threadpool_limits

    limit = threadpool_limits(1, "blas") if blas1 else contextlib.nullcontext()
    times = []
    with limit:
        fn()  # warm: compile, caches
        for _ in range(n_calls):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return times


def _make(name: str, n_threads, seed: int = 0):
    cls = getattr(fk, name)
    kwargs = {"random_state": seed}
    if "n_threads" in cls().get_params():
        kwargs["n_threads"] = n_threads
    if "random_state" not in cls().get_params():
        kwargs.pop("random_state")
    return cls(**kwargs)


def bench_single(args, data, rows: list[dict]) -> None:
    for name in args.models:
        if name not in SINGLE_ROW_MODELS:
            continue
        for n_threads in (None, 1):
            model = _make(name, n_threads).fit(data)
            cases = [
                (path, fn, blas1)
                for path, fn in _single_row_calls(model, data)
                for blas1 in ((False, True) if args.blas1 else (False,))
            ]
            recs = [
                {
                    "model": name,
                    "n_threads": n_threads or "default",
                    "path": path,
                    "blas": "1 thread" if blas1 else "default",
                }
                for path, _, blas1 in cases
            ]
            for load, n_procs in (("quiet", 0), ("loaded", args.busy)):
                with competitor(n_procs):
                    for rec, (_, fn, blas1) in zip(recs, cases, strict=True):
                        p50, p99 = _percentiles(_time_calls(fn, args.calls, blas1))
                        rec[f"{load}_p50_ms"] = p50
                        rec[f"{load}_p99_ms"] = p99
            for rec in recs:
                rows.append(rec)
                print(json.dumps(rec), flush=True)


@contextlib.contextmanager
def _one_thread_everywhere():
    """numba and BLAS on one thread: ``n_threads=1`` for a model that takes none."""
    from threadpoolctl import threadpool_limits

    with _numba_threads(1), threadpool_limits(1):
        yield


def _fit_once(name: str, n_threads, data) -> float:
    """Seconds of one fit; ``n_threads=1`` of a model without the parameter runs it with
    numba and BLAS limited to one thread (its only threads)."""
    model = _make(name, n_threads)
    takes_threads = "n_threads" in model.get_params()
    limit = (
        _one_thread_everywhere()
        if n_threads == 1 and not takes_threads
        else contextlib.nullcontext()
    )
    with limit:
        t0 = time.perf_counter()
        model.fit(data)
        return time.perf_counter() - t0


def _compare_settings(args, name: str, timed, rows: list[dict]) -> None:
    """Default threads and one thread alternate call by call inside the same quiet or
    loaded window (A B, B A, ...), so that both see the same background load; the ratio
    of their medians is the figure issue 11 item 1 asks for. ``timed(n_threads)``
    returns the seconds of one call."""
    settings = (None, 1)
    for n_threads in settings:
        timed(n_threads)  # warm: compile, page cache
    # a call of a few milliseconds gets more repeats (at least --min-seconds of calls
    # per setting): one time slice lost to another process is a large share of it
    warm = min(timed(n) for n in settings)
    repeats = max(args.repeats, math.ceil(args.min_seconds / max(warm, 1e-3)))
    recs = {n: {"model": name, "n_threads": n or "default"} for n in settings}
    for load, n_procs in (("quiet", 0), ("loaded", args.busy)):
        times: dict = {n: [] for n in settings}
        with competitor(n_procs):
            for rep in range(repeats):
                for n_threads in settings if rep % 2 == 0 else settings[::-1]:
                    times[n_threads].append(timed(n_threads))
        for n_threads in settings:
            recs[n_threads][f"{load}_s"] = statistics.median(times[n_threads])
            recs[n_threads][f"{load}_all_s"] = times[n_threads]
    for n_threads in settings:
        rec = recs[n_threads]
        rec["slowdown"] = rec["loaded_s"] / rec["quiet_s"]
        rec["loaded_vs_1"] = rec["loaded_s"] / recs[1]["loaded_s"]
        rec["quiet_vs_1"] = rec["quiet_s"] / recs[1]["quiet_s"]
        rec["fits"] = repeats
        rows.append(rec)
        short = {k: v for k, v in rec.items() if not k.endswith("_all_s")}
        print(json.dumps(short), flush=True)


def bench_fit(args, data, rows: list[dict]) -> None:
    """Each model's fit on default threads against one thread (:func:`_compare_settings`)."""
    for name in args.models:
        _compare_settings(args, name, lambda n, name=name: _fit_once(name, n, data), rows)


@contextlib.contextmanager
def _numba_threads(n_threads):
    """numba's thread count for the block (None: leave the default, all cores)."""
    import numba

    previous = numba.get_num_threads()
    if n_threads is not None:
        numba.set_num_threads(n_threads)
    try:
        yield
    finally:
        numba.set_num_threads(previous)


def _paths(args, data, workdir: str) -> dict:
    """Name -> (n_threads -> a zero-argument call) for the non-fit parallel paths."""
    big, _ = fk.datasets.make_ratings(
        n_users=max(args.csv_rows // 50, 10), n_items=max(args.csv_rows // 200, 10),
        n_ratings=args.csv_rows, random_state=0,
    )  # fmt: skip
    csv_path = os.path.join(workdir, "ratings.csv")
    big.to_pandas().rename(columns={"user": "userId", "item": "movieId"}).to_csv(
        csv_path, index=False
    )
    models = {
        n: fk.ImplicitALS(n_threads=n, random_state=0, progress=False).fit(
            data.to_implicit(min_value=4.0)
        )
        for n in (None, 1)
    }
    return {
        "recommend_all (k=10, ML small)": lambda n: sum(
            len(u) for u, _, _ in models[n].recommend_all(k=10)
        ),
        f"read_csv ({args.csv_rows:,} lines)": lambda n: fk.read_csv(
            csv_path, timestamp="timestamp"
        ),
        "split.random (same data)": lambda n: fk.split.random(big, 0.2, random_state=0),
        "split.temporal (same data)": lambda n: fk.split.temporal(big, 0.2),
    }


def bench_paths(args, data, rows: list[dict]) -> None:
    """The other parallel paths on default threads against numba limited to one thread
    (:func:`_compare_settings`)."""
    import tempfile

    def timed(call, n_threads) -> float:
        with _numba_threads(n_threads):
            t0 = time.perf_counter()
            call(n_threads)
            return time.perf_counter() - t0

    with tempfile.TemporaryDirectory() as workdir:
        for name, call in _paths(args, data, workdir).items():
            _compare_settings(args, name, lambda n, call=call: timed(call, n), rows)


def _table_single(rows: list[dict]) -> str:
    out = [
        "| model | n_threads | BLAS | path | quiet p50 | quiet p99 | loaded p50 | loaded p99 |",
        "|---|---|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        out.append(
            f"| {r['model']} | {r['n_threads']} | {r['blas']} | `{r['path']}` | "
            f"{r['quiet_p50_ms']:.2f} | {r['quiet_p99_ms']:.2f} | "
            f"{r['loaded_p50_ms']:.2f} | {r['loaded_p99_ms']:.2f} |"
        )
    return "\n".join(out)


def _table_fit(rows: list[dict]) -> str:
    out = [
        "| model | n_threads | quiet (s) | loaded (s) | slowdown | quiet / 1 thread |"
        " loaded / 1 thread |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        ratios = f" {r['quiet_vs_1']:.2f} | {r['loaded_vs_1']:.2f} |"
        out.append(
            f"| {r['model']} | {r['n_threads']} | {r['quiet_s']:.3f} | "
            f"{r['loaded_s']:.3f} | {r['slowdown']:.1f}x |{ratios}"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("single", "fit", "paths", "all"), default="all")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--calls", type=int, default=100, help="calls per single-row path")
    parser.add_argument("--repeats", type=int, default=2, help="fits per setting")
    parser.add_argument(
        "--min-seconds",
        type=float,
        default=1.0,
        help="--part fit: more repeats for short fits, to this many seconds per setting",
    )
    parser.add_argument("--busy", type=int, default=os.cpu_count() or 2, help="busy processes")
    parser.add_argument(
        "--blas1", action="store_true", help="also time single-row paths with one BLAS thread"
    )
    parser.add_argument(
        "--csv-rows", type=int, default=1_000_000, help="lines of the --part paths CSV"
    )
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args(argv)
    data = fk.datasets.load_movielens_small()
    print(f"# load average before: {os.getloadavg()}", file=sys.stderr)
    single: list[dict] = []
    fits: list[dict] = []
    others: list[dict] = []
    if args.part in ("single", "all"):
        bench_single(args, data, single)
    if args.part in ("fit", "all"):
        bench_fit(args, data, fits)
    if args.part in ("paths", "all"):
        bench_paths(args, data, others)
    print(f"# load average after: {os.getloadavg()}", file=sys.stderr)
    if single:
        print("\nSingle-row calls (milliseconds)\n")
        print(_table_single(single))
    if fits:
        print("\nFits (seconds)\n")
        print(_table_fit(fits))
    if others:
        print("\nOther parallel paths (seconds)\n")
        print(_table_fit(others).replace("| model |", "| path |", 1))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"single": single, "fit": fits, "paths": others}, fh, indent=1)


if __name__ == "__main__":
    main()
