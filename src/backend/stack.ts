import type { Backend } from '../limiter/ports.js';
import type { DegradedReason, FailurePolicy } from '../limiter/types.js';
import { createBackend, type BackendType } from './index.js';
import { InstrumentedBackend, type SpanRunner } from './instrumented.js';
import { MemoryBackend } from './memory.js';
import type { RedisConnectionOptions } from './redis/connection.js';
import type { RedisStateChange } from './redis/readiness.js';
import { CircuitBreakerBackend, type BreakerTransitionReason, type CircuitState, type StoreHealth } from './resilience/circuit-breaker.js';
import { RedisBackend } from './redis/backend.js';
import { RedisClusterBackend } from './redis/cluster-backend.js';
import { AdmissionBackend } from './resilience/admission.js';
import { EventLoopDelay } from './resilience/event-loop-delay.js';
import { FailurePolicyBackend, type BackendErrorKind } from './resilience/failure-policy.js';

/**
 * The counter store and the decorators around it, in their one correct order (innermost first):
 *
 *   store (memory or Redis)
 *   -> InstrumentedBackend  times every real round trip and spans it; inside the breaker, so a
 *                           fail-fast answer is never measured as a Redis call
 *   -> CircuitBreakerBackend stops calling a dead or hung Redis (BREAKER_*), judged from what the
 *                           store saw of its own calls (its `health`), not from request counts
 *   -> AdmissionBackend      sheds requests beyond this process's bounds (ADMISSION_*) before they
 *                           reach Redis; outside the breaker, so a shed is never a store failure
 *   -> FailurePolicyBackend  answers for an unavailable or shedding Redis by the domain's
 *                           failure_mode or FAILURE_POLICY (deny / allow / local)
 *
 * The memory backend cannot be unavailable: it gets no breaker and no policy, and is wrapped only
 * for its tracing span when tracing is on (an unwrapped memory backend answers synchronously).
 */

/** What the stack is built from; the settings' `backend`, `redis` and `resilience` groups fit it as they are. */
export interface BackendStackOptions {
  readonly type: BackendType;
  readonly memoryMaxKeys: number;
  readonly redis: RedisConnectionOptions;
  readonly resilience: {
    readonly failurePolicy: FailurePolicy;
    readonly localFallbackReplicas: number;
    readonly breaker: {
      readonly enabled: boolean;
      readonly consecutiveFailures: number;
      readonly silenceMs: number;
      readonly openMs: number;
      readonly halfOpenProbes: number;
    };
    readonly admission: { readonly maxOutstanding: number; readonly maxEventLoopDelayMs: number };
  };
  /** A domain's `failure_mode`, read when a call of that domain fails (undefined: FAILURE_POLICY). */
  readonly domainPolicy: (domain: string) => FailurePolicy | undefined;
}

/** Telemetry of the stack; every hook is called on events, never per successful call except `observeRedis`. */
export interface BackendStackHooks {
  /** The Redis connection became ready or stopped being ready (once per transition). */
  readonly onRedisState?: (change: RedisStateChange) => void;
  /** The breaker changed state (once per transition). */
  readonly onBreakerTransition?: (from: CircuitState, to: CircuitState, reason: BreakerTransitionReason) => void;
  /** One Redis round trip took `seconds`. */
  readonly observeRedis?: (seconds: number, ok: boolean) => void;
  /** A failure policy answered instead of Redis. */
  readonly onDegraded?: (reason: DegradedReason) => void;
  /** An error reached the failure policy. */
  readonly onBackendError?: (kind: BackendErrorKind) => void;
  /** Spans each store call when tracing is on. */
  readonly span?: SpanRunner | undefined;
}

export interface BackendStack {
  /** The counter store itself (memory or Redis). */
  readonly store: Backend;
  /** What the limiter calls: the store inside its decorators. */
  readonly backend: Backend;
  /** True when the breaker is there (a Redis store with BREAKER_ENABLED). */
  readonly hasBreaker: boolean;
}

export function createBackendStack(options: BackendStackOptions, hooks: BackendStackHooks = {}): BackendStack {
  if (options.type === 'memory') {
    const store = createBackend({ type: 'memory', memory: { maxKeys: options.memoryMaxKeys } });
    const backend = hooks.span === undefined ? store : new InstrumentedBackend(store, () => {}, hooks.span);
    return { store, backend, hasBreaker: false };
  }
  const store = createBackend({ type: 'redis', redis: { ...options.redis, onStateChange: hooks.onRedisState } });
  const timed = new InstrumentedBackend(store, hooks.observeRedis ?? (() => {}), hooks.span);
  const r = options.resilience;
  const guarded = r.breaker.enabled
    ? new CircuitBreakerBackend(
        timed,
        {
          failureThreshold: r.breaker.consecutiveFailures,
          silenceMs: r.breaker.silenceMs,
          openMs: r.breaker.openMs,
          halfOpenProbes: r.breaker.halfOpenProbes,
          health: healthOf(store),
          loopDelay: EventLoopDelay.shared(),
        },
        { onStateChange: hooks.onBreakerTransition },
      )
    : timed;
  const admitted = new AdmissionBackend(guarded, r.admission);
  const backend = new FailurePolicyBackend(
    admitted,
    {
      policy: r.failurePolicy,
      perDomain: options.domainPolicy,
      localFallback: new MemoryBackend({ maxKeys: options.memoryMaxKeys }),
      replicaCount: r.localFallbackReplicas,
    },
    { onDegraded: hooks.onDegraded, onError: hooks.onBackendError },
  );
  return { store, backend, hasBreaker: r.breaker.enabled };
}

/** The store's account of its own calls, when it keeps one (the Redis backends do). */
function healthOf(store: Backend): StoreHealth | undefined {
  return store instanceof RedisBackend || store instanceof RedisClusterBackend ? store.health : undefined;
}
