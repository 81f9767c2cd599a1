"""ASGI middleware (Starlette, FastAPI, any ASGI app)."""

from __future__ import annotations

import json
from typing import Any, Awaitable, Callable, Dict, MutableMapping, Optional

from ._core import LimitResult, UnavailablePolicy
from .client import AsyncClient
from .types import Subject

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def denied_body(result: LimitResult) -> Dict[str, Any]:
    """The RFC 9457 problem answered for a refused request."""
    code = result.decision["code"]
    title = {"RATE_LIMITED": "Too many requests", "QUOTA_EXCEEDED": "Quota exceeded"}.get(code, "Request refused")
    body: Dict[str, Any] = {
        "type": "https://tollgate.dev/problems/" + code.lower().replace("_", "-"),
        "title": title,
        "status": result.status,
        "code": code,
    }
    if result.decision.get("retry_after_ms") is not None:
        body["retry_after_ms"] = result.decision["retry_after_ms"]
    return body


class TollgateMiddleware:
    """Decides each HTTP request with Tollgate before the app sees it.

    Refusals are answered here (status 429/401/403/503 and a problem body); allowed requests
    get the rate-limit headers added to the app's answer, and a concurrency lease is released
    when the answer has been sent. The decision is in ``scope["state"]["tollgate"]`` (Starlette's
    ``request.state.tollgate``).

    ``extra(scope)`` adds attributes per request (such as the signed-in user); ``skip(scope)``
    lets requests through unchecked.
    """

    def __init__(
        self,
        app: ASGIApp,
        client: AsyncClient,
        *,
        extra: Optional[Callable[[Scope], Optional[Subject]]] = None,
        skip: Optional[Callable[[Scope], bool]] = None,
        cost: Optional[int] = None,
        on_unavailable: Optional[UnavailablePolicy] = None,
    ) -> None:
        self.app = app
        self.client = client
        self.extra = extra
        self.skip = skip
        self.cost = cost
        self.on_unavailable = on_unavailable

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (self.skip is not None and self.skip(scope)):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        client_addr = scope.get("client")
        result = await self.client.limit(
            method=scope.get("method"),
            path=scope.get("path"),
            ip=client_addr[0] if client_addr else None,
            headers=headers,
            extra=self.extra(scope) if self.extra else None,
            cost=self.cost,
            on_unavailable=self.on_unavailable,
        )
        scope.setdefault("state", {})["tollgate"] = result
        extra_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in result.headers.items()]
        if not result.allowed:
            body = json.dumps(denied_body(result)).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": result.status,
                    "headers": [(b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode())]
                    + extra_headers,
                }
            )
            await send({"type": "http.response.body", "body": body})
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + extra_headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            if result.lease_id:
                try:
                    await self.client.release(result.lease_id)
                except Exception:  # a lease not released ends at its lease_ttl
                    pass
