import { performance } from 'node:perf_hooks';
import { BackendUnavailableError, isMeshlimitError } from '../../errors.js';
import type { Backend } from '../../limiter/ports.js';
import type { CounterOp, EvaluateOptions, EvaluateResult } from '../../limiter/types.js';

/*
 * Why a small state machine and not cockatiel 3.2.1 (measured in benchmarks/breaker/): its
 * half-open admits one trial call and queues every other caller behind it (here: `halfOpenProbes`
 * trials, everyone else fails fast to the failure policy); a non-transient error closes its
 * circuit (here it decides nothing); it reads `Date.now()` (here an injectable monotonic clock);
 * and its fast-fail path allocates an error with a captured stack.
 *
 * Why these signals and not a failure ratio over a window (the breaker before 2026-12-06): a
 * ratio of failed *requests* opened on the wrong event and missed the right one. Under a burst a
 * CPU-starved service saw a batch of 64 requests time out at once (64 failures from one call to
 * a healthy Redis) and opened for 2 s; during a real 5-second outage at 2,000 req/s successes
 * from before the outage kept the ratio under the line and it never opened, so every request
 * waited the full command timeout. The store now says, per *call*, what it saw (StoreHealth):
 * the connection, consecutive failed calls, and silence (calls waiting with no reply at all).
 * A late reply proves Redis alive, so a busy machine never opens the breaker; a hung Redis
 * sends nothing, so `silenceMs` after its last reply the breaker opens.
 */

/** The breaker's states, in the order dashboards show them (the `state` label of meshlimit_breaker_state). */
export const CIRCUIT_STATES = ['closed', 'half_open', 'open'] as const;
export type CircuitState = (typeof CIRCUIT_STATES)[number];

/**
 * Why the breaker changed state:
 * - `connection_lost`: closed -> open, the store's connection is down (refused, reset, killed);
 * - `silence`: closed -> open, calls have waited `silenceMs` without any reply (a hung Redis);
 * - `failures`: closed -> open, `failureThreshold` calls in a row failed;
 * - `open_elapsed`: open -> half_open, `openMs` passed (observed lazily, see {@link CircuitBreakerBackend});
 * - `probes_succeeded`: half_open -> closed, all `halfOpenProbes` trial calls succeeded;
 * - `probe_failed`: half_open -> open, a trial call failed transiently.
 */
export type BreakerTransitionReason = 'connection_lost' | 'silence' | 'failures' | 'open_elapsed' | 'probes_succeeded' | 'probe_failed';

/**
 * What a counter store reports about its own calls to the breaker, per call and never per
 * request (src/backend/redis/call-health.ts implements it for Redis). Declared here, by the
 * breaker that reads it.
 */
export interface StoreHealth {
  /**
   * False while a connection that was up is lost (until it is back). Before the first
   * connection it is not "lost", only not yet made: calls failing then count as failures, so a
   * store that never comes up still opens the breaker, and one that connects a moment after the
   * first request does not keep the breaker open for BREAKER_OPEN_MS.
   */
  lost(): boolean;
  /** Calls in a row that failed (a reply of any kind ends the run). */
  consecutiveFailures(): number;
  /** Milliseconds (on the breaker's clock) during which calls have been waiting with no reply at all; 0 when none waits. */
  silentFor(now: number): number;
}

/** Tuning of {@link CircuitBreakerBackend}. All durations in milliseconds. */
export interface CircuitBreakerOptions {
  /** Calls in a row that failed transiently (BREAKER_CONSECUTIVE_FAILURES). Integer >= 1. */
  readonly failureThreshold: number;
  /**
   * How long calls may wait with no reply at all before the store counts as hung
   * (BREAKER_SILENCE_MS). A timeout alone never opens the breaker: a busy machine's replies come
   * late, a hung Redis's never.
   */
  readonly silenceMs: number;
  /** Time the circuit stays open (calls fail fast) before admitting trial calls. */
  readonly openMs: number;
  /**
   * Trial calls admitted in half-open. All of them succeeding closes the circuit; the first
   * transient failure reopens it. Calls beyond this number fail fast while the probes run.
   */
  readonly halfOpenProbes: number;
  /**
   * The store's own account of its calls. Without it (a store that does not report), every
   * request that fails transiently counts as one failed call.
   */
  readonly health?: StoreHealth | undefined;
  /**
   * How long this process's event loop lagged since a given time (ms, on the breaker's clock).
   * That time is taken off a silence: while the process itself cannot run, it reads no reply and
   * finishes no round trip of a connection it is opening, so their absence says nothing about
   * Redis (seen on a cold cluster connection under a 4,096-request burst: 420 to 900 ms before
   * the first reply, most of them spent inside this process).
   */
  readonly loopDelay?: { lagSinceMs(since: number): number } | undefined;
  /** Monotonic clock in ms (default `performance.now`, immune to wall-clock steps); tests inject one. */
  readonly clock?: (() => number) | undefined;
}

