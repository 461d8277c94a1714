/**
 * Wiring of the RLQS service (RLQS_ENABLED), kept out of app.ts's line budget: the quota store on
 * the same backend settings as the counters (with REDIS_PERSECOND, per-second limits on that
 * Redis), the assigner over the live config, tenant overrides and the RLS failure policy, the
 * service with its metrics and spans. Holds no logic of its own.
 */
import type { BackendStack } from './backend/stack.js';
import type { CompiledSnapshot, ConfigStore } from './config/index.js';
import { ruleWithOverride, type OverrideSource } from './limiter/overrides.js';
import { createQuotaStore, SplitQuotaStore, type QuotaStore } from './quota/index.js';
import { Assigner } from './server/grpc/rlqs/assigner.js';
import { RlqsService } from './server/grpc/rlqs/service.js';
import type { Settings } from './settings/index.js';
import type { Logger } from './telemetry/logger.js';
import type { Metrics } from './telemetry/metrics.js';
import { inSpan, tracingEnabled } from './telemetry/tracing.js';

export interface OpenedRlqs {
  readonly service: RlqsService;
  /** Closes the quota store (after the gRPC server has ended the streams). */
  close(): Promise<void>;
}

export function openRlqs(
  settings: Settings,
  stack: BackendStack,
  store: ConfigStore<CompiledSnapshot>,
  metrics: Metrics,
  logger: Logger,
  tenants?: { current(): OverrideSource },
): OpenedRlqs | undefined {
  const s = settings.rlqs;
  if (!s.enabled) return undefined;
  const quota = lazyQuotaStore(() => {
    if (settings.backend.type !== 'redis') return createQuotaStore({ type: 'memory', backend: stack.store });
    const main = createQuotaStore({ type: 'redis', redis: settings.redis });
    const perSecond = settings.redisPerSecond;
    return perSecond === undefined ? main : new SplitQuotaStore(main, createQuotaStore({ type: 'redis', redis: perSecond }));
  });
  const fallbackTtlSec = Math.max(1, Math.ceil((2 * s.reassignIntervalMs) / 1000));
  const assigner = new Assigner({
    // As RLS's decisions: a tenant override replaces the rule's limits (read at each report).
    findRule: (domain, entries) =>
      ruleWithOverride(domain, store.current().findRule(domain, entries), tenants?.current().lookup(domain, entries)),
    quota,
    keyPrefix: settings.backend.cacheKeyPrefix,
    unmatched: { kind: s.unmatched, ttlSec: s.unmatchedTtlSec },
    storeReady: () => stack.mainAvailable(),
    policyFor: (domain) => store.current().domainOptions(domain)?.failureMode ?? settings.resilience.failurePolicy,
    replicas: settings.resilience.localFallbackReplicas,
    fallbackTtlSec,
    logger,
  });
  const service = new RlqsService({
    settings: s,
    limits: { strings: settings.limiter.stringLimits, maxBucketEntries: s.maxBucketEntries },
    assigner,
    firstReportTimeoutMs: settings.grpc.streamTimeoutMs,
    metrics: metrics.rlqs,
    logger,
    span: tracingEnabled() ? (name, attributes, fn) => inSpan(name, attributes, () => fn()) : undefined,
  });
  return { service, close: () => quota.close() };
}

/**
 * The quota store, created on the first RLQS report: a deployment that serves only RLS opens no
 * second Redis connection. The first report waits for the connection (up to 2 s) instead of
 * being answered by the failure policy because the client was created a moment before.
 */
function lazyQuotaStore(create: () => QuotaStore): QuotaStore {
  let store: QuotaStore | undefined;
  let ready: Promise<void> | undefined;
  const open = async (): Promise<QuotaStore> => {
    store ??= create();
    ready ??= store.waitReady(2000).catch(() => undefined);
    await ready;
    return store;
  };
  return {
    report: async (reports, nowMs) => (await open()).report(reports, nowMs),
    forget: async (ruleKey, envoyId, nowMs) => (await open()).forget(ruleKey, envoyId, nowMs),
    waitReady: async (timeoutMs) => (await open()).waitReady(timeoutMs),
    close: async () => store?.close(),
  };
}
