import { afterEach, describe, expect, it } from 'vitest';
import { createAdminAuth } from '../../../src/server/http/admin-auth.js';
import type { AdminApi } from '../../../src/server/http/admin-routes.js';
import { buildHttpApp, type HttpApp } from '../../../src/server/http/app.js';

/**
 * Admin security, per endpoint, through the real fastify app (inject, no socket): mutations are
 * refused without a configured token (403 ML_ERR_ADMIN_DISABLED naming the settings) and without
 * or with a wrong `Authorization: Bearer` (401 ML_ERR_UNAUTHORIZED); a refused call never reaches
 * the API. Reads are open by default and need the token with ADMIN_READ_REQUIRES_TOKEN.
 */
const TOKEN = 'correct-horse-battery-staple-42';
const apps: HttpApp[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

function build(token: string | undefined, readRequiresToken = false): { app: HttpApp; calls: string[] } {
  const calls: string[] = [];
  const record =
    (name: string, value: unknown = { ok: true }) =>
    async () => {
      calls.push(name);
      return value;
    };
  const api: AdminApi = {
    counters: record('counters'),
    resetCounters: record('resetCounters'),
    overrides: () => (calls.push('overrides'), { overrides: [] }),
    setOverride: record('setOverride'),
    removeOverride: record('removeOverride'),
    audit: record('audit', []),
    traffic: () => (calls.push('traffic'), {}),
    state: record('state'),
  };
  const app = buildHttpApp({
    check: async () => ({ httpStatus: 200, body: {} }),
    isReady: () => true,
    configDump: () => (calls.push('rlconfig'), { domains: [] }),
    explain: async () => (calls.push('explain'), {}),
    metrics: { contentType: 'text/plain', render: async () => '' },
    admin: { api, auth: createAdminAuth({ token, readRequiresToken }) },
  });
  apps.push(app);
  return { app, calls };
}

const Q = '?domain=edge&descriptor=company_id=42';
const JSON_BODY = JSON.stringify({ domain: 'edge', descriptors: [{ entries: [{ key: 'company_id', value: '42' }] }] });
const OVERRIDE = JSON.stringify({
  domain: 'edge',
  entries: [{ key: 'company_id', value: '42' }],
  rate_limit: { unit: 'minute', requests_per_unit: 5 },
});
const TARGET = JSON.stringify({ domain: 'edge', entries: [{ key: 'company_id', value: '42' }] });

type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';
const MUTATIONS: [Method, string, string | undefined, string][] = [
  ['DELETE', `/v1/counters${Q}`, undefined, 'resetCounters'],
  ['POST', '/v1/counters/reset', JSON_BODY, 'resetCounters'],
  ['PUT', '/v1/overrides', OVERRIDE, 'setOverride'],
  ['DELETE', '/v1/overrides', TARGET, 'removeOverride'],
];
const READS: [Method, string, string | undefined, string][] = [
  ['GET', '/rlconfig', undefined, 'rlconfig'],
  ['POST', '/v1/explain', JSON_BODY, 'explain'],
  ['GET', `/v1/counters${Q}`, undefined, 'counters'],
  ['POST', '/v1/counters', JSON_BODY, 'counters'],
  ['GET', '/v1/overrides', undefined, 'overrides'],
  ['GET', '/v1/overrides/audit', undefined, 'audit'],
  ['GET', '/v1/console/traffic', undefined, 'traffic'],
  ['GET', '/v1/console/state', undefined, 'state'],
  ['GET', '/', undefined, ''],
  ['GET', '/console/app.js', undefined, ''],
  ['GET', '/console/app.css', undefined, ''],
];

const send = (app: HttpApp, method: Method, url: string, payload: string | undefined, authorization?: string) =>
  app.fastify.inject({ method, url, ...(payload === undefined ? {} : { payload }), headers: authorization ? { authorization } : {} });

describe('admin mutations', () => {
  it.each(MUTATIONS)('%s %s is refused with 403 ML_ERR_ADMIN_DISABLED when no token is configured', async (method, url, payload) => {
    const { app, calls } = build(undefined);
    const res = await send(app, method, url, payload, `Bearer ${TOKEN}`);
    expect(res.statusCode).toBe(403);
    expect(res.json()).toEqual({ code: 'ML_ERR_ADMIN_DISABLED', message: expect.stringContaining('set ADMIN_TOKEN or ADMIN_TOKEN_FILE') });
    expect(calls).toEqual([]);
  });

  it.each(MUTATIONS)('%s %s without the token is 401 ML_ERR_UNAUTHORIZED, with WWW-Authenticate', async (method, url, payload) => {
    const { app, calls } = build(TOKEN);
    const res = await send(app, method, url, payload);
    expect(res.statusCode).toBe(401);
    expect(res.headers['www-authenticate']).toBe('Bearer realm="meshlimit-admin"');
    expect(res.json()).toEqual({ code: 'ML_ERR_UNAUTHORIZED', message: expect.stringContaining('Authorization: Bearer') });
    expect(calls).toEqual([]);
  });

  it.each(MUTATIONS)('%s %s with a wrong token (or another scheme) is 401', async (method, url, payload) => {
    const { app, calls } = build(TOKEN);
    for (const header of [`Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(0, -1)}`, `Basic ${TOKEN}`, 'Bearer']) {
      const res = await send(app, method, url, payload, header);
      expect(res.statusCode, header).toBe(401);
      expect(res.json().code).toBe('ML_ERR_UNAUTHORIZED');
    }
    expect(calls).toEqual([]);
  });

  it.each(MUTATIONS)('%s %s with the token reaches the API', async (method, url, payload, call) => {
    const { app, calls } = build(TOKEN);
    const res = await send(app, method, url, payload, `Bearer ${TOKEN}`);
    expect(res.statusCode).toBe(200);
    expect(calls).toEqual([call]);
  });
});

describe('admin reads', () => {
  it.each(READS)('%s %s is open by default, token or not', async (method, url, payload, call) => {
    for (const token of [undefined, TOKEN]) {
      const { app, calls } = build(token);
      const res = await send(app, method, url, payload);
      expect(res.statusCode, `${url} with token ${String(token !== undefined)}`).toBe(200);
      if (call !== '') expect(calls).toEqual([call]);
    }
  });

  it.each(READS)('%s %s needs the token with ADMIN_READ_REQUIRES_TOKEN', async (method, url, payload, call) => {
    const { app, calls } = build(TOKEN, true);
    const refused = await send(app, method, url, payload);
    expect(refused.statusCode).toBe(401);
    expect(refused.json()).toEqual({ code: 'ML_ERR_UNAUTHORIZED', message: expect.stringContaining('ADMIN_READ_REQUIRES_TOKEN') });
    expect(calls).toEqual([]);
    const allowed = await send(app, method, url, payload, `Bearer ${TOKEN}`);
    expect(allowed.statusCode).toBe(200);
    if (call !== '') expect(calls).toEqual([call]);
  });

  it('serves the console as static files with a strict content security policy, and nothing else under /console', async () => {
    const { app } = build(undefined);
    const page = await send(app, 'GET', '/', undefined);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['content-security-policy']).toContain("default-src 'self'");
    expect(page.body).toContain('<script src="/console/app.js"');
    const other = await send(app, 'GET', '/console/../package.json', undefined);
    expect(other.statusCode).toBe(404);
    expect(other.json().code).toBe('ML_ERR_NOT_FOUND');
  });

  it('/json, /healthcheck and /metrics stay open whatever ADMIN_READ_REQUIRES_TOKEN says', async () => {
    const { app } = build(TOKEN, true);
    expect((await send(app, 'POST', '/json', JSON_BODY)).statusCode).toBe(200);
    expect((await send(app, 'GET', '/healthcheck', undefined)).statusCode).toBe(200);
    expect((await send(app, 'GET', '/metrics', undefined)).statusCode).toBe(200);
  });
});

