import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { CounterOp } from '../../../src/limiter/types.js';
import type { Algorithm } from '../../../src/limiter/types.js';
import { nextTime, PureStore, requests, T0, windowMs } from './model.js';

/**
 * A denied request changes no state: every stored string is identical afterwards, whatever the
 * mix of algorithms, shadow ops and same-key ops in it (unless chargeOnDeny is set).
 */
describe('a denied request (chargeOnDeny off) leaves every state string as it was', () => {
  it('holds for random multi-op requests', () => {
    const algorithm = fc.constantFrom<Algorithm>('fixed_window', 'sliding_window', 'token_bucket');
    const opArb = fc.record({
      key: fc.nat({ max: 2 }),
      threshold: fc.integer({ min: 0, max: 6 }),
      burst: fc.integer({ min: 0, max: 6 }),
      hits: fc.integer({ min: 0, max: 4 }),
      enforce: fc.boolean(),
    });
    let denials = 0;
    fc.assert(
      fc.property(
        fc.tuple(algorithm, algorithm, algorithm),
        windowMs,
        requests(40, 1),
        fc.array(fc.array(opArb, { minLength: 1, maxLength: 4 }), { minLength: 40, maxLength: 40 }),
        (algorithms, w, times, opLists) => {
          const store = new PureStore();
          let now = T0;
          for (const [i, t] of times.entries()) {
            now = nextTime(now, w, t.advance);
            const ops: CounterOp[] = opLists[i]!.map((o) => ({
              key: `k${o.key}`,
              algorithm: algorithms[o.key]!,
              windowMs: w,
              threshold: o.threshold,
              burst: o.burst,
              hits: o.hits,
              enforce: o.enforce,
            }));
            const before = new Map(store.values);
            const r = store.evaluate(ops, now);
            if (r.denied) {
              denials++;
              expect(store.values).toEqual(before);
            }
          }
        },
      ),
      { numRuns: 200 },
    );
    // The property must have been exercised, not vacuously true.
    expect(denials).toBeGreaterThan(200);
  });
});
