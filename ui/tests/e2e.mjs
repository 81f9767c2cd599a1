// End-to-end: drives Chromium headless through the dashboard of a running tollgate
// (TOLLGATE_URL), signing in with TOLLGATE_ADMIN_TOKEN and TOLLGATE_VIEWER_TOKEN. Runs axe
// on every page, saves a screenshot of each to docs/ui/, and exits non-zero on a failure.
import { chromium } from "playwright-core";
import { AxeBuilder } from "@axe-core/playwright";
import { fileURLToPath } from "node:url";
import path from "node:path";

const base = process.env.TOLLGATE_URL;
const admin = process.env.TOLLGATE_ADMIN_TOKEN;
const viewer = process.env.TOLLGATE_VIEWER_TOKEN;
const shots = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../docs/ui");
const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";

let failures = 0;
async function step(name, f) {
  try {
    await f();
    console.log(`ok   ${name}`);
  } catch (e) {
    failures++;
    console.log(`FAIL ${name}: ${e?.stack ?? e}`);
  }
}
function assert(cond, what) {
  if (!cond) throw new Error(what);
}

/// Fails on any serious or critical axe violation on the page as it is now.
async function axe(page, name) {
  const r = await new AxeBuilder({ page }).analyze();
  const bad = r.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  assert(bad.length === 0, `${name}: ${bad.map((v) => `${v.id} (${v.impact}): ${v.help}`).join("; ")}`);
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
}

async function check(secret) {
  const r = await fetch(`${base}/v1/check`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ subject: { api_key: secret } }),
  });
  return r.json();
}

