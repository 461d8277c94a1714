import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDemoStack, TEMPLATE_JWKS_URL, type DemoStack } from '../../src/sample/demo/stack.js';
import { DEMO_AUDIENCE, DEMO_ISSUER } from '../../src/sample/user-service/data.js';
import { startRedis, type RedisInstance } from '../support/redis.js';
import { bootService } from '../support/service.js';
import { unsignedToken } from '../unit/resolve/tokens.js';

/**
 * End to end, over HTTP: the sample user service (fastify + jose) behind the gateway stand-in,
 * meshlimit with descriptor resolution on a real Redis, real ES256 tokens from the service's
 * login endpoint, verified by meshlimit against the service's JWKS over HTTP.
 *
 * The counter clock is fixed (exact counts; no window can roll over mid-test); tokens carry real
 * times, since the user service and the resolver use the wall clock.
 */
const EDGE = `domain: edge
resolution:
  jwt:
    issuer: ${DEMO_ISSUER}
    audience: ${DEMO_AUDIENCE}
    algorithms: [ES256]
    jwks_url: ${TEMPLATE_JWKS_URL}
    jwks_timeout_ms: 3000
descriptors:
  - key: company_id
    rate_limit: { unit: minute, requests_per_unit: 10 }
  - key: remote_address
    rate_limit: { unit: minute, requests_per_unit: 3 }
    descriptors:
      - key: path
        value: /login
        rate_limit: { unit: minute, requests_per_unit: 20 }
`;
const USERS_APP = `domain: users-app
descriptors:
  - key: company_id
    descriptors:
      - key: operation
        value: report
        rate_limit: { unit: minute, requests_per_unit: 2 }
`;
const T0 = 1_800_000_000_000;

let redis: RedisInstance;
let stack: DemoStack;

beforeAll(async () => {
  redis = await startRedis();
  stack = await startDemoStack({
    config: { files: { 'edge.yaml': EDGE, 'users-app.yaml': USERS_APP } },
    meshlimitEnv: { BACKEND_TYPE: 'redis', REDIS_URL: `127.0.0.1:${redis.port}`, LOG_LEVEL: 'fatal' },
    now: () => T0,
  });
});
afterAll(async () => {
  await stack?.close();
  await redis?.stop();
});

