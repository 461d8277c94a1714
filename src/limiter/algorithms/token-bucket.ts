import { fmtNum, type AlgorithmMath, type RefundInput, type StepInput, type StepResult } from './algorithm.js';

/**
 * Token bucket with continuous refill: capacity `burst` tokens, refilled at `threshold` tokens
 * per `windowMs`. A request of `hits` is admitted when at least `hits` tokens are in the bucket.
 *
 * To stay exact with integer clocks, the level is kept in token-milliseconds scaled by the window:
 *   level = tokens x windowMs;  refill per ms = threshold;  capacity = burst x windowMs;
 *   cost = hits x windowMs.
 * With integer `now` every quantity is an integer (exact in doubles below 2^53).
 *
 * Bound: over any span of d ms, admitted <= burst + floor(d x threshold / windowMs).
 * Reset = milliseconds until the bucket is full again (ceil).
 * A fresh (or expired) key starts full. If the clock goes backwards, no refill happens.
 * requests_per_unit 0 blocks every request (hits > 0), like the window algorithms.
 *
 * State string: `<level>:<lastMs>`. Lua twin: lua/token-bucket.lua.
 */
export interface TokenBucketState {
  readonly level: number;
  readonly last: number;
}

export const tokenBucket: AlgorithmMath<TokenBucketState> = {
  code: 't',
  step(state, input: StepInput, now): StepResult<TokenBucketState> {
    const { windowMs, threshold, burst, hits } = input;
    // requests_per_unit 0 blocks every request, as for the window algorithms (a bucket that
    // never refilled would otherwise depend on key expiry to come back).
    if (threshold === 0) {
      return { over: hits > 0, remaining: 0, resetMs: 0, next: state ?? { level: 0, last: now }, ttlMs: 1, changed: false, keepTtl: false };
    }
    const cap = burst * windowMs;
    let level = cap;
    if (state !== undefined) {
      const elapsed = now > state.last ? now - state.last : 0;
      level = Math.min(cap, state.level + elapsed * threshold);
    }
    const cost = hits * windowMs;
    const over = cost > level;
    const charge = hits > 0 && !over;
    const after = charge ? level - cost : level;
    const resetMs = threshold > 0 ? Math.ceil((cap - after) / threshold) : 0;
    return {
      over,
      remaining: over ? 0 : Math.floor(after / windowMs),
      resetMs,
      next: { level: after, last: now },
      ttlMs: Math.max(1, resetMs),
      changed: charge,
      keepTtl: false,
    };
  },
  /**
   * Puts the taken tokens back: level + give, capped at the capacity, `last` kept, where
   *   give = hits x windowMs - (last - chargeNow) x threshold.
   * With last = chargeNow (nothing taken since ours) the hole our take left is exactly
   * hits x windowMs and the refund is exact: the state is then equivalent, at every later time, to
   * the one the take replaced. A later take (last > chargeNow) may have happened after the refill
   * reached the cap, which fills part of our hole for free; that part is at most the refill since
   * the charge, hence the subtraction: the refund may give back less than exact, never more.
   * last < chargeNow (clocks went back) gives nothing.
   */
  refund(state, input: RefundInput, chargeNow): TokenBucketState | undefined {
    if (state === undefined || state.last < chargeNow) return undefined;
    const give = input.hits * input.windowMs - (state.last - chargeNow) * input.threshold;
    if (!(give > 0)) return undefined;
    return { level: Math.min(input.burst * input.windowMs, state.level + give), last: state.last };
  },
  encode: (s) => `${fmtNum(s.level)}:${s.last}`,
  decode(raw) {
    if (!raw) return undefined;
    const i = raw.indexOf(':');
    const level = Number(raw.slice(0, i));
    const last = Number(raw.slice(i + 1));
    return i > 0 && Number.isFinite(level) && Number.isFinite(last) ? { level, last } : undefined;
  },
};
