import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MemoryBackend } from '../../../src/backend/memory.js';
import { InvalidRequestError, QuotaEnvoysError } from '../../../src/errors.js';
import { limitIdentity } from '../../../src/limiter/keys.js';
import type { Backend } from '../../../src/limiter/ports.js';
import type { Limit } from '../../../src/limiter/types.js';
import {
  FLOOR_FRACTION,
  MemoryQuotaStore,
  quotaCounterKey,
  type QuotaAssignment,
  type QuotaReport,
  type QuotaStore,
} from '../../../src/quota/index.js';

/**
 * One suite for every quota store (memory, Redis standalone, Redis Cluster), as
 * test/integration/backend/conformance.ts is for counter backends: exact assignments on an
 * injected clock, the memory store as the reference for report sequences, and for stores shared
 * by replicas (Redis) two store instances and a restart.
 */
export interface QuotaHarness {
  /** A new store instance on the same state (a "replica"). */
  readonly store: (options?: { maxEnvoysPerRule?: number }) => Promise<QuotaStore>;
  /** The RLS counter backend on the same state, to count RLS requests on the rule's counter. */
  readonly rls: Backend;
  /** True when store instances share state (Redis): replicas and restarts are checked. */
  readonly shared: boolean;
  /** Milliseconds the rule's Envoy hash still lives (Redis PTTL), for stores that expire it. */
  readonly stateTtlMs?: (ruleKey: string) => Promise<number>;
  readonly cleanup: () => Promise<void>;
}

/** 09:00:00 UTC on an hour boundary: minute windows start here. */
const T0 = 1_700_000_000_000 - (1_700_000_000_000 % 3_600_000);
const PER_MINUTE = 6_000; // R = 100 requests/s

function limitOf(requestsPerUnit: number, algorithm: Limit['algorithm'] = 'fixed_window'): Limit {
  return {
    name: undefined,
    algorithm,
    unit: 'minute',
    unitMultiplier: 1,
    requestsPerUnit,
    burst: requestsPerUnit,
    windowMs: 60_000,
    identity: limitIdentity(algorithm, 'minute', 1),
    replaces: [],
  };
}

function ruleKey(): string {
  return quotaCounterKey(`rlqs-${randomUUID().slice(0, 8)}:`, 'quota', [{ key: 'route', value: 'checkout' }], limitOf(PER_MINUTE));
}

const report = (
  key: string,
  envoyId: string,
  allowed: number,
  denied: number,
  elapsedSec = 1,
  requestsPerUnit = PER_MINUTE,
): QuotaReport => ({
  ruleKey: key,
  envoyId,
  allowed,
  denied,
  elapsedSec,
  limit: { requestsPerUnit, windowMs: 60_000 },
});

/** A skewed sequence: 5 Envoys, envoy-0 at 10x the others, then the demand shifts to envoy-4. */
function skewed(key: string): { at: number; r: QuotaReport }[] {
  const out: { at: number; r: QuotaReport }[] = [];
  for (let s = 0; s < 8; s++) {
    for (let i = 0; i < 5; i++) {
      const busy = s < 4 ? i === 0 : i === 4;
      out.push({ at: T0 + s * 1000 + i, r: report(key, `envoy-${i}`, busy ? 60 : 6, busy ? 40 : 0) });
    }
  }
  return out;
}

async function play(store: QuotaStore, seq: readonly { at: number; r: QuotaReport }[]): Promise<QuotaAssignment[]> {
  const out: QuotaAssignment[] = [];
  for (const { at, r } of seq) out.push(...(await store.report([r], at)));
  return out;
}

/** The reference: the memory store on a fresh memory backend. */
function reference(seq: readonly { at: number; r: QuotaReport }[]): Promise<QuotaAssignment[]> {
  return play(new MemoryQuotaStore({ backend: new MemoryBackend({ sweepIntervalMs: 0 }) }), seq);
}

