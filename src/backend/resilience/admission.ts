import { OverloadedError } from '../../errors.js';
import type { Backend } from '../../limiter/ports.js';
import type { CounterOp, EvaluateOptions, EvaluateResult } from '../../limiter/types.js';
import { EventLoopDelay } from './event-loop-delay.js';

/**
 * Admission control in front of the counter store: when this process already has as much Redis
 * work outstanding as it can settle within the command timeout, or its event loop is lagging,
 * a new request is shed at once with {@link OverloadedError}, before anything is sent, so it
 * charges nothing and adds no Redis work; the failure policy answers it (`degraded:
 * 'overloaded'` under allow or local, UNAVAILABLE under deny).
 *
 * Why: under a burst (h2load -c64 -m64) a 2-core box queued thousands of requests behind each
 * other; their script calls went out late, missed REDIS_COMMAND_TIMEOUT_MS with Redis healthy,
 * still charged their counters (a timed-out call may have run) and were answered UNAVAILABLE.
 * Shedding the excess keeps the admitted requests inside their deadline and exact, and sheds
 * cost microseconds.
 *
 * Sits outside the circuit breaker: a shed request never reached the store, so it is not a
 * failure of the store.
 */
export interface AdmissionOptions {
  /**
   * Requests allowed to wait on the store at once (ADMISSION_MAX_OUTSTANDING): about what the
   * process settles within one command timeout. 0 disables the bound.
   */
  readonly maxOutstanding: number;
  /**
   * Shed while the event loop's recent delay exceeds this many ms (ADMISSION_MAX_EVENT_LOOP_DELAY_MS):
   * a reply could not even be read in time. 0 disables the check.
   */
  readonly maxEventLoopDelayMs: number;
  /** The delay source (default: a shared {@link EventLoopDelay}); tests inject one. */
  readonly eventLoopDelay?: { recentMaxMs(): number } | undefined;
}

export class AdmissionBackend implements Backend {
  readonly kind: string;
  private outstanding = 0;
  private readonly delay: { recentMaxMs(): number } | undefined;

  constructor(
    private readonly inner: Backend,
    private readonly opts: AdmissionOptions,
  ) {
    if (!Number.isInteger(opts.maxOutstanding) || opts.maxOutstanding < 0)
      throw new RangeError(`maxOutstanding must be an integer >= 0, got ${opts.maxOutstanding}`);
    if (!(opts.maxEventLoopDelayMs >= 0)) throw new RangeError(`maxEventLoopDelayMs must be >= 0, got ${opts.maxEventLoopDelayMs}`);
    this.kind = inner.kind;
    this.delay = opts.maxEventLoopDelayMs > 0 ? (opts.eventLoopDelay ?? EventLoopDelay.shared()) : undefined;
  }

  /** Requests waiting on the store now. */
  get inFlight(): number {
    return this.outstanding;
  }

  evaluate(ops: readonly CounterOp[], options: EvaluateOptions): Promise<EvaluateResult> {
    const max = this.opts.maxOutstanding;
    if (max > 0 && this.outstanding >= max)
      return Promise.reject(shed(`${this.outstanding} requests already wait on the counter store, ADMISSION_MAX_OUTSTANDING=${max}`));
    if (this.delay !== undefined) {
      const lag = this.delay.recentMaxMs();
      if (lag > this.opts.maxEventLoopDelayMs) {
        return Promise.reject(
          shed(`event-loop delay ${Math.round(lag)} ms, ADMISSION_MAX_EVENT_LOOP_DELAY_MS=${this.opts.maxEventLoopDelayMs}`),
        );
      }
    }
    this.outstanding++;
    return this.inner.evaluate(ops, options).finally(this.settled);
  }

  private readonly settled = (): void => {
    this.outstanding--;
  };

  isReady(): boolean {
    return this.inner.isReady();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/** An OverloadedError without a stack trace (shedding must stay cheap; it is raised from one place). */
function shed(why: string): OverloadedError {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return new OverloadedError(`overloaded: request shed before reaching Redis, nothing charged (${why})`);
  } finally {
    Error.stackTraceLimit = limit;
  }
}
