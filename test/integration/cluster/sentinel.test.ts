import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CounterOp, EvaluateResult } from '../../../src/limiter/types.js';
import { RedisBackend, type RedisStateChange } from '../../../src/backend/redis/backend.js';
import { BackendUnavailableError } from '../../../src/errors.js';
import { sleep } from '../../support/redis-admin.js';
import { type RedisSentinelSetup, startRedisSentinel } from '../../support/redis-sentinel.js';
import { defineBackendSuite, redisRaw, T0 } from '../backend/conformance.js';

/**
 * The Redis backend with REDIS_TYPE=sentinel on a real set-up (one primary, one replica, three
 * sentinels, quorum 2), shared by the file: the conformance suite first, then a failover (the
 * primary SIGKILLed under load), last because it changes the primary.
 */

let setup: RedisSentinelSetup;
let admin: Redis;

beforeAll(async () => {
  setup = await startRedisSentinel();
  admin = setup.client();
});
afterAll(async () => {
  await setup?.stop();
});

defineBackendSuite('redis sentinel (1 primary + 1 replica, 3 sentinels)', async () => {
  const b = new RedisBackend({
    nodes: setup.sentinelAddresses,
    sentinelMasterName: setup.masterName,
    type: 'sentinel',
    commandTimeoutMs: 5_000,
  });
  await b.waitReady(10_000);
  return {
    backend: b,
    cleanup: () => b.close(),
    raw: redisRaw(admin),
  };
});

const fw = (key: string, threshold: number): CounterOp => ({
  key,
  algorithm: 'fixed_window',
  windowMs: 60_000,
  threshold,
  burst: threshold,
  hits: 1,
  enforce: true,
});
const opts = { now: T0 + 1_000, chargeOnDeny: false } as const;
/** A fixed-window state read on one node, shown as stateText() shows it ("F <start>:<count>"). */
const FW_STATE_TEXT =
  "local m, s, c = struct.unpack('<Bdd', redis.call('GET', KEYS[1])) return string.char(m) .. ' ' .. string.format('%d:%d', s, c)";

describe('sentinel', () => {
  it('finds the primary by its master name through the sentinels', async () => {
    const b = new RedisBackend({ type: 'sentinel', nodes: setup.sentinelAddresses, sentinelMasterName: setup.masterName });
    try {
      await b.waitReady(10_000);
      const key = `sn:${randomBytes(4).toString('hex')}:{a}`;
      expect((await b.evaluate([fw(key, 5)], opts)).outcomes[0]!.remaining).toBe(4);
      expect(await setup.command(await setup.primaryPort(), 'EVAL', FW_STATE_TEXT, 1, key)).toBe(`F ${T0}:1`);
    } finally {
      await b.close();
    }
  });

  it('primary SIGKILLed under load: only BackendUnavailableError until the failover, then the backend answers again, exactly', async () => {
    const changes: RedisStateChange[] = [];
    const b = new RedisBackend({
      nodes: setup.sentinelAddresses,
      sentinelMasterName: setup.masterName,
      type: 'sentinel',
      commandTimeoutMs: 500,
      onStateChange: (c) => changes.push(c),
    });
    try {
      await b.waitReady(10_000);
      const p = `sf:${randomBytes(4).toString('hex')}:`;
      const log: Array<{ at: number; ok: boolean; error?: unknown }> = [];
      let stop = false;
      const load = (async () => {
        while (!stop) {
          const at = performance.now();
          b.evaluate([fw(`${p}{load}`, 1_000_000)], opts).then(
            () => log.push({ at, ok: true }),
            (error: unknown) => log.push({ at, ok: false, error }),
          );
          await sleep(10);
        }
      })();

      await sleep(300);
      const killedAt = performance.now();
      const old = await setup.killPrimary();
      const promoted = await setup.waitForFailover(old, 20_000);
      const failoverMs = Math.round(performance.now() - killedAt);
      const deadline = performance.now() + 10_000;
      while (!log.some((e) => e.ok && e.at > killedAt + failoverMs) && performance.now() < deadline) await sleep(20);
      await sleep(200);
      stop = true;
      await load;
      await sleep(600);

      const failures = log.filter((e) => !e.ok);
      for (const f of failures) expect(f.error, String(f.error)).toBeInstanceOf(BackendUnavailableError);
      expect(failures.length).toBeGreaterThan(0);
      const lastFailure = Math.max(...failures.map((f) => f.at)) - killedAt;
      expect(log.filter((e) => e.ok && e.at > killedAt + lastFailure).length).toBeGreaterThan(0);
      const backAt = Math.min(...log.filter((e) => e.ok && e.at > killedAt).map((e) => e.at)) - killedAt;
      console.info(
        `[sentinel] primary ${old} SIGKILLed under load (a request every 10 ms): ${failures.length} of ${log.length} requests failed, all BackendUnavailableError; ` +
          `sentinels named ${promoted} at +${failoverMs} ms; first answer from it at +${Math.round(backAt)} ms, last failure at +${Math.round(lastFailure)} ms`,
      );
      // One report per transition: ready, lost, ready again (possibly lost/ready more than once
      // while ioredis retries the old address, but never twice the same state in a row).
      expect(changes[0]).toEqual({ ready: true });
      expect(changes.at(-1)!.ready).toBe(true);
      changes.forEach((c, i) => expect(c.ready).toBe(i % 2 === 0));
      expect(changes.length).toBeGreaterThanOrEqual(3);
      expect(b.isReady()).toBe(true);

      // Exact on the new primary.
      const results: EvaluateResult[] = [];
      for (let i = 0; i < 30; i++) results.push(await b.evaluate([fw(`${p}{after}`, 20)], opts));
      expect(results.filter((r) => !r.denied)).toHaveLength(20);
      expect(await setup.command(promoted, 'EVAL', FW_STATE_TEXT, 1, `${p}{after}`)).toBe(`F ${T0}:20`);
    } finally {
      await b.close();
    }
  });
});
