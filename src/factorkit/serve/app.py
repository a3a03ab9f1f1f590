"""The FastAPI application: endpoints over the public model API, errors as 4xx, metrics.

Model calls run on the event loop's thread, not in a thread pool: each one is a
sub-millisecond CPU-bound call whose numba kernels release the GIL but whose Python
around them (validation, id lookups, JSON) holds it and dominates at these sizes, so a
pool would add a thread hand-off per request without adding parallelism, and it would
launch numba's parallel kernels (a large batch) from several threads at once (see
``_threads.concurrent_launches_safe``). Parallelism comes from ``--workers`` (processes).
Single-row paths run with one BLAS thread (``single_thread_blas``). Only a reload, which
reads a file and warms a model up, runs in a worker thread, so the current model keeps
answering meanwhile.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import os
import signal
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import numpy as np
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

import factorkit as fk
from factorkit._threads import single_thread_blas
from factorkit._validation import Boolean, Interval, NoneOr, Satisfies, validate_params
from factorkit.exceptions import (
    FactorkitError,
    NotFittedError,
    UnknownIdError,
)
from factorkit.serve import schemas as s
from factorkit.serve._state import Served, load_served
from factorkit.serve.metrics import Metrics

__all__ = ["ServeConfig", "ServiceError", "create_app"]

STATIC = Path(__file__).parent / "static"
ENV_CONFIG = "FACTORKIT_SERVE_CONFIG"


@dataclass(frozen=True)
class ServeConfig:
    """Limits and options of one service.

    ``max_k`` bounds ``k``; ``max_batch`` bounds every list in a request (users of a batch,
    pairs, a new user's items); ``max_body_bytes`` bounds a request body. ``admin_token``
    enables ``/admin/reload`` (disabled when None). ``supervised`` is set for workers of
    ``--workers N``: a reload there restarts every worker through the supervisor.
    """

    max_k: int = 1000
    max_batch: int = 1000
    max_body_bytes: int = 1 << 20
    admin_token: str | None = None
    supervised: bool = False


class ServiceError(Exception):
    """An error answered with ``status`` and ``message`` (always a 4xx)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"detail": message, **extra}, status_code=status)


# ---------------------------------------------------------------------- ids
def _check_ids(values: list[Any], id_type: str, kind: str, field: str) -> list[Any]:
    """Refuse ids of the wrong JSON type for this model, saying which type to send."""
    if id_type == "int":
        for v in values:
            if isinstance(v, str):
                hint = f" ({int(v)}, without quotes)" if v.strip().lstrip("-").isdigit() else ""
                raise ServiceError(
                    422,
                    f"{field}: {kind} id {v!r} is a string, but this model's {kind} ids are "
                    f"integers; send it as a JSON number{hint}",
                )
    elif id_type == "str":
        for v in values:
            if not isinstance(v, str):
                raise ServiceError(
                    422,
                    f"{field}: {kind} id {v!r} is a number, but this model's {kind} ids are "
                    f'strings; send it as a JSON string ("{v}")',
                )
    return values


def _path_id(raw: str, served: Served, kind: str) -> Any:
    """An id from a URL path (text): an integer for int-id models, else the text itself
    (for mixed ids, the integer when only that is known)."""
    id_type = served.item_id_type
    if id_type == "int":
        try:
            return int(raw)
        except ValueError:
            raise ServiceError(
                422,
                f"{kind} id {raw!r} in the path is not an integer, but this model's {kind} ids "
                "are integers",
            ) from None
    if id_type == "mixed" and raw not in served.model.item_map_ and raw.lstrip("-").isdigit():
        return int(raw)
    return raw


def _check_k(k: int, config: ServeConfig) -> int:
    if k > config.max_k:
        raise ServiceError(
            422, f"k must be between 1 and {config.max_k} (this server's max_k); got {k}"
        )
    return k


def _check_len(values: list, config: ServeConfig, field: str) -> None:
    if len(values) > config.max_batch:
        raise ServiceError(
            413,
            f"{field} holds {len(values)} entries; this server takes at most "
            f"{config.max_batch} per request (max_batch): split the request",
        )


def _scored(served: Served, ids: np.ndarray, scores: np.ndarray) -> list[dict]:
    keep = ~np.isnan(scores)
    ids, scores = ids[keep], scores[keep]
    titles = served.title_of(served.positions(ids)) if served.titles is not None else None
    if titles is None:
        titles = [None] * len(ids)
    return [
        {"item": item, "score": float(score), "title": title}
        for item, score, title in zip(ids.tolist(), scores.tolist(), titles, strict=True)
    ]


