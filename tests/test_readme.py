"""Every command the README shows runs as written, in order, in a fresh directory."""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
import time
import urllib.request
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
        if argv[1] == "serve":  # a server runs until stopped: check it answers, then stop it
            _check_server([*_factorkit(), *argv[1:]], tmp_path)
            continue
        proc = _run([*_factorkit(), *argv[1:]], tmp_path)
        assert proc.returncode == 0, f"{command}\n{proc.stderr[-3000:]}"
    assert (tmp_path / "recs.parquet").stat().st_size > 0
    assert (tmp_path / "report" / "index.html").exists()


def _check_server(argv: list[str], cwd: Path) -> None:
    """Start the command on a free loopback port, wait for /health, stop it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [*argv, "--port", str(port)], cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, server.stderr.read().decode()[-3000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    assert r.status == 200
                    return
            except OSError:
                assert time.monotonic() < deadline, "factorkit serve did not answer in 120 s"
                time.sleep(0.5)
    finally:
        server.terminate()
        server.wait(timeout=30)
