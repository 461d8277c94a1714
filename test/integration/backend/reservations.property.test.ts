import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryBackend } from '../../../src/backend/memory.js';
import { RedisBackend } from '../../../src/backend/redis/backend.js';
import { RedisClusterBackend } from '../../../src/backend/redis/cluster-backend.js';
import type { Backend } from '../../../src/limiter/ports.js';
import type { ReservationCall } from '../../../src/limiter/reservation-types.js';
import type { CounterOp } from '../../../src/limiter/types.js';
import { startRedis, type RedisInstance } from '../../support/redis.js';
import { startRedisCluster, type RedisCluster } from '../../support/redis-cluster.js';
import { redisNodes } from '../../support/redis-target.js';

/**
 * Reservations against a reference model written apart from the implementation, on the memory
 * backend (src/limiter/algorithms/reservation.ts) and on real Redis, standalone and a 3-primary
 * Cluster (lua/reservation.lua; on the Cluster its two keys share the counter's slot): random
 * sequences of reserves and settles over a few ids, with a test clock, must give the model's
 * answers exactly, and the model's invariants hold at every step:
 *  - at every admission, charged cost + outstanding estimates (the new one included) <= limit;
 *  - a settle of an id that is not outstanding (settled already, expired, never reserved)
 *    changes nothing;
 *  - every reservation is released exactly once: by its settle, or by expiry (counted once).
 */

const T0 = 1_700_000_040_000;
const WINDOW = 60_000;
const LIMIT = 1000;

interface Step {
  readonly phase: 'reserve' | 'settle';
  readonly id: string;
  readonly amount: number;
  readonly advance: number;
}
interface Run {
  readonly ttlMs: number;
  readonly expiryCharge: boolean;
  readonly maxOutstanding: number;
  readonly steps: readonly Step[];
}

const run = fc.record({
  ttlMs: fc.constantFrom(5_000, 20_000, 60_000),
  expiryCharge: fc.boolean(),
  maxOutstanding: fc.constantFrom(2, 100),
  steps: fc.array(
    fc.record({
      phase: fc.constantFrom<'reserve' | 'settle'>('reserve', 'reserve', 'settle'),
      id: fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f'),
      // Multiples of 250 hit the limit exactly; others fall between.
      amount: fc.oneof(fc.constantFrom(0, 250, 500, 750, 1000), fc.integer({ min: 1, max: 400 }), fc.integer({ min: 0, max: 1500 })),
      // Steps of 2,500 ms land exactly on 5,000 and 20,000 ms TTLs (expiry at expiresAt <= now).
      advance: fc.oneof(fc.constantFrom(0, 2_500, 5_000), fc.integer({ min: 1, max: 3_000 }), fc.integer({ min: 1, max: 40_000 })),
    }),
    { minLength: 1, maxLength: 40 },
  ),
});

interface Answer {
  readonly over: boolean;
  readonly remaining: number;
  readonly resetMs: number;
  readonly outcome: string;
  readonly expired: number;
  readonly outstanding: number;
  readonly used: number;
  readonly reserved: number;
}

/** The model: what the issue asks for, written plainly (lists, no incremental sums). */
class Model {
  window = -1;
  used = 0;
  held: { id: string; estimate: number; expiresAt: number }[] = [];
  releases = new Map<string, number>();
  takes = 0;

