import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MemoryBackend } from '../../src/backend/memory.js';
import type { ExplainJson } from '../../src/server/explain/explain-json.js';
import { startRedis, type RedisInstance } from '../support/redis.js';
import { startRedisCluster, type RedisCluster } from '../support/redis-cluster.js';
import { bootService, type BootedService } from '../support/service.js';

/**
 * `POST /v1/explain` against the booted service, on the memory backend, a real Redis and a real
 * Redis Cluster:
 * each match path (exact, wildcard, bare key, nested, replaces, unlimited, shadow, unknown
 * domain, unmatched), and that explaining charges nothing: the counters (every Redis key and
 * value, on every cluster primary; the memory store's size and a second explain) are the same before and after, and the
 * next real decision finds what explain said it would.
 */
const CONFIG = `domain: shop
descriptors:
  - key: plan
    value: gold
    rate_limit: { unit: minute, requests_per_unit: 5 }
  - key: path
    value: /api/*
    rate_limit: { unit: minute, unit_multiplier: 15, requests_per_unit: 30 }
  - key: user
    rate_limit: { algorithm: token_bucket, unit: second, requests_per_unit: 2, burst: 4 }
  - key: company_id
    rate_limit: { unit: hour, requests_per_unit: 100 }
    descriptors:
      - key: route
        rate_limit: { algorithm: sliding_window, unit: minute, requests_per_unit: 3 }
  - key: health
    rate_limit: { unlimited: true }
  - key: trial
    shadow_mode: true
    rate_limit: { unit: minute, requests_per_unit: 1 }
  - key: tier
    value: free
    rate_limit: { name: free_tier, unit: minute, requests_per_unit: 2 }
  - key: promo
    rate_limit: { unit: minute, requests_per_unit: 50, replaces: [ { name: free_tier } ] }
  - key: org
    descriptors:
      - key: team
        rate_limit: { unit: minute, requests_per_unit: 7 }
`;
const NOW = Date.UTC(2026, 0, 5, 10, 0, 30);

type Entries = Record<string, string>;
const body = (domain: string, ...descs: Entries[]) => ({
  domain,
  descriptors: descs.map((d) => ({ entries: Object.entries(d).map(([key, value]) => ({ key, value })) })),
});

