// The committed wire types are the ones docs/openapi.json generates, and the running server
// serves that same description.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { generate, OUT, SPEC } from "../scripts/openapi-types.mjs";
import { TOLLGATE_URL } from "./helpers.mjs";

test("src/openapi.ts is generated from docs/openapi.json (npm run generate)", async () => {
  const committed = await readFile(OUT, "utf8");
  assert.ok(committed === (await generate()), "src/openapi.ts is stale: run `npm run generate` in sdks/typescript");
});

test("the server serves the description the types come from", async () => {
  const served = await (await fetch(TOLLGATE_URL + "/openapi.json")).json();
  assert.deepEqual(served, JSON.parse(await readFile(SPEC, "utf8")));
});
