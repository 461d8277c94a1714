/**
 * The shape every algorithm's reference math follows. The same math runs in Lua
 * (`lua/<name>.lua`) against Redis and in TypeScript in the memory backend; property tests check
 * that both agree with each other and with exact models.
 *
 * State is stored as one byte string per counter key (a tag byte and little-endian doubles, the
 * same bytes Lua's struct.pack writes: see state-bytes.ts), with a TTL that only serves cleanup:
 * correctness never depends on expiry, so a test clock far from the real clock still gives exact
 * answers.
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
   * The TTL the input state's writer set is still right, so a write may keep it instead of setting
   * `ttlMs` again (Redis `SET ... KEEPTTL`, cheaper than `PX`): for the windows, the input was
   * stored and belongs to the current window (its first write set the TTL to this window's end,
   * or one window later for the sliding window); for the token bucket, the deadline the state
   * records as armed is still at or after the moment the bucket is full again. When true,
   * `ttlMs` is what that kept TTL has left on the algorithm's clock.
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
   * packed ARGV: SCRIPT_CODE in src/backend/redis/script-format.ts.)
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
  /** The stored byte string (one char per byte, see state-bytes.ts). */
  encode(state: S): string;
  /**
   * Reads a stored byte string: this algorithm's binary state, or the decimal text of versions
   * before it. Returns undefined for a missing or unparsable value (treated as a fresh counter).
   */
  decode(raw: string | null | undefined): S | undefined;
}
