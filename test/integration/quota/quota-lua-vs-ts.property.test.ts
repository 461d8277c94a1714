import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryBackend } from '../../../src/backend/memory.js';
import { MemoryQuotaStore, RedisQuotaStore, type QuotaAssignment, type QuotaStore } from '../../../src/quota/index.js';
import { startRedis, type RedisInstance } from '../../support/redis.js';
import { redisNodes } from '../../support/redis-target.js';

/**
 * lua/quota-report.lua against its TypeScript twin (the memory store, src/quota/report.ts), in
 * real Redis: random report and forget sequences over a few Envoys must give identical
 * assignments, and the same errors, step by step.
 *
 * Redis expires keys on its real clock while the sequences use a test clock, so no report falls
 * in a window's last 10 s (where the counter's TTL is the time left): a counter then never
 * expires in real time while the test clock is still in its window. The Envoy hash lives at least
 * 4 s of real time, far longer than one sequence takes.
 */
let redis: RedisInstance;
let lua: RedisQuotaStore;
beforeAll(async () => {
  redis = await startRedis();
  lua = new RedisQuotaStore({ redis: { nodes: redisNodes(redis.url), type: 'single', commandTimeoutMs: 5_000 }, maxEnvoysPerRule: 3 });
  await lua.waitReady();
});
afterAll(async () => {
  await lua?.close();
  await redis?.stop();
});

const T0 = 1_700_000_000_000 - (1_700_000_000_000 % 3_600_000);
const QUIET_END_MS = 10_000;
const ENVOYS = ['a', 'b', 'c', 'd', 'e'] as const;

const step = fc.record({
  who: fc.integer({ min: 0, max: ENVOYS.length - 1 }),
  allowed: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 50 }), fc.integer({ min: 0, max: 5_000 })),
  denied: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 50 }), fc.integer({ min: 0, max: 5_000 })),
  elapsedSec: fc.integer({ min: 0, max: 6 }),
  advanceMs: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 1_500 }), fc.integer({ min: 1, max: 12_000 })),
  forget: fc.integer({ min: 0, max: 9 }).map((n) => n === 0),
});

type Outcome = QuotaAssignment | { error: string; message: string } | 'forgotten';

async function apply(
  store: QuotaStore,
  s: { who: number; allowed: number; denied: number; elapsedSec: number; forget: boolean },
  key: string,
  limit: { requestsPerUnit: number; windowMs: number },
  now: number,
): Promise<Outcome> {
  const envoyId = ENVOYS[s.who]!;
  if (s.forget) {
    await store.forget(key, envoyId, now);
    return 'forgotten';
  }
  try {
    const [a] = await store.report([{ ruleKey: key, envoyId, allowed: s.allowed, denied: s.denied, elapsedSec: s.elapsedSec, limit }], now);
    return a!;
  } catch (err) {
    return { error: (err as Error).name, message: (err as Error).message };
  }
}

describe('lua/quota-report.lua vs the TypeScript twin', () => {
  it('gives the same assignments and errors for random report sequences', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 20_000 }),
        fc.constantFrom(60_000, 120_000),
        fc.array(step, { minLength: 1, maxLength: 40 }),
        async (requestsPerUnit, windowMs, steps) => {
          const key = `qlt-${randomBytes(6).toString('hex')}:{t}:fw:minute:1`;
          const limit = { requestsPerUnit, windowMs };
          const ts = new MemoryQuotaStore({ backend: new MemoryBackend({ sweepIntervalMs: 0 }), maxEnvoysPerRule: 3 });
          let now = T0;
          for (const s of steps) {
            now += s.advanceMs;
            if (now % windowMs > windowMs - QUIET_END_MS) now += windowMs - (now % windowMs);
            const want = await apply(ts, s, key, limit, now);
            const got = await apply(lua, s, key, limit, now);
            expect(got).toEqual(want);
          }
        },
      ),
      { numRuns: 150 },
    );
  }, 120_000);
});
