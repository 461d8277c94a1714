import type { Server as HttpsServer } from 'node:https';
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import { isMeshlimitError } from '../../errors.js';
import type { Logger } from '../../telemetry/logger.js';
import { adminGuard, registerAdminRoutes, type AdminRoutesOptions } from './admin-routes.js';
import type { AdminHttps } from './tls.js';

/**
 * The HTTP admin app (fastify), with envoyproxy/ratelimit's HTTP endpoints:
 *
 * - `GET /healthcheck`: `200 OK` (text) when ready, `500` otherwise, as envoyproxy/ratelimit;
 *   when `deps.healthDetail` has something to say (a Redis not connected and why, no config from
 *   the xDS management server yet), the body says it: `OK: <detail>`, or the detail alone with
 *   500 (empty only when there is nothing to say).
 * - `POST /json`: the HTTP twin of ShouldRateLimit. The body is parsed as JSON whatever its
 *   Content-Type (envoyproxy/ratelimit's documented `curl --data` sends form-urlencoded), then
 *   handed to `deps.check`, whose status and body are sent as they are (200 OK, 429 OVER_LIMIT,
 *   400 bad request: the JSON adapter decides).
 * - `GET /rlconfig`: the loaded config. envoyproxy/ratelimit serves it as text on its debug port
 *   (6070); meshlimit has no debug port and serves `deps.configDump()` as JSON on this port.
 * - `GET /metrics`: Prometheus text exposition.
 * - `POST /v1/explain`: which rule a `/json` body would match and what it would be answered,
 *   charging nothing (`deps.explain`; JSON contract in src/server/explain/explain-json.ts).
 *
 * Errors: a body that is not JSON gives `400 {code: 'ML_ERR_INVALID_REQUEST', message}`; a body
 * over {@link BODY_LIMIT_BYTES} gives 413 with the same code; a {@link MeshlimitError} gives its
 * `httpStatus` and `{code, message}`; anything else is logged and gives
 * `500 {code: 'ML_ERR_INTERNAL', message: 'internal error'}` (the cause is never sent).
 *
 * Requests are not logged (fastify's request logging is off): `/json` is a hot path and its
 * bodies carry descriptor values.
 */

/** Largest accepted request body. A RateLimitRequest is a few hundred bytes; 1 MiB is generous. */
export const BODY_LIMIT_BYTES = 1024 * 1024;

export interface CheckResult {
  readonly httpStatus: number;
  readonly body: unknown;
}

export interface HttpAppDeps {
  /** Decides a parsed `/json` body; may throw a MeshlimitError (mapped by its httpStatus). */
  readonly check: (body: unknown) => Promise<CheckResult>;
  /** Readiness for `/healthcheck`: config loaded, backend usable, not shutting down. */
  readonly isReady: () => boolean;
  /** A sentence `/healthcheck` adds to its body; undefined when there is nothing to say. */
  readonly healthDetail?: (() => string | undefined) | undefined;
  /** A JSON-serialisable view of the loaded config for `/rlconfig`. */
  readonly configDump: () => unknown;
  readonly metrics: { readonly contentType: string; render(): Promise<string> };
  /**
   * A `/json` request refused before `check` saw it (empty body, not JSON, larger than
   * {@link BODY_LIMIT_BYTES}): counted as `check`'s own failures are, so `/json` is counted like
   * gRPC whatever goes wrong.
   */
  readonly onRejected?: (() => void) | undefined;
  /** `POST /v1/explain`: a parsed `/json`-shaped body in, the explanation out (may throw a MeshlimitError). Absent: 404. */
  readonly explain?: ((body: unknown) => Promise<unknown>) | undefined;
  /** Receives unexpected errors (never request bodies). Silent when absent. */
  readonly logger?: Logger | undefined;
  /** The admin API and console (./admin-routes.ts); its auth also guards `/rlconfig`. Absent: neither is served. */
  readonly admin?: AdminRoutesOptions | undefined;
  /** ADMIN_TLS_*: serve HTTPS with these files (re-read while serving). Absent: plaintext. */
  readonly https?: AdminHttps | undefined;
}

/** The admin app and its lifecycle. */
export interface HttpApp {
  /** The fastify instance; tests call `fastify.inject()` without a socket. */
  readonly fastify: FastifyInstance;
  /** Binds and starts serving; resolves with the bound address (port 0 picks a free port). */
  listen(host: string, port: number): Promise<{ host: string; port: number }>;
  /** Stops accepting connections, closes idle keep-alive ones, waits for in-flight requests. */
  close(): Promise<void>;
}

const INTERNAL_BODY = Object.freeze({ code: 'ML_ERR_INTERNAL', message: 'internal error' });

