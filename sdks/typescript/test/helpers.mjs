// Test support: the real Tollgate the suite runs against, unique names, polling with a
// deadline, and a stub that misbehaves on purpose (for retries, timeouts and fail-open only).
import http from "node:http";
import { randomUUID } from "node:crypto";

export const TOLLGATE_URL = process.env.TOLLGATE_URL;
export const ADMIN_TOKEN = process.env.TOLLGATE_ADMIN_TOKEN;
if (!TOLLGATE_URL) {
  throw new Error("TOLLGATE_URL is not set: run scripts/test-sdks, which starts a Tollgate for this suite");
}

export const unique = (prefix) => `${prefix}-${randomUUID().slice(0, 12)}`;

/** Polls `probe` until it returns a truthy value, or fails after `ms`. */
export async function eventually(probe, ms = 5000, what = "condition") {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    last = await probe();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

let releaseProbe;
/** Whether this Tollgate has POST /v1/release: false only when it answers 404. */
export function releaseSupported() {
  releaseProbe ??= fetch(`${TOLLGATE_URL}/v1/release`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ lease_id: "probe" }),
  }).then((r) => r.status !== 404);
  return releaseProbe;
}

/** Skips the test, saying so, when the server has no /v1/release (answers 404). */
export async function skipWithoutRelease(t) {
  if (await releaseSupported()) return false;
  const why = "SKIPPED: this Tollgate answers 404 for POST /v1/release (leases not released by this server yet)";
  console.log(`# ${why}: ${t.name}`);
  t.skip(why);
  return true;
}

/** Forwards one request to the real Tollgate and relays its answer. */
export function proxy(req, res) {
  const target = new URL(req.url, TOLLGATE_URL);
  const out = http.request(target, { method: req.method, headers: { ...req.headers, host: target.host } }, (up) => {
    res.writeHead(up.statusCode, up.headers);
    up.pipe(res);
  });
  out.on("error", (e) => {
    res.writeHead(502);
    res.end(String(e));
  });
  req.pipe(out);
}

/**
 * A stub on a free loopback port whose `behaviour(req, res, n)` (n counts requests from 1)
 * misbehaves on purpose. Returns its URL, the request count and a close function.
 */
export async function startStub(behaviour) {
  let n = 0;
  const sockets = new Set();
  const server = http.createServer((req, res) => behaviour(req, res, ++n));
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    count: () => n,
    close: () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** A loopback port that nothing listens on. */
export async function closedPort() {
  const server = http.createServer();
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address();
  await new Promise((r) => server.close(r));
  return port;
}
