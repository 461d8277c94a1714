import { performance } from 'node:perf_hooks';
import type { BackendStackHooks } from '../backend/stack.js';
import type { CompiledSnapshot, ReloadEvent } from '../config/index.js';
import type { LimiterObserver } from '../limiter/limiter.js';
import type { Decision, DescriptorStatus } from '../limiter/types.js';
import type { ResolverObserver } from '../resolve/index.js';
import type { Logger } from './logger.js';
import type { DecisionResult, Metrics, RequestCode } from './metrics.js';

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
  if (s.code === 'OVER_LIMIT') return 'over_limit';
  return s.shadowed ? 'shadow_over_limit' : 'ok';
}

/** Counts every descriptor decision (meshlimit_decisions_total). */
export function decisionObserver(metrics: Metrics): LimiterObserver {
  return {
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

/** The first config load: gauges and one log line. */
export function configLoaded(metrics: Metrics, logger: Logger, snapshot: CompiledSnapshot, dir: string): void {
  metrics.configReload(true, { rules: snapshot.ruleCount, domains: snapshot.domainNames });
  logger.info({ dir, version: snapshot.version, domains: snapshot.domainNames.length, rules: snapshot.ruleCount }, 'config loaded');
}

/** A reload attempt: the new config's gauges and a line when it changed, a counted error line when rejected. */
export function configReloaded(metrics: Metrics, logger: Logger, current: () => CompiledSnapshot): (e: ReloadEvent) => void {
  return (e) => {
    if (e.ok) {
      if (!e.changed) return;
      const snap = current();
      metrics.configReload(true, { rules: snap.ruleCount, domains: snap.domainNames });
      logger.info({ version: e.version, previous: e.previousVersion, trigger: e.trigger }, 'config reloaded');
    } else {
      metrics.configReload(false);
      logger.error(
        { keptVersion: e.keptVersion, trigger: e.trigger, error: e.error.message },
        'config reload rejected; keeping the last good config',
      );
    }
  };
}

/**
 * The backend stack's hooks: Redis connection and breaker transitions logged once each and
 * counted, round trips timed, degraded answers and errors counted. `onChange` runs after every
 * transition (readiness follows them).
 */
export function backendEvents(metrics: Metrics, logger: Logger, onChange: () => void): BackendStackHooks {
  return {
    onRedisState: (change) => {
      if (change.ready) logger.info({ backend: 'redis' }, 'redis connection ready');
      else logger.warn({ backend: 'redis', error: change.error?.message }, 'redis connection lost');
      onChange();
    },
    onBreakerTransition: (from, to, reason) => {
      (to === 'open' ? logger.warn : logger.info).call(logger, { from, to, reason }, `circuit breaker ${to}`);
      metrics.breakerTransition(from, to);
      onChange();
    },
    observeRedis: (seconds, ok) => metrics.observeRedis(seconds, ok),
    onDegraded: (reason) => metrics.degradedAnswer(reason),
    onBackendError: (kind) => metrics.backendError(kind),
  };
}
