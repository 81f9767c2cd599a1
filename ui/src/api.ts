// Calls to the admin API. Signed in with an admin token, the token lives in this module's
// memory only (never in storage, a cookie or React state), and every call carries it as a
// Bearer token. Signed in through an OpenID provider, the session is an HttpOnly,
// SameSite=Strict cookie the script cannot read, and every call also carries the
// session's CSRF token, which only this script holds: a forged request from elsewhere has
// the cookie at most, never the token. Either way the server's roles, limits and audit log
// apply to the dashboard as to any client.

let token: string | null = null;

/// A session opened through the OpenID provider: who, as what, and its CSRF token.
export interface Session {
  actor: string;
  role: string;
  csrf: string;
}
let session: Session | null = null;

/// Sets how the calls sign in: a token, a session, or neither.
export function setToken(value: string | null) {
  token = value;
}

export function setSession(value: Session | null) {
  session = value;
}

/// Whether the calls go with a token rather than the session's cookie.
export function hasToken(): boolean {
  return token !== null;
}

/// One error of a validation problem: where, and what is wrong.
export interface FieldError {
  path: string;
  message: string;
}

/// A failed admin API call: the problem's status, title, detail, field errors and kind
/// (the last segment of its `type`, such as `dead-letter-truncated`).
export class ApiError extends Error {
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

export function authHeaders(): Record<string, string> {
  if (!token && session) return { "x-tollgate-csrf": session.csrf };
  return { authorization: `Bearer ${token ?? ""}` };
}

/// The session's cookie goes along only when signed in with one.
export function credentials(): RequestCredentials {
  return !token && session ? "same-origin" : "omit";
}

/// Who is signed in, for checks made once per sign-in.
export function signedInAs(): string | null {
  return token ?? session?.csrf ?? null;
}

/// The problem of a failed answer, read from its problem+json body when it has one.
export async function failure(res: Response): Promise<ApiError> {
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

export async function api(method: string, path: string, body?: unknown): Promise<any> {
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
export async function apiBlob(path: string): Promise<Blob> {
  const res = await fetch(path, { headers: authHeaders(), credentials: credentials() });
  if (!res.ok) throw await failure(res);
  return res.blob();
}

/// What to tell the reader of a failed call. A refusal for the role says so plainly,
/// with the server's account of who may.
export function describe(e: unknown): string {
  if (e instanceof ApiError && e.status === 403) {
    return `Not allowed for this role (403)${e.detail ? ": " + e.detail : ""}.`;
  }
  return e instanceof Error ? e.message : String(e);
}

/// Ends the session at the server, which clears its cookie; a token has none to end.
export async function endSession() {
  if (token || !session) return;
  await fetch("/ui/auth/logout", {
    method: "POST",
    headers: { "x-tollgate-csrf": session.csrf },
    credentials: "same-origin",
  }).catch(() => undefined);
}
