import type { RedisConnectionOptions } from '../backend/redis/connection.js';
import type { QuotaStore } from './types.js';

/**
 * Which quota store to build, from the same settings as the counter backend (BACKEND_TYPE,
 * REDIS_URL, REDIS_TYPE, ...): the composition root maps them as it does for createBackend.
 * `redis.type` 'single' and 'sentinel' use one client, 'cluster' a cluster client; the quota
 * state of a rule lives beside its RLS counter under the same hash tag either way.
 */
export interface QuotaStoreOptions {
  readonly type: 'memory' | 'redis';
  /** Required when `type` is 'redis'. */
  readonly redis?: RedisConnectionOptions;
}

export function createQuotaStore(options: QuotaStoreOptions): QuotaStore {
  throw new Error(`createQuotaStore(${options.type}): not implemented yet`);
}

export type { QuotaAssignment, QuotaLimit, QuotaReport, QuotaStore } from './types.js';
export { MAX_ENVOYS_PER_RULE, MAX_ENVOY_ID_LENGTH, MAX_REPORT_INTERVAL_SEC } from './types.js';
export { quotaCounterKey } from './keys.js';
