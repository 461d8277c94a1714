import { InvalidRequestError } from '../errors.js';
import type { CompiledSnapshot, ConfigStore } from '../config/index.js';
import { checkOverride, checkOverrideEntries } from '../config/override-schema.js';
import { DEFAULT_STRING_LIMITS, type StringLimits } from '../limiter/string-limits.js';
import type { RateLimitCheck } from '../limiter/types.js';
import type { AdminApi } from '../server/http/admin-routes.js';
import type { ConsoleStats } from '../telemetry/console-stats.js';
import type { Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';
import { deleteCounters, readCounters, type CounterStores, type CounterView } from './counters.js';
import type { OverrideStore } from './override-store.js';

/**
 * The admin API's implementation (src/server/http/admin-routes.ts declares it): counters
 * (./counters.ts), tenant overrides through their store (./override-store.ts), and the console's
 * views of live traffic and state.
 */
export interface AdminServiceDeps extends CounterStores {
  readonly config: ConfigStore<CompiledSnapshot>;
  readonly overrides: OverrideStore;
  readonly stats: ConsoleStats;
  readonly metrics: Metrics;
  readonly backendType: string;
  /** The stores' connection state (BackendStack.storesConnected / whyNotConnected). */
  readonly storesConnected: () => boolean;
  readonly whyNotConnected: () => string | undefined;
  readonly mutationsEnabled: boolean;
  readonly stringLimits?: StringLimits | undefined;
  readonly logger?: Logger | undefined;
}

export function createAdminService(d: AdminServiceDeps): AdminApi {
  const limits = d.stringLimits ?? DEFAULT_STRING_LIMITS;
  const describe = (check: RateLimitCheck, views: CounterView[]) => ({
    domain: check.domain,
    known_domain: d.config.current().hasDomain(check.domain),
    descriptors: check.descriptors.map((desc, i) => ({ entries: desc.entries, counters: views.filter((v) => v.descriptor === i) })),
  });
  return {
    counters: async (check) => describe(check, await readCounters(d, check)),
    async resetCounters(check, who) {
      const { keys, deleted } = await deleteCounters(d, check);
      // The audit line: who, the domain, the descriptors' shapes and counter keys (digests, never values).
      const shapes = check.descriptors.map((x) => x.entries.map((e) => e.key).join('.'));
      d.logger?.info({ who, domain: check.domain, shapes, keys, deleted }, 'counters reset through the admin API');
      return { deleted, ...describe(check, await readCounters(d, check)) };
    },
    overrides() {
      const table = d.overrides.current();
      return { store: d.overrides.kind, count: table.size, overrides: table.list };
    },
    async setOverride(body, who) {
      const checked = checkOverride(body, (domain) => d.config.current().hasDomain(domain), limits);
      const audit = await d.overrides.set(checked, who);
      return { override: { domain: checked.domain, entries: checked.entries, limit: checked.limit }, audit };
    },
    async removeOverride(domain, entries, who) {
      const problems: string[] = [];
      if (typeof domain !== 'string' || domain === '') problems.push('domain: must be a non-empty string');
      const list = checkOverrideEntries(entries, limits, problems);
      if (problems.length > 0 || list === undefined || typeof domain !== 'string')
        throw new InvalidRequestError(`invalid override: ${problems.join('; ')}`);
      return { audit: await d.overrides.remove(domain, list, who) };
    },
    audit: () => d.overrides.audit(),
    traffic: () => ({ since: new Date(d.stats.since).toISOString(), rules: d.stats.ruleTraffic(), top_limited: d.stats.topLimited(25) }),
    state: () => state(d),
  };
}

async function state(d: AdminServiceDeps): Promise<unknown> {
  const snap = d.config.current();
  return {
    backend: d.backendType,
    stores_connected: d.storesConnected(),
    why_not_connected: d.whyNotConnected() ?? null,
    breaker: await breakerState(d.metrics),
    config: {
      version: snap.version,
      loaded_at: snap.loadedAt.toISOString(),
      files: snap.files,
      domains: snap.domainNames,
      tree: snap.dump(),
    },
    overrides: { store: d.overrides.kind, count: d.overrides.current().size },
    mutations_enabled: d.mutationsEnabled,
  };
}

/** The breaker's state from its gauge (the state whose series is 1); null without a breaker. */
async function breakerState(metrics: Metrics): Promise<string | null> {
  const gauge = metrics.registry.getSingleMetric('meshlimit_breaker_state');
  if (gauge === undefined) return null;
  const { values } = await gauge.get();
  const on = values.find((v) => v.value === 1);
  return on === undefined ? null : String(on.labels['state']);
}
