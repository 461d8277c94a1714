import type { Redis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import { MemoryBackend } from '../../../src/backend/memory.js';
import { RedisBackend } from '../../../src/backend/redis/backend.js';
import { RedisClusterBackend } from '../../../src/backend/redis/cluster-backend.js';
import { MemoryQuotaStore, createQuotaStore, quotaStateKey, type QuotaStore } from '../../../src/quota/index.js';
import { startRedisCluster, type RedisCluster } from '../../support/redis-cluster.js';
import { startRedis, type RedisInstance } from '../../support/redis.js';
import { redisNodes } from '../../support/redis-target.js';
import { defineQuotaSuite } from './quota-conformance.js';

defineQuotaSuite('memory', async () => {
  const rls = new MemoryBackend({ sweepIntervalMs: 0 });
  return {
    rls,
    shared: false,
    store: async (o) => new MemoryQuotaStore({ backend: rls, maxEnvoysPerRule: o?.maxEnvoysPerRule }),
    cleanup: () => rls.close(),
  };
});

let redis: RedisInstance;
let admin: Redis;
let cluster: RedisCluster;
beforeAll(async () => {
  redis = await startRedis();
  admin = redis.client();
  cluster = await startRedisCluster({ primaries: 3, replicasPerPrimary: 0 });
});
afterAll(async () => {
  await redis?.stop();
  await cluster?.stop();
});

defineQuotaSuite('redis standalone', async () => {
  const nodes = redisNodes(redis.url);
  const rls = new RedisBackend({ nodes, type: 'single', commandTimeoutMs: 5_000 });
  await rls.waitReady();
  const stores: QuotaStore[] = [];
  return {
    rls,
    shared: true,
    store: async (o) => {
      const s = createQuotaStore({
        type: 'redis',
        redis: { nodes, type: 'single', commandTimeoutMs: 5_000 },
        maxEnvoysPerRule: o?.maxEnvoysPerRule,
      });
      stores.push(s);
      await s.waitReady();
      return s;
    },
    stateTtlMs: (key) => admin.pttl(quotaStateKey(key)),
    cleanup: async () => {
      for (const s of stores) await s.close();
      await rls.close();
    },
  };
});

defineQuotaSuite('redis cluster', async () => {
  const nodes = redisNodes(cluster.seeds);
  const rls = new RedisClusterBackend({ nodes, type: 'cluster', commandTimeoutMs: 5_000 });
  await rls.waitReady();
  const stores: QuotaStore[] = [];
  const client = cluster.client();
  return {
    rls,
    shared: true,
    store: async (o) => {
      const s = createQuotaStore({
        type: 'redis',
        redis: { nodes, type: 'cluster', commandTimeoutMs: 5_000 },
        maxEnvoysPerRule: o?.maxEnvoysPerRule,
      });
      stores.push(s);
      await s.waitReady();
      return s;
    },
    stateTtlMs: (key) => client.pttl(quotaStateKey(key)),
    cleanup: async () => {
      for (const s of stores) await s.close();
      await rls.close();
    },
  };
});
