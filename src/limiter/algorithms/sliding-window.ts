import type { AlgorithmMath, RefundInput, StepInput, StepResult } from './algorithm.js';
import { STATE_TAG, legacyFields, packState, unpackState } from './state-bytes.js';

/**
 * Sliding window, the weighted two-window counter: the previous window's count is weighted by the
 * share of it still inside the sliding window, assuming its hits were spread evenly:
 *
 *   estimate = prev * (windowMs - elapsed) / windowMs + cur      (elapsed = now - currentStart)
 *   over     = estimate + hits > threshold
 *
 * Documented bound: never more than `threshold` admitted within one aligned window, and never
 * more than 2 x threshold within any window-length span (the worst case is a previous window whose
 * hits all came at its very end). Reset = time until the current aligned window ends.
 *
 * Stored state: tag 'S', then the current window start (Unix ms), cur and prev as little-endian
 * doubles (25 bytes, see state-bytes.ts); the decimal `<currentStart>:<cur>:<prev>` of earlier
 * versions is read too. Lua twin: lua/sliding-window.lua.
 */
export interface SlidingWindowState {
  readonly start: number;
  readonly cur: number;
  readonly prev: number;
}

const TAG = STATE_TAG.sliding_window;

export const slidingWindow: AlgorithmMath<SlidingWindowState> = {
  code: 's',
  step(state, input: StepInput, now): StepResult<SlidingWindowState> {
    const { windowMs, threshold, hits } = input;
    const start = Math.floor(now / windowMs) * windowMs;
    let cur = 0;
    let prev = 0;
    const current = state !== undefined && state.start === start;
    if (state !== undefined) {
      if (current) {
        cur = state.cur;
        prev = state.prev;
      } else if (state.start === start - windowMs) {
        prev = state.cur;
      }
    }
    const elapsed = now - start;
    const estimate = (prev * (windowMs - elapsed)) / windowMs + cur;
    const over = estimate + hits > threshold;
    const charge = hits > 0 && (!over || input.chargeOnOver);
    const nextCur = charge ? cur + hits : cur;
    const resetMs = start + windowMs - now;
    return {
      over,
      remaining: over ? 0 : Math.floor(threshold - estimate - hits),
      resetMs,
      next: { start, cur: nextCur, prev },
      ttlMs: resetMs + windowMs,
      changed: charge,
      keepTtl: current,
    };
  },
  /**
   * Still the charge's window: cur - hits; rolled over exactly once: the charge now sits in prev,
   * prev - hits; later: nothing is left to give back. Counts never go below 0.
   */
  refund(state, input: RefundInput, chargeNow): SlidingWindowState | undefined {
    if (state === undefined) return undefined;
    const start = Math.floor(chargeNow / input.windowMs) * input.windowMs;
    // `x < 0 ? 0 : x`, not Math.max: the same -0 as Lua's `if x < 0 then x = 0 end`
    if (state.start === start) {
      const cur = state.cur - input.hits;
      return { start: state.start, cur: cur < 0 ? 0 : cur, prev: state.prev };
    }
    if (state.start === start + input.windowMs) {
      const prev = state.prev - input.hits;
      return { start: state.start, cur: state.cur, prev: prev < 0 ? 0 : prev };
    }
    return undefined;
  },
  encode: (s) => packState(TAG, s.start, s.cur, s.prev),
  decode(raw) {
    if (!raw) return undefined;
    const f = unpackState(raw, TAG, 3) ?? legacyFields(raw, 3);
    // A non-finite start is kept: it matches neither window, so the step reads it as fresh.
    return f !== undefined && Number.isFinite(f[1]) && Number.isFinite(f[2]) ? { start: f[0]!, cur: f[1]!, prev: f[2]! } : undefined;
  },
};
