import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedisCluster, type RedisCluster } from '../support/redis-cluster.js';
import { startRedis, type RedisInstance } from '../support/redis.js';
import { spawnService, type ServiceProcess } from '../support/service-process.js';
import { bootService, eventually, type BootedService } from '../support/service.js';

/**
 * The admin API against real stores: memory, a real Redis and a real Redis Cluster (3 primaries).
 * Counters are looked up from a descriptor (values stay hashed in keys), read without charging,
 * and reset; tenant overrides are validated, applied by the limiter, listed in /rlconfig and
 * audited; and, on Redis and the cluster, an override set through one meshlimit process is
 * enforced by another within a second.
 */
const TOKEN = 'admin-token-for-tests-0123456789';
const AUTH = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
const CONFIG = `
domain: edge
descriptors:
  - key: company_id
    rate_limit: { unit: minute, requests_per_unit: 3 }
    descriptors:
      - key: path
        rate_limits:
          - { unit: hour, requests_per_unit: 10, algorithm: sliding_window }
          - { unit: second, requests_per_unit: 5, algorithm: token_bucket, burst: 8 }
`;

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON answers are read field by field, as a client would
type Json = Record<string, any>;

const body = (company: string, path?: string) =>
  JSON.stringify({
    domain: 'edge',
    descriptors: [{ entries: [{ key: 'company_id', value: company }, ...(path === undefined ? [] : [{ key: 'path', value: path }])] }],
  });

async function ask(url: string, company: string, path?: string): Promise<number> {
  return (await fetch(`${url}/json`, { method: 'POST', body: body(company, path) })).status;
}

async function call(url: string, method: string, route: string, payload?: unknown, auth = true) {
  const res = await fetch(`${url}${route}`, {
    method,
    headers: auth ? AUTH : { 'content-type': 'application/json' },
    ...(payload === undefined ? {} : { body: typeof payload === 'string' ? payload : JSON.stringify(payload) }),
  });
  return { status: res.status, json: (await res.json()) as Json };
}

const counters = async (url: string, descriptor: string) =>
  call(url, 'GET', `/v1/counters?domain=edge&descriptor=${encodeURIComponent(descriptor)}`);
const override = (company: string, rpu: number) => ({
  domain: 'edge',
  entries: [{ key: 'company_id', value: company }],
  rate_limit: { unit: 'minute', requests_per_unit: rpu },
});

