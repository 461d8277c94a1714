import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisCommand } from '../support/redis-admin.js';
import { startRedis, type RedisInstance } from '../support/redis.js';
import { bootService, eventually, type BootedService } from '../support/service.js';

/**
 * LOCAL_CACHE_SIZE on real Redis: once a fixed-window counter is over, further denials come from
 * the process without a Redis round trip until the window ends; answers stay exactly what Redis
 * would say; a config reload clears the cache; other algorithms are never cached.
 */
const config = (limit: number) => `
domain: hot
descriptors:
  - key: k
    rate_limit: { unit: minute, requests_per_unit: ${limit} }
  - key: tb
    rate_limit: { algorithm: token_bucket, unit: minute, requests_per_unit: 1 }
`;
const T0 = 1_800_000_000_000;
let now = T0 + 10_000;
let redis: RedisInstance;
let svc: BootedService;

beforeAll(async () => {
  redis = await startRedis();
  svc = await bootService({
    files: { 'h.yaml': config(2) },
    env: { BACKEND_TYPE: 'redis', REDIS_URL: `127.0.0.1:${redis.port}`, LOCAL_CACHE_SIZE: '100' },
    now: () => now,
  });
});
afterAll(async () => {
  await svc?.close();
  await redis?.stop();
});

/**
 * Script calls Redis has run (INFO commandstats): decisions only. Every Redis round trip of the
 * service would also count the tenant overrides' version poll (OVERRIDES_POLL_MS), which runs
 * whatever the requests do.
 */
const redisCalls = async (): Promise<number> => {
  const info = String(await redisCommand(redis.port, ['INFO', 'commandstats']));
  return [...info.matchAll(/^cmdstat_(?:evalsha|eval):calls=(\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
};
const ask = (key: string, value = 'x') => svc.client.shouldRateLimit({ domain: 'hot', descriptors: [{ entries: [{ key, value }] }] });

describe('over-limit cache (LOCAL_CACHE_SIZE)', () => {
  it('answers repeated denials of a hot fixed-window key without Redis, exactly, until the window ends', async () => {
    expect((await ask('k')).overallCode).toBe('OK');
    expect((await ask('k')).overallCode).toBe('OK');
    const first = await ask('k'); // over: asked Redis, now cached
    expect(first.overallCode).toBe('OVER_LIMIT');
    const before = await redisCalls();
    for (let i = 0; i < 20; i++) {
      const r = await ask('k');
      expect(r.overallCode).toBe('OVER_LIMIT');
      expect(r.statuses[0]).toMatchObject({ code: 'OVER_LIMIT', limitRemaining: 0, durationUntilReset: { seconds: 50 } });
    }
    expect(await redisCalls()).toBe(before);
    // Another value of the same rule is its own counter: still asks Redis.
    expect((await ask('k', 'other')).overallCode).toBe('OK');
    expect(await redisCalls()).toBe(before + 1);
    // The window ends: Redis is asked again and admits.
    now += 50_000;
    expect((await ask('k')).overallCode).toBe('OK');
    expect(await redisCalls()).toBe(before + 2);
  });

  it('never caches token buckets (they refill)', async () => {
    await ask('tb');
    const before = await redisCalls();
    for (let i = 0; i < 3; i++) expect((await ask('tb')).overallCode).toBe('OVER_LIMIT');
    expect(await redisCalls()).toBe(before + 3);
  });

  it('is cleared by a config reload, so a raised limit applies at once', async () => {
    now += 60_000;
    for (let i = 0; i < 3; i++) await ask('k', 'reload');
    expect((await ask('k', 'reload')).overallCode).toBe('OVER_LIMIT');
    svc.writeConfig('h.yaml', config(10));
    await eventually(async () => (await ask('k', 'reload')).overallCode === 'OK');
  });
});
