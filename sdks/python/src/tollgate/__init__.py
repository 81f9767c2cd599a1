"""Tollgate's Python client: decisions, concurrency leases, key admin and usage, sync and async.

>>> from tollgate import Client
>>> client = Client("http://127.0.0.1:8080", on_unavailable="open")
>>> client.check({"user": "42"})["allowed"]  # doctest: +SKIP
True
"""

from ._core import LimitResult, Retry, UnavailablePolicy, status_for_code
from .client import AsyncClient, Client
from .errors import ProblemDetailsError, TimeoutError, TollgateError, UnavailableError

__all__ = [
    "AsyncClient",
    "Client",
    "LimitResult",
    "ProblemDetailsError",
    "Retry",
    "TimeoutError",
    "TollgateError",
    "UnavailableError",
    "UnavailablePolicy",
    "status_for_code",
]
