"""The sync client against a real Tollgate (policy in scripts/test-sdks: per-user 3 an hour,
exports 2 in flight per user, tiers free and tiny)."""

from __future__ import annotations

import pytest

from tollgate import Client, ProblemDetailsError, TollgateError, status_for_code
from tollgate.types import Subject
from conftest import URL, eventually, unique


def test_check_allowed_with_limits_and_headers(client: Client) -> None:
    d = client.check({"user": unique("u")})
    assert d["allowed"] is True and d["code"] == "OK"
    limit = next(l for l in d["limits"] if l["name"] == "per-user")
    assert (limit["limit"], limit["remaining"]) == (3, 2)
    assert "per-user" in d["headers"]["ratelimit-policy"]


def test_cost_and_dry_run(client: Client) -> None:
    user = unique("u")
    assert client.check({"user": user}, cost=3, dry_run=True)["allowed"]
    assert client.check({"user": user}, cost=0)["limits"][0]["remaining"] == 3
    assert client.check({"user": user}, cost=3)["limits"][0]["remaining"] == 0
    denied = client.check({"user": user})
    assert denied["allowed"] is False and denied["code"] == "RATE_LIMITED"
    assert denied.get("retry_after_ms", 0) > 0
    assert status_for_code(denied["code"]) == 429


def test_batch(client: Client) -> None:
    a, b = unique("u"), unique("u")
    results = client.check_batch(
        [{"subject": {"user": a}, "cost": 3}, {"subject": {"user": a}}, {"subject": {"user": b}, "cost": 2, "dry_run": True}]
    )
    assert [r["allowed"] for r in results] == [True, False, True]
    assert client.check({"user": b}, cost=0)["limits"][0]["remaining"] == 3


def test_limit_maps_a_request(client: Client) -> None:
    user = unique("u")
    for _ in range(3):
        r = client.limit(method="GET", path="/orders", ip="203.0.113.9", extra={"user": user})
        assert r.allowed and r.status == 200 and "ratelimit" in r.headers
    r = client.limit(method="GET", path="/orders", ip="203.0.113.9", extra={"user": user})
    assert not r.allowed and r.status == 429
    assert int(r.headers["retry-after"]) > 0


def test_typed_errors(client: Client) -> None:
    with pytest.raises(ProblemDetailsError) as e:
        client.check({"ip": "not-an-ip"})
    err = e.value
    assert err.status == 422
    assert err.type.startswith("https://tollgate.dev/problems/")
    assert err.title and err.errors and "ip" in str(err.errors)
    assert err.request_id
    with Client(URL) as anonymous:
        with pytest.raises(ProblemDetailsError) as e:
            anonymous.list_keys()
        assert e.value.status == 401 and e.value.name == "unauthorized"
    with Client(URL, admin_token="wrong") as wrong:
        with pytest.raises(ProblemDetailsError) as e:
            wrong.list_keys()
        assert e.value.status == 401 and e.value.detail


def test_keys_lifecycle(client: Client) -> None:
    owner = unique("owner")
    created = client.create_key("sdk test", owner, tier="tiny", metadata={"team": "sdk"})
    assert created["secret"].startswith("tg_live_")
    key = created["key"]
    assert (key["owner"], key["tier"], key["status"]) == (owner, "tiny", "active")
    assert [k["id"] for k in client.list_keys(owner=owner)["keys"]] == [key["id"]]
    assert [k["id"] for k in client.iter_keys(owner=owner)] == [key["id"]]
    assert client.get_key(key["id"])["name"] == "sdk test"
    assert client.check({"api_key": created["secret"]})["allowed"]

    rotated = client.rotate_key(key["id"], grace_seconds=0)
    assert rotated["secret"] != created["secret"]
    assert client.check({"api_key": rotated["secret"]}, dry_run=True)["allowed"]

    client.revoke_key(key["id"])
    assert client.get_key(key["id"])["status"] == "revoked"
    refused = client.check({"api_key": rotated["secret"]})
    assert (refused["allowed"], refused["code"]) == (False, "KEY_INVALID")


