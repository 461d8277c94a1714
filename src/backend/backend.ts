import type { Limit } from '../limiter/types.js';

/**
 * One counter operation inside a request: "charge `hits` against `key` under `limit`, with
 * this effective `threshold`".
 */
export interface CounterOp {
  /** Full store key, built by `src/limiter/keys.ts` (cluster-safe, injection-safe). */
  readonly key: string;
  readonly algorithm: Limit['algorithm'];
  readonly windowMs: number;
  /** Requests per window (fixed/sliding) or refill per window (token bucket); override-aware. */
  readonly threshold: number;
  /** Token bucket capacity; equals threshold for the window algorithms. */
  readonly burst: number;
  /** Hits to add; 0 checks without consuming. */
  readonly hits: number;
  /**
   * false for shadow-mode limits: being over them never denies the request and never blocks
   * other ops from being charged (the shadow counter itself is treated as if enforced).
   */
  readonly enforce: boolean;
}

export interface CounterOutcome {
  /** This op alone is over its limit. */
  readonly overLimit: boolean;
  /** Whole requests left after this op (0 when over). For a denied request: as if admitted. */
  readonly remaining: number;
  /** Milliseconds until reset (integer, >= 0). */
  readonly resetMs: number;
}

export interface EvaluateOptions {
  /**
   * false (default, meshlimit): when any enforced op is over its limit, no op of the request is
   * charged. true: envoyproxy/ratelimit's behaviour, every window op is charged regardless.
   */
  readonly chargeOnDeny: boolean;
  /** Clock override in Unix milliseconds, for tests only. Undefined: the backend's own clock (Redis TIME). */
  readonly now?: number | undefined;
}

export interface EvaluateResult {
  /** True when some enforced op was over its limit. */
  readonly denied: boolean;
  /** One outcome per op, in order. */
  readonly outcomes: readonly CounterOutcome[];
}

/**
 * A counter store. Implementations: memory (in-process) and Redis. All of them pass
 * `test/integration/backend/conformance.ts`.
 *
 * Semantics (exact, see src/limiter/algorithms/evaluate.ts for the reference): ops are evaluated
 * in order against a working copy of state (so two ops on the same key see each other), then the
 * working copy is committed only if the request is admitted (or chargeOnDeny is set).
 */
export interface Backend {
  readonly kind: string;
  evaluate(ops: readonly CounterOp[], options: EvaluateOptions): Promise<EvaluateResult>;
  /**
   * The same evaluation answered synchronously, for a backend that needs no I/O (the memory
   * backend): the limiter then decides without a promise. Throws what `evaluate` rejects with.
   * Wrappers (breaker, failure policy, instrumentation) do not offer it, so a wrapped backend is
   * always asked through `evaluate`.
   */
  evaluateSync?(ops: readonly CounterOp[], options: EvaluateOptions): EvaluateResult;
  /** True when the backend can currently serve requests. */
  isReady(): boolean;
  /** Stops accepting work and releases connections/timers. */
  close(): Promise<void>;
}
