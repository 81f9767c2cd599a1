"""The Tollgate clients: :class:`Client` (sync) and :class:`AsyncClient` (asyncio)."""

from __future__ import annotations

import asyncio
import time
from contextlib import asynccontextmanager, contextmanager
from typing import Any, AsyncIterator, Dict, Iterator, List, Mapping, Optional, Sequence, Union, cast
from urllib.parse import quote

import httpx

from . import _core
from ._core import Call, LimitResult, Retry, Retryable, UnavailablePolicy
from .errors import ProblemDetailsError, TimeoutError, TollgateError, UnavailableError
from .types import (
    ApiKey,
    AuthorizeResult,
    CheckRequest,
    CreatedKey,
    Decision,
    Granularity,
    KeyPage,
    KeyUsage,
    ReleaseEntry,
    RenewEntry,
    Subject,
    TimeArg,
    UsageHistory,
)

CheckLike = Union[CheckRequest, Mapping[str, Any]]


def _seg(s: str) -> str:
    return quote(s, safe="")


class _Base:
    def __init__(
        self,
        base_url: str,
        *,
        admin_token: Optional[str] = None,
        timeout: float = 2.0,
        retry: Optional[Retry] = None,
        on_unavailable: UnavailablePolicy = "raise",
        headers: Optional[Mapping[str, str]] = None,
    ) -> None:
        if not base_url:
            raise TollgateError("base_url is required")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retry = retry or Retry()
        self.on_unavailable: UnavailablePolicy = on_unavailable
        self._admin = {"authorization": f"Bearer {admin_token}"} if admin_token else {}
        self._headers = dict(headers or {})

    def _policy(self, override: Optional[UnavailablePolicy]) -> UnavailablePolicy:
        return override or self.on_unavailable

    @staticmethod
    def _batch(checks: Sequence[CheckLike]) -> List[CheckRequest]:
        out: List[CheckRequest] = []
        for c in checks:
            dry = bool(c.get("dry_run", False))
            cost = c.get("cost")
            out.append(_core.check_body(cast(Subject, c["subject"]), cast(Optional[int], cost), dry))
        return out

    def _unavailable(self, attempts: int, last: Optional[BaseException]) -> UnavailableError:
        err = UnavailableError(f"Tollgate is unavailable after {attempts} attempt(s): {last}", attempts)
        err.__cause__ = last
        return err


