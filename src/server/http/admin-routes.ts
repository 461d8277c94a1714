import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { InvalidRequestError } from '../../errors.js';
import type { StringLimits } from '../../limiter/string-limits.js';
import type { RateLimitCheck } from '../../limiter/types.js';
import type { AdminAccess, AdminAuth } from './admin-auth.js';
import { jsonToCheck } from './proto-json.js';

/**
 * The admin API and the web console, on the HTTP admin port (README "Admin API and console").
 * Every route declares whether it reads or changes state; {@link AdminAuth} decides who may.
 *
 *   GET    /v1/counters?domain=D&descriptor=k=v,k2=v2   live counters of one descriptor (read)
 *   POST   /v1/counters          the same for each descriptor of a `/json` body (read)
 *   DELETE /v1/counters?domain=D&descriptor=...        resets that descriptor's counters (write)
 *   POST   /v1/counters/reset    resets the counters of each descriptor of a `/json` body (write)
 *   GET    /v1/overrides         tenant overrides in force (read)
 *   PUT    /v1/overrides         sets or changes one (write)
 *   DELETE /v1/overrides         removes one: body or query `domain` and `entries`/`descriptor` (write)
 *   GET    /v1/overrides/audit   the audit list, newest first (read)
 *   GET    /v1/console/traffic   per-rule traffic and the most-denied descriptors (read)
 *   GET    /v1/console/state     backend, breaker, config and overrides state (read)
 *   GET    /                     the console (static files under console/, read)
 *
 * Reading counters never charges them: the limiter's own lookup builds ops with hits 0.
 */
export interface AdminApi {
  counters(check: RateLimitCheck): Promise<unknown>;
  resetCounters(check: RateLimitCheck, who: string): Promise<unknown>;
  overrides(): unknown;
  setOverride(body: unknown, who: string): Promise<unknown>;
  removeOverride(domain: unknown, entries: unknown, who: string): Promise<unknown>;
  audit(): Promise<unknown>;
  traffic(): unknown;
  state(): Promise<unknown>;
}

export interface AdminRoutesOptions {
  readonly api: AdminApi;
  readonly auth: AdminAuth;
  readonly stringLimits?: StringLimits | undefined;
}

/** Most entries a `descriptor=` query may list (the limiter's own bound). */
const MAX_QUERY_ENTRIES = 32;

/** The console's files: name in the URL -> file and media type. Nothing else is served. */
const CONSOLE_FILES: Readonly<Record<string, { file: string; type: string }>> = Object.freeze({
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/console/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/console/app.css': { file: 'app.css', type: 'text/css; charset=utf-8' },
});

/** The read/write guard of a route, as a fastify preHandler; leaves the caller on the request. */
export function adminGuard(auth: AdminAuth, access: AdminAccess) {
  return async (req: FastifyRequest): Promise<void> => {
    const caller = auth.check(access, req.headers.authorization, req.socket.remoteAddress);
    (req as FastifyRequest & { adminWho?: string }).adminWho = caller.who;
  };
}

const whoOf = (req: FastifyRequest): string => (req as FastifyRequest & { adminWho?: string }).adminWho ?? 'unknown';

