// The wire types of Tollgate's HTTP API (v1), written by hand for now. They are kept in this
// one file so that they can be generated from the OpenAPI description later.

/** Who or what a decision is about. Every field is optional; rules match the ones present. */
export interface Subject {
  user?: string;
  ip?: string;
  method?: string;
  path?: string;
  /** A presented API key; verified when the server has a key registry. */
  api_key?: string;
  tenant?: string;
  /** Any other attribute, matched by rules as `attr.NAME`. */
  attributes?: Record<string, string>;
}

/** One check: the body of `POST /v1/check`, or one entry of a batch. */
export interface CheckRequest {
  subject: Subject;
  /** Units to consume (default 1). A cost of 0 only looks. */
  cost?: number;
  /** Evaluate without consuming anything. */
  dry_run?: boolean;
}

/** The body of a batch `POST /v1/check`: up to 100 checks, decided in order. */
export interface BatchCheckRequest {
  checks: CheckRequest[];
}

/** A decision's code. `UNAVAILABLE` is also what the SDK reports when it fails open or closed. */
export type DecisionCode =
  | "OK"
  | "RATE_LIMITED"
  | "QUOTA_EXCEEDED"
  | "KEY_INVALID"
  | "KEY_DISABLED"
  | "KEY_EXPIRED"
  | "BLOCKED"
  | "UNAVAILABLE"
  | (string & {});

/** Where one limit stands after a decision. */
export interface LimitStatus {
  name: string;
  key: string;
  limit: number;
  remaining: number;
  reset_ms: number;
  /** The limit's window; null for limits without one (concurrency). */
  window_ms?: number | null;
  exceeded: boolean;
  shadow: boolean;
  /** True when the store could not be reached and the rule's `on_store_error` answered. */
  degraded?: boolean;
  /** Set when this limit is a concurrency limit that took a lease. */
  lease_id?: string;
  [extra: string]: unknown;
}

/** The answer of `POST /v1/check` for one check. */
export interface Decision {
  allowed: boolean;
  code: DecisionCode;
  /** When this cost would be admitted; null when allowed, or when it never would be. */
  retry_after_ms?: number | null;
  limits: LimitStatus[];
  /** The rate-limit headers a service should set on its own answer (lower-case names). */
  headers: Record<string, string>;
  /** Set when the decision took a concurrency lease; release it with `release()`. */
  lease_id?: string;
  /**
   * Set by the SDK (never by the server) when Tollgate could not be reached and the client's
   * `onUnavailable` policy decided instead: `"open"` or `"closed"`.
   */
  degraded?: "open" | "closed";
  [extra: string]: unknown;
}

/** The answer of a batch `POST /v1/check`. */
export interface BatchDecision {
  results: Decision[];
}

/** The answer of `POST /v1/release` for one lease. */
export interface ReleaseResult {
  released: boolean;
}

/** One entry of the answer of a batch `POST /v1/release`. */
export interface ReleaseEntry {
  lease_id: string;
  released: boolean;
}

/** The answer of a batch `POST /v1/release`. */
export interface BatchReleaseResult {
  results: ReleaseEntry[];
}

/** The answer of `POST /v1/renew` for one lease. */
export interface RenewResult {
  renewed: boolean;
}

/** One entry of the answer of a batch `POST /v1/renew`. */
export interface RenewEntry {
  lease_id: string;
  renewed: boolean;
  /** Set when this id is not one Tollgate gave out (made up or altered). */
  error?: string;
}

/** The answer of a batch `POST /v1/renew`. */
export interface BatchRenewResult {
  results: RenewEntry[];
}

/** What `GET /v1/authorize` answered: its status, the headers to pass on, and any lease. */
export interface AuthorizeResult {
  allowed: boolean;
  status: number;
  headers: Record<string, string>;
  lease_id?: string;
  /** The problem body of a denial, when there is one. */
  problem?: Problem;
}

export type KeyStatus = "active" | "disabled" | "revoked" | (string & {});

/** An API key's record, as the admin routes show it (never its secret). */
export interface ApiKey {
  id: string;
  name: string;
  owner: string;
  tier: string;
  /** What may be shown of the secret, such as `tg_live_4fQx`. */
  prefix: string;
  status: KeyStatus;
  created_at: number;
  updated_at: number;
  expires_at?: number | null;
  last_used_at?: number | null;
  metadata?: Record<string, unknown> | null;
  overrides?: Record<string, unknown> | null;
  [extra: string]: unknown;
}

/** The body of `POST /v1/keys`. */
export interface CreateKeyRequest {
  name: string;
  owner: string;
  tier?: string;
  env?: string;
  expires_at?: number;
  metadata?: Record<string, unknown>;
  overrides?: Record<string, unknown>;
}

/** The answer of `POST /v1/keys` and `POST /v1/keys/{id}/rotate`: the secret is shown once. */
export interface CreatedKey {
  key: ApiKey;
  secret: string;
  [extra: string]: unknown;
}

/** Filters and paging of `GET /v1/keys`. */
export interface ListKeysQuery {
  owner?: string;
  tier?: string;
  status?: KeyStatus;
  after?: string;
  limit?: number;
}

/** A page of `GET /v1/keys`; `next` is the `after` of the following page. */
export interface KeyPage {
  keys: ApiKey[];
  next?: string | null;
  [extra: string]: unknown;
}

/** The body of `POST /v1/keys/{id}/rotate`. */
export interface RotateKeyRequest {
  grace_seconds?: number;
  env?: string;
}

/** Where one of a key's limits stands, as `GET /v1/keys/{id}/usage` shows it. */
export interface UsageLimit {
  name: string;
  algorithm: string;
  key: string;
  limit: number;
  remaining: number;
  used: number;
  reset_ms: number;
  window_ms?: number | null;
  degraded?: boolean;
  [extra: string]: unknown;
}

/** The answer of `GET /v1/keys/{id}/usage`: each limit and quota that applies, read without consuming. */
export interface KeyUsage {
  key_id: string;
  tier: string;
  owner: string;
  limits: UsageLimit[];
  [extra: string]: unknown;
}

export type Granularity = "minute" | "hour" | "day";

/** The query of `GET /v1/keys/{id}/usage/history`. Times are ms since the epoch or RFC 3339. */
export interface UsageHistoryQuery {
  from?: number | string;
  to?: number | string;
  granularity?: Granularity;
}

/** One period of usage history. */
export interface UsageBucket {
  start: number;
  requests: number;
  allowed: number;
  denied: number;
  units: number;
  [extra: string]: unknown;
}

/** The answer of `GET /v1/keys/{id}/usage/history` (and the owner's). */
export interface UsageHistory {
  granularity: Granularity;
  /** The range covered, `[from, to)` in ms since the epoch. */
  from: number;
  to: number;
  buckets: UsageBucket[];
  /** Whose history it is: `key_id` for a key's, `owner` for an owner's. */
  key_id?: string;
  owner?: string;
  [extra: string]: unknown;
}

/** One error of a problem's `errors` list: the field at fault and what is wrong. */
export interface ProblemError {
  path?: string;
  message: string;
  [extra: string]: unknown;
}

/** An RFC 9457 problem, as Tollgate answers every error. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail?: string;
  instance?: string;
  errors?: ProblemError[];
  [extra: string]: unknown;
}
