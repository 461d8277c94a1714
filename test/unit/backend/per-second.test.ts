import { describe, expect, it } from 'vitest';
import { BackendError, BackendUnavailableError } from '../../../src/errors.js';
import { MemoryBackend } from '../../../src/backend/memory.js';
import { isPerSecondOp, PerSecondSplitBackend } from '../../../src/backend/per-second.js';
import { FailurePolicyBackend } from '../../../src/backend/resilience/failure-policy.js';
import type { Backend } from '../../../src/limiter/ports.js';
import type { CounterOp, EvaluateOptions } from '../../../src/limiter/types.js';

/**
 * REDIS_PERSECOND's split, on two in-process stores (the memory backend, which has the exact
 * reference semantics and refund handles of the Redis ones; the same split runs on two real
 * redis-servers in test/integration/backend/per-second-conformance.test.ts and through the
 * service in test/e2e/per-second.test.ts). Clock fixed, so every number is exact.
 */

const T0 = 1_700_000_040_000; // minute-aligned
const SECOND = 1_000;
const MINUTE = 60_000;

const op = (key: string, windowMs: number, threshold: number, o: Partial<CounterOp> = {}): CounterOp => ({
  key,
  algorithm: 'fixed_window',
  windowMs,
  threshold,
  burst: threshold,
  hits: 1,
  enforce: true,
  ...o,
});

function setup(): { main: MemoryBackend; perSecond: MemoryBackend; split: PerSecondSplitBackend } {
  const main = new MemoryBackend({ sweepIntervalMs: 0 });
  const perSecond = new MemoryBackend({ sweepIntervalMs: 0 });
  return { main, perSecond, split: new PerSecondSplitBackend(main, perSecond) };
}

const at = (now: number, o: Partial<EvaluateOptions> = {}): EvaluateOptions => ({ now, chargeOnDeny: false, ...o });

/** Remaining of a fixed-window counter, asked of `store` without charging. */
async function left(store: Backend, key: string, windowMs: number, threshold: number, now: number): Promise<number> {
  return (await store.evaluate([op(key, windowMs, threshold, { hits: 0 })], at(now))).outcomes[0]!.remaining;
}

describe('which ops are per-second', () => {
  it('a window of exactly one second, whatever the algorithm; custom windows of seconds are not', () => {
    expect(isPerSecondOp(op('k', SECOND, 1))).toBe(true);
    expect(isPerSecondOp(op('k', SECOND, 1, { algorithm: 'token_bucket' }))).toBe(true);
    expect(isPerSecondOp(op('k', SECOND, 1, { algorithm: 'sliding_window' }))).toBe(true);
    expect(isPerSecondOp(op('k', 30 * SECOND, 1))).toBe(false); // unit: second, unit_multiplier: 30
    expect(isPerSecondOp(op('k', MINUTE, 1))).toBe(false);
  });
});