export function defineQuotaSuite(name: string, make: () => Promise<QuotaHarness>): void {
  describe(`quota store conformance: ${name}`, () => {
    const withHarness = (fn: (h: QuotaHarness) => Promise<void>) => async () => {
      const h = await make();
      try {
        await fn(h);
      } finally {
        await h.cleanup();
      }
    };

    it(
      'a lone Envoy gets its demand (at least the floor), as a whole-second token bucket',
      withHarness(async (h) => {
        const key = ruleKey();
        const store = await h.store();
        // R = 100/s, floor 12.5/s, demand 50.5/s: 50.5/s, rounded down to 50 tokens per second.
        expect(await store.report([report(key, 'envoy-a', 61, 40, 2)], T0)).toEqual([
          { tokensPerFill: 50, fillIntervalSec: 1, maxTokens: 50, ttlSec: 4, ratePerSec: 50, denyAll: false },
        ]);
        // A second Envoy asking 0.5/s gets the floor: 5,938 left over 60 s = 98.97/s, x 0.125 / 2 = 6.19/s.
        expect(await store.report([report(key, 'envoy-b', 1, 0, 2)], T0)).toMatchObject([{ tokensPerFill: 6, ttlSec: 4 }]);
      }),
    );

    it(
      'gives the same assignments as the reference for a skewed, shifting report sequence',
      withHarness(async (h) => {
        const key = ruleKey();
        const seq = skewed(key);
        const got = await play(await h.store(), seq);
        expect(got).toEqual(await reference(seq));
        // Shift visible within two reporting intervals: envoy-4 up, envoy-0 down.
        const rateOf = (i: number, s: number) => got[s * 5 + i]!.ratePerSec;
        expect(rateOf(4, 5)).toBeGreaterThan(rateOf(4, 3));
        expect(rateOf(0, 5)).toBeLessThan(rateOf(0, 3));
        expect(got.slice(-5).reduce((a, x) => a + x.ratePerSec, 0)).toBeLessThanOrEqual((PER_MINUTE / 60) * (1 + FLOOR_FRACTION * 5));
      }),
    );

    it(
      'charges reported allowed requests to the RLS counter, reads RLS usage, and denies all once the budget is spent',
      withHarness(async (h) => {
        const key = ruleKey();
        const op = (hits: number) => ({
          key,
          algorithm: 'fixed_window' as const,
          windowMs: 60_000,
          threshold: PER_MINUTE,
          burst: PER_MINUTE,
          hits,
          enforce: true,
        });
        // RLS used 5,970 of 6,000 at 30 s into the window: 30 left over 30 s = 1/s of capacity.
        expect((await h.rls.evaluate([op(5_970)], { chargeOnDeny: false, now: T0 + 30_000 })).denied).toBe(false);
        const [a] = await (await h.store()).report([report(key, 'envoy-a', 0, 100)], T0 + 30_000);
        expect(a).toMatchObject({ tokensPerFill: 1, fillIntervalSec: 1, denyAll: false });
        // The Envoy reports 30 allowed: the budget is spent for RLS and RLQS alike.
        const [b] = await (await h.store()).report([report(key, 'envoy-a', 30, 70)], T0 + 31_000);
        expect(b).toMatchObject({ tokensPerFill: 0, denyAll: true, ttlSec: 2 });
        expect((await h.rls.evaluate([op(1)], { chargeOnDeny: false, now: T0 + 31_500 })).denied).toBe(true);
        // The next window starts afresh.
        const [c] = await (await h.store()).report([report(key, 'envoy-a', 0, 100)], T0 + 60_000);
        expect(c!.denyAll).toBe(false);
        expect(c!.tokensPerFill).toBeGreaterThan(50);
      }),
    );

    it(
      'reclaims a silent Envoy after 4 reporting intervals and hands its share to the others',
      withHarness(async (h) => {
        const key = ruleKey();
        const seq = [
          { at: T0, r: report(key, 'silent', 100, 100) },
          { at: T0, r: report(key, 'busy', 100, 100) },
          { at: T0 + 1_000, r: report(key, 'busy', 100, 100) },
          { at: T0 + 2_000, r: report(key, 'busy', 100, 100) },
          { at: T0 + 3_999, r: report(key, 'busy', 100, 100) },
          // silent last reported at T0 with a 1 s interval: dropped from T0 + 4 s on.
          { at: T0 + 4_000, r: report(key, 'busy', 100, 100) },
        ];
        const got = await play(await h.store(), seq);
        expect(got).toEqual(await reference(seq));
        expect(got[5]!.ratePerSec).toBeGreaterThan(got[4]!.ratePerSec);
      }),
    );

    it(
      "a first report (time_elapsed 0) gets its TTL from the rule's other Envoys' reporting interval",
      withHarness(async (h) => {
        const key = ruleKey();
        const store = await h.store();
        const [lone] = await store.report([report(key, 'first', 1, 0, 0)], T0);
        expect(lone!.ttlSec).toBe(2);
        const [periodic] = await store.report([report(key, 'periodic', 50, 0, 5)], T0 + 1_000);
        expect(periodic!.ttlSec).toBe(10);
        const [joining] = await store.report([report(key, 'joining', 1, 0, 0)], T0 + 2_000);
        expect(joining!.ttlSec).toBe(10);
      }),
    );

    it(
      'bounds the Envoys per rule with ML_ERR_QUOTA_ENVOYS; a forgotten Envoy frees its place when its TTL ends',
      withHarness(async (h) => {
        const key = ruleKey();
        const store = await h.store({ maxEnvoysPerRule: 3 });
        for (const id of ['a', 'b', 'c']) await store.report([report(key, id, 1, 0)], T0);
        await expect(store.report([report(key, 'd', 1, 0)], T0 + 100)).rejects.toBeInstanceOf(QuotaEnvoysError);
        await store.forget(key, 'a', T0 + 200);
        // Still held (its assignment may be enforced until T0 + 2 s), so still counted.
        await expect(store.report([report(key, 'd', 1, 0)], T0 + 300)).rejects.toThrow(/MAX_ENVOYS_PER_RULE/);
        const [d] = await store.report([report(key, 'd', 1, 0)], T0 + 2_000);
        expect(d!.denyAll).toBe(false);
      }),
    );

    it(
      'rejects invalid reports naming the field, and clamps time_elapsed',
      withHarness(async (h) => {
        const key = ruleKey();
        const store = await h.store();
        await expect(store.report([report(key, 'x'.repeat(257), 1, 0)], T0)).rejects.toThrow(/envoyId must be 1\.\.256/);
        await expect(store.report([report(key, '', 1, 0)], T0)).rejects.toBeInstanceOf(InvalidRequestError);
        await expect(store.report([report(key, 'e', -1, 0)], T0)).rejects.toThrow(/allowed must be an integer/);
        await expect(store.report([report(key, 'e', 0, 1.5)], T0)).rejects.toThrow(/denied must be an integer/);
        await expect(store.report([report(key, 'e', 0, 0, Number.NaN)], T0)).rejects.toThrow(/elapsedSec/);
        const [a, b] = await store.report([report(key, 'e', 0, 0, 0), report(key, 'f', 0, 0, 1e9)], T0);
        expect(a!.ttlSec).toBe(2);
        expect(b!.ttlSec).toBe(7_200);
      }),
    );

    it('refuses a rule limit that is not a fixed window, naming the algorithm', () => {
      expect(() => quotaCounterKey('p:', 'quota', [{ key: 'k', value: 'v' }], limitOf(10, 'token_bucket'))).toThrow(
        /RLQS divides only fixed_window limits: .* is token_bucket/,
      );
    });

    defineSharedScenarios(name, make);
  });
}