describe('admin request bounds', () => {
  it('refuses a descriptor query over 32 entries, an entry without "=", and a body that is not JSON, naming what is wrong', async () => {
    const { app, calls } = build(TOKEN);
    const many = Array.from({ length: 33 }, (_, i) => `k${i}=v`).join(',');
    const tooMany = await send(app, 'GET', `/v1/counters?domain=edge&descriptor=${many}`, undefined);
    expect(tooMany.statusCode).toBe(400);
    expect(tooMany.json()).toEqual({ code: 'ML_ERR_INVALID_REQUEST', message: 'descriptor has 33 entries (at most 32)' });
    const noEq = await send(app, 'GET', '/v1/counters?domain=edge&descriptor=a=1,b', undefined);
    expect(noEq.json().message).toBe('descriptor entry 2 ("b") is not key=value');
    const notJson = await send(app, 'PUT', '/v1/overrides', '{nope', `Bearer ${TOKEN}`);
    expect(notJson.statusCode).toBe(400);
    expect(notJson.json().message).toMatch(/^request body is not valid JSON/);
    expect(calls).toEqual([]);
  });
});

describe('createAdminAuth', () => {
  it('names the caller by a fingerprint of the token (never the token) and the peer address', () => {
    const who = createAdminAuth({ token: TOKEN, readRequiresToken: false }).check('write', `Bearer ${TOKEN}`, '10.0.0.7').who;
    expect(who).toMatch(/^token:[0-9a-f]{8}@10\.0\.0\.7$/);
    expect(who).not.toContain(TOKEN);
  });
});
