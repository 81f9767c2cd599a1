// The reverse proxy's dead letters: the requests it could not deliver, newest first, one
// route's or all, a page at a time; each with its headers and body; replaying one through
// the proxy or discarding it (the admin role's to do).

/// How a dead letter's replays have gone so far, in words.
function replayState(d: any): string {
  if (d.replaying_since) return `replay under way since ${when(d.replaying_since)}`;
  if (!d.replays) return "not replayed";
  return `${d.replays === 1 ? "1 failed replay" : `${count(d.replays)} failed replays`}, last at ${when(d.replayed_at)}`;
}

/// What a refused replay or discard means, told in words of the dashboard's own with the
/// server's account after it.
function deadLetterRefusal(e: unknown, verb: "replay" | "discard"): Error {
  if (!(e instanceof ApiError)) return e instanceof Error ? e : new Error(String(e));
  const said = e.detail ? ` (${e.detail})` : "";
  if (e.status === 403) {
    return new Error(`${verb === "replay" ? "Replaying" : "Discarding"} a dead letter needs the admin role, which this account does not have${said}.`);
  }
  switch (e.kind) {
    case "dead-letter-truncated":
      return new Error(
        "Not replayed: its body was longer than the route's dead_letter.body_limit and only a part was kept, so a replay would send a different request. Discard it instead.",
      );
    case "dead-letter-unroutable":
      return new Error(`Not replayed: no proxy route takes its URL any more${said}.`);
    case "dead-letter-replaying":
      return new Error("Not replayed: another replay of it is under way and it is never sent twice. Look again once that replay has ended.");
    case "proxy-off":
      return new Error("Not replayed: no reverse proxy is serving on this server.");
    case "dead-letter-not-found":
      return new Error("It is gone: delivered by another replay, or discarded.");
  }
  return e;
}

/// Replay and Discard for one dead letter; `after` is told whether the letter is gone.
function deadLetterActions(main: HTMLElement, d: any, after: (gone: boolean) => Promise<void>): HTMLElement {
  const told = (text: string, error = false) => {
    const region = main.querySelector<HTMLElement>("#status");
    if (error) showError(main, new Error(text));
    else showStatus(main, text);
    // The row with the button pressed may be redrawn or gone: the outcome takes the focus,
    // so that keyboard and screen reader users land on it.
    if (region) {
      region.setAttribute("tabindex", "-1");
      region.focus();
    }
  };
  const replay = async () => {
    try {
      const o = await api("POST", `/v1/dead-letters/${encodeURIComponent(d.id)}/replay`);
      if (o.delivered) {
        await after(true);
        told(`Dead letter ${d.id} delivered: the upstream ${o.upstream} answered ${o.status}, and it is removed.`);
      } else {
        await after(false);
        const now = o.dead_letter;
        told(
          `Dead letter ${d.id} failed again (${o.status}): ${o.failure ?? "the upstream did not take it"}. It stays` +
            (now ? `, after ${count(now.tries)} tries in all.` : "."),
          true,
        );
      }
    } catch (e) {
      told(describe(deadLetterRefusal(e, "replay")), true);
      if (e instanceof ApiError && e.status === 404) await after(true).catch(() => undefined);
    }
  };
  const discard = async () => {
    try {
      await api("DELETE", `/v1/dead-letters/${encodeURIComponent(d.id)}`);
      await after(true);
      told(`Dead letter ${d.id} discarded.`);
    } catch (e) {
      told(describe(deadLetterRefusal(e, "discard")), true);
    }
  };
  return el(
    "span",
    { class: "actions" },
    button("Replay", () => void replay(), "", `Replay dead letter ${d.id}`),
    " ",
    button("Discard", () => void discard(), "secondary", `Discard dead letter ${d.id}`),
  );
}

