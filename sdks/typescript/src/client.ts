import { TollgateError, TollgateProblemError, TollgateTimeoutError, TollgateUnavailableError } from "./errors.js";
import type {
  ApiKey,
  AuthorizeResult,
  BatchReleaseResult,
  BatchRenewResult,
  CheckRequest,
  CreatedKey,
  CreateKeyRequest,
  Decision,
  KeyPage,
  KeyUsage,
  ListKeysQuery,
  Problem,
  ReleaseEntry,
  RenewEntry,
  RotateKeyRequest,
  Subject,
  UsageHistory,
  UsageHistoryQuery,
} from "./types.js";

/**
 * What a decision helper does when Tollgate cannot be reached (connection refused or reset,
 * a timeout, or 503 after every retry):
 * - `"open"`: let the request through (a `Decision` with `allowed: true, degraded: "open"`);
 * - `"closed"`: refuse it (`allowed: false, code: "UNAVAILABLE", degraded: "closed"`);
 * - `"throw"`: throw `TollgateUnavailableError`.
 * Admin calls always throw.
 */
export type UnavailablePolicy = "open" | "closed" | "throw";

export interface RetryOptions {
  /** Attempts in all, the first included (default 3; 1 turns retries off). */
  attempts?: number;
  /** The first backoff (default 50 ms); it doubles on each retry, with full jitter. */
  baseDelayMs?: number;
  /** The longest backoff, a `Retry-After` of a 503 included (default 2000 ms). */
  maxDelayMs?: number;
}

export interface ClientOptions {
  /** Tollgate's base URL, such as `http://127.0.0.1:8080`. */
  baseUrl: string;
  /** A bearer token for the admin routes (keys, usage). */
  adminToken?: string;
  /** How long one attempt may take (default 2000 ms). */
  timeoutMs?: number;
  retry?: RetryOptions;
  /** What decision helpers do when Tollgate is unreachable; see `UnavailablePolicy`. Default `"throw"`. */
  onUnavailable?: UnavailablePolicy;
  /** The `fetch` to use (default the global one). */
  fetch?: typeof fetch;
  /** Extra headers sent with every request. */
  headers?: Record<string, string>;
}

export interface CheckOptions {
  cost?: number;
  dryRun?: boolean;
  /** Overrides the client's `onUnavailable` for this call. */
  onUnavailable?: UnavailablePolicy;
  signal?: AbortSignal;
}

/** The request-ish shape `limit()` reads; Node, Express and Fastify requests all fit it. */
export interface RequestLike {
  method?: string;
  /** A path with an optional query, such as `/orders?page=2`, or an absolute URL. */
  url?: string;
  /** The path, when the framework gives it apart from `url`. */
  path?: string;
  headers?: Record<string, string | string[] | undefined> | Headers;
  /** The client address, as the framework sees it (Express `req.ip`, Fastify `request.ip`). */
  ip?: string;
  socket?: { remoteAddress?: string | undefined };
}

export interface LimitOptions extends CheckOptions {
  /** Builds the subject from the request; the default reads method, path, IP and API key. */
  subject?: (req: RequestLike) => Subject;
  /** Merged over the subject built from the request (such as `{ user, tenant }`). */
  extra?: Subject;
}

/** What a service does with a request, from a decision. */
export interface LimitResult {
  allowed: boolean;
  /** The status to answer a refused request with: 429, 401, 403 or 503 (200 when allowed). */
  status: number;
  /** Headers to set on the answer, allowed or not (`RateLimit`, `Retry-After`, …). */
  headers: Record<string, string>;
  decision: Decision;
  /** Set when the decision took a concurrency lease: release it when the work is done. */
  leaseId?: string;
}

/** A concurrency lease taken by `acquire()`. */
export interface Lease {
  readonly id: string;
  readonly decision: Decision;
  /** Releases the lease; true if this call freed it, false if it was already gone. */
  release(): Promise<boolean>;
  /**
   * Renews the lease (its `lease_ttl` again, from now); true if it was renewed, false if it
   * had already ended (released or run out): it is not brought back, take a new one.
   */
  renew(): Promise<boolean>;
}

