"""Reloading swaps models atomically; a bad file is refused and the old model serves on."""

from __future__ import annotations

import shutil
import threading

import pytest

import factorkit as fk

ADMIN_TOKEN = "reload-token"
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def own_server(model_path, tmp_path, live_server):
    """A server of its own (reloads must not disturb the shared one), on a copy."""
    path = tmp_path / "served.fk"
    shutil.copy(model_path, path)
    with live_server(fk.serve.create_app(path, admin_token=ADMIN_TOKEN)) as live:
        yield live, path


def test_reload_swaps_without_failing_requests(own_server, movielens, tmp_path):
    live, _ = own_server
    client = live.client
    old = client.get("/model").json()
    other = tmp_path / "other.fk"
    fk.BaselineOnly().fit(movielens).save(other)

    failures, done = [], threading.Event()

    def hammer():
        import httpx

        with httpx.Client(base_url=live.url, timeout=30) as c:
            while not done.is_set():
                r = c.post("/recommend", json={"user": 1, "k": 5})
                if r.status_code != 200 or len(r.json()["items"]) != 5:
                    failures.append(r.text)

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        r = client.post("/admin/reload", json={"path": str(other)}, headers=AUTH)
    finally:
        done.set()
        for t in threads:
            t.join()
    assert r.status_code == 200, r.text
    assert failures == []
    new = client.get("/model").json()
    assert new["model_class"] == "BaselineOnly" and new["sha256"] != old["sha256"]
    assert 'factorkit_model_reloads_total{outcome="ok"} 1' in client.get("/metrics").text


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        (lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]), ["not a factorkit"]),
        (lambda p: p.write_text("not a model"), ["not a factorkit model file"]),
        (lambda p: p.unlink(), ["no model file"]),
    ],
)
def test_bad_file_is_refused_and_old_model_keeps_serving(own_server, damage, words):
    live, path = own_server
    client = live.client
    before = client.post("/recommend", json={"user": 1, "k": 3}).json()
    damage(path)
    r = client.post("/admin/reload", headers=AUTH)
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert detail.startswith("reload refused:") and "Still serving" in detail
    assert any(w in detail for w in words), detail
    assert client.post("/recommend", json={"user": 1, "k": 3}).json() == before
