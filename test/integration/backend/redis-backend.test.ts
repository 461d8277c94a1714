import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { CounterOp, EvaluateResult } from '../../../src/limiter/types.js';
import { MAX_BATCH_OPS, RedisBackend, type RedisStateChange } from '../../../src/backend/redis/backend.js';
import { MemoryBackend } from '../../../src/backend/memory.js';
import { assembleEvaluateScripts } from '../../../src/backend/redis/lua-assembler.js';
import { EVALUATE_COMMAND, EVALUATE_ONE_COMMAND } from '../../../src/backend/redis/script-commands.js';
import { marshalEvaluate } from '../../../src/backend/redis/script-format.js';
import { BackendError, BackendUnavailableError, CancelledError } from '../../../src/errors.js';
import { stateText } from '../../../src/limiter/algorithms/state-bytes.js';
import type { Algorithm } from '../../../src/limiter/types.js';
import { getFreePort } from '../../support/ports.js';
import { startRedis, type RedisInstance } from '../../support/redis.js';
import { readState, T0 } from './conformance.js';
import { redisNodes } from '../../support/redis-target.js';

/** A stored state as the memory backend holds it: one char per byte. */
const stored = (key: string): Promise<string | null> => readState(admin, key);

/** Redis-only behaviour: script caching, failures and their mapping, Redis's own clock. */

let redis: RedisInstance;
let admin: Redis;
const opened: RedisBackend[] = [];
let n = 0;

beforeAll(async () => {
  redis = await startRedis();
  admin = redis.client();
});
afterEach(async () => {
  await Promise.all(opened.splice(0).map((b) => b.close()));
});
afterAll(async () => {
  await redis?.stop();
});

async function backendOn(
  instance: RedisInstance,
  extra: { commandTimeoutMs?: number; onStateChange?: (c: RedisStateChange) => void } = {},
): Promise<RedisBackend> {
  const b = new RedisBackend({ nodes: redisNodes(instance.url), type: 'single', ...extra });
  opened.push(b);
  await b.waitReady();
  return b;
}

function op(algorithm: Algorithm, threshold: number, o: { key?: string; hits?: number; windowMs?: number } = {}): CounterOp {
  return {
    key: o.key ?? `rb:${++n}:{t}:${algorithm}`,
    algorithm,
    windowMs: o.windowMs ?? 60_000,
    threshold,
    burst: threshold,
    hits: o.hits ?? 1,
    enforce: true,
  };
}

async function commandCalls(): Promise<Record<string, number>> {
  const info = await admin.info('commandstats');
  const calls: Record<string, number> = {};
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls[m[1]!] = Number(m[2]);
  return calls;
}

async function redisNowMs(): Promise<number> {
  const [s, us] = (await admin.time()) as [number | string, number | string];
  return Number(s) * 1000 + Math.floor(Number(us) / 1000);
}

describe('redis backend: script loading', () => {
  it('keeps answering, with the same counters, after SCRIPT FLUSH', async () => {
    const b = await backendOn(redis);
    const o = op('fixed_window', 10);
    for (let i = 1; i <= 3; i++) {
      expect((await b.evaluate([o], { now: T0, chargeOnDeny: false })).outcomes[0]!.remaining).toBe(10 - i);
    }
    const scripts = assembleEvaluateScripts();
    const sha = scripts.one.fixed_window.sha1;
    expect(await admin.script('EXISTS', sha)).toEqual([1]);
    await admin.script('FLUSH');
    expect(await admin.script('EXISTS', sha)).toEqual([0]);
    expect((await b.evaluate([o], { now: T0, chargeOnDeny: false })).outcomes[0]!.remaining).toBe(6);
    expect(await admin.script('EXISTS', sha)).toEqual([1]);
    expect(stateText(await stored(o.key))).toBe(`F ${T0}:4`);
    // The several-ops script too.
    await admin.script('FLUSH');
    const r = await b.evaluate([o, { ...o, hits: 2 }], { now: T0, chargeOnDeny: false });
    expect(r.outcomes.map((x) => x.remaining)).toEqual([5, 3]);
    expect(await admin.script('EXISTS', scripts.multi.sha1)).toEqual([1]);
    expect(stateText(await stored(o.key))).toBe(`F ${T0}:7`);
  });

  it('computes the script hashes from the files, and the scripts are what Redis runs', async () => {
    const s = assembleEvaluateScripts();
    for (const script of [s.multi, ...Object.values(s.one)]) expect(await admin.script('LOAD', script.source)).toBe(script.sha1);
  });
});

