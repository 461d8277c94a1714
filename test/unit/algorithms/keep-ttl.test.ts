import { describe, expect, it } from 'vitest';
import type { CounterOp } from '../../../src/backend/backend.js';
import { evaluateOps } from '../../../src/limiter/algorithms/evaluate.js';
import { fixedWindow, slidingWindow, tokenBucket } from '../../../src/limiter/algorithms/index.js';

/**
 * keepTtl: a write may keep the stored TTL (Redis SET ... KEEPTTL, cheaper than PX) exactly when
 * the stored state already belongs to the current window, whose first write set the TTL the
 * window needs. The Lua scripts make the same decision (checked against Redis in
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

  it('token bucket: never (each take moves the moment the bucket is full again)', () => {
    expect(tokenBucket.step(undefined, input, T0).keepTtl).toBe(false);
    expect(tokenBucket.step({ level: 300_000, last: T0 }, input, T0).keepTtl).toBe(false);
    expect(tokenBucket.step({ level: 300_000, last: T0 }, { ...input, threshold: 0 }, T0).keepTtl).toBe(false);
  });
});

describe('evaluateOps: the TTL decision per written key', () => {
  const op = (hits = 1): CounterOp => ({ key: 'k', algorithm: 'fixed_window', windowMs: 60_000, threshold: 10, burst: 10, hits, enforce: true });
  const stored = (value: string | undefined) => () => value;

  it('keeps the TTL when every step that changed the key saw the stored window', () => {
    const { writes } = evaluateOps([op(), op(2)], T0 + 10, false, stored(`${T0}:1`));
    expect(writes.get('k')).toEqual({ value: `${T0}:4`, ttlMs: 59_990, keepTtl: true });
  });

  it('sets it again when one step opened a new window, even if a later step saw that new window in the working copy', () => {
    const { writes } = evaluateOps([op(), op(2)], T0 + 10, false, stored(`${T0 - 60_000}:5`));
    expect(writes.get('k')).toEqual({ value: `${T0}:3`, ttlMs: 59_990, keepTtl: false });
    expect(evaluateOps([op(), op(2)], T0 + 10, false, stored(undefined)).writes.get('k')).toEqual({ value: `${T0}:3`, ttlMs: 59_990, keepTtl: false });
  });

  it('a step that changes nothing does not take part', () => {
    const { writes } = evaluateOps([op(0), op(2)], T0 + 10, false, stored(`${T0}:1`));
    expect(writes.get('k')).toEqual({ value: `${T0}:3`, ttlMs: 59_990, keepTtl: true });
  });
});
