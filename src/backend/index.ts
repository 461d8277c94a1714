import type { Backend } from '../limiter/ports.js';
import { MemoryBackend, type MemoryBackendOptions } from './memory.js';
import { RedisClusterBackend, type RedisClusterBackendOptions } from './redis/cluster-backend.js';
import { RedisBackend } from './redis/backend.js';

/** BACKEND_TYPE's values: the counter stores meshlimit has. */
export const BACKEND_TYPES = ['memory', 'redis'] as const;
export type BackendType = (typeof BACKEND_TYPES)[number];

/**
 * Which counter store to build; the composition root maps environment settings onto this
 * (BACKEND_TYPE, REDIS_URL, REDIS_TYPE, REDIS_AUTH, REDIS_SENTINEL_AUTH, REDIS_TLS, ...).
 */
export interface BackendOptions {
  readonly type: BackendType;
  readonly memory?: MemoryBackendOptions;
  /**
   * Required when `type` is 'redis'. `redis.type`: 'single' (default) and 'sentinel'
   * build a {@link RedisBackend}, 'cluster' a {@link RedisClusterBackend}. The cluster-only
   * fields (`onRefundError`, `refundScript`, `cluster*`) are ignored for the others.
   */
  readonly redis?: RedisClusterBackendOptions;
}

export function createBackend(options: BackendOptions): Backend {
  switch (options.type) {
    case 'memory':
      return new MemoryBackend(options.memory);
    case 'redis': {
      if (!options.redis) throw new TypeError("createBackend: type 'redis' needs a 'redis' options object");
      return options.redis.type === 'cluster' ? new RedisClusterBackend(options.redis) : new RedisBackend(options.redis);
    }
    default:
      throw new TypeError(`createBackend: unknown backend type '${String((options as { type: unknown }).type)}'`);
  }
}

export type { Backend } from '../limiter/ports.js';
export type { CounterOp, CounterOutcome, EvaluateOptions, EvaluateResult } from '../limiter/types.js';
export { MemoryBackend, type MemoryBackendOptions } from './memory.js';
export { RedisBackend, type RedisBackendOptions, type RedisStateChange } from './redis/backend.js';
export { RedisClusterBackend, type RedisClusterBackendOptions } from './redis/cluster-backend.js';
export { REDIS_TYPES, type RedisAddress, type RedisConnectionOptions, type RedisCredentials, type RedisType } from './redis/connection.js';
export { validateOps } from '../limiter/ops.js';
