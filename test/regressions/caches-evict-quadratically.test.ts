import { describe, expect, it } from 'vitest';
import { OverLimitCache } from '../../src/limiter/over-limit-cache.js';
import { TokenCache } from '../../src/resolve/token-cache.js';

/**
 * What broke: the over-limit cache (LOCAL_CACHE_SIZE) and the verified-token cache evicted like
 * the memory backend once did, with `Map.keys().next()` over a Map whose deletions leave holes
 * that the iterator walks past: at a capacity of 100,000, 2.6-13.5 s per 100,000 inserts past the
 * cap against 44-58 ms before reaching it. An attacker reaches the first through any wildcard
 * rule with `requests_per_unit: 0` (every distinct value a new denied key). Both now sit on
 * util/lru.ts (a linked list beside the Map): O(1) per eviction. An insert below the cap costs
 * well under a microsecond, so the eviction's own constant work (a Map delete, two unlinks) is a
 * visible share of it: the bound is 5x, against the 50-200x of the old code.
 */
const CAP = 100_000;
const BATCH = 100_000;
const ROUNDS = 5;
const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
let next = 0;

function time(fill: (key: string) => void): number {
  const t0 = performance.now();
  for (let i = 0; i < BATCH; i++) fill(`k${next++}`);
  return performance.now() - t0;
}

/** Median ms per BATCH inserts into an empty cache and into one already 2x past its cap, interleaved. */
function compare(make: () => (key: string) => void): { below: number; beyond: number; summary: string } {
  const full = make();
  time(full);
  time(full);
  const below: number[] = [];
  const beyond: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    below.push(time(make()));
    beyond.push(time(full));
  }
  const summary = `ms per ${BATCH}: below ${below.map((x) => x.toFixed(0)).join(', ')}; beyond ${beyond.map((x) => x.toFixed(0)).join(', ')}`;
  return { below: median(below), beyond: median(beyond), summary };
}

describe('bounded caches past their capacity', () => {
  it('the over-limit cache evicts at the same cost per key beyond its cap as below it', { timeout: 120_000 }, () => {
    const r = compare(() => {
      const c = new OverLimitCache(CAP);
      return (key) => c.add(key, 0, 60_000);
    });
    expect(r.beyond, r.summary).toBeLessThanOrEqual(5 * r.below);
  });

  it('the verified-token cache too', { timeout: 120_000 }, () => {
    const r = compare(() => {
      const c = new TokenCache(CAP);
      return (key) => c.set(key, 'acme', 60_000, 0);
    });
    expect(r.beyond, r.summary).toBeLessThanOrEqual(5 * r.below);
  });
});
