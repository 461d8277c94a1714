import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryBackend } from '../../../src/backend/memory.js';
import { RedisBackend } from '../../../src/backend/redis/backend.js';
import { RedisClusterBackend } from '../../../src/backend/redis/cluster-backend.js';
import { compileConfig } from '../../../src/config/compile.js';
import type { CompiledSnapshot } from '../../../src/config/compiled.js';
import { ConfigStore } from '../../../src/config/store.js';
import { RateLimiter, type LimiterObserver } from '../../../src/limiter/limiter.js';
import type { Backend } from '../../../src/limiter/ports.js';
import type { ReservationResult } from '../../../src/limiter/reservation-types.js';
import { startRedisCluster, type RedisCluster } from '../../support/redis-cluster.js';
import { startRedis, type RedisInstance } from '../../support/redis.js';
import { redisNodes } from '../../support/redis-target.js';
import { plainCheck, realCosts, reserveCheck, RESERVATION_CONFIG, settleCheck } from '../../support/reservations.js';

/**
 * The check-then-report race (envoyproxy/ai-gateway#680), reproduced with an ordinary rule and
 * closed by a reservation rule, on memory, a real Redis and a real Redis Cluster: 50 concurrent
 * requests for a tenant with room for 5 estimated costs (5,000 per minute, estimate 1,000).
 */

let redis: RedisInstance;
let cluster: RedisCluster;
beforeAll(async () => {
  [redis, cluster] = await Promise.all([startRedis(), startRedisCluster({ nodeTimeoutMs: 5_000 })]);
});
afterAll(async () => {
  await Promise.all([redis?.stop(), cluster?.stop()]);
});

const backends: Record<string, () => Promise<Backend>> = {
  memory: async () => new MemoryBackend({ sweepIntervalMs: 0 }),
  'redis standalone': async () => {
    const b = new RedisBackend({ nodes: redisNodes(redis.url), type: 'single', commandTimeoutMs: 5_000 });
    await b.waitReady();
    return b;
  },
  'redis cluster': async () => {
    const b = new RedisClusterBackend({ nodes: redisNodes(cluster.seeds), type: 'cluster', commandTimeoutMs: 5_000 });
    await b.waitReady(10_000);
    return b;
  },
};

function limiterOn(backend: Backend, prefix: string, observer?: LimiterObserver): RateLimiter {
  const store = new ConfigStore<CompiledSnapshot>(compileConfig([{ path: 'ai.yaml', text: RESERVATION_CONFIG }]));
  return new RateLimiter(store, backend, { keyPrefix: prefix, shadowMode: false, chargeOnDeny: false }, observer);
}

for (const [name, make] of Object.entries(backends)) {
  describe(`check-then-report race: ${name}`, () => {
    it('an ordinary rule (check with hits_addend 0, charge at stream end) admits all 50', async () => {
      const backend = await make();
      const limiter = limiterOn(backend, `race-plain:${name}:${Date.now()}:`);
      const checks = await Promise.all(Array.from({ length: 50 }, () => limiter.shouldRateLimit(plainCheck('t1', 0))));
      expect(checks.filter((d) => d.code === 'OK')).toHaveLength(50);
      await Promise.all(Array.from({ length: 50 }, () => limiter.shouldRateLimit(plainCheck('t1', 1000))));
      const after = await limiter.shouldRateLimit(plainCheck('t1', 0));
      expect(after.code).toBe('OVER_LIMIT'); // 50,000 charged against a limit of 5,000
      await backend.close();
    });

    it('a reservation rule admits exactly 5 of 50, and after settlement the counter is the sum of the real costs', async () => {
      const backend = await make();
      const results: ReservationResult[] = [];
      const observer: LimiterObserver = { onStatus: () => {}, onReservation: (_d, _r, _o, r) => void (r && results.push(r)) };
      const limiter = limiterOn(backend, `race-rsv:${name}:${Date.now()}:`, observer);
      const ids = Array.from({ length: 50 }, (_, i) => `req-${i}`);
      const decisions = await Promise.all(ids.map((id) => limiter.shouldRateLimit(reserveCheck('t1', id))));
      const admitted = ids.filter((_, i) => decisions[i]!.code === 'OK');
      expect(admitted).toHaveLength(5);
      const costs = realCosts(5);
      const settled = await Promise.all(admitted.map((id, i) => limiter.shouldRateLimit(settleCheck('t1', id, costs[i]!))));
      expect(settled.every((d) => d.code === 'OK')).toBe(true);
      // An unknown id's settle reads the counter: nothing outstanding, used = the sum of the real costs.
      results.length = 0;
      await limiter.shouldRateLimit(settleCheck('t1', 'probe', 1));
      const sum = costs.reduce((a, b) => a + b, 0);
      expect(results).toEqual([{ outcome: 'unknown', expired: 0, outstanding: 0, used: sum, reserved: 0 }]);
      await backend.close();
    });
  });
}