export function buildHttpApp(deps: HttpAppDeps): HttpApp {
  const logger = deps.logger;
  // With HTTPS the instance is fastify's https flavour; the routes and inject() are the same.
  const fastify = Fastify({
    ...(deps.https === undefined ? {} : { https: deps.https.options }),
    bodyLimit: BODY_LIMIT_BYTES,
    logController: new LogController({ disableRequestLogging: true }),
    // fastify's own info lines ("Server listening at ...", one per address) would repeat
    // lifecycle's one "meshlimit serving" line: it logs warnings and errors only.
    ...(logger
      ? { loggerInstance: (logger.levelVal >= 40 ? logger : logger.child({}, { level: 'warn' })) as FastifyBaseLogger }
      : { logger: false }),
  }) as unknown as FastifyInstance;
  let unfollow: (() => void) | undefined;

  // Every Content-Type is read as text; `/json` parses it itself so the error is ours and the
  // media type does not matter (see module doc). GET routes never read a body.
  fastify.removeAllContentTypeParsers();
  fastify.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));

  fastify.setErrorHandler(errorHandler(deps));

  fastify.get('/healthcheck', async (_req, reply) => {
    const detail = deps.healthDetail?.();
    if (deps.isReady())
      return reply
        .code(200)
        .type('text/plain; charset=utf-8')
        .send(detail === undefined ? 'OK' : `OK: ${detail}`);
    if (detail === undefined) return reply.code(500).send();
    return reply.code(500).type('text/plain; charset=utf-8').send(detail);
  });

  fastify.post('/json', async (req, reply) => {
    const body = parseBody(req.body);
    if (!body.ok) {
      deps.onRejected?.();
      return sendJson(reply, 400, { code: 'ML_ERR_INVALID_REQUEST', message: body.message });
    }
    const result = await deps.check(body.value);
    return sendJson(reply, result.httpStatus, result.body);
  });

  const guarded = deps.admin === undefined ? {} : { preHandler: adminGuard(deps.admin.auth, 'read') };
  const explain = deps.explain;
  if (explain !== undefined)
    fastify.post('/v1/explain', guarded, async (req, reply) => {
      const body = parseBody(req.body);
      if (!body.ok) return sendJson(reply, 400, { code: 'ML_ERR_INVALID_REQUEST', message: body.message });
      return sendJson(reply, 200, await explain(body.value));
    });

  fastify.get('/rlconfig', guarded, async (_req, reply) => sendJson(reply, 200, deps.configDump()));
  if (deps.admin !== undefined) registerAdminRoutes(fastify, deps.admin);
  fastify.setNotFoundHandler(notFound);

  fastify.get('/metrics', async (_req, reply) =>
    reply
      .code(200)
      .type(deps.metrics.contentType)
      .send(await deps.metrics.render()),
  );

  return {
    fastify,
    async listen(host, port) {
      await fastify.listen({ host, port });
      unfollow ??= deps.https?.follow(fastify.server as unknown as HttpsServer);
      const address = fastify.server.address();
      if (address === null || typeof address === 'string') return { host, port };
      return { host: address.address, port: address.port };
    },
    close: () => {
      unfollow?.();
      return fastify.close();
    },
  };
}

/** Errors as `{code, message}`: a MeshlimitError by its status, fastify's 4xx as invalid requests, anything else as 500. */
function errorHandler(deps: HttpAppDeps) {
  return (err: FastifyError, req: FastifyRequest, reply: FastifyReply): FastifyReply => {
    if (err.code === 'ML_ERR_UNAUTHORIZED') void reply.header('www-authenticate', 'Bearer realm="meshlimit-admin"');
    if (isMeshlimitError(err)) return sendJson(reply, err.httpStatus, { code: err.code, message: err.message });
    // fastify's own client errors (body too large, bad framing): a 4xx with a safe message.
    const status = err.statusCode;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      if (req.routeOptions.url === '/json') deps.onRejected?.();
      const message = err.code === 'FST_ERR_CTP_BODY_TOO_LARGE' ? `request body is larger than ${BODY_LIMIT_BYTES} bytes` : err.message;
      return sendJson(reply, status, { code: 'ML_ERR_INVALID_REQUEST', message });
    }
    deps.logger?.error({ err }, 'unexpected error in HTTP handler');
    return sendJson(reply, 500, INTERNAL_BODY);
  };
}

/** Unknown routes answer like every other error: `{code, message}` (the path only, never the query). */
function notFound(req: FastifyRequest, reply: FastifyReply): FastifyReply {
  return sendJson(reply, 404, { code: 'ML_ERR_NOT_FOUND', message: `no route ${req.method} ${req.url.split('?')[0]!.slice(0, 200)}` });
}

/**
 * A RateLimitRequest body as JSON. Plain JSON.parse: a "__proto__" key becomes an own property,
 * never the prototype, and the JSON adapter validates the shape.
 */
function parseBody(raw: unknown): { ok: true; value: unknown } | { ok: false; message: string } {
  if (typeof raw !== 'string' || raw.trim() === '')
    return { ok: false, message: 'request body is empty; expected a JSON RateLimitRequest' };
  try {
    return { ok: true, value: JSON.parse(raw) };
  } catch (err) {
    return { ok: false, message: `request body is not valid JSON: ${(err as Error).message}` };
  }
}

/** Sends a value as JSON with an explicit status (serialised here, so strings stay JSON too). */
function sendJson(reply: FastifyReply, status: number, body: unknown): FastifyReply {
  const payload = JSON.stringify(body);
  if (!Number.isInteger(status) || status < 100 || status > 599 || payload === undefined) {
    throw new Error(`invalid HTTP response from handler (status ${String(status)})`);
  }
  return reply.code(status).type('application/json; charset=utf-8').send(payload);
}
