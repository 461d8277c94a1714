import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MemoryBackend } from '../../../src/backend/memory.js';
import { FLOOR_FRACTION, MAX_FILL_INTERVAL_SEC, capacity, shareOf, tokenBucketFor, waterLevel } from '../../../src/quota/allocate.js';
import { MemoryQuotaStore, TTL_INTERVALS, overshootBound } from '../../../src/quota/index.js';
import { simulate, type SimEnvoy } from './simulate.js';

/**
 * The allocation rule (src/quota/allocate.ts) against a reference model: max-min fairness as
 * "the level lambda with sum(min(d, lambda)) = capacity", found by bisection, and the overshoot
 * bound against a simulation of Envoys enforcing their token buckets over several windows.
 */

/** Reference water level: bisection on sum(min(d, lambda)) = cap; Infinity when every demand fits. */
function referenceLevel(cap: number, demands: readonly number[]): number {
  if (demands.reduce((a, d) => a + d, 0) <= cap) return Infinity;
  let lo = 0;
  let hi = Math.max(...demands);
  for (let i = 0; i < 200; i++) {
    const mid = (lo + hi) / 2;
    if (demands.reduce((a, d) => a + Math.min(d, mid), 0) > cap) hi = mid;
    else lo = mid;
  }
  return lo;
}

const demand = fc.oneof(fc.constant(0), fc.double({ min: 0, max: 1_000, noNaN: true }), fc.integer({ min: 0, max: 50 }));
const demands = fc.array(demand, { minLength: 1, maxLength: 12 });
const cap = fc.oneof(fc.double({ min: 1e-6, max: 5_000, noNaN: true }), fc.integer({ min: 1, max: 100 }));
const close = (a: number, b: number): boolean => Math.abs(a - b) <= 1e-7 * Math.max(1, Math.abs(a), Math.abs(b));

/** Every Envoy's share computed from one state (nobody holds anything yet): the division itself. */
function division(c: number, ds: readonly number[]): number[] {
  return ds.map((d) => shareOf(c, d, ds, []).rate);
}