function suite(name: string, env: () => Record<string, string>) {
  describe(`admin API on ${name}`, () => {
    let svc: BootedService;
    beforeAll(async () => {
      svc = await bootService({
        files: { 'edge.yaml': CONFIG },
        env: { ADMIN_TOKEN: TOKEN, CACHE_KEY_PREFIX: `adm-${name}-${Date.now()}_`, ...env() },
      });
    });
    afterAll(async () => svc?.close());

    it("lists a descriptor's live counters decoded, reading them charges nothing, and resets them (token required)", async () => {
      for (let i = 0; i < 2; i++) expect(await ask(svc.httpUrl, 'acme')).toBe(200);
      const first = await counters(svc.httpUrl, 'company_id=acme');
      expect(first.status).toBe(200);
      expect(first.json['known_domain']).toBe(true);
      const [c] = first.json['descriptors'][0].counters;
      expect(c).toMatchObject({
        rule: 'edge.company_id',
        source: 'rule',
        algorithm: 'fixed_window',
        unit: 'minute',
        window_ms: 60_000,
        requests_per_unit: 3,
        used: 2,
        remaining: 1,
        over_limit: false,
      });
      expect(c.key).not.toContain('acme');
      // Reading again (and through POST with a /json body) charged nothing.
      const again = await call(svc.httpUrl, 'POST', '/v1/counters', body('acme'));
      expect(again.json['descriptors'][0].counters[0]).toMatchObject({ used: 2, remaining: 1 });
      expect(await ask(svc.httpUrl, 'acme')).toBe(200);
      expect(await ask(svc.httpUrl, 'acme')).toBe(429);
      // Several limits of a nested rule, each with its algorithm and window.
      await ask(svc.httpUrl, 'acme', '/a');
      const nested = await counters(svc.httpUrl, 'company_id=acme,path=/a');
      expect(nested.json['descriptors'][0].counters.map((x: Json) => [x.algorithm, x.window_ms, x.used])).toEqual([
        ['sliding_window', 3_600_000, 1],
        ['token_bucket', 1000, 1],
      ]);
      // Reset: refused without the token, done with it; the customer is unblocked at once.
      expect((await call(svc.httpUrl, 'DELETE', '/v1/counters?domain=edge&descriptor=company_id=acme', undefined, false)).status).toBe(401);
      expect(await ask(svc.httpUrl, 'acme')).toBe(429);
      const reset = await call(svc.httpUrl, 'DELETE', '/v1/counters?domain=edge&descriptor=company_id=acme');
      expect(reset.status).toBe(200);
      expect(reset.json['deleted']).toBe(1);
      expect(reset.json['descriptors'][0].counters[0]).toMatchObject({ used: 0, remaining: 3 });
      expect(await ask(svc.httpUrl, 'acme')).toBe(200);
      const nestedReset = await call(svc.httpUrl, 'POST', '/v1/counters/reset', body('acme', '/a'));
      expect(nestedReset.json['deleted']).toBe(2);
    });

    it('says so when a domain is unknown or no rule matches, and refuses a malformed lookup naming the field', async () => {
      const unknown = await call(svc.httpUrl, 'GET', '/v1/counters?domain=edg&descriptor=company_id=acme');
      expect(unknown.json).toMatchObject({ known_domain: false, descriptors: [{ counters: [] }] });
      const unmatched = await counters(svc.httpUrl, 'user=1');
      expect(unmatched.json['descriptors'][0].counters).toEqual([]);
      const bad = await call(svc.httpUrl, 'GET', '/v1/counters?domain=edge&descriptor=nokeyvalue');
      expect(bad.status).toBe(400);
      expect(bad.json['message']).toContain('is not key=value');
      const missing = await call(svc.httpUrl, 'GET', '/v1/counters?domain=edge');
      expect(missing.json['message']).toContain('query parameter descriptor is required');
    });

    it('sets, applies, lists, audits and removes a tenant override; a bad one is refused naming the field', async () => {
      const bad = await call(svc.httpUrl, 'PUT', '/v1/overrides', {
        ...override('big', 5),
        rate_limit: { unit: 'minutes', requests_per_unit: 5 },
      });
      expect(bad.status).toBe(400);
      expect(bad.json).toMatchObject({
        code: 'ML_ERR_INVALID_REQUEST',
        message: expect.stringContaining("rate_limit.unit: invalid rate limit unit 'minutes'"),
      });
      expect((await call(svc.httpUrl, 'PUT', '/v1/overrides', override('big', 5), false)).status).toBe(401);

      const set = await call(svc.httpUrl, 'PUT', '/v1/overrides', override('big', 5));
      expect(set.status).toBe(200);
      expect(set.json['audit']).toMatchObject({ action: 'set', domain: 'edge', old: null, new: { requestsPerUnit: 5, unit: 'minute' } });
      expect(set.json['audit'].who).toMatch(/^token:[0-9a-f]{8}@127\.0\.0\.1$/);
      // Applied by the limiter: 5 admitted where the rule says 3, then denied.
      for (let i = 0; i < 5; i++) expect(await ask(svc.httpUrl, 'big')).toBe(200);
      expect(await ask(svc.httpUrl, 'big')).toBe(429);
      const c = await counters(svc.httpUrl, 'company_id=big');
      expect(c.json['descriptors'][0].counters[0]).toMatchObject({ source: 'tenant_override', requests_per_unit: 5, used: 5 });
      // Changed: the audit has old and new; listed in /rlconfig and /v1/overrides.
      const changed = await call(svc.httpUrl, 'PUT', '/v1/overrides', override('big', 7));
      expect(changed.json['audit']).toMatchObject({ old: { requestsPerUnit: 5 }, new: { requestsPerUnit: 7 } });
      const rlconfig = await call(svc.httpUrl, 'GET', '/rlconfig');
      expect(rlconfig.json['tenantOverrides']).toEqual([
        expect.objectContaining({
          domain: 'edge',
          entries: [{ key: 'company_id', value: 'big' }],
          limit: expect.objectContaining({ requestsPerUnit: 7 }),
        }),
      ]);
      expect((await call(svc.httpUrl, 'GET', '/v1/overrides')).json['count']).toBe(1);
      // Removed: the rule applies again.
      const removed = await call(svc.httpUrl, 'DELETE', '/v1/overrides', {
        domain: 'edge',
        entries: [{ key: 'company_id', value: 'big' }],
      });
      expect(removed.json['audit']).toMatchObject({ action: 'remove', old: { requestsPerUnit: 7 }, new: null });
      expect((await counters(svc.httpUrl, 'company_id=big')).json['descriptors'][0].counters[0]).toMatchObject({
        source: 'rule',
        requests_per_unit: 3,
      });
      const again = await call(svc.httpUrl, 'DELETE', '/v1/overrides', { domain: 'edge', entries: [{ key: 'company_id', value: 'big' }] });
      expect(again).toMatchObject({ status: 404, json: { code: 'ML_ERR_NOT_FOUND' } });
      const audit = await call(svc.httpUrl, 'GET', '/v1/overrides/audit');
      expect(audit.json['audit'].map((e: Json) => [e.action, e.old?.requestsPerUnit ?? null, e.new?.requestsPerUnit ?? null])).toEqual([
        ['remove', 7, null],
        ['set', 5, 7],
        ['set', null, 5],
      ]);
    });
  });
}