function defineSharedScenarios(name: string, make: () => Promise<QuotaHarness>): void {
  it(`${name}: two store instances (replicas) see each other's Envoys, and a restarted one keeps the shares`, async () => {
    const h = await make();
    try {
      if (!h.shared) {
        // Per-process state: a second instance starts empty (documented for BACKEND_TYPE=memory).
        const key = ruleKey();
        await (await h.store()).report([report(key, 'a', 0, 100)], T0);
        expect(await (await h.store()).report([report(key, 'b', 0, 100)], T0 + 1)).toEqual(
          await reference([{ at: T0 + 1, r: report(key, 'b', 0, 100) }]),
        );
        return;
      }
      const key = ruleKey();
      const seq = skewed(key);
      const replicas = [await h.store(), await h.store()];
      const got: QuotaAssignment[] = [];
      // Envoys 0-2 on replica 0, 3-4 on replica 1; replica 0 restarts after interval 3.
      for (const [i, { at, r }] of seq.entries()) {
        if (i === 20) {
          await replicas[0]!.close();
          replicas[0] = await h.store();
        }
        const on = Number(r.envoyId.slice(-1)) < 3 ? 0 : 1;
        got.push(...(await replicas[on]!.report([r], at)));
      }
      expect(got).toEqual(await reference(seq));
      expect(await h.stateTtlMs!(key)).toBeGreaterThan(0);
      for (const s of replicas) await s.close();
    } finally {
      await h.cleanup();
    }
  });
}
