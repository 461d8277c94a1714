import path from 'node:path';
import { createBackendStack } from './backend/stack.js';
import { ConfigStore, ConfigWatcher, loadConfigDir, type CompiledSnapshot } from './config/index.js';
import { createLifecycle } from './lifecycle.js';
import { RateLimiter } from './limiter/limiter.js';
import { OverLimitCache } from './limiter/over-limit-cache.js';
import type { Backend } from './limiter/ports.js';
import { startResolver, type DescriptorResolver } from './resolve/index.js';
import { createDecider } from './server/decide.js';
import { HealthState } from './server/grpc/health.js';
import { createGrpcServer } from './server/grpc/server.js';
import { buildHttpApp } from './server/http/app.js';
import { jsonCheck } from './server/http/json-check.js';
import type { Settings } from './settings/index.js';
import {
  backendEvents,
  configLoaded,
  configReloaded,
  decisionObserver,
  grpcEvents,
  requestRecorder,
  resolutionObserver,
} from './telemetry/events.js';
import { createLogger, type Logger } from './telemetry/logger.js';
import { createMetrics, type Metrics } from './telemetry/metrics.js';
import { inSpan, tracingEnabled } from './telemetry/tracing.js';

/**
 * The composition root of one meshlimit process: settings in, running servers out. It only
 * wires, top to bottom: telemetry, config, backend stack, limiter, resolution, servers, lifecycle.
 */
export interface ServiceHandle {
  readonly grpcPort: number;
  readonly httpPort: number;
  readonly store: ConfigStore<CompiledSnapshot>;
  readonly watcher: ConfigWatcher;
  readonly limiter: RateLimiter;
  /** What the limiter calls: the store wrapped in instrumentation, breaker and failure policy. */
  readonly backend: Backend;
  /** The counter store itself (memory or Redis). */
  readonly counterStore: Backend;
  readonly metrics: Metrics;
  readonly health: HealthState;
  /** Stops serving: health NOT_SERVING, drain in-flight calls (up to the grace period), close the backend. */
  close(): Promise<void>;
}

export interface ServiceOverrides {
  readonly logger?: Logger;
  /** Test-only clock override forwarded to the backend (Unix ms). */
  readonly now?: () => number | undefined;
  /** Poll interval of the config watcher (ms); tests shorten it. */
  readonly configPollMs?: number;
  /** Renders `/metrics` instead of this process's registry (WORKERS > 1: the pod-wide sum). */
  readonly metricsRender?: (metrics: Metrics) => () => Promise<string>;
}

export async function startService(settings: Settings, overrides: ServiceOverrides = {}): Promise<ServiceHandle> {
  // Telemetry.
  const logger = overrides.logger ?? createLogger(settings.log);
  const metrics = createMetrics();
  // Config: loaded once, swapped atomically by the watcher on every good edit.
  const dir = path.resolve(settings.config.dir);
  const store = new ConfigStore<CompiledSnapshot>(await loadConfigDir(dir));
  configLoaded(metrics, logger, store.current(), dir);
  const watcher = new ConfigWatcher({
    dir,
    store,
    debounceMs: settings.config.reloadDebounceMs,
    pollIntervalMs: overrides.configPollMs ?? 2000,
    logger,
    onReload: configReloaded(metrics, logger, () => store.current()),
  });
  // Backend stack; its transitions refresh readiness.
  const health = new HealthState(false);
  let resolver: DescriptorResolver | undefined;
  const lifecycle = createLifecycle({ settings, health, logger, watcher, backend: () => stack.backend, onStop: () => resolver?.close() });
  const domainPolicy = (domain: string) => store.current().domainOptions(domain)?.failureMode;
  const hooks = { ...backendEvents(metrics, logger, lifecycle.refreshHealth), span: tracingEnabled() ? inSpan : undefined };
  const stack = createBackendStack({ ...settings.backend, redis: settings.redis, resilience: settings.resilience, domainPolicy }, hooks);
  if (stack.hasBreaker) metrics.setBreakerState('closed');
  // Limiter. LOCAL_CACHE_SIZE: a reload may raise a limit, so cached denials go with the old config.
  const overLimitCache = new OverLimitCache(settings.limiter.localCacheSize);
  store.onChange(() => overLimitCache.clear());
  const limiterOptions = { ...settings.limiter, keyPrefix: settings.backend.cacheKeyPrefix, now: overrides.now, overLimitCache };
  const limiter = new RateLimiter(store, stack.backend, limiterOptions, decisionObserver(metrics));
  // Descriptor resolution (a verified JWT's claim, else the client address), before the limiter.
  resolver = await startResolver({
    config: store,
    onChange: (l) => store.onChange(l),
    logger,
    observer: resolutionObserver(metrics),
  }).catch(async (err: unknown) => {
    await stack.backend.close();
    throw err;
  });
  const resolved = resolver;
  const decide = createDecider(
    (check) => resolved.resolve(check),
    (check, deadline, cancel) => limiter.decide(check, deadline, cancel),
  );
  // Servers: gRPC (RLS + health) and the HTTP admin app, one recorder for both.
  const recorder = requestRecorder(metrics);
  const headers = settings.headers.enabled ? settings.headers : undefined;
  const degradedHeader = settings.resilience.degradedHeader;
  const grpc = createGrpcServer({
    limiter: { shouldRateLimit: decide },
    health,
    limits: settings.grpc,
    headers,
    logger,
    degradedHeader,
    ...grpcEvents(metrics, recorder),
  });
  const http = buildHttpApp({
    check: jsonCheck({ decide, recorder, headers, degradedHeader }),
    isReady: lifecycle.isReady,
    configDump: () => store.current().dump(),
    metrics: overrides.metricsRender ? { contentType: metrics.contentType, render: overrides.metricsRender(metrics) } : metrics,
    logger,
  });
  // Lifecycle.
  const { grpcPort, httpPort } = await lifecycle.serve({ grpc, http });
  return {
    grpcPort,
    httpPort,
    store,
    watcher,
    limiter,
    backend: stack.backend,
    counterStore: stack.store,
    metrics,
    health,
    close: lifecycle.close,
  };
}
