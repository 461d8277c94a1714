import { describe, expect, it } from 'vitest';
import type { CounterOp } from '../../../src/limiter/types.js';
import { evaluateStored } from '../../../src/limiter/algorithms/evaluate.js';
import { fixedWindow, slidingWindow, tokenBucket } from '../../../src/limiter/algorithms/index.js';
import { stateText } from '../../../src/limiter/algorithms/state-bytes.js';

/**
 * keepTtl: a write may keep the stored TTL (Redis SET ... KEEPTTL, cheaper than PX) exactly when
 * that TTL is still right: for the windows, the stored state already belongs to the current
 * window, whose first write set the TTL the window needs; for the token bucket, the deadline the
 * state records as armed is not before the moment the bucket is full again. The Lua scripts make the same decision (checked against Redis in
 * test/integration/backend/lua-vs-ts.property.test.ts and redis-backend.test.ts).
 */

const T0 = 1_700_000_040_000; // minute-aligned
const input = { windowMs: 60_000, threshold: 10, burst: 10, hits: 1, chargeOnOver: false };

describe('StepResult.keepTtl', () => {
  it('fixed window: true only for a stored state of the current window', () => {
    expect(fixedWindow.step(undefined, input, T0 + 5).keepTtl).toBe(false);
    expect(fixedWindow.step({ start: T0, count: 3 }, input, T0 + 59_999).keepTtl).toBe(true);
    expect(fixedWindow.step({ start: T0 - 60_000, count: 3 }, input, T0 + 5).keepTtl).toBe(false);
  });

  it('sliding window: true only for a stored state of the current window (not the previous one, whose TTL ends sooner)', () => {
    expect(slidingWindow.step(undefined, input, T0 + 5).keepTtl).toBe(false);
    expect(slidingWindow.step({ start: T0, cur: 3, prev: 1 }, input, T0 + 59_999).keepTtl).toBe(true);
    expect(slidingWindow.step({ start: T0 - 60_000, cur: 3, prev: 1 }, input, T0 + 5).keepTtl).toBe(false);
  });

  it('token bucket: while the bucket is full again by the armed deadline; arming gives 2 x the full-refill time', () => {
    // 10 tokens per minute, capacity 10: full refill 60 s, armed for 120 s.
    const fresh = tokenBucket.step(undefined, input, T0);
    expect(fresh).toMatchObject({ keepTtl: false, ttlMs: 120_000, next: { level: 540_000, last: T0, armed: T0 + 120_000 } });
    // Full again at T0 + 12 s, before the armed T0 + 120 s: kept, with what it has left.
    const kept = tokenBucket.step(fresh.next, input, T0 + 6_000);
    expect(kept).toMatchObject({ keepTtl: true, ttlMs: 114_000, resetMs: 6_000, next: { armed: T0 + 120_000 } });
    // Empty at T0 + 100 s: full again at T0 + 160 s, after the armed deadline: armed again from now.
    const empty = tokenBucket.step({ level: 0, last: T0 + 100_000, armed: T0 + 120_000 }, { ...input, hits: 0 }, T0 + 100_000);
    expect(empty).toMatchObject({ over: false, changed: false });
    const rearmed = tokenBucket.step({ level: 60_000, last: T0 + 100_000, armed: T0 + 120_000 }, input, T0 + 100_000);
    expect(rearmed).toMatchObject({ keepTtl: false, ttlMs: 120_000, resetMs: 60_000, next: { level: 0, armed: T0 + 220_000 } });
    // The exact boundary: full again exactly at the armed deadline is kept.
    expect(tokenBucket.step({ level: 60_000, last: T0 + 60_000, armed: T0 + 120_000 }, input, T0 + 60_000)).toMatchObject({
      keepTtl: true,
      ttlMs: 60_000,
    });
    // Not armed (a state from an earlier version, or NaN): arms.
    expect(tokenBucket.step({ level: 300_000, last: T0, armed: -Infinity }, input, T0).keepTtl).toBe(false);
    expect(tokenBucket.step({ level: 300_000, last: T0, armed: Number.NaN }, input, T0).keepTtl).toBe(false);
    expect(tokenBucket.step({ level: 300_000, last: T0, armed: T0 + 1e9 }, { ...input, threshold: 0 }, T0).keepTtl).toBe(false);
  });
});

describe('evaluateStored: the TTL decision per written key', () => {
  const op = (hits = 1): CounterOp => ({
    key: 'k',
    algorithm: 'fixed_window',
    windowMs: 60_000,
    threshold: 10,
    burst: 10,
    hits,
    enforce: true,
  });
  const stored = (value: string | undefined) => () => value;
  const shown = (w: { value: string; ttlMs: number; keepTtl: boolean } | undefined) => w && { ...w, value: stateText(w.value) };

  it('keeps the TTL when every step that changed the key saw the stored window', () => {
    const { writes } = evaluateStored([op(), op(2)], T0 + 10, false, stored(`${T0}:1`));
    expect(shown(writes.get('k'))).toEqual({ value: `F ${T0}:4`, ttlMs: 59_990, keepTtl: true });
  });

  it('sets it again when one step opened a new window, even if a later step saw that new window in the working copy', () => {
    const { writes } = evaluateStored([op(), op(2)], T0 + 10, false, stored(`${T0 - 60_000}:5`));
    expect(shown(writes.get('k'))).toEqual({ value: `F ${T0}:3`, ttlMs: 59_990, keepTtl: false });
    expect(shown(evaluateStored([op(), op(2)], T0 + 10, false, stored(undefined)).writes.get('k'))).toEqual({
      value: `F ${T0}:3`,
      ttlMs: 59_990,
      keepTtl: false,
    });
  });

  it('a step that changes nothing does not take part', () => {
    const { writes } = evaluateStored([op(0), op(2)], T0 + 10, false, stored(`${T0}:1`));
    expect(shown(writes.get('k'))).toEqual({ value: `F ${T0}:3`, ttlMs: 59_990, keepTtl: true });
  });
});
