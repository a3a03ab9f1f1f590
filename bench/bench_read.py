"""Benchmark: ``fk.read_csv`` against ``pandas.read_csv`` alone on an ml-25m-like ratings CSV.

Generates (once, cached under ``bench/data/``) a synthetic ratings file shaped like
MovieLens 25M -- ``userId,movieId,rating,timestamp``, ~160k users, ~60k items, ratings
0.5..5 in half steps, Unix timestamps, sorted by user then item -- then times, each in a
fresh subprocess:

* ``pandas``: ``pandas.read_csv(path)`` with default arguments;
* ``factorkit``: ``fk.read_csv(path, timestamp="timestamp")`` (a ready ``Interactions``).

For each it reports the median over ``--repeats`` runs (interleaved, so that drift on a
shared machine hits both) of the wall time and the CPU time (user + system, all threads)
of the call, and of the peak resident memory (``ru_maxrss``) of the child, both as
measured and above the child's resident memory just before the call (imports excluded),
next to the size of the final arrays (int32 users, int32 items, float32 values, int64
timestamps).

Usage::

    python bench/bench_read.py                 # 25M lines, 3 repeats
    python bench/bench_read.py --n 1000000 --repeats 5
    python bench/bench_read.py --shuffled      # lines in random order: ids must be sorted
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
N_USERS_25M = 162_541
N_ITEMS_25M = 59_047
N_25M = 25_000_095


# ---------------------------------------------------------------------- data
def generate(path: Path, n: int, seed: int = 0, shuffled: bool = False) -> None:
    """Write an ml-25m-like ratings CSV with exactly ``n`` data lines to ``path``.

    Lines are sorted by user then item, as in the MovieLens files, unless ``shuffled``.
    """
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    n_users = max(1, round(N_USERS_25M * n / N_25M))
    n_items = max(1, min(N_ITEMS_25M, round(N_ITEMS_25M * (n / N_25M) ** 0.5)))
    if n > n_users * n_items:
        raise SystemExit(f"--n {n} is too large for {n_users} users x {n_items} items")
    # Skewed activity and popularity, as in MovieLens. No user rates more than a quarter
    # of the items, so that sampling distinct items per user converges in a few rounds.
    user_w = rng.lognormal(0.0, 1.2, n_users)
    for _ in range(5):
        user_w = np.minimum(user_w / user_w.sum(), n_items / 4 / n)
    user_w /= user_w.sum()
    item_w = 1.0 / np.arange(1, n_items + 1) ** 0.9
    item_w = rng.permutation(item_w / item_w.sum())
    keys = np.empty(0, dtype=np.int64)
    rounds = 0
    while len(keys) < n:
        m = int((n - len(keys)) * 1.05) + 1000
        u = rng.choice(n_users, size=m, p=user_w)
        # Popularity-weighted first; later rounds fill the gaps uniformly.
        i = rng.choice(n_items, size=m, p=item_w) if rounds == 0 else rng.integers(0, n_items, m)
        keys = np.unique(np.concatenate([keys, u.astype(np.int64) * n_items + i]))
        rounds += 1
    keys = np.sort(rng.choice(keys, size=n, replace=False))
    users = (keys // n_items + 1).astype(np.int64)
    items = keys % n_items
    item_ids = np.sort(rng.choice(np.arange(1, 4 * n_items), size=n_items, replace=False))
    del keys
    ratings = rng.choice(
        np.arange(1, 11) / 2,
        size=n,
        p=np.array([1.6, 3.2, 1.6, 6.8, 4.9, 19.6, 12.6, 26.5, 8.7, 14.5]) / 100.0,
    )
    start = rng.integers(789_652_009, 1_574_327_703, n_users)
    ts = start[users - 1] + rng.integers(0, 86_400 * 30, n)
    ts = np.minimum(ts, 1_574_327_703)
    item_col = item_ids[items]
    if shuffled:
        perm = rng.permutation(n)
        users, item_col, ratings, ts = users[perm], item_col[perm], ratings[perm], ts[perm]
    tmp = path.with_suffix(".tmp")
    chunk = 2_000_000
    with open(tmp, "w", newline="") as f:
        f.write("userId,movieId,rating,timestamp\n")
        for lo in range(0, n, chunk):
            sl = slice(lo, lo + chunk)
            pd.DataFrame({"u": users[sl], "i": item_col[sl], "r": ratings[sl], "t": ts[sl]}).to_csv(
                f, header=False, index=False, float_format="%.1f", lineterminator="\n"
            )
    tmp.replace(path)


def data_path(n: int, data_dir: Path, shuffled: bool = False) -> Path:
    return data_dir / f"ratings_{n}{'_shuffled' if shuffled else ''}.csv"


# ---------------------------------------------------------------------- children
def _rss_now() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def child(which: str, path: str) -> None:
    import resource

    import numpy as np  # noqa: F401  (imports are not timed)
    import pandas as pd

    if which == "factorkit":
        import factorkit as fk
        from factorkit.data.io import read_csv  # the same function as fk.read_csv
    before = _rss_now()
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    if which == "pandas":
        df = pd.read_csv(path)
        rows = len(df)
        arrays = 0
    else:
        data = read_csv(path, timestamp="timestamp")
        assert getattr(fk, "read_csv", read_csv) is read_csv
        rows = len(data)
        arrays = sum(
            a.nbytes for a in (data.user_index, data.item_index, data.values, data.timestamps)
        )
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime
    peak = r1.ru_maxrss * 1024
    print(json.dumps({"wall": wall, "cpu": cpu, "peak": peak, "before": before, "rows": rows,
                      "arrays": arrays}))  # fmt: skip


def run_child(which: str, path: Path) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", which, "--path", str(path)],
        capture_output=True,
        text=True,
    )
    if out.returncode:
        raise SystemExit(f"the {which} child failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=25_000_000, help="data lines (default 25M)")
    p.add_argument("--repeats", type=int, default=3, help="runs per reader (median)")
    p.add_argument("--data-dir", type=Path, default=HERE / "data")
    p.add_argument(
        "--shuffled",
        action="store_true",
        help="lines in random order instead of sorted by user and item (the worst case)",
    )
    p.add_argument("--child", choices=["pandas", "factorkit"], help=argparse.SUPPRESS)
    p.add_argument("--path", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child(args.child, args.path)
        return

    path = data_path(args.n, args.data_dir, args.shuffled)
    if not path.exists():
        args.data_dir.mkdir(parents=True, exist_ok=True)
        print(f"generating {path} ...", file=sys.stderr)
        t0 = time.perf_counter()
        generate(path, args.n, shuffled=args.shuffled)
        print(f"  done in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    size_mb = path.stat().st_size / 2**20

    results: dict[str, list[dict]] = {"pandas": [], "factorkit": []}
    for r in range(args.repeats):
        for which in results:  # interleaved, so drift on a noisy machine hits both
            res = run_child(which, path)
            results[which].append(res)
            print(f"  run {r + 1}/{args.repeats} {which}: {res['wall']:.2f} s wall, "
                  f"{res['cpu']:.2f} s CPU, peak RSS {res['peak'] / 2**20:.0f} MiB",
                  file=sys.stderr)  # fmt: skip

    def med(which: str, key: str) -> float:
        vals = [x[key] - (x["before"] if key == "delta" else 0) for x in results[which]]
        return statistics.median(vals)

    for which in results:
        for x in results[which]:
            x["delta"] = x["peak"]
    arrays = results["factorkit"][0]["arrays"]
    rows = results["factorkit"][0]["rows"]
    base_wall, base_cpu = med("pandas", "wall"), med("pandas", "cpu")
    mib = 2**20
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    order = "in random order" if args.shuffled else "sorted by user and item"
    print(f"\n{rows:,} ratings {order}, {size_mb:,.0f} MiB CSV; "
          f"final arrays {arrays / mib:,.0f} MiB; "
          f"median of {args.repeats} runs; python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs, load average at the end {load}\n")  # fmt: skip
    print("| reader | wall (s) | x pandas | CPU (s) | x pandas | peak RSS (MiB) "
          "| RSS above start (MiB) | RSS above start / final arrays |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    labels = {
        "pandas": "`pandas.read_csv(path)`",
        "factorkit": '`fk.read_csv(path, timestamp="timestamp")`',
    }
    for which in results:
        wall, cpu = med(which, "wall"), med(which, "cpu")
        peak, delta = med(which, "peak"), med(which, "delta")
        print(f"| {labels[which]} | {wall:.2f} | {wall / base_wall:.2f} | {cpu:.2f} "
              f"| {cpu / base_cpu:.2f} | {peak / mib:,.0f} | {delta / mib:,.0f} "
              f"| {delta / arrays:.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
