import { hash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { CircuitState } from '../backend/resilience/circuit-breaker.js';
import type { BackendStackHooks, StoreName } from '../backend/stack.js';
import type { CompiledSnapshot, ReloadEvent } from '../config/index.js';
import type { LimiterObserver } from '../limiter/limiter.js';
import type { Decision, DescriptorStatus, RequestDescriptor } from '../limiter/types.js';
import type { ResolverObserver } from '../resolve/index.js';
import type { Logger } from './logger.js';
import type { DecisionResult, Metrics, RequestCode } from './metrics.js';

/** A changed set of TLS files of a listener (src/server/grpc/tls.ts): served from now on, or refused. */
export type TlsReloadEvent =
  | { readonly result: 'applied'; readonly serial: string; readonly fingerprint256: string }
  | { readonly result: 'rejected'; readonly reason: string };

/**
 * What telemetry does on each event of the other layers: the mapping from a decision, a request,
 * a config reload or a backend transition to metric updates and log lines, in one place. Each
 * function returns the hooks a layer takes, so no layer imports metrics or the logger.
 *
 * Logging rule: lines on state transitions and lifecycle events only, never per request.
 */

/** The `result` label of one descriptor's decision. */
export function decisionResult(s: DescriptorStatus, known: boolean): DecisionResult {
  if (!known || s.ruleKey === undefined) return 'no_rule';
  if (s.unlimited) return 'unlimited';
  // Shadowed first: under the global SHADOW_MODE an over-limit status keeps OVER_LIMIT (as
  // upstream), but nothing was denied.
  if (s.shadowed) return 'shadow_over_limit';
  return s.code === 'OVER_LIMIT' ? 'over_limit' : 'ok';
}

/** Counts every descriptor decision (meshlimit_decisions_total). */
export function decisionObserver(metrics: Metrics, nearLimitRatio = 0.8): LimiterObserver {
  return {
    onStatus: (domain, status, known, descriptor, hits) => {
      // detailed_metric (upstream semantics): the rule opted in to per-value series; bounded in
      // number by the metrics module's per-domain cap and in length by detailedRuleLabel.
      const rule =
        status.detailedMetric === true && status.ruleKey !== undefined
          ? detailedRuleLabel(domain, status.ruleKey, descriptor)
          : status.ruleKey;
      metrics.recordDecision(domain, rule, decisionResult(status, known));
      const near = status.code === 'OK' && known ? nearLimitHits(status, hits, nearLimitRatio) : 0;
      if (near > 0) metrics.recordNearLimit(domain, rule, near);
      metrics.enforcement.observe(domain, status, known, descriptor);
    },
    onCandidate: (domain, rule, candidate, over) => metrics.enforcement.candidate(domain, rule.ruleKey, candidate, over),
    onReservation: (domain, ruleKey, outcome, result) => metrics.reservations.record(domain, ruleKey, outcome, result),
  };
}

/**
 * NEAR_LIMIT_RATIO, as envoyproxy/ratelimit counts its `near_limit` stat: of the hits an admitted
 * descriptor consumed, those that took its count past `floor(limit x ratio)`. The count after the
 * request is read from the status (limit minus remaining; for a sliding window or a token bucket,
 * the share in use), the count before as that minus `hits`. Unlimited, shadowed and limitless
 * statuses count nothing.
 */
export function nearLimitHits(status: DescriptorStatus, hits: number, ratio: number): number {
  if (status.limit === undefined || status.unlimited || status.shadowed || hits <= 0) return 0;
  const limit = status.limit.requestsPerUnit;
  // float32 arithmetic, as upstream's `float32(limit) * nearLimitRatio`.
  const threshold = Math.floor(Math.fround(Math.fround(limit) * Math.fround(ratio)));
  const after = limit - status.remaining;
  if (after <= threshold) return 0;
  const before = after - hits;
  return before >= threshold ? hits : after - threshold;
}

/** Longest `rule` label a `detailed_metric` rule gets with the request's values in it. */
export const MAX_DETAILED_LABEL_CHARS = 256;

/**
 * The `rule` label of a `detailed_metric` rule: `domain.key_value.key_value...` like upstream's
 * stats key, when that is at most {@link MAX_DETAILED_LABEL_CHARS} long; otherwise the rule key
 * and a digest of that text (`edge.path.sha256_<22 chars>`), still one series per value. The
 * label is kept as long as its series (up to 1,000 rules per domain), and values are what
 * clients send (up to 64 KiB each): without the bound, 1,000 distinct long paths would keep
 * 1,000 long labels, six series each.
 */
export function detailedRuleLabel(domain: string, ruleKey: string, descriptor: RequestDescriptor): string {
  let label = domain;
  for (const e of descriptor.entries) label += `.${e.key}_${e.value}`;
  if (label.length <= MAX_DETAILED_LABEL_CHARS) return label;
  return `${ruleKey}.sha256_${hash('sha256', label, 'base64url').slice(0, 22)}`;
}

/** gRPC status codes (numbers, as both transports report them) to the `code` label. */
const REQUEST_CODE_BY_STATUS: Readonly<Record<number, RequestCode>> = {
  1: 'cancelled',
  3: 'invalid_argument',
  4: 'deadline_exceeded',
  14: 'unavailable',
};

/** Counts and times whole requests (meshlimit_requests_total, meshlimit_request_duration_seconds), for both transports. */
export interface RequestRecorder {
  /** A request the limiter answered; `startedAt` is performance.now() when it was asked. */
  answered(startedAt: number, decision: Decision): void;
  /**
   * A request that failed with gRPC status `status` (an HTTP error is reported by the status its
   * error maps to); `startedAt` is undefined when it failed before the limiter was asked.
   */
  failed(status: number, startedAt: number | undefined): void;
}

export function requestRecorder(metrics: Metrics): RequestRecorder {
  return {
    answered(startedAt, decision) {
      const result = decision.code === 'OVER_LIMIT' ? 'over_limit' : 'ok';
      metrics.observeRequest((performance.now() - startedAt) / 1000, result);
      metrics.countRequest(result);
    },
    failed(status, startedAt) {
      if (startedAt !== undefined) metrics.observeRequest((performance.now() - startedAt) / 1000, 'error');
      metrics.countRequest(REQUEST_CODE_BY_STATUS[status] ?? 'internal');
    },
  };
}

/**
 * The gRPC server's hooks: every call counted and timed by `recorder` (shared with HTTP), and
 * the transport guard's actions counted.
 */
export function grpcEvents(metrics: Metrics, recorder: RequestRecorder) {
  return {
    onAnswered: recorder.answered,
    onError: (_err: unknown, code: number, startedAt: number | undefined) => recorder.failed(code, startedAt),
    onTransportAction: metrics.transportAction,
  };
}

/** Descriptor resolution's counters. */
export function resolutionObserver(metrics: Metrics): ResolverObserver {
  return {
    onResolution: (domain, outcome) => metrics.resolution(domain, outcome),
    onCacheLookup: (domain, hit) => metrics.resolutionCacheLookup(domain, hit),
    onJwksRefresh: (domain, ok) => metrics.jwksRefresh(domain, ok),
  };
}

/** The first config load: gauges, and a debug line (the start-up line, `meshlimit serving`, names the config and its version). */
export function configLoaded(metrics: Metrics, logger: Logger, snapshot: CompiledSnapshot, dir: string): void {
  metrics.configReload(true, { rules: snapshot.ruleCount, domains: snapshot.domainNames, version: snapshot.version });
  logger.debug({ dir, version: snapshot.version, domains: snapshot.domainNames.length, rules: snapshot.ruleCount }, 'config loaded');
}

/**
 * A reload attempt: the new config's gauges and one line when it changed, a counted error line
 * when rejected (every error of the rejected config in `errors`, one string each). This is the
 * only place a reload is logged (the watcher and the xDS updates only emit the event).
 */
export function configReloaded(metrics: Metrics, logger: Logger, current: () => CompiledSnapshot): (e: ReloadEvent) => void {
  return (e) => {
    if (e.ok) {
      if (!e.changed) return;
      const snap = current();
      metrics.configReload(true, { rules: snap.ruleCount, domains: snap.domainNames, version: e.version });
      logger.info(
        { version: e.version, previous: e.previousVersion, trigger: e.trigger, domains: snap.domainNames.length, rules: snap.ruleCount },
        'config reloaded',
      );
    } else {
      metrics.configReload(false);
      logger.error(
        { keptVersion: e.keptVersion, trigger: e.trigger, errors: errorList(e.error) },
        'config reload rejected; keeping the last good config',
      );
    }
  };
}

/** An error's message as a list, one entry per line of it (ConfigErrors joins its errors with newlines). */
export function errorList(err: Error): string[] {
  return err.message.split('\n').filter((l) => l !== '');
}

/** Worst first: the breaker state gauge shows the worst breaker's state when there are two. */
const BREAKER_SEVERITY: Readonly<Record<CircuitState, number>> = { closed: 0, half_open: 1, open: 2 };

/** The config feed's hooks (src/config-source.ts): loads and reloads counted and logged, xDS connection transitions logged. */
export function configEvents(
  metrics: Metrics,
  logger: Logger,
  current: () => CompiledSnapshot,
): {
  onReload: (e: ReloadEvent) => void;
  onLoaded: (snapshot: CompiledSnapshot, dir: string) => void;
  onXdsState: (c: XdsConnectionChange) => void;
} {
  return {
    onReload: configReloaded(metrics, logger, current),
    onLoaded: (snapshot, dir) => configLoaded(metrics, logger, snapshot, dir),
    onXdsState: xdsConnectionLogger(logger),
  };
}

/** A transition of the xDS client's connection (src/xds/client.ts `XdsStateChange`, structurally). */
export interface XdsConnectionChange {
  readonly state: 'connecting' | 'connected' | 'disconnected';
  readonly previous: 'connecting' | 'connected' | 'disconnected' | undefined;
  readonly target: string;
  readonly error?: string | undefined;
  readonly retryInMs?: number | undefined;
}

/**
 * The xDS connection's transitions, one line each (retries while the server stays unreachable
 * are not transitions). Losing the server is a warning, not an error: the config in force stays.
 */
export function xdsConnectionLogger(logger: Logger): (c: XdsConnectionChange) => void {
  return (c) => {
    const ctx = { target: c.target, error: c.error, retryInMs: c.retryInMs };
    if (c.state === 'connecting') logger.info({ target: c.target }, 'connecting to the xDS management server');
    else if (c.state === 'connected') logger.info({ target: c.target }, 'connected to the xDS management server');
    else if (c.previous === 'connected') logger.warn(ctx, 'lost the xDS management server; keeping the current config and reconnecting');
    else logger.warn(ctx, 'cannot reach the xDS management server; retrying');
  };
}

/**
 * The backend stack's hooks: Redis connection and breaker transitions logged once each (naming
 * the store, `main` or `per_second`) and counted, round trips timed, degraded answers and errors
 * counted. `onChange` runs after every transition (readiness follows them).
 *
 * With REDIS_PERSECOND there are two breakers: transitions of both are counted, and the state
 * gauge shows the worse of the two (an alert on `state="open"` fires when either is open); the
 * log line says which.
 */
export function backendEvents(metrics: Metrics, logger: Logger, onChange: () => void): BackendStackHooks {
  const breakers = new Map<StoreName, CircuitState>();
  return {
    onRedisState: (change, store) => {
      if (change.ready) logger.info({ backend: 'redis', store }, 'redis connection ready');
      else logger.warn({ backend: 'redis', store, error: change.error?.message }, 'redis connection lost');
      onChange();
    },
    onBreakerTransition: (from, to, reason, store) => {
      (to === 'open' ? logger.warn : logger.info).call(logger, { from, to, reason, store }, `circuit breaker ${to}`);
      breakers.set(store, to);
      metrics.breakerTransition(from, to);
      let worst: CircuitState = 'closed';
      for (const state of breakers.values()) if (BREAKER_SEVERITY[state] > BREAKER_SEVERITY[worst]) worst = state;
      if (worst !== to) metrics.setBreakerState(worst);
      onChange();
    },
    observeRedis: (seconds, ok) => metrics.observeRedis(seconds, ok),
    onDegraded: (reason) => metrics.degradedAnswer(reason),
    onBackendError: (kind) => metrics.backendError(kind),
    onRefundError: (error, store) => {
      metrics.backendError('refund_failed');
      logger.debug({ store, error: error.message }, 'refund of a denied request failed: its charge stays until the window moves on');
    },
  };
}

/**
 * A port's certificate reloads (the gRPC port's, or with ADMIN_TLS_* the HTTP port's): counted
 * (meshlimit_grpc_tls_reloads_total, meshlimit_admin_tls_reloads_total) and logged, the new
 * certificate by its serial and fingerprint (never the key), a refused set by why, with what
 * stays in force.
 */
export function tlsReloadEvents(metrics: Metrics, logger: Logger, listener: 'grpc' | 'admin' = 'grpc'): (e: TlsReloadEvent) => void {
  const port = listener === 'grpc' ? 'gRPC' : 'HTTPS (admin port)';
  return (e) => {
    metrics.tlsReload(e.result, listener);
    if (e.result === 'applied')
      logger.info({ serial: e.serial, fingerprint256: e.fingerprint256 }, `${port} TLS certificate reloaded: new connections get it`);
    else logger.error({ reason: e.reason }, `${port} TLS files changed but cannot be used: the previous certificate stays in use`);
  };
}
