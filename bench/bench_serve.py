"""Benchmark: the HTTP service under a bounded load, on loopback only.

A MovieLens-small ``ImplicitALS`` (64 factors) is served by ``factorkit serve`` (a real
uvicorn process, 1 or 2 workers) on 127.0.0.1; a load generator in this process (asyncio,
raw HTTP/1.1 keep-alive connections, so the client costs little) sends a fixed number of
requests at concurrency 1, 16 and 64, then stops:

* ``POST /recommend``: a random known user, ``k=10``;
* ``POST /recommend/new-user``: 5 random popular items, ``k=10``, with explanations.

Reported per run: requests/s, p50 and p99 latency (ms), the count of 5xx answers (and of
any non-200), the server's CPU time per request (user + system, all its processes: the
cost of a request whatever else the machine runs), and the server's resident memory
before and after.

Usage::

    python bench/bench_serve.py                       # the table in docs/benchmarks.md
    python bench/bench_serve.py --requests 500 --workers 1 --concurrency 16
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import psutil

import factorkit as fk


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of the server and its worker processes so far."""
    proc = psutil.Process(pid)
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        t = p.cpu_times()
        total += t.user + t.system
    return total


def rss_mb(pid: int) -> float:
    proc = psutil.Process(pid)
    procs = [proc, *proc.children(recursive=True)]
    return sum(p.memory_info().rss for p in procs if p.is_running()) / 2**20


async def _connection(port, bodies, path, latencies, statuses):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for body in bodies:
            head = (
                f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode()
            t0 = time.perf_counter()
            writer.write(head + body)
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - t0)
            statuses.append(int(status_line.split()[1]))
    finally:
        writer.close()


def run_load(port: int, path: str, bodies: list[bytes], concurrency: int) -> dict:
    latencies: list[float] = []
    statuses: list[int] = []
    shares = [bodies[i::concurrency] for i in range(concurrency)]

    async def main():
        await asyncio.gather(
            *(_connection(port, share, path, latencies, statuses) for share in shares)
        )

    t0 = time.perf_counter()
    asyncio.run(main())
    elapsed = time.perf_counter() - t0
    lat = np.array(latencies) * 1000
    codes = np.array(statuses)
    return {
        "rps": len(lat) / elapsed,
        "p50": float(np.percentile(lat, 50)),
        "p99": float(np.percentile(lat, 99)),
        "5xx": int((codes >= 500).sum()),
        "non200": int((codes != 200).sum()),
    }


def start_server(model_path: Path, workers: int) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "factorkit.cli", "serve", str(model_path), "--port", str(port),
         "--workers", str(workers), "-q"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(0.2)
    else:
        proc.kill()
        raise RuntimeError("server did not start")
    # with several workers, each must have loaded the model: wait until all answer
    time.sleep(1.0 if workers == 1 else 3.0)
    return proc, port


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=3000, help="per /recommend run")
    ap.add_argument("--new-user-requests", type=int, default=1500)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    ap.add_argument("--model", help="a saved model (default: fit ImplicitALS on MovieLens small)")
    ap.add_argument(
        "--catalogue",
        type=int,
        metavar="N_ITEMS",
        help="instead: synthetic implicit data with N_ITEMS items (20,000 users, 3 interactions "
        "per item), ImplicitALS with 64 factors, 2 epochs (the large-catalogue study)",
    )
    args = ap.parse_args()

    if args.model:
        model_path = Path(args.model)
    elif args.catalogue:
        from factorkit.data.synthetic import make_implicit

        model_path = Path(tempfile.mkdtemp(prefix="bench-serve-")) / "catalogue.fk"
        t0 = time.perf_counter()
        data, _ = make_implicit(
            n_users=20_000, n_items=args.catalogue, n_interactions=3 * args.catalogue,
            rank=16, random_state=0, timestamps=False,
        )  # fmt: skip
        t1 = time.perf_counter()
        fk.ImplicitALS(factors=64, epochs=2, random_state=0).fit(data).save(model_path)
        size_mb = model_path.stat().st_size / 2**20
        fit_s = time.perf_counter() - t1
        print(f"catalogue: {args.catalogue:,} items; data {t1 - t0:.0f} s, fit+save {fit_s:.0f} s; "
              f"file {size_mb:.0f} MB")  # fmt: skip
    else:
        data = fk.datasets.load_movielens_small()
        model_path = Path(tempfile.mkdtemp(prefix="bench-serve-")) / "ials.fk"
        fk.ImplicitALS(factors=64, epochs=10, random_state=0).fit(data).save(model_path)
    model = fk.load(model_path)
    rng = random.Random(0)
    users = model.user_map_.ids.tolist()
    popular = fk.onboarding_items(model, n=200, beta=1.0).tolist()
    rec_bodies = [
        json.dumps({"user": rng.choice(users), "k": 10}).encode() for _ in range(args.requests)
    ]
    new_bodies = [
        json.dumps({"items": rng.sample(popular, 5), "k": 10}).encode()
        for _ in range(args.new_user_requests)
    ]
    print(f"cores: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f}")
    print("| endpoint | workers | concurrency | requests | req/s | p50 ms | p99 ms | 5xx |"
          " server CPU ms/req | RSS before MB | RSS after MB |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for workers in args.workers:
        proc, port = start_server(model_path, workers)
        try:
            for path, bodies in (("/recommend", rec_bodies), ("/recommend/new-user", new_bodies)):
                run_load(port, path, bodies[:200], 4)  # warm-up, not reported
                for c in args.concurrency:
                    before, cpu0 = rss_mb(proc.pid), cpu_seconds(proc.pid)
                    r = run_load(port, path, bodies, c)
                    after, cpu1 = rss_mb(proc.pid), cpu_seconds(proc.pid)
                    cpu_ms = (cpu1 - cpu0) / len(bodies) * 1000
                    print(
                        f"| `{path}` | {workers} | {c} | {len(bodies)} | {r['rps']:,.0f} | "
                        f"{r['p50']:.2f} | {r['p99']:.2f} | {r['5xx']} | {cpu_ms:.2f} | "
                        f"{before:.0f} | {after:.0f} |",
                        flush=True,
                    )
                    if r["non200"]:
                        print(f"  ({r['non200']} answers were not 200)")
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
