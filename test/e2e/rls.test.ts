import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { RlsDescriptorInput, RlsResponse } from '../../src/client/rls-client.js';
import { startRedis, type RedisInstance } from '../support/redis.js';
import { bootService, type BootedService } from '../support/service.js';

/**
 * The service booted as `npm start` wires it, driven through a real gRPC client, on both
 * backends, with a fixed clock so every expectation is exact.
 */
const CONFIG = `
domain: e2e
descriptors:
  - key: fw
    rate_limit: { unit: minute, requests_per_unit: 3 }
  - key: sw
    rate_limit: { algorithm: sliding_window, unit: minute, requests_per_unit: 10 }
  - key: tb
    rate_limit: { algorithm: token_bucket, unit: second, requests_per_unit: 2, burst: 4 }
  - key: tb0
    rate_limit: { algorithm: token_bucket, unit: second, requests_per_unit: 0, burst: 3 }
  - key: multi
    rate_limits:
      - { unit: second, requests_per_unit: 2 }
      - { unit: minute, requests_per_unit: 5 }
  - key: custom
    rate_limit: { unit: second, unit_multiplier: 30, requests_per_unit: 2 }
  - key: wild
    value: api-exact
    rate_limit: { unit: minute, requests_per_unit: 5 }
  - key: wild
    value: api-*
    rate_limit: { unit: minute, requests_per_unit: 1 }
  - key: wild
    rate_limit: { unit: minute, requests_per_unit: 2 }
  - key: shadow
    shadow_mode: true
    rate_limit: { unit: minute, requests_per_unit: 1 }
  - key: free
    rate_limit: { unlimited: true }
  - key: detailed
    detailed_metric: true
    rate_limit: { unit: minute, requests_per_unit: 5 }
  - key: parent
    value: p
    descriptors:
      - key: child
        rate_limit: { unit: minute, requests_per_unit: 2 }
  - key: base
    rate_limit: { name: base_limit, unit: minute, requests_per_unit: 1 }
  - key: replacer
    rate_limit: { unit: minute, requests_per_unit: 100, replaces: [ { name: base_limit } ] }
`;

/** A minute-aligned instant (also aligned to 30 s and 1 s windows). */
const T0 = 1_800_000_000_000;

const d = (key: string, value: string, extra: Partial<RlsDescriptorInput> = {}): RlsDescriptorInput => ({
  entries: [{ key, value }],
  ...extra,
});
const brief = (r: RlsResponse) =>
  r.statuses.map((s) => ({
    code: s.code,
    limit: s.currentLimit ? `${s.currentLimit.requestsPerUnit}/${s.currentLimit.unit}` : null,
    remaining: s.limitRemaining,
    reset: s.durationUntilReset?.seconds ?? null,
  }));

type BackendCase = { name: string; env: () => Record<string, string> };
let redis: RedisInstance | undefined;

const cases: BackendCase[] = [
  { name: 'memory', env: () => ({ BACKEND_TYPE: 'memory' }) },
  // Answers, not timeouts, are under test: a loaded CI machine must not turn a slow reply into UNAVAILABLE.
  { name: 'redis', env: () => ({ BACKEND_TYPE: 'redis', REDIS_URL: `127.0.0.1:${redis!.port}`, REDIS_COMMAND_TIMEOUT_MS: '1000' }) },
];

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});

