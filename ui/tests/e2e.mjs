// End-to-end: drives Chromium headless through the dashboard of a running tollgate
// (TOLLGATE_URL), signing in with TOLLGATE_ADMIN_TOKEN and TOLLGATE_VIEWER_TOKEN, and
// through the OpenID provider scripts/test-ui starts ("Test IdP", whose alice is an admin). Runs axe
// on every page, saves a screenshot of each to SCREENSHOTS (a temporary folder unless
// set), and exits non-zero on a failure. The server is the one scripts/test-ui starts:
// its billing plans, alert rules and tiers are those this test counts on.
import { chromium } from "playwright-core";
import { AxeBuilder } from "@axe-core/playwright";
import { mkdtempSync, readFileSync } from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";

const base = process.env.TOLLGATE_URL;
const admin = process.env.TOLLGATE_ADMIN_TOKEN;
const viewer = process.env.TOLLGATE_VIEWER_TOKEN;
const proxy = process.env.TOLLGATE_PROXY_URL;
const upstreamPort = Number(process.env.UPSTREAM_PORT);
const shots = process.env.SCREENSHOTS ?? mkdtempSync(path.join(os.tmpdir(), "tollgate-ui-shots-"));
const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";

let failures = 0;
/// The page a failed step leaves a screenshot and the text of.
let shown = null;
async function step(name, f) {
  try {
    await f();
    console.log(`ok   ${name}`);
  } catch (e) {
    failures++;
    console.log(`FAIL ${name}: ${e?.stack ?? e}`);
    if (shown) {
      const file = path.join(shots, `failed-${name.replace(/[^a-z0-9]+/gi, "-").slice(0, 40)}.png`);
      await shown.screenshot({ path: file, fullPage: true }).catch(() => undefined);
      const text = await shown.locator("#main").innerText().catch(() => "");
      console.log(`     the page (saved as ${file}) read:\n${text.slice(0, 3000)}`);
    }
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

async function check(secret, cost) {
  const r = await fetch(`${base}/v1/check`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(cost === undefined ? { subject: { api_key: secret } } : { subject: { api_key: secret }, cost }),
  });
  return r.json();
}

/// An admin API call made by the test itself, to make the data the pages show.
async function call(method, route, body, as = admin) {
  const r = await fetch(`${base}${route}`, {
    method,
    headers: { authorization: `Bearer ${as}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  if (!r.ok) throw new Error(`${method} ${route}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/// Waits until `f` answers something truthy, and gives it.
async function until(f, what, ms = 20_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

/// Moves the focus with Tab (or Shift+Tab) alone until `target` has it, checking that
/// every element the focus passes shows it.
async function tabTo(page, target, { back = false, max = 400 } = {}) {
  await target.waitFor();
  for (let i = 0; i < max; i++) {
    await page.keyboard.press(back ? "Shift+Tab" : "Tab");
    const now = await page.evaluate(() => {
      const e = document.activeElement;
      if (!e || e === document.body) return null;
      const s = getComputedStyle(e);
      return { shown: s.outlineStyle !== "none" && parseFloat(s.outlineWidth) >= 2, what: e.outerHTML.slice(0, 100) };
    });
    if (now) assert(now.shown, `no visible focus on ${now.what}`);
    if (await target.evaluate((e) => e === document.activeElement)) return;
  }
  throw new Error(`${back ? "Shift+Tab" : "Tab"} never reached ${target}`);
}

async function focused(page) {
  return page.evaluate(() => document.activeElement?.outerHTML.slice(0, 120) ?? "");
}

/// The proxy's upstream: it answers 503 while `down`, and otherwise 200, keeping every
/// request it takes.
const upstream = { down: true, taken: [] };
const upstreamServer = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    if (upstream.down) {
      res.writeHead(503, { "content-type": "text/plain" }).end("down");
      return;
    }
    upstream.taken.push({ method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString() });
    res.writeHead(200, { "content-type": "application/json" }).end('{"ok":true}');
  });
});
await new Promise((ok, fail) => upstreamServer.once("error", fail).listen(upstreamPort, "127.0.0.1", ok));

/// A request to the proxy's route that keeps dead letters; while the upstream is down it
/// is answered 503 and kept.
async function order(body, n = 42) {
  const r = await fetch(`${proxy}/orders/${n}?via=e2e`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-trace": `e2e-${n}` },
    body,
  });
  await r.arrayBuffer();
  return r.status;
}

const browser = await chromium.launch({ executablePath, headless: true, args: ["--no-sandbox"] });
try {
  const context = await browser.newContext({
    viewport: { width: 1200, height: 800 },
    locale: "en-US",
    timezoneId: "UTC",
    acceptDownloads: true,
  });
  // Nothing leaves this machine: the provider's pages ask for web fonts.
  await context.route((url) => !["127.0.0.1", "localhost"].includes(url.hostname), (r) => r.abort());
  const page = await context.newPage();
  shown = page;
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
    await page.keyboard.type("initech");
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
    await page.getByRole("heading", { name: "Policy", exact: true }).waitFor();
    await page.locator("#try-user").fill("alice");
    await page.getByRole("button", { name: "Explain" }).click();
    const summary = page.locator("#explain-summary");
    await summary.waitFor();
    assert(/^Allowed/.test(await summary.textContent()), await summary.textContent());
    await page.getByRole("cell", { name: "user:alice" }).waitFor();
    await page.getByRole("heading", { name: "Tiers" }).waitFor();
    await page.locator("#policy-tiers").getByRole("cell", { name: "tiny-requests" }).waitFor();
    await page.locator("#policy-rules").getByRole("cell", { name: "user:{user}" }).waitFor();
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

  // The data of the pages below, made through the admin API and the decision door: two
  // owners, eleven keys on a tier of one request an hour, each denied three times (so
  // each fires the alert rule of denials per key, whose deliveries die at a closed port),
  // and keys of acme on the two billed tiers.
  const tinyKeys = [];
  let proSecret = "";
  await step("data: owners, keys, denials, alerts and their dead deliveries", async () => {
    await call("PUT", "/v1/owners/acme", { name: "Acme Corp", email: "billing@acme.test" });
    await call("PUT", "/v1/owners/globex", { name: "Globex" });
    for (let i = 1; i <= 11; i++) {
      const made = await call("POST", "/v1/keys", { name: `tiny ${i}`, owner: "globex", tier: "tiny" });
      tinyKeys.push(made);
      const answers = [];
      for (let n = 0; n < 4; n++) answers.push((await check(made.secret)).allowed);
      assert(answers.join() === "true,false,false,false", `tiny ${i}: ${answers}`);
    }
    const pro = await call("POST", "/v1/keys", { name: "acme pro", owner: "acme", tier: "pro" });
    proSecret = pro.secret;
    assert((await check(proSecret, 1200)).allowed, "the pro key's check");
    const biz = await call("POST", "/v1/keys", { name: "acme biz", owner: "acme", tier: "biz" });
    assert((await check(biz.secret, 120)).allowed, "the biz key's check");
    await until(async () => (await call("GET", "/v1/alerts?rule=key-denials&limit=100")).events.length >= 11, "11 alerts fired");
    await until(async () => {
      const j = await call("GET", "/v1/jobs?state=dead");
      return (j.counts.find((c) => c.state === "dead")?.count ?? 0) >= 11;
    }, "11 dead deliveries");
  });

  await step("keys: filtered by status, tier, owner and text", async () => {
    await page.getByRole("link", { name: "Keys" }).click();
    await page.getByRole("heading", { name: "Keys" }).waitFor();
    await page.locator("#filter-tier").selectOption("tiny");
    await page.locator("#key-count").filter({ hasText: /^11 keys/ }).waitFor();
    await page.locator("#search").fill("tiny 1");
    // "tiny 1", "tiny 10" and "tiny 11".
    await page.locator("#key-count").filter({ hasText: /^3 keys matching/ }).waitFor();
    await page.locator("#search").fill("");
    await page.locator("#filter-tier").selectOption("");
    await page.locator("#filter-status").selectOption("revoked");
    await page.locator("#key-count").filter({ hasText: /^1 key$/ }).waitFor();
    await page.getByRole("link", { name: "e2e key" }).waitFor();
    await page.locator("#filter-status").selectOption("");
    await page.locator("#filter-owner").fill("acme");
    await page.getByRole("button", { name: "Filter" }).click();
    await page.locator("#key-count").filter({ hasText: /^2 keys$/ }).waitFor();
    await page.getByRole("link", { name: "acme pro" }).waitFor();
    await page.getByRole("link", { name: "acme biz" }).waitFor();
    assert((await page.getByRole("link", { name: /^tiny/ }).count()) === 0, "globex's keys shown for acme");
    await axe(page, "keys-filtered");
    await shot(page, "keys-filtered");
    await page.locator("#filter-owner").fill("");
    await page.getByRole("button", { name: "Filter" }).click();
  });

  await step("keys: the filters live in the address, restored from it on load and on Back", async () => {
    await page.locator("#filter-tier").selectOption("tiny");
    await page.locator("#key-count").filter({ hasText: /^11 keys/ }).waitFor();
    await page.locator("#search").fill("tiny 1");
    await page.locator("#key-count").filter({ hasText: /^3 keys matching/ }).waitFor();
    const written = new URL(page.url()).searchParams;
    assert(written.get("tier") === "tiny" && written.get("q") === "tiny 1", page.url());
    // Away and Back: the page is drawn again from its address.
    await page.getByRole("link", { name: "Alerts" }).click();
    await page.getByRole("heading", { name: "Alerts" }).waitFor();
    await page.goBack();
    await page.getByRole("heading", { name: "Keys" }).waitFor();
    await page.locator("#key-count").filter({ hasText: /^3 keys matching/ }).waitFor();
    assert((await page.locator("#filter-tier").inputValue()) === "tiny", "the tier filter after Back");
    assert((await page.locator("#search").inputValue()) === "tiny 1", "the search after Back");
    // The address opened afresh, as a bookmark or a link someone sent: once signed in (the
    // token is in memory only, so a load asks for it again) the list is filtered and the
    // inputs say so.
    await page.goto(`${base}/ui/keys?status=revoked&owner=initech`);
    await page.locator("#token").fill(admin);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { name: "Keys" }).waitFor();
    await page.locator("#key-count").filter({ hasText: /^1 key$/ }).waitFor();
    await page.getByRole("link", { name: "e2e key" }).waitFor();
    assert((await page.locator("#filter-status").inputValue()) === "revoked", "the status filter from the address");
    assert((await page.locator("#filter-owner").inputValue()) === "initech", "the owner filter from the address");
    await page.locator("#filter-status").selectOption("");
    await page.locator("#filter-owner").fill("");
    await page.getByRole("button", { name: "Filter" }).click();
    await until(async () => new URL(page.url()).search === "", "the address without filters");
  });

  await step("a key's page: its violations, and its overrides changed with errors inline", async () => {
    const key = tinyKeys[0].key;
    await page.getByRole("link", { name: "tiny 1", exact: true }).click();
    await page.getByRole("heading", { name: `Key ${key.id}` }).waitFor();
    const violations = page.locator("#key-violations tbody tr");
    await until(async () => (await violations.count()) === 3, "the key's three violations");
    assert((await page.locator("#key-violations").textContent()).includes("tiny-requests"), "the denying limit");
    await page.locator("#key-limits").getByRole("cell", { name: "tier", exact: true }).waitFor();
    const area = page.locator("#key-overrides");
    await area.fill('{"tiny-requests": {"limit": "lots"}}');
    await page.getByRole("button", { name: "Save overrides" }).click();
    const errors = page.locator("#overrides-errors li");
    await errors.first().waitFor();
    assert(/^overrides\.tiny-requests/.test(await errors.first().textContent()), await errors.first().textContent());
    assert((await area.getAttribute("aria-invalid")) === "true", "the field is not marked invalid");
    await area.fill("not json");
    await page.getByRole("button", { name: "Save overrides" }).click();
    await errors.filter({ hasText: "Not JSON" }).waitFor();
    await area.fill('{"tiny-requests": {"limit": 10}}');
    await page.getByRole("button", { name: "Save overrides" }).click();
    await page.getByText("Overrides saved").waitFor();
    await page.locator("#key-limits").getByRole("cell", { name: "override", exact: true }).waitFor();
    await page.locator("#key-limits").getByRole("cell", { name: "10", exact: true }).waitFor();
    assert((await area.getAttribute("aria-invalid")) === null, "still marked invalid");
    const d = await check(tinyKeys[0].secret);
    assert(d.allowed === true, `the raised limit admits: ${JSON.stringify(d)}`);
    await axe(page, "key-overrides");
    await shot(page, "key-overrides");
  });

  await step("alerts: rules, firing now, and the history paged and filtered", async () => {
    await page.getByRole("link", { name: "Alerts" }).click();
    await page.getByRole("heading", { name: "Alerts" }).waitFor();
    await page.locator("#alert-rules").getByRole("cell", { name: "key-denials" }).waitFor();
    assert(
      (await page.locator("#alert-rules").textContent()).includes("3 or more denials per key within 1m"),
      await page.locator("#alert-rules").textContent(),
    );
    assert((await page.locator("#alert-firing tbody tr").count()) >= 11, "fewer than 11 firing");
    await page.locator("#alert-limit").selectOption("10");
    await page.locator("#alert-page").filter({ hasText: /^Events 1 to 10, newest first/ }).waitFor();
    assert((await page.locator("#alert-history tbody tr").count()) === 10, "a page of 10");
    await page.getByRole("button", { name: "Older events" }).click();
    await page.locator("#alert-page").filter({ hasText: /^Events 11 to / }).waitFor();
    await page.getByRole("button", { name: "Newer events" }).click();
    await page.locator("#alert-page").filter({ hasText: /^Events 1 to 10/ }).waitFor();
    assert(await page.getByRole("button", { name: "Newer events" }).isDisabled(), "Newer on the first page");
    await page.locator("#alert-rule").selectOption("rule-denials");
    await page.locator("#alert-page").filter({ hasText: /of rule-denials$/ }).waitFor();
    const rules = await page.locator("#alert-history tbody tr td:nth-child(2)").allTextContents();
    assert(rules.length > 0 && rules.every((r) => r === "rule-denials"), `filtered: ${rules}`);
    assert(new URL(page.url()).searchParams.get("rule") === "rule-denials", `the address: ${page.url()}`);
    await page.locator("#alert-rule").selectOption("");
    await page.locator("#alert-limit").selectOption("25");
    await page.locator("#alert-page").filter({ hasText: /^Events 1 to \d+, newest first$/ }).waitFor();
    await axe(page, "alerts");
    await shot(page, "alerts");
  });

  await step("the job queue: counts per state, dead letters retried and discarded", async () => {
    await page.getByRole("link", { name: "Jobs" }).click();
    await page.getByRole("heading", { name: "Dead letters" }).waitFor();
    const dead = Number(await page.locator("#count-dead").textContent());
    assert(dead >= 11, `dead: ${dead}`);
    const rows = page.locator("#job-list tbody tr");
    assert((await rows.count()) === dead, `${await rows.count()} rows for ${dead} dead`);
    // A webhook to a port nothing listens on fails to connect.
    assert((await rows.first().locator("td:nth-child(4)").textContent()).length > 3, "no last error shown");
    const [first, second] = await rows.locator("td:first-child a").allTextContents();
    await page.getByRole("button", { name: `Retry ${first}` }).click();
    await page.getByText(`${first} is queued again, with fresh tries.`).waitFor();
    await page.getByRole("button", { name: `Discard ${second}` }).click();
    await page.getByText(`${second} is discarded.`).waitFor();
    assert((await call("GET", `/v1/jobs/${second}`)).state === "discarded", "not discarded");
    await until(async () => Number(await page.locator("#count-discarded").textContent()) >= 1, "the discarded count");
    await page.locator("#job-state").selectOption("discarded");
    await page.getByRole("heading", { name: "Jobs discarded" }).waitFor();
    await page.getByRole("link", { name: second }).waitFor();
    await page.locator("#job-state").selectOption("dead");
    await page.getByRole("heading", { name: "Dead letters" }).waitFor();
    await axe(page, "jobs");
    await shot(page, "jobs");
    await page.getByRole("link", { name: second }).waitFor({ state: "detached" });
    await page.locator("#job-list tbody tr td:first-child a").first().click();
    await page.getByRole("heading", { name: /^Job job_/ }).waitFor();
    await page.getByRole("heading", { name: "Payload" }).waitFor();
    await axe(page, "job");
  });

  await step("dead letters: kept when the upstream fails, shown, replayed once it heals, discarded", async () => {
    upstream.down = true;
    assert((await order('{"item":"tea","n":1}')) === 503, "the failing upstream's answer");
    const long = JSON.stringify({ item: "a very long order", note: "x".repeat(100) });
    assert((await order(long, 43)) === 503, "the failing upstream's answer");
    await until(async () => (await call("GET", "/v1/dead-letters?route=/orders")).dead_letters.length === 2, "two dead letters");
    await page.getByRole("link", { name: "Dead letters", exact: true }).click();
    await page.getByRole("heading", { name: "Dead letters", exact: true }).waitFor();
    const rows = page.locator("#dl-list tbody tr");
    await until(async () => (await rows.count()) === 2, "two rows");
    // Newest first: the long one, kept cut.
    const firstRow = await rows.first().textContent();
    assert(firstRow.includes("/orders/43?via=e2e") && firstRow.includes("POST"), firstRow);
    assert(/503/.test(await rows.first().locator("td:nth-child(5)").textContent()), "no upstream failure shown");
    assert((await rows.first().locator("td:nth-child(7)").textContent()) === "not replayed", "replayed?");
    // The route filter, kept in the address.
    await page.locator("#dl-route").fill("/nope");
    await page.getByRole("button", { name: "Show" }).click();
    await page.getByText("No dead letter of route /nope.").waitFor();
    assert(new URL(page.url()).searchParams.get("route") === "/nope", page.url());
    await page.locator("#dl-route").fill("/orders");
    await page.getByRole("button", { name: "Show" }).click();
    await page.locator("#dl-page").filter({ hasText: /^Dead letters 1 to 2, newest first, of route \/orders$/ }).waitFor();
    assert(await page.getByRole("button", { name: "Older dead letters" }).isDisabled(), "an older page of two");
    await axe(page, "dead-letters");
    await shot(page, "dead-letters");

    // The short one's page: its request whole.
    const [, shortOne] = (await call("GET", "/v1/dead-letters?route=/orders")).dead_letters;
    await page.getByRole("link", { name: `Dead letter ${shortOne.id}: POST` }).click();
    await page.getByRole("heading", { name: `Dead letter ${shortOne.id}` }).waitFor();
    await page.getByRole("cell", { name: "x-trace" }).waitFor();
    await page.getByRole("cell", { name: "e2e-42" }).waitFor();
    assert((await page.locator("#dl-body").textContent()) === '{"item":"tea","n":1}', "the body shown");
    const detail = await page.locator("#dl-detail").textContent();
    assert(detail.includes("Body kept cut") && !/Body kept cutyes/.test(detail), detail.slice(0, 400));
    await axe(page, "dead-letter");
    await shot(page, "dead-letter");

    // Replayed from the keyboard while the upstream still fails: it stays, its tries grow.
    const replay = page.getByRole("button", { name: `Replay dead letter ${shortOne.id}`, exact: true });
    await tabTo(page, replay);
    await page.keyboard.press("Enter");
    await page.locator("#status.error").filter({ hasText: `Dead letter ${shortOne.id} failed again (503)` }).waitFor();
    assert(await page.locator("#status").evaluate((e) => e === document.activeElement), `the focus is on ${await focused(page)}`);
    await page.getByRole("cell", { name: /^1 failed replay, last at / }).waitFor();
    assert(upstream.taken.length === 0, "the failing upstream took it");

    // Healed: replayed, the upstream takes it once and the dead letter is gone.
    upstream.down = false;
    await tabTo(page, replay);
    await page.keyboard.press("Space");
    await page.getByText(`Dead letter ${shortOne.id} delivered: the upstream shop answered 200, and it is removed.`).waitFor();
    await page.getByText("This dead letter is no longer kept.").waitFor();
    assert(upstream.taken.length === 1, `the upstream took ${upstream.taken.length}`);
    const [taken] = upstream.taken;
    assert(taken.url === "/orders/42?via=e2e" && taken.body === '{"item":"tea","n":1}', JSON.stringify(taken));
    assert(taken.headers["x-trace"] === "e2e-42", JSON.stringify(taken.headers));

    // The long one: its replay is refused in words, and it is discarded.
    await page.getByRole("link", { name: "Back to the dead letters" }).click();
    await page.getByRole("heading", { name: "Dead letters", exact: true }).waitFor();
    await until(async () => (await rows.count()) === 1, "one row left");
    const cutId = (await call("GET", "/v1/dead-letters?route=/orders")).dead_letters[0].id;
    await page.getByRole("button", { name: `Replay dead letter ${cutId}`, exact: true }).click();
    await page.locator("#status.error").filter({ hasText: "only a part was kept" }).waitFor();
    assert(upstream.taken.length === 1, "a cut body was sent");
    await page.getByRole("button", { name: `Discard dead letter ${cutId}`, exact: true }).click();
    await page.getByText(`Dead letter ${cutId} discarded.`).waitFor();
    await page.getByText(/^No dead letter/).waitFor();
    assert((await call("GET", "/v1/dead-letters")).dead_letters.length === 0, "not discarded");
    await axe(page, "dead-letters-empty");
  });

  await step("billing: the owner's current period and closed periods, in their currencies, with the CSV", async () => {
    await page.getByRole("link", { name: "Billing" }).click();
    await page.getByRole("heading", { name: "Billing" }).waitFor();
    await page.locator("#billing-owner").selectOption("acme");
    const current = page.locator("#billing-current");
    // Usage reaches the records in batches: show again until the checks are counted.
    await until(async () => {
      const text = (await current.textContent()) ?? "";
      if (text.includes("€49.50") && text.includes("¥5,060")) return true;
      await page.getByRole("button", { name: "Show" }).click();
      await page.waitForTimeout(300);
      return false;
    }, "the current period's usage", 15_000);
    // pro: 1,200 units, 200 beyond the 1,000 included, at 2.50 per 1,000: 0.50; biz: 20
    // beyond, at 3 yen each.
    const pro = current.locator("tbody tr", { hasText: /^pro/ });
    assert(/1,200.*1,000.*200.*€49\.00.*€0\.50.*€49\.50/.test(await pro.textContent()), await pro.textContent());
    const biz = current.locator("tbody tr", { hasText: /^biz/ });
    assert(/120.*100.*20.*¥5,000.*¥60.*¥5,060/.test(await biz.textContent()), await biz.textContent());
    await page.getByText("more than one currency, so they have no single total").waitFor();
    const closed = page.locator("#billing-records");
    // Seeded two days back: 2,600 pro units (1,600 beyond: 4.00, so 53.00) and 150 biz
    // (50 beyond: 150 yen, so 5,150).
    await closed.getByRole("cell", { name: "€53.00" }).waitFor();
    await closed.getByRole("cell", { name: "¥5,150" }).waitFor();
    const [download] = await Promise.all([
      page.waitForEvent("download"),
      page.getByRole("button", { name: /^Download CSV/ }).click(),
    ]);
    assert(download.suggestedFilename() === "billing-acme.csv", download.suggestedFilename());
    const csv = readFileSync(await download.path(), "utf8");
    assert(csv.startsWith("scope,account,owner,tier,"), csv);
    assert(/\nowner,acme,acme,pro,\d+,\d+,EUR,2600,1000,1600,4900,400,5300,/.test(csv), csv);
    await page.locator("#billing-owner").selectOption("globex");
    await page.getByText("No period of globex has been closed yet.").waitFor();
    await page.locator("#billing-owner").selectOption("acme");
    await closed.getByRole("cell", { name: "€53.00" }).waitFor();
    await axe(page, "billing");
    await shot(page, "billing");
  });

  await step("policy: an edit refused with its errors at their paths, then saved", async () => {
    await page.getByRole("link", { name: "Policy" }).click();
    await page.getByRole("heading", { name: "Edit the policy" }).waitFor();
    const period = page.locator('input[data-path="rules[0].period"]');
    await period.fill("1 mintue");
    await page.getByRole("button", { name: "Save policy" }).click();
    const summary = page.locator("#policy-errors");
    await summary.getByRole("heading", { name: /^The policy was not saved: 1 error$/ }).waitFor();
    assert(await summary.evaluate((e) => e === document.activeElement), "the summary has not the focus");
    const beside = page.locator('.field:has(input[data-path="rules[0].period"]) .field-error');
    assert(/is not a duration/.test(await beside.textContent()), await beside.textContent());
    assert((await period.getAttribute("aria-invalid")) === "true", "not marked invalid");
    await summary.getByRole("link", { name: /^rules\[0\]\.period: / }).click();
    assert(await period.evaluate((e) => e === document.activeElement), "the error's link did not focus its field");
    await axe(page, "policy-errors");
    await shot(page, "policy-errors");
    // A second rule copied from the first has its name twice: refused at rules[1].name.
    await period.fill("2m");
    await page.getByRole("button", { name: "Add an item to rules" }).click();
    await page.getByRole("button", { name: "Save policy" }).click();
    await page.locator('.field:has(input[data-path="rules[1].name"]) .field-error').waitFor();
    await page.getByRole("button", { name: "Remove rules[1]", exact: true }).click();
    await page.getByRole("button", { name: "Save policy" }).click();
    await page.getByText("Saved: the policy is in force.").waitFor();
    const now = await call("GET", "/v1/config");
    assert(now.rules.length === 1 && now.rules[0].period === "2m", JSON.stringify(now.rules));
    assert((await page.locator("#policy-json").textContent()).includes('"2m"'), "the policy shown is stale");
    await page.locator("#policy-rules").getByRole("cell", { name: "2m", exact: true }).waitFor();
    // A tier that keys are on cannot go (409, with no path): told for the whole policy.
    await page.getByRole("button", { name: "Remove tiers.tiny", exact: true }).click();
    await page.getByRole("button", { name: "Save policy" }).click();
    await page.locator("#policy-errors").getByRole("link", { name: /^the policy: move the keys of tier "tiny" first/ }).waitFor();
    await page.getByRole("button", { name: "Discard changes" }).click();
    await page.locator('input[data-path="tiers.tiny.limits[0].name"]').waitFor();
    assert((await call("GET", "/v1/config")).tiers.tiny, "the tier in use went");
  });

  await step("keyboard only: the new pages and their controls", async () => {
    const main = page.locator("#main");
    // Alerts: from the page's top, back to the navigation.
    await tabTo(page, page.getByRole("link", { name: "Alerts" }), { back: true });
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { name: "Alerts" }).waitFor();
    assert(await main.evaluate((e) => e === document.activeElement), `after a move the focus is on ${await focused(page)}`);
    await tabTo(page, page.locator("#alert-rule"));
    await page.keyboard.type("key-");
    await page.locator("#alert-page").filter({ hasText: /of key-denials$/ }).waitFor();
    await tabTo(page, page.locator("#alert-limit"));
    // From 25, the option above; typing "10" would go on to 100.
    await page.keyboard.press("ArrowUp");
    assert((await page.locator("#alert-limit").inputValue()) === "10", "ArrowUp did not choose 10");
    await tabTo(page, page.getByRole("button", { name: "Show" }));
    await page.keyboard.press("Enter");
    await page.locator("#alert-page").filter({ hasText: /^Events 1 to 10, newest first, of key-denials$/ }).waitFor();
    await tabTo(page, page.getByRole("button", { name: "Older events" }));
    await page.keyboard.press("Space");
    await page.locator("#alert-page").filter({ hasText: /^Events 11 to / }).waitFor();

    // The job queue: retry the first dead letter with Space.
    await tabTo(page, page.getByRole("link", { name: "Jobs" }), { back: true });
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { name: "Dead letters" }).waitFor();
    const retry = page.getByRole("button", { name: /^Retry job_/ }).first();
    const job = (await retry.getAttribute("aria-label")).replace(/^Retry /, "");
    await tabTo(page, retry);
    await page.keyboard.press("Space");
    await page.getByText(`${job} is queued again, with fresh tries.`).waitFor();

    // Billing: choose the owner by typing, show, and download the CSV with Enter.
    await tabTo(page, page.getByRole("link", { name: "Billing" }), { back: true });
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { name: "Billing" }).waitFor();
    // The owners arrive after the heading: keys pressed on an empty list would do nothing.
    await page.getByText("acme: the current period, projected from the usage so far").waitFor();
    await tabTo(page, page.locator("#billing-owner"));
    // The owners in order: acme, globex, initech.
    await page.keyboard.press("ArrowDown");
    await page.getByText("No period of globex has been closed yet.").waitFor();
    await page.keyboard.press("ArrowUp");
    await tabTo(page, page.getByRole("button", { name: "Show" }));
    await page.keyboard.press("Enter");
    await page.locator("#billing-records").getByRole("cell", { name: "€53.00" }).waitFor();
    await tabTo(page, page.getByRole("button", { name: /^Download CSV/ }));
    const [download] = await Promise.all([page.waitForEvent("download"), page.keyboard.press("Enter")]);
    assert(readFileSync(await download.path(), "utf8").includes(",acme,acme,biz,"), "the CSV by keyboard");

    // Keys: filter by tier, open a key, save its overrides.
    await tabTo(page, page.getByRole("link", { name: "Keys" }), { back: true });
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { name: "Keys" }).waitFor();
    await tabTo(page, page.locator("#filter-tier"));
    await page.keyboard.type("tiny");
    await page.locator("#key-count").filter({ hasText: /^11 keys/ }).waitFor();
    await tabTo(page, page.getByRole("link", { name: "tiny 2", exact: true }));
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { name: `Key ${tinyKeys[1].key.id}` }).waitFor();
    await tabTo(page, page.locator("#key-overrides"));
    await page.keyboard.press("ControlOrMeta+A");
    await page.keyboard.type('{"tiny-requests": {"limit": 5}}');
    await tabTo(page, page.getByRole("button", { name: "Save overrides" }));
    await page.keyboard.press("Enter");
    await page.getByText("Overrides saved").waitFor();

    // Policy: a bad value, its error's link back to the field, and the fix saved.
    await tabTo(page, page.getByRole("link", { name: "Policy" }), { back: true });
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { name: "Edit the policy" }).waitFor();
    const limit = page.locator('input[data-path="rules[0].limit"]');
    await tabTo(page, limit);
    await page.keyboard.press("ControlOrMeta+A");
    await page.keyboard.type("0");
    await tabTo(page, page.getByRole("button", { name: "Save policy" }));
    await page.keyboard.press("Enter");
    await page.locator("#policy-errors").getByRole("heading", { name: /not saved/ }).waitFor();
    await tabTo(page, page.locator("#policy-errors").getByRole("link", { name: /^rules\[0\]\.limit: / }));
    await page.keyboard.press("Enter");
    assert(await limit.evaluate((e) => e === document.activeElement), `the focus is on ${await focused(page)}`);
    await page.keyboard.press("ControlOrMeta+A");
    await page.keyboard.type("150");
    await tabTo(page, page.getByRole("button", { name: "Save policy" }));
    await page.keyboard.press("Space");
    await page.getByText("Saved: the policy is in force.").waitFor();
    assert((await call("GET", "/v1/config")).rules[0].limit === 150, "the limit typed was not saved");

    // The skip link, first of every page, moves the focus to the content and keeps it.
    await tabTo(page, page.getByRole("link", { name: "Skip to content" }), { back: true });
    await page.keyboard.press("Enter");
    assert(await main.evaluate((e) => e === document.activeElement), `the skip link left the focus on ${await focused(page)}`);
    await page.getByRole("heading", { name: "Edit the policy" }).waitFor();
  });

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

  await step("a viewer is refused a retry politely, and is offered no policy editor", async () => {
    await page.getByRole("link", { name: "Jobs" }).click();
    await page.getByRole("heading", { name: "Dead letters" }).waitFor();
    await page.getByRole("button", { name: /^Retry job_/ }).first().click();
    const refusal = page.locator("#status.error");
    await refusal.filter({ hasText: "needs the operator role" }).waitFor();
    assert(/viewer role/.test(await refusal.textContent()), await refusal.textContent());
    await page.getByRole("link", { name: "Policy" }).click();
    await page.locator("#edit-refused").waitFor();
    assert((await page.getByRole("button", { name: "Save policy" }).count()) === 0, "a viewer is offered the editor");
    await axe(page, "viewer-policy");
  });

  await step("a viewer sees the dead letters but is refused a replay and a discard", async () => {
    upstream.down = true;
    assert((await order('{"item":"coffee"}', 44)) === 503, "the failing upstream's answer");
    const d = await until(async () => (await call("GET", "/v1/dead-letters")).dead_letters[0], "a dead letter");
    upstream.down = false;
    const taken = upstream.taken.length;
    await page.getByRole("link", { name: "Dead letters", exact: true }).click();
    await page.getByRole("heading", { name: "Dead letters", exact: true }).waitFor();
    await page.getByRole("button", { name: `Replay dead letter ${d.id}`, exact: true }).click();
    const refusal = page.locator("#status.error");
    await refusal.filter({ hasText: "Replaying a dead letter needs the admin role" }).waitFor();
    await page.getByRole("button", { name: `Discard dead letter ${d.id}`, exact: true }).click();
    await refusal.filter({ hasText: "Discarding a dead letter needs the admin role" }).waitFor();
    assert(upstream.taken.length === taken, "a viewer's replay reached the upstream");
    assert((await call("GET", `/v1/dead-letters/${d.id}`)).id === d.id, "a viewer's discard removed it");
    await page.getByRole("link", { name: `Dead letter ${d.id}: POST` }).click();
    await page.getByRole("heading", { name: `Dead letter ${d.id}` }).waitFor();
    await page.getByRole("cell", { name: "e2e-44" }).waitFor();
    await axe(page, "viewer-dead-letter");
    await call("DELETE", `/v1/dead-letters/${d.id}`);
  });

  await step("sign in through the OpenID provider, and come back to the page asked for", async () => {
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.locator("#token").waitFor();
    // A shared link to a filtered page, opened signed out.
    await page.goto(`${base}/ui/keys?status=revoked`);
    const idp = page.getByRole("link", { name: "Sign in with Test IdP" });
    await idp.waitFor();
    await axe(page, "sign-in-oidc");
    await shot(page, "sign-in-oidc");
    await idp.click();
    await page.locator('input[name="login"]').fill("alice");
    await page.locator('input[name="password"]').fill("any password");
    await page.getByRole("button", { name: "Sign-in" }).click();
    await page.getByRole("button", { name: "Continue" }).click();
    await page.getByRole("heading", { name: "Keys" }).waitFor();
    assert(new URL(page.url()).search === "?status=revoked", page.url());
    await page.locator("#key-count").filter({ hasText: /^1 key$/ }).waitFor();
    assert((await page.locator("#filter-status").inputValue()) === "revoked", "the filter after signing in");
    const actor = await page.locator("#actor").textContent();
    assert(actor === "oidc:alice@example.test (admin)", `signed in as ${actor}`);
    // The session is an HttpOnly, SameSite=Strict cookie: nothing the page's script can
    // read, nothing in storage.
    const visible = await page.evaluate(() => document.cookie + JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }));
    assert(!visible.includes("tollgate_session"), `visible to the script: ${visible}`);
    const session = (await context.cookies(base)).find((c) => c.name === "tollgate_session");
    assert(session && session.httpOnly && session.sameSite === "Strict", JSON.stringify(session));
    // A reload keeps the session, and the admin API works with it: a change, audited under
    // the name the provider vouched for.
    await page.reload();
    await page.getByRole("heading", { name: "Keys" }).waitFor();
    await page.locator("#new-name").fill("signed in key");
    await page.locator("#new-owner").fill("acme");
    await page.getByRole("button", { name: "Create key" }).click();
    await page.locator("#secret-value").waitFor();
    const audit = await call("GET", "/v1/audit?limit=50");
    assert(
      audit.entries.some((e) => e.actor === "oidc:alice@example.test" && e.action === "POST /v1/keys"),
      `audit: ${JSON.stringify(audit.entries.slice(0, 5))}`,
    );
    // Signing out ends the session: a reload shows the sign-in page.
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.locator("#token").waitFor();
    await page.reload();
    await page.locator("#token").waitFor();
    assert(!(await context.cookies(base)).some((c) => c.name === "tollgate_session"), "the session cookie stayed");
  });

  await step("a failed sign-in through the provider says why on the sign-in page", async () => {
    await page.goto(`${base}/ui/?signin_error=no-role`);
    await page.locator("#status.error").filter({ hasText: "no Tollgate role" }).waitFor();
    assert(new URL(page.url()).search === "", `the address kept the error: ${page.url()}`);
    await axe(page, "sign-in-failed");
  });

  await step("no Content-Security-Policy violation", async () => {
    const csp = cspErrors.filter((t) => /Content Security Policy/i.test(t));
    assert(csp.length === 0, csp.join("; "));
  });
} finally {
  await browser.close();
  upstreamServer.close();
}
console.log(failures === 0 ? "e2e: all passed" : `e2e: ${failures} failed`);
process.exit(failures === 0 ? 0 : 1);