let redis: RedisInstance;
let cluster: RedisCluster;
beforeAll(async () => {
  redis = await startRedis();
  cluster = await startRedisCluster({ replicasPerPrimary: 0 });
}, 120_000);
afterAll(async () => {
  await redis?.stop();
  await cluster?.stop();
});

suite('memory', () => ({ BACKEND_TYPE: 'memory' }));
suite('redis', () => ({ BACKEND_TYPE: 'redis', REDIS_URL: `127.0.0.1:${redis.port}` }));
suite('cluster', () => ({ BACKEND_TYPE: 'redis', REDIS_TYPE: 'cluster', REDIS_URL: cluster.seeds }));

describe('memory overrides with DATA_DIR', () => {
  it('are kept in DATA_DIR/overrides.json and come back after a restart', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'meshlimit-data-'));
    const env = { BACKEND_TYPE: 'memory', ADMIN_TOKEN: TOKEN, DATA_DIR: dataDir };
    const first = await bootService({ files: { 'edge.yaml': CONFIG }, env });
    expect((await call(first.httpUrl, 'PUT', '/v1/overrides', override('kept', 9))).status).toBe(200);
    await first.close();
    expect(JSON.parse(readFileSync(path.join(dataDir, 'overrides.json'), 'utf8')).overrides).toHaveLength(1);
    const second = await bootService({ files: { 'edge.yaml': CONFIG }, env });
    expect((await counters(second.httpUrl, 'company_id=kept')).json['descriptors'][0].counters[0]).toMatchObject({
      source: 'tenant_override',
      requests_per_unit: 9,
    });
    expect((await call(second.httpUrl, 'GET', '/v1/overrides/audit')).json['audit']).toHaveLength(1);
    await second.close();
    rmSync(dataDir, { recursive: true });
  });
});

/** Two meshlimit processes on one store: set through A, enforced by B within a second. */
function acrossProcesses(name: string, env: () => Record<string, string>) {
  it(`an override set through one process is enforced by another within a second (${name})`, async () => {
    const configDir = mkdtempSync(path.join(tmpdir(), 'meshlimit-adm-'));
    writeFileSync(path.join(configDir, 'edge.yaml'), CONFIG);
    const common = { CONFIG_DIR: configDir, ADMIN_TOKEN: TOKEN, CACHE_KEY_PREFIX: `x-${name}-${Date.now()}_`, ...env() };
    const procs: ServiceProcess[] = [];
    try {
      procs.push(await spawnService(common), await spawnService(common));
      const [a, b] = procs as [ServiceProcess, ServiceProcess];
      expect((await counters(b.httpUrl, 'company_id=tenant')).json['descriptors'][0].counters[0].source).toBe('rule');
      const set = await call(a.httpUrl, 'PUT', '/v1/overrides', override('tenant', 1));
      expect(set.status).toBe(200);
      // The bound: every replica applies it within a second of the change.
      await eventually(
        async () => (await counters(b.httpUrl, 'company_id=tenant')).json['descriptors'][0].counters[0].source === 'tenant_override',
        1000,
        25,
      );
      expect(await ask(b.httpUrl, 'tenant')).toBe(200);
      expect(await ask(b.httpUrl, 'tenant')).toBe(429);
      // And the audit list is the same from either process.
      expect((await call(b.httpUrl, 'GET', '/v1/overrides/audit')).json['audit'][0]).toMatchObject({
        action: 'set',
        new: { requestsPerUnit: 1 },
      });
    } finally {
      await Promise.all(procs.map((p) => p.proc.stop()));
      rmSync(configDir, { recursive: true, force: true });
    }
  }, 60_000);
}

describe('across processes', () => {
  acrossProcesses('redis', () => ({ BACKEND_TYPE: 'redis', REDIS_URL: `127.0.0.1:${redis.port}` }));
  acrossProcesses('cluster', () => ({ BACKEND_TYPE: 'redis', REDIS_TYPE: 'cluster', REDIS_URL: cluster.seeds }));
});