def test_usage_and_history(client: Client) -> None:
    owner = unique("owner")
    created = client.create_key("usage", owner, tier="tiny")
    for _ in range(3):
        client.check({"api_key": created["secret"]})
    usage = client.key_usage(created["key"]["id"])
    requests = next(l for l in usage["limits"] if l["name"] == "requests")
    assert (requests["limit"], requests["remaining"]) == (2, 0)

    def three() -> object:
        h = client.key_usage_history(created["key"]["id"], granularity="minute")
        return h if sum(p["requests"] for p in h["buckets"]) >= 3 else None

    history = eventually(three, 10, "usage history to show 3 requests")
    assert isinstance(history, dict)
    assert sum(p["allowed"] for p in history["buckets"]) == 2
    assert sum(p["denied"] for p in history["buckets"]) == 1
    owner_history = client.owner_usage_history(owner, granularity="minute")
    assert sum(p["requests"] for p in owner_history["buckets"]) == 3


def test_authorize(client: Client) -> None:
    secret = client.create_key("fa", unique("owner"), tier="tiny")["secret"]
    headers = {"x-api-key": secret, "x-forwarded-method": "GET", "x-forwarded-uri": "/things"}
    first = client.authorize(headers)
    assert first["allowed"] and first["status"] == 200 and "ratelimit" in first["headers"]
    client.authorize(headers)
    third = client.authorize(headers)
    assert (third["allowed"], third["status"]) == (False, 429)
    assert int(third["headers"]["retry-after"]) > 0
    assert third.get("problem", {}).get("status") == 429
    assert client.authorize(headers, deny_status=401)["status"] == 401
    assert client.authorize({"x-api-key": "tg_live_notarealkeyatall000000"})["status"] == 401


def test_acquire_up_to_the_limit(client: Client) -> None:
    subject: Subject = {"user": unique("u"), "path": "/export"}
    a, b = client.acquire(subject), client.acquire(subject)
    assert a is not None and b is not None and a["lease_id"] != b["lease_id"]
    assert next(l for l in b["limits"] if l["name"] == "exports").get("lease_id") == b["lease_id"]
    assert client.acquire(subject) is None
    with pytest.raises(TollgateError, match="no concurrency limit"):
        client.acquire({"user": unique("u")})


@pytest.mark.usefixtures("needs_release")
def test_leases(client: Client) -> None:
    # Not a "u-" user: the per-user rule would stop it before its leases do.
    subject: Subject = {"user": unique("lease"), "path": "/export"}
    a = client.acquire(subject)
    b = client.acquire(subject)
    assert a is not None and b is not None and a["lease_id"] != b["lease_id"]
    assert next(l for l in a["limits"] if l["name"] == "exports").get("lease_id") == a["lease_id"]
    assert client.acquire(subject) is None
    assert client.release(a["lease_id"]) is True
    assert client.release(a["lease_id"]) is False
    c = client.acquire(subject)
    assert c is not None
    results = client.release_many([b["lease_id"], c["lease_id"], "no-such-lease"])
    assert [(r["lease_id"], r["released"]) for r in results] == [
        (b["lease_id"], True),
        (c["lease_id"], True),
        ("no-such-lease", False),
    ]
    with client.lease(subject) as held:
        assert held is not None
    after = client.check(subject, cost=0)
    assert next(l for l in after["limits"] if l["name"] == "exports")["remaining"] == 2


@pytest.mark.usefixtures("needs_release")
def test_renew(client: Client) -> None:
    subject: Subject = {"user": unique("lease"), "path": "/export"}
    a = client.acquire(subject)
    b = client.acquire(subject)
    assert a is not None and b is not None
    assert client.renew(a["lease_id"]) is True
    assert client.release(a["lease_id"]) is True, "a renewed lease is still held"
    assert client.renew(a["lease_id"]) is False, "a released lease is not brought back"
    results = client.renew_many([b["lease_id"], "no-such-lease"])
    assert [(r["lease_id"], r["renewed"]) for r in results] == [(b["lease_id"], True), ("no-such-lease", False)]
    assert "error" not in results[0]
    assert isinstance(results[1].get("error"), str)
    with pytest.raises(ProblemDetailsError) as e:
        client.renew("no-such-lease")
    assert e.value.status == 422 and e.value.name == "invalid-request"
    assert any(err.get("path") == "lease_id" for err in e.value.errors)
    assert client.release(b["lease_id"]) is True
