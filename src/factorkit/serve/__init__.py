"""factorkit's HTTP service: a FastAPI app over a saved model, and a web page.

Needs the ``serve`` extra (``pip install factorkit[serve]``: FastAPI and uvicorn).
``create_app(path)`` returns the ASGI application for embedding; ``run`` (and
``factorkit serve MODEL``) serves it with uvicorn. See ``docs/serving.md``.
"""

from __future__ import annotations

import inspect
import json
import os
from typing import Any

try:
    import fastapi  # noqa: F401
    import uvicorn  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        f"factorkit.serve needs the serve extra ({exc.name} is missing); install it with "
        "pip install 'factorkit[serve]'"
    ) from None

from factorkit.serve.app import ENV_CONFIG, ServeConfig, ServiceError, create_app

__all__ = ["ServeConfig", "ServiceError", "create_app", "run"]

#: seconds a worker may take to start (import, load, warm up) before uvicorn gives up
WORKER_STARTUP_S = 120


def run(
    path: str | os.PathLike,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    admin_token: str | None = None,
    log_level: str = "warning",
    **limits: Any,
) -> None:
    """Serve the model at ``path`` with uvicorn until interrupted (loopback by default).

    ``limits`` are :class:`ServeConfig` fields (``max_k``, ``max_batch``,
    ``max_body_bytes``). With ``workers > 1`` each worker process loads the model, and a
    reload restarts the workers one at a time through uvicorn's supervisor.
    """
    import uvicorn

    options = {"admin_token": admin_token, **limits}
    if workers <= 1:
        app = create_app(path, **options)
        uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)
        return
    from factorkit.serve._state import load_served

    load_served(path)  # refuse a bad file here, before any worker starts
    os.environ[ENV_CONFIG] = json.dumps({"path": str(path), "supervised": True, **options})
    extra = {}
    if "timeout_worker_healthcheck" in inspect.signature(uvicorn.Config).parameters:
        # a worker imports numba and loads and warms the model before it answers the
        # supervisor's health check: uvicorn's 5 s default kills slow starters as hung
        extra["timeout_worker_healthcheck"] = WORKER_STARTUP_S
    uvicorn.run(
        "factorkit.serve.app:_app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        access_log=False,
        **extra,
    )