for (const backend of ['memory', 'redis', 'cluster'] as const) {
  describe(`POST /v1/explain (${backend})`, () => {
    let svc: BootedService;
    let redis: RedisInstance | undefined;
    let cluster: RedisCluster | undefined;

    beforeAll(async () => {
      if (backend === 'redis') redis = await startRedis();
      if (backend === 'cluster') cluster = await startRedisCluster({ primaries: 3, replicasPerPrimary: 0 });
      const env: Record<string, string> = redis
        ? { BACKEND_TYPE: 'redis', REDIS_URL: redis.url }
        : cluster
          ? { BACKEND_TYPE: 'redis', REDIS_TYPE: 'cluster', REDIS_URL: cluster.seeds }
          : { BACKEND_TYPE: 'memory' };
      svc = await bootService({ files: { 'shop.yaml': CONFIG }, env, now: () => NOW });
    }, 120_000);
    afterAll(async () => {
      await svc?.close();
      await redis?.stop();
      await cluster?.stop();
    });

    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- bodies of several shapes (/json, explain, errors), each asserted field by field
    const post = async (path: string, b: unknown): Promise<{ status: number; json: any }> => {
      const res = await fetch(`${svc.httpUrl}${path}`, { method: 'POST', body: JSON.stringify(b) });
      return { status: res.status, json: await res.json() };
    };
    /** Every counter as stored: Redis keys and bytes, or the memory store's size. */
    const counters = async (): Promise<unknown> => {
      if (cluster !== undefined) {
        const out: unknown[] = [];
        for (const p of cluster.primaries()) {
          const keys = ((await cluster.command(p.port, 'KEYS', '*')) as string[]).sort();
          for (const k of keys) out.push([p.port, k, await cluster.command(p.port, 'GET', k)]);
        }
        return out;
      }
      if (redis === undefined) return (svc.handle.counterStore as MemoryBackend).size;
      const c = redis.client();
      const keys = (await c.keys('*')).sort();
      return Promise.all(keys.map(async (k) => [k, (await c.getBuffer(k))?.toString('hex'), (await c.pttl(k)) > 0]));
    };
    /** Explains `b`, asserting that nothing was charged (counters identical, a second explain identical). */
    const explain = async (b: unknown): Promise<ExplainJson> => {
      const before = await counters();
      const first = await post('/v1/explain', b);
      expect(first.status).toBe(200);
      const second = await post('/v1/explain', b);
      expect(await counters()).toEqual(before);
      expect(second.json).toEqual(first.json);
      expect(first.json.charged).toBe(false);
      return first.json as ExplainJson;
    };

    it('exact key and value: the rule, its file, YAML path and line, and the counter as it stands', async () => {
      for (let i = 0; i < 3; i++) expect((await post('/json', body('shop', { plan: 'gold' }))).status).toBe(200);
      const e = await explain(body('shop', { plan: 'gold' }));
      expect(e.knownDomain).toBe(true);
      expect(e.decision).toBe('OK');
      const d = e.descriptors[0]!;
      expect(d.shape).toBe('plan');
      expect(d.match).toMatchObject({ matched: true, ruleKey: 'shop.plan_gold', path: 'descriptors[0]', line: 3, unlimited: false });
      expect(d.match.matched && d.match.file.endsWith('shop.yaml')).toBe(true);
      expect(d.match.steps).toEqual([
        expect.objectContaining({ entry: 0, via: 'exact', configKey: 'plan_gold', path: 'descriptors[0]', line: 3 }),
      ]);
      expect(d.limits).toEqual([
        {
          name: null,
          algorithm: 'fixed_window',
          window: '5 per minute',
          requestsPerUnit: 5,
          unit: 'minute',
          unitMultiplier: 1,
          windowMs: 60_000,
          burst: 5,
          enforced: true,
          counter: { used: 3, remaining: 2, resetMs: 30_000 },
          wouldBe: { overLimit: false, remaining: 1, resetMs: 30_000 },
        },
      ]);
      // The next real decision finds what explain said.
      const real = await post('/json', body('shop', { plan: 'gold' }));
      expect(real.json.statuses[0].limitRemaining).toBe(1);
      // Exhausted: explain says the request would be denied, and still charges nothing.
      await post('/json', body('shop', { plan: 'gold' }));
      const over = await explain(body('shop', { plan: 'gold' }));
      expect(over.decision).toBe('OVER_LIMIT');
      expect(over.descriptors[0]!.limits[0]!.counter).toMatchObject({ used: 5, remaining: 0 });
      expect(over.descriptors[0]!.limits[0]!.wouldBe.overLimit).toBe(true);
    });

    it('wildcard value: the pattern that matched and the real window', async () => {
      const d = (await explain(body('shop', { path: '/api/orders' }))).descriptors[0]!;
      expect(d.match).toMatchObject({ matched: true, ruleKey: 'shop.path_/api/*', path: 'descriptors[1]', line: 6 });
      expect(d.match.steps[0]).toMatchObject({ via: 'wildcard', configKey: 'path_/api/*' });
      expect(d.limits[0]).toMatchObject({ window: '30 per 15 minutes', windowMs: 900_000, counter: { used: 0, remaining: 30 } });
    });

    it('bare key: any value, a token bucket with its burst', async () => {
      await post('/json', body('shop', { user: 'alice' }));
      const d = (await explain(body('shop', { user: 'alice' }))).descriptors[0]!;
      expect(d.match).toMatchObject({ matched: true, ruleKey: 'shop.user', line: 9 });
      expect(d.match.steps[0]).toMatchObject({ via: 'key', configKey: 'user' });
      expect(d.limits[0]).toMatchObject({
        algorithm: 'token_bucket',
        window: '2 per second',
        burst: 4,
        counter: { used: 1, remaining: 3 },
      });
      expect(d.limits[0]!.wouldBe).toMatchObject({ overLimit: false, remaining: 2 });
    });

    it('nested: one step per entry, the rule at the last one', async () => {
      const d = (await explain(body('shop', { company_id: '42', route: '/x' }))).descriptors[0]!;
      expect(d.shape).toBe('company_id.route');
      expect(d.match).toMatchObject({ matched: true, ruleKey: 'shop.company_id.route', path: 'descriptors[3].descriptors[0]', line: 14 });
      expect(d.match.steps.map((s) => [s.via, s.configKey, s.line])).toEqual([
        ['key', 'company_id', 11],
        ['key', 'route', 14],
      ]);
      expect(d.limits[0]).toMatchObject({ algorithm: 'sliding_window', window: '3 per minute' });
    });

    it('unlimited: matched, no limit, no counter', async () => {
      const d = (await explain(body('shop', { health: 'x' }))).descriptors[0]!;
      expect(d.match).toMatchObject({ matched: true, ruleKey: 'shop.health', unlimited: true });
      expect(d.limits).toEqual([]);
      expect(d.status).toMatchObject({ code: 'OK', unlimited: true });
    });

    it('shadow mode: over its limit, the answer stays OK and says so', async () => {
      await post('/json', body('shop', { trial: 't' }));
      const e = await explain(body('shop', { trial: 't' }));
      const d = e.descriptors[0]!;
      expect(e.decision).toBe('OK');
      expect(d.match).toMatchObject({ matched: true, shadowMode: true });
      expect(d.limits[0]).toMatchObject({ enforced: false, counter: { used: 1, remaining: 0 }, wouldBe: { overLimit: true } });
      expect(d.status).toMatchObject({ code: 'OK', shadowed: true });
    });

    it('replaces: the replaced limit is listed and not applied', async () => {
      const e = await explain(body('shop', { tier: 'free' }, { promo: 'p' }));
      expect(e.descriptors[0]!.match).toMatchObject({ matched: true, ruleKey: 'shop.tier_free' });
      expect(e.descriptors[0]!.limits).toEqual([]);
      expect(e.descriptors[0]!.replaced).toEqual(['free_tier']);
      expect(e.descriptors[1]!.limits[0]).toMatchObject({ window: '50 per minute' });
      // Alone, the same descriptor keeps its limit.
      expect((await explain(body('shop', { tier: 'free' }))).descriptors[0]!.limits[0]).toMatchObject({ name: 'free_tier' });
    });

    it('unknown domain: every descriptor says so and names the configured domains', async () => {
      const e = await explain(body('shpo', { plan: 'gold' }));
      expect(e.knownDomain).toBe(false);
      expect(e.decision).toBe('OK');
      expect(e.descriptors[0]!.match).toMatchObject({ matched: false, reason: 'unknown_domain', entry: null });
      expect(e.descriptors[0]!.match.matched === false && e.descriptors[0]!.match.message).toContain(
        "domain 'shpo' is not in the loaded config",
      );
      expect(e.descriptors[0]!.match.matched === false && e.descriptors[0]!.match.message).toContain('configured domains: shop');
    });

    it('unmatched: the first entry that matched nothing, and a limit not at the last entry', async () => {
      const top = (await explain(body('shop', { plann: 'gold' }))).descriptors[0]!;
      expect(top.match).toMatchObject({ matched: false, reason: 'entry_not_matched', entry: 0, steps: [] });
      const deeper = (await explain(body('shop', { company_id: '42', path: '/x' }))).descriptors[0]!;
      expect(deeper.match).toMatchObject({ matched: false, reason: 'entry_not_matched', entry: 1, rulesOnTheWay: ['shop.company_id'] });
      expect(deeper.match.matched === false && deeper.match.message).toContain("entry 1 (key 'path') matched no descriptor");
      expect(deeper.limits).toEqual([]);
      const short = (await explain(body('shop', { org: 'o' }))).descriptors[0]!;
      expect(short.match).toMatchObject({ matched: false, reason: 'not_at_last_entry', entry: 0 });
      expect(short.status.code).toBe('OK');
    });

    it('refuses what /json refuses, with the same error', async () => {
      const notJson = await fetch(`${svc.httpUrl}/v1/explain`, { method: 'POST', body: '{nope' });
      expect(notJson.status).toBe(400);
      expect(((await notJson.json()) as { code: string }).code).toBe('ML_ERR_INVALID_REQUEST');
      const tooMany = await post('/v1/explain', body('shop', ...Array.from({ length: 65 }, () => ({ plan: 'gold' }))));
      expect(tooMany.status).toBe(400);
      expect(tooMany.json.message).toContain('too many descriptors: 65');
      const noDomain = await post('/v1/explain', body('', { plan: 'gold' }));
      expect(noDomain.status).toBe(400);
      expect(noDomain.json).toEqual((await post('/json', body('', { plan: 'gold' }))).json);
    });
  });
}