describe.each(cases)('ShouldRateLimit over gRPC, $name backend', ({ name, env }) => {
  let svc: BootedService;
  let now = T0;
  let prefix = 0;
  beforeAll(async () => {
    svc = await bootService({ files: { 'e2e.yaml': CONFIG }, env: env(), now: () => now });
  });
  afterAll(async () => {
    await svc?.close();
  });
  beforeEach(async () => {
    // Each test starts from empty counters: a fresh clock far from the previous test's windows
    // and, on Redis, a flush.
    prefix += 1;
    now = T0 + prefix * 86_400_000 * 400;
    if (name === 'redis') await redis!.client().flushall();
  });
  const ask = (descriptors: RlsDescriptorInput[], hitsAddend?: number, domain = 'e2e') =>
    svc.client.shouldRateLimit({ domain, descriptors, hitsAddend });

  it('fixed window: exact remaining, over the limit after the threshold, reset at the window end', async () => {
    now += 15_000;
    const seen = [];
    for (let i = 0; i < 4; i++) seen.push(brief(await ask([d('fw', 'a')]))[0]);
    expect(seen).toEqual([
      { code: 'OK', limit: '3/MINUTE', remaining: 2, reset: 45 },
      { code: 'OK', limit: '3/MINUTE', remaining: 1, reset: 45 },
      { code: 'OK', limit: '3/MINUTE', remaining: 0, reset: 45 },
      { code: 'OVER_LIMIT', limit: '3/MINUTE', remaining: 0, reset: 45 },
    ]);
    expect((await ask([d('fw', 'a')])).overallCode).toBe('OVER_LIMIT');
    expect(brief(await ask([d('fw', 'b')]))[0]!.remaining).toBe(2); // per-value counters
    now += 45_000; // next window
    expect(brief(await ask([d('fw', 'a')]))[0]).toEqual({ code: 'OK', limit: '3/MINUTE', remaining: 2, reset: 60 });
  });

  it('sliding window: weighted previous window', async () => {
    now += 15_000;
    for (let i = 0; i < 10; i++) expect(brief(await ask([d('sw', 'a')]))[0]!.remaining).toBe(9 - i);
    expect((await ask([d('sw', 'a')])).overallCode).toBe('OVER_LIMIT');
    // Half-way into the next window the previous 10 hits weigh 5: 10 - 5 - 1 = 4 left.
    now += 45_000 + 30_000;
    expect(brief(await ask([d('sw', 'a')]))[0]).toEqual({ code: 'OK', limit: '10/MINUTE', remaining: 4, reset: 30 });
    for (let i = 0; i < 4; i++) await ask([d('sw', 'a')]);
    expect((await ask([d('sw', 'a')])).overallCode).toBe('OVER_LIMIT');
  });

  it('token bucket: burst capacity, continuous refill, reset until full', async () => {
    const remaining = [];
    for (let i = 0; i < 4; i++) remaining.push(brief(await ask([d('tb', 'a')]))[0]!.remaining);
    expect(remaining).toEqual([3, 2, 1, 0]);
    const over = brief(await ask([d('tb', 'a')]))[0]!;
    expect(over).toEqual({ code: 'OVER_LIMIT', limit: '2/SECOND', remaining: 0, reset: 2 });
    now += 499;
    expect((await ask([d('tb', 'a')])).overallCode).toBe('OVER_LIMIT');
    now += 1; // 500 ms at 2/s refills exactly one token
    expect(brief(await ask([d('tb', 'a')]))[0]).toEqual({ code: 'OK', limit: '2/SECOND', remaining: 0, reset: 2 });
    now += 2_000;
    expect(brief(await ask([d('tb', 'a')]))[0]!.remaining).toBe(3);
  });

  it('requests_per_unit 0 blocks every request, token bucket included', async () => {
    for (let i = 0; i < 3; i++) expect(brief(await ask([d('tb0', 'z')]))[0]).toMatchObject({ code: 'OVER_LIMIT', remaining: 0 });
  });

  it('hits_addend: request-level 0 counts as 1, request-level n, per-descriptor 0 checks without consuming', async () => {
    expect(brief(await ask([d('fw', 'h')], 0))[0]!.remaining).toBe(2);
    expect(brief(await ask([d('fw', 'h', { hitsAddend: 0 })], 5))[0]).toMatchObject({ code: 'OK', remaining: 2 });
    expect(brief(await ask([d('fw', 'h')], 2))[0]).toMatchObject({ code: 'OK', remaining: 0 });
    expect(brief(await ask([d('fw', 'h', { hitsAddend: 0 })]))[0]).toMatchObject({ code: 'OK', remaining: 0 });
    // per-descriptor value wins over the request's
    expect(brief(await ask([d('fw', 'i', { hitsAddend: 3 })], 1))[0]).toMatchObject({ code: 'OK', remaining: 0 });
    expect(brief(await ask([d('fw', 'j')], 4))[0]).toMatchObject({ code: 'OVER_LIMIT', remaining: 0 });
  });

  it('honours the per-descriptor limit override', async () => {
    const over = { limit: { requestsPerUnit: 1, unit: 'hour' as const } };
    expect(brief(await ask([d('fw', 'o', over)]))[0]).toMatchObject({ code: 'OK', limit: '1/HOUR', remaining: 0 });
    expect(brief(await ask([d('fw', 'o', over)]))[0]).toMatchObject({ code: 'OVER_LIMIT', limit: '1/HOUR' });
    // applies even to descriptors without a rule, as in envoyproxy/ratelimit
    expect(brief(await ask([d('nomatch', 'x', over)]))[0]).toMatchObject({ code: 'OK', limit: '1/HOUR' });
  });

  it('shadow mode: over-limit requests pass', async () => {
    expect(brief(await ask([d('shadow', 's')]))[0]).toMatchObject({ code: 'OK', remaining: 0 });
    const r = await ask([d('shadow', 's')]);
    expect(r.overallCode).toBe('OK');
    expect(brief(r)[0]).toMatchObject({ code: 'OK', limit: '1/MINUTE', remaining: 0 });
  });

  it('replaces: a matched limit drops the limit it names', async () => {
    for (let i = 0; i < 3; i++) {
      const r = await ask([d('base', 'x'), d('replacer', 'y')]);
      expect(r.overallCode).toBe('OK');
      expect(brief(r)).toEqual([
        { code: 'OK', limit: null, remaining: 0, reset: null },
        { code: 'OK', limit: '100/MINUTE', remaining: 99 - i, reset: 60 },
      ]);
    }
    expect((await ask([d('base', 'x')])).overallCode).toBe('OK');
    expect((await ask([d('base', 'x')])).overallCode).toBe('OVER_LIMIT');
  });

  it('unlimited: OK with the maximum remaining and no limit', async () => {
    for (let i = 0; i < 3; i++) {
      expect(brief(await ask([d('free', 'f')]))[0]).toEqual({ code: 'OK', limit: null, remaining: 4294967295, reset: null });
    }
  });

  it('matching: exact value, then wildcard, then bare key; nested keys apply at the last entry', async () => {
    expect(brief(await ask([d('wild', 'api-exact')]))[0]!.limit).toBe('5/MINUTE');
    expect(brief(await ask([d('wild', 'api-other')]))[0]!.limit).toBe('1/MINUTE');
    expect(brief(await ask([d('wild', 'web')]))[0]!.limit).toBe('2/MINUTE');
    const nested = {
      entries: [
        { key: 'parent', value: 'p' },
        { key: 'child', value: 'c' },
      ],
    };
    expect(brief(await ask([nested]))[0]!.limit).toBe('2/MINUTE');
    expect(brief(await ask([d('parent', 'p')]))[0]!.limit).toBeNull();
    expect(
      brief(
        await ask([
          {
            entries: [
              { key: 'parent', value: 'q' },
              { key: 'child', value: 'c' },
            ],
          },
        ]),
      )[0]!.limit,
    ).toBeNull();
    expect(brief(await ask([d('unknown', 'x')]))[0]).toEqual({ code: 'OK', limit: null, remaining: 0, reset: null });
  });

  it('unknown domain: every descriptor OK, nothing counted', async () => {
    const r = await ask([d('fw', 'a'), d('tb', 'b')], 1, 'no-such-domain');
    expect(r.overallCode).toBe('OK');
    expect(brief(r)).toEqual([
      { code: 'OK', limit: null, remaining: 0, reset: null },
      { code: 'OK', limit: null, remaining: 0, reset: null },
    ]);
  });

  it('several limits on one descriptor: the status reports the one closest to exhaustion', async () => {
    expect(brief(await ask([d('multi', 'm')]))[0]).toMatchObject({ code: 'OK', limit: '2/SECOND', remaining: 1 });
    expect(brief(await ask([d('multi', 'm')]))[0]).toMatchObject({ code: 'OK', limit: '2/SECOND', remaining: 0 });
    expect(brief(await ask([d('multi', 'm')]))[0]).toMatchObject({ code: 'OVER_LIMIT', limit: '2/SECOND' });
    now += 1000; // second limit refilled; the minute limit has 3 left (the denied request cost nothing)
    expect(brief(await ask([d('multi', 'm')]))[0]).toMatchObject({ code: 'OK', limit: '2/SECOND', remaining: 1 });
    expect(brief(await ask([d('multi', 'm')]))[0]).toMatchObject({ code: 'OK', limit: '2/SECOND', remaining: 0 });
    now += 1000;
    expect(brief(await ask([d('multi', 'm')]))[0]).toMatchObject({ code: 'OK', limit: '5/MINUTE', remaining: 0 });
    now += 1000;
    expect(brief(await ask([d('multi', 'm')]))[0]).toMatchObject({ code: 'OVER_LIMIT', limit: '5/MINUTE', remaining: 0 });
  });

  it('custom windows: unit_multiplier 30 with unit second', async () => {
    now += 10_000;
    expect(brief(await ask([d('custom', 'c')]))[0]).toEqual({ code: 'OK', limit: '2/SECOND', remaining: 1, reset: 20 });
    expect(brief(await ask([d('custom', 'c')]))[0]!.remaining).toBe(0);
    now += 19_999;
    expect((await ask([d('custom', 'c')])).overallCode).toBe('OVER_LIMIT');
    now += 1; // the 30 s window ends
    expect(brief(await ask([d('custom', 'c')]))[0]).toEqual({ code: 'OK', limit: '2/SECOND', remaining: 1, reset: 30 });
  });

  it('a denied request consumes nothing on any descriptor', async () => {
    expect((await ask([d('fw', 'x'), d('wild', 'api-z')])).overallCode).toBe('OK');
    for (let i = 0; i < 5; i++) {
      const r = await ask([d('fw', 'x'), d('wild', 'api-z')]);
      expect(r.overallCode).toBe('OVER_LIMIT');
      expect(brief(r)[1]!.code).toBe('OVER_LIMIT');
    }
    // fw:x was charged once (the admitted request), not six times.
    expect(brief(await ask([d('fw', 'x')]))[0]).toMatchObject({ code: 'OK', remaining: 1 });
  });

  it.each([
    ['an empty domain', { domain: '', descriptors: [d('fw', 'a')] }, /domain must not be empty/],
    ['no descriptors', { domain: 'e2e', descriptors: [] }, /descriptor list must not be empty/],
    ['an entry with an empty key', { domain: 'e2e', descriptors: [{ entries: [{ key: '', value: 'v' }] }] }, /key must not be empty/],
  ])('rejects %s with INVALID_ARGUMENT', async (_label, req, message) => {
    await expect(svc.client.shouldRateLimit(req)).rejects.toMatchObject({ code: 3, details: expect.stringMatching(message) });
  });

  it('answers a descriptor without entries OK without a limit, as upstream', async () => {
    const r = await svc.client.shouldRateLimit({ domain: 'e2e', descriptors: [{ entries: [] }] });
    expect(r.overallCode).toBe('OK');
    expect(r.statuses).toMatchObject([{ code: 'OK', currentLimit: null, limitRemaining: 0 }]);
  });

  it('the JSON endpoint answers 200 / 429 / 400 like the gRPC one', async () => {
    const post = (body: string) => fetch(`${svc.httpUrl}/json`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
    const req = JSON.stringify({ domain: 'e2e', descriptors: [{ entries: [{ key: 'fw', value: 'json' }] }], hits_addend: 3 });
    const first = await post(req);
    expect(first.status).toBe(200);
    expect(await first.json()).toEqual({
      overallCode: 'OK',
      statuses: [{ code: 'OK', currentLimit: { requestsPerUnit: 3, unit: 'MINUTE' }, durationUntilReset: '60s' }],
    });
    const second = await post(req);
    expect(second.status).toBe(429);
    expect(((await second.json()) as { overallCode: string }).overallCode).toBe('OVER_LIMIT');
    const bad = await post('{"domain": ""}');
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ code: 'ML_ERR_INVALID_REQUEST' });
    expect((await post('not json')).status).toBe(400);
  });

  it('serves health, config dump and metrics over HTTP, and grpc health', async () => {
    expect(await (await fetch(`${svc.httpUrl}/healthcheck`)).text()).toBe('OK');
    const dump = (await (await fetch(`${svc.httpUrl}/rlconfig`)).json()) as unknown;
    expect(JSON.stringify(dump)).toContain('"e2e"');
    await ask([d('fw', 'metrics')]);
    const metrics = await (await fetch(`${svc.httpUrl}/metrics`)).text();
    expect(metrics).toMatch(/meshlimit_decisions_total\{domain="e2e",rule="e2e\.fw",outcome="ok"\} \d+/);
    expect(metrics).not.toContain('metrics"'); // descriptor values are never labels...
    await ask([d('detailed', 'tenant-7')]);
    const detailed = await (await fetch(`${svc.httpUrl}/metrics`)).text();
    // ...unless the rule opts in with detailed_metric (upstream's per-value stats)
    expect(detailed).toMatch(/meshlimit_decisions_total\{domain="e2e",rule="e2e\.detailed_tenant-7",outcome="ok"\} 1/);
    expect(await svc.client.checkHealth('envoy.service.ratelimit.v3.RateLimitService')).toBe('SERVING');
  });
});

