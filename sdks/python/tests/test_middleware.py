"""ASGI (Starlette, FastAPI) and WSGI (Flask) middleware against a real Tollgate. The user is
taken from an ``x-user`` header so each test has counters of its own."""

from __future__ import annotations

import threading
from typing import Any, Dict, Optional

import flask
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from tollgate import AsyncClient, Client
from tollgate.asgi import TollgateMiddleware
from tollgate.wsgi import TollgateWSGIMiddleware
from conftest import URL, eventually, release_supported, unique

from tollgate.types import Subject


def asgi_user(scope: Any) -> Optional[Subject]:
    for k, v in scope["headers"]:
        if k == b"x-user":
            return {"user": v.decode()}
    return None


def wsgi_user(environ: Dict[str, Any]) -> Optional[Subject]:
    user = environ.get("HTTP_X_USER")
    return {"user": user} if user else None


def assert_limits(get: Any) -> None:
    user = unique("mw")
    for _ in range(3):
        r = get("/hello", headers={"x-user": user})
        assert r.status_code == 200
        assert r.headers.get("ratelimit")
    r = get("/hello", headers={"x-user": user})
    assert r.status_code == 429
    assert r.headers["content-type"].startswith("application/problem+json")
    assert int(r.headers["retry-after"]) > 0
    body = r.json() if callable(r.json) else r.json  # httpx has a method, Werkzeug a property
    assert body["code"] == "RATE_LIMITED"


def test_starlette() -> None:
    async def hello(request: Request) -> PlainTextResponse:
        assert request.state.tollgate.allowed
        return PlainTextResponse("hello")

    app = Starlette(routes=[Route("/hello", hello)])
    app.add_middleware(TollgateMiddleware, client=AsyncClient(URL), extra=asgi_user)
    with TestClient(app) as tc:
        assert_limits(tc.get)


def test_fastapi() -> None:
    app = FastAPI()

    @app.get("/hello")
    async def hello() -> Dict[str, str]:
        return {"hello": "world"}

    app.add_middleware(TollgateMiddleware, client=AsyncClient(URL), extra=asgi_user)
    with TestClient(app) as tc:
        assert_limits(tc.get)


def flask_app(started: Optional[threading.Semaphore] = None, gate: Optional[threading.Event] = None) -> flask.Flask:
    app = flask.Flask("tollgate-test")

    @app.get("/hello")
    def hello() -> str:
        return "hello"

    @app.get("/export")
    def export() -> str:
        if started is not None and gate is not None:
            started.release()
            gate.wait(10)
        return "done"

    app.wsgi_app = TollgateWSGIMiddleware(app.wsgi_app, Client(URL), extra=wsgi_user)  # type: ignore[method-assign]
    return app


def test_flask() -> None:
    with flask_app().test_client() as tc:
        assert_limits(tc.get)


def test_flask_leases_are_held_while_the_view_runs() -> None:
    if not release_supported():
        pytest.skip("SKIPPED: this Tollgate answers 404 for POST /v1/release (leases not released by this server yet)")
    from werkzeug.serving import make_server

    started, gate = threading.Semaphore(0), threading.Event()
    server = make_server("127.0.0.1", 0, flask_app(started, gate), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    user = unique("mw")
    import httpx

    try:
        results: list[int] = []
        get = lambda: results.append(httpx.get(base + "/export", headers={"x-user": user}, timeout=10).status_code)  # noqa: E731
        threads = [threading.Thread(target=get) for _ in range(2)]
        for t in threads:
            t.start()
        assert started.acquire(timeout=5) and started.acquire(timeout=5), "two exports in flight"
        assert httpx.get(base + "/export", headers={"x-user": user}, timeout=10).status_code == 429
        gate.set()
        for t in threads:
            t.join(10)
        assert results == [200, 200]
        with Client(URL) as c:
            eventually(
                lambda: next(l for l in c.check({"user": user, "path": "/export"}, cost=0)["limits"] if l["name"] == "exports")["remaining"] == 2,
                5,
                "the leases to be released",
            )
    finally:
        gate.set()
        server.shutdown()
