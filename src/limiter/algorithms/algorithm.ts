/**
 * The shape every algorithm's reference math follows. The same math runs in Lua
 * (`lua/<name>.lua`) against Redis and in TypeScript in the memory backend; property tests check
 * that both agree with each other and with exact models.
 *
 * State is stored as one string per counter key (the format below is shared with Lua), with a TTL
 * that only serves cleanup: correctness never depends on expiry, so a test clock far from the real
 * clock still gives exact answers.
 */
export interface StepInput {
  readonly windowMs: number;
  readonly threshold: number;
  readonly burst: number;
  readonly hits: number;
  /** Charge even when over (envoyproxy/ratelimit behaviour). Token bucket never goes below empty. */
  readonly chargeOnOver: boolean;
}

export interface StepResult<S> {
  readonly over: boolean;
  /** Whole requests left after this step (0 when over). */
  readonly remaining: number;
  /** Integer milliseconds until reset. */
  readonly resetMs: number;
  /** The state after this step (charged when allowed, or when chargeOnOver applies). */
  readonly next: S;
  /** Cleanup TTL for `next`, integer ms > 0. */
  readonly ttlMs: number;
  /** Whether `next` differs from the input state and must be written. */
  readonly changed: boolean;
  /**
   * The input state was stored and already belongs to the current window, so the TTL its writer
   * set (to this window's end, or one window later for the sliding window) is still right: a write
   * may keep it instead of setting `ttlMs` again (Redis `SET ... KEEPTTL`, cheaper than `PX`).
   * Always false for the token bucket, whose "full again" moment moves with every take.
   */
  readonly keepTtl: boolean;
}

/** What a refund gives back: the charge's parameters (see {@link AlgorithmMath.refund}). */
export interface RefundInput {
  readonly windowMs: number;
  readonly threshold: number;
  readonly burst: number;
  /** The hits the charge took (> 0). */
  readonly hits: number;
}

export interface AlgorithmMath<S> {
  /**
   * One-letter code in lua/refund.lua's ARGV. (The evaluate scripts take a numeric code in their
   * packed ARGV: SCRIPT_CODE in src/backend/redis/scripts.ts.)
   */
  readonly code: 'f' | 's' | 't';
  step(state: S | undefined, input: StepInput, now: number): StepResult<S>;
  /**
   * Gives back a charge of `input.hits` made by {@link step} at `chargeNow`, on the state as it
   * is now (other requests may have charged since). Returns the new state, or undefined when
   * there is nothing to give back (no state, or the charge has expired with its window).
   *
   * Contract: never gives back more than the charge still holds, so a refund can leave a counter
   * higher than "as if the charge never happened" (a transient under-admission) but never lower.
   * Used only where one request's evaluation is split over several atomic calls (Redis Cluster,
   * one call per hash slot, lua/refund.lua); the memory backend evaluates atomically and never
   * refunds.
   */
  refund(state: S | undefined, input: RefundInput, chargeNow: number): S | undefined;
  encode(state: S): string;
  /** Returns undefined for a missing or unparsable value (treated as a fresh counter). */
  decode(raw: string | null | undefined): S | undefined;
}

/** Formats a double so that Lua's `tonumber` and JS `Number` read back the exact same value. */
export function fmtNum(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toPrecision(17);
}
