import type { StateRead } from '../limiter/limiter.js';
import type { Backend, StoredStates } from '../limiter/ports.js';
import type { DegradedReason, FailurePolicy } from '../limiter/types.js';
import { createBackend, type BackendType } from './index.js';
import { InstrumentedBackend, type SpanRunner } from './instrumented.js';
import { MemoryBackend } from './memory.js';
import { isPerSecondOp, PerSecondSplitBackend } from './per-second.js';
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
 *
 * With a per-second Redis (REDIS_PERSECOND), each Redis gets the whole stack above, its own
 * breaker, admission bound and failure policy, and a PerSecondSplitBackend on top sends each
 * request's ops to their stack (./per-second.ts): one store's outage is judged, and answered,
 * on its own.
 */

/**
 * What the stack is built from; the settings' `redis`, `redisPerSecond` and `resilience` groups
 * and the fields of their `backend` group fit it as they are.
 */
export interface BackendStackOptions {
  readonly type: BackendType;
  readonly memoryMaxKeys: number;
  readonly redis: RedisConnectionOptions;
  /** REDIS_PERSECOND: a second Redis for the counters of per-second limits (undefined: one Redis for all). */
  readonly redisPerSecond?: RedisConnectionOptions | undefined;
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

/** Which Redis an event is about: the main one, or the per-second one (REDIS_PERSECOND). */
export type StoreName = 'main' | 'per_second';

/** Telemetry of the stack; every hook is called on events, never per successful call except `observeRedis`. */
export interface BackendStackHooks {
  /** The Redis connection of `store` became ready or stopped being ready (once per transition). */
  readonly onRedisState?: (change: RedisStateChange, store: StoreName) => void;
  /** The breaker of `store` changed state (once per transition). */
  readonly onBreakerTransition?: (from: CircuitState, to: CircuitState, reason: BreakerTransitionReason, store: StoreName) => void;
  /** One Redis round trip took `seconds`. */
  readonly observeRedis?: (seconds: number, ok: boolean) => void;
  /** A failure policy answered instead of Redis. */
  readonly onDegraded?: (reason: DegradedReason) => void;
  /** An error reached the failure policy. */
  readonly onBackendError?: (kind: BackendErrorKind) => void;
  /** A refund (the give-back of a denied request's charge) failed on `store`: that charge stays until its window moves on. */
  readonly onRefundError?: (error: Error, store: StoreName) => void;
  /** Spans each store call when tracing is on. */
  readonly span?: SpanRunner | undefined;
}

export interface BackendStack {
  /** The counter store itself (memory or Redis; with REDIS_PERSECOND the main Redis). */
  readonly store: Backend;
  /** REDIS_PERSECOND: the per-second Redis store itself; undefined otherwise. */
  readonly perSecondStore: Backend | undefined;
  /** What the limiter calls: the store inside its decorators (with REDIS_PERSECOND, both stacks under the split). */
  readonly backend: Backend;
  /** Reads counters without writing (explain): each op's key from the store that holds it. */
  readonly readStates: StateRead;
  /** True when the breaker is there (a Redis store with BREAKER_ENABLED). */
  readonly hasBreaker: boolean;
  /** The stores themselves are connected (not the failure policy's view: under `allow` that is always ready). */
  storesConnected(): boolean;
  /** Why the stores are not connected (which Redis, what failed, what to check), one sentence each; undefined when they are. */
  whyNotConnected(): string | undefined;
  /**
   * The main store is connected and its breaker is not open: what RLQS asks before calling its
   * quota store, which lives on that Redis. A hung Redis opens the breaker (silence) while its
   * connection still counts as up, so the connection alone would let every report wait out
   * REDIS_COMMAND_TIMEOUT_MS.
   */
  mainAvailable(): boolean;
}

export function createBackendStack(options: BackendStackOptions, hooks: BackendStackHooks = {}): BackendStack {
  if (options.type === 'memory') {
    const store = createBackend({ type: 'memory', memory: { maxKeys: options.memoryMaxKeys } });
    const backend = hooks.span === undefined ? store : new InstrumentedBackend(store, () => {}, hooks.span);
    return {
      store,
      perSecondStore: undefined,
      backend,
      readStates: statesReader(store, undefined),
      hasBreaker: false,
      storesConnected: () => true,
      whyNotConnected: () => undefined,
      mainAvailable: () => true,
    };
  }
  const main = redisStack(options, options.redis, 'main', hooks);
  const hasBreaker = options.resilience.breaker.enabled;
  const mainAvailable = (): boolean => main.store.isReady() && main.breaker?.state() !== 'open';
  if (options.redisPerSecond === undefined) {
    return {
      store: main.store,
      perSecondStore: undefined,
      backend: main.backend,
      readStates: statesReader(main.store, undefined),
      hasBreaker,
      storesConnected: () => main.store.isReady(),
      whyNotConnected: () => whyNotConnected([main.store]),
      mainAvailable,
    };
  }
  const perSecond = redisStack(options, options.redisPerSecond, 'per_second', hooks);
  const backend = new PerSecondSplitBackend(main.backend, perSecond.backend);
  const storesConnected = () => main.store.isReady() && perSecond.store.isReady();
  const why = () => whyNotConnected([main.store, perSecond.store]);
  return {
    store: main.store,
    perSecondStore: perSecond.store,
    backend,
    readStates: statesReader(main.store, perSecond.store),
    hasBreaker,
    storesConnected,
    whyNotConnected: why,
    mainAvailable,
  };
}

/** {@link BackendStack.readStates}: per-second ops from `perSecond` (REDIS_PERSECOND), the rest from `main`. */
function statesReader(main: Backend, perSecond: Backend | undefined): StateRead {
  const read = (store: Backend, keys: readonly string[], now: number | undefined): Promise<StoredStates> => {
    if (store.readStates === undefined) throw new Error(`the ${store.kind} store cannot read counters without writing`);
    return store.readStates(keys, now);
  };
  return async (ops, now) => {
    if (perSecond === undefined)
      return read(
        main,
        ops.map((o) => o.key),
        now,
      );
    const fast = ops.map(isPerSecondOp);
    const [a, b] = await Promise.all([
      read(
        main,
        ops.filter((_, i) => !fast[i]).map((o) => o.key),
        now,
      ),
      read(
        perSecond,
        ops.filter((_, i) => fast[i]).map((o) => o.key),
        now,
      ),
    ]);
    let ia = 0;
    let ib = 0;
    return { now: a.now, values: ops.map((_, i) => (fast[i] ? b.values[ib++]! : a.values[ia++]!)) };
  };
}

/** The not-connected sentences of `stores` (Redis ones), joined; undefined when every one is connected. */
function whyNotConnected(stores: readonly Backend[]): string | undefined {
  const reasons: string[] = [];
  for (const s of stores) {
    const why = s instanceof RedisBackend || s instanceof RedisClusterBackend ? s.whyNotConnected() : undefined;
    if (why !== undefined) reasons.push(why);
  }
  return reasons.length === 0 ? undefined : reasons.join('. ');
}

/** One Redis store inside instrumentation, breaker, admission and failure policy (the order above). */
function redisStack(
  options: BackendStackOptions,
  redis: RedisConnectionOptions,
  name: StoreName,
  hooks: BackendStackHooks,
): { store: Backend; backend: Backend; breaker: CircuitBreakerBackend | undefined } {
  const { onRedisState, onRefundError, onBreakerTransition: onBreaker } = hooks;
  const store = createBackend({
    type: 'redis',
    redis: {
      ...redis,
      onStateChange: onRedisState === undefined ? undefined : (change) => onRedisState(change, name),
      onRefundError: onRefundError === undefined ? undefined : (error) => onRefundError(error, name),
    },
  });
  const timed = new InstrumentedBackend(store, hooks.observeRedis ?? (() => {}), hooks.span);
  const r = options.resilience;
  const breaker = r.breaker.enabled
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
        { onStateChange: onBreaker === undefined ? undefined : (from, to, reason) => onBreaker(from, to, reason, name) },
      )
    : undefined;
  const admitted = new AdmissionBackend(breaker ?? timed, r.admission);
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
  return { store, backend, breaker };
}

/** The store's account of its own calls, when it keeps one (the Redis backends do). */
function healthOf(store: Backend): StoreHealth | undefined {
  return store instanceof RedisBackend || store instanceof RedisClusterBackend ? store.health : undefined;
}
