"""docs/low-rank.md's script runs as written and prints what the page shows."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_low_rank_page_script_runs(tmp_path):
    pytest.importorskip("matplotlib")
    env = {**os.environ, "MPLBACKEND": "Agg"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "examples" / "low_rank.py")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "epoch    8/8  loss" in out
    assert "variance explained by 2 components:" in out
    assert "fit_transform: (1000, 50) float32" in out
    assert "9742 documents, 1000 terms" in out and "horror" in out
    assert "600x512x3 at rank 10 (rank=10): storage ratio 0.0362" in out
    assert "(max_error<=0.2)" in out
    assert "of their std)" in out
    page = (ROOT / "docs" / "low-rank.md").read_text()
    for section in ("## 1. A small rating matrix", "## 10. NMF with missing entries"):
        assert section in page
