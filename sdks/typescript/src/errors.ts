import type { Problem, ProblemError } from "./types.js";

/** The base of every error this SDK throws. */
export class TollgateError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "TollgateError";
  }
}

/**
 * Tollgate answered with an error: an RFC 9457 problem (`application/problem+json`).
 * Its fields are copied onto the error; `problem` keeps the whole body.
 */
export class TollgateProblemError extends TollgateError {
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly detail: string | undefined;
  readonly errors: ProblemError[];
  readonly problem: Problem;
  /** The `X-Request-Id` of the answer, to find it in Tollgate's log. */
  readonly requestId: string | undefined;

  constructor(problem: Problem, requestId?: string) {
    super(
      problem.detail ? `${problem.title}: ${problem.detail} (${problem.status})` : `${problem.title} (${problem.status})`,
    );
    this.name = "TollgateProblemError";
    this.type = problem.type;
    this.title = problem.title;
    this.status = problem.status;
    this.detail = problem.detail;
    this.errors = problem.errors ?? [];
    this.problem = problem;
    this.requestId = requestId;
  }

  /** The last segment of `type`, such as `invalid-request` or `unauthorized`. */
  get problemName(): string {
    return this.type.slice(this.type.lastIndexOf("/") + 1);
  }
}

/**
 * Tollgate could not be reached, or kept answering 503, after every retry.
 * `cause` holds the last underlying error or problem.
 */
export class TollgateUnavailableError extends TollgateError {
  /** How many attempts were made. */
  readonly attempts: number;
  constructor(message: string, attempts: number, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "TollgateUnavailableError";
    this.attempts = attempts;
  }
}

/** One attempt took longer than the client's `timeoutMs`. */
export class TollgateTimeoutError extends TollgateUnavailableError {
  constructor(timeoutMs: number, attempts: number) {
    super(`Tollgate did not answer within ${timeoutMs} ms`, attempts);
    this.name = "TollgateTimeoutError";
  }
}