class Client(_Base):
    """A synchronous Tollgate client; one instance is meant to be shared (it pools connections).

    ``timeout`` bounds each attempt (seconds); ``retry`` retries connection errors and 503
    answers with backoff (a timed-out attempt is not retried: it may have been decided);
    ``on_unavailable`` chooses fail-open (``"open"``), fail-closed (``"closed"``) or
    ``"raise"`` for the decision helpers when Tollgate cannot be reached.
    """

    def __init__(self, base_url: str, *, transport: Optional[httpx.BaseTransport] = None, **kw: Any) -> None:
        super().__init__(base_url, **kw)
        self._http = httpx.Client(timeout=self.timeout, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, call: Call) -> Any:
        return self._send(call)[1]

    def _send(self, call: Call) -> "tuple[httpx.Response, Any]":
        last: Optional[BaseException] = None
        attempts = self.retry.attempts
        for attempt in range(1, attempts + 1):
            try:
                response = self._http.request(
                    call.method,
                    self.base_url + call.path,
                    params=call.params or None,
                    content=_core.encode_body(call),
                    headers=_core.request_headers(call, self._headers),
                )
                return response, _core.read_answer(call, response)
            except httpx.TimeoutException as err:
                raise TimeoutError(f"Tollgate did not answer within {self.timeout} s", attempt) from err
            except httpx.TransportError as err:
                last, retry_after = err, None
            except Retryable as err:
                last, retry_after = err.problem, err.retry_after
            if attempt < attempts:
                time.sleep(self.retry.delay(attempt, retry_after))
        raise self._unavailable(attempts, last)

    # ---- decisions ----------------------------------------------------------------------

    def check(
        self,
        subject: Subject,
        *,
        cost: Optional[int] = None,
        dry_run: bool = False,
        on_unavailable: Optional[UnavailablePolicy] = None,
    ) -> Decision:
        """Decides one check (``POST /v1/check``)."""
        try:
            return cast(Decision, self._call(Call("POST", "/v1/check", _core.check_body(subject, cost, dry_run))))
        except UnavailableError as err:
            return _core.degraded(self._policy(on_unavailable), err)

    def check_batch(
        self, checks: Sequence[CheckLike], *, on_unavailable: Optional[UnavailablePolicy] = None
    ) -> List[Decision]:
        """Decides up to 100 checks in order (batch ``POST /v1/check``)."""
        wire = self._batch(checks)
        try:
            return cast(List[Decision], _core.results(self._call(Call("POST", "/v1/check", {"checks": wire}))))
        except UnavailableError as err:
            policy = self._policy(on_unavailable)
            return [_core.degraded(policy, err) for _ in wire]

    def authorize(
        self,
        headers: Mapping[str, str],
        *,
        deny_status: Optional[int] = None,
        on_unavailable: Optional[UnavailablePolicy] = None,
    ) -> AuthorizeResult:
        """Asks the forward-auth door (``GET /v1/authorize``) with the headers a proxy sends."""
        call = Call("GET", "/v1/authorize", params=_core.params(deny_status=deny_status), headers=dict(headers))
        call.accept = (401, 403, 429)
        try:
            response, _ = self._send(call)
        except UnavailableError as err:
            d = _core.degraded(self._policy(on_unavailable), err)
            return {"allowed": d["allowed"], "status": 200 if d["allowed"] else 503, "headers": {}}
        return cast(AuthorizeResult, _core.authorize_result(response))

    def limit(
        self,
        *,
        method: Optional[str] = None,
        path: Optional[str] = None,
        ip: Optional[str] = None,
        headers: Optional[Mapping[str, str]] = None,
        extra: Optional[Subject] = None,
        cost: Optional[int] = None,
        dry_run: bool = False,
        on_unavailable: Optional[UnavailablePolicy] = None,
    ) -> LimitResult:
        """Decides a request: builds its subject (method, path, IP, the API key of ``X-Api-Key``
        or ``Authorization: Bearer``; ``headers`` with lower-case names), and says what to answer."""
        subject = _core.subject_from(method, path, ip, headers or {})
        subject.update(extra or {})
        return _core.limit_result(self.check(subject, cost=cost, dry_run=dry_run, on_unavailable=on_unavailable))

    # ---- concurrency leases -------------------------------------------------------------

    def release(self, lease_id: str) -> bool:
        """Releases a lease (``POST /v1/release``): True if this call freed it."""
        return bool(self._call(Call("POST", "/v1/release", {"lease_id": lease_id}))["released"])

    def release_many(self, lease_ids: Sequence[str]) -> List[ReleaseEntry]:
        """Releases several leases (batch ``POST /v1/release``)."""
        return cast(List[ReleaseEntry], _core.results(self._call(Call("POST", "/v1/release", {"lease_ids": list(lease_ids)}))))

    def renew(self, lease_id: str) -> bool:
        """Renews a lease (``POST /v1/renew``): gives it its ``lease_ttl`` again, from now.
        True if renewed, False if it had already ended (released or run out; it is not
        brought back: take a new one)."""
        return bool(self._call(Call("POST", "/v1/renew", {"lease_id": lease_id}))["renewed"])

    def renew_many(self, lease_ids: Sequence[str]) -> List[RenewEntry]:
        """Renews several leases (batch ``POST /v1/renew``)."""
        return cast(List[RenewEntry], _core.results(self._call(Call("POST", "/v1/renew", {"lease_ids": list(lease_ids)}))))

    def acquire(self, subject: Subject, *, cost: Optional[int] = None) -> Optional[Decision]:
        """Checks ``subject`` for a concurrency lease: the decision (with ``lease_id``) when
        admitted, None when refused. Raises when admitted without a lease (no concurrency
        limit matched) and when Tollgate is unreachable."""
        decision = self.check(subject, cost=cost, on_unavailable="raise")
        if not decision["allowed"]:
            return None
        if "lease_id" not in decision:
            raise TollgateError("the decision took no lease: no concurrency limit matched the subject")
        return decision

    @contextmanager
    def lease(self, subject: Subject, *, cost: Optional[int] = None) -> Iterator[Optional[Decision]]:
        """``with client.lease(subject) as d:`` holds a lease for the block (``d`` is None when
        refused) and releases it afterwards, whatever happens."""
        decision = self.acquire(subject, cost=cost)
        try:
            yield decision
        finally:
            if decision is not None:
                try:
                    self.release(decision["lease_id"])
                except TollgateError:
                    pass

    # ---- key admin ----------------------------------------------------------------------

    def create_key(
        self,
        name: str,
        owner: str,
        *,
        tier: Optional[str] = None,
        env: Optional[str] = None,
        expires_at: Optional[int] = None,
        metadata: Optional[Dict[str, Any]] = None,
        overrides: Optional[Dict[str, Any]] = None,
    ) -> CreatedKey:
        """Creates a key (``POST /v1/keys``); the answer's ``secret`` is shown this once."""
        body = _core.params(name=name, owner=owner, tier=tier, env=env, expires_at=expires_at, metadata=metadata, overrides=overrides)
        return cast(CreatedKey, self._call(Call("POST", "/v1/keys", body, headers=self._admin)))

    def list_keys(
        self,
        *,
        owner: Optional[str] = None,
        tier: Optional[str] = None,
        status: Optional[str] = None,
        after: Optional[str] = None,
        limit: Optional[int] = None,
    ) -> KeyPage:
        """One page of keys (``GET /v1/keys``)."""
        p = _core.params(owner=owner, tier=tier, status=status, after=after, limit=limit)
        return cast(KeyPage, self._call(Call("GET", "/v1/keys", params=p, headers=self._admin)))

    def iter_keys(self, *, owner: Optional[str] = None, tier: Optional[str] = None, status: Optional[str] = None) -> Iterator[ApiKey]:
        """Every key matching the filters, page after page."""
        after: Optional[str] = None
        while True:
            page = self.list_keys(owner=owner, tier=tier, status=status, after=after)
            yield from page["keys"]
            nxt = page.get("next")
            if not nxt:
                return
            after = str(nxt)

    def get_key(self, key_id: str) -> ApiKey:
        """One key (``GET /v1/keys/{id}``)."""
        return cast(ApiKey, self._call(Call("GET", f"/v1/keys/{_seg(key_id)}", headers=self._admin)))

    def rotate_key(self, key_id: str, *, grace_seconds: Optional[int] = None, env: Optional[str] = None) -> CreatedKey:
        """A new secret (``POST /v1/keys/{id}/rotate``); the old one works for the grace period."""
        body = _core.params(grace_seconds=grace_seconds, env=env)
        return cast(CreatedKey, self._call(Call("POST", f"/v1/keys/{_seg(key_id)}/rotate", body, headers=self._admin)))

    def revoke_key(self, key_id: str) -> None:
        """Revokes a key for good (``DELETE /v1/keys/{id}``)."""
        self._call(Call("DELETE", f"/v1/keys/{_seg(key_id)}", headers=self._admin))

    def key_usage(self, key_id: str) -> KeyUsage:
        """Where each limit and quota of the key stands now (``GET /v1/keys/{id}/usage``)."""
        return cast(KeyUsage, self._call(Call("GET", f"/v1/keys/{_seg(key_id)}/usage", headers=self._admin)))

    def key_usage_history(
        self, key_id: str, *, start: Optional[TimeArg] = None, end: Optional[TimeArg] = None, granularity: Optional[Granularity] = None
    ) -> UsageHistory:
        """Decisions per period for one key (``GET /v1/keys/{id}/usage/history``)."""
        p = _core.params(**{"from": start, "to": end, "granularity": granularity})
        return cast(UsageHistory, self._call(Call("GET", f"/v1/keys/{_seg(key_id)}/usage/history", params=p, headers=self._admin)))

    def owner_usage_history(
        self, owner: str, *, start: Optional[TimeArg] = None, end: Optional[TimeArg] = None, granularity: Optional[Granularity] = None
    ) -> UsageHistory:
        """Decisions per period for every key of one owner (``GET /v1/owners/{owner}/usage/history``)."""
        p = _core.params(**{"from": start, "to": end, "granularity": granularity})
        return cast(UsageHistory, self._call(Call("GET", f"/v1/owners/{_seg(owner)}/usage/history", params=p, headers=self._admin)))