/** Telemetry callbacks. They must not throw; if one does, the error is swallowed so telemetry can never change a decision. */
export interface CircuitBreakerHooks {
  /** Called exactly once per transition (never per call), after the new state is in effect. */
  onStateChange?(from: CircuitState, to: CircuitState, reason: BreakerTransitionReason): void;
}

/**
 * Thrown, without touching the inner backend, while the circuit is open (or half-open with all
 * probe slots taken). A {@link BackendUnavailableError} (code `ML_ERR_BACKEND_UNAVAILABLE`,
 * transient, gRPC UNAVAILABLE) so callers unaware of the breaker treat it as an outage;
 * `reason` lets the failure policy report `degraded: 'circuit_open'`.
 */
export class CircuitOpenError extends BackendUnavailableError {
  readonly reason = 'circuit_open' as const;
  constructor() {
    super('circuit open: calls to the counter backend are suspended');
  }
}

/**
 * Builds a {@link CircuitOpenError} without a stack trace: it is always raised from the same place,
 * and capturing the stack was most of the fast-fail cost (about 5.5 us -> 2.5 us per rejected
 * call in measure-overhead.ts). The same technique as Node core's internal errors.
 */
function circuitOpen(): CircuitOpenError {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return new CircuitOpenError();
  } finally {
    Error.stackTraceLimit = limit;
  }
}

/** True for the fast-fail error of an open circuit (also across module copies, by its `reason`). */
export function isCircuitOpenError(err: unknown): err is CircuitOpenError {
  return (
    err instanceof CircuitOpenError || (err instanceof BackendUnavailableError && (err as { reason?: unknown }).reason === 'circuit_open')
  );
}

/** Only transient meshlimit errors count against the backend's availability. */
export function isTransientFailure(err: unknown): boolean {
  return isMeshlimitError(err) && err.transient;
}

/**
 * A {@link Backend} decorator that stops calling an unavailable backend.
 *
 * Contract:
 * - closed: every call goes to `inner`. After a call fails transiently the breaker asks the
 *   store's health and opens when its connection is down, when calls have waited `silenceMs`
 *   with no reply, or when `failureThreshold` calls in a row failed (without health: that many
 *   failed requests in a row, a success resetting the count).
 * - open: calls reject at once with {@link CircuitOpenError}; `inner` is not called.
 *   `isReady()` is false.
 * - half_open (first call or `state()`/`isReady()` query after `openMs`): the first
 *   `halfOpenProbes` calls go to `inner`, the rest fail fast. All probes succeeding closes the
 *   circuit; any transient probe failure reopens it for another `openMs`.
 * - Non-transient errors (and non-meshlimit errors) pass through unchanged and are invisible to
 *   the breaker: not a failure, not a success; a probe ending with one gives its slot back.
 * - A result that arrives after the state it was admitted in has changed (e.g. a slow call from
 *   before the circuit opened) is ignored by the state machine: it describes an older backend.
 *
 * The open -> half_open transition is lazy (no timer), so it is reported when first observed.
 * `kind` is the inner backend's kind.
 */
export class CircuitBreakerBackend implements Backend {
  readonly kind: string;
  private readonly clock: () => number;
  private current: CircuitState = 'closed';
  /** Bumped on every transition; a call's result only counts in the generation it started in. */
  private generation = 0;
  private openedAt = 0;
  private probesAdmitted = 0;
  private probesSucceeded = 0;
  /** Failed requests in a row, for a store without health. */
  private failedInARow = 0;

