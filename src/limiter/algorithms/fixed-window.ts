import type { AlgorithmMath, RefundInput, StepInput, StepResult } from './algorithm.js';
import { STATE_TAG, legacyFields, packState, unpackState } from './state-bytes.js';

/**
 * Fixed window, envoyproxy/ratelimit's arithmetic: windows aligned to multiples of the window
 * length since the Unix epoch; a hit is over the limit when the count *after* it exceeds the
 * threshold. Reset = time until the window ends.
 *
 * Stored state: tag 'F', then the window start (Unix ms) and the count as little-endian doubles
 * (17 bytes, see state-bytes.ts); the decimal `<windowStart>:<count>` of earlier versions is read
 * too. Lua twin: lua/fixed-window.lua.
 */
export interface FixedWindowState {
  readonly start: number;
  readonly count: number;
}

const TAG = STATE_TAG.fixed_window;

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
    const after = state.count - input.hits;
    return { start, count: after < 0 ? 0 : after };
  },
  encode: (s) => packState(TAG, s.start, s.count),
  decode(raw) {
    if (!raw) return undefined;
    const f = unpackState(raw, TAG, 2) ?? legacyFields(raw, 2);
    return f !== undefined && Number.isFinite(f[0]) && Number.isFinite(f[1]) ? { start: f[0]!, count: f[1]! } : undefined;
  },
};
