import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisBackend } from '../../../src/backend/redis/backend.js';
import type { CounterOp } from '../../../src/limiter/types.js';
import { startRedis, type RedisInstance } from '../../support/redis.js';
import { redisNodes } from '../../support/redis-target.js';
import { eventually } from '../../support/service.js';

/**
 * What the Redis backend reports to the circuit breaker, against a real redis-server: a paused
 * Redis is silent until its late replies come, a killed one is disconnected.
 */
let redis: RedisInstance;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});

const op: CounterOp = { key: '{h}:fw', algorithm: 'fixed_window', windowMs: 60_000, threshold: 10, burst: 10, hits: 1, enforce: true };

describe('RedisBackend.health', () => {
  it('silent while paused, alive again when the late reply comes; disconnected when killed', async () => {
    const b = new RedisBackend({ nodes: redisNodes(`127.0.0.1:${redis.port}`), commandTimeoutMs: 50 });
    try {
      await b.waitReady(5_000);
      await b.evaluate([op], { chargeOnDeny: false });
      expect(b.health.lost()).toBe(false);
      expect(b.health.silentFor(performance.now())).toBe(0);

      await redis.pause(600);
      const late = await b.evaluate([op], { chargeOnDeny: false }).catch((e: unknown) => e);
      expect(late).toBeInstanceOf(Error); // timed out after 50 ms
      await new Promise((r) => setTimeout(r, 300));
      expect(b.health.silentFor(performance.now())).toBeGreaterThanOrEqual(250);
      // The pause ends: the reply arrives late, which proves Redis alive.
      await eventually(async () => b.health.silentFor(performance.now()) === 0, 3_000, 20);
      expect(b.health.consecutiveFailures()).toBe(0);

      await redis.kill();
      await eventually(async () => b.health.lost(), 3_000, 20);
    } finally {
      await b.close();
    }
  });
});