async function deadLettersPage(main: HTMLElement, rest: string[]) {
  const here = leaving.signal;
  if (rest[0]) return deadLetterPage(main, rest[0]);
  const status = statusRegion();
  const route = el("input", { id: "dl-route", type: "text", list: "dl-routes", placeholder: "/v1 or api.example.com/v1", autocomplete: "off" });
  const routes = el("datalist", { id: "dl-routes" });
  const perPage = select("dl-limit", [["10", "10"], ["25", "25"], ["100", "100"]], "25");
  const filter = el(
    "form",
    { class: "inline", "aria-label": "Filter the dead letters" },
    el("label", { for: "dl-route" }, "Route ", route),
    routes,
    el("label", { for: "dl-limit" }, "Per page ", perPage),
    el("button", { type: "submit", class: "secondary" }, "Show"),
  );
  const where = el("p", { id: "dl-page", "aria-live": "polite" });
  const list = el("div", { id: "dl-list" });
  const newer = button("Newer", () => void pager.move(-1), "secondary", "Newer dead letters");
  const older = button("Older", () => void pager.move(1), "secondary", "Older dead letters");
  main.append(
    el("h1", {}, "Dead letters"),
    el(
      "p",
      { class: "hint" },
      "Requests the reverse proxy could not deliver on routes that keep them. A replay sends one again through the proxy now; delivered, it is removed.",
    ),
    status,
    filter,
    where,
    list,
    el("p", { class: "pager" }, newer, " ", older),
  );

  route.value = fromAddress("route");
  choose(perPage, fromAddress("limit"));
  const seen = new Set<string>();
  const load = async () => {
    const before = pager.before;
    const r = route.value.trim();
    const page = await api("GET", "/v1/dead-letters" + query({ route: r, before, limit: perPage.value }));
    toAddress(here, { route: r, limit: perPage.value === "25" ? null : perPage.value, before });
    const letters: any[] = page.dead_letters;
    for (const d of letters) {
      if (!seen.has(d.route)) {
        seen.add(d.route);
        routes.append(el("option", { value: d.route }));
      }
    }
    const first = pager.offset(Number(perPage.value));
    where.textContent = letters.length
      ? `Dead letters ${first + 1} to ${first + letters.length}, newest first` + (r ? `, of route ${r}` : "")
      : pager.past
        ? "No older dead letters."
        : r
          ? `No dead letter of route ${r}.`
          : "No dead letters: the proxy delivered everything it was given, or nothing was kept.";
    list.replaceChildren(
      ...(letters.length
        ? [
            table(
              ["When", "Route", "Method", "URL", "Upstream failure", "Tries", "Replayed", "Actions"],
              letters.map((d) => [
                when(d.at),
                d.route,
                d.method,
                el("a", { href: `/ui/dead-letters/${encodeURIComponent(d.id)}`, "aria-label": `Dead letter ${d.id}: ${d.method} ${d.url}` }, d.url),
                d.last_failure,
                count(d.tries),
                replayState(d),
                deadLetterActions(main, d, () => load()),
              ]),
              "The proxy's dead letters",
            ),
          ]
        : []),
    );
    pager.shown(page.next ?? null);
  };
  const pager = new BeforePager(main, newer, older, load);
  perPage.addEventListener("change", pager.restart);
  filter.addEventListener("submit", (ev) => {
    ev.preventDefault();
    pager.restart();
  });
  await pager.start();
}

/// How much of a body the page shows; the rest is told by its size.
const BODY_PREVIEW = 4096;

async function deadLetterPage(main: HTMLElement, id: string) {
  const status = statusRegion();
  const body = el("div", { id: "dl-detail" });
  main.append(
    el("h1", {}, `Dead letter ${id}`),
    status,
    body,
    el("p", {}, el("a", { href: "/ui/dead-letters" }, "Back to the dead letters")),
  );
  const gone = () => body.replaceChildren(el("p", {}, "This dead letter is no longer kept."));
  const load = async (isGone: boolean) => {
    if (isGone) return gone();
    const d = await api("GET", `/v1/dead-letters/${encodeURIComponent(id)}`);
    const s = d.summary ?? d;
    const text: string | null = d.body_text ?? null;
    const size = Number(s.body_size ?? 0);
    const preview =
      size === 0
        ? el("p", {}, "No body.")
        : text !== null
          ? el("pre", { id: "dl-body", tabindex: "0", "aria-label": "Body" }, text.length > BODY_PREVIEW ? text.slice(0, BODY_PREVIEW) + "…" : text)
          : el(
              "div",
              {},
              el("p", {}, `Not text: ${count(size)} bytes, shown in base64.`),
              el("pre", { id: "dl-body", tabindex: "0", "aria-label": "Body in base64" }, String(d.body_base64 ?? "").slice(0, BODY_PREVIEW)),
            );
    const headers: any[] = d.headers ?? [];
    body.replaceChildren(
      table(
        ["Field", "Value"],
        [
          ["When", when(s.at)],
          ["Route", s.route],
          ["Upstream", s.upstream],
          ["Method", s.method],
          ["URL", s.url],
          ["Upstream failure", s.last_failure],
          ["Tries", count(s.tries)],
          ["Replayed", replayState(s)],
          ["Body size", `${count(size)} bytes`],
          ["Body kept cut", s.body_truncated ? "yes: it was longer than the route's limit, so it cannot be replayed" : "no"],
        ],
        "The request",
      ),
      el("h2", {}, "Headers"),
      headers.length
        ? table(["Name", "Value"], headers.map((h) => [h.name, h.value]), "Headers as forwarded, credentials and cookies left out")
        : el("p", {}, "No headers were kept."),
      el("h2", {}, "Body"),
      preview,
      el("p", {}, deadLetterActions(main, s, (g) => load(g))),
    );
  };
  try {
    await load(false);
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) gone();
    showError(main, e);
  }
}
