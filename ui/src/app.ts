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
  { path: "dead-letters", title: "Dead letters", render: deadLettersPage },
  { path: "audit", title: "Audit log", render: auditPage },
];

/// The OpenID provider the server offers sign-in with, if any.
let provider: { name: string; login: string } | null = null;

/// What a failed sign-in through the provider comes back with (`?signin_error=`), in
/// words of the dashboard's own: nothing in the address is shown as it came.
const SIGN_IN_ERRORS: Record<string, string> = {
  denied: "The sign-in was refused at the identity provider.",
  expired: "The sign-in took too long or was not started in this browser. Try again.",
  state: "The identity provider's answer did not belong to this sign-in. Try again.",
  unavailable: "The identity provider could not be reached. Try again later, or sign in with a token.",
  token: "The identity provider's token was refused; the server's log says why.",
  "no-role": "You signed in, but your account has no Tollgate role. Ask an administrator for one.",
  provider: "The identity provider reported an error.",
  off: "Sign-in with an identity provider is not configured.",
};

/// Asks the server whether this browser holds a dashboard session, and what sign-in it
/// offers.
async function loadSession() {
  try {
    const res = await fetch("/ui/auth/session", { credentials: "same-origin" });
    const s = res.ok ? await res.json() : null;
    provider = s?.oidc ?? null;
    session = s?.signed_in ? { actor: s.actor, role: s.role, csrf: s.csrf } : null;
  } catch {
    session = null;
  }
}

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
      go(location.pathname.length > 4 ? location.pathname + location.search : "/ui/overview");
    } catch (e) {
      token = null;
      showError(main, e);
    }
  });
  main.append(form);
  if (provider) {
    // Back to the page asked for (a shared link with its filters) once signed in.
    const here = location.pathname + location.search;
    const back = /^\/ui\/[^?]/.test(here) ? `?return_to=${encodeURIComponent(here)}` : "";
    // A link, not a form: the server sends the browser on to the provider.
    main.append(
      el("p", { class: "or" }, "or"),
      el("a", { class: "button", id: "oidc-sign-in", href: provider.login + back }, `Sign in with ${provider.name}`),
    );
  }
  const failed = new URLSearchParams(location.search).get("signin_error");
  if (failed) {
    status.textContent = SIGN_IN_ERRORS[failed] ?? "The sign-in failed.";
    status.className = "error";
    history.replaceState(null, "", location.pathname);
  }
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
  if (!token && !session) {
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
    ...(session && !token ? [el("span", { id: "actor" }, `${session.actor} (${session.role})`), " "] : []),
    button("Sign out", () => void signOut(), "secondary"),
  );
  document.title = `${page.title} · Tollgate`;
  if (moved) main.focus({ preventScroll: false });
  await page.render(main, parts.slice(1));
}

/// Forgets the token, or ends the session at the server (which clears its cookie).
async function signOut() {
  if (!token && session) {
    await fetch("/ui/auth/logout", {
      method: "POST",
      headers: { "x-tollgate-csrf": session.csrf },
      credentials: "same-origin",
    }).catch(() => undefined);
  }
  token = null;
  session = null;
  go("/ui/");
}

document.addEventListener("click", (ev) => {
  const a = (ev.target as Element).closest?.("a");
  const href = a?.getAttribute("href");
  if (!a || !href || ev.metaKey || ev.ctrlKey || ev.shiftKey) return;
  // The sign-in routes are the server's own, not pages of the dashboard.
  if (href.startsWith("/ui/") && !href.startsWith("/ui/auth/")) {
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
void loadSession().then(() => route());
