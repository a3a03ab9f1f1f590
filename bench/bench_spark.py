"""Against Spark ALS (issue 13): fit time, test RMSE and top-10 for every user.

Spark MLlib's ``pyspark.ml.recommendation.ALS`` on ``local[2]`` and factorkit's ``fk.ALS``
(2 threads; optionally ``fk.distributed`` on a 2-worker Dask ``LocalCluster``) on the
same train/test split of MovieLens small (``fk.split.random(test_size=0.2,
random_state=0)``), written once as Parquet with raw ids and read by every side.

Same problem: rank 20, 10 iterations, ``regParam = regularization = 0.1`` with ALS-WR's
``lambda * n`` weighting on both sides (Spark always scales lambda by each row's rating
count; ``fk.ALS(weighted_regularization=True)`` is the default). factorkit's ALS also fits
a global mean and user/item biases (jointly with the factors, under the same penalty);
Spark's has none. factorkit's ``predict`` clips to the training rating scale, Spark's
``transform`` does not: the table gives Spark's RMSE both ways.

Test RMSE is over the test rows Spark keeps with ``coldStartStrategy="drop"``: user and
item both in train (factorkit scores exactly those rows). "top-10 for all users" is
``model.recommendForAllUsers(10).collect()`` against ``recommend_all(k=10,
exclude_seen=False)`` (Spark does not leave out seen items; factorkit's default
``exclude_seen=True`` is timed too). Every timed step runs ``--repeats`` times after one
untimed warm-up in the same process (numba compilation for factorkit, JIT warm-up for
Spark's JVM); the warm-up's fit time is reported as "first fit".

Spark is never a factorkit dependency: it runs in its own environment, a child process
of ``bench/.peers/spark/bin/python`` (create it with ``bash bench/setup_peers.sh
--spark``; Java from the Debian packages), ``local[2]`` only, bound to 127.0.0.1, UI off.

    python bench/bench_spark.py                 # Spark, factorkit, fk.distributed
    python bench/bench_spark.py --repeats 1 --no-dask
    python bench/bench_spark.py --spark-conf spark.sql.shuffle.partitions=4
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
import pandas as pd

SPARK_PYTHON = os.environ.get(
    "FACTORKIT_SPARK_PYTHON",
    str(Path(__file__).resolve().parent / ".peers" / "spark" / "bin" / "python"),
)

# Runs in the Spark environment; prints one JSON line last.
SPARK_CHILD = r"""
import json, subprocess, sys, time
cfg = json.loads(sys.argv[1])
t0 = time.perf_counter()
from pyspark.sql import SparkSession
builder = (
    SparkSession.builder.master(cfg["master"])
    .appName("factorkit-bench-spark")
    .config("spark.ui.enabled", "false")
    .config("spark.driver.memory", cfg["driver_memory"])
    .config("spark.driver.host", "127.0.0.1")
    .config("spark.driver.bindAddress", "127.0.0.1")
)
for key, value in cfg["conf"].items():
    builder = builder.config(key, value)
spark = builder.getOrCreate()
spark.sparkContext.setLogLevel("ERROR")
out = {"start": time.perf_counter() - t0}
import numpy as np
from pyspark.ml.evaluation import RegressionEvaluator
from pyspark.ml.recommendation import ALS

t0 = time.perf_counter()
train = spark.read.parquet(cfg["train"]).cache()
test = spark.read.parquet(cfg["test"]).cache()
out["n_train"], out["n_test"] = train.count(), test.count()
out["load"] = time.perf_counter() - t0

jvm = spark.sparkContext._jvm
out["spark"] = spark.version
out["java"] = jvm.System.getProperty("java.vm.name") + " " + jvm.System.getProperty("java.version")
try:
    out["blas"] = jvm.dev.ludovic.netlib.blas.BLAS.getInstance().getClass().getName()
except Exception as exc:  # the class moved or is absent: not essential
    out["blas"] = f"unknown ({type(exc).__name__})"

