import { fmtNum, type AlgorithmMath, type RefundInput, type StepInput, type StepResult } from './algorithm.js';

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
 * State string: `<currentStart>:<cur>:<prev>` (integers). Lua twin: lua/sliding-window.lua.
 */
export interface SlidingWindowState {
  readonly start: number;
  readonly cur: number;
  readonly prev: number;
}

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
    if (state.start === start) return { start: state.start, cur: Math.max(0, state.cur - input.hits), prev: state.prev };
    if (state.start === start + input.windowMs) return { start: state.start, cur: state.cur, prev: Math.max(0, state.prev - input.hits) };
    return undefined;
  },
  encode: (s) => `${s.start}:${s.cur}:${s.prev}`,
  decode(raw) {
    if (!raw) return undefined;
    const parts = raw.split(':');
    if (parts.length !== 3) return undefined;
    const [start, cur, prev] = parts.map(Number) as [number, number, number];
    return Number.isFinite(start) && Number.isFinite(cur) && Number.isFinite(prev) ? { start, cur, prev } : undefined;
  },
};

export { fmtNum };
