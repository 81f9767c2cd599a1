// The Tollgate dashboard. Signed in with an admin token, the token lives in this script's
// memory only (never in storage or a cookie), and every call is an admin API call with it
// as a Bearer token. Signed in through an OpenID provider, the session is an HttpOnly,
// SameSite=Strict cookie the script cannot read, and every call also carries the
// session's CSRF token, which only this script holds: a forged request from elsewhere has
// the cookie at most, never the token. Either way the server's roles, limits and audit log
// apply to the dashboard as to any client.
//
// The sources are plain scripts compiled into one file, in the order tsconfig.json lists
// them: this one (what every page uses), one per group of pages, and app.ts (the list of
// pages, routing and start), last so that everything it starts is defined.

let token: string | null = null;

/// A session opened through the OpenID provider: who, as what, and its CSRF token.
interface Session {
  actor: string;
  role: string;
  csrf: string;
}
let session: Session | null = null;

/// Ends what the page on show started (the live stream) when another page is shown.
let leaving = new AbortController();

/// A page: its path under /ui/, its title in the navigation, and how it draws itself.
interface Page {
  path: string;
  title: string;
  render: (main: HTMLElement, rest: string[]) => Promise<void>;
}

/// One error of a validation problem: where, and what is wrong.
interface FieldError {
  path: string;
  message: string;
}

/// A failed admin API call: the problem's status, title, detail, field errors and kind
/// (the last segment of its `type`, such as `dead-letter-truncated`).
class ApiError extends Error {
  constructor(
    public status: number,
    public title: string,
    public detail: string,
    public errors: FieldError[] = [],
    public kind = "",
  ) {
    super(`${status} ${title}${detail ? ": " + detail : ""}`);
  }
}

function authHeaders(): Record<string, string> {
  if (!token && session) return { "x-tollgate-csrf": session.csrf };
  return { authorization: `Bearer ${token ?? ""}` };
}

/// The session's cookie goes along only when signed in with one.
function credentials(): RequestCredentials {
  return !token && session ? "same-origin" : "omit";
}

/// Who is signed in, for checks made once per sign-in.
function signedInAs(): string | null {
  return token ?? session?.csrf ?? null;
}

/// The problem of a failed answer, read from its problem+json body when it has one.
async function failure(res: Response): Promise<ApiError> {
  const text = await res.text();
  let data: any = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  const kind = typeof data?.type === "string" ? (data.type.split("/").pop() ?? "") : "";
  return new ApiError(res.status, data?.title ?? res.statusText, data?.detail ?? "", data?.errors ?? [], kind);
}

async function api(method: string, path: string, body?: unknown): Promise<any> {
  const headers = authHeaders();
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: credentials(),
  });
  if (!res.ok) throw await failure(res);
  const text = await res.text();
  return text ? JSON.parse(text) : null;
}

/// A GET whose answer is not JSON (an export), as a Blob.
async function apiBlob(path: string): Promise<Blob> {
  const res = await fetch(path, { headers: authHeaders(), credentials: credentials() });
  if (!res.ok) throw await failure(res);
  return res.blob();
}

/// A query string of the parameters that are set.
function query(params: Record<string, string | number | null | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== "") q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : "";
}

/// A filter of the page on show, as its address holds it.
function fromAddress(name: string): string {
  return new URLSearchParams(location.search).get(name) ?? "";
}

/// Writes the page's filters and paging into its address, so that a filtered view can be
/// bookmarked and shared; pages read them back with `fromAddress` whenever they are drawn
/// (on load, and on Back and Forward). The entry is replaced rather than added, so that
/// Back leaves the page instead of stepping through every filter tried. `here` is the
/// `leaving` signal of the page writing: a list that answers after its page was left would
/// otherwise write its filters into the address of the page shown since.
function toAddress(here: AbortSignal, values: Record<string, string | number | null | undefined>) {
  if (here.aborted) return;
  const s = query(values);
  if (s !== location.search) history.replaceState(history.state, "", location.pathname + s);
}

/// Sets a select to `value` from the address, adding the option when the server did not
/// list it, so that a shared view still filters as it did.
function choose(s: HTMLSelectElement, value: string) {
  if (!value) return;
  if (!Array.from(s.options).some((o) => o.value === value)) s.append(el("option", { value }, value));
  s.value = value;
}

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) e.append(c);
  return e;
}

function button(text: string, onClick: () => void, cls = "", label = ""): HTMLButtonElement {
  const attrs: Record<string, string> = { type: "button" };
  if (cls) attrs.class = cls;
  // A button repeated on every row is told apart by its label, which starts with its
  // visible text so that speech input finds it by what is shown.
  if (label) attrs["aria-label"] = label;
  const b = el("button", attrs, text);
  b.addEventListener("click", onClick);
  return b;
}

/// What to tell the reader of a failed call. A refusal for the role says so plainly,
/// with the server's account of who may.
function describe(e: unknown): string {
  if (e instanceof ApiError && e.status === 403) {
    return `Not allowed for this role (403)${e.detail ? ": " + e.detail : ""}.`;
  }
  return e instanceof Error ? e.message : String(e);
}

