import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { nextTime, op, PureStore, requests, T0, windowMs } from './model.js';

/**
 * Token bucket against an exact model in rational arithmetic (BigInt numerators over windowMs):
 * tokens(t) = min(burst, tokens(t') + (t - t') x threshold / windowMs); a request is admitted
 * when tokens >= hits; a fresh bucket is full; the clock never runs backwards here.
 */
describe('token bucket (reference math) vs an exact rational model', () => {
  it('admits exactly what the model admits, with the same remaining and reset', () => {
    fc.assert(
      fc.property(
        windowMs,
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 0, max: 25 }),
        fc.integer({ min: 0, max: 10_000_000 }),
        requests(60, 25),
        (w, threshold, burst, start, reqs) => {
          const store = new PureStore();
          const W = BigInt(w);
          const cap = BigInt(burst) * W;
          let level: bigint | undefined; // tokens x w, exact
          let last = 0;
          let now = T0 + start;
          for (const r of reqs) {
            now = nextTime(now, w, r.advance);
            let l = level === undefined ? cap : level + BigInt(now - last) * BigInt(threshold);
            if (l > cap) l = cap;
            const cost = BigInt(r.hits) * W;
            const admit = cost <= l;
            const after = admit && r.hits > 0 ? l - cost : l;
            const res = store.evaluate([op('token_bucket', w, threshold, r.hits, burst)], now);
            const T = BigInt(threshold);
            expect(res.outcomes[0]).toEqual({
              overLimit: !admit,
              remaining: admit ? Number(after / W) : 0,
              resetMs: Number((cap - after + T - 1n) / T),
            });
            if (admit && r.hits > 0) {
              level = after;
              last = now;
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('over any span of d ms, never admits more than burst + floor(d x threshold / windowMs)', () => {
    fc.assert(
      fc.property(
        windowMs,
        fc.integer({ min: 0, max: 20 }),
        fc.integer({ min: 0, max: 25 }),
        requests(80, 25),
        (w, threshold, burst, reqs) => {
          const store = new PureStore();
          const log: Array<{ t: number; hits: number }> = [];
          let now = T0;
          for (const r of reqs) {
            now = nextTime(now, w, r.advance);
            if (!store.evaluate([op('token_bucket', w, threshold, r.hits, burst)], now).denied && r.hits > 0)
              log.push({ t: now, hits: r.hits });
          }
          for (let i = 0; i < log.length; i++) {
            let sum = 0;
            for (let j = i; j < log.length; j++) {
              sum += log[j]!.hits;
              const d = log[j]!.t - log[i]!.t;
              expect(sum).toBeLessThanOrEqual(burst + Math.floor((d * threshold) / w));
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
