#!/usr/bin/env bash
# Create bench/.peers: a virtual environment holding the peer libraries the benchmarks
# compare against. They are never dependencies of factorkit.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

# Optional: `bash bench/setup_peers.sh --spark` sets up only Spark for bench/bench_spark.py:
# Java from the Debian packages (needs root) and pyspark in bench/.peers/spark.
setup_spark() {
    if ! command -v java >/dev/null; then
        apt-get update
        apt-get install -y openjdk-17-jre-headless
    fi
    java -version
    mkdir -p "$here/.peers"
    python3 -m venv "$here/.peers/spark"
    "$here/.peers/spark/bin/pip" install --quiet "pyspark==4.3.0" numpy pandas pyarrow
    "$here/.peers/spark/bin/python" -c "import pyspark; print('pyspark:', pyspark.__version__)"
}
if [ "${1:-}" = "--spark" ]; then
    setup_spark
    exit 0
fi

# Optional: `bash bench/setup_peers.sh --libmf SRC` builds libmf's command-line tools for
# bench/bench_libmf.py from a checkout SRC of github.com/cjlin1/libmf (commit 1498368 when
# measured) into bench/.peers/libmf: its own Makefile with the AVX option its comments
# describe (g++ -O3 -march=native -mavx, OpenMP) instead of the SSE default.
if [ "${1:-}" = "--libmf" ]; then
    command -v g++ >/dev/null || { apt-get update && apt-get install -y g++ make; }
    build="$(mktemp -d)"
    cp -r "${2:?usage: setup_peers.sh --libmf LIBMF_SOURCE_DIR}/." "$build"
    make -C "$build" clean all DFLAG="-DUSEAVX -DUSEOMP" \
        CXXFLAGS="-Wall -O3 -pthread -std=c++0x -march=native -mavx -fopenmp"
    mkdir -p "$here/.peers/libmf"
    cp "$build/mf-train" "$build/mf-predict" "$here/.peers/libmf/"
    rm -rf "$build"
    exit 0
fi

# Optional: `bash bench/setup_peers.sh --lightfm SRC_DIR` installs LightFM (bench/bench_hybrid.py)
# into the existing bench/.peers from a checkout of its GitHub source: the PyPI sdist of
# LightFM 1.17 does not build on Python 3.11 (its setup.py fails with "'dict' object has no
# attribute '__LIGHTFM_SETUP__'"; there is no 3.11 wheel), the GitHub master (commit 0c9c31e,
# same version number) does. SRC_DIR is a checkout or an export of it, e.g.
#   git --git-dir=/path/to/lightfm.git archive HEAD | tar -x -C /tmp/lightfm-src
if [ "${1:-}" = "--lightfm" ]; then
    src="${2:?usage: bash bench/setup_peers.sh --lightfm SRC_DIR (a LightFM source checkout)}"
    [ -f "$src/setup.py" ] || { echo "no setup.py in $src: pass LightFM's source directory" >&2; exit 1; }
    [ -x "$here/.peers/bin/pip" ] || { echo "run bash bench/setup_peers.sh first" >&2; exit 1; }
    "$here/.peers/bin/pip" install --quiet "$src"
    "$here/.peers/bin/python" -c "import lightfm; print('lightfm:', lightfm.__version__)"
    exit 0
fi

python3 -m venv "$here/.peers"
"$here/.peers/bin/pip" install --quiet "numpy<2" scipy pandas \
    "scikit-surprise==1.1.5" "implicit==0.7.3"
"$here/.peers/bin/python" -c "import surprise, implicit; print('peers:', surprise.__version__, implicit.__version__)"
# scikit-learn (bench/bench_decomposition.py) in its own environment with numpy 2, like factorkit's
python3 -m venv "$here/.peers/sklearn"
"$here/.peers/sklearn/bin/pip" install --quiet "numpy>=2" scipy scikit-learn threadpoolctl
"$here/.peers/sklearn/bin/python" -c "import sklearn; print('sklearn:', sklearn.__version__)"
