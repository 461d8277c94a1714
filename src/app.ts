import { adminRoutes, openOverrideStore, type OverrideStore } from './admin/index.js';
import { createBackendStack, type BackendStack } from './backend/stack.js';
import type { ConfigStore, CompiledSnapshot } from './config/index.js';
import { openConfigFeed, type ConfigFeed } from './config-source.js';
import { createLifecycle } from './lifecycle.js';
import { RateLimiter, type StateRead } from './limiter/limiter.js';
import { OverLimitCache } from './limiter/over-limit-cache.js';
import type { Backend } from './limiter/ports.js';
import { startResolver, type DescriptorResolver, type StartResolverOptions } from './resolve/index.js';
import { createDecider } from './server/decide.js';
import { explainHandler } from './server/explain/explain-handler.js';
import { HealthState } from './server/grpc/health.js';
import { createGrpcTls } from './server/grpc/tls.js';
import { createAdminHttps, type AdminHttps } from './server/http/tls.js';
import type { AdminRoutesOptions } from './server/http/admin-routes.js';
import { createServers } from './server/servers.js';
import { openRlqs } from './rlqs-wiring.js';
import type { Settings } from './settings/index.js';
import { backendEvents, configEvents, decisionObserver, requestRecorder, resolutionObserver, tlsReloadEvents } from './telemetry/events.js';
import { createLogger, type Logger } from './telemetry/logger.js';
import { createMetrics, type Metrics } from './telemetry/metrics.js';
import { ConsoleStats, teeObservers } from './telemetry/console-stats.js';
import { inSpan, tracingEnabled } from './telemetry/tracing.js';

/**
 * The composition root of one meshlimit process: settings in, running servers out. It only
 * wires, top to bottom: telemetry, config, backend stack, limiter, resolution, servers, lifecycle.
 */
export interface ServiceHandle {
  /** The bound gRPC port; 0 with GRPC_UDS. */
  readonly grpcPort: number;
  readonly httpPort: number;
  /** USE_PROMETHEUS: the metrics port (PROMETHEUS_ADDR); undefined when off. */
  readonly metricsPort: number | undefined;
  readonly store: ConfigStore<CompiledSnapshot>;
  /** The config feed (CONFIG_TYPE): the directory watcher or the xDS client. */
  readonly config: ConfigFeed;
  readonly limiter: RateLimiter;
  /** What the limiter calls: the store wrapped in instrumentation, breaker and failure policy. */
  readonly backend: Backend;
  /** The counter store itself (memory or Redis; with REDIS_PERSECOND the main Redis). */
  readonly counterStore: Backend;
  /** REDIS_PERSECOND: the per-second Redis store itself. */
  readonly perSecondStore: Backend | undefined;
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
  // The ports' TLS files (checked by the settings), read before anything else is opened.
  const { grpcTls, adminHttps } = openTls(settings, metrics, logger);
  // Config (CONFIG_TYPE): a directory or an xDS management server; swapped atomically on every good change.
  const hooksForConfig = configEvents(metrics, logger, () => config.store.current());
  const config = await openConfigFeed(settings, { logger, pollMs: overrides.configPollMs, ...hooksForConfig });
  const store = config.store;
  metrics.enforcement.watch(() => store.current(), logger);
  // Backend stack; its transitions (and the first config) refresh readiness.
  const health = new HealthState(false);
  let resolver: DescriptorResolver | undefined;
  let tenants: OverrideStore | undefined;
  let rlqs: ReturnType<typeof openRlqs>;
  const onStop = (): void => void (resolver?.close(), tenants?.close(), rlqs?.close());
  const lifecycle = createLifecycle({ settings, health, logger, config, stack: () => stack, onStop });
  store.onChange(() => lifecycle.refreshHealth());
  const domainPolicy = (domain: string) => store.current().domainOptions(domain)?.failureMode;
  const hooks = { ...backendEvents(metrics, logger, lifecycle.refreshHealth), span: tracingEnabled() ? inSpan : undefined };
  const stack = createBackendStack({ ...settings, ...settings.backend, domainPolicy }, hooks);
  if (stack.hasBreaker) metrics.setBreakerState('closed');
  // Limiter, with tenant overrides, and the admin API and console over them.
  const { limiter, overrides: tenantStore, admin } = await startLimiter(settings, config, stack, metrics, logger, overrides.now);
  tenants = tenantStore;
  // Descriptor resolution (a verified JWT's claim, else the client address), before the limiter.
  resolver = await openResolver(store, metrics, logger, () => stack.backend.close());
  const resolved = resolver;
  const decide = createDecider(
    (c) => resolved.resolve(c),
    (c, deadline, cancel) => limiter.decide(c, deadline, cancel),
  );
  rlqs = openRlqs(settings, stack, store, metrics, logger, tenantStore); // RLQS_ENABLED: quota division, same config, store and overrides
  // Servers: gRPC (RLS + health + RLQS) and the HTTP admin app, one pipeline and one recorder for both.
  const servers = createServers({
    rlqs: rlqs?.service,
    grpcTls,
    adminHttps,
    decide,
    recorder: requestRecorder(metrics),
    health,
    logger,
    headers: settings.headers.enabled ? settings.headers : undefined,
    ...answerHeaders(settings),
    stringLimits: settings.limiter.stringLimits,
    grpcLimits: settings.grpc,
    onTransportAction: metrics.transportAction,
    isReady: lifecycle.isReady,
    healthDetail: () => joinDetails(config.healthDetail(), lifecycle.healthDetail()),
    configDump: () => ({ ...(store.current().dump() as object), tenantOverrides: tenantStore.current().list }),
    explain: explainer(resolved, limiter, stack.readStates, settings),
    metrics: overrides.metricsRender ? { contentType: metrics.contentType, render: overrides.metricsRender(metrics) } : metrics,
    prometheusPath: settings.http.prometheus?.path,
    admin,
  });
  // Lifecycle.
  const { grpcPort, httpPort, metricsPort } = await lifecycle.serve(servers);
  return {
    grpcPort,
    httpPort,
    metricsPort,
    store,
    config,
    limiter,
    backend: stack.backend,
    counterStore: stack.store,
    perSecondStore: stack.perSecondStore,
    metrics,
    health,
    close: lifecycle.close,
  };
}

