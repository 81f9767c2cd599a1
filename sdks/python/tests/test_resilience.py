"""Retries, timeouts and fail-open/closed, against stubs that misbehave on purpose (and that
forward to the real Tollgate once they stop misbehaving)."""

from __future__ import annotations

import http.server
import time

import pytest

from tollgate import Client, Retry, TimeoutError, UnavailableError
from conftest import Stub, closed_port, forward, unavailable, unique


def test_503_is_retried_until_tollgate_answers() -> None:
    stub = Stub(lambda h, n: unavailable(h) if n <= 2 else forward(h))
    try:
        with Client(stub.url, retry=Retry(attempts=3, base_delay=0.001)) as c:
            d = c.check({"user": unique("u")})
            assert d["code"] == "OK"
            assert stub.count == 3
    finally:
        stub.close()


def test_dropped_connection_is_retried() -> None:
    def drop_first(h: http.server.BaseHTTPRequestHandler, n: int) -> None:
        if n == 1:
            h.close_connection = True
            h.connection.close()
        else:
            forward(h)

    stub = Stub(drop_first)
    try:
        with Client(stub.url, retry=Retry(attempts=2, base_delay=0.001)) as c:
            assert c.check({"user": unique("u")})["code"] == "OK"
            assert stub.count == 2
    finally:
        stub.close()


def test_503_after_every_retry_raises_or_degrades() -> None:
    stub = Stub(lambda h, n: unavailable(h))
    try:
        with Client(stub.url, retry=Retry(attempts=2, base_delay=0.001)) as c:
            with pytest.raises(UnavailableError) as e:
                c.check({"user": "x"})
            assert e.value.attempts == 2
            closed = c.check({"user": "x"}, on_unavailable="closed")
            assert (closed["allowed"], closed["code"], closed.get("degraded")) == (False, "UNAVAILABLE", "closed")
            assert c.limit(method="GET", path="/", on_unavailable="closed").status == 503
            opened = c.check({"user": "x"}, on_unavailable="open")
            assert (opened["allowed"], opened.get("degraded")) == (True, "open")
        with Client(stub.url, retry=Retry(attempts=1), on_unavailable="open") as c:
            with pytest.raises(UnavailableError):
                c.list_keys()  # admin calls never degrade
    finally:
        stub.close()


def test_timeout_bounds_the_call() -> None:
    stub = Stub(lambda h, n: stub.stopping.wait(30))
    try:
        with Client(stub.url, timeout=0.15) as c:
            started = time.monotonic()
            with pytest.raises(TimeoutError):
                c.check({"user": "x"})
            assert time.monotonic() - started < 2
            assert stub.count == 1, "a timed-out check is not retried: it may have been decided"
            assert c.check({"user": "x"}, on_unavailable="open")["allowed"] is True
    finally:
        stub.close()


def test_connection_refused_fails_open_when_chosen() -> None:
    with Client(f"http://127.0.0.1:{closed_port()}", on_unavailable="open", retry=Retry(attempts=2, base_delay=0.001)) as c:
        d = c.check({"user": "x"})
        assert (d["allowed"], d["code"], d.get("degraded")) == (True, "UNAVAILABLE", "open")
        assert [r["allowed"] for r in c.check_batch([{"subject": {"user": "a"}}], on_unavailable="closed")] == [False]
