import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Backend } from '../../../src/limiter/ports.js';
import type { CounterOp, EvaluateResult } from '../../../src/limiter/types.js';
import { keySlot } from '../../../src/backend/redis/slot.js';
import { packState, STATE_TAG, stateText } from '../../../src/limiter/algorithms/state-bytes.js';
import type { Algorithm } from '../../../src/limiter/types.js';
import { reservationScenarios } from './reservation-conformance.js';

/**
 * One conformance suite for every Backend (memory, Redis standalone, Redis Cluster, Redis
 * Sentinel): the same scenarios with a fixed clock passed as `EvaluateOptions.now`, so every
 * expectation is an exact number. Register it from a `*.test.ts` file:
 *
 *   defineBackendSuite('memory', async () => { ... return { backend, cleanup, raw }; });
 *
 * `makeBackend` runs before each test; every test uses its own key prefix, so a shared store is
 * fine. `raw` reads and writes the stored state of a key as a byte string (one char per byte, see
 * src/limiter/algorithms/state-bytes.ts; Redis: `getBuffer(key).toString('latin1')`), to plant
 * corrupted values and to prove that a denied request changed nothing; stateText() shows it.
 *
 * Stores expire keys on their real clock, not on the test clock. Scenarios therefore only write
 * state whose TTL is at least several seconds (no write in a window's last milliseconds, token
 * refills of at least 10 s per token), so no expiry can happen mid-scenario, even on a loaded
 * CI machine; the exact TTLs are tested separately.
 */
export interface BackendUnderTest {
  readonly backend: Backend;
  cleanup(): Promise<void>;
  readonly raw: {
    get(key: string): Promise<string | null>;
    set(key: string, value: string): Promise<void>;
  };
}

/** What a Redis client must do to read a stored state (ioredis `getBuffer`). */
interface BufferReader {
  getBuffer(key: string): Promise<Buffer | null>;
}
/** What a Redis client must do to plant a stored state. */
interface BufferWriter {
  set(key: string, value: Buffer, px: 'PX', ms: number): Promise<unknown>;
}

/** The state stored under `key` in Redis as a byte string (one char per byte), null when none. */
export async function readState(admin: BufferReader, key: string): Promise<string | null> {
  return (await admin.getBuffer(key))?.toString('latin1') ?? null;
}

/** `raw` for a Redis-backed BackendUnderTest: reads and writes states through `admin`. */
export function redisRaw(admin: BufferReader & BufferWriter): BackendUnderTest['raw'] {
  return {
    get: (key) => readState(admin, key),
    set: async (key, value) => {
      await admin.set(key, Buffer.from(value, 'latin1'), 'PX', 3_600_000);
    },
  };
}

/** A minute-aligned instant: 1_700_000_040_000 = 28_333_334 x 60_000. */
export const T0 = 1_700_000_040_000;
const MINUTE = 60_000;

/**
 * Three hash tags whose slots fall in the first, middle and last third of the 16384 slots: on a
 * cluster made by `redis-cli --cluster create` with three primaries (the test harness), each is
 * served by a different primary. Other backends ignore tags.
 */
export const NODE_TAGS: readonly [string, string, string] = (() => {
  const third = (t: string): number => Math.floor(keySlot(`{${t}}`) / 5462);
  const pick = (want: number): string => {
    for (let i = 0; ; i++) if (third(`d${i}`) === want) return `d${i}`;
  };
  return [pick(0), pick(1), pick(2)];
})();

