import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisOverrideStore } from '../../src/admin/override-store.js';
import { startRedis, type RedisInstance } from '../support/redis.js';

/**
 * What broke: the tenant overrides' first poll of Redis (version still unset, no overrides
 * there) told its listeners the overrides had changed, and the listener clears the over-limit
 * cache (LOCAL_CACHE_SIZE): a hot key's cached denials went back to Redis once after start
 * (found by e2e/over-limit-cache). Only a real change is reported now.
 */
let redis: RedisInstance;
let client: Redis;
beforeAll(async () => {
  redis = await startRedis();
  client = new Redis({ port: redis.port, host: '127.0.0.1', lazyConnect: false });
});
afterAll(async () => {
  client?.disconnect();
  await redis?.stop();
});

describe('tenant overrides polled from Redis', () => {
  it('report no change when the first load finds none, and a change when one appears', async () => {
    const store = new RedisOverrideStore(client, 'reg:', { max: 10, auditMax: 10, pollMs: 60_000 });
    let changes = 0;
    store.onChange(() => changes++);
    await store.poll();
    await store.poll();
    expect(changes).toBe(0);
    await store.set(
      {
        domain: 'd',
        entries: [{ key: 'k', value: 'v' }],
        limit: { algorithm: 'fixed_window', unit: 'minute', unitMultiplier: 1, requestsPerUnit: 5, burst: 5 },
      },
      'test',
    );
    await store.poll();
    expect(changes).toBeGreaterThan(0);
    await store.close();
  });
});