const browser = await chromium.launch({ executablePath, headless: true, args: ["--no-sandbox"] });
try {
  const context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
  const page = await context.newPage();
  const cspErrors = [];
  page.on("console", (m) => {
    if (m.type() === "error") cspErrors.push(m.text());
  });
  let keyId = "";
  let secret = "";

  await step("sign in from the keyboard", async () => {
    await page.goto(`${base}/ui/`);
    await page.locator("#token").waitFor();
    await axe(page, "sign-in");
    await shot(page, "sign-in");
    // The token field has the focus; type and submit with Enter.
    await page.keyboard.type(admin);
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { name: "Overview" }).waitFor();
    const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + document.cookie);
    assert(!stored.includes(admin), "the token was stored");
  });

  await step("create a key from the keyboard; its secret is shown once", async () => {
    await page.getByRole("link", { name: "Keys" }).focus();
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { name: "Keys" }).waitFor();
    await page.locator("#new-name").focus();
    await page.keyboard.type("e2e key");
    await page.keyboard.press("Tab");
    await page.keyboard.type("acme");
    await page.keyboard.press("Tab");
    await page.keyboard.type("free");
    await page.keyboard.press("Tab");
    await page.keyboard.press("Enter");
    const code = page.locator("#secret-value");
    await code.waitFor();
    secret = (await code.textContent()) ?? "";
    assert(secret.length > 10, `secret ${secret}`);
    await page.getByRole("button", { name: "Copy" }).waitFor();
    await page.getByRole("link", { name: "e2e key" }).waitFor();
    await axe(page, "keys");
    await shot(page, "keys");
  });

  await step("the key is usable through /v1/check and its usage shows", async () => {
    for (let i = 0; i < 3; i++) {
      const d = await check(secret);
      assert(d.allowed === true, `check: ${JSON.stringify(d)}`);
    }
    await page.getByRole("link", { name: "e2e key" }).click();
    await page.getByRole("heading", { name: /^Key / }).waitFor();
    keyId = (await page.getByRole("heading", { name: /^Key / }).textContent()).replace(/^Key /, "");
    await page.getByRole("heading", { name: "Usage now" }).waitFor();
    // Usage is written to the registry in batches: refresh the chart until it counts them.
    const deadline = Date.now() + 15_000;
    let total = "";
    for (;;) {
      total = (await page.locator("#usage-total").textContent()) ?? "";
      if (/^[3-9]\d* requests/.test(total) || Date.now() > deadline) break;
      await page.getByRole("button", { name: "Refresh" }).click();
      await page.waitForTimeout(200);
    }
    assert(/^3 requests \(3 allowed/.test(total), `the chart says ${total}`);
    assert((await page.locator("svg rect.allowed").count()) > 0, "no bar on the chart");
    await axe(page, "key");
    await shot(page, "key");
  });

  await step("change the key's tier", async () => {
    await page.locator("#key-tier").fill("pro");
    await page.getByRole("button", { name: "Change tier" }).click();
    await page.getByText("Tier is now pro").waitFor();
  });

  await step("rotate the key: a new secret, and it works", async () => {
    await page.getByRole("button", { name: "Rotate" }).click();
    await page.waitForFunction((old) => {
      const t = document.querySelector("#secret-value")?.textContent;
      return t && t !== old;
    }, secret);
    const fresh = await page.locator("#secret-value").textContent();
    const d = await check(fresh);
    assert(d.allowed === true, `check with the new secret: ${JSON.stringify(d)}`);
    secret = fresh;
  });

  await step("revoke the key: it is refused", async () => {
    await page.getByRole("button", { name: "Revoke" }).click();
    await page.getByText("Revoked", { exact: true }).waitFor();
    const deadline = Date.now() + 10_000;
    let d;
    do {
      d = await check(secret);
    } while (d.allowed && Date.now() < deadline);
    assert(d.allowed === false, `check after revoke: ${JSON.stringify(d)}`);
  });

  await step("the Overview streams the decisions live", async () => {
    await page.getByRole("link", { name: "Overview" }).click();
    await page.getByRole("heading", { name: "Overview" }).waitFor();
    await page.waitForFunction(() => Number(document.querySelector("#live-total")?.textContent) >= 5, null, { timeout: 15_000 });
    const before = Number(await page.locator("#live-total").textContent());
    await check("not-a-key");
    await page.waitForFunction((b) => Number(document.querySelector("#live-total")?.textContent) > b, before, { timeout: 15_000 });
    await page.locator("svg polyline.decided").waitFor();
    await axe(page, "overview");
    await shot(page, "overview");
  });

  await step("the Policy page explains a request without consuming", async () => {
    await page.getByRole("link", { name: "Policy" }).click();
    await page.getByRole("heading", { name: "Policy" }).waitFor();
    await page.locator("#try-user").fill("alice");
    await page.getByRole("button", { name: "Explain" }).click();
    const summary = page.locator("#explain-summary");
    await summary.waitFor();
    assert(/^Allowed/.test(await summary.textContent()), await summary.textContent());
    await page.getByRole("cell", { name: "user:alice" }).waitFor();
    await page.getByRole("heading", { name: "Tiers" }).waitFor();
    await axe(page, "policy");
    await shot(page, "policy");
  });

  for (const [name, title] of [["violations", "Violations"], ["audit", "Audit log"]]) {
    await step(`the ${title} page`, async () => {
      await page.getByRole("link", { name: title }).click();
      await page.getByRole("heading", { name: title }).waitFor();
      await page.locator("table, pre").first().waitFor();
      await axe(page, name);
      await shot(page, name);
    });
  }

  await step("a viewer sees keys but is refused a change", async () => {
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.locator("#token").fill(viewer);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { name: "Overview" }).waitFor();
    await page.getByRole("link", { name: "Keys" }).click();
    await page.getByRole("heading", { name: "Keys" }).waitFor();
    await page.locator("#new-name").fill("viewer key");
    await page.locator("#new-owner").fill("acme");
    await page.getByRole("button", { name: "Create key" }).click();
    await page.locator("#status.error").filter({ hasText: "403" }).waitFor();
    await axe(page, "refused");
    await shot(page, "viewer-refused");
  });

  await step("no Content-Security-Policy violation", async () => {
    const csp = cspErrors.filter((t) => /Content Security Policy/i.test(t));
    assert(csp.length === 0, csp.join("; "));
  });
} finally {
  await browser.close();
}
console.log(failures === 0 ? "e2e: all passed" : `e2e: ${failures} failed`);
process.exit(failures === 0 ? 0 : 1);
