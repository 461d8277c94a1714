import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { nextTime, op, PureStore, requests, T0, windowMs } from './model.js';

/**
 * Sliding window against an exact model built from the log of admitted requests (not from the
 * algorithm's two counters): cur = hits admitted in the current aligned window, prev = hits
 * admitted in the one before, estimate = prev x (w - elapsed) / w + cur.
 */
describe('sliding window (reference math) vs a log of admitted requests', () => {
  it('admits exactly what the log-based estimate admits', () => {
    fc.assert(
      fc.property(
        windowMs,
        fc.integer({ min: 0, max: 20 }),
        fc.integer({ min: 0, max: 10_000_000 }),
        requests(60, 25),
        (w, threshold, start, reqs) => {
          const store = new PureStore();
          const log: Array<{ t: number; hits: number }> = [];
          let now = T0 + start;
          for (const r of reqs) {
            now = nextTime(now, w, r.advance);
            const ws = Math.floor(now / w) * w;
            const sum = (from: number, to: number) => log.filter((e) => e.t >= from && e.t < to).reduce((a, e) => a + e.hits, 0);
            const cur = sum(ws, ws + w);
            const prev = sum(ws - w, ws);
            const estimate = (prev * (w - (now - ws))) / w + cur;
            const admit = estimate + r.hits <= threshold;
            const res = store.evaluate([op('sliding_window', w, threshold, r.hits)], now);
            expect(res.outcomes[0]).toEqual({
              overLimit: !admit,
              remaining: admit ? Math.floor(threshold - estimate - r.hits) : 0,
              resetMs: ws + w - now,
            });
            if (admit && r.hits > 0) log.push({ t: now, hits: r.hits });
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('never more than threshold per aligned window, never more than 2 x threshold in any window-length span', () => {
    fc.assert(
      fc.property(windowMs, fc.integer({ min: 0, max: 20 }), requests(80, 25), (w, threshold, reqs) => {
        const store = new PureStore();
        const log: Array<{ t: number; hits: number }> = [];
        let now = T0;
        for (const r of reqs) {
          now = nextTime(now, w, r.advance);
          if (!store.evaluate([op('sliding_window', w, threshold, r.hits)], now).denied && r.hits > 0) log.push({ t: now, hits: r.hits });
        }
        const inSpan = (from: number, to: number) => log.filter((e) => e.t >= from && e.t < to).reduce((a, e) => a + e.hits, 0);
        for (const e of log) {
          const ws = Math.floor(e.t / w) * w;
          expect(inSpan(ws, ws + w)).toBeLessThanOrEqual(threshold);
          expect(inSpan(e.t, e.t + w)).toBeLessThanOrEqual(2 * threshold);
          expect(inSpan(e.t - w + 1, e.t + 1)).toBeLessThanOrEqual(2 * threshold);
        }
      }),
      { numRuns: 300 },
    );
  });
});