describe('RLQS allocation rule', () => {
  it('water filling matches the reference max-min fair level', () => {
    fc.assert(
      fc.property(cap, demands, (c, ds) => {
        const got = waterLevel(
          c,
          [...ds].sort((a, b) => a - b),
        );
        const want = referenceLevel(c, ds);
        if (want === Infinity) expect(got).toBe(Infinity);
        else for (const d of ds) expect(close(Math.min(d, got), Math.min(d, want))).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('the assigned rates sum to at most the capacity, and the capacity never exceeds the limit', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 100_000 }),
        fc.integer({ min: 1, max: 3600 }),
        fc.integer({ min: -10, max: 100_000 }),
        fc.integer({ min: 1, max: 3_600_000 }),
        demands,
        (limit, windowSec, remaining, timeLeftMs, ds) => {
          const c = capacity(limit / windowSec, remaining, Math.min(timeLeftMs, windowSec * 1000));
          expect(c).toBeLessThanOrEqual(limit / windowSec);
          const shares = division(c, ds);
          const sum = shares.reduce((a, s) => a + s, 0);
          expect(sum).toBeLessThanOrEqual(c * (1 + 1e-12));
          const bucketSum = shares.reduce((a, s) => a + tokenBucketFor(s).tokensPerFill / tokenBucketFor(s).fillIntervalSec, 0);
          expect(bucketSum).toBeLessThanOrEqual(sum * (1 + 1e-12));
          if (remaining <= 0) expect(shares.every((s) => s === 0)).toBe(true);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('every Envoy with demand gets a positive share, also when others already hold the whole capacity', () => {
    fc.assert(
      fc.property(cap, demands, fc.array(fc.double({ min: 0, max: 10_000, noNaN: true }), { maxLength: 12 }), (c, ds, held) => {
        const others = held.slice(0, ds.length - 1);
        for (const d of ds) {
          const s = shareOf(c, d, ds, others);
          expect(s.rate).toBeGreaterThan(0);
          expect(s.rate).toBeGreaterThanOrEqual(s.floor);
          if (s.rate >= 1 / MAX_FILL_INTERVAL_SEC) expect(tokenBucketFor(s.rate).tokensPerFill).toBeGreaterThanOrEqual(1);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('idle shares flow to busy ones: work-conserving, and an Envoy below its fair share gets at most its demand + floor', () => {
    fc.assert(
      fc.property(cap, demands, (c, ds) => {
        const shares = division(c, ds);
        const n = ds.length;
        const floor = (FLOOR_FRACTION * c) / n;
        const raised = ds.map((d) => Math.max(d, floor));
        const level = referenceLevel(c, raised);
        ds.forEach((d, i) => {
          if (Math.max(d, floor) <= level) expect(shares[i]!).toBeLessThanOrEqual(d + floor + 1e-9 * Math.max(1, c));
        });
        // Whatever the idle leave is handed to the busy: the total is min(capacity, demands raised to the floor).
        const want = Math.min(
          c,
          raised.reduce((a, d) => a + d, 0),
        );
        expect(
          close(
            shares.reduce((a, s) => a + s, 0),
            want,
          ),
        ).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('held shares converge: reports in any order keep their sum within limit x (1 + FLOOR_FRACTION x N)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 10_000 }),
        fc.array(fc.record({ who: fc.nat(), d: demand }), { minLength: 1, maxLength: 80 }),
        fc.integer({ min: 1, max: 8 }),
        (r, reports, n) => {
          const held = new Array<number>(n).fill(0);
          const ds = new Array<number>(n).fill(0);
          for (const { who, d } of reports) {
            const i = who % n;
            ds[i] = d;
            const share = shareOf(
              r,
              d,
              ds,
              held.filter((_, j) => j !== i),
            );
            const b = tokenBucketFor(share.rate);
            held[i] = b.tokensPerFill / b.fillIntervalSec;
            expect(held.reduce((a, h) => a + h, 0)).toBeLessThanOrEqual(r * (1 + FLOOR_FRACTION * n) * (1 + 1e-12));
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});

const WINDOW_S = [10, 30, 60] as const;

describe('RLQS overshoot bound (simulated Envoys enforcing their token buckets)', () => {
  it('admitted per window (RLQS Envoys + RLS) stays within limit + overshootBound for random demand sequences', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          n: fc.integer({ min: 1, max: 6 }),
          interval: fc.integer({ min: 1, max: 8 }),
          windowSec: fc.constantFrom(...WINDOW_S),
          limit: fc.integer({ min: 1, max: 3_000 }),
          startSec: fc.integer({ min: 0, max: 59 }),
          rlsPerSec: fc.integer({ min: 0, max: 20 }),
          // Per Envoy: demand phases (requests/s), each lasting `len` seconds, repeated.
          phases: fc.array(
            fc.array(fc.record({ rate: fc.integer({ min: 0, max: 400 }), len: fc.integer({ min: 1, max: 40 }) }), {
              minLength: 1,
              maxLength: 4,
            }),
            {
              minLength: 6,
              maxLength: 6,
            },
          ),
          offsets: fc.array(fc.nat(), { minLength: 6, maxLength: 6 }),
        }),
        async (p) => {
          const windows = 4;
          const backend = new MemoryBackend();
          const store = new MemoryQuotaStore({ backend });
          const limit = { requestsPerUnit: p.limit, windowMs: p.windowSec * 1000 };
          const envoys: SimEnvoy[] = Array.from({ length: p.n }, (_, i) => ({
            id: `envoy-${i}`,
            offsetSec: p.offsets[i]! % p.interval,
            demandAt: phaseDemand(p.phases[i]!),
          }));
          const t0Ms = 1_700_000_000_000 - (1_700_000_000_000 % 3_600_000) + p.startSec * 1000;
          const admitted = await simulate({
            store,
            ruleKey: 'test:{rule}:fw:second:1',
            limit,
            envoys,
            intervalSec: p.interval,
            t0Ms,
            seconds: windows * p.windowSec + p.startSec,
            rls: async (_t, nowMs) => {
              let ok = 0;
              for (let i = 0; i < p.rlsPerSec; i++) {
                const op = {
                  key: 'test:{rule}:fw:second:1',
                  algorithm: 'fixed_window' as const,
                  windowMs: limit.windowMs,
                  threshold: p.limit,
                  burst: p.limit,
                  hits: 1,
                  enforce: true,
                };
                if (!(await backend.evaluate([op], { chargeOnDeny: false, now: nowMs })).denied) ok++;
              }
              return ok;
            },
          });
          const bound = overshootBound({
            requestsPerUnit: p.limit,
            windowSec: p.windowSec,
            envoys: p.n,
            reportingIntervalSec: p.interval,
            ttlSec: TTL_INTERVALS * p.interval,
          });
          for (const [, total] of admitted) expect(total).toBeLessThanOrEqual(p.limit + bound);
          await store.close();
          await backend.close();
        },
      ),
      { numRuns: 500 },
    );
  }, 120_000);
});

function phaseDemand(phases: readonly { rate: number; len: number }[]): (t: number) => number {
  const period = phases.reduce((a, p) => a + p.len, 0);
  return (t) => {
    let at = t % period;
    for (const p of phases) {
      if (at < p.len) return p.rate;
      at -= p.len;
    }
    return 0;
  };
}