const CODE_STATUS: Record<string, number> = {
  OK: 200,
  RATE_LIMITED: 429,
  QUOTA_EXCEEDED: 429,
  KEY_INVALID: 401,
  KEY_DISABLED: 403,
  KEY_EXPIRED: 403,
  BLOCKED: 403,
  UNAVAILABLE: 503,
};

/** The HTTP status a service answers for a decision's code. */
export function statusForCode(code: string): number {
  return CODE_STATUS[code] ?? 429;
}

interface Call {
  method: string;
  path: string;
  body?: unknown;
  query?: Record<string, string | number | undefined>;
  headers?: Record<string, string>;
  signal?: AbortSignal | undefined;
  /** Statuses returned as they are instead of thrown. */
  accept?: number[];
}

interface Answer {
  status: number;
  headers: Headers;
  body: unknown;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A Tollgate client. One instance is meant to be shared by a whole service. */
export class TollgateClient {
  readonly baseUrl: string;
  readonly timeoutMs: number;
  readonly onUnavailable: UnavailablePolicy;
  private readonly adminToken: string | undefined;
  private readonly attempts: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly fetchImpl: typeof fetch;
  private readonly extraHeaders: Record<string, string>;

  constructor(options: ClientOptions) {
    if (!options || !options.baseUrl) throw new TollgateError("baseUrl is required");
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.adminToken = options.adminToken;
    this.timeoutMs = options.timeoutMs ?? 2000;
    this.attempts = Math.max(1, options.retry?.attempts ?? 3);
    this.baseDelayMs = options.retry?.baseDelayMs ?? 50;
    this.maxDelayMs = options.retry?.maxDelayMs ?? 2000;
    this.onUnavailable = options.onUnavailable ?? "throw";
    this.fetchImpl = options.fetch ?? globalThis.fetch;
    this.extraHeaders = options.headers ?? {};
  }

  // ---- decisions -------------------------------------------------------------------------

  /** Decides one check (`POST /v1/check`). */
  async check(subject: Subject, options: CheckOptions = {}): Promise<Decision> {
    const body: CheckRequest = { subject };
    if (options.cost !== undefined) body.cost = options.cost;
    if (options.dryRun) body.dry_run = true;
    try {
      const answer = await this.call({ method: "POST", path: "/v1/check", body, signal: options.signal });
      return answer.body as Decision;
    } catch (err) {
      return this.degrade(err, options.onUnavailable);
    }
  }

  /** Decides up to 100 checks in order (batch `POST /v1/check`); one decision per check. */
  async checkBatch(
    checks: Array<CheckRequest | { subject: Subject; cost?: number; dryRun?: boolean }>,
    options: { onUnavailable?: UnavailablePolicy; signal?: AbortSignal } = {},
  ): Promise<Decision[]> {
    const wire = checks.map((c) => {
      const out: CheckRequest = { subject: c.subject };
      if (c.cost !== undefined) out.cost = c.cost;
      const dry = "dryRun" in c ? c.dryRun : (c as CheckRequest).dry_run;
      if (dry) out.dry_run = true;
      return out;
    });
    try {
      const answer = await this.call({ method: "POST", path: "/v1/check", body: { checks: wire }, signal: options.signal });
      return (answer.body as { results: Decision[] }).results;
    } catch (err) {
      const policy = options.onUnavailable ?? this.onUnavailable;
      if (policy === "throw" || !(err instanceof TollgateUnavailableError)) throw err;
      return wire.map(() => this.degrade(err, policy));
    }
  }

  /**
   * Asks the forward-auth door (`GET /v1/authorize`) with the headers a proxy would send
   * (`X-Api-Key`, `X-Forwarded-Uri`, `X-Forwarded-Method`, …). The client IP comes from the
   * connection unless this process is one of Tollgate's `trusted_proxies`.
   */
  async authorize(
    headers: Record<string, string>,
    options: { onUnavailable?: UnavailablePolicy; signal?: AbortSignal; denyStatus?: number } = {},
  ): Promise<AuthorizeResult> {
    try {
      const answer = await this.call({
        method: "GET",
        path: "/v1/authorize",
        headers,
        query: { deny_status: options.denyStatus },
        signal: options.signal,
        accept: [401, 403, 429],
      });
      const out: Record<string, string> = {};
      for (const name of RATE_HEADERS) {
        const v = answer.headers.get(name);
        if (v !== null) out[name] = v;
      }
      const result: AuthorizeResult = { allowed: answer.status === 200, status: answer.status, headers: out };
      const lease = answer.headers.get("tollgate-lease-id");
      if (lease) result.lease_id = lease;
      if (answer.status !== 200 && isProblem(answer.body)) result.problem = answer.body;
      return result;
    } catch (err) {
      const d = this.degrade(err, options.onUnavailable);
      return { allowed: d.allowed, status: d.allowed ? 200 : 503, headers: d.headers };
    }
  }

