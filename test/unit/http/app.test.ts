import { afterEach, describe, expect, it } from 'vitest';
import { BackendUnavailableError, InvalidRequestError } from '../../../src/errors.js';
import { BODY_LIMIT_BYTES, buildHttpApp, type HttpApp, type HttpAppDeps } from '../../../src/server/http/app.js';
import { createLogger } from '../../../src/telemetry/logger.js';
import { METRIC_NAMES, createMetrics } from '../../../src/telemetry/metrics.js';

const apps: HttpApp[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

function build(overrides: Partial<HttpAppDeps> = {}): { app: HttpApp; checked: unknown[]; logLines: string[] } {
  const checked: unknown[] = [];
  const logLines: string[] = [];
  const app = buildHttpApp({
    check: async (body) => {
      checked.push(body);
      return { httpStatus: 200, body: { overallCode: 'OK' } };
    },
    isReady: () => true,
    configDump: () => ({ domains: [] }),
    metrics: { contentType: 'text/plain; version=0.0.4; charset=utf-8', render: async () => '' },
    logger: createLogger({ level: 'info', format: 'json', destination: { write: (l) => void logLines.push(l) } }),
    ...overrides,
  });
  apps.push(app);
  return { app, checked, logLines };
}

const REQUEST = { domain: 'edge', descriptors: [{ entries: [{ key: 'remote_address', value: '10.1.2.3' }] }] };

describe('GET /healthcheck', () => {
  it('answers 200 OK when ready and 500 with no body when not, following isReady on every call', async () => {
    let ready = false;
    const { app } = build({ isReady: () => ready });
    const down = await app.fastify.inject({ method: 'GET', url: '/healthcheck' });
    expect(down.statusCode).toBe(500);
    expect(down.body).toBe('');

    ready = true;
    const up = await app.fastify.inject({ method: 'GET', url: '/healthcheck' });
    expect(up.statusCode).toBe(200);
    expect(up.body).toBe('OK');
    expect(up.headers['content-type']).toBe('text/plain; charset=utf-8');

    ready = false;
    expect((await app.fastify.inject({ method: 'GET', url: '/healthcheck' })).statusCode).toBe(500);
  });

  it('says what healthDetail says (no config from the xDS management server yet), ready or not', async () => {
    let ready = false;
    let detail: string | undefined = 'waiting for the first descriptor config from the xDS management server';
    const { app } = build({ isReady: () => ready, healthDetail: () => detail });
    const get = () => app.fastify.inject({ method: 'GET', url: '/healthcheck' });
    expect(await get()).toMatchObject({ statusCode: 500, body: detail });
    ready = true;
    detail = 'no descriptor config yet';
    expect(await get()).toMatchObject({ statusCode: 200, body: 'OK: no descriptor config yet' });
    detail = undefined;
    expect(await get()).toMatchObject({ statusCode: 200, body: 'OK' });
  });
});

describe('POST /json', () => {
  it('hands the parsed body to check and sends its status and body', async () => {
    const { app, checked } = build();
    const res = await app.fastify.inject({ method: 'POST', url: '/json', payload: REQUEST });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(res.json()).toEqual({ overallCode: 'OK' });
    expect(checked).toEqual([REQUEST]);
  });

  it('passes 429 and 400 answers through unchanged', async () => {
    const over = build({
      check: async () => ({ httpStatus: 429, body: { overallCode: 'OVER_LIMIT', statuses: [{ code: 'OVER_LIMIT' }] } }),
    });
    const r1 = await over.app.fastify.inject({ method: 'POST', url: '/json', payload: REQUEST });
    expect(r1.statusCode).toBe(429);
    expect(r1.json()).toEqual({ overallCode: 'OVER_LIMIT', statuses: [{ code: 'OVER_LIMIT' }] });

    const bad = build({ check: async () => ({ httpStatus: 400, body: { code: 'ML_ERR_INVALID_REQUEST', message: 'domain is empty' } }) });
    const r2 = await bad.app.fastify.inject({ method: 'POST', url: '/json', payload: {} });
    expect(r2.statusCode).toBe(400);
    expect(r2.json()).toEqual({ code: 'ML_ERR_INVALID_REQUEST', message: 'domain is empty' });
  });

  it('parses the body as JSON whatever the Content-Type (curl --data sends form-urlencoded)', async () => {
    const { app, checked } = build();
    for (const contentType of ['application/x-www-form-urlencoded', 'text/plain', 'application/json; charset=utf-8']) {
      const res = await app.fastify.inject({
        method: 'POST',
        url: '/json',
        payload: JSON.stringify(REQUEST),
        headers: { 'content-type': contentType },
      });
      expect(res.statusCode).toBe(200);
    }
    expect(checked).toEqual([REQUEST, REQUEST, REQUEST]);
  });

  it('answers 400 ML_ERR_INVALID_REQUEST to invalid JSON without calling check', async () => {
    const { app, checked } = build();
    const res = await app.fastify.inject({
      method: 'POST',
      url: '/json',
      payload: '{"domain":',
      headers: { 'content-type': 'application/json' },
    });
    expect(res.statusCode).toBe(400);
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(res.json()).toEqual({ code: 'ML_ERR_INVALID_REQUEST', message: 'request body is not valid JSON: Unexpected end of JSON input' });
    expect(checked).toEqual([]);
  });

  it('answers 400 to an empty body', async () => {
    const { app, checked } = build();
    for (const payload of [undefined, '', '   ']) {
      const res = await app.fastify.inject({ method: 'POST', url: '/json', ...(payload === undefined ? {} : { payload }) });
      expect(res.statusCode).toBe(400);
      expect(res.json()).toEqual({ code: 'ML_ERR_INVALID_REQUEST', message: 'request body is empty; expected a JSON RateLimitRequest' });
    }
    expect(checked).toEqual([]);
  });

  it('answers 413 to a body over the limit, and accepts one at the limit', async () => {
    const { app, checked } = build();
    const padded = (size: number) => {
      const base = JSON.stringify({ domain: 'edge', pad: '' });
      return JSON.stringify({ domain: 'edge', pad: 'x'.repeat(size - base.length) });
    };
    const over = await app.fastify.inject({ method: 'POST', url: '/json', payload: padded(BODY_LIMIT_BYTES + 1) });
    expect(over.statusCode).toBe(413);
    expect(over.json()).toEqual({ code: 'ML_ERR_INVALID_REQUEST', message: `request body is larger than ${BODY_LIMIT_BYTES} bytes` });
    expect(checked).toEqual([]);

    const atLimit = await app.fastify.inject({ method: 'POST', url: '/json', payload: padded(BODY_LIMIT_BYTES) });
    expect(atLimit.statusCode).toBe(200);
    expect(checked).toHaveLength(1);
  });

  it('maps a MeshlimitError thrown by check through its httpStatus and code', async () => {
    const unavailable = build({
      check: async () => {
        throw new BackendUnavailableError('redis did not answer within 50 ms');
      },
    });
    const r1 = await unavailable.app.fastify.inject({ method: 'POST', url: '/json', payload: REQUEST });
    expect(r1.statusCode).toBe(503);
    expect(r1.json()).toEqual({ code: 'ML_ERR_BACKEND_UNAVAILABLE', message: 'redis did not answer within 50 ms' });

    const invalid = build({
      check: async () => {
        throw new InvalidRequestError('descriptors[0].entries[0].key is empty');
      },
    });
    const r2 = await invalid.app.fastify.inject({ method: 'POST', url: '/json', payload: REQUEST });
    expect(r2.statusCode).toBe(400);
    expect(r2.json()).toEqual({ code: 'ML_ERR_INVALID_REQUEST', message: 'descriptors[0].entries[0].key is empty' });
  });

  it('answers 500 ML_ERR_INTERNAL to any other error, logs it, and never echoes it or the request', async () => {
    const { app, logLines } = build({
      check: async () => {
        throw new TypeError('cannot read properties of undefined (secret detail)');
      },
    });
    const res = await app.fastify.inject({ method: 'POST', url: '/json', payload: REQUEST });
    expect(res.statusCode).toBe(500);
    expect(res.json()).toEqual({ code: 'ML_ERR_INTERNAL', message: 'internal error' });
    expect(logLines).toHaveLength(1);
    const record = JSON.parse(logLines[0] as string) as { level: number; msg: string; err: { type: string; message: string } };
    expect(record.level).toBe(50);
    expect(record.msg).toBe('unexpected error in HTTP handler');
    expect(record.err.type).toBe('TypeError');
    expect(record.err.message).toBe('cannot read properties of undefined (secret detail)');
    // Descriptor values are never logged.
    expect(logLines[0]).not.toContain('10.1.2.3');
  });

  it('answers 500 when check returns an unusable status', async () => {
    const { app } = build({ check: async () => ({ httpStatus: 42, body: {} }) });
    const res = await app.fastify.inject({ method: 'POST', url: '/json', payload: REQUEST });
    expect(res.statusCode).toBe(500);
    expect(res.json()).toEqual({ code: 'ML_ERR_INTERNAL', message: 'internal error' });
  });

  it('logs nothing for successful requests', async () => {
    const { app, logLines } = build();
    await app.fastify.inject({ method: 'POST', url: '/json', payload: REQUEST });
    await app.fastify.inject({ method: 'GET', url: '/healthcheck' });
    expect(logLines).toEqual([]);
  });
});

describe('GET /rlconfig', () => {
  it('serves the config dump as JSON', async () => {
    const dump = {
      version: 'abc',
      domains: [{ domain: 'edge', descriptors: [{ key: 'remote_address', rate_limit: { unit: 'minute', requests_per_unit: 10 } }] }],
    };
    const { app } = build({ configDump: () => dump });
    const res = await app.fastify.inject({ method: 'GET', url: '/rlconfig' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(res.json()).toEqual(dump);
  });

  it('answers 500 when no dump can be produced', async () => {
    const { app } = build({
      configDump: () => {
        throw new Error('no config loaded');
      },
    });
    const res = await app.fastify.inject({ method: 'GET', url: '/rlconfig' });
    expect(res.statusCode).toBe(500);
    expect(res.json()).toEqual({ code: 'ML_ERR_INTERNAL', message: 'internal error' });
  });
});

describe('GET /metrics', () => {
  it('serves the Prometheus text with its content type', async () => {
    const metrics = createMetrics({ collectDefault: false });
    metrics.configReload(true, { rules: 1, domains: ['edge'] });
    metrics.recordDecision('edge', 'edge.remote_address', 'over_limit');
    metrics.recordDecision('not-configured', undefined, 'no_rule');
    const { app } = build({ metrics });
    const res = await app.fastify.inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
    for (const name of METRIC_NAMES) expect(res.body).toContain(`# TYPE ${name} `);
    expect(res.body).toContain('meshlimit_decisions_total{domain="edge",rule="edge.remote_address",outcome="over_limit"} 1\n');
    expect(res.body).toContain('meshlimit_decisions_total{domain="_unknown_",rule="_none_",outcome="no_rule"} 1\n');
    expect(res.body).not.toContain('not-configured');
  });
});

describe('other routes', () => {
  it('answers 404 to unknown paths and methods', async () => {
    const { app } = build();
    expect((await app.fastify.inject({ method: 'GET', url: '/nope' })).statusCode).toBe(404);
    expect((await app.fastify.inject({ method: 'GET', url: '/json' })).statusCode).toBe(404);
  });
});