  step(r: Run, s: Step, now: number): Answer {
    const window = now - (now % WINDOW);
    if (window !== this.window) [this.window, this.used] = [window, 0];
    const gone = this.held.filter((h) => h.expiresAt <= now);
    this.held = this.held.filter((h) => h.expiresAt > now);
    for (const g of gone) {
      if (r.expiryCharge) this.used += g.estimate;
      this.release(g.id);
    }
    const reserved = (): number => this.held.reduce((a, h) => a + h.estimate, 0);
    const before = { used: this.used, reserved: reserved(), outstanding: this.held.length };
    let outcome: string;
    const mine = this.held.find((h) => h.id === s.id);
    if (s.phase === 'reserve') {
      if (mine !== undefined) outcome = 'duplicate';
      else if (this.held.length >= r.maxOutstanding) outcome = 'full';
      else if (this.used + reserved() + s.amount <= LIMIT) {
        this.held.push({ id: s.id, estimate: s.amount, expiresAt: now + r.ttlMs });
        this.takes++;
        outcome = 'taken';
        // Invariant: at admission, charged + outstanding (the new one included) fits the limit.
        expect(this.used + reserved()).toBeLessThanOrEqual(LIMIT);
      } else outcome = 'denied';
    } else if (mine === undefined) {
      outcome = 'unknown';
    } else {
      this.held = this.held.filter((h) => h !== mine);
      this.used += s.amount;
      this.release(s.id);
      outcome = 'settled';
    }
    if (outcome === 'unknown' || outcome === 'denied' || outcome === 'full' || outcome === 'duplicate')
      expect({ used: this.used, reserved: reserved(), outstanding: this.held.length }).toEqual(before);
    const over = outcome === 'denied' || outcome === 'full' || outcome === 'duplicate';
    return {
      over,
      remaining: Math.max(0, LIMIT - this.used - reserved()),
      resetMs: window + WINDOW - now,
      outcome,
      expired: gone.length,
      outstanding: this.held.length,
      used: this.used,
      reserved: reserved(),
    };
  }

  private release(id: string): void {
    this.releases.set(id, (this.releases.get(id) ?? 0) + 1);
  }
}

async function agrees(backend: Backend, r: Run): Promise<void> {
  const key = `prop:{${randomBytes(6).toString('hex')}}:rsv`;
  const op: CounterOp = { key, algorithm: 'fixed_window', windowMs: WINDOW, threshold: LIMIT, burst: LIMIT, hits: 0, enforce: true };
  const model = new Model();
  let now = T0 + 1_000;
  let expiredSeen = 0;
  let settledSeen = 0;
  for (const s of r.steps) {
    now += s.advance;
    const call: ReservationCall = { ...s, ttlMs: r.ttlMs, expiryCharge: r.expiryCharge, maxOutstanding: r.maxOutstanding };
    const want = model.step(r, s, now);
    const got = await backend.evaluate([op], { now, chargeOnDeny: false, reservation: call });
    const o = got.outcomes[0]!;
    const g = got.reservation!;
    expect({ over: o.overLimit, remaining: o.remaining, resetMs: o.resetMs, ...g }).toEqual(want);
    expiredSeen += g.expired;
    if (g.outcome === 'settled') settledSeen++;
  }
  // Released exactly once: every release the backend reported is one the model made, once per reservation.
  const released = [...model.releases.values()].reduce((a, b) => a + b, 0);
  expect(expiredSeen + settledSeen).toBe(released);
  expect(released + model.held.length).toBe(model.takes);
}

let redis: RedisInstance;
let cluster: RedisCluster;
let lua: RedisBackend;
let clustered: RedisClusterBackend;
beforeAll(async () => {
  [redis, cluster] = await Promise.all([startRedis(), startRedisCluster({ replicasPerPrimary: 0 })]);
  lua = new RedisBackend({ nodes: redisNodes(redis.url), commandTimeoutMs: 5_000 });
  clustered = new RedisClusterBackend({ nodes: redisNodes(cluster.seeds), type: 'cluster', commandTimeoutMs: 5_000 });
  await Promise.all([lua.waitReady(), clustered.waitReady(10_000)]);
});
afterAll(async () => {
  await Promise.all([lua?.close(), clustered?.close()]);
  await Promise.all([redis?.stop(), cluster?.stop()]);
});

describe('reservations against the reference model', () => {
  it('memory backend (the TypeScript reference) gives the model answers', async () => {
    const memory = new MemoryBackend({ sweepIntervalMs: 0 });
    await fc.assert(
      fc.asyncProperty(run, (r) => agrees(memory, r)),
      { numRuns: 300 },
    );
    await memory.close();
  });

  it('real Redis (lua/reservation.lua) gives the model answers', async () => {
    await fc.assert(
      fc.asyncProperty(run, (r) => agrees(lua, r)),
      { numRuns: 150 },
    );
  });

  it('a real Redis Cluster gives the model answers (each run on a counter of its own, so on any of the slots)', async () => {
    await fc.assert(
      fc.asyncProperty(run, (r) => agrees(clustered, r)),
      { numRuns: 100 },
    );
  });
});
