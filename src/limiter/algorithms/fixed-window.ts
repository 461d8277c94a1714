import type { AlgorithmMath, RefundInput, StepInput, StepResult } from './algorithm.js';

/**
 * Fixed window, envoyproxy/ratelimit's arithmetic: windows aligned to multiples of the window
 * length since the Unix epoch; a hit is over the limit when the count *after* it exceeds the
 * threshold. Reset = time until the window ends.
 *
 * State string: `<windowStart>:<count>` (integers). Lua twin: lua/fixed-window.lua.
 */
export interface FixedWindowState {
  readonly start: number;
  readonly count: number;
}

export const fixedWindow: AlgorithmMath<FixedWindowState> = {
  code: 'f',
  step(state, input: StepInput, now): StepResult<FixedWindowState> {
    const { windowMs, threshold, hits } = input;
    const start = Math.floor(now / windowMs) * windowMs;
    const current = state !== undefined && state.start === start;
    const count = current ? state.count : 0;
    const after = count + hits;
    const over = after > threshold;
    const charge = hits > 0 && (!over || input.chargeOnOver);
    const resetMs = start + windowMs - now;
    return {
      over,
      remaining: over ? 0 : Math.floor(threshold - after),
      resetMs,
      next: charge ? { start, count: after } : { start, count },
      ttlMs: resetMs,
      changed: charge,
      keepTtl: current,
    };
  },
  /** Same window as the charge: count - hits (at least 0). A rolled-over window took the charge with it. */
  refund(state, input: RefundInput, chargeNow): FixedWindowState | undefined {
    if (state === undefined) return undefined;
    const start = Math.floor(chargeNow / input.windowMs) * input.windowMs;
    if (state.start !== start) return undefined;
    return { start, count: Math.max(0, state.count - input.hits) };
  },
  encode: (s) => `${s.start}:${s.count}`,
  decode(raw) {
    if (!raw) return undefined;
    const i = raw.indexOf(':');
    const start = Number(raw.slice(0, i));
    const count = Number(raw.slice(i + 1));
    return i > 0 && Number.isFinite(start) && Number.isFinite(count) ? { start, count } : undefined;
  },
};
