import type { RedisConnectionOptions } from '../backend/redis/connection.js';
import type { Backend } from '../limiter/ports.js';
import { MemoryQuotaStore } from './memory-store.js';
import { RedisQuotaStore } from './redis-store.js';
import type { QuotaStore } from './types.js';

/**
 * Which quota store to build, from the same settings as the counter backend (BACKEND_TYPE,
 * REDIS_URL, REDIS_TYPE, ...): the composition root maps them as it does for createBackend.
 * `redis.type` 'single' and 'sentinel' use one client, 'cluster' a cluster client; the quota
 * state of a rule lives beside its RLS counter under the same hash tag either way.
 */
export interface QuotaStoreOptions {
  readonly type: 'memory' | 'redis';
  /** Required when `type` is 'redis': the counter backend's connection settings. */
  readonly redis?: RedisConnectionOptions;
  /**
   * Required when `type` is 'memory': the memory counter backend RLS uses (unwrapped), whose
   * counters are the budget RLQS shares.
   */
  readonly backend?: Backend;
  /** Most Envoys per rule counter (default MAX_ENVOYS_PER_RULE). */
  readonly maxEnvoysPerRule?: number;
}

export function createQuotaStore(options: QuotaStoreOptions): QuotaStore {
  switch (options.type) {
    case 'memory':
      if (!options.backend) throw new TypeError("createQuotaStore: type 'memory' needs the memory counter backend as 'backend'");
      return new MemoryQuotaStore({ backend: options.backend, maxEnvoysPerRule: options.maxEnvoysPerRule });
    case 'redis':
      if (!options.redis) throw new TypeError("createQuotaStore: type 'redis' needs a 'redis' options object");
      return new RedisQuotaStore({ redis: options.redis, maxEnvoysPerRule: options.maxEnvoysPerRule });
    default:
      throw new TypeError(`createQuotaStore: unknown store type '${String((options as { type: unknown }).type)}'`);
  }
}

export type { QuotaAssignment, QuotaLimit, QuotaReport, QuotaStore } from './types.js';
export { MAX_ENVOYS_PER_RULE, MAX_ENVOY_ID_LENGTH, MAX_REPORT_INTERVAL_SEC, MAX_RULE_KEY_LENGTH } from './types.js';
export { quotaCounterKey, quotaStateKey } from './keys.js';
export { overshootBound, FLOOR_FRACTION, TTL_INTERVALS, RECLAIM_INTERVALS, type OvershootInput } from './allocate.js';
export { MemoryQuotaStore, type MemoryQuotaStoreOptions } from './memory-store.js';
export { RedisQuotaStore, type RedisQuotaStoreOptions } from './redis-store.js';
export { SplitQuotaStore } from './split-store.js';