describe('response headers and global shadow mode', () => {
  it('adds RateLimit-* headers when LIMIT_RESPONSE_HEADERS_ENABLED', async () => {
    const svc = await bootService({
      files: { 'e2e.yaml': CONFIG },
      env: { LIMIT_RESPONSE_HEADERS_ENABLED: 'true', LIMIT_REMAINING_HEADER: 'X-Left' },
      now: () => T0 + 15_000,
    });
    try {
      const r = await svc.client.shouldRateLimit({ domain: 'e2e', descriptors: [d('fw', 'h'), d('tb', 'h')] });
      expect(r.responseHeadersToAdd.map((h) => [h.key, h.value])).toEqual([
        ['RateLimit-Limit', '3'],
        ['X-Left', '2'],
        ['RateLimit-Reset', '45'],
      ]);
    } finally {
      await svc.close();
    }
  });

  it('SHADOW_MODE=true answers OK for over-limit requests, the status still OVER_LIMIT (as upstream)', async () => {
    const svc = await bootService({ files: { 'e2e.yaml': CONFIG }, env: { SHADOW_MODE: 'true' }, now: () => T0 });
    try {
      for (let i = 0; i < 3; i++) await svc.client.shouldRateLimit({ domain: 'e2e', descriptors: [d('fw', 's')] });
      const r = await svc.client.shouldRateLimit({ domain: 'e2e', descriptors: [d('fw', 's')] });
      expect(r.overallCode).toBe('OK');
      expect(r.statuses[0]).toMatchObject({ code: 'OVER_LIMIT', limitRemaining: 0 });
      const metrics = await (await fetch(`${svc.httpUrl}/metrics`)).text();
      expect(metrics).toMatch(/meshlimit_decisions_total\{domain="e2e",rule="e2e\.fw",outcome="shadow_over_limit"\} 1/);
    } finally {
      await svc.close();
    }
  });
});

describe('share_threshold (envoyproxy/ratelimit): values matching one wildcard share a counter', () => {
  it('counts every matching value on one counter', async () => {
    const cfg = `
domain: share
descriptors:
  - key: files
    value: "docs/*"
    share_threshold: true
    rate_limit: { unit: minute, requests_per_unit: 2 }
  - key: files
    value: "pics/*"
    rate_limit: { unit: minute, requests_per_unit: 2 }
`;
    const svc = await bootService({ files: { 's.yaml': cfg }, now: () => T0 });
    try {
      const ask = (v: string) => svc.client.shouldRateLimit({ domain: 'share', descriptors: [d('files', v)] });
      expect((await ask('docs/a')).overallCode).toBe('OK');
      expect((await ask('docs/b')).overallCode).toBe('OK');
      expect((await ask('docs/c')).overallCode).toBe('OVER_LIMIT');
      // without share_threshold each value has its own counter
      for (const v of ['pics/a', 'pics/b', 'pics/c']) expect((await ask(v)).overallCode).toBe('OK');
    } finally {
      await svc.close();
    }
  });
});