export function registerAdminRoutes(fastify: FastifyInstance, o: AdminRoutesOptions): void {
  const { api, auth } = o;
  const read = { preHandler: adminGuard(auth, 'read') };
  const write = { preHandler: adminGuard(auth, 'write') };
  const checkOf = (body: unknown): RateLimitCheck => jsonToCheck(parseBody(body), o.stringLimits);
  const queryCheck = (req: FastifyRequest): RateLimitCheck => jsonToCheck(queryDescriptor(req.query), o.stringLimits);

  fastify.get('/v1/counters', read, async (req, reply) => send(reply, 200, await api.counters(queryCheck(req))));
  fastify.post('/v1/counters', read, async (req, reply) => send(reply, 200, await api.counters(checkOf(req.body))));
  fastify.delete('/v1/counters', write, async (req, reply) => send(reply, 200, await api.resetCounters(queryCheck(req), whoOf(req))));
  fastify.post('/v1/counters/reset', write, async (req, reply) => send(reply, 200, await api.resetCounters(checkOf(req.body), whoOf(req))));

  fastify.get('/v1/overrides', read, async (_req, reply) => send(reply, 200, api.overrides()));
  fastify.put('/v1/overrides', write, async (req, reply) => send(reply, 200, await api.setOverride(parseBody(req.body), whoOf(req))));
  fastify.delete('/v1/overrides', write, async (req, reply) => {
    const hasBody = typeof req.body === 'string' && req.body.trim() !== '';
    const target = hasBody ? (parseBody(req.body) as Record<string, unknown>) : queryTarget(req.query);
    return send(reply, 200, await api.removeOverride(target['domain'], target['entries'], whoOf(req)));
  });
  fastify.get('/v1/overrides/audit', read, async (_req, reply) => send(reply, 200, { audit: await api.audit() }));

  fastify.get('/v1/console/traffic', read, async (_req, reply) => send(reply, 200, api.traffic()));
  fastify.get('/v1/console/state', read, async (_req, reply) => send(reply, 200, await api.state()));

  const dir = findConsoleDir();
  for (const [url, { file, type }] of Object.entries(CONSOLE_FILES)) {
    const path = join(dir, file);
    fastify.get(url, read, async (_req, reply) => {
      // Read per request (a few KB, rarely fetched) so the files can be edited without a restart.
      const body = readFileSync(path);
      return reply
        .code(200)
        .type(type)
        .header('cache-control', 'no-cache')
        .header('x-content-type-options', 'nosniff')
        .header('content-security-policy', "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
        .send(body);
    });
  }
}

/** A request body as JSON (bodies are read as text by the app). */
function parseBody(raw: unknown): unknown {
  if (typeof raw !== 'string' || raw.trim() === '') throw new InvalidRequestError('request body is empty; expected JSON');
  try {
    return JSON.parse(raw) as unknown;
  } catch (err) {
    throw new InvalidRequestError(`request body is not valid JSON: ${(err as Error).message}`);
  }
}

/** `domain` and `descriptor=k=v,k2=v2` from a query, as a `/json` body of one descriptor. */
function queryDescriptor(query: unknown): unknown {
  const t = queryTarget(query);
  return { domain: t['domain'], descriptors: [{ entries: t['entries'] }] };
}

function queryTarget(query: unknown): Record<string, unknown> {
  const q = (query ?? {}) as Record<string, unknown>;
  const domain = q['domain'];
  const descriptor = q['descriptor'];
  if (typeof domain !== 'string' || domain === '') throw new InvalidRequestError('query parameter domain is required (once)');
  if (typeof descriptor !== 'string' || descriptor === '')
    throw new InvalidRequestError(
      'query parameter descriptor is required (once), as key=value,key2=value2; values with commas: POST a /json body instead',
    );
  const parts = descriptor.split(',');
  if (parts.length > MAX_QUERY_ENTRIES)
    throw new InvalidRequestError(`descriptor has ${parts.length} entries (at most ${MAX_QUERY_ENTRIES})`);
  const entries = parts.map((p, i) => {
    const eq = p.indexOf('=');
    if (eq <= 0) throw new InvalidRequestError(`descriptor entry ${i + 1} (${JSON.stringify(p.slice(0, 64))}) is not key=value`);
    return { key: p.slice(0, eq), value: p.slice(eq + 1) };
  });
  return { domain, entries };
}

function send(reply: FastifyReply, status: number, body: unknown): FastifyReply {
  return reply.code(status).type('application/json; charset=utf-8').send(JSON.stringify(body));
}

/** `console/` next to package.json (as lua/ is found), so it ships with the package. */
export function findConsoleDir(from: string = dirname(fileURLToPath(import.meta.url))): string {
  let dir = from;
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'console', 'index.html'))) return join(dir, 'console');
    const parent = dirname(dir);
    if (parent === dir)
      throw new Error(`meshlimit: cannot find console/index.html above ${from} (console/ must ship next to package.json)`);
    dir = parent;
  }
}