/** Descriptor resolution over the config store; on failure `closeBackend` runs before the error is thrown on. */
async function openResolver(
  store: ConfigStore<CompiledSnapshot>,
  metrics: Metrics,
  logger: Logger,
  closeBackend: () => Promise<void>,
): Promise<DescriptorResolver> {
  const options: StartResolverOptions = {
    config: store,
    onChange: (l) => store.onChange(l),
    logger,
    observer: resolutionObserver(metrics),
  };
  return startResolver(options).catch(async (err: unknown) => {
    await closeBackend();
    throw err;
  });
}

/**
 * The ports' TLS, read before anything else is opened (the settings checked the files):
 * GRPC_SERVER_USE_TLS's certificate source and ADMIN_TLS_*'s, each re-read on change; undefined
 * for plaintext.
 */
function openTls(
  settings: Settings,
  metrics: Metrics,
  logger: Logger,
): { grpcTls: ReturnType<typeof createGrpcTls> | undefined; adminHttps: AdminHttps | undefined } {
  const tls = settings.grpc.tls;
  if (tls?.unusedCaFile !== undefined)
    logger.info(
      { GRPC_SERVER_TLS_CA_CERT: tls.unusedCaFile },
      'GRPC_SERVER_TLS_CA_CERT is not read (as in envoyproxy/ratelimit): client certificates are not required; set GRPC_CLIENT_TLS_CACERT to require them',
    );
  const admin = settings.admin.tls;
  return {
    grpcTls: tls && createGrpcTls({ ...tls, onReload: tlsReloadEvents(metrics, logger) }),
    adminHttps: admin && createAdminHttps({ ...admin, onReload: tlsReloadEvents(metrics, logger, 'admin') }),
  };
}

/**
 * The limiter and what it reads besides config and counters: LOCAL_CACHE_SIZE's cache of denials
 * (cleared when a reload or an override may have raised a limit), the tenant overrides (in Redis
 * beside the counters, else in process and DATA_DIR), the console's traffic view, and the admin
 * API's routes over them (token from ADMIN_*).
 */
async function startLimiter(
  settings: Settings,
  config: ConfigFeed,
  stack: BackendStack,
  metrics: Metrics,
  logger: Logger,
  now: (() => number | undefined) | undefined,
): Promise<{ limiter: RateLimiter; overrides: OverrideStore; admin: AdminRoutesOptions }> {
  const overLimitCache = new OverLimitCache(settings.limiter.localCacheSize);
  config.store.onChange(() => overLimitCache.clear());
  const overrides = await openOverrideStore(settings.admin, stack.store, settings.backend.cacheKeyPrefix, logger);
  overrides.onChange(() => overLimitCache.clear());
  const options = { ...settings.limiter, keyPrefix: settings.backend.cacheKeyPrefix, now, overLimitCache, overrides };
  const stats = new ConsoleStats();
  const limiter = new RateLimiter(
    config.source,
    stack.backend,
    options,
    teeObservers(decisionObserver(metrics, settings.limiter.nearLimitRatio), stats),
  );
  const forgetDenials = () => overLimitCache.clear();
  const admin = adminRoutes(settings, { limiter, config: config.store, stack, overrides, stats, metrics, logger, now, forgetDenials });
  return { limiter, overrides, admin };
}

/** The health body's sentences (config feed, then stores), or undefined when neither has one. */
function joinDetails(...details: (string | undefined)[]): string | undefined {
  const said = details.filter((d): d is string => d !== undefined);
  return said.length === 0 ? undefined : said.join('. ');
}

/** `POST /v1/explain`: resolution, then the limiter's evaluation over counters read without writing. */
function explainer(
  resolver: DescriptorResolver,
  limiter: RateLimiter,
  read: StateRead,
  settings: Settings,
): (body: unknown) => Promise<unknown> {
  return explainHandler({
    resolve: (check) => resolver.resolve(check),
    explain: (check) => limiter.explain(check, read),
    stringLimits: settings.limiter.stringLimits,
  });
}

/** The headers an answer may carry besides the rate-limit ones: DEGRADED_HEADER, SOFT_LIMIT_HEADER. */
function answerHeaders(settings: Settings): { degradedHeader: string | undefined; softLimit: Settings['softLimit'] } {
  return { degradedHeader: settings.resilience.degradedHeader, softLimit: settings.softLimit };
}
