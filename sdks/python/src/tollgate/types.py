"""The wire types of Tollgate's HTTP API (v1), written by hand for now.

They are kept in this one module so that they can be generated from the OpenAPI description
later. Every type is a ``TypedDict``: answers are the server's JSON, as it sent it.
"""

from __future__ import annotations

import sys
from typing import Any, Dict, List, Literal, Optional, Union

if sys.version_info >= (3, 11):
    from typing import NotRequired, TypedDict
else:  # pragma: no cover
    from typing_extensions import NotRequired, TypedDict


class Subject(TypedDict, total=False):
    """Who or what a decision is about; rules match the attributes present."""

    user: str
    ip: str
    method: str
    path: str
    api_key: str
    tenant: str
    attributes: Dict[str, str]


class CheckRequest(TypedDict):
    """One check: the body of ``POST /v1/check`` or one entry of a batch."""

    subject: Subject
    cost: NotRequired[int]
    dry_run: NotRequired[bool]


class LimitStatus(TypedDict):
    """Where one limit stands after a decision."""

    name: str
    key: str
    limit: int
    remaining: int
    reset_ms: int
    exceeded: bool
    shadow: bool
    window_ms: NotRequired[Optional[int]]
    degraded: NotRequired[bool]
    lease_id: NotRequired[str]


class Decision(TypedDict):
    """The answer of ``POST /v1/check`` for one check.

    ``degraded`` is set by the SDK only, when Tollgate could not be reached and the client's
    ``on_unavailable`` policy decided instead (``"open"`` or ``"closed"``).
    """

    allowed: bool
    code: str
    limits: List[LimitStatus]
    headers: Dict[str, str]
    retry_after_ms: NotRequired[Optional[int]]
    lease_id: NotRequired[str]
    degraded: NotRequired[Literal["open", "closed"]]


class ReleaseEntry(TypedDict):
    """One entry of the answer of a batch ``POST /v1/release``."""

    lease_id: str
    released: bool


class RenewEntry(TypedDict):
    """One entry of the answer of a batch ``POST /v1/renew``."""

    lease_id: str
    renewed: bool
    error: NotRequired[str]
    """Set when this id is not one Tollgate gave out (made up or altered)."""


class AuthorizeResult(TypedDict):
    """What ``GET /v1/authorize`` answered."""

    allowed: bool
    status: int
    headers: Dict[str, str]
    lease_id: NotRequired[str]
    problem: NotRequired["Problem"]


class ApiKey(TypedDict):
    """An API key's record (never its secret)."""

    id: str
    name: str
    owner: str
    tier: str
    prefix: str
    status: str
    created_at: int
    updated_at: int
    expires_at: NotRequired[Optional[int]]
    last_used_at: NotRequired[Optional[int]]
    metadata: NotRequired[Optional[Dict[str, Any]]]
    overrides: NotRequired[Optional[Dict[str, Any]]]


class CreatedKey(TypedDict):
    """The answer of key creation and rotation: the secret is shown this once."""

    key: ApiKey
    secret: str


class KeyPage(TypedDict):
    """A page of ``GET /v1/keys``; ``next`` is the ``after`` of the following page."""

    keys: List[ApiKey]
    next: NotRequired[Optional[str]]


class UsageLimit(TypedDict):
    """Where one of a key's limits stands, as ``GET /v1/keys/{id}/usage`` shows it."""

    name: str
    algorithm: str
    key: str
    limit: int
    remaining: int
    used: int
    reset_ms: int
    window_ms: NotRequired[Optional[int]]
    degraded: NotRequired[bool]


class KeyUsage(TypedDict):
    """Where each limit and quota of a key stands (``GET /v1/keys/{id}/usage``)."""

    key_id: str
    tier: str
    owner: str
    limits: List[UsageLimit]


class UsageBucket(TypedDict):
    """One period of usage history."""

    start: int
    requests: int
    allowed: int
    denied: int
    units: int


UsageHistory = TypedDict(
    "UsageHistory",
    {
        "granularity": str,
        "from": int,
        "to": int,
        "buckets": List[UsageBucket],
        "key_id": NotRequired[str],
        "owner": NotRequired[str],
    },
)
"""Decisions per period (``GET /v1/keys/{id}/usage/history``, or an owner's), over ``[from, to)``."""


class ProblemError(TypedDict, total=False):
    """One error of a problem's ``errors``: the field at fault and what is wrong."""

    path: str
    message: str


class Problem(TypedDict):
    """An RFC 9457 problem, as Tollgate answers every error."""

    type: str
    title: str
    status: int
    detail: NotRequired[str]
    instance: NotRequired[str]
    errors: NotRequired[List[ProblemError]]


Granularity = Literal["minute", "hour", "day"]
TimeArg = Union[int, str]