class AsyncClient(_Base):
    """The asyncio twin of :class:`Client`: the same methods, awaited."""

    def __init__(self, base_url: str, *, transport: Optional[httpx.AsyncBaseTransport] = None, **kw: Any) -> None:
        super().__init__(base_url, **kw)
        self._http = httpx.AsyncClient(timeout=self.timeout, transport=transport)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _call(self, call: Call) -> Any:
        return (await self._send(call))[1]

    async def _send(self, call: Call) -> "tuple[httpx.Response, Any]":
        last: Optional[BaseException] = None
        attempts = self.retry.attempts
        for attempt in range(1, attempts + 1):
            try:
                response = await self._http.request(
                    call.method,
                    self.base_url + call.path,
                    params=call.params or None,
                    content=_core.encode_body(call),
                    headers=_core.request_headers(call, self._headers),
                )
                return response, _core.read_answer(call, response)
            except httpx.TimeoutException as err:
                raise TimeoutError(f"Tollgate did not answer within {self.timeout} s", attempt) from err
            except httpx.TransportError as err:
                last, retry_after = err, None
            except Retryable as err:
                last, retry_after = err.problem, err.retry_after
            if attempt < attempts:
                await asyncio.sleep(self.retry.delay(attempt, retry_after))
        raise self._unavailable(attempts, last)

    async def check(
        self,
        subject: Subject,
        *,
        cost: Optional[int] = None,
        dry_run: bool = False,
        on_unavailable: Optional[UnavailablePolicy] = None,
    ) -> Decision:
        """Decides one check (``POST /v1/check``)."""
        try:
            return cast(Decision, await self._call(Call("POST", "/v1/check", _core.check_body(subject, cost, dry_run))))
        except UnavailableError as err:
            return _core.degraded(self._policy(on_unavailable), err)

    async def check_batch(
        self, checks: Sequence[CheckLike], *, on_unavailable: Optional[UnavailablePolicy] = None
    ) -> List[Decision]:
        """Decides up to 100 checks in order (batch ``POST /v1/check``)."""
        wire = self._batch(checks)
        try:
            return cast(List[Decision], _core.results(await self._call(Call("POST", "/v1/check", {"checks": wire}))))
        except UnavailableError as err:
            policy = self._policy(on_unavailable)
            return [_core.degraded(policy, err) for _ in wire]

    async def authorize(
        self,
        headers: Mapping[str, str],
        *,
        deny_status: Optional[int] = None,
        on_unavailable: Optional[UnavailablePolicy] = None,
    ) -> AuthorizeResult:
        """Asks the forward-auth door (``GET /v1/authorize``) with the headers a proxy sends."""
        call = Call("GET", "/v1/authorize", params=_core.params(deny_status=deny_status), headers=dict(headers))
        call.accept = (401, 403, 429)
        try:
            response, _ = await self._send(call)
        except UnavailableError as err:
            d = _core.degraded(self._policy(on_unavailable), err)
            return {"allowed": d["allowed"], "status": 200 if d["allowed"] else 503, "headers": {}}
        return cast(AuthorizeResult, _core.authorize_result(response))

    async def limit(
        self,
        *,
        method: Optional[str] = None,
        path: Optional[str] = None,
        ip: Optional[str] = None,
        headers: Optional[Mapping[str, str]] = None,
        extra: Optional[Subject] = None,
        cost: Optional[int] = None,
        dry_run: bool = False,
        on_unavailable: Optional[UnavailablePolicy] = None,
    ) -> LimitResult:
        """Decides a request; see :meth:`Client.limit`."""
        subject = _core.subject_from(method, path, ip, headers or {})
        subject.update(extra or {})
        return _core.limit_result(await self.check(subject, cost=cost, dry_run=dry_run, on_unavailable=on_unavailable))

    async def release(self, lease_id: str) -> bool:
        """Releases a lease (``POST /v1/release``): True if this call freed it."""
        return bool((await self._call(Call("POST", "/v1/release", {"lease_id": lease_id})))["released"])

    async def release_many(self, lease_ids: Sequence[str]) -> List[ReleaseEntry]:
        """Releases several leases (batch ``POST /v1/release``)."""
        body = await self._call(Call("POST", "/v1/release", {"lease_ids": list(lease_ids)}))
        return cast(List[ReleaseEntry], _core.results(body))

    async def renew(self, lease_id: str) -> bool:
        """Renews a lease (``POST /v1/renew``); see :meth:`Client.renew`."""
        return bool((await self._call(Call("POST", "/v1/renew", {"lease_id": lease_id})))["renewed"])

    async def renew_many(self, lease_ids: Sequence[str]) -> List[RenewEntry]:
        """Renews several leases (batch ``POST /v1/renew``)."""
        body = await self._call(Call("POST", "/v1/renew", {"lease_ids": list(lease_ids)}))
        return cast(List[RenewEntry], _core.results(body))

    async def acquire(self, subject: Subject, *, cost: Optional[int] = None) -> Optional[Decision]:
        """Checks ``subject`` for a concurrency lease; see :meth:`Client.acquire`."""
        decision = await self.check(subject, cost=cost, on_unavailable="raise")
        if not decision["allowed"]:
            return None
        if "lease_id" not in decision:
            raise TollgateError("the decision took no lease: no concurrency limit matched the subject")
        return decision

    @asynccontextmanager
    async def lease(self, subject: Subject, *, cost: Optional[int] = None) -> AsyncIterator[Optional[Decision]]:
        """``async with client.lease(subject) as d:``; see :meth:`Client.lease`."""
        decision = await self.acquire(subject, cost=cost)
        try:
            yield decision
        finally:
            if decision is not None:
                try:
                    await self.release(decision["lease_id"])
                except TollgateError:
                    pass

    async def create_key(
        self,
        name: str,
        owner: str,
        *,
        tier: Optional[str] = None,
        env: Optional[str] = None,
        expires_at: Optional[int] = None,
        metadata: Optional[Dict[str, Any]] = None,
        overrides: Optional[Dict[str, Any]] = None,
    ) -> CreatedKey:
        """Creates a key (``POST /v1/keys``)."""
        body = _core.params(name=name, owner=owner, tier=tier, env=env, expires_at=expires_at, metadata=metadata, overrides=overrides)
        return cast(CreatedKey, await self._call(Call("POST", "/v1/keys", body, headers=self._admin)))

    async def list_keys(
        self,
        *,
        owner: Optional[str] = None,
        tier: Optional[str] = None,
        status: Optional[str] = None,
        after: Optional[str] = None,
        limit: Optional[int] = None,
    ) -> KeyPage:
        """One page of keys (``GET /v1/keys``)."""
        p = _core.params(owner=owner, tier=tier, status=status, after=after, limit=limit)
        return cast(KeyPage, await self._call(Call("GET", "/v1/keys", params=p, headers=self._admin)))

    async def get_key(self, key_id: str) -> ApiKey:
        """One key (``GET /v1/keys/{id}``)."""
        return cast(ApiKey, await self._call(Call("GET", f"/v1/keys/{_seg(key_id)}", headers=self._admin)))

    async def rotate_key(self, key_id: str, *, grace_seconds: Optional[int] = None, env: Optional[str] = None) -> CreatedKey:
        """A new secret (``POST /v1/keys/{id}/rotate``)."""
        body = _core.params(grace_seconds=grace_seconds, env=env)
        return cast(CreatedKey, await self._call(Call("POST", f"/v1/keys/{_seg(key_id)}/rotate", body, headers=self._admin)))

    async def revoke_key(self, key_id: str) -> None:
        """Revokes a key for good (``DELETE /v1/keys/{id}``)."""
        await self._call(Call("DELETE", f"/v1/keys/{_seg(key_id)}", headers=self._admin))

    async def key_usage(self, key_id: str) -> KeyUsage:
        """Where each limit and quota of the key stands now."""
        return cast(KeyUsage, await self._call(Call("GET", f"/v1/keys/{_seg(key_id)}/usage", headers=self._admin)))

    async def key_usage_history(
        self, key_id: str, *, start: Optional[TimeArg] = None, end: Optional[TimeArg] = None, granularity: Optional[Granularity] = None
    ) -> UsageHistory:
        """Decisions per period for one key."""
        p = _core.params(**{"from": start, "to": end, "granularity": granularity})
        path = f"/v1/keys/{_seg(key_id)}/usage/history"
        return cast(UsageHistory, await self._call(Call("GET", path, params=p, headers=self._admin)))

    async def owner_usage_history(
        self, owner: str, *, start: Optional[TimeArg] = None, end: Optional[TimeArg] = None, granularity: Optional[Granularity] = None
    ) -> UsageHistory:
        """Decisions per period for every key of one owner."""
        p = _core.params(**{"from": start, "to": end, "granularity": granularity})
        path = f"/v1/owners/{_seg(owner)}/usage/history"
        return cast(UsageHistory, await self._call(Call("GET", path, params=p, headers=self._admin)))


__all__ = ["Client", "AsyncClient", "ProblemDetailsError"]
