import type { Redis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import { MemoryBackend } from '../../../src/backend/memory.js';
import { RedisBackend } from '../../../src/backend/redis/backend.js';
import { startRedis, type RedisInstance } from '../../support/redis.js';
import { defineBackendSuite, redisRaw } from './conformance.js';
import { redisNodes } from '../../support/redis-target.js';

defineBackendSuite('memory', async () => {
  const backend = new MemoryBackend({ sweepIntervalMs: 0 });
  return {
    backend,
    cleanup: () => backend.close(),
    raw: {
      get: async (key) => backend.getRaw(key) ?? null,
      set: async (key, value) => backend.setRaw(key, value),
    },
  };
});

let redis: RedisInstance;
let admin: Redis;
beforeAll(async () => {
  redis = await startRedis();
  admin = redis.client();
});
afterAll(async () => {
  await redis?.stop();
});

defineBackendSuite('redis standalone', async () => {
  // A generous command timeout: the concurrency scenario queues 2,000 calls at once on a 2-core
  // CI machine; the 50 ms production default is exercised in redis-backend.test.ts.
  const backend = new RedisBackend({ nodes: redisNodes(redis.url), type: 'single', commandTimeoutMs: 5_000 });
  await backend.waitReady();
  return {
    backend,
    cleanup: () => backend.close(),
    raw: redisRaw(admin),
  };
});
