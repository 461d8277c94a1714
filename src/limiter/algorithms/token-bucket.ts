import type { AlgorithmMath, RefundInput, StepInput, StepResult } from './algorithm.js';
import { STATE_TAG, legacyFields, packState, unpackState } from './state-bytes.js';

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
 * TTL: the key must outlive the moment the bucket is full again (an expired bucket is a full one),
 * and that moment moves with every take. Re-arming the TTL on every write (Redis `SET ... PX`)
 * costs more than keeping it (`KEEPTTL`), so a write that arms gives the key twice the full-refill
 * time and records the deadline in the state (`armed`); later writes keep the TTL while
 * `now + resetMs <= armed`. `armed` is in Redis's clock, as the key's expiry is. The TTL only
 * serves cleanup: a test clock far from Redis's changes which writes re-arm, never an answer.
 *
 * Stored state: tag 'T', then level, last and armed as little-endian doubles (25 bytes, see
 * state-bytes.ts); the decimal `<level>:<lastMs>` of earlier versions is read too, with armed =
 * -Infinity (the next write arms). Lua twin: lua/token-bucket.lua.
 */
export interface TokenBucketState {
  readonly level: number;
  readonly last: number;
  /** The Unix ms until which the key's TTL was last armed (any double; NaN or -Infinity: not armed). */
  readonly armed: number;
}

const TAG = STATE_TAG.token_bucket;

export const tokenBucket: AlgorithmMath<TokenBucketState> = {
  code: 't',
  step(state, input: StepInput, now): StepResult<TokenBucketState> {
    const { windowMs, threshold, burst, hits } = input;
    // requests_per_unit 0 blocks every request, as for the window algorithms (a bucket that
    // never refilled would otherwise depend on key expiry to come back).
    if (threshold === 0) {
      return {
        over: hits > 0,
        remaining: 0,
        resetMs: 0,
        next: state ?? { level: 0, last: now, armed: -Infinity },
        ttlMs: 1,
        changed: false,
        keepTtl: false,
      };
    }
    const cap = burst * windowMs;
    let level = cap;
    let armed = -Infinity;
    if (state !== undefined) {
      const elapsed = now > state.last ? now - state.last : 0;
      level = Math.min(cap, state.level + elapsed * threshold);
      armed = state.armed;
    }
    const cost = hits * windowMs;
    const over = cost > level;
    const charge = hits > 0 && !over;
    const after = charge ? level - cost : level;
    const resetMs = Math.ceil((cap - after) / threshold);
    let ttlMs = Math.max(1, resetMs);
    let keepTtl = false;
    if (charge) {
      if (now + resetMs <= armed) {
        keepTtl = true;
        ttlMs = armed - now;
      } else {
        ttlMs = 2 * Math.ceil(cap / threshold);
        armed = now + ttlMs;
      }
    }
    return {
      over,
      remaining: over ? 0 : Math.floor(after / windowMs),
      resetMs,
      next: { level: after, last: now, armed },
      ttlMs,
      changed: charge,
      keepTtl,
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
    return { level: Math.min(input.burst * input.windowMs, state.level + give), last: state.last, armed: state.armed };
  },
  encode: (s) => packState(TAG, s.level, s.last, s.armed),
  decode(raw) {
    if (!raw) return undefined;
    let f = unpackState(raw, TAG, 3);
    if (f === undefined) {
      f = legacyFields(raw, 2);
      if (f !== undefined) f.push(-Infinity);
    }
    return f !== undefined && Number.isFinite(f[0]) && Number.isFinite(f[1]) ? { level: f[0]!, last: f[1]!, armed: f[2]! } : undefined;
  },
};
