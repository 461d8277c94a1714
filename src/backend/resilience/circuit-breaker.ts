import type { Backend } from '../../limiter/ports.js';
import type { CounterOp, EvaluateOptions, EvaluateResult } from '../../limiter/types.js';
import { BackendUnavailableError, isMeshlimitError } from '../../errors.js';
import { FailureWindow } from './failure-window.js';

/*
 * Why a small state machine and not cockatiel 3.2.1 (installed). Measured with
 * `npx tsx benchmarks/breaker/measure-overhead.ts` (Node 20.20, 2-core box under load from
 * other jobs, 1e6 sequential calls around an async no-op backend, median of 5-9 rounds, ranges
 * over 3 runs; a direct call costs ~55 ns):
 *
 *   per-call overhead vs direct       closed          open (fast fail)
 *   this breaker                      +125..185 ns    +2.0..2.4 us
 *   cockatiel ConsecutiveBreaker      +155..190 ns    +5.0..6.6 us
 *   cockatiel SamplingBreaker         +205..240 ns    (same open path)
 *
 * Overhead alone would not rule cockatiel out (both are noise next to a ~100 us+ Redis round
 * trip). Its semantics do:
 * - Half-open admits exactly ONE trial call, and every other caller `await`s that trial and then
 *   retries: during half-open all concurrent rate-limit requests queue behind one Redis round
 *   trip (up to its timeout). We need `halfOpenProbes` trials and everyone else failing fast to
 *   the failure policy at once.
 * - A non-handled (here: non-transient) error during half-open CLOSES cockatiel's circuit; here it
 *   proves nothing about availability and decides nothing.
 * - Its breakers and open timer read `Date.now()`: no injectable clock (tests would need global
 *   fake timers) and wall-clock steps (NTP) stretch or cut the open period.
 * - SamplingBreaker judges a minimum *rate* (`minimumRps`) and `failures > ratio` with the ratio in
 *   the open interval (0, 1); settings here say "at least `minimumCalls` calls and `>=` ratio".
 * - Its fast-fail path allocates an error with a captured stack (most of the 5 us, see circuitOpen).
 */

/** The breaker's states, in the order dashboards show them (the `state` label of meshlimit_breaker_state). */
export const CIRCUIT_STATES = ['closed', 'half_open', 'open'] as const;
export type CircuitState = (typeof CIRCUIT_STATES)[number];

/**
 * Why the breaker changed state:
 * - `failure_threshold`: closed -> open, the failure ratio over the window reached the threshold.
 * - `open_elapsed`: open -> half_open, `openMs` passed (observed lazily, see {@link CircuitBreakerBackend}).
 * - `probes_succeeded`: half_open -> closed, all `halfOpenProbes` trial calls succeeded.
 * - `probe_failed`: half_open -> open, a trial call failed transiently.
 */
export type BreakerTransitionReason = 'failure_threshold' | 'open_elapsed' | 'probes_succeeded' | 'probe_failed';

/** Tuning of {@link CircuitBreakerBackend}. All durations in milliseconds. */
export interface CircuitBreakerOptions {
  /**
   * Failure ratio in (0, 1]: the circuit opens when `failures / calls >= failureThreshold` over
   * the last `windowMs`, provided at least `minimumCalls` calls were observed. 0.5 = "half the
   * calls failed". A ratio (not a count) so the same setting works at 10 and at 10,000 req/s.
   * `failureThreshold: 1` with `minimumCalls: N` means "N calls in the window, all failed".
   */
  readonly failureThreshold: number;
  /** Calls (successes + transient failures) needed in the window before the ratio is judged. Integer >= 1. */
  readonly minimumCalls: number;
  /** Length of the sliding window the ratio is computed over (granularity windowMs / windowBuckets). */
  readonly windowMs: number;
  /** Time the circuit stays open (calls fail fast) before admitting trial calls. */
  readonly openMs: number;
  /**
   * Trial calls admitted in half-open. All of them succeeding closes the circuit; the first
   * transient failure reopens it. Calls beyond this number fail fast while the probes run.
   */
  readonly halfOpenProbes: number;
  /** Buckets of the sliding window; default 10. */
  readonly windowBuckets?: number | undefined;
  /**
   * Monotonic clock in ms, only used for durations. Default `performance.now` (immune to
   * wall-clock steps). Tests inject a manual clock.
   */
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
 * - closed: every call goes to `inner`; successes and TRANSIENT failures are counted in a sliding
 *   window; the circuit opens when the ratio reaches `failureThreshold` with >= `minimumCalls`.
 * - open: calls reject at once with {@link CircuitOpenError}; `inner` is not called.
 *   `isReady()` is false.
 * - half_open (first call or `state()`/`isReady()` query after `openMs`): the first
 *   `halfOpenProbes` calls go to `inner`, the rest fail fast. All probes succeeding closes the
 *   circuit with an empty window; any transient probe failure reopens it for another `openMs`.
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
  private readonly window: FailureWindow;
  private current: CircuitState = 'closed';
  /** Bumped on every transition; a call's result only counts in the generation it started in. */
  private generation = 0;
  private openedAt = 0;
  private probesAdmitted = 0;
  private probesSucceeded = 0;

  constructor(
    private readonly inner: Backend,
    private readonly opts: CircuitBreakerOptions,
    private readonly hooks: CircuitBreakerHooks = {},
  ) {
    validate(opts);
    this.kind = inner.kind;
    this.clock = opts.clock ?? (() => performance.now());
    this.window = new FailureWindow(opts.windowMs, opts.windowBuckets ?? 10);
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
    if (this.current === 'closed') {
      this.window.record(this.clock(), false);
    } else if (this.current === 'half_open' && ++this.probesSucceeded >= this.opts.halfOpenProbes) {
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
    } else if (this.current === 'closed') {
      this.window.record(now, true);
      const { calls, failures } = this.window.snapshot(now);
      if (calls >= this.opts.minimumCalls && failures / calls >= this.opts.failureThreshold) {
        this.transition('open', 'failure_threshold', now);
      }
    }
  }

  private transition(to: CircuitState, reason: BreakerTransitionReason, now: number): void {
    const from = this.current;
    this.current = to;
    this.generation++;
    if (to === 'open') this.openedAt = now;
    if (to === 'half_open') {
      this.probesAdmitted = 0;
      this.probesSucceeded = 0;
    }
    if (to === 'closed') this.window.reset();
    try {
      this.hooks.onStateChange?.(from, to, reason);
    } catch {
      // Telemetry must not change a decision (see CircuitBreakerHooks).
    }
  }
}

function validate(o: CircuitBreakerOptions): void {
  if (!(o.failureThreshold > 0 && o.failureThreshold <= 1)) {
    throw new RangeError(`failureThreshold must be a ratio in (0, 1], got ${o.failureThreshold}`);
  }
  if (!Number.isInteger(o.minimumCalls) || o.minimumCalls < 1)
    throw new RangeError(`minimumCalls must be an integer >= 1, got ${o.minimumCalls}`);
  if (!Number.isInteger(o.halfOpenProbes) || o.halfOpenProbes < 1) {
    throw new RangeError(`halfOpenProbes must be an integer >= 1, got ${o.halfOpenProbes}`);
  }
  if (!(o.windowMs > 0 && Number.isFinite(o.windowMs)))
    throw new RangeError(`windowMs must be a positive finite number, got ${o.windowMs}`);
  if (!(o.openMs >= 0 && Number.isFinite(o.openMs))) throw new RangeError(`openMs must be a finite number >= 0, got ${o.openMs}`);
}
