import type { Redis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import { RedisBackend } from '../../../src/backend/redis/backend.js';
import type { RedisConnectionOptions } from '../../../src/backend/redis/connection.js';
import { createQuotaStore, quotaStateKey, type QuotaStore } from '../../../src/quota/index.js';
import { startRedisSentinel, type RedisSentinelSetup } from '../../support/redis-sentinel.js';
import { defineQuotaSuite } from './quota-conformance.js';

/** The quota store conformance suite through Sentinel (REDIS_TYPE=sentinel), as createQuotaStore builds it. */
let setup: RedisSentinelSetup;
let admin: Redis;
beforeAll(async () => {
  setup = await startRedisSentinel();
  admin = setup.client();
});
afterAll(async () => {
  await setup?.stop();
});

defineQuotaSuite('redis sentinel', async () => {
  const redis: RedisConnectionOptions = {
    type: 'sentinel',
    nodes: setup.sentinelAddresses,
    sentinelMasterName: setup.masterName,
    commandTimeoutMs: 5_000,
  };
  const rls = new RedisBackend(redis);
  await rls.waitReady();
  const stores: QuotaStore[] = [];
  return {
    rls,
    shared: true,
    store: async (o) => {
      const s = createQuotaStore({ type: 'redis', redis, maxEnvoysPerRule: o?.maxEnvoysPerRule });
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
