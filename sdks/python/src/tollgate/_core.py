"""What the sync and async clients share: building requests, reading answers, backoff."""

from __future__ import annotations

import ipaddress
import json
import random
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Literal, Mapping, Optional, Sequence, Union, cast

import httpx

from .errors import ProblemDetailsError, TollgateError, UnavailableError, problem_from
from .types import CheckRequest, Decision, Subject

UnavailablePolicy = Literal["open", "closed", "raise"]
"""What decision helpers do when Tollgate is unreachable (connection refused or reset, a
timeout, or 503 after every retry): ``"open"`` lets the request through, ``"closed"`` refuses
it (code ``UNAVAILABLE``), ``"raise"`` raises :class:`UnavailableError`. Admin calls always
raise."""

RATE_HEADERS = (
    "ratelimit",
    "ratelimit-policy",
    "retry-after",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
)

_CODE_STATUS = {
    "OK": 200,
    "RATE_LIMITED": 429,
    "QUOTA_EXCEEDED": 429,
    "KEY_INVALID": 401,
    "KEY_DISABLED": 403,
    "KEY_EXPIRED": 403,
    "BLOCKED": 403,
    "UNAVAILABLE": 503,
}


def status_for_code(code: str) -> int:
    """The HTTP status a service answers for a decision's code."""
    return _CODE_STATUS.get(code, 429)


@dataclass(frozen=True)
class Retry:
    """Retries of connection errors and 503 answers, with exponential backoff and full jitter."""

    attempts: int = 3
    """Attempts in all, the first included; 1 turns retries off."""
    base_delay: float = 0.05
    """The first backoff in seconds; it doubles on each retry."""
    max_delay: float = 2.0
    """The longest backoff in seconds, a ``Retry-After`` of a 503 included."""

    def delay(self, attempt: int, retry_after: Optional[str]) -> float:
        cap: float = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        wait = random.uniform(0, cap)
        if retry_after is not None:
            try:
                seconds = float(retry_after)
            except ValueError:
                seconds = -1.0
            if seconds >= 0:
                wait = min(self.max_delay, max(wait, seconds))
        return wait


@dataclass
class LimitResult:
    """What a service does with a request, from a decision."""

    allowed: bool
    status: int
    """The status to answer a refused request with: 429, 401, 403 or 503 (200 when allowed)."""
    headers: Dict[str, str]
    """Headers to set on the answer, allowed or not (``RateLimit``, ``Retry-After``, ...)."""
    decision: Decision
    lease_id: Optional[str] = None
    """Set when the decision took a concurrency lease: release it when the work is done."""


@dataclass
class Call:
    method: str
    path: str
    body: Any = None
    params: Dict[str, Any] = field(default_factory=dict)
    headers: Dict[str, str] = field(default_factory=dict)
    accept: Sequence[int] = ()


def check_body(subject: Subject, cost: Optional[int], dry_run: bool) -> CheckRequest:
    body: CheckRequest = {"subject": subject}
    if cost is not None:
        body["cost"] = cost
    if dry_run:
        body["dry_run"] = True
    return body


def degraded(policy: UnavailablePolicy, err: UnavailableError) -> Decision:
    if policy == "raise":
        raise err
    if policy == "open":
        return {"allowed": True, "code": "UNAVAILABLE", "limits": [], "headers": {}, "degraded": "open"}
    return {"allowed": False, "code": "UNAVAILABLE", "limits": [], "headers": {}, "degraded": "closed"}


def limit_result(decision: Decision) -> LimitResult:
    headers = dict(decision["headers"])
    retry_ms = decision.get("retry_after_ms")
    if not decision["allowed"] and retry_ms is not None and "retry-after" not in headers:
        headers["retry-after"] = str(-(-retry_ms // 1000))
    return LimitResult(
        allowed=decision["allowed"],
        status=200 if decision["allowed"] else status_for_code(decision["code"]),
        headers=headers,
        decision=decision,
        lease_id=decision.get("lease_id"),
    )


def params(**kw: Any) -> Dict[str, Any]:
    return {k: v for k, v in kw.items() if v is not None}


def encode_body(call: Call) -> Optional[bytes]:
    return None if call.body is None else json.dumps(call.body).encode()


def request_headers(call: Call, extra: Mapping[str, str]) -> Dict[str, str]:
    headers = {"accept": "application/json", **extra, **call.headers}
    if call.body is not None:
        headers["content-type"] = "application/json"
    return headers


class Retryable(Exception):
    """An attempt that may be tried again: a 503 answer."""

    def __init__(self, retry_after: Optional[str], problem: Optional[ProblemDetailsError]) -> None:
        super().__init__("503")
        self.retry_after = retry_after
        self.problem = problem


def read_answer(call: Call, response: httpx.Response) -> Any:
    """The answer's JSON body; raises :class:`Retryable` on 503 and a problem on other errors."""
    body: Any = None
    if response.content:
        try:
            body = response.json()
        except ValueError as err:
            if response.is_success:
                raise TollgateError(f"Tollgate answered {response.status_code} with a body that is not JSON") from err
    request_id = response.headers.get("x-request-id")
    if response.status_code == 503:
        problem = problem_from(body, 503, response.reason_phrase)
        raise Retryable(response.headers.get("retry-after"), ProblemDetailsError(problem, request_id))
    if response.is_success or response.status_code in call.accept:
        return body
    raise ProblemDetailsError(problem_from(body, response.status_code, response.reason_phrase), request_id)


def authorize_result(response: httpx.Response) -> Dict[str, Any]:
    headers = {name: response.headers[name] for name in RATE_HEADERS if name in response.headers}
    out: Dict[str, Any] = {"allowed": response.status_code == 200, "status": response.status_code, "headers": headers}
    lease = response.headers.get("tollgate-lease-id")
    if lease:
        out["lease_id"] = lease
    if response.status_code != 200 and response.content:
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and "type" in body:
            out["problem"] = problem_from(body, response.status_code, response.reason_phrase)
    return out


def _is_ip(text: str) -> bool:
    """Whether ``text`` is an IP address (a peer may be a Unix socket or a test client)."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


_BEARER = re.compile(r"^bearer\s+", re.IGNORECASE)


def subject_from(method: Optional[str], path: Optional[str], ip: Optional[str], headers: Mapping[str, str]) -> Subject:
    """The default subject of a request: method, path, client IP and a presented API key."""
    subject: Subject = {}
    if method:
        subject["method"] = method
    if path:
        subject["path"] = path
    if ip and _is_ip(ip):
        subject["ip"] = ip
    key = headers.get("x-api-key")
    auth = headers.get("authorization")
    if key:
        subject["api_key"] = key
    elif auth and _BEARER.match(auth):
        subject["api_key"] = _BEARER.sub("", auth).strip()
    return subject


def results(body: Any) -> List[Any]:
    return cast(List[Any], body["results"])