export function defineBackendSuite(name: string, makeBackend: () => Promise<BackendUnderTest>): void {
  describe(`backend conformance: ${name}`, () => {
    let sut: BackendUnderTest;
    let prefix: string;
    beforeEach(async () => {
      sut = await makeBackend();
      prefix = `conf:${randomBytes(6).toString('hex')}:`;
    });
    afterEach(async () => {
      await sut.cleanup();
    });

    /** One descriptor's key: every key of a test without `tag` shares one hash tag (one slot). */
    const key = (s: string, tag = 't'): string => `${prefix}{${tag}}:${s}`;
    const op = (
      k: string,
      algorithm: Algorithm,
      threshold: number,
      o: { hits?: number; windowMs?: number; burst?: number; enforce?: boolean; tag?: string } = {},
    ): CounterOp => ({
      key: key(k, o.tag),
      algorithm,
      windowMs: o.windowMs ?? MINUTE,
      threshold,
      burst: o.burst ?? threshold,
      hits: o.hits ?? 1,
      enforce: o.enforce ?? true,
    });
    const run = (ops: CounterOp[], now: number, chargeOnDeny = false): Promise<EvaluateResult> =>
      sut.backend.evaluate(ops, { now, chargeOnDeny });
    /** One op; returns [over, remaining, resetMs] and checks denied == over (the op is enforced). */
    const one = async (o: CounterOp, now: number, chargeOnDeny = false): Promise<[boolean, number, number]> => {
      const r = await run([o], now, chargeOnDeny);
      expect(r.outcomes).toHaveLength(1);
      const out = r.outcomes[0]!;
      expect(r.denied).toBe(o.enforce && out.overLimit);
      return [out.overLimit, out.remaining, out.resetMs];
    };

    reservationScenarios(
      () => sut,
      (s, tag) => key(s, tag),
    );

    describe('fixed window', () => {
      it('counts down to the threshold, denies after it, and reports ms to the window end', async () => {
        const o = op('fw', 'fixed_window', 3);
        expect(await one(o, T0 + 1_000)).toEqual([false, 2, 59_000]);
        expect(await one(o, T0 + 2_000)).toEqual([false, 1, 58_000]);
        expect(await one(o, T0 + 3_000)).toEqual([false, 0, 57_000]);
        expect(await one(o, T0 + 4_000)).toEqual([true, 0, 56_000]);
        expect(await one(o, T0 + 59_999)).toEqual([true, 0, 1]);
        expect(stateText(await sut.raw.get(o.key))).toBe(`F ${T0}:3`);
      });

      it('rolls over exactly at the aligned window boundary', async () => {
        const o = op('fw', 'fixed_window', 2);
        expect(await one(o, T0 + 1_000)).toEqual([false, 1, 59_000]);
        expect(await one(o, T0 + 2_000)).toEqual([false, 0, 58_000]);
        expect(await one({ ...o, hits: 0 }, T0 + 59_999)).toEqual([false, 0, 1]);
        expect(await one(o, T0 + 59_999)).toEqual([true, 0, 1]);
        expect(await one(o, T0 + 60_000)).toEqual([false, 1, 60_000]);
        expect(stateText(await sut.raw.get(o.key))).toBe(`F ${T0 + MINUTE}:1`);
      });

      it('aligns custom windows (unit x multiplier) to multiples of their length since the epoch', async () => {
        // 5 minutes: T0 = 5_666_666 x 300_000 + 240_000, so the window started at T0 - 240_000.
        const o = op('fw5', 'fixed_window', 10, { windowMs: 300_000 });
        expect(await one(o, T0)).toEqual([false, 9, 60_000]);
        expect(stateText(await sut.raw.get(o.key))).toBe(`F ${T0 - 240_000}:1`);
        expect(await one(o, T0 + 60_000)).toEqual([false, 9, 300_000]);
      });

      it('charges hits > 1 as a whole and only when they all fit', async () => {
        const o = (hits: number) => op('fw', 'fixed_window', 10, { hits });
        expect(await one(o(4), T0)).toEqual([false, 6, 60_000]);
        expect(await one(o(7), T0)).toEqual([true, 0, 60_000]);
        expect(await one(o(6), T0)).toEqual([false, 0, 60_000]);
        expect(stateText(await sut.raw.get(key('fw')))).toBe(`F ${T0}:10`);
      });

      it('hits 0 checks without writing', async () => {
        const check = op('fw', 'fixed_window', 5, { hits: 0 });
        expect(await one(check, T0 + 10)).toEqual([false, 5, 59_990]);
        expect(await sut.raw.get(check.key)).toBeNull();
        await one(op('fw', 'fixed_window', 5, { hits: 2 }), T0 + 20);
        expect(await one(check, T0 + 30)).toEqual([false, 3, 59_970]);
        expect(stateText(await sut.raw.get(check.key))).toBe(`F ${T0}:2`);
      });
    });

    describe('sliding window', () => {
      it('weights the previous window by the share still inside the sliding window', async () => {
        const o = (hits: number) => op('sw', 'sliding_window', 10, { hits });
        expect(await one(o(8), T0 + 30_000)).toEqual([false, 2, 30_000]);
        expect(stateText(await sut.raw.get(key('sw')))).toBe(`S ${T0}:8:0`);
        // 25% into the next window: 8 x 0.75 = 6 carried over, 6 + 1 = 7.
        expect(await one(o(1), T0 + MINUTE + 15_000)).toEqual([false, 3, 45_000]);
        expect(stateText(await sut.raw.get(key('sw')))).toBe(`S ${T0 + MINUTE}:1:8`);
        // 50%: 8 x 0.5 + 1 = 5; 5 more fit exactly.
        expect(await one(o(5), T0 + MINUTE + 30_000)).toEqual([false, 0, 30_000]);
        expect(await one(o(1), T0 + MINUTE + 30_000)).toEqual([true, 0, 30_000]);
        // 2/3 in: 8 x 20_000 / 60_000 = 2.666..., + 6 = 8.666...; 1 fits (remaining floor(0.333...) = 0), 2 do not.
        expect(await one(o(1), T0 + MINUTE + 40_000)).toEqual([false, 0, 20_000]);
        expect(await one(o(2), T0 + MINUTE + 40_000)).toEqual([true, 0, 20_000]);
        // 75%: 8 x 0.25 + 7 = 9.
        expect(await one(o(1), T0 + MINUTE + 45_000)).toEqual([false, 0, 15_000]);
        expect(stateText(await sut.raw.get(key('sw')))).toBe(`S ${T0 + MINUTE}:8:8`);
      });

      it('forgets the previous window after two window lengths', async () => {
        const o = op('sw', 'sliding_window', 10, { hits: 10 });
        expect(await one(o, T0)).toEqual([false, 0, 60_000]);
        expect(await one(op('sw', 'sliding_window', 10), T0 + MINUTE)).toEqual([true, 0, 60_000]);
        expect(await one(op('sw', 'sliding_window', 10), T0 + 2 * MINUTE)).toEqual([false, 9, 60_000]);
        expect(stateText(await sut.raw.get(key('sw')))).toBe(`S ${T0 + 2 * MINUTE}:1:0`);
      });

      it('hits 0 checks without writing', async () => {
        await one(op('sw', 'sliding_window', 10, { hits: 4 }), T0);
        const before = await sut.raw.get(key('sw'));
        expect(await one(op('sw', 'sliding_window', 10, { hits: 0 }), T0 + MINUTE + 30_000)).toEqual([false, 8, 30_000]);
        expect(await sut.raw.get(key('sw'))).toBe(before);
      });
    });

    describe('token bucket', () => {
      // 6 per minute = one token per 10 s; capacity 10 (600_000 token-ms).
      const tb = (hits = 1, burst = 10) => op('tb', 'token_bucket', 6, { hits, burst });

      it('starts full, drains, and refills one token per 10,000 ms exactly', async () => {
        expect(await one(tb(1), T0)).toEqual([false, 9, 10_000]);
        expect(stateText(await sut.raw.get(key('tb')))).toBe(`T 540000:${T0}:${T0 + 200_000}`); // armed: 2 x 100 s to full
        expect(await one(tb(9), T0)).toEqual([false, 0, 100_000]);
        expect(await one(tb(1), T0)).toEqual([true, 0, 100_000]);
        expect(await one(tb(1), T0 + 9_999)).toEqual([true, 0, 90_001]);
        expect(await one(tb(1), T0 + 10_000)).toEqual([false, 0, 100_000]);
        // 45 s later: 4.5 tokens; take 1, 3.5 left: remaining 3, full again in 65 s.
        expect(await one(tb(1), T0 + 55_000)).toEqual([false, 3, 65_000]);
        expect(stateText(await sut.raw.get(key('tb')))).toBe(`T 210000:${T0 + 55_000}:${T0 + 200_000}`); // full again before T0 + 200 s: kept
      });

      it('caps the level at burst after a long idle period', async () => {
        expect(await one(tb(10, 20), T0)).toEqual([false, 10, 100_000]);
        expect(await one(tb(20, 20), T0 + 3_600_000)).toEqual([false, 0, 200_000]);
        expect(await one(tb(1, 20), T0 + 3_600_000)).toEqual([true, 0, 200_000]);
      });

      it('a burst above the refill rate admits the burst, then the steady rate', async () => {
        // 6 per minute (one per 10 s), capacity 3.
        const o = op('tb6', 'token_bucket', 6, { burst: 3 });
        expect(await one(o, T0)).toEqual([false, 2, 10_000]);
        expect(await one(o, T0)).toEqual([false, 1, 20_000]);
        expect(await one(o, T0)).toEqual([false, 0, 30_000]);
        expect(await one(o, T0 + 9_999)).toEqual([true, 0, 20_001]);
        expect(await one(o, T0 + 10_000)).toEqual([false, 0, 30_000]);
      });

      it('hits 0 checks without writing and a fresh bucket reports full', async () => {
        expect(await one(tb(0), T0)).toEqual([false, 10, 0]);
        expect(await sut.raw.get(key('tb'))).toBeNull();
        await one(tb(4), T0);
        expect(await one(tb(0), T0 + 500)).toEqual([false, 6, 39_500]);
        expect(stateText(await sut.raw.get(key('tb')))).toBe(`T 360000:${T0}:${T0 + 200_000}`);
      });

      it('never charges an over-limit take, even with chargeOnDeny', async () => {
        await one(tb(10), T0);
        expect(await one(tb(1), T0 + 500, true)).toEqual([true, 0, 99_500]);
        expect(stateText(await sut.raw.get(key('tb')))).toBe(`T 0:${T0}:${T0 + 200_000}`);
      });
    });

    describe('several ops in one call', () => {
      it('evaluates every op and reports each outcome in order', async () => {
        const ops = [op('a', 'fixed_window', 5), op('b', 'sliding_window', 3, { hits: 2 }), op('c', 'token_bucket', 6, { burst: 4 })];
        const r = await run(ops, T0 + 1_000);
        expect(r).toEqual({
          denied: false,
          outcomes: [
            { overLimit: false, remaining: 4, resetMs: 59_000 },
            { overLimit: false, remaining: 1, resetMs: 59_000 },
            { overLimit: false, remaining: 3, resetMs: 10_000 },
          ],
        });
        expect(stateText(await sut.raw.get(key('a')))).toBe(`F ${T0}:1`);
        expect(stateText(await sut.raw.get(key('b')))).toBe(`S ${T0}:2:0`);
        expect(stateText(await sut.raw.get(key('c')))).toBe(`T 180000:${T0 + 1_000}:${T0 + 81_000}`);
      });

      it('two ops on the same key see each other', async () => {
        const r = await run([op('same', 'fixed_window', 5), op('same', 'fixed_window', 5, { hits: 2 })], T0);
        expect(r.outcomes.map((o) => o.remaining)).toEqual([4, 2]);
        expect(stateText(await sut.raw.get(key('same')))).toBe(`F ${T0}:3`);
        const tb = await run(
          [op('t', 'token_bucket', 60, { burst: 2 }), op('t', 'token_bucket', 60, { burst: 2 }), op('t', 'token_bucket', 60, { burst: 2 })],
          T0,
        );
        expect(tb.denied).toBe(true);
        expect(tb.outcomes.map((o) => [o.overLimit, o.remaining])).toEqual([
          [false, 1],
          [false, 0],
          [true, 0],
        ]);
        expect(await sut.raw.get(key('t'))).toBeNull();
      });

      it('a denied request charges nothing, proven by a follow-up check', async () => {
        await one(op('full', 'fixed_window', 1), T0);
        const r = await run(
          [
            op('x', 'fixed_window', 10),
            op('y', 'sliding_window', 10),
            op('z', 'token_bucket', 1, { burst: 10 }),
            op('full', 'fixed_window', 1),
          ],
          T0 + 5,
        );
        expect(r.denied).toBe(true);
        expect(r.outcomes.map((o) => [o.overLimit, o.remaining])).toEqual([
          [false, 9],
          [false, 9],
          [false, 9],
          [true, 0],
        ]);
        for (const k of ['x', 'y', 'z']) expect(await sut.raw.get(key(k))).toBeNull();
        expect(stateText(await sut.raw.get(key('full')))).toBe(`F ${T0}:1`);
        const check = await run(
          [op('x', 'fixed_window', 10, { hits: 0 }), op('y', 'sliding_window', 10, { hits: 0 }), op('z', 'token_bucket', 10, { hits: 0 })],
          T0 + 6,
        );
        expect(check.outcomes.map((o) => o.remaining)).toEqual([10, 10, 10]);
      });

      it('chargeOnDeny charges the window ops of a denied request (envoyproxy/ratelimit behaviour)', async () => {
        await one(op('full', 'fixed_window', 1), T0);
        const r = await run(
          [
            op('x', 'fixed_window', 10),
            op('y', 'sliding_window', 10),
            op('z', 'token_bucket', 1, { burst: 10 }),
            op('full', 'fixed_window', 1),
          ],
          T0 + 5,
          true,
        );
        expect(r.denied).toBe(true);
        expect(r.outcomes.map((o) => [o.overLimit, o.remaining])).toEqual([
          [false, 9],
          [false, 9],
          [false, 9],
          [true, 0],
        ]);
        expect(stateText(await sut.raw.get(key('x')))).toBe(`F ${T0}:1`);
        expect(stateText(await sut.raw.get(key('y')))).toBe(`S ${T0}:1:0`);
        // The token bucket op fitted, so it is charged as well; the over-limit window op is charged too.
        expect(stateText(await sut.raw.get(key('z')))).toBe(`T 540000:${T0 + 5}:${T0 + 1_200_005}`);
        expect(stateText(await sut.raw.get(key('full')))).toBe(`F ${T0}:2`);
      });

      it('a shadow (enforce=false) op over its limit neither denies nor blocks the others', async () => {
        await one(op('shadow', 'fixed_window', 1), T0);
        const r = await run([op('shadow', 'fixed_window', 1, { enforce: false }), op('real', 'sliding_window', 5)], T0 + 1);
        expect(r).toEqual({
          denied: false,
          outcomes: [
            { overLimit: true, remaining: 0, resetMs: 59_999 },
            { overLimit: false, remaining: 4, resetMs: 59_999 },
          ],
        });
        expect(stateText(await sut.raw.get(key('real')))).toBe(`S ${T0}:1:0`);
        // Over-limit shadow counters are not charged (as if enforced).
        expect(stateText(await sut.raw.get(key('shadow')))).toBe(`F ${T0}:1`);
      });

      it('an empty op list is an admitted request with no outcomes', async () => {
        expect(await run([], T0)).toEqual({ denied: false, outcomes: [] });
      });
    });

    describe('ops on several descriptors (hash tags served by different cluster nodes)', () => {
      const [A, B, C] = NODE_TAGS;

      it('reports every outcome in request order, whichever node holds each descriptor', async () => {
        const ops = [
          op('x', 'fixed_window', 5, { tag: A }),
          op('y', 'sliding_window', 3, { tag: B, hits: 2 }),
          op('x2', 'fixed_window', 4, { tag: A, hits: 3 }),
          op('z', 'token_bucket', 6, { tag: C, burst: 4 }),
        ];
        expect(await run(ops, T0 + 1_000)).toEqual({
          denied: false,
          outcomes: [
            { overLimit: false, remaining: 4, resetMs: 59_000 },
            { overLimit: false, remaining: 1, resetMs: 59_000 },
            { overLimit: false, remaining: 1, resetMs: 59_000 },
            { overLimit: false, remaining: 3, resetMs: 10_000 },
          ],
        });
        expect(stateText(await sut.raw.get(key('x', A)))).toBe(`F ${T0}:1`);
        expect(stateText(await sut.raw.get(key('y', B)))).toBe(`S ${T0}:2:0`);
        expect(stateText(await sut.raw.get(key('z', C)))).toBe(`T 180000:${T0 + 1_000}:${T0 + 81_000}`);
      });

      it('a request denied by one descriptor charges none of the others (exact follow-up check)', async () => {
        await one(op('full', 'fixed_window', 1, { tag: B }), T0);
        const ops = [
          op('x', 'fixed_window', 10, { tag: A }),
          op('y', 'sliding_window', 10, { tag: A, hits: 3 }),
          op('full', 'fixed_window', 1, { tag: B }),
          op('z', 'token_bucket', 6, { tag: C, burst: 10, hits: 4 }),
        ];
        const r = await run(ops, T0 + 5);
        expect(r.denied).toBe(true);
        expect(r.outcomes.map((o) => [o.overLimit, o.remaining])).toEqual([
          [false, 9],
          [false, 7],
          [true, 0],
          [false, 6],
        ]);
        const check = await run(
          [
            op('x', 'fixed_window', 10, { tag: A, hits: 0 }),
            op('y', 'sliding_window', 10, { tag: A, hits: 0 }),
            op('z', 'token_bucket', 6, { tag: C, burst: 10, hits: 0 }),
          ],
          T0 + 6,
        );
        // Nothing charged: full counts left and a full bucket (reset 0).
        expect(check.outcomes).toEqual([
          { overLimit: false, remaining: 10, resetMs: 59_994 },
          { overLimit: false, remaining: 10, resetMs: 59_994 },
          { overLimit: false, remaining: 10, resetMs: 0 },
        ]);
        expect(stateText(await sut.raw.get(key('full', B)))).toBe(`F ${T0}:1`);
        // And the next admitted request counts from there.
        const next = await run(
          [op('x', 'fixed_window', 10, { tag: A }), op('z', 'token_bucket', 6, { tag: C, burst: 10, hits: 4 })],
          T0 + 7,
        );
        expect(next.outcomes.map((o) => o.remaining)).toEqual([9, 6]);
      });

      it('chargeOnDeny charges every window op on every descriptor', async () => {
        await one(op('full', 'fixed_window', 1, { tag: C }), T0);
        const r = await run(
          [op('x', 'fixed_window', 10, { tag: A }), op('y', 'sliding_window', 10, { tag: B }), op('full', 'fixed_window', 1, { tag: C })],
          T0 + 5,
          true,
        );
        expect(r.denied).toBe(true);
        expect(stateText(await sut.raw.get(key('x', A)))).toBe(`F ${T0}:1`);
        expect(stateText(await sut.raw.get(key('y', B)))).toBe(`S ${T0}:1:0`);
        expect(stateText(await sut.raw.get(key('full', C)))).toBe(`F ${T0}:2`);
      });

      it('300 concurrent requests on two descriptors (1000 and 100 per minute) admit exactly 100 and charge the other exactly 100', async () => {
        const ops = [op('wide', 'fixed_window', 1_000, { tag: A }), op('narrow', 'fixed_window', 100, { tag: C })];
        const results = await Promise.all(Array.from({ length: 300 }, () => run(ops, T0 + 123)));
        expect(results.filter((r) => !r.denied)).toHaveLength(100);
        const check = await run(
          [op('wide', 'fixed_window', 1_000, { tag: A, hits: 0 }), op('narrow', 'fixed_window', 100, { tag: C, hits: 0 })],
          T0 + 124,
        );
        expect(check.outcomes.map((o) => o.remaining)).toEqual([900, 0]);
      });
    });

    describe('refund handles (EvaluateOptions.refundable, used when a request spans two stores)', () => {
      const [A, , C] = NODE_TAGS;
      const check = (now: number): Promise<EvaluateResult> =>
        run(
          [
            op('x', 'fixed_window', 10, { tag: A, hits: 0 }),
            op('y', 'sliding_window', 10, { tag: A, hits: 0 }),
            op('z', 'token_bucket', 6, { tag: C, burst: 10, hits: 0 }),
          ],
          now,
        );

      it('an admitted request gives back exactly what it charged, on every descriptor, and nothing more', async () => {
        await one(op('x', 'fixed_window', 10, { tag: A, hits: 2 }), T0);
        const ops = [
          op('x', 'fixed_window', 10, { tag: A, hits: 3 }),
          op('y', 'sliding_window', 10, { tag: A, hits: 2 }),
          op('z', 'token_bucket', 6, { tag: C, burst: 10, hits: 4 }),
          op('x', 'fixed_window', 10, { tag: A, hits: 0 }),
        ];
        const r = await sut.backend.evaluate(ops, { now: T0 + 5, chargeOnDeny: false, refundable: true });
        expect(r.denied).toBe(false);
        expect(r.outcomes.map((o) => o.remaining)).toEqual([5, 8, 6, 5]);
        expect(r.refund).toBeTypeOf('function');
        expect((await check(T0 + 6)).outcomes.map((o) => o.remaining)).toEqual([5, 8, 6]);
        await r.refund!();
        // Back to where it was before the request: the earlier 2 hits stay, the rest is given back.
        expect((await check(T0 + 7)).outcomes.map((o) => o.remaining)).toEqual([8, 10, 10]);
        expect(stateText(await sut.raw.get(key('x', A)))).toBe(`F ${T0}:2`);
      });

      it('offers no refund when not asked, when the request was denied, or when it charged nothing', async () => {
        const plain = await run([op('x', 'fixed_window', 10, { tag: A })], T0);
        expect(plain.refund).toBeUndefined();
        await one(op('full', 'fixed_window', 1, { tag: C }), T0);
        const denied = await sut.backend.evaluate([op('x', 'fixed_window', 10, { tag: A }), op('full', 'fixed_window', 1, { tag: C })], {
          now: T0 + 1,
          chargeOnDeny: false,
          refundable: true,
        });
        expect(denied.denied).toBe(true);
        expect(denied.refund).toBeUndefined();
        const checkOnly = await sut.backend.evaluate([op('x', 'fixed_window', 10, { tag: A, hits: 0 })], {
          now: T0 + 2,
          chargeOnDeny: false,
          refundable: true,
        });
        expect(checkOnly.outcomes[0]!.remaining).toBe(9);
        expect(checkOnly.refund).toBeUndefined();
        // A shadow op over its limit charges nothing, so it has nothing to give back.
        const shadow = await sut.backend.evaluate([op('full', 'fixed_window', 1, { tag: C, enforce: false })], {
          now: T0 + 3,
          chargeOnDeny: false,
          refundable: true,
        });
        expect(shadow).toMatchObject({ denied: false, outcomes: [{ overLimit: true }] });
        expect(shadow.refund).toBeUndefined();
      });
    });

    describe('counters survive threshold changes (hot reload)', () => {
      it('fixed window: the same key keeps its count under a new threshold', async () => {
        for (let i = 0; i < 3; i++) await one(op('k', 'fixed_window', 5), T0);
        expect(await one(op('k', 'fixed_window', 4), T0)).toEqual([false, 0, 60_000]);
        expect(await one(op('k', 'fixed_window', 4), T0)).toEqual([true, 0, 60_000]);
        expect(await one(op('k', 'fixed_window', 10), T0)).toEqual([false, 5, 60_000]);
      });

      it('sliding window: current and previous counts carry over', async () => {
        await one(op('k', 'sliding_window', 10, { hits: 6 }), T0);
        await one(op('k', 'sliding_window', 10, { hits: 2 }), T0 + MINUTE);
        // 50% in: 6 x 0.5 + 2 = 5 under a threshold lowered to 6: one more fits, then none.
        expect(await one(op('k', 'sliding_window', 6), T0 + MINUTE + 30_000)).toEqual([false, 0, 30_000]);
        expect(await one(op('k', 'sliding_window', 6), T0 + MINUTE + 30_000)).toEqual([true, 0, 30_000]);
        expect(stateText(await sut.raw.get(key('k')))).toBe(`S ${T0 + MINUTE}:3:6`);
      });

      it('token bucket: the level carries over and is capped by the new burst', async () => {
        await one(op('k', 'token_bucket', 6, { hits: 2, burst: 10 }), T0);
        expect(await one(op('k', 'token_bucket', 6, { burst: 5 }), T0)).toEqual([false, 4, 10_000]);
        expect(stateText(await sut.raw.get(key('k')))).toBe(`T 240000:${T0}:${T0 + 200_000}`); // armed by the first take, kept
      });
    });

    describe('stored values it did not write', () => {
      const F = STATE_TAG.fixed_window;
      const S = STATE_TAG.sliding_window;
      const T = STATE_TAG.token_bucket;
      it.each([
        [
          'fixed_window',
          [
            'garbage',
            '',
            ':',
            ':5',
            '5',
            `${T0}:x`,
            `${T0}:1:2`,
            `${T0}:Infinity`,
            `${T0}:NaN`,
            `${T0}:-0x5`,
            `${T0}: 3 `,
            `${T0}:0x3`,
            `${T0 / 1000}e3:3`,
            `${T0}:3.0`,
            packState(F, T0, Number.NaN),
            packState(F, T0, Infinity),
            packState(S, T0, 3),
            packState(F, T0, 3, 0),
            packState(F, T0, 3).slice(0, 16),
            `${packState(F, T0, 3)}x`,
          ],
        ],
        [
          'sliding_window',
          [
            'garbage',
            '',
            '::',
            `${T0}:1`,
            `${T0}:1:2:3`,
            `${T0}:x:0`,
            `${T0}:1:inf`,
            `${T0}:\t2:\u00a01`,
            packState(S, T0, 3, Number.NaN),
            packState(S, T0, -Infinity, 0),
            packState(T, T0, 3, 0),
            packState(S, T0, 3),
          ],
        ],
        [
          'token_bucket',
          [
            'garbage',
            '',
            ':',
            `:${T0}`,
            'x:1',
            `1e400:${T0}`,
            `nan:${T0}`,
            `59999.5:${T0}`,
            `120000.0:${T0}`,
            packState(T, Number.NaN, T0, T0),
            packState(T, 0, Infinity, T0),
            packState(S, 0, T0, T0),
            packState(T, 0, T0),
          ],
        ],
      ] as const)(
        "%s: unparsable or foreign values (other spellings, another algorithm's state, non-finite fields) are a fresh counter",
        async (algorithm, values) => {
          for (const [i, v] of values.entries()) {
            const k = `g${i}`;
            await sut.raw.set(key(k), v);
            const fresh = algorithm === 'token_bucket' ? [false, 9, 10_000] : [false, 9, 60_000];
            expect(
              await one(op(k, algorithm, algorithm === 'token_bucket' ? 6 : 10, { burst: 10 }), T0),
              `value ${JSON.stringify(v)}`,
            ).toEqual(fresh);
          }
        },
      );

      it('the decimal text of earlier versions is read (a rolling upgrade keeps the counts), and rewritten as binary', async () => {
        const cases: Array<[string, Algorithm, string, [boolean, number, number], string | null]> = [
          ['fw', 'fixed_window', `${T0}:3`, [false, 6, 60_000], `F ${T0}:4`],
          ['fw-prev', 'fixed_window', `${T0 - 60_000}:3`, [false, 9, 60_000], `F ${T0}:1`],
          ['fw-17-bytes', 'fixed_window', `${T0}:100`, [true, 0, 60_000], null], // as long as a binary state
          ['sw', 'sliding_window', `${T0}:2:1`, [false, 6, 60_000], `S ${T0}:3:1`],
          ['sw-25-bytes', 'sliding_window', `${T0}:123456:1234`, [true, 0, 60_000], null],
          ['tb', 'token_bucket', `120000:${T0}`, [false, 1, 90_000], `T 60000:${T0}:${T0 + 200_000}`], // not armed: arms
        ];
        for (const [k, algorithm, stored, expected, after] of cases) {
          await sut.raw.set(key(k), stored);
          expect(await one(op(k, algorithm, algorithm === 'token_bucket' ? 6 : 10, { burst: 10 }), T0), k).toEqual(expected);
          expect(stateText(await sut.raw.get(key(k))), k).toBe(after ?? stored);
        }
      });

      it('a binary state with fractional or negative fields is read as it is (the same doubles in every backend)', async () => {
        const cases: Array<[string, Algorithm, string, [boolean, number, number], string]> = [
          ['fw-frac', 'fixed_window', packState(F, T0, 2.5), [false, 6, 60_000], `F ${T0}:3.5`],
          ['fw-neg', 'fixed_window', packState(F, T0, -2), [false, 11, 60_000], `F ${T0}:-1`],
          ['sw-frac', 'sliding_window', packState(S, T0, 0.25, 1 / 3), [false, 8, 60_000], `S ${T0}:1.25:${1 / 3}`],
          ['tb-frac', 'token_bucket', packState(T, 120_000.5, T0, T0 + 5), [false, 1, 90_000], `T 60000.5:${T0}:${T0 + 200_000}`],
          ['tb-armed', 'token_bucket', packState(T, 120_000, T0, T0 + 90_000), [false, 1, 90_000], `T 60000:${T0}:${T0 + 90_000}`],
        ];
        for (const [k, algorithm, stored, expected, after] of cases) {
          await sut.raw.set(key(k), stored);
          expect(await one(op(k, algorithm, algorithm === 'token_bucket' ? 6 : 10, { burst: 10 }), T0), k).toEqual(expected);
          expect(stateText(await sut.raw.get(key(k))), k).toBe(after);
        }
      });
    });

    describe('concurrency', () => {
      it('2,000 concurrent calls on one key (100 per minute) admit exactly 100', async () => {
        const o = op('hot', 'fixed_window', 100);
        const results = await Promise.all(Array.from({ length: 2_000 }, () => run([o], T0 + 123)));
        expect(results.filter((r) => !r.denied)).toHaveLength(100);
        expect(new Set(results.filter((r) => !r.denied).map((r) => r.outcomes[0]!.remaining)).size).toBe(100);
        expect(stateText(await sut.raw.get(o.key))).toBe(`F ${T0}:100`);
      });
    });
  });
}
