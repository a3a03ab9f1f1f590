#!/usr/bin/env bash
# Create bench/.peers: a virtual environment holding the peer libraries the benchmarks
# compare against. They are never dependencies of factorkit.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python3 -m venv "$here/.peers"
"$here/.peers/bin/pip" install --quiet "numpy<2" scipy pandas \
    "scikit-surprise==1.1.5" "implicit==0.7.3"
"$here/.peers/bin/python" -c "import surprise, implicit; print('peers:', surprise.__version__, implicit.__version__)"
# scikit-learn (bench/bench_decomposition.py) in its own environment with numpy 2, like factorkit's
python3 -m venv "$here/.peers/sklearn"
"$here/.peers/sklearn/bin/pip" install --quiet "numpy>=2" scipy scikit-learn threadpoolctl
"$here/.peers/sklearn/bin/python" -c "import sklearn; print('sklearn:', sklearn.__version__)"