describe('PerSecondSplitBackend', () => {
  it('sends each op to its store, and a request on one store to that store untouched', async () => {
    const { main, perSecond, split } = setup();
    const onlySecond = await split.evaluate([op('{a}:s', SECOND, 5)], at(T0));
    const direct = await split.evaluate([op('{a}:m', MINUTE, 5), op('{a}:m30', 30 * SECOND, 5)], at(T0));
    expect(onlySecond).toEqual({ denied: false, outcomes: [{ overLimit: false, remaining: 4, resetMs: 1_000 }] });
    expect(direct.outcomes.map((o) => o.remaining)).toEqual([4, 4]);
    expect(perSecond.getRaw('{a}:s')).toBeDefined();
    expect(main.getRaw('{a}:s')).toBeUndefined();
    expect(main.getRaw('{a}:m')).toBeDefined();
    expect(main.getRaw('{a}:m30')).toBeDefined();
    expect(perSecond.size).toBe(1);
  });

  it('a request on both stores charges both and reports every outcome in request order', async () => {
    const { main, perSecond, split } = setup();
    const r = await split.evaluate([op('{a}:m', MINUTE, 10, { hits: 3 }), op('{a}:s', SECOND, 5), op('{b}:m', MINUTE, 7)], at(T0 + 100));
    expect(r).toEqual({
      denied: false,
      outcomes: [
        { overLimit: false, remaining: 7, resetMs: 59_900 },
        { overLimit: false, remaining: 4, resetMs: 900 },
        { overLimit: false, remaining: 6, resetMs: 59_900 },
      ],
    });
    expect(await left(main, '{a}:m', MINUTE, 10, T0 + 200)).toBe(7);
    expect(await left(perSecond, '{a}:s', SECOND, 5, T0 + 200)).toBe(4);
  });

  it("ops on one key stay together, on the store of the key's first op", async () => {
    const { main, perSecond, split } = setup();
    // validateOps allows one key under two window lengths; the split never separates them.
    const r = await split.evaluate([op('{a}:x', MINUTE, 5), op('{a}:x', SECOND, 5), op('{a}:s', SECOND, 5)], at(T0));
    expect(r.outcomes.map((o) => o.remaining)).toEqual([4, 3, 4]);
    expect(main.getRaw('{a}:x')).toBeDefined();
    expect(perSecond.getRaw('{a}:x')).toBeUndefined();
  });

  it('denied by the per-second store: the main store gives back what it charged', async () => {
    const { main, perSecond, split } = setup();
    await split.evaluate([op('{a}:s', SECOND, 1)], at(T0));
    const r = await split.evaluate([op('{a}:m', MINUTE, 10, { hits: 2 }), op('{a}:s', SECOND, 1)], at(T0 + 10));
    expect(r.denied).toBe(true);
    // The main share's outcome says what would be left had the request been admitted.
    expect(r.outcomes.map((o) => [o.overLimit, o.remaining])).toEqual([
      [false, 8],
      [true, 0],
    ]);
    expect(await left(main, '{a}:m', MINUTE, 10, T0 + 20)).toBe(10);
    expect(await left(perSecond, '{a}:s', SECOND, 1, T0 + 20)).toBe(0);
  });

  it('denied by the main store: the per-second store gives back what it charged', async () => {
    const { main, perSecond, split } = setup();
    await split.evaluate([op('{a}:m', MINUTE, 1)], at(T0));
    const r = await split.evaluate([op('{a}:s', SECOND, 3, { algorithm: 'token_bucket', burst: 3 }), op('{a}:m', MINUTE, 1)], at(T0 + 10));
    expect(r.denied).toBe(true);
    expect(
      (await perSecond.evaluate([op('{a}:s', SECOND, 3, { algorithm: 'token_bucket', burst: 3, hits: 0 })], at(T0 + 10))).outcomes[0],
    ).toMatchObject({ remaining: 3 });
    expect(await left(main, '{a}:m', MINUTE, 1, T0 + 20)).toBe(0);
  });

  it('CHARGE_ON_DENY: both stores charge, nothing is refunded (upstream behaviour)', async () => {
    const { main, perSecond, split } = setup();
    await split.evaluate([op('{a}:s', SECOND, 1)], at(T0));
    const r = await split.evaluate([op('{a}:m', MINUTE, 10), op('{a}:s', SECOND, 1)], at(T0 + 10, { chargeOnDeny: true }));
    expect(r.denied).toBe(true);
    expect(await left(main, '{a}:m', MINUTE, 10, T0 + 20)).toBe(9);
    expect(await left(perSecond, '{a}:s', SECOND, 1, T0 + 20)).toBe(0);
  });

  it('a store that fails: the other gives its share back and the failure is the answer', async () => {
    const { main, perSecond, split } = setup();
    await perSecond.close();
    await expect(split.evaluate([op('{a}:m', MINUTE, 10), op('{a}:s', SECOND, 5)], at(T0))).rejects.toThrow(BackendUnavailableError);
    expect(await left(main, '{a}:m', MINUTE, 10, T0 + 1)).toBe(10);
    // A request that does not need the failed store is answered as ever.
    expect((await split.evaluate([op('{a}:m', MINUTE, 10)], at(T0 + 2))).outcomes[0]!.remaining).toBe(9);
  });

  it('of two failures, a bug (non-transient) is the one reported', async () => {
    const { main, perSecond, split } = setup();
    await main.close();
    const bad = op('{a}:s', SECOND, Number.NaN);
    await expect(split.evaluate([op('{a}:m', MINUTE, 10), bad], at(T0))).rejects.toThrow(BackendError);
    expect(perSecond.size).toBe(0);
  });

  it("a store answered by its failure policy: the answer is marked degraded, the other store's is exact", async () => {
    const main = new MemoryBackend({ sweepIntervalMs: 0 });
    const dead = new MemoryBackend({ sweepIntervalMs: 0 });
    await dead.close();
    const perSecond = new FailurePolicyBackend(dead, { policy: 'allow', localFallback: new MemoryBackend(), replicaCount: 1 });
    const split = new PerSecondSplitBackend(main, perSecond);
    await split.evaluate([op('{a}:m', MINUTE, 2)], at(T0));
    const r = await split.evaluate([op('{a}:m', MINUTE, 2), op('{a}:s', SECOND, 5)], at(T0 + 1));
    expect(r).toEqual({
      denied: false,
      degraded: 'backend_error',
      outcomes: [
        { overLimit: false, remaining: 0, resetMs: 59_999 },
        { overLimit: false, remaining: 5, resetMs: 0 },
      ],
    });
    // The main store still enforces exactly.
    const over = await split.evaluate([op('{a}:m', MINUTE, 2), op('{a}:s', SECOND, 5)], at(T0 + 2));
    expect(over).toMatchObject({ denied: true, degraded: 'backend_error' });
  });

  it('offers a refund of both shares when asked (a split under a split), and none otherwise', async () => {
    const { main, perSecond, split } = setup();
    const ops = [op('{a}:m', MINUTE, 10), op('{a}:s', SECOND, 5)];
    expect((await split.evaluate(ops, at(T0))).refund).toBeUndefined();
    const r = await split.evaluate(ops, at(T0 + 1, { refundable: true }));
    expect(r.refund).toBeTypeOf('function');
    await r.refund!();
    expect(await left(main, '{a}:m', MINUTE, 10, T0 + 2)).toBe(9);
    expect(await left(perSecond, '{a}:s', SECOND, 5, T0 + 2)).toBe(4);
  });

  it('is ready when both stores are, and closes both', async () => {
    const { main, perSecond, split } = setup();
    expect(split.isReady()).toBe(true);
    await perSecond.close();
    expect(split.isReady()).toBe(false);
    await split.close();
    expect(main.isReady()).toBe(false);
  });
});
