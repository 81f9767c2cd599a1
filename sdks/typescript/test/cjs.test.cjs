// The CommonJS build: require() it and make one real decision.
const { test } = require("node:test");
const assert = require("node:assert/strict");
const { randomUUID } = require("node:crypto");
const { TollgateClient, TollgateProblemError } = require("../dist/cjs/index.js");

test("the CommonJS build decides against Tollgate", async () => {
  const client = new TollgateClient({ baseUrl: process.env.TOLLGATE_URL });
  const d = await client.check({ user: `cjs-${randomUUID()}` });
  assert.equal(d.allowed, true);
  assert.equal(d.code, "OK");
  assert.equal(typeof TollgateProblemError, "function");
});