describe('redis backend: one round trip, minimal Redis work', () => {
  it('one script call per request: GET + SET for one op; MGET + one SET per changed key for several', async () => {
    const b = await backendOn(redis);
    await b.evaluate([op('fixed_window', 5)], { now: T0, chargeOnDeny: false }); // loads the script on this socket

    await admin.config('RESETSTAT');
    await b.evaluate([op('sliding_window', 5)], { now: T0, chargeOnDeny: false });
    let calls = await commandCalls();
    expect((calls.evalsha ?? 0) + (calls.eval ?? 0)).toBe(1);
    expect(calls.get).toBe(1);
    expect(calls.set).toBe(1);
    expect(calls.mget).toBeUndefined();

    const same = op('fixed_window', 5);
    await admin.config('RESETSTAT');
    await b.evaluate([op('fixed_window', 5), same, { ...same, hits: 2 }, op('token_bucket', 5)], { now: T0, chargeOnDeny: false });
    calls = await commandCalls();
    expect((calls.evalsha ?? 0) + (calls.eval ?? 0)).toBe(1);
    expect(calls.mget).toBe(1);
    expect(calls.set).toBe(3);
    expect(calls.get).toBeUndefined();
    expect(calls.time).toBeUndefined();
  });

  it('the requests issued in one tick go out as one script call in one socket write, each with its own answer', async () => {
    const b = await backendOn(redis);
    await b.evaluate([op('fixed_window', 5)], { now: T0, chargeOnDeny: false }); // loads the one-op script
    await Promise.all([0, 1].map(() => b.evaluate([op('fixed_window', 5)], { now: T0, chargeOnDeny: false }))); // and the batch script
    const socket = b.client.stream as unknown as { _writev?: (...a: unknown[]) => unknown; _write: (...a: unknown[]) => unknown };
    let writes = 0;
    const writev = socket._writev!.bind(socket);
    const write = socket._write.bind(socket);
    socket._writev = (...a: unknown[]) => (writes++, writev(...a));
    socket._write = (...a: unknown[]) => (writes++, write(...a));
    try {
      // 50 requests on 10 counters with a limit of 3: each counter admits exactly 3 of its 5
      const ops = Array.from({ length: 50 }, (_, i) => op('fixed_window', 3, { key: `rb:batch:${n}:{${i % 10}}` }));
      await admin.config('RESETSTAT');
      const results = await Promise.all(ops.map((o) => b.evaluate([o], { now: T0, chargeOnDeny: false })));
      expect(writes).toBe(1);
      // one script call for all 50; each counter read once and written once
      const calls = await commandCalls();
      expect(calls.evalsha).toBe(1);
      expect(calls.eval).toBeUndefined();
      expect(calls.get).toBe(10);
      expect(calls.set).toBe(10);
      expect(results.filter((r) => !r.denied)).toHaveLength(30);
      for (let k = 0; k < 10; k++) {
        const mine = results.filter((_, i) => i % 10 === k);
        expect(mine.map((r) => r.denied)).toEqual([false, false, false, true, true]);
        expect(mine.map((r) => r.outcomes[0]!.remaining)).toEqual([2, 1, 0, 0, 0]);
      }
      // the next tick's call is written on its own
      await b.evaluate([op('fixed_window', 3)], { now: T0, chargeOnDeny: false });
      expect(writes).toBe(2);
    } finally {
      socket._writev = writev;
      socket._write = write;
    }
  });

  it('a batch answers as the same requests sent one by one: denied requests charge nothing, later ones see earlier charges, TTLs match', async () => {
    const batched = await backendOn(redis);
    const mem = new MemoryBackend({ sweepIntervalMs: 0 });
    try {
      const keys = (p: string) => ({ fw: `${p}:{b}:fw`, sw: `${p}:{b}:sw`, tb: `${p}:{b}:tb` });
      const requests = (p: string): Array<[CounterOp[], boolean]> => {
        const k = keys(p);
        const fw: CounterOp = { key: k.fw, algorithm: 'fixed_window', windowMs: 60_000, threshold: 4, burst: 4, hits: 1, enforce: true };
        const sw: CounterOp = { key: k.sw, algorithm: 'sliding_window', windowMs: 60_000, threshold: 3, burst: 3, hits: 1, enforce: true };
        const tb: CounterOp = { key: k.tb, algorithm: 'token_bucket', windowMs: 60_000, threshold: 5, burst: 5, hits: 2, enforce: true };
        return [
          [[fw], false],
          [[tb, fw], false],
          [[fw, sw], false],
          [[sw, tb], false],
          [[tb, fw, sw], false], // tb now over: denied, fw and sw must not move
          [[fw, sw], false],
          [[{ ...fw, enforce: false, hits: 3 }, sw], false], // shadow op over, sw over: denied
          [[fw, { ...sw, hits: 0 }], true], // chargeOnDeny
          [[{ ...tb, hits: 0 }], false],
        ];
      };
      const p1 = `rb:seq:${++n}`;
      const p2 = `rb:bat:${n}`;
      const one: EvaluateResult[] = [];
      for (const [ops, chargeOnDeny] of requests(p1)) one.push(await mem.evaluate(ops, { now: T0, chargeOnDeny }));
      await admin.config('RESETSTAT');
      const all = await Promise.all(requests(p2).map(([ops, chargeOnDeny]) => batched.evaluate(ops, { now: T0, chargeOnDeny })));
      const c = await commandCalls();
      expect((c.evalsha ?? 0) + (c.eval ?? 0)).toBe(1);
      expect(all).toEqual(one);
      expect(all.filter((r) => r.denied).length).toBeGreaterThanOrEqual(3);
      const [k1, k2] = [keys(p1), keys(p2)];
      for (const a of ['fw', 'sw', 'tb'] as const) {
        expect(stateText(await stored(k2[a]))).toBe(stateText(mem.getRaw(k1[a]) ?? null));
        expect(Math.abs((await admin.pttl(k2[a])) - mem.pttl(k1[a]))).toBeLessThan(1_000);
      }
    } finally {
      await mem.close();
    }
  });

  it('a batch over MAX_BATCH_OPS goes out as several script calls, in order, and stays exact', async () => {
    const b = await backendOn(redis);
    const key = `rb:big:${++n}:{t}`;
    await admin.config('RESETSTAT');
    const results = await Promise.all(
      Array.from({ length: 600 }, () => b.evaluate([op('fixed_window', 500, { key })], { now: T0, chargeOnDeny: false })),
    );
    const c = await commandCalls();
    expect((c.evalsha ?? 0) + (c.eval ?? 0)).toBe(Math.ceil(600 / MAX_BATCH_OPS));
    expect(results.map((r) => r.denied)).toEqual([...Array<boolean>(500).fill(false), ...Array<boolean>(100).fill(true)]);
    expect(results.slice(0, 500).map((r) => r.outcomes[0]!.remaining)).toEqual(Array.from({ length: 500 }, (_, i) => 499 - i));
  });

  it('identical one-op requests of one tick (a hot descriptor) run with the state decoded once: same answers, bytes and TTLs as one by one', async () => {
    const b = await backendOn(redis);
    const mem = new MemoryBackend({ sweepIntervalMs: 0 });
    try {
      const ops = (p: string): CounterOp[] => [
        { key: `${p}:{r}:tb`, algorithm: 'token_bucket', windowMs: 60_000, threshold: 5, burst: 7, hits: 2, enforce: true },
        { key: `${p}:{r}:sw`, algorithm: 'sliding_window', windowMs: 60_000, threshold: 9, burst: 9, hits: 1, enforce: true },
        { key: `${p}:{r}:fw`, algorithm: 'fixed_window', windowMs: 60_000, threshold: 6, burst: 6, hits: 1, enforce: false },
      ];
      // runs of 12 per op, each going over its limit part way; a chargeOnDeny run on the window counter
      const requests = (p: string): Array<[CounterOp, boolean]> =>
        ops(p).flatMap((o, i) => [
          ...Array.from({ length: 12 }, (): [CounterOp, boolean] => [{ ...o }, false]),
          ...(i === 2 ? Array.from({ length: 4 }, (): [CounterOp, boolean] => [o, true]) : []),
        ]);
      const p1 = `rb:run1:${++n}`;
      const p2 = `rb:run2:${n}`;
      const one: EvaluateResult[] = [];
      for (const [o, chargeOnDeny] of requests(p1)) one.push(await mem.evaluate([o], { now: T0 + 30_000, chargeOnDeny }));
      await admin.config('RESETSTAT');
      const all = await Promise.all(requests(p2).map(([o, chargeOnDeny]) => b.evaluate([o], { now: T0 + 30_000, chargeOnDeny })));
      expect(all).toEqual(one);
      expect(all.filter((r) => r.outcomes[0]!.overLimit)).toHaveLength(9 + 3 + 6 + 4); // tb admits 3 of 12, sw 9, fw 6 (then 4 more over, charged)
      const c = await commandCalls();
      expect((c.evalsha ?? 0) + (c.eval ?? 0)).toBe(1);
      expect(c.get).toBe(3);
      expect(c.set).toBe(3);
      for (const [x, y] of ops(p1).map((o, i) => [o.key, ops(p2)[i]!.key] as const)) {
        expect(stateText(await stored(y))).toBe(stateText(mem.getRaw(x) ?? null));
        expect(Math.abs((await admin.pttl(y)) - mem.pttl(x))).toBeLessThan(1_000);
      }
    } finally {
      await mem.close();
    }
  });

  it('a key of another Redis type fails only the requests of the batch that use it', async () => {
    const b = await backendOn(redis);
    const bad = op('fixed_window', 5);
    const good = op('token_bucket', 5);
    await admin.hset(bad.key, 'f', '1');
    const settled = await Promise.allSettled([
      b.evaluate([good], { now: T0, chargeOnDeny: false }),
      b.evaluate([good, bad], { now: T0, chargeOnDeny: false }),
      b.evaluate([bad], { now: T0, chargeOnDeny: false }),
      b.evaluate([bad], { now: T0, chargeOnDeny: false }), // a run of the failed key's request
      b.evaluate([good], { now: T0, chargeOnDeny: false }),
    ]);
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'rejected', 'fulfilled']);
    for (const s of [settled[1], settled[2], settled[3]]) {
      const err = (s as PromiseRejectedResult).reason as BackendError;
      expect(err).toBeInstanceOf(BackendError);
      expect(err.transient).toBe(false);
      expect(err.message).toMatch(/WRONGTYPE/);
    }
    // The failed request charged nothing: the good counter saw two takes.
    expect((settled[4] as PromiseFulfilledResult<EvaluateResult>).value.outcomes[0]!.remaining).toBe(3);
    expect(await admin.type(bad.key)).toBe('hash');
  });

  it('a denied request reads and writes nothing else; the Redis clock costs one TIME', async () => {
    const b = await backendOn(redis);
    const full = op('fixed_window', 0);
    await b.evaluate([op('fixed_window', 1)], { now: T0, chargeOnDeny: false });
    await admin.config('RESETSTAT');
    const r = await b.evaluate([op('fixed_window', 5), full], { now: undefined, chargeOnDeny: false });
    expect(r.denied).toBe(true);
    const calls = await commandCalls();
    expect(calls.mget).toBe(1);
    expect(calls.time).toBe(1);
    expect(calls.set).toBeUndefined();
  });
});