interface Res {
  status: number;
  body: unknown;
  headers: Headers;
}
async function call(method: string, path: string, opts: { token?: string; ip: string; body?: unknown }): Promise<Res> {
  const headers: Record<string, string> = { 'x-forwarded-for': opts.ip };
  if (opts.token !== undefined) headers['authorization'] = `Bearer ${opts.token}`;
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${stack.gatewayUrl}${path}`, {
    method,
    headers,
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers };
}
async function login(username: string, ip: string): Promise<string> {
  const r = await call('POST', '/login', { ip, body: { username, password: 'demo' } });
  expect(r.status).toBe(200);
  return (r.body as { access_token: string }).access_token;
}

describe('user service + meshlimit (Redis) + gateway, over HTTP', () => {
  let acme: string;
  let globex: string;

  it('logs in two companies through the gateway', async () => {
    acme = await login('alice@acme.example', '198.51.100.1');
    globex = await login('carol@globex.example', '198.51.100.2');
    expect((await call('POST', '/login', { ip: '198.51.100.3', body: { username: 'alice@acme.example', password: 'nope' } })).status).toBe(
      401,
    );
  });

  it('the company over its limit gets 429s, the other company keeps getting 200s', async () => {
    const acmeStatuses: number[] = [];
    for (let i = 0; i < 12; i++) acmeStatuses.push((await call('GET', '/users', { token: acme, ip: `198.51.100.${10 + (i % 3)}` })).status);
    expect(acmeStatuses).toEqual([...Array(10).fill(200), 429, 429]);
    const over = await call('GET', '/users', { token: acme, ip: '198.51.100.10' });
    expect(over.status).toBe(429);
    expect(over.headers.get('x-envoy-ratelimited')).toBe('true');
    expect(over.headers.get('ratelimit-remaining')).toBe('0');

    const globexStatuses: number[] = [];
    for (let i = 0; i < 3; i++) globexStatuses.push((await call('GET', '/users', { token: globex, ip: '198.51.100.10' })).status);
    expect(globexStatuses).toEqual([200, 200, 200]);
    const ok = await call('GET', '/users', { token: globex, ip: '198.51.100.10' });
    expect(ok.body).toEqual({
      company_id: 'globex',
      users: [
        { id: 'u-3', name: 'Carol Chen', email: 'carol@globex.example' },
        { id: 'u-4', name: 'Dan Diaz', email: 'dan@globex.example' },
      ],
    });
    expect(ok.headers.get('ratelimit-limit')).toBe('10');
  });

  it("a forged token claiming globex is limited by its IP, and globex's quota is untouched", async () => {
    const forged = unsignedToken({
      company_id: 'globex',
      sub: 'u-3',
      iss: DEMO_ISSUER,
      aud: DEMO_AUDIENCE,
      exp: Math.floor(Date.now() / 1000) + 600,
    });
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await call('GET', '/users', { token: forged, ip: '203.0.113.9' })).status);
    // 3 per minute for the IP: the gateway lets three through (the service rejects the token), then 429.
    expect(statuses).toEqual([401, 401, 401, 429, 429]);
    // A tampered real token is the same story, from its own IP.
    const [h, , s] = acme.split('.');
    const tampered = `${h}.${Buffer.from(JSON.stringify({ company_id: 'globex', sub: 'u-1', iss: DEMO_ISSUER, aud: DEMO_AUDIENCE, exp: 4_000_000_000 })).toString('base64url')}.${s}`;
    const t: number[] = [];
    for (let i = 0; i < 4; i++) t.push((await call('GET', '/users', { token: tampered, ip: '203.0.113.10' })).status);
    expect(t).toEqual([401, 401, 401, 429]);
    // globex used 5 of 10 so far (3 + 1 above, and this one).
    const g = await call('GET', '/users', { token: globex, ip: '198.51.100.20' });
    expect(g.status).toBe(200);
    expect(g.headers.get('ratelimit-remaining')).toBe('5');
  });

  it('without a token: the IP fallback', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await call('GET', '/users', { ip: '192.0.2.77' })).status);
    expect(statuses).toEqual([401, 401, 401, 429]);
    expect((await call('GET', '/users', { ip: '192.0.2.78' })).status).toBe(401); // another IP has its own quota
  });

  it('app-level limits: the service asks meshlimit itself (POST /reports, 2 per company per minute)', async () => {
    const erin = await login('dan@globex.example', '198.51.100.30'); // another globex user: same company quota
    const r1 = await call('POST', '/reports', { token: globex, ip: '198.51.100.31' });
    const r2 = await call('POST', '/reports', { token: erin, ip: '198.51.100.32' });
    const r3 = await call('POST', '/reports', { token: globex, ip: '198.51.100.31' });
    expect([r1.status, r2.status, r3.status]).toEqual([202, 202, 429]);
    expect(r3.headers.get('x-envoy-ratelimited')).toBeNull(); // this 429 is the service's own
    expect(r3.headers.get('retry-after')).toBe('60');
    expect(r3.body).toEqual({ error: 'report quota exceeded for your company', retry_after_seconds: 60 });
  });

  it('the HTTP /json endpoint resolves tokens the same way as gRPC', async () => {
    const ask = async (token: string, ip: string) => {
      const res = await fetch(`${stack.meshlimitHttpUrl}/json`, {
        method: 'POST',
        body: JSON.stringify({
          domain: 'edge',
          descriptors: [
            {
              entries: [
                { key: 'authorization', value: `Bearer ${token}` },
                { key: 'remote_address', value: ip },
              ],
            },
          ],
        }),
      });
      return { status: res.status, body: (await res.json()) as { statuses: { currentLimit: { requestsPerUnit: number } }[] } };
    };
    const acmeAnswer = await ask(acme, '198.51.100.40'); // acme is over its company limit
    expect(acmeAnswer.status).toBe(429);
    expect(acmeAnswer.body.statuses[0]!.currentLimit.requestsPerUnit).toBe(10);
    const forged = await ask(acme.slice(0, -4) + 'AAAA', '198.51.100.40'); // broken signature: limited by IP (3/min)
    expect(forged.status).toBe(200);
    expect(forged.body.statuses[0]!.currentLimit.requestsPerUnit).toBe(3);
  });

  it('tokens never reach counter keys or metric labels; resolutions are counted by outcome', async () => {
    const keys = await redis.client().keys('*');
    expect(keys.length).toBeGreaterThan(0);
    const metrics = await (await fetch(`${stack.meshlimitHttpUrl}/metrics`)).text();
    for (const token of [acme, globex]) {
      for (const part of token.split('.')) {
        expect(keys.join('\n')).not.toContain(part);
        expect(metrics).not.toContain(part);
      }
    }
    const count = (outcome: string): number =>
      Number(new RegExp(`meshlimit_resolutions_total\\{domain="edge",outcome="${outcome}"\\} (\\d+)`).exec(metrics)?.[1] ?? 'NaN');
    // Two descriptors carry the token per request (per caller, per caller and path).
    expect(count('verified')).toBe(2 * (12 + 1 + 3 + 1 + 1 + 3) + 1);
    expect(count('fallback_invalid')).toBe(2 * (5 + 4) + 1);
    expect(count('fallback_missing')).toBe(2 * (3 + 1 + 4 + 1));
    expect(metrics).toMatch(/meshlimit_jwks_refreshes_total\{domain="edge",outcome="success"\} 1\n/);
    expect(metrics).toMatch(/meshlimit_resolution_cache_lookups_total\{domain="edge",outcome="hit"\} \d+/);
  });
});

describe('start-up with an HS256 resolution domain', () => {
  const HS = `domain: hs
resolution:
  jwt:
    issuer: ${DEMO_ISSUER}
    audience: ${DEMO_AUDIENCE}
    hs256_secret_env: MESHLIMIT_E2E_HS_SECRET
descriptors:
  - key: company_id
    rate_limit: { unit: minute, requests_per_unit: 1 }
  - key: remote_address
    rate_limit: { unit: minute, requests_per_unit: 5 }
`;

  it('refuses to start when the secret variable is not set, naming the file and field', async () => {
    delete process.env['MESHLIMIT_E2E_HS_SECRET'];
    const dir = mkdtempSync(path.join(tmpdir(), 'meshlimit-hs-'));
    try {
      await expect(bootService({ configDir: dir, files: { 'hs.yaml': HS } })).rejects.toThrow(
        `${path.join(dir, 'hs.yaml')}: resolution.jwt.hs256_secret_env: environment variable MESHLIMIT_E2E_HS_SECRET is not set`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('with the secret set, gRPC callers are limited per verified company', async () => {
    const secret = 'e2e-shared-secret-of-at-least-32-bytes!!';
    process.env['MESHLIMIT_E2E_HS_SECRET'] = secret;
    const svc = await bootService({ files: { 'hs.yaml': HS }, now: () => T0 });
    try {
      const key = new TextEncoder().encode(secret);
      const token = (company: string) =>
        new SignJWT({ company_id: company })
          .setProtectedHeader({ alg: 'HS256' })
          .setIssuer(DEMO_ISSUER)
          .setAudience(DEMO_AUDIENCE)
          .setExpirationTime('10m')
          .sign(key);
      const ask = async (t: string) =>
        (
          await svc.client.shouldRateLimit({
            domain: 'hs',
            descriptors: [
              {
                entries: [
                  { key: 'authorization', value: `Bearer ${t}` },
                  { key: 'remote_address', value: '10.0.0.1' },
                ],
              },
            ],
          })
        ).statuses[0]!;
      const a = await token('acme');
      expect((await ask(a)).code).toBe('OK');
      expect((await ask(a)).code).toBe('OVER_LIMIT');
      expect((await ask(await token('globex'))).code).toBe('OK');
      const other = await ask('eyJhbGciOiJIUzI1NiJ9.eyJjb21wYW55X2lkIjoiZ2xvYmV4In0.c2lnbmF0dXJl');
      expect([other.code, other.currentLimit?.requestsPerUnit]).toEqual(['OK', 5]);
    } finally {
      await svc.close();
      delete process.env['MESHLIMIT_E2E_HS_SECRET'];
    }
  });
});