  /**
   * Decides a request of any web framework: builds a subject (method, path, client IP, the
   * API key of `X-Api-Key` or `Authorization: Bearer`), checks it, and says what to answer.
   */
  async limit(req: RequestLike, options: LimitOptions = {}): Promise<LimitResult> {
    const subject = { ...(options.subject ?? subjectFromRequest)(req), ...(options.extra ?? {}) };
    const decision = await this.check(subject, options);
    const result: LimitResult = {
      allowed: decision.allowed,
      status: decision.allowed ? 200 : statusForCode(decision.code),
      headers: { ...decision.headers },
      decision,
    };
    if (!decision.allowed && decision.retry_after_ms != null && !result.headers["retry-after"]) {
      result.headers["retry-after"] = String(Math.ceil(decision.retry_after_ms / 1000));
    }
    if (decision.lease_id) result.leaseId = decision.lease_id;
    return result;
  }

  // ---- concurrency leases ----------------------------------------------------------------

  /**
   * Takes a concurrency lease: checks the subject and, when admitted, returns the lease to
   * release when the work ends. Returns `null` when refused; throws when the decision was
   * admitted but no concurrency limit applied (no lease to hold).
   */
  async acquire(subject: Subject, options: CheckOptions = {}): Promise<Lease | null> {
    const decision = await this.check(subject, { ...options, onUnavailable: "throw" });
    if (!decision.allowed) return null;
    const id = decision.lease_id;
    if (!id) throw new TollgateError("the decision took no lease: no concurrency limit matched the subject");
    return { id, decision, release: () => this.release(id), renew: () => this.renew(id) };
  }

  /** Runs `work` under a lease, released afterwards whatever happens; `null` when refused. */
  async withLease<T>(subject: Subject, work: (lease: Lease) => Promise<T>, options: CheckOptions = {}): Promise<T | null> {
    const lease = await this.acquire(subject, options);
    if (!lease) return null;
    try {
      return await work(lease);
    } finally {
      await lease.release().catch(() => undefined);
    }
  }

  /** Releases one lease (`POST /v1/release`): true if this call freed it, false if it was gone. */
  async release(leaseId: string, options: { signal?: AbortSignal } = {}): Promise<boolean> {
    const answer = await this.call({ method: "POST", path: "/v1/release", body: { lease_id: leaseId }, signal: options.signal });
    return (answer.body as { released: boolean }).released;
  }

  /** Releases several leases at once (batch `POST /v1/release`). */
  async releaseMany(leaseIds: string[], options: { signal?: AbortSignal } = {}): Promise<ReleaseEntry[]> {
    const answer = await this.call({ method: "POST", path: "/v1/release", body: { lease_ids: leaseIds }, signal: options.signal });
    return (answer.body as BatchReleaseResult).results;
  }

  /**
   * Renews one lease (`POST /v1/renew`): gives it its `lease_ttl` again, counted from now.
   * True if renewed, false if it had already ended (released or run out; not brought back).
   */
  async renew(leaseId: string, options: { signal?: AbortSignal } = {}): Promise<boolean> {
    const answer = await this.call({ method: "POST", path: "/v1/renew", body: { lease_id: leaseId }, signal: options.signal });
    return (answer.body as { renewed: boolean }).renewed;
  }

  /** Renews several leases at once (batch `POST /v1/renew`). */
  async renewMany(leaseIds: string[], options: { signal?: AbortSignal } = {}): Promise<RenewEntry[]> {
    const answer = await this.call({ method: "POST", path: "/v1/renew", body: { lease_ids: leaseIds }, signal: options.signal });
    return (answer.body as BatchRenewResult).results;
  }