/// Shows an error in the page's status region.
function showError(main: HTMLElement, e: unknown) {
  const region = main.querySelector<HTMLElement>("#status") ?? main;
  region.textContent = describe(e);
  region.className = "error";
}

/// Shows a message in the page's status region.
function showStatus(main: HTMLElement, text: string) {
  const region = main.querySelector<HTMLElement>("#status") ?? main;
  region.textContent = text;
  region.className = "";
}

function statusRegion(): HTMLParagraphElement {
  return el("p", { id: "status", role: "status" });
}

/// The paging of a list read newest first by a `before` cursor (the alerts' history, the
/// dead letters): the cursor of each page shown so far, the first page having none. A page
/// from the address starts there, with the first page one step newer. Newer and Older move
/// through them, keeping the focus in the pager when the button pressed is switched off.
class BeforePager {
  private pages: (number | null)[];
  private next: number | null = null;

  constructor(
    private readonly main: HTMLElement,
    private readonly newer: HTMLButtonElement,
    private readonly older: HTMLButtonElement,
    private readonly load: () => Promise<void>,
  ) {
    const from = Number(fromAddress("before"));
    this.pages = Number.isSafeInteger(from) && from > 0 ? [null, from] : [null];
  }

  /// The cursor of the page to load.
  get before(): number | null {
    return this.pages[this.pages.length - 1];
  }

  /// Whether newer pages come before this one.
  get past(): boolean {
    return this.pages.length > 1;
  }

  /// How many items the newer pages held, at `perPage` each.
  offset(perPage: number): number {
    return (this.pages.length - 1) * perPage;
  }

  /// Records the cursor of the page after the one just shown (none at the end).
  shown(next: number | null) {
    this.next = next;
    this.newer.disabled = !this.past;
    this.older.disabled = next == null;
  }

  async move(step: number) {
    if (step > 0 && this.next != null) this.pages.push(this.next);
    else if (step < 0 && this.past) this.pages.pop();
    try {
      await this.load();
      if (document.activeElement === document.body || (document.activeElement as HTMLButtonElement)?.disabled) {
        (this.older.disabled ? this.newer : this.older).focus();
      }
    } catch (e) {
      showError(this.main, e);
    }
  }

  /// Back to the first page, as a changed filter asks.
  readonly restart = () => {
    this.pages = [null];
    void this.load().catch((e) => showError(this.main, e));
  };

  /// The first load.
  async start() {
    try {
      await this.load();
    } catch (e) {
      showError(this.main, e);
    }
  }
}

function table(head: string[], rows: (Node | string)[][], caption = ""): HTMLTableElement {
  return el(
    "table",
    {},
    ...(caption ? [el("caption", {}, caption)] : []),
    el("thead", {}, el("tr", {}, ...head.map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, ...rows.map((r) => el("tr", {}, ...r.map((c) => el("td", {}, c))))),
  );
}

function when(ms: number | undefined | null): string {
  return ms ? new Date(ms).toISOString().replace("T", " ").slice(0, 19) : "-";
}

/// A labelled select of `options` ([value, text]).
function select(id: string, options: [string, string][], value = ""): HTMLSelectElement {
  const s = el("select", { id });
  for (const [v, t] of options) s.append(el("option", { value: v }, t));
  s.value = value;
  return s;
}

/// A count of seconds as the configuration writes durations: 90 is 1m30s.
function seconds(n: number): string {
  const parts: string[] = [];
  for (const [unit, size] of [["d", 86400], ["h", 3600], ["m", 60], ["s", 1]] as [string, number][]) {
    if (n >= size) {
      parts.push(`${Math.floor(n / size)}${unit}`);
      n %= size;
    }
  }
  return parts.join("") || "0s";
}

/// Formats of each currency, made once.
const moneyFormats = new Map<string, Intl.NumberFormat>();

/// An amount in minor units of `currency` (cents of EUR, yen of JPY, fils of KWD) as the
/// reader's locale writes money. The digits of the minor unit are the currency's own,
/// as Intl knows them, and the amount is turned into a decimal string so that no
/// floating-point division can round it.
function money(minor: number, currency: string): string {
  let f = moneyFormats.get(currency);
  if (!f) {
    try {
      f = new Intl.NumberFormat(undefined, { style: "currency", currency });
    } catch {
      // Not a code Intl knows: the number in minor units, with the code.
      return `${minor} ${currency} (minor units)`;
    }
    moneyFormats.set(currency, f);
  }
  const digits = f.resolvedOptions().maximumFractionDigits ?? 2;
  const sign = minor < 0 ? "-" : "";
  const whole = String(Math.abs(Math.trunc(minor))).padStart(digits + 1, "0");
  const decimal = digits ? `${whole.slice(0, -digits)}.${whole.slice(-digits)}` : whole;
  // Intl formats decimal strings exactly; the DOM library's types know only numbers.
  return (f.format as unknown as (v: string) => string)(sign + decimal);
}

/// A whole number with the locale's grouping.
function count(n: number): string {
  return n.toLocaleString();
}

const SVG = "http://www.w3.org/2000/svg";
