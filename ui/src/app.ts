// The pages, signing in, and routing by path under /ui/. Listed last in tsconfig.json so
// that every page it draws is defined when it starts.

const pages: Page[] = [
  { path: "overview", title: "Overview", render: overviewPage },
  { path: "keys", title: "Keys", render: keysPage },
  { path: "policy", title: "Policy", render: policyPage },
  { path: "violations", title: "Violations", render: violationsPage },
  { path: "alerts", title: "Alerts", render: alertsPage },
  { path: "billing", title: "Billing", render: billingPage },
  { path: "jobs", title: "Jobs", render: jobsPage },
  { path: "audit", title: "Audit log", render: auditPage },
];

function signIn(main: HTMLElement) {
  const input = el("input", { id: "token", type: "password", autocomplete: "off", required: "" });
  const status = statusRegion();
  const form = el(
    "form",
    { "aria-label": "Sign in" },
    el("h1", {}, "Sign in"),
    el("label", { for: "token" }, "Admin token ", input),
    el("button", { type: "submit" }, "Sign in"),
    status,
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    token = input.value;
    try {
      // Any viewer may list tiers: a cheap check that the token is good.
      await api("GET", "/v1/tiers");
      go(location.pathname.length > 4 ? location.pathname : "/ui/overview");
    } catch (e) {
      token = null;
      showError(main, e);
    }
  });
  main.append(form);
  input.focus();
}

function go(path: string) {
  history.pushState(null, "", path);
  void route(true);
}

/// Draws the page of the current path. After a move from one page to another the focus
/// goes to the top of the new page, so that keyboard and screen reader users start
/// there rather than on a link that is gone.
async function route(moved = false) {
  const main = document.getElementById("main")!;
  const nav = document.getElementById("nav")!;
  const who = document.getElementById("who")!;
  leaving.abort();
  leaving = new AbortController();
  main.replaceChildren();
  const parts = location.pathname.replace(/^\/ui\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  if (!token) {
    nav.replaceChildren();
    who.replaceChildren();
    return signIn(main);
  }
  const page = pages.find((p) => p.path === parts[0]) ?? pages[0];
  nav.replaceChildren(
    ...pages.map((p) =>
      el("a", p === page ? { href: `/ui/${p.path}`, "aria-current": "page" } : { href: `/ui/${p.path}` }, p.title),
    ),
  );
  who.replaceChildren(
    button("Sign out", () => {
      token = null;
      go("/ui/");
    }, "secondary"),
  );
  document.title = `${page.title} · Tollgate`;
  if (moved) main.focus({ preventScroll: false });
  await page.render(main, parts.slice(1));
}

document.addEventListener("click", (ev) => {
  const a = (ev.target as Element).closest?.("a");
  const href = a?.getAttribute("href");
  if (!a || !href || ev.metaKey || ev.ctrlKey || ev.shiftKey) return;
  if (href.startsWith("/ui/")) {
    ev.preventDefault();
    go(href);
  } else if (href.startsWith("#")) {
    // A link within the page (the skip link, an error's link to its field) moves the
    // focus there itself: a fragment navigation would redraw the page through popstate.
    const target = document.getElementById(href.slice(1));
    if (target) {
      ev.preventDefault();
      if (!target.hasAttribute("tabindex") && !/^(INPUT|SELECT|TEXTAREA|BUTTON|A)$/.test(target.tagName)) {
        target.setAttribute("tabindex", "-1");
      }
      target.focus();
    }
  }
});
window.addEventListener("popstate", () => void route(true));
void route();
