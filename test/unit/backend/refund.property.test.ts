import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { CounterOp } from '../../../src/limiter/types.js';
import { evaluateStored } from '../../../src/limiter/algorithms/evaluate.js';
import { fixedWindow, tokenBucket } from '../../../src/limiter/algorithms/index.js';
import { refundOps } from '../../../src/limiter/algorithms/refund.js';
import { stateText } from '../../../src/limiter/algorithms/state-bytes.js';
import type { Algorithm } from '../../../src/limiter/types.js';

/**
 * The refund reference (src/limiter/algorithms/refund.ts), which the Redis Cluster backend runs
 * (as lua/refund.lua) when one slot group charged and another denied the request:
 *
 * 1. exact: a refund right after the charge (nothing in between) leaves every counter
 *    indistinguishable from never having been charged, at every later time;
 * 2. never over-admits: with other requests in between (some admitted, some denied because of
 *    our temporary charge), the refunded counters are exactly (windows) or at most as generous
 *    (token bucket) as those of a world where our charge never happened and the same other
 *    requests were admitted.
 *
 * "Indistinguishable" is observed the way requests see a counter: a check (hits 0) and a take
 * (hits 1) at several later instants, compared outcome by outcome.
 */

const T0 = 1_700_000_040_000;
const ALGORITHMS: readonly Algorithm[] = ['fixed_window', 'sliding_window', 'token_bucket'];
const WINDOWS = [1_000, 60_000, 3_600_000] as const;

class Store {
  readonly values = new Map<string, string>();
  evaluate(ops: readonly CounterOp[], now: number): { denied: boolean; over: boolean[] } {
    const { result, writes } = evaluateStored(ops, now, false, (k) => this.values.get(k));
    for (const [k, w] of writes) this.values.set(k, w.value);
    return { denied: result.denied, over: result.outcomes.map((o) => o.overLimit) };
  }
  refund(ops: readonly CounterOp[], chargeNow: number): void {
    for (const [k, v] of refundOps(ops, chargeNow, (key) => this.values.get(key))) this.values.set(k, v);
  }
  copy(): Store {
    const s = new Store();
    for (const [k, v] of this.values) s.values.set(k, v);
    return s;
  }
}

interface KeySpec {
  readonly algorithm: Algorithm;
  readonly windowMs: number;
  readonly threshold: number;
  readonly burst: number;
}
interface ReqSpec {
  readonly advance: number;
  readonly ops: readonly { readonly key: number; readonly hits: number }[];
}

const keySpec: fc.Arbitrary<KeySpec> = fc.record({
  algorithm: fc.constantFrom(...ALGORITHMS),
  windowMs: fc.constantFrom(...WINDOWS),
  threshold: fc.integer({ min: 1, max: 8 }),
  burst: fc.integer({ min: 1, max: 10 }),
});

function reqs(keys: number, maxLength: number, maxAdvance: number): fc.Arbitrary<ReqSpec[]> {
  return fc.array(
    fc.record({
      advance: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 30 }), fc.integer({ min: 1, max: maxAdvance })),
      ops: fc.array(fc.record({ key: fc.nat({ max: keys - 1 }), hits: fc.integer({ min: 0, max: 3 }) }), { minLength: 1, maxLength: 3 }),
    }),
    { maxLength },
  );
}

function opsOf(keys: readonly KeySpec[], r: ReqSpec['ops']): CounterOp[] {
  return r.map((o) => {
    const k = keys[o.key]!;
    return {
      key: `k${o.key}`,
      algorithm: k.algorithm,
      windowMs: k.windowMs,
      threshold: k.threshold,
      burst: k.burst,
      hits: o.hits,
      enforce: true,
    };
  });
}

