"""Shared fixtures: one fitted model file, and a real uvicorn server on loopback."""

from __future__ import annotations

import socket
import threading
import time

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

import uvicorn  # noqa: E402

import factorkit as fk  # noqa: E402

ADMIN_TOKEN = "test-token"
MAX_BATCH = 50
MAX_BODY = 64 * 1024


@pytest.fixture(scope="session")
def movielens():
    return fk.datasets.load_movielens_small()


@pytest.fixture(scope="session")
def model_path(tmp_path_factory, movielens):
    """ImplicitALS on MovieLens small (few factors and epochs: the service is under test)."""
    path = tmp_path_factory.mktemp("serve") / "ials.fk"
    fk.ImplicitALS(factors=16, epochs=3, random_state=0).fit(movielens).save(path)
    return path


@pytest.fixture(scope="session")
def model(model_path):
    return fk.load(model_path)


class LiveServer:
    """A uvicorn server in a thread of this process, on a free 127.0.0.1 port."""

    def __init__(self, app) -> None:
        self.app = app
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        sock = self.server.servers[0].sockets[0]
        host, port = sock.getsockname()[:2]
        self.url = f"http://{host}:{port}"
        self.client = httpx.Client(base_url=self.url, timeout=30)
        return self

    def __exit__(self, *exc) -> None:
        self.client.close()
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="session")
def server(model_path):
    app = fk.serve.create_app(
        model_path, admin_token=ADMIN_TOKEN, max_k=100, max_batch=MAX_BATCH,
        max_body_bytes=MAX_BODY,
    )  # fmt: skip
    with LiveServer(app) as live:
        yield live


@pytest.fixture
def client(server):
    return server.client


@pytest.fixture
def limits():
    """The shared server's configured limits and admin token."""
    return {"admin_token": ADMIN_TOKEN, "max_batch": MAX_BATCH, "max_body": MAX_BODY}


@pytest.fixture
def live_server():
    """The LiveServer class, for tests that need a server of their own."""
    return LiveServer


@pytest.fixture
def free_port():
    """A function returning a free TCP port on 127.0.0.1."""

    def pick() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    return pick
