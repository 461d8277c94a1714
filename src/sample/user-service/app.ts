import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { RateLimitGuard } from '../rate-limit-guard.js';
import { DEMO_PASSWORD, findUser, usersOf } from './data.js';
import type { TokenIssuer } from './token-issuer.js';

/**
 * The sample JWT-authenticated user service (fastify + jose), the kind of service meshlimit
 * protects:
 *
 * - `POST /login` `{username, password}` -> `{access_token, token_type: 'Bearer', expires_in, company_id}`
 *   (401 for wrong credentials). Tokens are ES256 JWTs with `company_id`, `sub`, `iss`, `aud`, `exp`.
 * - `GET /.well-known/jwks.json`: the public keys (meshlimit's `jwks_url`).
 * - `GET /users`, `GET /users/:id`: the caller's company's users; a valid bearer token required
 *   (401 otherwise; another company's user is 404, never leaked).
 * - `POST /reports`: an expensive operation with an *app-level* limit: the service asks meshlimit
 *   itself (domain `appDomain`, descriptor `[(company_id, <company>), (operation, report)]`)
 *   through {@link RateLimitGuard}; 429 with `Retry-After` when over. Without a guard, unlimited.
 * - `GET /healthz`.
 *
 * The edge limits (per company, else per IP) are not applied here: the gateway in front asks
 * meshlimit before the request arrives (see src/sample/gateway).
 */
export interface UserServiceOptions {
  readonly issuer: TokenIssuer;
  /**
   * App-level limits through meshlimit; absent (or a getter answering undefined) = `/reports`
   * is not limited. A getter lets meshlimit be attached after the service started.
   */
  readonly guard?: RateLimitGuard | (() => RateLimitGuard | undefined) | undefined;
}

interface Caller {
  readonly sub: string;
  readonly companyId: string;
}

export function buildUserService(opts: UserServiceOptions): FastifyInstance {
  const app = Fastify({ logger: false });
  const { issuer } = opts;
  const guardOf = (): RateLimitGuard | undefined => (typeof opts.guard === 'function' ? opts.guard() : opts.guard);
  // The authenticated caller per request (a WeakMap rather than a fastify type augmentation, so
  // the sample does not change the request type of every fastify app in the program).
  const callers = new WeakMap<FastifyRequest, Caller>();
  const callerOf = (req: FastifyRequest): Caller => callers.get(req)!;

  const authenticate = async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const header = req.headers.authorization ?? '';
    const m = /^Bearer +(\S+)$/i.exec(header);
    const payload = m ? await issuer.verify(m[1]!) : undefined;
    const companyId = payload?.['company_id'];
    if (payload === undefined || typeof companyId !== 'string' || typeof payload.sub !== 'string') {
      await reply.code(401).header('www-authenticate', 'Bearer').send({ error: 'invalid or missing token' });
      return;
    }
    callers.set(req, { sub: payload.sub, companyId });
  };

  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/.well-known/jwks.json', async (_req, reply) => {
    await reply.header('cache-control', 'public, max-age=60').type('application/jwk-set+json').send(issuer.jwks());
  });

  app.post('/login', async (req, reply) => {
    const body = (req.body ?? {}) as { username?: unknown; password?: unknown };
    const user = typeof body.username === 'string' ? findUser(body.username) : undefined;
    if (user === undefined || body.password !== DEMO_PASSWORD) {
      return reply.code(401).send({ error: 'wrong username or password' });
    }
    const { token, expiresIn } = await issuer.issue({ sub: user.id, companyId: user.companyId });
    return { access_token: token, token_type: 'Bearer', expires_in: expiresIn, company_id: user.companyId };
  });

  app.get('/users', { preHandler: authenticate }, async (req) => {
    const c = callerOf(req);
    return { company_id: c.companyId, users: usersOf(c.companyId).map(({ id, name, username }) => ({ id, name, email: username })) };
  });

  app.get<{ Params: { id: string } }>('/users/:id', { preHandler: authenticate }, async (req, reply) => {
    const u = usersOf(callerOf(req).companyId).find((x) => x.id === req.params.id);
    if (u === undefined) return reply.code(404).send({ error: 'no such user' });
    return { id: u.id, name: u.name, email: u.username };
  });

  app.post('/reports', { preHandler: authenticate }, async (req, reply) => {
    const c = callerOf(req);
    const guard = guardOf();
    if (guard !== undefined) {
      const d = await guard.check([
        [
          ['company_id', c.companyId],
          ['operation', 'report'],
        ],
      ]);
      void reply.headers(d.headers);
      if (!d.allowed)
        return reply
          .code(429)
          .send({ error: 'report quota exceeded for your company', retry_after_seconds: Number(d.headers['Retry-After'] ?? '1') });
    }
    return reply.code(202).send({ report_id: randomUUID(), company_id: c.companyId, status: 'queued' });
  });

  return app;
}
