"""The async client against a real Tollgate: the same calls, awaited."""

from __future__ import annotations

import asyncio

import pytest

from tollgate import AsyncClient, ProblemDetailsError, Retry, UnavailableError
from conftest import TOKEN, URL, Stub, closed_port, forward, release_supported, unavailable, unique


def run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


def test_async_checks_keys_and_usage() -> None:
    async def go() -> None:
        async with AsyncClient(URL, admin_token=TOKEN) as c:
            user = unique("u")
            d = await c.check({"user": user}, cost=2)
            assert d["allowed"] and d["limits"][0]["remaining"] == 1
            assert (await c.check({"user": user}, cost=1, dry_run=True))["allowed"]
            results = await c.check_batch([{"subject": {"user": user}}, {"subject": {"user": user}}])
            assert [r["allowed"] for r in results] == [True, False]
            r = await c.limit(method="POST", path="/orders", extra={"user": user})
            assert (r.allowed, r.status) == (False, 429)

            owner = unique("owner")
            created = await c.create_key("async", owner, tier="tiny")
            kid = created["key"]["id"]
            assert [k["id"] for k in (await c.list_keys(owner=owner))["keys"]] == [kid]
            assert (await c.check({"api_key": created["secret"]}))["allowed"]
            rotated = await c.rotate_key(kid, grace_seconds=0)
            assert (await c.get_key(kid))["id"] == kid
            assert (await c.key_usage(kid))["limits"]
            fa = await c.authorize({"x-api-key": rotated["secret"]})
            assert fa["status"] == 200
            await c.revoke_key(kid)
            assert (await c.check({"api_key": rotated["secret"]}))["code"] == "KEY_INVALID"
            with pytest.raises(ProblemDetailsError) as e:
                await c.check({"ip": "nope"})
            assert e.value.status == 422 and e.value.errors

            async def history() -> int:
                h = await c.key_usage_history(kid, granularity="minute")
                return sum(p["requests"] for p in h["buckets"])

            deadline = asyncio.get_running_loop().time() + 10
            while await history() < 1:
                assert asyncio.get_running_loop().time() < deadline, "usage history stayed empty"
                await asyncio.sleep(0.02)
            owner_h = await c.owner_usage_history(owner)
            assert owner_h["buckets"] is not None

    run(go())


def test_async_leases() -> None:
    if not release_supported():
        pytest.skip("SKIPPED: this Tollgate answers 404 for POST /v1/release (leases not released by this server yet)")

    async def go() -> None:
        async with AsyncClient(URL) as c:
            subject = {"user": unique("u"), "path": "/export"}
            a = await c.acquire(subject)  # type: ignore[arg-type]
            assert a is not None
            async with c.lease(subject) as b:  # type: ignore[arg-type]
                assert b is not None
                assert await c.acquire(subject) is None  # type: ignore[arg-type]
            assert await c.release(a["lease_id"]) is True
            assert (await c.release_many([a["lease_id"]]))[0]["released"] is False

    run(go())


def test_async_renew() -> None:
    if not release_supported():
        pytest.skip("SKIPPED: this Tollgate answers 404 for POST /v1/release (leases not released by this server yet)")

    async def go() -> None:
        async with AsyncClient(URL) as c:
            subject = {"user": unique("lease"), "path": "/export"}
            a = await c.acquire(subject)  # type: ignore[arg-type]
            b = await c.acquire(subject)  # type: ignore[arg-type]
            assert a is not None and b is not None
            assert await c.renew(a["lease_id"]) is True
            assert await c.release(a["lease_id"]) is True
            assert await c.renew(a["lease_id"]) is False
            results = await c.renew_many([b["lease_id"], "no-such-lease"])
            assert [(r["lease_id"], r["renewed"]) for r in results] == [(b["lease_id"], True), ("no-such-lease", False)]
            assert "error" not in results[0] and isinstance(results[1].get("error"), str)
            with pytest.raises(ProblemDetailsError) as e:
                await c.renew("no-such-lease")
            assert e.value.status == 422 and any(err.get("path") == "lease_id" for err in e.value.errors)
            assert await c.release(b["lease_id"]) is True

    run(go())


def test_async_retries_and_fail_modes() -> None:
    stub = Stub(lambda h, n: unavailable(h) if n <= 2 else forward(h))
    port = closed_port()

    async def go() -> None:
        async with AsyncClient(stub.url, retry=Retry(attempts=3, base_delay=0.001)) as c:
            assert (await c.check({"user": unique("u")}))["code"] == "OK"
            assert stub.count == 3
        async with AsyncClient(f"http://127.0.0.1:{port}", on_unavailable="closed") as c:
            d = await c.check({"user": "x"})
            assert (d["allowed"], d["code"], d.get("degraded")) == (False, "UNAVAILABLE", "closed")
            with pytest.raises(UnavailableError):
                await c.check({"user": "x"}, on_unavailable="raise")

    try:
        run(go())
    finally:
        stub.close()