describe('redis backend: a request whose caller has gone is not sent', () => {
  it('a request cancelled before its turn is sent is rejected with CancelledError and charges nothing; the others of the turn are sent', async () => {
    const b = await backendOn(redis);
    await b.evaluate([op('fixed_window', 5)], { now: T0, chargeOnDeny: false }); // scripts loaded
    await admin.config('RESETSTAT');
    const gone = { cancelled: false };
    const [kept, dropped, alone] = [op('fixed_window', 5), op('fixed_window', 5), op('token_bucket', 5)];
    const results = Promise.allSettled([
      b.evaluate([kept], { now: T0, chargeOnDeny: false, cancellation: { cancelled: false } }),
      b.evaluate([dropped], { now: T0, chargeOnDeny: false, cancellation: gone }),
      b.evaluate([alone, op('fixed_window', 5, { key: dropped.key })], { now: T0, chargeOnDeny: false, cancellation: gone }),
    ]);
    // The calls were handed to the backend; their caller goes away before the turn's setImmediate.
    gone.cancelled = true;
    const [a, d, e] = await results;
    expect(a.status).toBe('fulfilled');
    for (const r of [d, e]) {
      expect(r.status).toBe('rejected');
      expect((r as PromiseRejectedResult).reason).toBeInstanceOf(CancelledError);
    }
    expect(stateText(await stored(kept.key))).toBe(`F ${T0}:1`);
    expect(await stored(dropped.key)).toBeNull();
    expect(await stored(alone.key)).toBeNull();
    expect((await commandCalls()).evalsha).toBe(1); // the one request left, sent alone
  });

  it('a turn of cancelled requests sends nothing at all', async () => {
    const b = await backendOn(redis);
    await b.evaluate([op('fixed_window', 5)], { now: T0, chargeOnDeny: false });
    await admin.config('RESETSTAT');
    const gone = { cancelled: false };
    const ops = [op('fixed_window', 5), op('sliding_window', 5)];
    const settled = Promise.allSettled(ops.map((o) => b.evaluate([o], { now: T0, chargeOnDeny: false, cancellation: gone })));
    gone.cancelled = true;
    expect((await settled).map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(await commandCalls()).not.toHaveProperty('evalsha');
  });
});

describe('redis backend: TTLs', () => {
  it("writes each key with its algorithm's TTL (PX), running on Redis's real clock", async () => {
    const b = await backendOn(redis);
    const cases: Array<[CounterOp, number]> = [
      [op('fixed_window', 5), 30_000], // ms to the window end
      [op('sliding_window', 5), 90_000], // ms to the window end + one window
      [{ ...op('token_bucket', 6), burst: 10 }, 200_000], // 2 x the full-refill time (100 s), see lua/token-bucket.lua
    ];
    for (const [o, ttl] of cases) {
      const before = performance.now();
      await b.evaluate([o], { now: T0 + 30_000, chargeOnDeny: false });
      const pttl = await admin.pttl(o.key);
      const elapsed = Math.ceil(performance.now() - before);
      expect(pttl).toBeLessThanOrEqual(ttl);
      expect(pttl).toBeGreaterThanOrEqual(ttl - elapsed - 1);
    }
  });
});

describe('redis backend: TTLs kept within a window (SET ... KEEPTTL), as the memory backend does', () => {
  /** The memory backend on a wall clock that does not move: its expiries are its TTLs. */
  function memoryTtl(): { backend: MemoryBackend; ttl: (key: string) => number | undefined } {
    const backend = new MemoryBackend({ clock: () => 0, sweepIntervalMs: 0 });
    return { backend, ttl: (key) => (backend.pttl(key) === -2 ? undefined : backend.pttl(key)) };
  }

  async function pttlNear(key: string, expected: number, started: number): Promise<void> {
    const pttl = await admin.pttl(key);
    expect(pttl).toBeLessThanOrEqual(expected);
    expect(pttl).toBeGreaterThanOrEqual(expected - Math.ceil(performance.now() - started) - 1);
  }

  it.each(['fixed_window', 'sliding_window'] as const)(
    "%s: a later write in the same window keeps the TTL the window's first write set; a new window sets it again",
    async (algorithm) => {
      const b = await backendOn(redis);
      const mem = memoryTtl();
      const o = op(algorithm, 10);
      const extra = algorithm === 'sliding_window' ? 60_000 : 0; // sliding state outlives its window by one window
      const started = performance.now();
      for (const [now, ttl] of [
        [T0 + 30_000, 30_000 + extra], // opens the window: PX
        [T0 + 50_000, 30_000 + extra], // same window: KEEPTTL (PX would have made it 10,000)
        [T0 + 70_000, 50_000 + extra], // next window: PX again
        [T0 + 110_000, 50_000 + extra],
      ] as const) {
        const opts = { now, chargeOnDeny: false };
        expect(await b.evaluate([o], opts)).toEqual(await mem.backend.evaluate([o], opts));
        await pttlNear(o.key, ttl, started);
        expect(mem.ttl(o.key)).toBe(ttl);
      }
      await mem.backend.close();
    },
  );

  it('several ops on one key: the TTL is kept only when every write on it was in the stored window', async () => {
    const b = await backendOn(redis);
    const mem = memoryTtl();
    const o = op('fixed_window', 10);
    const started = performance.now();
    const run = async (now: number): Promise<void> => {
      const opts = { now, chargeOnDeny: false };
      expect(await b.evaluate([o, { ...o, hits: 2 }], opts)).toEqual(await mem.backend.evaluate([o, { ...o, hits: 2 }], opts));
    };
    await run(T0 + 30_000); // fresh key: PX 30,000
    await pttlNear(o.key, 30_000, started);
    await run(T0 + 40_000); // both ops in the stored window: KEEPTTL
    await pttlNear(o.key, 30_000, started);
    expect(mem.ttl(o.key)).toBe(30_000);
    // Next window: the first op sees the stored (old) window, the second the first op's working
    // copy (the new window); one re-arm is enough to make the write a PX.
    await run(T0 + 65_000);
    await pttlNear(o.key, 55_000, started);
    expect(mem.ttl(o.key)).toBe(55_000);
    expect(stateText(await stored(o.key))).toBe(`F ${T0 + 60_000}:3`);
    await mem.backend.close();
  });

  it('token bucket: a take arms the TTL for 2 x the full-refill time; later takes keep it while the bucket is full again by then (KEEPTTL), then re-arm (PX)', async () => {
    const b = await backendOn(redis);
    const mem = memoryTtl();
    const o = { ...op('token_bucket', 6), burst: 10 }; // full refill 100 s: armed for 200 s
    const run = async (now: number, hits = 1): Promise<void> => {
      const opts = { now, chargeOnDeny: false };
      expect(await b.evaluate([{ ...o, hits }], opts)).toEqual(await mem.backend.evaluate([{ ...o, hits }], opts));
    };
    let started = performance.now();
    await run(T0);
    await pttlNear(o.key, 200_000, started);
    expect(mem.ttl(o.key)).toBe(200_000);
    await new Promise((r) => setTimeout(r, 50));
    await run(T0 + 1_000); // full again at T0 + 20 s, before T0 + 200 s: kept
    expect(await admin.pttl(o.key)).toBeLessThanOrEqual(200_000 - 50);
    expect(mem.ttl(o.key)).toBe(200_000);
    started = performance.now();
    await run(T0 + 150_000, 10); // empty: full again at T0 + 250 s, after the armed deadline: armed again
    await pttlNear(o.key, 200_000, started);
    expect(mem.ttl(o.key)).toBe(200_000);
    expect(stateText(await stored(o.key))).toBe(`T 0:${T0 + 150_000}:${T0 + 350_000}`);
    expect(await stored(o.key)).toBe(mem.backend.getRaw(o.key));
    await mem.backend.close();
  });
});

describe('redis backend: the one-op reply', () => {
  it('falls back to the array reply when the integer would pass 2^53, with the same answers as the memory backend', async () => {
    const b = await backendOn(redis);
    const mem = new MemoryBackend({ sweepIntervalMs: 0 });
    const year = 365 * 86_400_000;
    for (const algorithm of ['fixed_window', 'sliding_window', 'token_bucket'] as const) {
      // resetMs x (burst + 1) is far above 2^53 here.
      const o: CounterOp = { ...op(algorithm, 2 ** 40, { windowMs: year }), burst: 2 ** 41 };
      for (const hits of [1, 2 ** 40, 0]) {
        const opts = { now: T0 + 12_345, chargeOnDeny: false };
        const r = await b.evaluate([{ ...o, hits }], opts);
        expect(r).toEqual(await mem.evaluate([{ ...o, hits }], opts));
      }
      expect(await stored(o.key)).toBe(mem.getRaw(o.key) ?? null);
    }
    await mem.close();
  });

  it('a negative `now` is a clock like any other, not a request for the Redis clock', async () => {
    const b = await backendOn(redis);
    const mem = new MemoryBackend({ sweepIntervalMs: 0 });
    const o = op('fixed_window', 5);
    const opts = { now: -90_000, chargeOnDeny: false };
    expect(await b.evaluate([o], opts)).toEqual(await mem.evaluate([o], opts));
    expect(stateText(await stored(o.key))).toBe('F -120000:1');
    await mem.close();
  });
});

describe('redis backend: Redis is the clock when `now` is undefined', () => {
  /** Waits (rarely) so that the next 5 s stay inside one aligned minute of Redis's clock. */
  async function awayFromMinuteEdge(): Promise<void> {
    const inMinute = (await redisNowMs()) % 60_000;
    if (inMinute > 55_000) await new Promise((r) => setTimeout(r, 60_000 - inMinute + 10));
  }

  it.each(['fixed_window', 'sliding_window'] as const)(
    '%s: 2,000 concurrent calls on one key, 100 per minute, admit exactly 100',
    async (algorithm) => {
      const b = await backendOn(redis, { commandTimeoutMs: 5_000 });
      const o = op(algorithm, 100);
      await awayFromMinuteEdge();
      const results = await Promise.all(Array.from({ length: 2_000 }, () => b.evaluate([o], { chargeOnDeny: false })));
      expect(results.filter((r) => !r.denied)).toHaveLength(100);
      const state = stateText(await stored(o.key))!;
      const start = Number(state.slice(2).split(':')[0]);
      expect(start % 60_000).toBe(0);
      // All 2,000 ran in the one window the state names, which then holds exactly 100 hits.
      expect(state).toBe(algorithm === 'fixed_window' ? `F ${start}:100` : `S ${start}:100:0`);
      const ttl = await admin.pttl(o.key);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(algorithm === 'fixed_window' ? 60_000 : 120_000);
    },
  );

  it('token_bucket: 2,000 concurrent calls admit burst + the refill of the elapsed Redis time, at most', async () => {
    const b = await backendOn(redis, { commandTimeoutMs: 5_000 });
    const o = op('token_bucket', 100);
    const t1 = await redisNowMs();
    const results = await Promise.all(Array.from({ length: 2_000 }, () => b.evaluate([o], { chargeOnDeny: false })));
    const t2 = await redisNowMs();
    const admitted = results.filter((r) => !r.denied).length;
    expect(admitted).toBeGreaterThanOrEqual(100);
    expect(admitted).toBeLessThanOrEqual(100 + Math.floor(((t2 - t1) * 100) / 60_000));
  });

  it('two clients interleaved see one shared counter', async () => {
    const a = await backendOn(redis);
    const c = await backendOn(redis);
    const o = op('fixed_window', 3);
    const seen: EvaluateResult[] = [];
    for (const b of [a, c, a, c]) seen.push(await b.evaluate([o], { now: T0, chargeOnDeny: false }));
    expect(seen.map((r) => [r.denied, r.outcomes[0]!.remaining])).toEqual([
      [false, 2],
      [false, 1],
      [false, 0],
      [true, 0],
    ]);
  });
});

describe('redis backend: failures map to the right errors', () => {
  it('a Lua runtime error (WRONGTYPE inside the script) is a non-transient BackendError', async () => {
    const b = await backendOn(redis);
    const o = op('fixed_window', 5);
    await admin.hset(o.key, 'f', '1');
    const err = await b.evaluate([o], { now: T0, chargeOnDeny: false }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackendError);
    expect((err as BackendError).transient).toBe(false);
    expect((err as Error).message).toMatch(/WRONGTYPE/);
    expect(b.isReady()).toBe(true);
  });

  it("a script argument error (unknown algorithm code, or an op sent to another algorithm's script) is a BackendError", async () => {
    class Raw extends RedisBackend {
      call(command: string, keys: string[], args: Buffer): Promise<unknown> {
        return this.runScript(command, keys, args);
      }
    }
    const b = new Raw({ nodes: redisNodes(redis.url) });
    opened.push(b);
    await b.waitReady();
    const o = op('fixed_window', 5);
    const args = marshalEvaluate([o, o], T0, false).args;
    args.writeDoubleLE(7, 16); // op 1's code
    let err = await b.call(EVALUATE_COMMAND, [o.key, o.key], args).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackendError);
    expect((err as Error).message).toMatch(/unknown algorithm code 7/);
    err = await b.call(EVALUATE_ONE_COMMAND.token_bucket, [o.key], marshalEvaluate([o], T0, false).args).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackendError);
    expect((err as Error).message).toMatch(/algorithm code 1 sent to the script for code 3/);
    expect(await admin.exists(o.key)).toBe(0);
  });

  it('invalid ops are rejected before Redis is asked', async () => {
    const b = await backendOn(redis);
    await expect(b.evaluate([{ ...op('fixed_window', 5), windowMs: 0 }], { now: T0, chargeOnDeny: false })).rejects.toThrow(BackendError);
    const k = op('fixed_window', 5);
    await expect(b.evaluate([k, { ...k, algorithm: 'token_bucket' }], { now: T0, chargeOnDeny: false })).rejects.toThrow(
      /used with both fixed_window and token_bucket/,
    );
  });

  it('a busy service is not a slow Redis: the timeout counts from the write, and a reply already received is never a timeout', async () => {
    const b = await backendOn(redis, { commandTimeoutMs: 50 });
    const busy = (ms: number): void => {
      const until = performance.now() + ms;
      while (performance.now() < until); // the event loop is blocked, as by a long turn of work
    };
    await b.evaluate([op('fixed_window', 10)], { now: T0, chargeOnDeny: false }); // script loaded
    // 1. queued, then the process is busy for 3x the timeout before the batch is written
    const queued = b.evaluate([op('fixed_window', 10)], { now: T0, chargeOnDeny: false });
    busy(150);
    await expect(queued).resolves.toMatchObject({ denied: false });
    // 2. written, then busy for 3x the timeout while Redis's reply waits in the socket
    const written = b.evaluate([op('fixed_window', 10)], { now: T0, chargeOnDeny: false });
    await new Promise((r) => setImmediate(r)); // after the batch's own setImmediate: written
    busy(150);
    await expect(written).resolves.toMatchObject({ denied: false });
  });

  it('a stalled Redis (CLIENT PAUSE) fails within the command timeout; the late command still ran', async () => {
    const b = await backendOn(redis, { commandTimeoutMs: 50 });
    const o = op('fixed_window', 10);
    await b.evaluate([o], { now: T0, chargeOnDeny: false });
    await redis.pause(400);
    const started = performance.now();
    const err = await b.evaluate([o], { now: T0, chargeOnDeny: false }).catch((e: unknown) => e);
    const elapsed = performance.now() - started;
    expect(err).toBeInstanceOf(BackendUnavailableError);
    expect((err as BackendUnavailableError).transient).toBe(true);
    expect((err as Error).message).toMatch(/timed out/);
    expect(elapsed).toBeLessThan(1_000);
    await admin.ping(); // blocks until the pause ends
    // Documented trade-off: the timed-out call was executed once Redis resumed (never resent).
    const r = await b.evaluate([{ ...o, hits: 0 }], { now: T0, chargeOnDeny: false });
    expect(r.outcomes[0]!.remaining).toBe(8);
  });

  it('Redis killed: BackendUnavailableError at once, not ready, and it recovers when Redis returns', async () => {
    const own = await startRedis();
    try {
      const changes: RedisStateChange[] = [];
      let onChange = (): void => undefined;
      const changeCount = (k: number): Promise<void> =>
        new Promise((resolve) => {
          const check = (): void => (changes.length >= k ? resolve() : void (onChange = check));
          check();
        });
      const b = await backendOn(own, {
        commandTimeoutMs: 50,
        onStateChange: (c) => {
          changes.push(c);
          onChange();
        },
      });
      const o = op('fixed_window', 10);
      expect((await b.evaluate([o], { now: T0, chargeOnDeny: false })).denied).toBe(false);
      expect(b.isReady()).toBe(true);
      await own.kill();
      const started = performance.now();
      const err = await b.evaluate([o], { now: T0, chargeOnDeny: false }).catch((e: unknown) => e);
      expect(performance.now() - started).toBeLessThan(1_000);
      expect(err).toBeInstanceOf(BackendUnavailableError);
      expect(b.isReady()).toBe(false);
      await changeCount(2);
      expect(changes.map((c) => c.ready)).toEqual([true, false]);

      const again = await startRedis({ port: own.port });
      try {
        await b.waitReady(5_000);
        expect(b.isReady()).toBe(true);
        await changeCount(3);
        expect(changes.map((c) => c.ready)).toEqual([true, false, true]);
        // A new server has no script cached: ioredis loads it again; the counter starts fresh.
        expect((await b.evaluate([o], { now: T0, chargeOnDeny: false })).outcomes[0]!.remaining).toBe(9);
      } finally {
        await again.stop();
      }
    } finally {
      await own.stop();
    }
  });

  it('nothing listening: evaluate fails fast with BackendUnavailableError and waitReady times out', async () => {
    const port = await getFreePort();
    const b = new RedisBackend({ nodes: [{ host: '127.0.0.1', port }], commandTimeoutMs: 50 });
    opened.push(b);
    const started = performance.now();
    const err = await b.evaluate([op('fixed_window', 1)], { now: T0, chargeOnDeny: false }).catch((e: unknown) => e);
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(err).toBeInstanceOf(BackendUnavailableError);
    expect(b.isReady()).toBe(false);
    await expect(b.waitReady(100)).rejects.toThrow(BackendUnavailableError);
  });

  it('after close(): not ready, and evaluate fails as unavailable', async () => {
    const b = await backendOn(redis);
    await b.close();
    expect(b.isReady()).toBe(false);
    await expect(b.evaluate([op('fixed_window', 1)], { now: T0, chargeOnDeny: false })).rejects.toThrow(BackendUnavailableError);
    await b.close();
  });
});
