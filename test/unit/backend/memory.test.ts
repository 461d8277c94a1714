import { afterEach, describe, expect, it, vi } from 'vitest';
import type { CounterOp } from '../../../src/limiter/types.js';
import { MemoryBackend } from '../../../src/backend/memory.js';
import { BackendError, BackendUnavailableError } from '../../../src/errors.js';
import { stateText } from '../../../src/limiter/algorithms/state-bytes.js';
import type { Algorithm } from '../../../src/limiter/types.js';

/** What only the memory backend does: expiry on its own clock, LRU eviction, lifecycle. */

const T0 = 1_700_000_040_000;
const op = (key: string, algorithm: Algorithm = 'fixed_window', threshold = 10, hits = 1): CounterOp => ({
  key,
  algorithm,
  windowMs: 60_000,
  threshold,
  burst: threshold,
  hits,
  enforce: true,
});

function clocked(start = T0, extra: { maxKeys?: number; sweepIntervalMs?: number } = {}) {
  let wall = start;
  const backend = new MemoryBackend({ clock: () => wall, sweepIntervalMs: 0, ...extra });
  return {
    backend,
    set: (t: number) => {
      wall = t;
    },
  };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('MemoryBackend expiry (Redis PX semantics on the injected clock)', () => {
  it('a fixed-window counter lives until its window end, inclusive, and is gone 1 ms later', async () => {
    const { backend, set } = clocked(T0 + 59_000);
    await backend.evaluate([op('k')], { chargeOnDeny: false });
    expect(stateText(backend.getRaw('k'))).toBe(`F ${T0}:1`);
    expect(backend.pttl('k')).toBe(1_000);
    set(T0 + 60_000); // ttl was 1000 ms: alive while now <= expiresAt
    expect(stateText(backend.getRaw('k'))).toBe(`F ${T0}:1`);
    expect(backend.pttl('k')).toBe(0);
    set(T0 + 60_001);
    expect(backend.getRaw('k')).toBeUndefined();
    expect(backend.pttl('k')).toBe(-2);
    expect(backend.pttl('never')).toBe(-2);
    expect(backend.size).toBe(1); // not swept yet
    // A read removes it lazily.
    const r = await backend.evaluate([op('k', 'fixed_window', 10, 0)], { now: T0 + 30_000, chargeOnDeny: false });
    expect(r.outcomes[0]!.remaining).toBe(10);
    expect(backend.size).toBe(0);
  });

  it('sliding-window state outlives its window by one window length (it is still `prev` then)', async () => {
    const { backend, set } = clocked(T0 + 10_000);
    await backend.evaluate([op('s', 'sliding_window')], { chargeOnDeny: false });
    set(T0 + 120_000);
    expect(stateText(backend.getRaw('s'))).toBe(`S ${T0}:1:0`);
    set(T0 + 120_001);
    expect(backend.getRaw('s')).toBeUndefined();
  });

  it('a token bucket arms its expiry at twice the full-refill time, so it is gone only after it is full again', async () => {
    const { backend, set } = clocked(T0);
    await backend.evaluate([op('t', 'token_bucket', 60, 3)], { chargeOnDeny: false }); // 60 tokens at 1/s: full in 60 s, armed for 120 s
    set(T0 + 120_000);
    expect(stateText(backend.getRaw('t'))).toBe(`T 3420000:${T0}:${T0 + 120_000}`);
    set(T0 + 120_001);
    expect(backend.getRaw('t')).toBeUndefined();
  });

  it("a later write in the same window keeps the expiry the window's first write set (Redis SET ... KEEPTTL)", async () => {
    const { backend, set } = clocked(T0 + 10_000);
    await backend.evaluate([op('k')], { chargeOnDeny: false }); // opens the window: ttl 50000
    set(T0 + 40_000);
    await backend.evaluate([op('k')], { now: T0 + 59_000, chargeOnDeny: false }); // same window: ttl kept (not 1000 from here)
    set(T0 + 60_000);
    expect(stateText(backend.getRaw('k'))).toBe(`F ${T0}:2`);
    set(T0 + 60_001);
    expect(backend.getRaw('k')).toBeUndefined();
    // A write in a new window sets it again.
    await backend.evaluate([op('k')], { now: T0 + 61_000, chargeOnDeny: false });
    set(T0 + 60_001 + 59_000);
    expect(stateText(backend.getRaw('k'))).toBe(`F ${T0 + 60_000}:1`);
    set(T0 + 60_001 + 59_001);
    expect(backend.getRaw('k')).toBeUndefined();
  });

  it('a token bucket write keeps the armed expiry while the bucket is full again before it, and re-arms once not (Redis SET ... KEEPTTL / PX)', async () => {
    const { backend, set } = clocked(T0);
    await backend.evaluate([op('t', 'token_bucket', 60, 3)], { chargeOnDeny: false }); // armed until T0 + 120 s
    set(T0 + 1_000);
    await backend.evaluate([op('t', 'token_bucket', 60, 3)], { now: T0 + 100_000, chargeOnDeny: false }); // full again at T0 + 103 s: kept
    set(T0 + 120_000);
    expect(stateText(backend.getRaw('t'))).toBe(`T 3420000:${T0 + 100_000}:${T0 + 120_000}`);
    set(T0 + 120_001);
    expect(backend.getRaw('t')).toBeUndefined();
    // A take whose bucket is full again only after the armed deadline arms it again, from its now.
    await backend.evaluate([op('t', 'token_bucket', 60, 3)], { now: T0 + 100_000, chargeOnDeny: false }); // fresh: armed until T0 + 220 s
    set(T0 + 130_001);
    await backend.evaluate([op('t', 'token_bucket', 60, 60)], { now: T0 + 170_000, chargeOnDeny: false }); // empty: full at T0 + 230 s
    set(T0 + 130_001 + 120_000);
    expect(stateText(backend.getRaw('t'))).toBe(`T 0:${T0 + 170_000}:${T0 + 290_000}`);
    set(T0 + 130_001 + 120_001);
    expect(backend.getRaw('t')).toBeUndefined();
  });

  it('expiry follows the wall clock, not the `now` override (as Redis TTLs do)', async () => {
    const { backend, set } = clocked(T0);
    await backend.evaluate([op('k')], { now: 5, chargeOnDeny: false }); // window [0, 60000): ttl 59995 from wall T0
    set(T0 + 59_995);
    expect(stateText(backend.getRaw('k'))).toBe('F 0:1');
    set(T0 + 59_996);
    expect(backend.getRaw('k')).toBeUndefined();
  });

  it('sweep() drops exactly the expired counters', async () => {
    const { backend, set } = clocked(T0);
    await backend.evaluate([op('a')], { chargeOnDeny: false }); // ttl 60000
    set(T0 + 30_000);
    await backend.evaluate([op('b', 'sliding_window')], { chargeOnDeny: false }); // ttl 90000
    set(T0 + 60_001);
    expect(backend.sweep()).toBe(1);
    expect(backend.size).toBe(1);
    expect(stateText(backend.getRaw('b'))).toBe(`S ${T0}:1:0`);
  });

  it('sweeps periodically on a timer that does not keep the process alive, until close()', async () => {
    vi.useFakeTimers();
    let wall = T0;
    const backend = new MemoryBackend({ clock: () => wall, sweepIntervalMs: 1_000 });
    await backend.evaluate([op('a')], { chargeOnDeny: false });
    wall = T0 + 60_001;
    expect(backend.size).toBe(1);
    vi.advanceTimersByTime(1_000);
    expect(backend.size).toBe(0);
    expect(vi.getTimerCount()).toBe(1);
    await backend.close();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('the sweep timer is unref()d', async () => {
    const backend = new MemoryBackend({ sweepIntervalMs: 1_000 });
    const timer = (backend as unknown as { sweepTimer: NodeJS.Timeout }).sweepTimer;
    expect(timer.hasRef()).toBe(false);
    await backend.close();
  });
});

describe('MemoryBackend size cap', () => {
  it('evicts the least recently used counter when full', async () => {
    const { backend } = clocked(T0, { maxKeys: 3 });
    for (const k of ['a', 'b', 'c']) await backend.evaluate([op(k)], { chargeOnDeny: false });
    // Reading `a` (a check with hits 0) makes it the most recently used.
    await backend.evaluate([op('a', 'fixed_window', 10, 0)], { chargeOnDeny: false });
    await backend.evaluate([op('d')], { chargeOnDeny: false });
    expect(backend.size).toBe(3);
    expect(backend.getRaw('b')).toBeUndefined();
    expect(['a', 'c', 'd'].map((k) => stateText(backend.getRaw(k)))).toEqual([`F ${T0}:1`, `F ${T0}:1`, `F ${T0}:1`]);
  });

  it('keeps the LRU order when the same key is used again and again, and after a sweep', async () => {
    const { backend, set } = clocked(T0, { maxKeys: 3 });
    for (const k of ['a', 'b', 'c']) await backend.evaluate([op(k)], { chargeOnDeny: false });
    // `c` is already the most recently used: using it again keeps the order a, b, c.
    for (let i = 0; i < 3; i++) await backend.evaluate([op('c')], { chargeOnDeny: false });
    await backend.evaluate([op('a')], { chargeOnDeny: false }); // order: b, c, a
    await backend.evaluate([op('d')], { chargeOnDeny: false }); // evicts b
    expect(backend.getRaw('b')).toBeUndefined();
    expect(['a', 'c', 'd'].map((k) => stateText(backend.getRaw(k)))).toEqual([`F ${T0}:2`, `F ${T0}:4`, `F ${T0}:1`]);
    // Every key expires and is swept; the keys come back in the order c, a, d (then d again),
    // so `c`, the least recently used, is the one evicted next.
    set(T0 + 60_001);
    expect(backend.sweep()).toBe(3);
    const t1 = T0 + 60_001;
    for (const k of ['c', 'a', 'd']) await backend.evaluate([op(k)], { now: t1, chargeOnDeny: false });
    await backend.evaluate([op('d')], { now: t1, chargeOnDeny: false });
    await backend.evaluate([op('e')], { now: t1, chargeOnDeny: false }); // evicts c
    expect(backend.getRaw('c')).toBeUndefined();
    const window = T0 + 60_000; // the fixed window (one minute) that t1 falls in
    expect(['a', 'd', 'e'].map((k) => stateText(backend.getRaw(k)))).toEqual([`F ${window}:1`, `F ${window}:2`, `F ${window}:1`]);
  });

  it('an evicted counter starts fresh (the documented accuracy trade-off)', async () => {
    const { backend } = clocked(T0, { maxKeys: 1 });
    await backend.evaluate([op('a', 'fixed_window', 1)], { chargeOnDeny: false });
    expect((await backend.evaluate([op('a', 'fixed_window', 1)], { chargeOnDeny: false })).denied).toBe(true);
    await backend.evaluate([op('b', 'fixed_window', 1)], { chargeOnDeny: false });
    expect((await backend.evaluate([op('a', 'fixed_window', 1)], { chargeOnDeny: false })).denied).toBe(false);
  });

  it('rejects a nonsensical cap', () => {
    expect(() => new MemoryBackend({ maxKeys: 0 })).toThrow(RangeError);
  });
});

describe('MemoryBackend contract details', () => {
  it('truncates a fractional `now` override to whole ms, like the Redis backend', async () => {
    const { backend } = clocked();
    const r = await backend.evaluate([op('k')], { now: T0 + 999.9, chargeOnDeny: false });
    expect(r.outcomes[0]!.resetMs).toBe(59_001);
    expect(stateText(backend.getRaw('k'))).toBe(`F ${T0}:1`);
  });

  it('rejects invalid ops with a BackendError and writes nothing', async () => {
    const { backend } = clocked();
    await expect(backend.evaluate([op('a'), { ...op('b'), hits: -1 }], { chargeOnDeny: false })).rejects.toThrow(BackendError);
    await expect(backend.evaluate([{ ...op('a'), windowMs: 1.5 }], { chargeOnDeny: false })).rejects.toThrow(/windowMs/);
    await expect(backend.evaluate([op('a'), op('a', 'sliding_window')], { chargeOnDeny: false })).rejects.toThrow(/used with both/);
    expect(backend.size).toBe(0);
  });

  it('after close(): not ready, evaluate fails as unavailable, counters are gone', async () => {
    const { backend } = clocked();
    await backend.evaluate([op('a')], { chargeOnDeny: false });
    expect(backend.isReady()).toBe(true);
    await backend.close();
    expect(backend.isReady()).toBe(false);
    expect(backend.size).toBe(0);
    await expect(backend.evaluate([op('a')], { chargeOnDeny: false })).rejects.toThrow(BackendUnavailableError);
  });
});
