"""The errors the Tollgate client raises."""

from __future__ import annotations

from typing import Any, List, Mapping, Optional

from .types import Problem, ProblemError


class TollgateError(Exception):
    """The base of every error this SDK raises."""


class ProblemDetailsError(TollgateError):
    """Tollgate answered with an RFC 9457 problem (``application/problem+json``).

    ``type``, ``title``, ``status``, ``detail`` and ``errors`` are the problem's fields;
    ``problem`` is the whole body and ``request_id`` the answer's ``X-Request-Id``.
    """

    def __init__(self, problem: Problem, request_id: Optional[str] = None) -> None:
        self.problem: Problem = problem
        self.type: str = problem["type"]
        self.title: str = problem["title"]
        self.status: int = problem["status"]
        self.detail: Optional[str] = problem.get("detail")
        self.errors: List[ProblemError] = list(problem.get("errors", []))
        self.request_id = request_id
        text = f"{self.title} ({self.status})"
        if self.detail:
            text = f"{self.title}: {self.detail} ({self.status})"
        super().__init__(text)

    @property
    def name(self) -> str:
        """The last segment of ``type``, such as ``invalid-request``."""
        return self.type.rsplit("/", 1)[-1]


class UnavailableError(TollgateError):
    """Tollgate could not be reached, or kept answering 503, after every retry."""

    def __init__(self, message: str, attempts: int) -> None:
        super().__init__(message)
        self.attempts = attempts


class TimeoutError(UnavailableError):  # noqa: A001 - the SDK's own, a kind of UnavailableError
    """One attempt took longer than the client's timeout."""


def problem_from(body: Any, status: int, reason: str) -> Problem:
    """The problem of an error answer, or one made from its status when the body is not one."""
    if isinstance(body, Mapping) and isinstance(body.get("type"), str) and isinstance(body.get("status"), int):
        problem: Problem = {"type": body["type"], "title": str(body.get("title", reason)), "status": body["status"]}
        if isinstance(body.get("detail"), str):
            problem["detail"] = body["detail"]
        if isinstance(body.get("instance"), str):
            problem["instance"] = body["instance"]
        if isinstance(body.get("errors"), list):
            problem["errors"] = [e for e in body["errors"] if isinstance(e, dict)]  # type: ignore[misc]
        return problem
    return {"type": "about:blank", "title": reason or "HTTP error", "status": status}
