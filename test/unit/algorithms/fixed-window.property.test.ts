import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { nextTime, op, PureStore, requests, T0, windowMs } from './model.js';

/**
 * Fixed window against an exact model: a count per aligned window; a request is admitted when
 * the count plus its hits stays within the threshold.
 */
describe('fixed window (reference math) vs an exact per-window count', () => {
  it('admits exactly what the model admits, with the same remaining and reset', () => {
    fc.assert(
      fc.property(
        windowMs,
        fc.integer({ min: 0, max: 20 }),
        fc.integer({ min: 0, max: 10_000_000 }),
        requests(60, 25),
        (w, threshold, start, reqs) => {
          const store = new PureStore();
          const counts = new Map<number, number>();
          let now = T0 + start;
          for (const r of reqs) {
            now = nextTime(now, w, r.advance);
            const window = Math.floor(now / w);
            const count = counts.get(window) ?? 0;
            const admit = count + r.hits <= threshold;
            const res = store.evaluate([op('fixed_window', w, threshold, r.hits)], now);
            expect(res.denied).toBe(!admit);
            expect(res.outcomes[0]).toEqual({
              overLimit: !admit,
              remaining: admit ? threshold - count - r.hits : 0,
              resetMs: (window + 1) * w - now,
            });
            if (admit) counts.set(window, count + r.hits);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('never admits more than the threshold in any aligned window', () => {
    fc.assert(
      fc.property(windowMs, fc.integer({ min: 0, max: 20 }), requests(80, 25), (w, threshold, reqs) => {
        const store = new PureStore();
        const admitted = new Map<number, number>();
        let now = T0;
        for (const r of reqs) {
          now = nextTime(now, w, r.advance);
          if (!store.evaluate([op('fixed_window', w, threshold, r.hits)], now).denied) {
            const window = Math.floor(now / w);
            admitted.set(window, (admitted.get(window) ?? 0) + r.hits);
          }
        }
        for (const n of admitted.values()) expect(n).toBeLessThanOrEqual(threshold);
      }),
      { numRuns: 300 },
    );
  });
});