  // ---- key admin -------------------------------------------------------------------------

  /** Creates a key (`POST /v1/keys`); the answer's `secret` is shown this once. */
  async createKey(request: CreateKeyRequest): Promise<CreatedKey> {
    return (await this.call({ method: "POST", path: "/v1/keys", body: request, headers: this.admin() })).body as CreatedKey;
  }

  /** One page of keys (`GET /v1/keys`). */
  async listKeys(query: ListKeysQuery = {}): Promise<KeyPage> {
    return (await this.call({ method: "GET", path: "/v1/keys", query: { ...query }, headers: this.admin() })).body as KeyPage;
  }

  /** Every key matching the filters, page after page. */
  async *allKeys(query: Omit<ListKeysQuery, "after"> = {}): AsyncGenerator<ApiKey> {
    let after: string | undefined;
    for (;;) {
      const page = await this.listKeys(after === undefined ? query : { ...query, after });
      yield* page.keys;
      if (!page.next) return;
      after = String(page.next);
    }
  }

  /** One key (`GET /v1/keys/{id}`). */
  async getKey(id: string): Promise<ApiKey> {
    return (await this.call({ method: "GET", path: `/v1/keys/${enc(id)}`, headers: this.admin() })).body as ApiKey;
  }

  /** A new secret for a key (`POST /v1/keys/{id}/rotate`); the old one works for the grace period. */
  async rotateKey(id: string, request: RotateKeyRequest = {}): Promise<CreatedKey> {
    return (await this.call({ method: "POST", path: `/v1/keys/${enc(id)}/rotate`, body: request, headers: this.admin() }))
      .body as CreatedKey;
  }

  /** Revokes a key for good (`DELETE /v1/keys/{id}`). */
  async revokeKey(id: string): Promise<void> {
    await this.call({ method: "DELETE", path: `/v1/keys/${enc(id)}`, headers: this.admin() });
  }

  /** Where each of the key's limits and quotas stands now (`GET /v1/keys/{id}/usage`). */
  async keyUsage(id: string): Promise<KeyUsage> {
    return (await this.call({ method: "GET", path: `/v1/keys/${enc(id)}/usage`, headers: this.admin() })).body as KeyUsage;
  }

  /** Decisions per period for one key (`GET /v1/keys/{id}/usage/history`). */
  async keyUsageHistory(id: string, query: UsageHistoryQuery = {}): Promise<UsageHistory> {
    return (await this.call({ method: "GET", path: `/v1/keys/${enc(id)}/usage/history`, query: { ...query }, headers: this.admin() }))
      .body as UsageHistory;
  }

  /** Decisions per period for every key of one owner (`GET /v1/owners/{owner}/usage/history`). */
  async ownerUsageHistory(owner: string, query: UsageHistoryQuery = {}): Promise<UsageHistory> {
    return (await this.call({ method: "GET", path: `/v1/owners/${enc(owner)}/usage/history`, query: { ...query }, headers: this.admin() }))
      .body as UsageHistory;
  }

  // ---- transport -------------------------------------------------------------------------

  private admin(): Record<string, string> {
    return this.adminToken ? { authorization: `Bearer ${this.adminToken}` } : {};
  }

  private degrade(err: unknown, override: UnavailablePolicy | undefined): Decision {
    const policy = override ?? this.onUnavailable;
    if (policy === "throw" || !(err instanceof TollgateUnavailableError)) throw err;
    if (policy === "open") return { allowed: true, code: "UNAVAILABLE", limits: [], headers: {}, degraded: "open" };
    return { allowed: false, code: "UNAVAILABLE", limits: [], headers: {}, degraded: "closed" };
  }

  private backoff(attempt: number, retryAfter: string | null): number {
    const cap = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** (attempt - 1));
    const jittered = Math.random() * cap;
    const seconds = retryAfter === null ? NaN : Number(retryAfter);
    return Number.isFinite(seconds) && seconds >= 0 ? Math.min(this.maxDelayMs, Math.max(jittered, seconds * 1000)) : jittered;
  }