# ---------------------------------------------------------------------- validation errors
def _validation_message(errors: list[dict]) -> str:
    """One sentence per problem: where, what was wrong, what to send instead."""
    seen: dict[tuple, str] = {}
    for err in errors:
        loc = list(err.get("loc", ()))
        typ = err.get("type", "")
        if loc and loc[0] in ("body", "query", "path"):
            where_kind, loc = loc[0], loc[1:]
        else:
            where_kind = "body"
        # union members (int | str ids) report one error per member: merge them
        union_member = bool(loc) and loc[-1] in ("int", "str", "float", "bool")
        if union_member:
            loc = loc[:-1]
        field = ".".join(str(p) for p in loc) or where_kind
        value = err.get("input")
        got = _show(value)
        if typ == "json_invalid":
            ctx = err.get("ctx") or {}
            msg = (
                f"the request body is not valid JSON ({ctx.get('error', 'decode error')} at "
                f"character {loc[0] if loc else '?'}); send a JSON object with "
                "Content-Type: application/json"
            )
        elif typ == "missing" and not loc and where_kind == "body":
            msg = (
                "the request has no body; send a JSON object with the header "
                "Content-Type: application/json"
            )
        elif typ == "missing":
            msg = f"{where_kind} field {field!r} is required; add it"
        elif isinstance(value, bytes):
            msg = (
                "the request body was not read as JSON; send it with the header "
                "Content-Type: application/json"
            )
        elif typ == "extra_forbidden":
            msg = f"unknown field {field!r}; remove it (the accepted fields are listed at /docs)"
        elif typ in ("model_attributes_type", "dict_type", "model_type"):
            msg = f"the request body must be a JSON object; got {got}"
        elif union_member and "ratings" in loc:
            msg = f"{field} must be a number; got {got}"
        elif union_member:
            msg = f"{field} must be an id (a JSON integer or string); got {got}"
        else:
            msg = f"{field}: {err.get('msg', 'invalid value')}; got {got}"
        seen.setdefault((field, union_member, typ if not union_member else ""), msg)
    return "; ".join(dict.fromkeys(seen.values())) + ". See /docs for the request schema."


