import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { envoyOn, rlqsRules, type SimEnvoy } from '../support/rlqs-envoy.js';
import { startRedis, type RedisInstance } from '../support/redis.js';
import { bootService, eventually, type BootedService } from '../support/service.js';

/**
 * What broke: with REDIS_PERSECOND=true, RLS counts a per-second limit in the per-second Redis,
 * but RLQS divided the same rule's budget in the main Redis (its quota store knew only
 * REDIS_URL): requests admitted through RLS and through RLQS on one per-second rule did not
 * share a budget, so together they could reach twice the limit. Now the quota state of a
 * per-second limit lives in the per-second Redis, beside its RLS counter, as every other rule's
 * lives beside its counter in the main one.
 */
const CONFIG = `domain: q\ndescriptors:\n${rlqsRules('api', { fast: 'second 100', slow: 'minute 600' })}`;
let main: RedisInstance;
let perSecond: RedisInstance;
let svc: BootedService;
let envoy: SimEnvoy | undefined;
beforeAll(async () => {
  [main, perSecond] = await Promise.all([startRedis(), startRedis()]);
  svc = await bootService({
    files: { 'q.yaml': CONFIG },
    env: {
      BACKEND_TYPE: 'redis',
      REDIS_URL: `127.0.0.1:${main.port}`,
      REDIS_PERSECOND: 'true',
      REDIS_PERSECOND_URL: `127.0.0.1:${perSecond.port}`,
    },
  });
});
afterAll(async () => {
  envoy?.close();
  await svc?.close();
  await Promise.all([main?.stop(), perSecond?.stop()]);
});

describe('RLQS with REDIS_PERSECOND', () => {
  it('divides a per-second rule in the per-second Redis, beside its RLS counter, and a minute rule in the main one', async () => {
    envoy = envoyOn(svc.handle.grpcPort, 'q');
    envoy.request({ api: 'fast' });
    await eventually(async () => envoy!.assignment({ api: 'fast' })?.kind === 'token_bucket', 5_000, 20);
    // The same rule through RLS, in the same second: its counter goes to the per-second Redis.
    await svc.client.shouldRateLimit({ domain: 'q', descriptors: [{ entries: [{ key: 'api', value: 'fast' }] }] });
    const psKeys = await perSecond.client().keys('*');
    expect(await main.client().keys('*')).toEqual([]);
    // The RLQS state of the rule (`...:rlqs`) beside its RLS counter, under one hash tag (the
    // counter itself may already be gone if the second ended since).
    expect(psKeys.filter((k) => k.endsWith(':rlqs')).length, psKeys.join(', ')).toBe(1);
    expect(new Set(psKeys.map((k) => /\{[^}]*\}/.exec(k)?.[0])).size, psKeys.join(', ')).toBe(1);

    envoy.request({ api: 'slow' });
    await eventually(async () => envoy!.assignment({ api: 'slow' })?.kind === 'token_bucket', 5_000, 20);
    expect((await main.client().keys('*')).length).toBeGreaterThanOrEqual(1);
  });
});