  private async call(call: Call): Promise<Answer> {
    let url = this.baseUrl + call.path;
    if (call.query) {
      const params = new URLSearchParams();
      for (const [k, v] of Object.entries(call.query)) if (v !== undefined && v !== null) params.set(k, String(v));
      const q = params.toString();
      if (q) url += `?${q}`;
    }
    const headers: Record<string, string> = { accept: "application/json", ...this.extraHeaders, ...(call.headers ?? {}) };
    let body: string | undefined;
    if (call.body !== undefined) {
      headers["content-type"] = "application/json";
      body = JSON.stringify(call.body);
    }

    let lastError: unknown;
    for (let attempt = 1; attempt <= this.attempts; attempt++) {
      const timeout = AbortSignal.timeout(this.timeoutMs);
      const signal = call.signal ? AbortSignal.any([call.signal, timeout]) : timeout;
      let response: Response;
      try {
        response = await this.fetchImpl(url, { method: call.method, headers, body, signal });
      } catch (err) {
        if (call.signal?.aborted) throw err;
        if (timeout.aborted) throw new TollgateTimeoutError(this.timeoutMs, attempt);
        // Connection refused, reset or closed: nothing was decided that we know of; try again.
        lastError = err;
        if (attempt < this.attempts) await sleep(this.backoff(attempt, null));
        continue;
      }
      let parsed: unknown;
      try {
        const text = await response.text();
        parsed = text.length ? JSON.parse(text) : undefined;
      } catch (err) {
        if (timeout.aborted) throw new TollgateTimeoutError(this.timeoutMs, attempt);
        if (response.ok) throw new TollgateError(`Tollgate answered ${response.status} with a body that is not JSON`, { cause: err });
        parsed = undefined;
      }
      if (response.status === 503) {
        lastError = isProblem(parsed) ? new TollgateProblemError(parsed, response.headers.get("x-request-id") ?? undefined) : undefined;
        if (attempt < this.attempts) await sleep(this.backoff(attempt, response.headers.get("retry-after")));
        continue;
      }
      if (response.ok || call.accept?.includes(response.status)) {
        return { status: response.status, headers: response.headers, body: parsed };
      }
      const problem: Problem = isProblem(parsed)
        ? parsed
        : { type: "about:blank", title: response.statusText || "HTTP error", status: response.status };
      throw new TollgateProblemError(problem, response.headers.get("x-request-id") ?? undefined);
    }
    throw new TollgateUnavailableError(`Tollgate is unavailable after ${this.attempts} attempt(s)`, this.attempts, {
      cause: lastError,
    });
  }
}

const RATE_HEADERS = [
  "ratelimit",
  "ratelimit-policy",
  "retry-after",
  "x-ratelimit-limit",
  "x-ratelimit-remaining",
  "x-ratelimit-reset",
];

function enc(s: string): string {
  return encodeURIComponent(s);
}

function isProblem(body: unknown): body is Problem {
  return typeof body === "object" && body !== null && typeof (body as Problem).type === "string" && typeof (body as Problem).status === "number";
}

function header(req: RequestLike, name: string): string | undefined {
  const h = req.headers;
  if (!h) return undefined;
  if (typeof (h as Headers).get === "function") return (h as Headers).get(name) ?? undefined;
  const v = (h as Record<string, string | string[] | undefined>)[name];
  return Array.isArray(v) ? v[0] : v;
}

/** The default subject of a request: method, path, client IP and a presented API key. */
export function subjectFromRequest(req: RequestLike): Subject {
  const subject: Subject = {};
  if (req.method) subject.method = req.method;
  let path = req.path;
  if (!path && req.url) {
    path = /^[a-z]+:\/\//i.test(req.url) ? new URL(req.url).pathname : req.url.split("?")[0];
  }
  if (path) subject.path = path;
  const ip = req.ip ?? req.socket?.remoteAddress;
  if (ip) subject.ip = ip;
  const apiKey = header(req, "x-api-key");
  const auth = header(req, "authorization");
  if (apiKey) subject.api_key = apiKey;
  else if (auth && /^bearer\s+/i.test(auth)) subject.api_key = auth.replace(/^bearer\s+/i, "").trim();
  return subject;
}
