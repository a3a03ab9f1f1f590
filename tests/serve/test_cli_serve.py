"""`factorkit serve` as a real process: loopback, and SIGHUP reloads (a bad file is refused)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import httpx
import pytest

import factorkit as fk

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="needs POSIX signals")


def wait_until(condition, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


def test_serve_command_and_sighup_reload(model_path, movielens, tmp_path, free_port):
    path = tmp_path / "served.fk"
    shutil.copy(model_path, path)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "factorkit.cli", "serve", str(path), "--port", str(port), "-q"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
        wait_until(lambda: client.get("/health").status_code == 200)
        assert client.get("/model").json()["model_class"] == "ImplicitALS"
        # a new model moved over the file, then SIGHUP: the new one serves
        fk.BaselineOnly().fit(movielens).save(tmp_path / "next.fk")
        os.replace(tmp_path / "next.fk", path)
        proc.send_signal(signal.SIGHUP)
        wait_until(lambda: client.get("/model").json()["model_class"] == "BaselineOnly")
        # a corrupt file and SIGHUP: refused, the old model keeps serving
        sha = client.get("/model").json()["sha256"]
        path.write_bytes(b"garbage")
        proc.send_signal(signal.SIGHUP)
        wait_until(lambda: 'outcome="refused"} 1' in client.get("/metrics").text)
        assert client.get("/model").json()["sha256"] == sha
        assert client.post("/recommend", json={"user": 1, "k": 2}).status_code == 200
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    assert "reload refused" in out


def test_serve_command_refuses_a_bad_file(tmp_path, capsys):
    from factorkit.cli import main

    bad = tmp_path / "bad.fk"
    bad.write_text("nope")
    assert main(["serve", str(bad), "--port", "1"]) == 2
    assert "factorkit serve: error:" in capsys.readouterr().err


@pytest.mark.slow
def test_two_workers_reload_through_the_supervisor(model_path, movielens, tmp_path, free_port):
    path = tmp_path / "served.fk"
    shutil.copy(model_path, path)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "factorkit.cli", "serve", str(path), "--port", str(port),
         "--workers", "2", "--admin-token", "tok", "-q"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    auth = {"Authorization": "Bearer tok"}
    try:
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
        wait_until(lambda: client.get("/health").status_code == 200, timeout=120)
        fk.BaselineOnly().fit(movielens).save(tmp_path / "next.fk")
        r = client.post("/admin/reload", json={"path": str(tmp_path / "next.fk")}, headers=auth)
        assert r.status_code == 422 and "only the served file" in r.json()["detail"]
        os.replace(tmp_path / "next.fk", path)
        assert client.post("/admin/reload", headers=auth).status_code == 200
        # every worker ends up on the new model (a new connection each time, so the
        # answers come from both workers)
        url = f"http://127.0.0.1:{port}/model"
        wait_until(
            lambda: all(
                httpx.get(url, timeout=30).json()["model_class"] == "BaselineOnly" for _ in range(8)
            ),
            timeout=180,
        )
        path.write_bytes(b"garbage")
        r = client.post("/admin/reload", headers=auth)
        assert r.status_code == 422 and "Still serving" in r.json()["detail"]
        assert client.post("/recommend", json={"user": 1, "k": 2}).status_code == 200
    finally:
        proc.terminate()
        proc.communicate(timeout=60)


def test_demo_serve_fits_the_movielens_model_and_serves_it(tmp_path, monkeypatch, capsys):
    from factorkit import serve
    from factorkit.cli import main

    served = {}
    monkeypatch.setattr(serve, "run", lambda path, **kw: served.update(path=path, **kw))
    out = tmp_path / "demo.fk"
    assert main(["demo", "--serve", "--model-out", str(out), "--port", "8123", "-q"]) == 0
    assert served["path"] == out and served["host"] == "127.0.0.1" and served["port"] == 8123
    model = fk.load(out)
    assert type(model).__name__ == "ImplicitALS" and model.item_titles([1]) == ["Toy Story (1995)"]
    assert "open http://127.0.0.1:8123/" in capsys.readouterr().out
