import fc from 'fast-check';
import type { CounterOp, EvaluateResult } from '../../../src/limiter/types.js';
import { evaluateStored } from '../../../src/limiter/algorithms/evaluate.js';
import type { Algorithm } from '../../../src/limiter/types.js';

/**
 * Shared pieces of the algorithm property tests: a pure store driven through evaluateStored (the
 * reference semantics), and monotone time sequences that hit window edges and exact fractions.
 */

export const T0 = 1_700_000_040_000;

/** A store of state strings, as the backends keep them, driven by evaluateStored. */
export class PureStore {
  readonly values = new Map<string, string>();
  evaluate(ops: readonly CounterOp[], now: number, chargeOnDeny = false): EvaluateResult {
    const { result, writes } = evaluateStored(ops, now, chargeOnDeny, (k) => this.values.get(k));
    for (const [k, w] of writes) this.values.set(k, w.value);
    return result;
  }
}

export interface Req {
  /** ms since the previous request (>= 0), or an exact window position. */
  readonly advance: number | { readonly at: number | 'last' };
  readonly hits: number;
}

/** Requests whose times never go backwards, with many hits of 0 and 1. */
export function requests(maxLength: number, maxHits: number): fc.Arbitrary<Req[]> {
  const advance = fc.oneof(
    fc.constant(0),
    fc.integer({ min: 1, max: 50 }),
    fc.integer({ min: 1, max: 5_000 }),
    fc.integer({ min: 1, max: 200_000 }),
    fc.record({ at: fc.constantFrom<number | 'last'>(0, 'last', 0.25, 1 / 3, 0.5, 2 / 3, 0.75) }),
  );
  const hits = fc.oneof(fc.constant(0), fc.constant(1), fc.integer({ min: 0, max: maxHits }));
  return fc.array(fc.record({ advance, hits }), { minLength: 1, maxLength });
}

/** The time of the next request. */
export function nextTime(now: number, windowMs: number, a: Req['advance']): number {
  if (typeof a === 'number') return now + a;
  const start = now - (now % windowMs);
  const offset = a.at === 'last' ? windowMs - 1 : Math.round(windowMs * a.at);
  return start + offset >= now ? start + offset : start + windowMs + offset;
}

export function op(algorithm: Algorithm, windowMs: number, threshold: number, hits: number, burst = threshold): CounterOp {
  return { key: 'k', algorithm, windowMs, threshold, burst, hits, enforce: true };
}

/** Windows as the config produces them: unit seconds x multiplier x 1000. */
export const windowMs = fc.constantFrom(1_000, 5_000, 60_000, 7 * 60_000, 3_600_000, 86_400_000);