  constructor(
    private readonly inner: Backend,
    private readonly opts: CircuitBreakerOptions,
    private readonly hooks: CircuitBreakerHooks = {},
  ) {
    validate(opts);
    this.kind = inner.kind;
    this.clock = opts.clock ?? (() => performance.now());
  }

  async evaluate(ops: readonly CounterOp[], options: EvaluateOptions): Promise<EvaluateResult> {
    if (this.current !== 'closed') {
      this.refresh(this.clock());
      if (this.current === 'open' || this.probesAdmitted >= this.opts.halfOpenProbes) throw circuitOpen();
      this.probesAdmitted++;
    }
    const generation = this.generation;
    let result: EvaluateResult;
    try {
      result = await this.inner.evaluate(ops, options);
    } catch (err) {
      this.failed(generation, err);
      throw err;
    }
    this.succeeded(generation);
    return result;
  }

  /** The current state; may report (and perform) the open -> half_open transition. */
  state(): CircuitState {
    if (this.current === 'open') this.refresh(this.clock());
    return this.current;
  }

  /** False while open; otherwise the inner backend's readiness. */
  isReady(): boolean {
    return this.state() !== 'open' && this.inner.isReady();
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  private refresh(now: number): void {
    if (this.current === 'open' && now - this.openedAt >= this.opts.openMs) this.transition('half_open', 'open_elapsed', now);
  }

  private succeeded(generation: number): void {
    if (generation !== this.generation) return;
    if (this.current === 'closed') this.failedInARow = 0;
    else if (this.current === 'half_open' && ++this.probesSucceeded >= this.opts.halfOpenProbes) {
      this.transition('closed', 'probes_succeeded', this.clock());
    }
  }

  private failed(generation: number, err: unknown): void {
    if (generation !== this.generation) return;
    if (!isTransientFailure(err)) {
      if (this.current === 'half_open') this.probesAdmitted--;
      return;
    }
    const now = this.clock();
    if (this.current === 'half_open') {
      this.transition('open', 'probe_failed', now);
      return;
    }
    if (this.current !== 'closed') return;
    const why = this.outage(now);
    if (why !== undefined) this.transition('open', why, now);
  }

  /** Why the store counts as unavailable now, if it does (asked after a transient failure). */
  private outage(now: number): BreakerTransitionReason | undefined {
    const health = this.opts.health;
    if (health === undefined) return ++this.failedInARow >= this.opts.failureThreshold ? 'failures' : undefined;
    if (health.lost()) return 'connection_lost';
    if (this.silenceMs(health, now) >= this.opts.silenceMs) return 'silence';
    return health.consecutiveFailures() >= this.opts.failureThreshold ? 'failures' : undefined;
  }

  /** The store's silence, less the time this process's own event loop lagged meanwhile (see `loopDelay`). */
  private silenceMs(health: StoreHealth, now: number): number {
    const silent = health.silentFor(now);
    if (silent === 0 || this.opts.loopDelay === undefined) return silent;
    return silent - this.opts.loopDelay.lagSinceMs(now - silent);
  }

  private transition(to: CircuitState, reason: BreakerTransitionReason, now: number): void {
    const from = this.current;
    this.current = to;
    this.generation++;
    this.failedInARow = 0;
    if (to === 'open') this.openedAt = now;
    if (to === 'half_open') {
      this.probesAdmitted = 0;
      this.probesSucceeded = 0;
    }
    try {
      this.hooks.onStateChange?.(from, to, reason);
    } catch {
      // Telemetry must not change a decision (see CircuitBreakerHooks).
    }
  }
}

function validate(o: CircuitBreakerOptions): void {
  if (!Number.isInteger(o.failureThreshold) || o.failureThreshold < 1) {
    throw new RangeError(`failureThreshold must be an integer >= 1, got ${o.failureThreshold}`);
  }
  if (!Number.isInteger(o.halfOpenProbes) || o.halfOpenProbes < 1) {
    throw new RangeError(`halfOpenProbes must be an integer >= 1, got ${o.halfOpenProbes}`);
  }
  if (!(o.silenceMs > 0 && Number.isFinite(o.silenceMs)))
    throw new RangeError(`silenceMs must be a positive finite number, got ${o.silenceMs}`);
  if (!(o.openMs >= 0 && Number.isFinite(o.openMs))) throw new RangeError(`openMs must be a finite number >= 0, got ${o.openMs}`);
}