def _show(value: Any) -> str:
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# ---------------------------------------------------------------------- middleware
class _Instrument:
    """Pure ASGI middleware: request metrics and the request-body size limit."""

    def __init__(self, app: Any, metrics: Metrics, max_body: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body = max_body

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]

        async def send_wrapper(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            length = _content_length(scope)
            if length is not None and length > self.max_body:
                response = _error(413, self._too_large(length))
                await response(scope, receive, send_wrapper)
                return
            received = 0

            async def limited_receive() -> dict:
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > self.max_body:
                        # FastAPI re-raises HTTPException from body reading: a clean 413
                        raise HTTPException(413, self._too_large(received))
                return message

            await self.app(scope, limited_receive, send_wrapper)
        finally:
            route = scope.get("route")
            endpoint = getattr(route, "path", None) or "unmatched"
            self.metrics.observe(
                endpoint, scope.get("method", ""), status[0], time.perf_counter() - start
            )

    def _too_large(self, size: int) -> str:
        return (
            f"the request body is {size} bytes or more; this server takes at most "
            f"{self.max_body} bytes (max_body_bytes): send fewer entries per request"
        )


def _content_length(scope: dict) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


# ---------------------------------------------------------------------- the app
class _Holder:
    """The current model; replaced as a whole by reload (see ``_state``)."""

    def __init__(self, served: Served) -> None:
        self.current = served
        self.lock = asyncio.Lock()


@validate_params(
    {
        "admin_token": NoneOr(Satisfies(lambda v: isinstance(v, str) and v, "a non-empty str")),
        "max_k": Interval(int, 1),
        "max_batch": Interval(int, 1),
        "max_body_bytes": Interval(int, 1),
        "supervised": Boolean(),
        "reload_on_sighup": Boolean(),
    },
    owner="create_app",
)
def create_app(
    path: str | os.PathLike,
    *,
    admin_token: str | None = None,
    max_k: int = 1000,
    max_batch: int = 1000,
    max_body_bytes: int = 1 << 20,
    supervised: bool = False,
    reload_on_sighup: bool = True,
) -> FastAPI:
    """The FastAPI application serving the model saved at ``path``.

    Embed it in any ASGI server, or run it with ``factorkit serve MODEL``. The model is
    loaded and warmed up here; a file that cannot serve raises
    :class:`~factorkit.exceptions.ModelFormatError`.

    Parameters
    ----------
    path : str or path-like
        A model file written by ``model.save`` (or ``factorkit fit --out``).
    admin_token : str, optional
        Enables ``POST /admin/reload`` for ``Authorization: Bearer <admin_token>``.
    max_k, max_batch, max_body_bytes : int
        Largest ``k``, longest list in a request, largest request body (bytes).
    supervised : bool
        Set by ``factorkit serve --workers N`` for its worker processes.
    reload_on_sighup : bool
        Reload the model file on SIGHUP (when the app runs in the main thread and is not
        supervised).

    Examples
    --------
    >>> import factorkit as fk, tempfile, os
    >>> data = fk.Interactions.from_arrays([1, 1, 2, 2], [1, 2, 1, 3], [4.0, 3.0, 5.0, 2.0])
    >>> path = os.path.join(tempfile.mkdtemp(), "model.fk")
    >>> fk.BaselineOnly().fit(data).save(path)
    >>> app = fk.serve.create_app(path)
    >>> sorted(r.path for r in app.routes if r.path.startswith("/recommend"))
    ['/recommend', '/recommend/batch', '/recommend/new-user']
    """
    config = ServeConfig(
        max_k=max_k,
        max_batch=max_batch,
        max_body_bytes=max_body_bytes,
        admin_token=admin_token,
        supervised=supervised,
    )
    holder = _Holder(load_served(path))
    metrics = Metrics()

    async def reload(new_path: str | None = None) -> Served:
        async with holder.lock:
            target = new_path or holder.current.path
            try:
                served = await anyio.to_thread.run_sync(load_served, target)
            except (FactorkitError, OSError) as exc:
                metrics.reloads["refused"] += 1
                old = holder.current
                raise ServiceError(
                    422,
                    f"reload refused: {exc}. Still serving {old.path} (sha256 {old.sha256[:12]})",
                ) from None
            holder.current = served  # one assignment: in-flight requests keep the old one
            metrics.reloads["ok"] += 1
            return served

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        loop = asyncio.get_running_loop()
        installed = False
        if reload_on_sighup and not config.supervised and hasattr(signal, "SIGHUP"):
            try:
                loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(_sighup()))
                installed = True
            except (RuntimeError, ValueError, NotImplementedError):
                pass  # not the main thread (e.g. a test client): reload over HTTP only
        yield
        if installed:
            loop.remove_signal_handler(signal.SIGHUP)

    async def _sighup() -> None:
        try:
            await reload()
        except ServiceError as exc:
            print(f"factorkit serve: {exc.message}", flush=True)

    app = FastAPI(
        title="factorkit",
        version=fk.__version__,
        description="Recommendations from a saved factorkit model. Ids are sent as the "
        "model knows them (JSON integers or strings; see GET /model).",
        lifespan=lifespan,
    )
    app.state.holder = holder
    app.state.metrics = metrics
    app.state.config = config
    app.add_middleware(_Instrument, metrics=metrics, max_body=config.max_body_bytes)
    _add_error_handlers(app)
    _add_routes(app, holder, config, metrics, reload)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _service(request: Request, exc: ServiceError) -> JSONResponse:
        return _error(exc.status, exc.message)

    @app.exception_handler(UnknownIdError)
    async def _unknown(request: Request, exc: UnknownIdError) -> JSONResponse:
        return _error(404, str(exc))

    @app.exception_handler(NotFittedError)
    async def _not_fitted(request: Request, exc: NotFittedError) -> JSONResponse:
        return _error(409, str(exc))

    @app.exception_handler(FactorkitError)
    async def _library(request: Request, exc: FactorkitError) -> JSONResponse:
        # DataError, InvalidParameterError, ModelFormatError, ...: the caller's input
        return _error(422, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")}
            for e in exc.errors()
        ]
        return _error(422, _validation_message(list(exc.errors())), errors=errors)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        message = str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = (
                f"no endpoint {request.method} {request.url.path}; the endpoints are listed "
                "at /docs"
            )
        elif exc.status_code == 405:
            message = (
                f"{request.method} is not allowed on {request.url.path}; see /docs for the "
                "method each endpoint takes"
            )
        return JSONResponse({"detail": message}, status_code=exc.status_code, headers=exc.headers)


