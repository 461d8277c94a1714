import { fmtNum, type AlgorithmMath, type StepInput, type StepResult } from './algorithm.js';

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
      return { over: hits > 0, remaining: 0, resetMs: 0, next: state ?? { level: 0, last: now }, ttlMs: 1, changed: false };
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
    };
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
