import type { Redis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import { PerSecondSplitBackend } from '../../../src/backend/per-second.js';
import { RedisBackend } from '../../../src/backend/redis/backend.js';
import { startRedis, type RedisInstance } from '../../support/redis.js';
import { redisNodes } from '../../support/redis-target.js';
import { defineBackendSuite, NODE_TAGS, readState, redisRaw } from './conformance.js';

/**
 * REDIS_PERSECOND's split store passes the one conformance suite, on two real redis-servers. The
 * suite's scenarios use minute windows, so here the split routes by descriptor instead of by
 * window length: every op of the third descriptor tag goes to the second Redis. The scenarios on
 * several descriptors then span both stores (a request denied by one store and refunded by the
 * other, concurrent requests across both, chargeOnDeny, refund handles) and must give exactly the
 * answers and stored states one store gives. The production rule (a one-second window) is tested
 * in test/unit/backend/per-second.test.ts and through the service in test/e2e/per-second.test.ts.
 */

const SECOND_STORE_TAG = `{${NODE_TAGS[2]}}`;

let main: RedisInstance;
let second: RedisInstance;
let mainAdmin: Redis;
let secondAdmin: Redis;
beforeAll(async () => {
  [main, second] = await Promise.all([startRedis(), startRedis()]);
  mainAdmin = main.client();
  secondAdmin = second.client();
});
afterAll(async () => {
  await Promise.allSettled([main?.stop(), second?.stop()]);
});

defineBackendSuite('per-second split over two redis-servers', async () => {
  // A generous command timeout, as for the standalone suite (2,000 concurrent calls on 2 cores).
  const store = (r: RedisInstance): RedisBackend => new RedisBackend({ nodes: redisNodes(r.url), type: 'single', commandTimeoutMs: 5_000 });
  const [a, b] = [store(main), store(second)];
  await Promise.all([a.waitReady(), b.waitReady()]);
  const backend = new PerSecondSplitBackend(a, b, { routesToPerSecond: (op) => op.key.includes(SECOND_STORE_TAG) });
  const mainRaw = redisRaw(mainAdmin);
  const secondRaw = redisRaw(secondAdmin);
  const rawOf = (key: string): typeof mainRaw => (key.includes(SECOND_STORE_TAG) ? secondRaw : mainRaw);
  return {
    backend,
    cleanup: () => backend.close(),
    raw: {
      // A key is only ever in its own store: the other one must not hold it.
      get: async (key) => {
        const other = key.includes(SECOND_STORE_TAG) ? mainAdmin : secondAdmin;
        if ((await readState(other, key)) !== null) throw new Error(`${key} was written to the wrong store`);
        return rawOf(key).get(key);
      },
      set: (key, value) => rawOf(key).set(key, value),
    },
  };
});
