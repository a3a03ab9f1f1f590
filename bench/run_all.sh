#!/usr/bin/env bash
# Run every benchmark one after another (quiet machine, nothing else running) and keep
# each one's output in bench/results/<name>.txt; docs/benchmarks.md quotes them.
# Peers: bash bench/setup_peers.sh first.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/results
py=${PYTHON:-python}
run() {
    local name=$1; shift
    echo "== $name: $*" >&2
    { echo "\$ $*"; "$@"; } > "bench/results/$name.txt" 2>&1
    echo "   exit $? ($(date +%T))" >&2
}
run read      $py bench/bench_read.py --repeats 5
run read_shuffled $py bench/bench_read.py --repeats 5 --shuffled
run split     $py bench/bench_split.py
run sgd       $py bench/bench_sgd.py
run svdpp     $py bench/bench_svdpp.py
run als       $py bench/bench_als.py
run implicit_als $py bench/bench_implicit_als.py --synthetic-iterations 3
run memory    $py bench/bench_memory.py
run fold_in   $py bench/bench_implicit_als.py --fold-in
run bpr       $py bench/bench_bpr.py
run recommend $py bench/bench_recommend.py
run tune      $py bench/bench_tune.py
# Spark ALS (issue 13): only where `bash bench/setup_peers.sh --spark` was run
if [ -x bench/.peers/spark/bin/python ]; then run spark $py bench/bench_spark.py; fi
