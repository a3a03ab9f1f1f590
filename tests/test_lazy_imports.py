"""``import factorkit`` and a fit on arrays load neither pandas nor tqdm (factorkit._lazy).

pandas with pyarrow is about 65 MB of every process's memory (docs/benchmarks.md, issue
11 item 5); a user who builds data from arrays and fits a model never needs it.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from factorkit import _lazy

SRC = str(Path(__file__).resolve().parents[1] / "src")

SCRIPT = """
import sys
import numpy as np
import factorkit as fk

def loaded():
    return sorted(m for m in ("pandas", "pyarrow", "tqdm") if m in sys.modules)

print("import", loaded())
rng = np.random.default_rng(0)
users, items = rng.integers(0, 60, 500), rng.integers(100, 140, 500)
data = fk.Interactions.from_arrays(
    users, items, rng.integers(1, 6, 500).astype(np.float32), duplicates="last"
)
for model in (fk.ImplicitALS(factors=4, epochs=2), fk.ALS(factors=4, epochs=2),
              fk.BiasedMF(factors=4, epochs=2)):
    model.fit(data)
print("fit", loaded())
history = model.history_
print("history", type(history).__name__, len(history), history.attrs["best_epoch"], loaded())
"""


def test_import_and_fits_on_arrays_never_load_pandas():
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert lines[0] == "import []"
    assert lines[1] == "fit []"
    # reading history_ builds its DataFrame, and only then is pandas imported
    assert lines[2] == "history DataFrame 2 2 ['pandas', 'pyarrow']"


def test_is_pandas_without_and_with_pandas():
    pd = pytest.importorskip("pandas")
    assert _lazy.is_pandas(pd.Series([1]), "Series")
    assert _lazy.is_pandas(pd.Index([1]), "DataFrame", "Index")
    assert not _lazy.is_pandas(np.arange(3), "Series", "Index")
    assert _lazy.pandas.DataFrame is pd.DataFrame


def test_disabled_progress_bar_does_nothing():
    with _lazy.tqdm(total=3, disable=True) as bar:
        bar.update(1)
        bar.set_postfix({"loss": "1.0"})
    bar.close()
