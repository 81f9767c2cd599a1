// The client against a real Tollgate (started by scripts/test-sdks with the policy there:
// per-user 3 an hour, exports 2 in flight per user, tiers free and tiny).
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  TollgateClient,
  TollgateProblemError,
  TollgateTimeoutError,
  TollgateUnavailableError,
  statusForCode,
} from "../dist/esm/index.js";
import {
  ADMIN_TOKEN,
  TOLLGATE_URL,
  closedPort,
  eventually,
  proxy,
  skipWithoutRelease,
  startStub,
  unique,
} from "./helpers.mjs";

const client = new TollgateClient({ baseUrl: TOLLGATE_URL, adminToken: ADMIN_TOKEN });

test("check: an allowed decision with its limits and headers", async () => {
  const d = await client.check({ user: unique("u") });
  assert.equal(d.allowed, true);
  assert.equal(d.code, "OK");
  const limit = d.limits.find((l) => l.name === "per-user");
  assert.ok(limit, "the per-user limit is reported");
  assert.equal(limit.limit, 3);
  assert.equal(limit.remaining, 2);
  assert.match(d.headers["ratelimit-policy"], /per-user/);
  assert.equal(d.headers["x-ratelimit-remaining"], "2");
});

test("check: cost and dry run", async () => {
  const user = unique("u");
  const dry = await client.check({ user }, { cost: 3, dryRun: true });
  assert.equal(dry.allowed, true);
  const look = await client.check({ user }, { cost: 0 });
  assert.equal(look.limits[0].remaining, 3, "a dry run consumes nothing");
  const spent = await client.check({ user }, { cost: 3 });
  assert.equal(spent.allowed, true);
  assert.equal(spent.limits[0].remaining, 0);
  const denied = await client.check({ user });
  assert.equal(denied.allowed, false);
  assert.equal(denied.code, "RATE_LIMITED");
  assert.ok(denied.retry_after_ms > 0);
  assert.equal(statusForCode(denied.code), 429);
});

test("checkBatch: one decision per check, in order", async () => {
  const a = unique("u");
  const b = unique("u");
  const results = await client.checkBatch([
    { subject: { user: a }, cost: 3 },
    { subject: { user: a } },
    { subject: { user: b }, dryRun: true, cost: 2 },
  ]);
  assert.equal(results.length, 3);
  assert.equal(results[0].allowed, true);
  assert.equal(results[1].allowed, false);
  assert.equal(results[1].code, "RATE_LIMITED");
  assert.equal(results[2].allowed, true);
  const after = await client.check({ user: b }, { cost: 0 });
  assert.equal(after.limits[0].remaining, 3, "the dry run in the batch consumed nothing");
});

test("limit: maps a request to allow or deny and the headers to set", async () => {
  const user = unique("u");
  const req = { method: "GET", url: "/orders?page=2", headers: { "user-agent": "test" }, ip: "203.0.113.9" };
  for (let i = 0; i < 3; i++) {
    const r = await client.limit(req, { extra: { user } });
    assert.equal(r.allowed, true);
    assert.equal(r.status, 200);
    assert.ok(r.headers["ratelimit"]);
  }
  const r = await client.limit(req, { extra: { user } });
  assert.equal(r.allowed, false);
  assert.equal(r.status, 429);
  assert.ok(Number(r.headers["retry-after"]) > 0);
  assert.equal(r.decision.code, "RATE_LIMITED");
});

