"""Test support: the real Tollgate this suite runs against (started by scripts/test-sdks),
unique names, polling with a deadline, and stubs that misbehave on purpose (used only for
retries, timeouts and fail-open)."""

from __future__ import annotations

import http.server
import os
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid
from typing import Any, Callable, Iterator, Optional, TypeVar

import pytest

from tollgate import Client

T = TypeVar("T")

URL = os.environ.get("TOLLGATE_URL", "")
TOKEN = os.environ.get("TOLLGATE_ADMIN_TOKEN")
if not URL:
    raise RuntimeError("TOLLGATE_URL is not set: run scripts/test-sdks, which starts a Tollgate for this suite")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def eventually(probe: Callable[[], Optional[T]], timeout: float = 5.0, what: str = "condition") -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


_release: Optional[bool] = None


def release_supported() -> bool:
    """False only when this Tollgate answers 404 for POST /v1/release."""
    global _release
    if _release is None:
        req = urllib.request.Request(
            URL + "/v1/release", data=b'{"lease_id":"probe"}', headers={"content-type": "application/json"}, method="POST"
        )
        try:
            urllib.request.urlopen(req, timeout=5).close()
            _release = True
        except urllib.error.HTTPError as err:
            _release = err.code != 404
    return _release


@pytest.fixture
def needs_release() -> None:
    if not release_supported():
        pytest.skip("SKIPPED: this Tollgate answers 404 for POST /v1/release (leases not released by this server yet)")


@pytest.fixture
def client() -> Iterator[Client]:
    with Client(URL, admin_token=TOKEN) as c:
        yield c


class Stub:
    """An HTTP server on a free loopback port; ``behaviour(handler, n)`` answers request n."""

    def __init__(self, behaviour: Callable[[http.server.BaseHTTPRequestHandler, int], None]) -> None:
        self.count = 0
        self.stopping = threading.Event()
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def handle_one(self) -> None:
                stub.count += 1
                # Read the body first, so that the connection stays usable for the next request.
                length = int(self.headers.get("content-length") or 0)
                self.body = self.rfile.read(length) if length else b""
                behaviour(self, stub.count)

            do_GET = do_POST = do_DELETE = handle_one

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()


def forward(h: http.server.BaseHTTPRequestHandler) -> None:
    """Relays the stub's request to the real Tollgate and its answer back."""
    body = getattr(h, "body", b"") or None
    req = urllib.request.Request(URL + h.path, data=body, method=h.command)
    for k, v in h.headers.items():
        if k.lower() not in ("host", "connection", "content-length"):
            req.add_header(k, v)
    try:
        resp = urllib.request.urlopen(req, timeout=5)
        status, headers, payload = resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        status, headers, payload = err.code, err.headers, err.read()
    h.send_response(status)
    for k, v in headers.items():
        if k.lower() not in ("connection", "transfer-encoding", "content-length"):
            h.send_header(k, v)
    h.send_header("content-length", str(len(payload)))
    h.end_headers()
    h.wfile.write(payload)


def unavailable(h: http.server.BaseHTTPRequestHandler) -> None:
    body = b'{"type":"https://tollgate.dev/problems/unavailable","title":"Unavailable","status":503}'
    h.send_response(503)
    h.send_header("content-type", "application/problem+json")
    h.send_header("retry-after", "0")
    h.send_header("content-length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port: int = s.getsockname()[1]
    s.close()
    return port