/** What requests would see of every key from `at` on: check and take outcomes at several instants. */
function observe(store: Store, keys: readonly KeySpec[], at: number): unknown[] {
  const seen: unknown[] = [];
  for (const [i, k] of keys.entries()) {
    for (const dt of [0, 1, Math.floor(k.windowMs / 3), k.windowMs - 1, k.windowMs, 2 * k.windowMs + 7]) {
      for (const hits of [0, 1]) {
        const probe = store.copy();
        const { result } = evaluateStored([{ ...opsOf(keys, [{ key: i, hits }])[0]! }], at + dt, false, (key) => probe.values.get(key));
        seen.push([i, dt, hits, result.outcomes[0]]);
      }
    }
  }
  return seen;
}

/** Remaining (hits 0 checks) per key at a few instants from `at` on, for "at most as generous". */
function remaining(store: Store, keys: readonly KeySpec[], at: number): number[] {
  const out: number[] = [];
  for (const [i, k] of keys.entries()) {
    for (const dt of [0, 1, Math.floor(k.windowMs / 3), k.windowMs]) {
      const { result } = evaluateStored(opsOf(keys, [{ key: i, hits: 0 }]), at + dt, false, (key) => store.values.get(key));
      out.push(result.outcomes[0]!.remaining);
    }
  }
  return out;
}

/** Runs a request list from `start`; returns the time after the last one. */
function run(
  store: Store,
  keys: readonly KeySpec[],
  list: readonly ReqSpec[],
  start: number,
  onAdmitted?: (ops: CounterOp[], now: number) => void,
): number {
  let now = start;
  for (const r of list) {
    now += r.advance;
    const ops = opsOf(keys, r.ops);
    if (!store.evaluate(ops, now).denied) onAdmitted?.(ops, now);
  }
  return now;
}

/** The ops a group charged: not over, hits > 0 (what the cluster backend sends to refund.lua). */
function chargedOps(ops: readonly CounterOp[], over: readonly boolean[]): CounterOp[] {
  return ops.filter((o, k) => o.hits > 0 && !over[k]);
}

const scenario = (maxOthers: number) =>
  fc.array(keySpec, { minLength: 1, maxLength: 3 }).chain((keys) =>
    fc.record({
      keys: fc.constant(keys),
      history: reqs(keys.length, 12, 200_000),
      ours: fc.array(fc.record({ key: fc.nat({ max: keys.length - 1 }), hits: fc.integer({ min: 1, max: 3 }) }), {
        minLength: 1,
        maxLength: 3,
      }),
      ourAdvance: fc.integer({ min: 0, max: 100_000 }),
      others: reqs(keys.length, maxOthers, 5_000),
    }),
  );

