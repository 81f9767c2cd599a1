// Express and Fastify middleware. Neither framework is a dependency: the shapes used here are
// the few members both frameworks' objects are known to have.
import type { LimitOptions, LimitResult, RequestLike, TollgateClient } from "./client.js";
import type { Subject } from "./types.js";

export interface MiddlewareOptions extends Omit<LimitOptions, "subject" | "extra"> {
  /** Builds the subject from the request (default: method, path, IP, API key). */
  subject?: (req: RequestLike) => Subject;
  /** Extra attributes per request, merged over the subject (such as the signed-in user). */
  extra?: (req: RequestLike) => Subject | undefined;
  /** Requests to let through unchecked (health checks, say). */
  skip?: (req: RequestLike) => boolean;
  /** Builds the body of a refusal; the default is an RFC 9457 problem. */
  deniedBody?: (result: LimitResult) => unknown;
}

/** The problem body answered for a refused request. */
export function deniedProblem(result: LimitResult): Record<string, unknown> {
  const code = result.decision.code;
  const slug = code.toLowerCase().replace(/_/g, "-");
  const body: Record<string, unknown> = {
    type: `https://tollgate.dev/problems/${slug}`,
    title: code === "RATE_LIMITED" ? "Too many requests" : code === "QUOTA_EXCEEDED" ? "Quota exceeded" : "Request refused",
    status: result.status,
    code,
  };
  if (result.decision.retry_after_ms != null) body.retry_after_ms = result.decision.retry_after_ms;
  return body;
}

async function decide(client: TollgateClient, req: RequestLike, options: MiddlewareOptions): Promise<LimitResult> {
  const limitOptions: LimitOptions = { ...options, extra: options.extra?.(req) ?? {} };
  if (options.subject) limitOptions.subject = options.subject;
  return client.limit(req, limitOptions);
}

interface ExpressResponseLike {
  setHeader(name: string, value: string): unknown;
  status(code: number): ExpressResponseLike;
  type(t: string): ExpressResponseLike;
  send(body: unknown): unknown;
  once(event: "finish" | "close", listener: () => void): unknown;
  locals?: Record<string, unknown>;
}

/**
 * Express middleware: decides each request, sets the rate-limit headers, answers refusals
 * itself, and releases a concurrency lease when the answer is finished or the connection
 * closes. The decision is kept in `res.locals.tollgate`.
 */
export function expressMiddleware(client: TollgateClient, options: MiddlewareOptions = {}) {
  return (req: RequestLike, res: ExpressResponseLike, next: (err?: unknown) => void): void => {
    if (options.skip?.(req)) return next();
    decide(client, req, options).then(
      (result) => {
        for (const [k, v] of Object.entries(result.headers)) res.setHeader(k, v);
        if (res.locals) res.locals.tollgate = result;
        if (!result.allowed) {
          res.status(result.status).type("application/problem+json").send(JSON.stringify((options.deniedBody ?? deniedProblem)(result)));
          return;
        }
        if (result.leaseId) {
          const id = result.leaseId;
          let done = false;
          const release = () => {
            if (done) return;
            done = true;
            client.release(id).catch(() => undefined);
          };
          res.once("finish", release);
          res.once("close", release);
        }
        next();
      },
      (err: unknown) => next(err),
    );
  };
}

interface FastifyInstanceLike {
  addHook(name: "onRequest", hook: (request: any, reply: any) => Promise<unknown>): unknown;
  addHook(name: "onResponse", hook: (request: any, reply: any) => Promise<unknown>): unknown;
  decorateRequest?(name: string, value: unknown): unknown;
}

const RESULT = Symbol("tollgate");

/**
 * A Fastify plugin: register it with `app.register(fastifyPlugin(client))` — it adds its
 * hooks to the instance it is given (wrap it with `fastify-plugin` to reach the root, or call
 * `fastifyPlugin(client)(app)` on the root directly). Refusals are answered in `onRequest`;
 * a concurrency lease is released in `onResponse`. The decision is `request.tollgate`.
 */
export function fastifyPlugin(client: TollgateClient, options: MiddlewareOptions = {}) {
  const plugin = async (app: FastifyInstanceLike): Promise<void> => {
    app.decorateRequest?.("tollgate", null);
    app.addHook("onRequest", async (request: any, reply: any) => {
      if (options.skip?.(request)) return;
      const result = await decide(client, request, options);
      request.tollgate = result;
      request[RESULT] = result;
      reply.headers(result.headers);
      if (!result.allowed) {
        return reply
          .code(result.status)
          .type("application/problem+json")
          .send(JSON.stringify((options.deniedBody ?? deniedProblem)(result)));
      }
      return undefined;
    });
    app.addHook("onResponse", async (request: any) => {
      const result: LimitResult | undefined = request[RESULT];
      if (result?.leaseId) await client.release(result.leaseId).catch(() => undefined);
    });
  };
  // Fastify reads this to register the hooks on the parent instance (as `fastify-plugin` does).
  (plugin as unknown as Record<symbol, boolean>)[Symbol.for("skip-override")] = true;
  return plugin;
}
