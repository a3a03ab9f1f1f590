"""Benchmark factorkit.decomposition against scikit-learn and SciPy on the same data.

Run from the repository root (scikit-learn lives in its own environment, never a
factorkit dependency: ``bash bench/setup_peers.sh`` creates ``bench/.peers/sklearn``;
override with ``FACTORKIT_SKLEARN_PYTHON=/path/to/python``):

    python bench/bench_decomposition.py             # everything, median of 3
    python bench/bench_decomposition.py --quick     # smaller data, 1 repeat
    python bench/bench_decomposition.py --only nmf  # one table (nmf, svd or weights)
    python bench/bench_decomposition.py --only nmf --nmf-cases cd mu  # NMF rows subset
    python bench/bench_decomposition.py --only nmf --nmf-data dense  # dense NMF rows only

Data (seeded, written to bench/data/decomposition/ once): a sparse tf-idf matrix of
12,000 synthetic documents over 5,000 terms (10 latent topics, Zipf term frequencies,
~80 tokens per document, tf-idf with factorkit's vectorizer formula), a dense
non-negative 2000 x 1000 matrix (rank 20 plus noise), and a 4096 x 4096 float32 "weight
matrix" with a power-law spectrum plus noise.

NMF: both libraries start from the same NNDSVDa factors (init="custom"), run the same
iteration count with tol=0 and report the final loss (0.5 ||X - WH||^2, or the KL
divergence). SVD: the same oversampling (10) and power iterations (5) for randomized
TruncatedSVD / PCA; ARPACK (``scipy.sparse.linalg.svds``) as the third peer; accuracy is
the largest relative error of the top-k singular values against a reference (LAPACK on
dense data, ARPACK at tol=0 on sparse). Every library runs with the same thread count
(BLAS limited with threadpoolctl, factorkit's ``n_threads``).
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

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from factorkit.decomposition import NMF, PCA, TruncatedSVD, randomized_svd
from factorkit.decomposition._nmf import _initialize, _prepare

HERE = Path(__file__).resolve().parent
DATA = HERE / "data" / "decomposition"
SKLEARN_PYTHON = os.environ.get(
    "FACTORKIT_SKLEARN_PYTHON", str(HERE / ".peers" / "sklearn" / "bin" / "python")
)


# ------------------------------------------------------------------------------- data
def make_data(quick: bool) -> dict[str, Path]:
    DATA.mkdir(parents=True, exist_ok=True)
    tag = "quick" if quick else "full"
    paths = {
        "tfidf": DATA / f"tfidf_{tag}.npz",
        "dense": DATA / f"dense_{tag}.npy",
        "weights": DATA / f"weights_{tag}.npy",
    }
    rng = np.random.default_rng(0)
    if not paths["tfidf"].exists():
        n_docs, n_terms, n_topics = (3000, 2000, 10) if quick else (12_000, 5_000, 10)
        zipf = 1.0 / np.arange(1, n_terms + 1) ** 1.1
        topics = np.stack([rng.permutation(zipf) for _ in range(n_topics)])
        topics /= topics.sum(axis=1, keepdims=True)
        mix = rng.dirichlet(np.full(n_topics, 0.2), n_docs)
        rows, cols = [], []
        for d in range(n_docs):
            words = rng.choice(n_terms, size=rng.poisson(80) + 5, p=mix[d] @ topics)
            rows.append(np.full(len(words), d))
            cols.append(words)
        counts = sp.csr_matrix(
            (np.ones(sum(map(len, rows))), (np.concatenate(rows), np.concatenate(cols))),
            shape=(n_docs, n_terms),
        )
        counts.sum_duplicates()
        df = np.bincount(counts.indices, minlength=n_terms)
        idf = np.log((1 + n_docs) / (1 + df)) + 1.0
        X = sp.csr_matrix(counts @ sp.diags(idf))
        norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
        X = sp.csr_matrix(sp.diags(1 / np.maximum(norms, 1e-12)) @ X)
        X.sort_indices()
        sp.save_npz(paths["tfidf"], X)
    if not paths["dense"].exists():
        m, n = (500, 300) if quick else (2000, 1000)
        D = rng.random((m, 20)) @ rng.random((20, n)) + 0.1 * rng.random((m, n))
        np.save(paths["dense"], D)
    if not paths["weights"].exists():
        n = 1024 if quick else 4096
        k = 256
        U, _ = np.linalg.qr(rng.standard_normal((n, k)).astype(np.float32))
        V, _ = np.linalg.qr(rng.standard_normal((n, k)).astype(np.float32))
        s = (np.arange(1, k + 1) ** -0.7).astype(np.float32) * 100
        noise = rng.standard_normal((n, n), dtype=np.float32) * (0.05 * np.linalg.norm(s) / n)
        np.save(paths["weights"], ((U * s) @ V.T + noise).astype(np.float32))
    return paths


def nmf_inits(paths: dict[str, Path], k: int) -> None:
    """Same NNDSVDa start for both libraries (computed once with factorkit)."""
    for name in ("tfidf", "dense"):
        out = DATA / f"init_{paths[name].stem}_{k}.npz"
        if out.exists():
            continue
        X = _load(paths[name])
        data = _prepare(X, None, "bench", np.float64)
        W, H = _initialize(data, k, "nndsvda", np.random.default_rng(0), 2)
        np.savez(out, W=W, H=H)


def _load(path: Path):
    return sp.load_npz(path) if path.suffix == ".npz" else np.load(path)


# ------------------------------------------------------------------------- factorkit
def run_factorkit(cfg: dict) -> dict:
    out = {}
    threads = cfg["threads"]
    with threadpool_limits(threads):
        for case in cfg["nmf"]:
            X = _load(Path(case["data"]))
            init = np.load(case["init"])
            times, cpus, loss = [], [], None
            for _ in range(cfg["repeats"]):
                model = NMF(
                    case["k"], init="custom", solver=case["solver"], loss=case["loss"], tol=0.0,
                    max_iter=case["iters"], n_threads=threads,
                )  # fmt: skip
                start, cpu = time.perf_counter(), time.process_time()
                model.fit(X, W=init["W"], H=init["H"])
                times.append(time.perf_counter() - start)
                cpus.append(time.process_time() - cpu)  # every thread of the process
                loss = model.reconstruction_err_**2 / 2
            out[case["name"]] = {
                "time": statistics.median(times),
                "cpu": statistics.median(cpus),
                "loss": loss,
            }
        for case in cfg["svd"]:
            X = _load(Path(case["data"]))
            X = X.astype(case["dtype"])
            times, s = [], None
            for _ in range(cfg["repeats"]):
                est_cls = PCA if case["kind"] == "pca" else TruncatedSVD
                est = est_cls(
                    case["k"], algorithm="randomized", n_iter=5, n_oversamples=10,
                    random_state=0, n_threads=threads,
                )  # fmt: skip
                start = time.perf_counter()
                est.fit(X)
                times.append(time.perf_counter() - start)
                s = est.singular_values_.astype(np.float64)
            out[case["name"]] = {"time": statistics.median(times), "s": s.tolist()}
    return out


# ----------------------------------------------------------------------------- peers
PEER_SCRIPT = r"""
import json, statistics, sys, time
import numpy as np, scipy.sparse as sp
from threadpoolctl import threadpool_limits
from sklearn.decomposition import NMF, PCA, TruncatedSVD
from scipy.sparse.linalg import svds
cfg = json.loads(sys.argv[1])
load = lambda p: sp.load_npz(p) if p.endswith(".npz") else np.load(p)
out = {}
with threadpool_limits(cfg["threads"]):
    for case in cfg["nmf"]:
        X = load(case["data"]); init = np.load(case["init"])
        times, cpus = [], []
        for _ in range(cfg["repeats"]):
            beta = "frobenius" if case["loss"] == "frobenius" else "kullback-leibler"
            m = NMF(case["k"], init="custom", solver=case["solver"], beta_loss=beta, tol=0.0,
                    max_iter=case["iters"])
            t, c = time.perf_counter(), time.process_time()
            m.fit(X, W=init["W"].copy(), H=init["H"].copy())
            times.append(time.perf_counter() - t); cpus.append(time.process_time() - c)
        out[case["name"]] = {"time": statistics.median(times), "cpu": statistics.median(cpus),
                             "loss": float(m.reconstruction_err_) ** 2 / 2}
    for case in cfg["svd"]:
        X = load(case["data"]).astype(case["dtype"])
        times = []
        for _ in range(cfg["repeats"]):
            if case["kind"] == "pca":
                est = PCA(case["k"], svd_solver="randomized", iterated_power=5,
                          n_oversamples=10, random_state=0)
            else:
                est = TruncatedSVD(case["k"], algorithm="randomized", n_iter=5,
                                   n_oversamples=10, random_state=0)
            t = time.perf_counter(); est.fit(X); times.append(time.perf_counter() - t)
        out[case["name"]] = {"time": statistics.median(times),
                             "s": est.singular_values_.astype(float).tolist()}
        if case["kind"] == "svd":
            times = []
            for _ in range(cfg["repeats"]):
                t = time.perf_counter()
                s = svds(X, k=case["k"], random_state=0, return_singular_vectors="vh")[1]
                times.append(time.perf_counter() - t)
            out[case["name"] + ":svds"] = {"time": statistics.median(times),
                                           "s": np.sort(s)[::-1].astype(float).tolist()}