test("typed errors carry the problem's fields", async () => {
  await assert.rejects(
    () => client.check({ ip: "not-an-ip" }),
    (err) => {
      assert.ok(err instanceof TollgateProblemError);
      assert.equal(err.status, 422);
      assert.match(err.type, /^https:\/\/tollgate\.dev\/problems\//);
      assert.ok(err.title);
      assert.ok(err.errors.length > 0, "errors[] names the field at fault");
      assert.match(JSON.stringify(err.errors), /ip/);
      assert.ok(err.requestId);
      return true;
    },
  );
  const anonymous = new TollgateClient({ baseUrl: TOLLGATE_URL });
  await assert.rejects(
    () => anonymous.listKeys(),
    (err) => err instanceof TollgateProblemError && err.status === 401 && err.problemName === "unauthorized",
  );
  const wrong = new TollgateClient({ baseUrl: TOLLGATE_URL, adminToken: "not-the-token" });
  await assert.rejects(() => wrong.listKeys(), (err) => err.status === 401 && typeof err.detail === "string");
});

test("keys: create, list, get, rotate, revoke", async () => {
  const owner = unique("owner");
  const created = await client.createKey({ name: "sdk test", owner, tier: "tiny", metadata: { team: "sdk" } });
  assert.match(created.secret, /^tg_live_/);
  assert.equal(created.key.owner, owner);
  assert.equal(created.key.tier, "tiny");
  assert.equal(created.key.status, "active");
  const id = created.key.id;

  const page = await client.listKeys({ owner });
  assert.deepEqual(page.keys.map((k) => k.id), [id]);
  const all = [];
  for await (const k of client.allKeys({ owner })) all.push(k.id);
  assert.deepEqual(all, [id]);
  assert.equal((await client.getKey(id)).name, "sdk test");

  const ok = await client.check({ api_key: created.secret });
  assert.equal(ok.allowed, true);

  const rotated = await client.rotateKey(id, { grace_seconds: 0 });
  assert.notEqual(rotated.secret, created.secret);
  assert.equal((await client.check({ api_key: rotated.secret }, { dryRun: true })).allowed, true);

  await client.revokeKey(id);
  assert.equal((await client.getKey(id)).status, "revoked");
  const refused = await client.check({ api_key: rotated.secret });
  assert.equal(refused.allowed, false);
  assert.equal(refused.code, "KEY_INVALID");
  assert.equal(statusForCode(refused.code), 401);
});

test("usage: where a key stands now, and its history", async () => {
  const owner = unique("owner");
  const { key, secret } = await client.createKey({ name: "usage", owner, tier: "tiny" });
  await client.check({ api_key: secret });
  await client.check({ api_key: secret });
  const denied = await client.check({ api_key: secret });
  assert.equal(denied.allowed, false);

  const usage = await client.keyUsage(key.id);
  const requests = usage.limits.find((l) => l.name === "requests");
  assert.ok(requests, "the tier's limit is listed");
  assert.equal(requests.limit, 2);
  assert.equal(requests.remaining, 0);

  const history = await eventually(async () => {
    const h = await client.keyUsageHistory(key.id, { granularity: "minute" });
    const sum = h.buckets.reduce((n, p) => n + p.requests, 0);
    return sum >= 3 ? h : null;
  }, 10000, "usage history to show 3 requests");
  const total = history.buckets.reduce((a, p) => ({ allowed: a.allowed + p.allowed, denied: a.denied + p.denied }), { allowed: 0, denied: 0 });
  assert.deepEqual(total, { allowed: 2, denied: 1 });
  const ownerHistory = await client.ownerUsageHistory(owner, { granularity: "minute" });
  assert.equal(ownerHistory.buckets.reduce((n, p) => n + p.requests, 0), 3);
});

test("authorize: the forward-auth door with a key", async () => {
  const { secret } = await client.createKey({ name: "fa", owner: unique("owner"), tier: "tiny" });
  const headers = { "x-api-key": secret, "x-forwarded-method": "GET", "x-forwarded-uri": "/things" };
  const first = await client.authorize(headers);
  assert.equal(first.allowed, true);
  assert.equal(first.status, 200);
  assert.ok(first.headers["ratelimit"]);
  await client.authorize(headers);
  const third = await client.authorize(headers);
  assert.equal(third.allowed, false);
  assert.equal(third.status, 429);
  assert.ok(Number(third.headers["retry-after"]) > 0);
  assert.equal(third.problem?.status, 429);
  const nginx = await client.authorize(headers, { denyStatus: 401 });
  assert.equal(nginx.status, 401);
  const bad = await client.authorize({ "x-api-key": "tg_live_notarealkeyatall000000" });
  assert.equal(bad.status, 401);
});

test("acquire: leases up to the limit, each named on its limit entry", async () => {
  const subject = { user: unique("u"), path: "/export" };
  const a = await client.acquire(subject);
  const b = await client.acquire(subject);
  assert.ok(a && b, "two leases fit");
  assert.notEqual(a.id, b.id);
  assert.equal(a.decision.lease_id, a.id);
  assert.equal(b.decision.limits.find((l) => l.name === "exports")?.lease_id, b.id);
  assert.equal(await client.acquire(subject), null, "a third is refused while two are held");
  await assert.rejects(() => client.acquire({ user: unique("u") }), /no concurrency limit/);
});

test("leases: acquire, refuse past the limit, release, release again", async (t) => {
  if (await skipWithoutRelease(t)) return;
  const subject = { user: unique("lease"), path: "/export" };
  const a = await client.acquire(subject, { cost: 1 });
  const b = await client.acquire(subject);
  assert.ok(a && b, "two leases fit");
  assert.ok(a.id && a.id !== b.id);
  assert.equal(a.decision.limits.find((l) => l.name === "exports")?.lease_id, a.id);
  assert.equal(await client.acquire(subject), null, "a third is refused while two are held");
  assert.equal(await a.release(), true);
  assert.equal(await a.release(), false, "releasing twice is harmless");
  const c = await client.acquire(subject);
  assert.ok(c, "a released lease makes room");
  const results = await client.releaseMany([b.id, c.id, "no-such-lease"]);
  assert.deepEqual(
    results.map((r) => [r.lease_id, r.released]),
    [
      [b.id, true],
      [c.id, true],
      ["no-such-lease", false],
    ],
  );
  const ran = await client.withLease(subject, async (lease) => lease.id);
  assert.ok(ran);
  const d = await client.check(subject, { cost: 0 });
  assert.equal(d.limits.find((l) => l.name === "exports")?.remaining, 2, "withLease released its lease");
});

test("leases: renew a live lease, not one released; a batch; a made-up id", async (t) => {
  if (await skipWithoutRelease(t)) return;
  const subject = { user: unique("lease"), path: "/export" };
  const a = await client.acquire(subject);
  const b = await client.acquire(subject);
  assert.ok(a && b, "two leases fit");
  assert.equal(await a.renew(), true, "a live lease is renewed");
  assert.equal(await client.renew(a.id), true, "and again, by id");
  assert.equal(await a.release(), true, "a renewed lease is still held, and released");
  assert.equal(await a.renew(), false, "a released lease is not brought back");
  const results = await client.renewMany([b.id, "no-such-lease"]);
  assert.deepEqual(
    results.map((r) => [r.lease_id, r.renewed]),
    [
      [b.id, true],
      ["no-such-lease", false],
    ],
  );
  assert.equal(results[0].error, undefined);
  assert.equal(typeof results[1].error, "string");
  await assert.rejects(
    () => client.renew("no-such-lease"),
    (err) =>
      err instanceof TollgateProblemError &&
      err.status === 422 &&
      err.problemName === "invalid-request" &&
      err.errors.some((e) => e.path === "lease_id"),
  );
  assert.equal(await b.release(), true);
});

test("retries: 503 answers are retried with backoff until Tollgate answers", async () => {
  const stub = await startStub((req, res, n) => {
    if (n <= 2) {
      res.writeHead(503, { "content-type": "application/problem+json", "retry-after": "0" });
      res.end(JSON.stringify({ type: "https://tollgate.dev/problems/unavailable", title: "Unavailable", status: 503 }));
    } else proxy(req, res);
  });
  try {
    const c = new TollgateClient({ baseUrl: stub.url, retry: { attempts: 3, baseDelayMs: 1 } });
    const d = await c.check({ user: unique("u") });
    assert.equal(d.allowed, true);
    assert.equal(d.code, "OK", "the third attempt reached the real Tollgate");
    assert.equal(stub.count(), 3);
  } finally {
    await stub.close();
  }
});

test("retries: a dropped connection is retried", async () => {
  const stub = await startStub((req, res, n) => {
    if (n === 1) req.socket.destroy();
    else proxy(req, res);
  });
  try {
    const c = new TollgateClient({ baseUrl: stub.url, retry: { attempts: 2, baseDelayMs: 1 } });
    const d = await c.check({ user: unique("u") });
    assert.equal(d.code, "OK");
    assert.equal(stub.count(), 2);
  } finally {
    await stub.close();
  }
});

test("unavailable: 503 after every retry throws, fails closed or fails open as chosen", async () => {
  const stub = await startStub((req, res) => {
    res.writeHead(503);
    res.end();
  });
  try {
    const throwing = new TollgateClient({ baseUrl: stub.url, retry: { attempts: 2, baseDelayMs: 1 } });
    await assert.rejects(() => throwing.check({ user: "x" }), (e) => e instanceof TollgateUnavailableError && e.attempts === 2);
    const closed = new TollgateClient({ baseUrl: stub.url, retry: { attempts: 2, baseDelayMs: 1 }, onUnavailable: "closed" });
    const d = await closed.check({ user: "x" });
    assert.deepEqual([d.allowed, d.code, d.degraded], [false, "UNAVAILABLE", "closed"]);
    const r = await closed.limit({ method: "GET", url: "/" });
    assert.equal(r.status, 503);
    const open = await closed.check({ user: "x" }, { onUnavailable: "open" });
    assert.deepEqual([open.allowed, open.degraded], [true, "open"]);
    await assert.rejects(() => closed.listKeys(), TollgateUnavailableError, "admin calls never degrade");
  } finally {
    await stub.close();
  }
});

test("timeouts: a Tollgate that does not answer in time", async () => {
  const stub = await startStub(() => {
    /* never answers */
  });
  try {
    const c = new TollgateClient({ baseUrl: stub.url, timeoutMs: 150 });
    const started = Date.now();
    await assert.rejects(() => c.check({ user: "x" }), TollgateTimeoutError);
    assert.ok(Date.now() - started < 2000, "the timeout bounds the call");
    assert.equal(stub.count(), 1, "a timed-out check is not retried: it may have been decided");
    const d = await c.check({ user: "x" }, { onUnavailable: "open" });
    assert.deepEqual([d.allowed, d.degraded], [true, "open"]);
  } finally {
    await stub.close();
  }
});

test("unreachable: connection refused fails open when chosen", async () => {
  const port = await closedPort();
  const c = new TollgateClient({ baseUrl: `http://127.0.0.1:${port}`, onUnavailable: "open", retry: { attempts: 2, baseDelayMs: 1 } });
  const d = await c.check({ user: "x" });
  assert.deepEqual([d.allowed, d.code, d.degraded], [true, "UNAVAILABLE", "open"]);
  const batch = await c.checkBatch([{ subject: { user: "x" } }, { subject: { user: "y" } }], { onUnavailable: "closed" });
  assert.deepEqual(batch.map((x) => x.allowed), [false, false]);
});
