// The wire types of Tollgate's HTTP API (v1), taken from ./openapi.ts, which is generated
// from the server's OpenAPI description (`npm run generate`). What is added here is the
// SDK's own: fields it sets itself, the open-ended unions that let a newer server add a
// value, and `[extra: string]: unknown` on answers, so that a newer server's extra fields
// still type-check.
import type { components, operations } from "./openapi.js";

type Schemas = components["schemas"];

/** Extra fields a newer server may add to an answer. */
type Open = { [extra: string]: unknown };

/** Who or what a decision is about. Every field is optional; rules match the ones present. */
export type Subject = Schemas["Subject"];

/** One check: one entry of a batch `POST /v1/check`. */
export type CheckRequest = Schemas["CheckRequest"];

/** The body of a batch `POST /v1/check`: up to 100 checks, decided in order. */
export type BatchCheckRequest = Schemas["CheckBatch"];

/** A decision's code. `UNAVAILABLE` is also what the SDK reports when it fails open or closed. */
export type DecisionCode = Schemas["DecisionCode"] | (string & {});

/** Where one limit stands after a decision. */
export type LimitStatus = Schemas["LimitStatus"] & Open;

/** The answer of `POST /v1/check` for one check. */
export type Decision = Omit<Schemas["Decision"], "code" | "limits"> & {
  code: DecisionCode;
  limits: LimitStatus[];
  /**
   * Set by the SDK (never by the server) when Tollgate could not be reached and the client's
   * `onUnavailable` policy decided instead: `"open"` or `"closed"`.
   */
  degraded?: "open" | "closed";
} & Open;

/** The answer of a batch `POST /v1/check`. */
export interface BatchDecision {
  results: Decision[];
}

/** The answer of `POST /v1/release` for one lease. */
export type ReleaseResult = Pick<Schemas["Released"], "released">;

/** One entry of the answer of a batch `POST /v1/release`. */
export type ReleaseEntry = Schemas["Released"];

/** The answer of a batch `POST /v1/release`. */
export type BatchReleaseResult = Schemas["ReleasedBatch"];

/** The answer of `POST /v1/renew` for one lease. */
export type RenewResult = Pick<Schemas["Renewed"], "renewed">;

/** One entry of the answer of a batch `POST /v1/renew`; `error` is set when the id is not one Tollgate gave out. */
export type RenewEntry = Schemas["Renewed"];

/** The answer of a batch `POST /v1/renew`. */
export type BatchRenewResult = Schemas["RenewedBatch"];

/** What `GET /v1/authorize` answered: its status, the headers to pass on, and any lease. */
export interface AuthorizeResult {
  allowed: boolean;
  status: number;
  headers: Record<string, string>;
  lease_id?: string;
  /** The problem body of a denial, when there is one. */
  problem?: Problem;
}

export type KeyStatus = Schemas["KeyStatus"] | (string & {});

/** An API key's record, as the admin routes show it (never its secret). */
export type ApiKey = Omit<Schemas["KeyRecord"], "status"> & { status: KeyStatus } & Open;

/** The body of `POST /v1/keys`. */
export type CreateKeyRequest = Schemas["CreateKey"];

/** The answer of `POST /v1/keys` and `POST /v1/keys/{id}/rotate`: the secret is shown once. */
export type CreatedKey = { key: ApiKey; secret: string } & Open;

/** Filters and paging of `GET /v1/keys`. */
export type ListKeysQuery = NonNullable<operations["list_keys"]["parameters"]["query"]>;

/** A page of `GET /v1/keys`; `next` is the `after` of the following page. */
export type KeyPage = { keys: ApiKey[]; next?: string | null } & Open;

/** The body of `POST /v1/keys/{id}/rotate`. */
export type RotateKeyRequest = Schemas["RotateKey"];

/** Where one of a key's limits stands, as `GET /v1/keys/{id}/usage` shows it. */
export type UsageLimit = Schemas["UsageLimit"] & Open;

/** The answer of `GET /v1/keys/{id}/usage`: each limit and quota that applies, read without consuming. */
export type KeyUsage = Omit<Schemas["KeyUsage"], "limits"> & { limits: UsageLimit[] } & Open;

type HistoryParams = NonNullable<operations["key_usage_history"]["parameters"]["query"]>;

export type Granularity = NonNullable<HistoryParams["granularity"]>;

/** The query of `GET /v1/keys/{id}/usage/history`. Times are ms since the epoch or RFC 3339. */
export type UsageHistoryQuery = Omit<HistoryParams, "from" | "to"> & {
  from?: number | string;
  to?: number | string;
};

/** One period of usage history. */
export type UsageBucket = Schemas["UsageBucket"] & Open;

/** The answer of `GET /v1/keys/{id}/usage/history` (and the owner's). */
export type UsageHistory = Omit<Schemas["UsageHistory"], "granularity" | "buckets"> & {
  granularity: Granularity;
  buckets: UsageBucket[];
} & Open;

/** One error of a problem's `errors` list: the field at fault and what is wrong. */
export type ProblemError = Schemas["FieldError"] & Open;

/** An RFC 9457 problem, as Tollgate answers every error (`type` names its kind). */
export type Problem = Omit<Schemas["Problem"], "type" | "errors"> & {
  /** One of the kinds the description lists, or another URI (`about:blank` when the answer had no problem). */
  type: Schemas["Problem"]["type"] | (string & {});
  instance?: string;
  errors?: ProblemError[];
} & Open;
