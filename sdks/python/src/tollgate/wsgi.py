"""WSGI middleware (Flask, Django, any WSGI app)."""

from __future__ import annotations

import json
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple

from ._core import UnavailablePolicy
from .asgi import denied_body
from .client import Client
from .types import Subject

StartResponse = Callable[..., Any]
WSGIApp = Callable[[Dict[str, Any], StartResponse], Iterable[bytes]]

_REASONS = {401: "Unauthorized", 403: "Forbidden", 429: "Too Many Requests", 503: "Service Unavailable"}


class TollgateWSGIMiddleware:
    """Decides each request with Tollgate before the WSGI app sees it.

    Wrap an app: ``app.wsgi_app = TollgateWSGIMiddleware(app.wsgi_app, client)`` for Flask.
    Refusals are answered here with a problem body; allowed answers get the rate-limit
    headers, and a concurrency lease is released once the answer's body has been sent. The
    decision is ``environ["tollgate"]``.
    """

    def __init__(
        self,
        app: WSGIApp,
        client: Client,
        *,
        extra: Optional[Callable[[Dict[str, Any]], Optional[Subject]]] = None,
        skip: Optional[Callable[[Dict[str, Any]], bool]] = None,
        cost: Optional[int] = None,
        on_unavailable: Optional[UnavailablePolicy] = None,
    ) -> None:
        self.app = app
        self.client = client
        self.extra = extra
        self.skip = skip
        self.cost = cost
        self.on_unavailable = on_unavailable

    def __call__(self, environ: Dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if self.skip is not None and self.skip(environ):
            return self.app(environ, start_response)
        headers = {k[5:].replace("_", "-").lower(): str(v) for k, v in environ.items() if k.startswith("HTTP_")}
        result = self.client.limit(
            method=environ.get("REQUEST_METHOD"),
            path=(environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")) or "/",
            ip=environ.get("REMOTE_ADDR"),
            headers=headers,
            extra=self.extra(environ) if self.extra else None,
            cost=self.cost,
            on_unavailable=self.on_unavailable,
        )
        environ["tollgate"] = result
        extra_headers: List[Tuple[str, str]] = list(result.headers.items())
        if not result.allowed:
            body = json.dumps(denied_body(result)).encode()
            status = f"{result.status} {_REASONS.get(result.status, 'Refused')}"
            start_response(status, [("Content-Type", "application/problem+json"), ("Content-Length", str(len(body)))] + extra_headers)
            return [body]

        def start(status: str, response_headers: List[Tuple[str, str]], exc_info: Any = None) -> Any:
            return start_response(status, list(response_headers) + extra_headers, exc_info)

        inner = self.app(environ, start)
        if not result.lease_id:
            return inner
        return self._released(inner, result.lease_id)

    def _released(self, inner: Iterable[bytes], lease_id: str) -> Iterator[bytes]:
        try:
            yield from inner
        finally:
            close = getattr(inner, "close", None)
            if close is not None:
                close()
            try:
                self.client.release(lease_id)
            except Exception:  # a lease not released ends at its lease_ttl
                pass