def _add_routes(app: FastAPI, holder: _Holder, config: ServeConfig, metrics, reload) -> None:
    """Define every endpoint, each a short closure over the holder and the limits (the
    function is long only because it lists them all, in the order of docs/serving.md)."""

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/health", summary="liveness: the service answers and holds a model")
    async def health() -> dict:
        served = holder.current
        return {"status": "ok", "model": type(served.model).__name__, "sha256": served.sha256}

    @app.get("/model", response_model=s.ModelInfo, summary="what model is served")
    async def model_info() -> dict:
        served = holder.current
        model = served.model
        params = {
            k: (v if isinstance(v, (int, float, str, bool, type(None))) else repr(v))
            for k, v in model.get_params().items()
        }
        return {
            "model_class": type(model).__name__,
            "parameters": params,
            "users": len(model.user_map_),
            "items": len(model.item_map_),
            "explicit": served.explicit,
            "user_id_type": served.user_id_type,
            "item_id_type": served.item_id_type,
            "has_titles": served.titles is not None,
            "can_fold_in": served.can_fold_in,
            "can_similar_items": served.can_similar_items,
            "factorkit_version": fk.__version__,
            "saved_by_version": served.meta.get("factorkit_version"),
            "path": served.path,
            "sha256": served.sha256,
            "trained_at": served.trained_at,
            "loaded_at": served.loaded_at,
        }

    @app.post("/recommend", response_model=s.RecommendResponse, summary="top-k for a known user")
    async def recommend(body: s.RecommendRequest) -> JSONResponse:
        served = holder.current
        _check_k(body.k, config)
        _check_ids([body.user], served.user_id_type, "user", "user")
        if body.items is not None:
            _check_len(body.items, config, "items")
            _check_ids(body.items, served.item_id_type, "item", "items")
        with single_thread_blas():
            ids, scores = served.model.recommend(
                body.user, k=body.k, exclude_seen=body.exclude_seen, items=body.items
            )
        return JSONResponse({"user": body.user, "items": _scored(served, ids, scores)})

    @app.post("/recommend/batch", response_model=s.BatchResponse, summary="top-k for many users")
    async def recommend_batch(body: s.BatchRequest) -> JSONResponse:
        served = holder.current
        _check_k(body.k, config)
        _check_len(body.users, config, "users")
        _check_ids(body.users, served.user_id_type, "user", "users")
        ids, scores = served.model.recommend(body.users, k=body.k, exclude_seen=body.exclude_seen)
        results = [
            {"user": user, "items": _scored(served, ids[row], scores[row])}
            for row, user in enumerate(body.users)
        ]
        return JSONResponse({"results": results})

    @app.post(
        "/recommend/new-user",
        response_model=s.NewUserResponse,
        summary="top-k for a visitor the model has never seen (fold-in), with explanations",
    )
    async def recommend_new_user(body: s.NewUserRequest) -> JSONResponse:
        served = holder.current
        if not served.can_fold_in:
            raise ServiceError(
                422, f"{type(served.model).__name__} cannot fold in new users; serve a model "
                "that can (e.g. ImplicitALS)"
            )  # fmt: skip
        _check_k(body.k, config)
        _check_len(body.items, config, "items")
        _check_ids(body.items, served.item_id_type, "item", "items")
        if body.ratings is not None and len(body.ratings) != len(body.items):
            raise ServiceError(
                422,
                f"ratings holds {len(body.ratings)} values for {len(body.items)} items; send "
                "one rating per item, or leave ratings out",
            )
        model = served.model
        with single_thread_blas():
            ids, scores = model.recommend_new_user(body.items, ratings=body.ratings, k=body.k)
            items = _scored(served, ids, scores)
            method = None
            if body.explain and items:
                explanations = model.explain_new_user(
                    body.items, body.ratings, [row["item"] for row in items]
                )
                method = explanations[0].method
                for row, expl in zip(items, explanations, strict=True):
                    row["because"] = _because(served, expl.contributions)
        return JSONResponse({"items": items, "method": method})

    @app.post("/predict", response_model=s.PredictResponse, summary="scores of (user, item) pairs")
    async def predict(body: s.PredictRequest) -> JSONResponse:
        served = holder.current
        _check_len(body.pairs, config, "pairs")
        users = [u for u, _ in body.pairs]
        items = [i for _, i in body.pairs]
        _check_ids(users, served.user_id_type, "user", "pairs")
        _check_ids(items, served.item_id_type, "item", "pairs")
        unknown = "error" if body.unknown == "error" else "fallback"
        with single_thread_blas():
            scores = served.model.predict(_as_array(users), _as_array(items), unknown=unknown)
        return JSONResponse(
            {
                "predictions": [
                    {"user": u, "item": i, "score": float(v)}
                    for u, i, v in zip(users, items, scores.tolist(), strict=True)
                ]
            }
        )

    @app.get("/items/{item}/similar", summary="items most similar to an item")
    async def similar(item: str, k: int = Query(10, ge=1)) -> JSONResponse:
        """Items most similar to ``item`` (cosine of item factors)."""
        served = holder.current
        _check_k(k, config)
        if not served.can_similar_items:
            raise ServiceError(
                422, f"{type(served.model).__name__} has no item factors, so no similar items"
            )
        raw = _path_id(item, served, "item")
        with single_thread_blas():
            ids, scores = served.model.similar_items(raw, k=k)
        pos = served.model.item_map_.lookup([raw])
        return JSONResponse(
            {"item": raw, "title": served.title_of(pos)[0], "items": _scored(served, ids, scores)}
        )

    @app.get("/items", summary="search items by title (most popular first)")
    async def items(
        q: str = Query("", max_length=200, description="text the title contains (any case)"),
        limit: int = Query(20, ge=1, le=1000),
    ) -> dict:
        served = holder.current
        order = served.by_popularity
        if q.strip():
            haystack = served.search_keys()
            order = order[np.char.find(haystack, q.strip().lower()) >= 0]
        order = order[:limit]
        ids = served.model.item_map_.ids[order].tolist()
        titles = served.title_of(order)
        return {
            "items": [
                {"item": i, "title": t, "popularity": int(served.popularity[p])}
                for i, t, p in zip(ids, titles, order.tolist(), strict=True)
            ]
        }

    @app.get("/onboarding", summary="items to ask a new visitor about first")
    async def onboarding(n: int = Query(20, ge=1, le=200)) -> dict:
        served = holder.current
        ids = served.onboarding(n)
        pos = served.model.item_map_.lookup(ids)
        return {
            "items": [
                {"item": i, "title": t}
                for i, t in zip(ids.tolist(), served.title_of(pos), strict=True)
            ]
        }

    @app.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics")
    async def prometheus() -> PlainTextResponse:
        return PlainTextResponse(
            metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    @app.post("/admin/reload", summary="load a model file atomically (bearer token)")
    async def admin_reload(request: Request, body: s.ReloadRequest | None = None) -> dict:
        _authorize(request, config)
        new_path = body.path if body is not None else None
        if config.supervised:
            if new_path is not None and new_path != holder.current.path:
                raise ServiceError(
                    422,
                    "with several workers only the served file can be reloaded: move the new "
                    f"model over {holder.current.path} and reload without a path",
                )
            served = await reload(None)  # validates the file before any worker restarts
            os.kill(os.getppid(), signal.SIGHUP)  # the supervisor restarts every worker
        else:
            served = await reload(new_path)
        return {"status": "reloaded", "path": served.path, "sha256": served.sha256}


def _authorize(request: Request, config: ServeConfig) -> None:
    if config.admin_token is None:
        raise ServiceError(
            403, "admin endpoints are disabled; start the server with --admin-token TOKEN"
        )
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise ServiceError(401, "admin endpoints need the header 'Authorization: Bearer TOKEN'")
    if not hmac.compare_digest(token.encode(), config.admin_token.encode()):
        raise ServiceError(403, "wrong admin token; use the --admin-token the server started with")


def _as_array(ids: list[Any]) -> np.ndarray:
    """Ids as the library takes them: int64 when all fit, else objects (never wrapped)."""
    if all(isinstance(x, int) and -(2**63) <= x < 2**63 for x in ids):
        return np.asarray(ids, dtype=np.int64)
    return np.array(ids, dtype=object)


def _because(served: Served, contributions: list[tuple[Any, float]], top: int = 3) -> list:
    """The given items that raised this score most (positive contributions only)."""
    best = [(i, c) for i, c in contributions[:top] if c > 0]
    pos = served.positions(np.array([i for i, _ in best])) if best else np.zeros(0, int)
    return [
        {"item": i, "contribution": c, "title": t}
        for (i, c), t in zip(best, served.title_of(pos), strict=True)
    ]


def _app_from_environment() -> FastAPI:
    """App factory for ``--workers N`` (uvicorn imports it in each worker process)."""
    options = json.loads(os.environ[ENV_CONFIG])
    return create_app(options.pop("path"), **options)