evaluator = RegressionEvaluator(metricName="rmse", labelCol="rating", predictionCol="prediction")
runs = []
for _ in range(cfg["repeats"] + 1):  # the first is the warm-up
    als = ALS(
        rank=cfg["rank"], maxIter=cfg["iterations"], regParam=cfg["reg"],
        userCol="user", itemCol="item", ratingCol="rating",
        coldStartStrategy="drop", seed=cfg["seed"],
    )
    run = {}
    t0 = time.perf_counter()
    model = als.fit(train)  # eager: ALS materialises the final factors
    run["fit"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    run["rmse"] = evaluator.evaluate(model.transform(test))
    run["score"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    recs = model.recommendForAllUsers(10).collect()
    run["recommend_all"] = time.perf_counter() - t0
    run["n_rec_users"] = len(recs)
    run["n_recs"] = sum(len(r["recommendations"]) for r in recs)
    pred = model.transform(test).select("rating", "prediction").toPandas()
    p, r = pred["prediction"].to_numpy(), pred["rating"].to_numpy()
    err, clipped = p - r, np.clip(p, cfg["lo"], cfg["hi"]) - r
    run["n_kept"] = len(pred)
    run["rmse_check"] = float(np.sqrt(np.mean(err ** 2)))
    run["rmse_clipped"] = float(np.sqrt(np.mean(clipped ** 2)))
    runs.append(run)
    model.userFactors.unpersist()
    model.itemFactors.unpersist()
out["runs"] = runs
spark.stop()
print(json.dumps(out))
"""


def run_spark(train_path: str, test_path: str, args: argparse.Namespace, scale) -> dict:
    if not Path(SPARK_PYTHON).exists():
        raise SystemExit(
            f"bench_spark: no Spark environment at {SPARK_PYTHON}; create it with "
            "`bash bench/setup_peers.sh --spark` or set FACTORKIT_SPARK_PYTHON"
        )
    cfg = {
        "master": f"local[{args.threads}]",
        "driver_memory": args.driver_memory,
        "conf": dict(kv.split("=", 1) for kv in args.spark_conf),
        "train": train_path,
        "test": test_path,
        "rank": args.rank,
        "iterations": args.iterations,
        "reg": args.reg,
        "seed": 0,
        "repeats": args.repeats,
        "lo": scale[0],
        "hi": scale[1],
    }
    env = {
        **os.environ,
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_PYTHON": SPARK_PYTHON,
        "PYSPARK_DRIVER_PYTHON": SPARK_PYTHON,
    }
    t0 = time.perf_counter()
    proc = subprocess.run(
        [SPARK_PYTHON, "-c", SPARK_CHILD, json.dumps(cfg)],
        env=env,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"bench_spark: the Spark child failed (exit {proc.returncode})")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["process"] = time.perf_counter() - t0
    return out


def fk_rmse(model, test: pd.DataFrame) -> tuple[float, float]:
    t0 = time.perf_counter()
    pred = model.predict(test["user"].to_numpy(), test["item"].to_numpy(), unknown="error")
    seconds = time.perf_counter() - t0
    return float(np.sqrt(np.mean((pred - test["rating"].to_numpy()) ** 2))), seconds


def fk_recommend_all(model, exclude_seen: bool) -> tuple[float, int]:
    t0 = time.perf_counter()
    n = sum(items.size for _, items, _ in model.recommend_all(k=10, exclude_seen=exclude_seen))
    return time.perf_counter() - t0, n


def run_factorkit(train_df: pd.DataFrame, kept: pd.DataFrame, args) -> dict:
    import factorkit as fk

    t0 = time.perf_counter()
    train = fk.Interactions.from_pandas(train_df, "user", "item", "rating")
    out = {"load": time.perf_counter() - t0, "runs": []}
    for _ in range(args.repeats + 1):  # the first is the warm-up (numba compilation)
        run = {}
        t0 = time.perf_counter()
        model = fk.ALS(
            factors=args.rank,
            epochs=args.iterations,
            regularization=args.reg,
            random_state=0,
            n_threads=args.threads,
        ).fit(train)
        run["fit"] = time.perf_counter() - t0
        run["rmse"], run["score"] = fk_rmse(model, kept)
        run["recommend_all"], run["n_recs"] = fk_recommend_all(model, exclude_seen=False)
        run["recommend_all_unseen"], _ = fk_recommend_all(model, exclude_seen=True)
        out["runs"].append(run)
    out["n_rec_users"] = model.user_map_.ids.size
    return out


def run_dask(train_path: str, kept: pd.DataFrame, args) -> dict:
    import factorkit as fk
    from distributed import Client, LocalCluster
    from factorkit import distributed as fkd

    t0 = time.perf_counter()
    cluster = LocalCluster(
        n_workers=args.threads,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
        env={"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"},
    )
    client = Client(cluster)
    out = {"start": time.perf_counter() - t0, "runs": []}
    try:
        t0 = time.perf_counter()
        data = fkd.read_parquet(train_path, "user", "item", "rating", client=client)
        out["load"] = time.perf_counter() - t0
        for _ in range(args.repeats + 1):  # the first is the warm-up
            run = {}
            model = fk.ALS(
                factors=args.rank,
                epochs=args.iterations,
                regularization=args.reg,
                random_state=0,
                n_threads=1,
            )
            t0 = time.perf_counter()
            fkd.fit(model, data)
            run["fit"] = time.perf_counter() - t0
            run["rmse"], run["score"] = fk_rmse(model, kept)
            t0 = time.perf_counter()
            recs = fkd.recommend_all(model, k=10, exclude_seen=False, client=client)
            run["recommend_all"] = time.perf_counter() - t0
            run["n_recs"] = len(recs)
            out["runs"].append(run)
    finally:
        client.close()
        cluster.close()
    return out


def med(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs[1:])


def fmt(x: float | None, digits: int = 2) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def ratio(a: float | None, b: float | None) -> str:
    return "—" if a is None or b is None else f"{a / b:.0f}x" if a / b >= 10 else f"{a / b:.1f}x"


def table(spark: dict, local: dict, dask: dict | None, import_s: float) -> str:
    s, f = spark["runs"], local["runs"]
    d = dask["runs"] if dask else None

    def row(label, sv, fv, dv, digits=2, ratios=True):
        cells = [label, fmt(sv, digits), fmt(fv, digits)]
        cells.append(ratio(sv, fv) if ratios else "")
        if dask is not None:
            cells += [fmt(dv, digits), ratio(sv, dv) if ratios else ""]
        return "| " + " | ".join(cells) + " |"

    head = "| | Spark ALS local[2] | factorkit ALS, 2 threads | Spark / factorkit |"
    rule = "|---|---|---|---|"
    if dask is not None:
        head += " fk.distributed, 2 workers | Spark / distributed |"
        rule += "---|---|"
    lines = [
        head,
        rule,
        row("start (SparkSession / `import factorkit` / LocalCluster), s",
            spark["start"], import_s, dask and dask["start"]),
        row("load train + test, s", spark["load"], local["load"], dask and dask["load"]),
        row("first fit in the process, s", s[0]["fit"], f[0]["fit"], d and d[0]["fit"]),
        row("**fit, s** (median after warm-up)", med(s, "fit"), med(f, "fit"), d and med(d, "fit")),
        row("score the test rows, s", med(s, "score"), med(f, "score"), d and med(d, "score")),
        row("**top-10 for all users, s** (seen items included)",
            med(s, "recommend_all"), med(f, "recommend_all"), d and med(d, "recommend_all")),
        row("top-10 for all users, seen items left out, s",
            None, med(f, "recommend_all_unseen"), None),
        row("**test RMSE**", s[-1]["rmse"], f[-1]["rmse"], d and d[-1]["rmse"], 4, False),
        row("test RMSE, predictions clipped to [0.5, 5]",
            s[-1]["rmse_clipped"], f[-1]["rmse"], d and d[-1]["rmse"], 4, False),
    ]  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="local[N], n_threads, workers")
    parser.add_argument("--rank", type=int, default=20)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--reg", type=float, default=0.1)
    parser.add_argument("--driver-memory", default="4g")
    parser.add_argument(
        "--spark-conf", action="append", default=[], metavar="KEY=VALUE", help="extra conf"
    )
    parser.add_argument("--no-dask", action="store_true", help="skip fk.distributed")
    args = parser.parse_args()
    for kv in args.spark_conf:
        if "=" not in kv:
            parser.error(
                f"--spark-conf takes KEY=VALUE, e.g. spark.sql.shuffle.partitions=4; got {kv!r}"
            )

    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import factorkit"], check=True)
    import_s = time.perf_counter() - t0

    import factorkit as fk

    data = fk.datasets.load_movielens_small()
    train, test = fk.split.random(data, test_size=0.2, random_state=0)
    train_df = train.to_pandas()[["user", "item", "rating"]]
    test_df = test.to_pandas()[["user", "item", "rating"]]
    known = test_df["user"].isin(train_df["user"]) & test_df["item"].isin(train_df["item"])
    kept = test_df[known]
    scale = (float(train_df["rating"].min()), float(train_df["rating"].max()))
    with tempfile.TemporaryDirectory() as root:
        train_path, test_path = os.path.join(root, "train"), os.path.join(root, "test")
        os.makedirs(train_path)
        os.makedirs(test_path)
        train_df.to_parquet(os.path.join(train_path, "part-0.parquet"), index=False)
        test_df.to_parquet(os.path.join(test_path, "part-0.parquet"), index=False)
        load_before = os.getloadavg()
        spark = run_spark(train_path, test_path, args, scale)
        local = run_factorkit(train_df, kept, args)
        dask = None if args.no_dask else run_dask(train_path, kept, args)
        load_after = os.getloadavg()

    s = spark["runs"][-1]
    print(
        f"# MovieLens small: {len(train_df)} train, {len(test_df)} test ratings; "
        f"{len(kept)} test rows with known user and item (Spark kept {s['n_kept']})"
    )
    print(
        f"# rank {args.rank}, {args.iterations} iterations, reg {args.reg} (ALS-WR); "
        f"{args.threads} threads; median of {args.repeats} after one warm-up"
    )
    print(
        f"# Spark {spark['spark']} ({spark['java']}, BLAS {spark['blas']}), "
        f"conf {dict(kv.split('=', 1) for kv in args.spark_conf) or 'defaults'}; "
        f"factorkit {fk.__version__}; Spark child process {spark['process']:.1f} s in all"
    )
    print(
        f"# top-10 rows: Spark {s['n_recs']} for {s['n_rec_users']} users, factorkit "
        f"{local['runs'][-1]['n_recs']} for {local['n_rec_users']} users"
        + (f", distributed {dask['runs'][-1]['n_recs']}" if dask else "")
    )
    print(
        "# load average (1, 5, 15 min) before "
        + ", ".join(f"{x:.2f}" for x in load_before)
        + "; after "
        + ", ".join(f"{x:.2f}" for x in load_after)
    )
    for name, side in (("Spark", spark), ("factorkit", local), ("distributed", dask)):
        if side is not None:  # the spread, warm-up first: the machine is shared
            fits = ", ".join(f"{r['fit']:.2f}" for r in side["runs"])
            print(f"# {name} fit per run, s: {fits}")
    print(table(spark, local, dask, import_s))
    print("# raw: " + json.dumps({"spark": spark, "factorkit": local, "distributed": dask}))


if __name__ == "__main__":
    main()
