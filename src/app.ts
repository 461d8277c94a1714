import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createBackend, type BackendOptions, type RedisStateChange } from './backend/index.js';
import type { Backend } from './limiter/ports.js';
import { InstrumentedBackend } from './backend/instrumented.js';
import { MemoryBackend } from './backend/memory.js';
import { CircuitBreakerBackend } from './backend/resilience/circuit-breaker.js';
import { FailurePolicyBackend } from './backend/resilience/failure-policy.js';
import { ConfigStore, ConfigWatcher, loadConfigDir, type CompiledSnapshot, type ReloadEvent } from './config/index.js';
import { ConfigError, ConfigErrors } from './errors.js';
import { RateLimiter, type LimiterObserver } from './limiter/limiter.js';
import { OverLimitCache } from './limiter/over-limit-cache.js';
import type { Decision, DescriptorStatus, RateLimitCheck } from './limiter/types.js';
import { DescriptorResolver } from './resolve/index.js';
import { createGrpcServer, type GrpcServer } from './server/grpc/server.js';
import { HealthState } from './server/grpc/health.js';
import type { ResponseHeaderNames } from './server/grpc/mapping.js';
import { buildHttpApp, type HttpApp } from './server/http/app.js';
import { decisionToJson, jsonToCheck } from './server/proto-json.js';
import type { Settings } from './settings.js';
import { createLogger, type Logger } from './telemetry/logger.js';
import { extractContext, inSpan, SpanKind, tracingEnabled } from './telemetry/tracing.js';
import { createMetrics, type DecisionResult, type Metrics, type RequestCode } from './telemetry/metrics.js';

