"""Every command the README shows runs as written, in order, in a fresh directory."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def _factorkit() -> list[str]:
    script = Path(sys.executable).parent / "factorkit"
    return [str(script)] if script.exists() else [sys.executable, "-m", "factorkit.cli"]


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "MPLBACKEND": "Agg"}
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_setup_is_two_commands_and_ci_runs_the_second():
    setup = _blocks("bash")[0].strip().splitlines()
    assert setup == [
        "python3 -m venv .venv && . .venv/bin/activate && pip install -e . && factorkit demo",
        'pip install -e ".[dev]" && python -m pytest -q',
    ]
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'pip install --quiet -e ".[dev]"' in ci
    assert "\npython -m pytest -q\n" in ci


@pytest.mark.slow
def test_readme_python_then_command_line_run_as_written(tmp_path):
    script = "\n".join(_blocks("python"))
    proc = _run([sys.executable, "-c", script], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]

    commands = [
        line.split("#")[0].strip()
        for block in _blocks("bash")[1:]
        for line in block.splitlines()
        if line.strip().startswith("factorkit ")
    ]
    assert len(commands) >= 10
    for command in commands:
        argv = shlex.split(command)
        proc = _run([*_factorkit(), *argv[1:]], tmp_path)
        assert proc.returncode == 0, f"{command}\n{proc.stderr[-3000:]}"
    assert (tmp_path / "recs.parquet").stat().st_size > 0
    assert (tmp_path / "report" / "index.html").exists()
