// Express and Fastify middleware, each in a real server of its framework, against a real
// Tollgate. The user is taken from an `x-user` header so every test has counters of its own.
import { test } from "node:test";
import assert from "node:assert/strict";
import express from "express";
import Fastify from "fastify";
import { TollgateClient, expressMiddleware, fastifyPlugin } from "../dist/esm/index.js";
import { TOLLGATE_URL, eventually, skipWithoutRelease, unique } from "./helpers.mjs";

const client = new TollgateClient({ baseUrl: TOLLGATE_URL });
const extra = (req) => ({ user: String(req.headers["x-user"] ?? "anonymous") });

/** A gate the /export handlers wait on, so that the test decides when they finish. */
function gate() {
  let open;
  const opened = new Promise((r) => (open = r));
  return { opened, open, inFlight: 0 };
}

async function listenExpress(app) {
  const server = await new Promise((resolve) => {
    const s = app.listen(0, "127.0.0.1", () => resolve(s));
  });
  return { url: `http://127.0.0.1:${server.address().port}`, close: () => new Promise((r) => server.close(r)) };
}

async function exercise(url) {
  const user = unique("mw");
  for (let i = 0; i < 3; i++) {
    const r = await fetch(`${url}/hello`, { headers: { "x-user": user } });
    assert.equal(r.status, 200);
    assert.equal(await r.text(), "hello");
    assert.ok(r.headers.get("ratelimit"), "the rate-limit headers are set on allowed answers");
  }
  const r = await fetch(`${url}/hello`, { headers: { "x-user": user } });
  assert.equal(r.status, 429);
  assert.match(r.headers.get("content-type"), /application\/problem\+json/);
  assert.ok(Number(r.headers.get("retry-after")) > 0);
  const body = await r.json();
  assert.equal(body.status, 429);
  assert.equal(body.code, "RATE_LIMITED");
}

async function exerciseLeases(url, g) {
  const user = unique("mw");
  const get = () => fetch(`${url}/export`, { headers: { "x-user": user } });
  const first = get();
  const second = get();
  await eventually(() => g.inFlight === 2, 5000, "two exports in flight");
  const third = await get();
  assert.equal(third.status, 429, "a third export is refused while two run");
  g.open();
  assert.equal((await first).status, 200);
  assert.equal((await second).status, 200);
  // Both leases are released once the answers are finished.
  const after = await eventually(async () => {
    const d = await client.check({ user, path: "/export" }, { cost: 0 });
    return d.limits.find((l) => l.name === "exports")?.remaining === 2 ? d : null;
  }, 5000, "the leases to be released");
  assert.ok(after);
  const again = await get();
  assert.equal(again.status, 200);
}

function expressApp(g) {
  const app = express();
  app.use(expressMiddleware(client, { extra, skip: (req) => req.path === "/healthz" }));
  app.get("/hello", (req, res) => res.send("hello"));
  app.get("/healthz", (req, res) => res.send("ok"));
  app.get("/export", async (req, res) => {
    g.inFlight++;
    await g.opened;
    res.send("done");
  });
  return app;
}

async function fastifyApp(g) {
  const app = Fastify();
  await app.register(fastifyPlugin(client, { extra }));
  app.get("/hello", async () => "hello");
  app.get("/export", async () => {
    g.inFlight++;
    await g.opened;
    return "done";
  });
  await app.listen({ port: 0, host: "127.0.0.1" });
  return { url: `http://127.0.0.1:${app.server.address().port}`, close: () => app.close() };
}

test("express: allows, sets headers, refuses with a problem", async () => {
  const s = await listenExpress(expressApp(gate()));
  try {
    await exercise(s.url);
    const h = await fetch(`${s.url}/healthz`);
    assert.equal(h.headers.get("ratelimit"), null, "skipped requests are not checked");
  } finally {
    await s.close();
  }
});

test("express: concurrency leases are held while the handler runs", async (t) => {
  if (await skipWithoutRelease(t)) return;
  const g = gate();
  const s = await listenExpress(expressApp(g));
  try {
    await exerciseLeases(s.url, g);
  } finally {
    g.open();
    await s.close();
  }
});

test("fastify: allows, sets headers, refuses with a problem", async () => {
  const s = await fastifyApp(gate());
  try {
    await exercise(s.url);
  } finally {
    await s.close();
  }
});

test("fastify: concurrency leases are held while the handler runs", async (t) => {
  if (await skipWithoutRelease(t)) return;
  const g = gate();
  const s = await fastifyApp(g);
  try {
    await exerciseLeases(s.url, g);
  } finally {
    g.open();
    await s.close();
  }
});