print(json.dumps(out))
"""


def run_peers(cfg: dict) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(cfg["threads"])}
    proc = subprocess.run(
        [SKLEARN_PYTHON, "-c", PEER_SCRIPT, json.dumps(cfg)],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        sys.exit(f"peer run failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def interleaved(cfg: dict) -> tuple[dict, dict]:
    """Alternate one factorkit run and one peer run per repeat, so that both see the
    same machine load (on a shared machine it changes by several x within minutes);
    report each case's median time."""
    ours_runs, peer_runs = [], []
    one = {**cfg, "repeats": 1}
    for _ in range(cfg["repeats"]):
        ours_runs.append(run_factorkit(one))
        if cfg["nmf"] or cfg["svd"]:
            peer_runs.append(run_peers(one))
    return _medians(ours_runs), _medians(peer_runs)


def _medians(runs: list[dict]) -> dict:
    if not runs:
        return {}
    out = {}
    for name, first in runs[-1].items():
        out[name] = {**first, "time": statistics.median(r[name]["time"] for r in runs)}
        if "cpu" in first:
            out[name]["cpu"] = statistics.median(r[name]["cpu"] for r in runs)
    return out


def reference_singular_values(path: Path, k: int) -> np.ndarray:
    cache = DATA / f"ref_{path.stem}_{k}.npy"
    if cache.exists():
        return np.load(cache)
    X = _load(path)
    if sp.issparse(X):
        from scipy.sparse.linalg import svds

        s = np.sort(svds(X.astype(np.float64), k=k, tol=0, random_state=0)[1])[::-1]
    else:
        s = np.linalg.svd(X.astype(np.float64), compute_uv=False)[:k]
    np.save(cache, s)
    return s


