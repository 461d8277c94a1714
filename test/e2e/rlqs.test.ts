/**
 * RLQS acceptance on real meshlimit processes and a real redis-server: five simulated Envoys
 * (test/support/rlqs-envoy.ts, standing in for Envoy's rate_limit_quota filter) share one global
 * fixed-window limit (500 per 5 s) with skewed demand (one at 10x the others), then the demand
 * shifts to another Envoy.
 *
 * - every full window admits at most LIMIT + overshootBound(...) (src/quota/allocate.ts), measured;
 * - two reporting intervals after the shift, the newly busy Envoy's share has grown and the
 *   formerly busy one's has shrunk;
 * - the same with the Envoys spread over two meshlimit processes on one Redis;
 * - a process killed (SIGKILL) mid-run: its Envoys reconnect to the other and keep their shares.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type RedisInstance } from '../support/redis.js';
import { spawnService, type ServiceProcess } from '../support/service-process.js';
import {
  BUCKET,
  BUSY,
  ENVOYS,
  Fleet,
  IDLE,
  LIMIT,
  OVERSHOOT,
  REPORTING_INTERVAL_SEC,
  runShift,
  SCENARIO_ENV,
  scenarioConfigDir,
  sleep,
} from './rlqs-scenario.js';

let configDir: string;
const started: ServiceProcess[] = [];
const redises: RedisInstance[] = [];

/** A redis-server of the test's own: the tests run at once (each mostly waits on its Envoys' reporting timers), each with its own budget. */
async function ownRedis(): Promise<RedisInstance> {
  const redis = await startRedis();
  redises.push(redis);
  return redis;
}

async function meshlimit(redis: RedisInstance): Promise<ServiceProcess> {
  const svc = await spawnService(
    { CONFIG_DIR: configDir, BACKEND_TYPE: 'redis', REDIS_URL: redis.url, ...SCENARIO_ENV },
    { what: 'RLQS e2e' },
  );
  started.push(svc);
  return svc;
}

beforeAll(() => {
  configDir = scenarioConfigDir();
});

afterAll(async () => {
  await Promise.allSettled(started.map((s) => s.proc.stop()));
  await Promise.allSettled(redises.map((r) => r.stop()));
});

function expectWithinBound(windows: readonly { admitted: number }[]): void {
  expect(windows.length).toBeGreaterThanOrEqual(2);
  for (const w of windows) {
    expect(w.admitted).toBeLessThanOrEqual(LIMIT + OVERSHOOT);
    // Demand (112/s) is above the limit (100/s): the fleet is not just denying everything.
    expect(w.admitted).toBeGreaterThanOrEqual(LIMIT / 2);
  }
}

function expectShift(before: readonly number[], after: readonly number[]): void {
  expect(after[1]).toBeGreaterThan(before[1]!);
  expect(after[0]).toBeLessThan(before[0]!);
  // Before the shift the busy Envoy held the largest share.
  expect(before[0]).toBe(Math.max(...before));
}

describe.concurrent('RLQS: 5 Envoys, one global limit', () => {
  it('one meshlimit on one Redis: every window within the bound; shares follow a demand shift within two reporting intervals', async () => {
    const svc = await meshlimit(await ownRedis());
    const r = await runShift('1 process', () => [svc.grpcAddress]);
    expectWithinBound(r.windows);
    expectShift(r.before, r.after);
  }, 60_000);

  it('two meshlimit processes on one Redis: the same', async () => {
    const redis = await ownRedis();
    const [a, b] = await Promise.all([meshlimit(redis), meshlimit(redis)]);
    const r = await runShift('2 processes', (i) => [i % 2 === 0 ? a!.grpcAddress : b!.grpcAddress]);
    expectWithinBound(r.windows);
    expectShift(r.before, r.after);
  }, 60_000);

  it('a process stopped with SIGTERM: its assignments expire at once (TTL 0), its streams end OK, its Envoys move to the other', async () => {
    const redis = await ownRedis();
    const [a, b] = await Promise.all([meshlimit(redis), meshlimit(redis)]);
    const fleet = new Fleet(
      (i) => (i < 3 ? [a!.grpcAddress, b!.grpcAddress] : [b!.grpcAddress, a!.grpcAddress]),
      [BUSY, IDLE, IDLE, IDLE, IDLE],
      'term',
    );
    try {
      await sleep(4000);
      const expiriesBefore = fleet.envoys.map((e) => e.expiries);
      await a!.proc.stop();
      await sleep(3 * REPORTING_INTERVAL_SEC * 1000);
      for (let i = 0; i < 3; i++) {
        const e = fleet.envoys[i]!;
        expect(e.streamEnds[0]).toEqual({ code: 0, details: 'OK' });
        expect(e.zeroTtlAssignments).toBe(1);
        expect(e.expiries).toBeGreaterThan(expiriesBefore[i]!);
        expect(e.currentAddress).toBe(b!.grpcAddress);
        expect(e.assignment(BUCKET)?.kind).toBe('token_bucket');
      }
      // The Envoys on B were not touched.
      for (let i = 3; i < ENVOYS; i++) {
        expect(fleet.envoys[i]!.streamEnds).toEqual([]);
        expect(fleet.envoys[i]!.zeroTtlAssignments).toBe(0);
      }
    } finally {
      fleet.stop();
    }
  }, 60_000);

  it('a process killed mid-run: its Envoys reconnect to the other and keep their shares', async () => {
    const redis = await ownRedis();
    const [a, b] = await Promise.all([meshlimit(redis), meshlimit(redis)]);
    // Envoys 0..2 on A (then B), 3..4 on B (then A).
    const fleet = new Fleet(
      (i) => (i < 3 ? [a!.grpcAddress, b!.grpcAddress] : [b!.grpcAddress, a!.grpcAddress]),
      [BUSY, IDLE, IDLE, IDLE, IDLE],
      'kill',
    );
    try {
      await sleep(8000);
      const before = fleet.rates();
      a!.proc.child.kill('SIGKILL');
      await a!.proc.exited;
      await sleep(2 * REPORTING_INTERVAL_SEC * 1000 + 500);
      const after = fleet.rates();
      await sleep(6000);
      fleet.stop();
      const windows = fleet.fullWindows();
      console.log(
        `[rlqs kill] rates before kill [${before.map((x) => x.toFixed(1)).join(' ')}], 2 intervals after [${after.map((x) => x.toFixed(1)).join(' ')}]; ` +
          `admitted per full window: ${windows.map((w) => w.admitted).join(', ')} (bound ${LIMIT}+${OVERSHOOT.toFixed(1)})`,
      );
      for (let i = 0; i < 3; i++) {
        expect(fleet.envoys[i]!.currentAddress).toBe(b!.grpcAddress);
        expect(fleet.envoys[i]!.streamsOpened).toBeGreaterThanOrEqual(2);
      }
      // The busy Envoy kept its share (its demand and identity were in Redis, not in the dead process).
      expect(after[0]).toBeGreaterThanOrEqual(0.7 * before[0]!);
      expect(before[0]).toBe(Math.max(...before));
      expect(after[0]).toBe(Math.max(...after));
      expectWithinBound(windows);
      expect(fleet.envoys.every((e) => e.hasBucket(BUCKET))).toBe(true);
      expect(fleet.envoys.length).toBe(ENVOYS);
    } finally {
      fleet.stop();
    }
  }, 60_000);
});