describe('refund reference math', () => {
  it('a refund right after an admitted charge is exact: the counters behave as if never charged', () => {
    let exercised = 0;
    fc.assert(
      fc.property(scenario(0), ({ keys, history, ours, ourAdvance }) => {
        const store = new Store();
        const t0 = run(store, keys, history, T0) + ourAdvance;
        const before = store.copy();
        const ops = opsOf(keys, ours);
        const r = store.evaluate(ops, t0);
        if (r.denied) return;
        exercised++;
        store.refund(chargedOps(ops, r.over), t0);
        expect(observe(store, keys, t0)).toEqual(observe(before, keys, t0));
      }),
      { numRuns: 400 },
    );
    expect(exercised).toBeGreaterThan(100);
  });

  it('with other requests between charge and refund, the refund never gives back more than an exact world', () => {
    let interleaved = 0;
    fc.assert(
      fc.property(scenario(6), ({ keys, history, ours, ourAdvance, others }) => {
        const withCharge = new Store();
        const t0 = run(withCharge, keys, history, T0) + ourAdvance;
        const exact = withCharge.copy();
        const ops = opsOf(keys, ours);
        const r = withCharge.evaluate(ops, t0);
        if (r.denied) return;
        // Others run against the charged counters; the exact world replays only the ones that
        // were admitted (each is admitted there too: its counters are lower, its buckets fuller).
        const admitted: Array<[CounterOp[], number]> = [];
        const end = run(withCharge, keys, others, t0, (o, now) => admitted.push([o, now]));
        for (const [o, now] of admitted) expect(exact.evaluate(o, now).denied).toBe(false);
        withCharge.refund(chargedOps(ops, r.over), t0);
        if (admitted.length > 0) interleaved++;
        const got = remaining(withCharge, keys, end);
        const want = remaining(exact, keys, end);
        keys.forEach((k, i) => {
          const g = got.slice(4 * i, 4 * i + 4);
          const w = want.slice(4 * i, 4 * i + 4);
          if (k.algorithm === 'token_bucket') g.forEach((v, j) => expect(v).toBeLessThanOrEqual(w[j]!));
          else expect(g).toEqual(w);
        });
      }),
      { numRuns: 400 },
    );
    expect(interleaved).toBeGreaterThan(50);
  });

  it('gives back nothing once the charge has expired with its window, and never creates a key', () => {
    const fw: CounterOp = { key: 'f', algorithm: 'fixed_window', windowMs: 60_000, threshold: 5, burst: 5, hits: 2, enforce: true };
    const sw: CounterOp = { ...fw, key: 's', algorithm: 'sliding_window' };
    const tb: CounterOp = { ...fw, key: 't', algorithm: 'token_bucket', threshold: 6, burst: 10 };
    const read = (values: Record<string, string>) => (k: string) => values[k];
    // Stored values below in the decimal text of earlier versions (read too), for legibility; the
    // refunds write binary states, shown as text by stateText().
    const refund = (ops: CounterOp[], values: Record<string, string>) =>
      new Map([...refundOps(ops, T0, read(values))].map(([k, v]) => [k, stateText(v)]));
    const tb2 = (level: number, last: number, armed: number) => tokenBucket.encode({ level, last, armed });
    // Charged at T0 (window T0..T0+60s); the stored state has moved on.
    expect(refund([fw], { f: `${T0 + 60_000}:3` })).toEqual(new Map());
    expect(refund([fw], { f: `${T0}:3` })).toEqual(new Map([['f', `F ${T0}:1`]]));
    expect(refund([fw], { f: fixedWindow.encode({ start: T0, count: 1 }) })).toEqual(new Map([['f', `F ${T0}:0`]]));
    expect(refund([sw], { s: `${T0}:3:4` })).toEqual(new Map([['s', `S ${T0}:1:4`]]));
    expect(refund([sw], { s: `${T0 + 60_000}:7:3` })).toEqual(new Map([['s', `S ${T0 + 60_000}:7:1`]]));
    expect(refund([sw], { s: `${T0 + 120_000}:7:3` })).toEqual(new Map());
    // Token bucket: 6 per minute = one token per 10 s; 2 tokens = 120_000 token-ms. `armed` is kept.
    expect(refund([tb], { t: tb2(0, T0, T0 + 200_000) })).toEqual(new Map([['t', `T 120000:${T0}:${T0 + 200_000}`]]));
    expect(refund([tb], { t: `590000:${T0}` })).toEqual(new Map([['t', `T 600000:${T0}:-Infinity`]])); // capped
    // A later take at T0 + 4 s: up to 4 s x 6 token-ms/ms of our hole may have been refilled for free.
    expect(refund([tb], { t: tb2(0, T0 + 4_000, T0 + 204_000) })).toEqual(new Map([['t', `T 96000:${T0 + 4_000}:${T0 + 204_000}`]]));
    expect(refund([tb], { t: `0:${T0 + 20_000}` })).toEqual(new Map());
    expect(refund([tb], { t: `0:${T0 - 1}` })).toEqual(new Map());
    expect(refundOps([fw, sw, tb], T0, read({}))).toEqual(new Map());
    // Two ops on one key each give back their own hits.
    expect(refund([fw, { ...fw, hits: 1 }], { f: `${T0}:5` })).toEqual(new Map([['f', `F ${T0}:2`]]));
  });
});