def pca_reference(path: Path, k: int) -> np.ndarray:
    cache = DATA / f"refpca_{path.stem}_{k}.npy"
    if not cache.exists():
        X = np.load(path).astype(np.float64)
        np.save(cache, np.linalg.svd(X - X.mean(axis=0), compute_uv=False)[:k])
    return np.load(cache)


# ------------------------------------------------------------------------------ main
def big_weights(path: Path, rank: int, threads: int) -> list[str]:
    X = np.load(path)
    with threadpool_limits(threads):
        start = time.perf_counter()
        s_full = np.linalg.svd(X, compute_uv=False)
        t_full = time.perf_counter() - start
        randomized_svd(X, rank, random_state=0, n_threads=threads)  # warm (compile)
        start = time.perf_counter()
        U, s, Vt = randomized_svd(X, rank, random_state=0, n_threads=threads)
        t_rand = time.perf_counter() - start
    norm = np.linalg.norm(X.astype(np.float64))
    err = np.linalg.norm(X - (U * s) @ Vt) / norm
    optimum = np.sqrt(np.sum(s_full[rank:].astype(np.float64) ** 2)) / norm
    n = X.shape[0]
    return [
        f"| `numpy.linalg.svd` (all {n}) | {t_full:.2f} | 1.0 | {optimum:.5f} (optimum) |",
        f"| `fk.decomposition.randomized_svd(k={rank})` | {t_rand:.3f} | "
        f"{t_full / t_rand:.1f} | {err:.5f} ({err / optimum - 1:+.3%}) |",
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", choices=("nmf", "svd", "weights"), help="run one of the three tables")
    ap.add_argument(
        "--nmf-cases", nargs="+", choices=("cd", "mu", "kl"), default=("cd", "mu", "kl"),
        help="NMF rows to run: cd (Frobenius), mu (Frobenius), kl (mu, KL divergence)",
    )  # fmt: skip
    ap.add_argument(
        "--nmf-data", nargs="+", choices=("tfidf", "dense"), default=("tfidf", "dense"),
        help="NMF data sets to run: the sparse tf-idf matrix, the dense 2000 x 1000 one",
    )  # fmt: skip
    args = ap.parse_args()
    repeats = 1 if args.quick else args.repeats
    paths = make_data(args.quick)
    k_nmf = 10
    nmf_inits(paths, k_nmf)
    iters = {"cd": 50, "mu": 100}
    nmf = []
    for name in args.nmf_data:
        init = str(DATA / f"init_{paths[name].stem}_{k_nmf}.npz")
        for case, solver, loss in (
            ("cd", "cd", "frobenius"), ("mu", "mu", "frobenius"), ("kl", "mu", "kl")
        ):  # fmt: skip
            if case not in args.nmf_cases:
                continue
            nmf.append({
                "name": f"nmf:{name}:{solver}:{loss}", "data": str(paths[name]), "init": init,
                "k": k_nmf, "solver": solver, "loss": loss, "iters": iters[solver],
            })  # fmt: skip
    svd = []
    for dtype in ("float32", "float64"):
        svd.append({"name": f"svd:tfidf:{dtype}", "kind": "svd", "data": str(paths["tfidf"]),
                    "k": 100, "dtype": dtype})  # fmt: skip
        svd.append({"name": f"svd:dense:{dtype}", "kind": "svd", "data": str(paths["dense"]),
                    "k": 50, "dtype": dtype})  # fmt: skip
        svd.append({"name": f"pca:dense:{dtype}", "kind": "pca", "data": str(paths["dense"]),
                    "k": 50, "dtype": dtype})  # fmt: skip
    if args.only not in (None, "nmf"):
        nmf = []
    if args.only not in (None, "svd"):
        svd = []
    cfg = {"threads": args.threads, "repeats": repeats, "nmf": nmf, "svd": svd}
    # warm factorkit's numba caches before timing (compiles are not what we measure)
    run_factorkit({**cfg, "repeats": 1, "nmf": [{**c, "iters": 1} for c in nmf], "svd": svd})
    load = os.getloadavg()[0]
    ours, peers = interleaved(cfg)
    print(
        f"threads {args.threads}, median of {repeats}, load average {load:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end (CPU: process time, every thread)"
    )
    print()
    print("| data | solver | loss | iterations | sklearn (s) | factorkit (s) | speed-up | "
          "sklearn CPU (s) | factorkit CPU (s) | CPU ratio | "
          "final loss sklearn | factorkit / sklearn loss |")  # fmt: skip
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for case in nmf:
        a, b = peers[case["name"]], ours[case["name"]]
        shape = "x".join(map(str, _load(Path(case["data"])).shape))
        print(
            f"| {case['name'].split(':')[1]} {shape} | {case['solver']} | {case['loss']} | "
            f"{case['iters']} | {a['time']:.3f} | {b['time']:.3f} | {a['time'] / b['time']:.2f}x"
            f" | {a['cpu']:.3f} | {b['cpu']:.3f} | {a['cpu'] / b['cpu']:.2f}x"
            f" | {a['loss']:.6g} | {b['loss'] / a['loss']:.5f} |"
        )
    print()
    print("| data | method | dtype | k | time (s) | x sklearn | max rel. error of s |")
    print("|---|---|---|---:|---:|---:|---:|")
    for case in svd:
        path = Path(case["data"])
        ref = (pca_reference if case["kind"] == "pca" else reference_singular_values)(
            path, case["k"]
        )
        rows = [("sklearn", peers[case["name"]]), ("factorkit", ours[case["name"]])]
        if case["name"] + ":svds" in peers:
            rows.append(("scipy svds (ARPACK)", peers[case["name"] + ":svds"]))
        base = peers[case["name"]]["time"]
        for label, res in rows:
            err = np.max(np.abs(np.asarray(res["s"]) - ref) / ref)
            print(
                f"| {case['name'].split(':')[1]} | {case['kind']} {label} | {case['dtype']} | "
                f"{case['k']} | {res['time']:.3f} | {base / res['time']:.2f} | {err:.2e} |"
            )
    if args.only not in (None, "weights"):
        return
    print()
    print("| 4096x4096 float32, rank 128 | time (s) | speed-up | relative error |")
    print("|---|---:|---:|---:|")
    for line in big_weights(paths["weights"], 128, args.threads):
        print(line)


if __name__ == "__main__":
    sys.exit(main())
