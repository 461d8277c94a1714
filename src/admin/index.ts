import type { BackendStack } from '../backend/stack.js';
import type { CompiledSnapshot, ConfigStore } from '../config/index.js';
import type { RateLimiter } from '../limiter/limiter.js';
import type { Backend } from '../limiter/ports.js';
import { createAdminAuth } from '../server/http/admin-auth.js';
import type { AdminRoutesOptions } from '../server/http/admin-routes.js';
import type { Settings } from '../settings/index.js';
import type { ConsoleStats } from '../telemetry/console-stats.js';
import type { Metrics } from '../telemetry/metrics.js';
import { createAdminService } from './service.js';
import { RedisBackend } from '../backend/redis/backend.js';
import { RedisClusterBackend } from '../backend/redis/cluster-backend.js';
import type { Logger } from '../telemetry/logger.js';
import { MemoryOverrideStore, RedisOverrideStore, type OverrideStore } from './override-store.js';

export { createAdminService, type AdminServiceDeps } from './service.js';
export type { CounterView } from './counters.js';
export { MemoryOverrideStore, RedisOverrideStore, type AuditEntry, type OverrideStore } from './override-store.js';

/** The admin settings the override store reads (Settings['admin']). */
export interface OverrideStoreSettings {
  readonly dataDir: string | undefined;
  readonly overridesPollMs: number;
  readonly overridesMax: number;
  readonly auditMax: number;
}

/**
 * The override store of a counter store: in Redis beside the counters (on the same connection)
 * when the store is Redis, in this process (and DATA_DIR) otherwise. A Redis store loads the
 * overrides once before it resolves when Redis answers; when it does not, polling loads them as
 * soon as it does.
 */
export async function openOverrideStore(
  settings: OverrideStoreSettings,
  store: Backend,
  keyPrefix: string,
  logger: Logger | undefined,
): Promise<OverrideStore> {
  const common = { max: settings.overridesMax, auditMax: settings.auditMax, logger };
  if (store instanceof RedisBackend || store instanceof RedisClusterBackend) {
    const redis = new RedisOverrideStore(store.client, keyPrefix, { ...common, pollMs: settings.overridesPollMs });
    if (store.isReady()) await redis.poll();
    return redis;
  }
  return new MemoryOverrideStore({ ...common, dataDir: settings.dataDir });
}

/** The running parts the admin API reads and changes. */
export interface AdminParts {
  readonly limiter: RateLimiter;
  readonly config: ConfigStore<CompiledSnapshot>;
  readonly stack: BackendStack;
  readonly overrides: OverrideStore;
  readonly stats: ConsoleStats;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly now?: (() => number | undefined) | undefined;
  readonly forgetDenials: () => void;
}

/** The admin routes' options (auth from ADMIN_*, the service over the running parts). */
export function adminRoutes(settings: Settings, p: AdminParts): AdminRoutesOptions {
  const auth = createAdminAuth(settings.admin);
  const api = createAdminService({
    limiter: p.limiter,
    config: p.config,
    store: p.stack.store,
    perSecondStore: p.stack.perSecondStore,
    overrides: p.overrides,
    stats: p.stats,
    metrics: p.metrics,
    backendType: settings.backend.type,
    storesConnected: () => p.stack.storesConnected(),
    whyNotConnected: () => p.stack.whyNotConnected(),
    mutationsEnabled: auth.mutationsEnabled,
    stringLimits: settings.limiter.stringLimits,
    logger: p.logger,
    now: p.now,
    forgetDenials: p.forgetDenials,
  });
  return { auth, api, stringLimits: settings.limiter.stringLimits };
}