/**
 * The wiring of one meshlimit process: settings in, running servers out. No rate-limit logic
 * lives here; it only connects config, backend, limiter, adapters and telemetry.
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

const GRPC_CODE_NAMES: Readonly<Record<number, RequestCode>> = { 3: 'invalid_argument', 4: 'deadline_exceeded', 14: 'unavailable' };

export function backendOptionsFromSettings(settings: Settings): BackendOptions {
  if (settings.backend.type === 'memory') return { type: 'memory', memory: { maxKeys: settings.backend.memoryMaxKeys } };
  const r = settings.redis;
  const node = r.nodes[0];
  const url = r.socketType === 'unix' ? (r.path ?? '') : `${node?.host ?? '127.0.0.1'}:${node?.port ?? 6379}`;
  const auth = r.password === undefined ? undefined : r.username === undefined ? r.password : `${r.username}:${r.password}`;
  return {
    type: 'redis',
    redis: {
      url,
      type: r.type,
      // cluster: the seed nodes; sentinel: the sentinels (REDIS_URL's other items).
      nodes: r.type === 'single' ? undefined : r.nodes,
      sentinelMasterName: r.sentinelMasterName,
      sentinelAuth: r.sentinelAuth,
      socketType: r.socketType,
      auth,
      tls: r.tls,
      db: r.db,
      commandTimeoutMs: r.commandTimeoutMs,
      connectTimeoutMs: r.connectTimeoutMs,
    },
  };
}

function decisionResult(s: DescriptorStatus, known: boolean): DecisionResult {
  if (!known || s.ruleKey === undefined) return 'no_rule';
  if (s.unlimited) return 'unlimited';
  if (s.code === 'OVER_LIMIT') return 'over_limit';
  return s.shadowed ? 'shadow_over_limit' : 'ok';
}

export async function startService(settings: Settings, overrides: ServiceOverrides = {}): Promise<ServiceHandle> {
  const logger = overrides.logger ?? createLogger({ level: settings.log.level, format: settings.log.format });
  const metrics = createMetrics();
  const configDir = path.resolve(settings.config.dir);

  const initial = await loadConfigDir(configDir);
  metrics.configReload(true, { rules: initial.ruleCount, domains: initial.domainNames });
  const store = new ConfigStore<CompiledSnapshot>(initial);
  logger.info({ dir: configDir, version: initial.version, domains: initial.domainNames.length, rules: initial.ruleCount }, 'config loaded');

  // --- Descriptor resolution (src/resolve) -------------------------------------------------
  // For domains with a `resolution:` block: a bearer-token entry becomes the verified claim
  // (company_id), else the client address. Runs before the limiter for gRPC and /json alike.
  // A domain that can never verify a token (HS256 secret variable unset, broken JWKS file)
  // stops start-up; after a reload the same problem is logged and that domain limits by address.
  const resolver = new DescriptorResolver({
    config: store,
    logger,
    observer: {
      onResolution: (domain, outcome) => metrics.resolution(domain, outcome),
      onCacheLookup: (domain, hit) => metrics.resolutionCacheLookup(domain, hit),
      onJwksRefresh: (domain, ok) => metrics.jwksRefresh(domain, ok),
    },
  });
  const resolutionProblems = await resolver.prepare(initial);
  if (resolutionProblems.length > 0) {
    resolver.close();
    const errs = resolutionProblems.map((p) => new ConfigError(p.file, p.field, p.detail));
    throw errs.length === 1 ? errs[0]! : new ConfigErrors(errs);
  }
  store.onChange((next) => {
    void resolver.prepare(next).then((problems) => {
      for (const p of problems) logger.error({ domain: p.domain, error: p.message }, 'descriptor resolution cannot verify tokens; this domain limits every caller by client address');
    });
  });
  // --- end of descriptor resolution ----------------------------------------------------------
  const watcher = new ConfigWatcher({
    dir: configDir,
    store,
    debounceMs: settings.config.reloadDebounceMs,
    pollIntervalMs: overrides.configPollMs ?? 2000,
    logger,
    onReload: (e: ReloadEvent) => {
      if (e.ok) {
        if (!e.changed) return;
        const snap = store.current() as CompiledSnapshot;
        metrics.configReload(true, { rules: snap.ruleCount, domains: snap.domainNames });
        logger.info({ version: e.version, previous: e.previousVersion, trigger: e.trigger }, 'config reloaded');
      } else {
        metrics.configReload(false);
        logger.error({ keptVersion: e.keptVersion, trigger: e.trigger, error: e.error.message }, 'config reload rejected; keeping the last good config');
      }
    },
  });

  const health = new HealthState(false);
  let shuttingDown = false;
  const base = backendOptionsFromSettings(settings);
  const backendOptions: BackendOptions = base.redis
    ? {
        ...base,
        redis: {
          ...base.redis,
          // Transitions only (never per call): log once and flip readiness.
          onStateChange: (change: RedisStateChange) => {
            if (change.ready) logger.info({ backend: 'redis' }, 'redis connection ready');
            else logger.warn({ backend: 'redis', error: change.error?.message }, 'redis connection lost');
            refreshHealth();
          },
        },
      }
    : base;
  const counterStore = createBackend(backendOptions);
  const refreshHealth = (): void => health.setServing(!shuttingDown && backend.isReady());
  // Memory: wrapped only for its tracing span, and only when tracing is on (startTracing runs
  // before this); Redis gets latency metrics, breaker and policy below.
  let backend: Backend = settings.backend.type === 'memory' && tracingEnabled() ? new InstrumentedBackend(counterStore, () => {}, inSpan) : counterStore;
  if (settings.backend.type === 'redis') {
    // Redis: time every round trip, trip a breaker on transient failures, and answer by the
    // failure policy (per domain: the config's failure_mode) when Redis cannot.
    const r = settings.resilience;
    const timedStore = new InstrumentedBackend(counterStore, (seconds, ok) => metrics.observeRedis(seconds, ok), tracingEnabled() ? inSpan : undefined);
    let guarded: Backend = timedStore;
    if (r.breaker.enabled) {
      guarded = new CircuitBreakerBackend(
        timedStore,
        {
          failureThreshold: r.breaker.failureRatio,
          minimumCalls: r.breaker.minimumCalls,
          windowMs: r.breaker.windowMs,
          openMs: r.breaker.openMs,
          halfOpenProbes: r.breaker.halfOpenProbes,
        },
        {
          onStateChange: (from, to, reason) => {
            (to === 'open' ? logger.warn : logger.info).call(logger, { from, to, reason }, `circuit breaker ${to}`);
            metrics.breakerTransition(from, to);
            refreshHealth();
          },
        },
      );
      metrics.setBreakerState('closed');
    }
    backend = new FailurePolicyBackend(
      guarded,
      {
        policy: r.failurePolicy,
        perDomain: (domain) => store.current().domainOptions(domain)?.failureMode,
        localFallback: new MemoryBackend({ maxKeys: settings.backend.memoryMaxKeys }),
        replicaCount: r.localFallbackReplicas,
      },
      {
        onDegraded: (reason) => metrics.degradedAnswer(reason),
        onError: (kind) => metrics.backendError(kind),
      },
    );
  }

  const observer: LimiterObserver = {
    onStatus: (domain, status, known, descriptor) => {
      // detailed_metric (upstream semantics): the rule opted in to per-value series, labelled
      // `domain.key_value...` like upstream's stats key; bounded by the metrics module's per-domain cap.
      const rule =
        status.detailedMetric === true && status.ruleKey !== undefined
          ? `${domain}.${descriptor.entries.map((e) => `${e.key}_${e.value}`).join('.')}`
          : status.ruleKey;
      metrics.recordDecision(domain, rule, decisionResult(status, known));
    },
  };
  // LOCAL_CACHE_SIZE: a reload may raise a limit, so cached denials go with the old config.
  const overLimitCache = new OverLimitCache(settings.limiter.localCacheSize);
  store.onChange(() => overLimitCache.clear());
  const limiter = new RateLimiter(
    store,
    backend,
    {
      keyPrefix: settings.backend.cacheKeyPrefix,
      shadowMode: settings.limiter.shadowMode,
      chargeOnDeny: settings.limiter.chargeOnDeny,
      now: overrides.now,
      overLimitCache,
    },
    observer,
  );

  const resolve = (check: RateLimitCheck): RateLimitCheck | Promise<RateLimitCheck> =>
    tracingEnabled() ? inSpan('meshlimit.resolve', { 'meshlimit.domain': check.domain }, async () => resolver.resolve(check)) : resolver.resolve(check);
  // Not async: a check that needs no token verification goes straight to the limiter, so a
  // request costs no promise beyond the backend's (each layer is a promise and a microtask), and
  // none at all on the memory backend, which the limiter asks synchronously.
  const decide = (check: RateLimitCheck, deadline: number | undefined): Decision | Promise<Decision> => {
    const resolved = resolve(check);
    return resolved instanceof Promise ? resolved.then((c) => limiter.decide(c, deadline)) : limiter.decide(resolved, deadline);
  };
  // One span per request when tracing is on: domain, descriptor count and verdict, never values.
  const traced = (check: RateLimitCheck, deadline: number | undefined, carrier: Record<string, unknown> | undefined): Promise<Decision> =>
    inSpan(
      'ShouldRateLimit',
      {
        'rpc.system': 'grpc',
        'rpc.service': 'envoy.service.ratelimit.v3.RateLimitService',
        'rpc.method': 'ShouldRateLimit',
        'meshlimit.domain': check.domain,
        'meshlimit.descriptors': check.descriptors.length,
      },
      async (span) => {
        const d = await decide(check, deadline);
        span.setAttribute('meshlimit.verdict', d.code);
        if (d.degraded !== undefined) span.setAttribute('meshlimit.degraded', d.degraded);
        return d;
      },
      { parent: carrier === undefined ? undefined : extractContext(carrier), kind: SpanKind.SERVER },
    );
  const run = (check: RateLimitCheck, deadline: number | undefined, carrier?: Record<string, unknown>): Decision | Promise<Decision> =>
    tracingEnabled() ? traced(check, deadline, carrier) : decide(check, deadline);
  /** Request duration and count; `decision` undefined for a request the limiter failed. */
  const recordRequest = (startedAt: number, decision: Decision | undefined): void => {
    const seconds = (performance.now() - startedAt) / 1000;
    if (decision === undefined) {
      metrics.observeRequest(seconds, 'error');
      return;
    }
    const result = decision.code === 'OVER_LIMIT' ? 'over_limit' : 'ok';
    metrics.observeRequest(seconds, result);
    metrics.countRequest(result);
  };
  // The JSON check endpoint; gRPC times requests inside its handler (onAnswered, onError).
  const timed = async (check: RateLimitCheck): Promise<Decision> => {
    const startedAt = performance.now();
    try {
      const d = await run(check, undefined);
      recordRequest(startedAt, d);
      return d;
    } catch (err) {
      recordRequest(startedAt, undefined);
      throw err;
    }
  };

  const headerNames: ResponseHeaderNames | undefined = settings.headers.enabled
    ? { limit: settings.headers.limit, remaining: settings.headers.remaining, reset: settings.headers.reset }
    : undefined;

  const grpc: GrpcServer = createGrpcServer({
    limiter: { shouldRateLimit: (check, opts) => run(check, opts.deadline, opts.traceCarrier) },
    health,
    headers: headerNames
      ? { enabled: true, limitHeader: headerNames.limit, remainingHeader: headerNames.remaining, resetHeader: headerNames.reset }
      : undefined,
    logger,
    degradedHeader: settings.resilience.degradedHeader,
    onAnswered: recordRequest,
    onError: (_err, code, startedAt) => {
      if (startedAt !== undefined) recordRequest(startedAt, undefined);
      metrics.countRequest(GRPC_CODE_NAMES[code] ?? 'internal');
    },
  });

  const isReady = (): boolean => !shuttingDown && backend.isReady();
  const http: HttpApp = buildHttpApp({
    check: async (body) => {
      let check: RateLimitCheck;
      try {
        check = jsonToCheck(body);
      } catch (err) {
        metrics.countRequest('invalid_argument');
        throw err;
      }
      const decision = await timed(check);
      return { httpStatus: decision.code === 'OVER_LIMIT' ? 429 : 200, body: decisionToJson(decision, headerNames, settings.resilience.degradedHeader) };
    },
    isReady,
    configDump: () => store.current().dump(),
    metrics: overrides.metricsRender ? { contentType: metrics.contentType, render: overrides.metricsRender(metrics) } : metrics,
    logger,
  });

  let grpcPort: number;
  let httpPort: number;
  try {
    grpcPort = await grpc.listen(settings.grpc.host, settings.grpc.port);
    httpPort = (await http.listen(settings.http.host, settings.http.port)).port;
  } catch (err) {
    await Promise.allSettled([grpc.close(0), http.close(), backend.close()]);
    throw err;
  }
  watcher.start();
  refreshHealth();
  // Readiness also follows lazy transitions (e.g. the breaker going half-open on its own clock).
  const healthTimer = setInterval(refreshHealth, 1000);
  healthTimer.unref();
  logger.info({ grpc: `${settings.grpc.host}:${grpcPort}`, http: `${settings.http.host}:${httpPort}`, backend: backend.kind }, 'meshlimit serving');

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      shuttingDown = true;
      clearInterval(healthTimer);
      health.setServing(false);
      await watcher.close();
      resolver.close();
      await Promise.allSettled([grpc.close(settings.lifecycle.gracefulShutdownMs), http.close()]);
      await backend.close();
      logger.info({}, 'meshlimit stopped');
    })());

  return { grpcPort, httpPort, store, watcher, limiter, backend, counterStore, metrics, health, close };
}
