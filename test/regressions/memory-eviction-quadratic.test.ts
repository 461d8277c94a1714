import { describe, expect, it } from 'vitest';
import { MemoryBackend } from '../../src/backend/memory.js';
import type { CounterOp } from '../../src/limiter/types.js';

/**
 * What broke: past `MEMORY_MAX_KEYS` every new counter evicted the least recently used one with
 * `Map.keys().next()`. V8 leaves a deleted Map entry as a hole until the table is next rehashed,
 * and that iterator walks over every hole at the front, so each eviction walked past the holes
 * of the evictions before it: 100,000 new keys took 0.1-0.2 s below a 100,000 cap and 4.6-8.2 s
 * each at 2x the cap and beyond (this test, on a 2-core VM). Now the LRU order is a linked list through the entries:
 * an eviction unlinks the head, O(1) whatever was deleted before.
 */
const CAP = 100_000;
const BATCH = 100_000;
const ROUNDS = 7;
const NOW = 1_700_000_000_000;

function op(key: string): CounterOp {
  return { key, algorithm: 'fixed_window', windowMs: 60_000, threshold: 10, burst: 10, hits: 1, enforce: true };
}

/** Milliseconds to evaluate one op on each of `keys`, one call per key, as the limiter calls it. */
function timeNewKeys(backend: MemoryBackend, keys: readonly string[]): number {
  const t0 = performance.now();
  for (const k of keys) backend.evaluateSync([op(k)], { chargeOnDeny: false });
  return performance.now() - t0;
}

let next = 0;
const freshKeys = (): string[] => Array.from({ length: BATCH }, () => `{k${next++}}:fw:minute:1`);
const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

describe('memory backend eviction past MEMORY_MAX_KEYS', () => {
  it('costs the same per new key at 2x the cap and beyond as below it', { timeout: 180_000 }, () => {
    const full = new MemoryBackend({ maxKeys: CAP, sweepIntervalMs: 0, clock: () => NOW });
    // Up to 2x the cap: CAP keys held, CAP already evicted.
    timeNewKeys(full, freshKeys());
    timeNewKeys(full, freshKeys());
    expect(full.size).toBe(CAP);
    const below: number[] = [];
    const beyond: number[] = [];
    // Interleaved, so a burst of load from elsewhere on the machine hits both alike; medians.
    for (let r = 0; r < ROUNDS; r++) {
      const empty = new MemoryBackend({ maxKeys: CAP, sweepIntervalMs: 0, clock: () => NOW });
      below.push(timeNewKeys(empty, freshKeys()));
      expect(empty.size).toBe(CAP);
      beyond.push(timeNewKeys(full, freshKeys()));
      expect(full.size).toBe(CAP);
    }
    const summary = `ms per ${BATCH} new keys: below the cap ${below.map((x) => x.toFixed(0)).join(', ')}; at ${2}x-${2 + ROUNDS}x the cap ${beyond.map((x) => x.toFixed(0)).join(', ')}`;
    expect(median(beyond), summary).toBeLessThanOrEqual(2 * median(below));
  });

  it('keeps exact LRU order through many evictions', () => {
    const b = new MemoryBackend({ maxKeys: 1_000, sweepIntervalMs: 0, clock: () => NOW });
    for (let i = 0; i < 1_000; i++) b.evaluateSync([op(`a${i}`)], { chargeOnDeny: false });
    // Touch the even keys (hits 0: a read), then add 500 new keys: exactly the odd ones go.
    for (let i = 0; i < 1_000; i += 2) b.evaluateSync([{ ...op(`a${i}`), hits: 0 }], { chargeOnDeny: false });
    for (let i = 0; i < 500; i++) b.evaluateSync([op(`b${i}`)], { chargeOnDeny: false });
    expect(b.size).toBe(1_000);
    for (let i = 0; i < 1_000; i++) expect(b.getRaw(`a${i}`) !== undefined, `a${i}`).toBe(i % 2 === 0);
    for (let i = 0; i < 500; i++) expect(b.getRaw(`b${i}`)).toBeDefined();
  });
});
