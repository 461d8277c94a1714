import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRlsClient, type RlsClient } from '../../src/client/rls-client.js';
import type { RateLimitCheck } from '../../src/limiter/types.js';
import type { TrackedChild } from '../support/child.js';
import { startRedis, type RedisInstance } from '../support/redis.js';
import { plainCheck, realCosts, reserveCheck, RESERVATION_CONFIG, rlsInput, settleCheck } from '../support/reservations.js';
import { spawnService } from '../support/service-process.js';
import { eventually } from '../support/service.js';

/**
 * Reservations across 4 meshlimit processes (real processes, over gRPC) sharing one real Redis:
 * the check-then-report race closed (exactly 5 of 50 admitted, the counter equals the sum of the
 * real costs), an in-flight limit of 10 under 200 concurrent long requests (never more than 10
 * in flight, measured from the answers: each admitted request's interval runs from its reserve's
 * OK to its settle's send, inside the interval the store held its slot), and a gateway that
 * never settles freeing its slots after the TTL (2 s).
 */
let redis: RedisInstance;
let configDir: string;
const procs: { process: TrackedChild; client: RlsClient; httpUrl: string }[] = [];

beforeAll(async () => {
  redis = await startRedis();
  configDir = mkdtempSync(path.join(tmpdir(), 'meshlimit-reservations-'));
  writeFileSync(path.join(configDir, 'ai.yaml'), RESERVATION_CONFIG);
  const started = await Promise.all(
    Array.from({ length: 4 }, () =>
      spawnService({
        CONFIG_DIR: configDir,
        BACKEND_TYPE: 'redis',
        REDIS_URL: `127.0.0.1:${redis.port}`,
        REDIS_COMMAND_TIMEOUT_MS: '5000',
        ADMISSION_MAX_OUTSTANDING: '0',
        ADMISSION_MAX_EVENT_LOOP_DELAY_MS: '0',
      }),
    ),
  );
  for (const s of started) procs.push({ process: s.proc, client: createRlsClient(s.grpcAddress), httpUrl: s.httpUrl });
}, 120_000);

afterAll(async () => {
  for (const p of procs) {
    p.client.close();
    await p.process.stop();
  }
  await redis?.stop();
  rmSync(configDir, { recursive: true, force: true });
});

const ask = async (i: number, c: RateLimitCheck): Promise<string> =>
  (await procs[i % procs.length]!.client.shouldRateLimit(rlsInput(c), { deadlineMs: 30_000 })).overallCode;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits out the last seconds of a minute, so a window does not roll between a settle and the read of its charge. */
async function awayFromMinuteEnd(): Promise<void> {
  const [seconds] = await redis.client().time();
  const into = Number(seconds) % 60;
  if (into > 50) await sleep((61 - into) * 1000);
}

describe('reservations across 4 processes on one Redis', () => {
  it("today's check-then-report (hits_addend 0 check, then the charge at stream end) admits all 50", async () => {
    const tenant = `plain-${Date.now()}`;
    const codes = await Promise.all(Array.from({ length: 50 }, (_, i) => ask(i, plainCheck(tenant, 0))));
    expect(codes.filter((c) => c === 'OK')).toHaveLength(50);
    await Promise.all(Array.from({ length: 50 }, (_, i) => ask(i, plainCheck(tenant, 1000))));
    expect(await ask(0, plainCheck(tenant, 0))).toBe('OVER_LIMIT');
  });

  it('50 concurrent requests with room for 5 estimates: exactly 5 admitted; the counter equals the sum of the real costs', async () => {
    await awayFromMinuteEnd();
    const tenant = `race-${Date.now()}`;
    const ids = Array.from({ length: 50 }, (_, i) => `r${i}`);
    const codes = await Promise.all(ids.map((id, i) => ask(i, reserveCheck(tenant, id))));
    const admitted = ids.filter((_, i) => codes[i] === 'OK');
    expect(admitted).toHaveLength(5);
    const costs = realCosts(5, 11);
    const settled = await Promise.all(admitted.map((id, i) => ask(i, settleCheck(tenant, id, costs[i]!))));
    expect(settled).toEqual(['OK', 'OK', 'OK', 'OK', 'OK']);
    const admin = redis.client();
    const keys = (await admin.keys('*:rsv:fw:minute:1')).filter((k) => !k.endsWith(':exp'));
    const state = await Promise.all(keys.map((k) => admin.hgetall(k)));
    const mine = state.filter((h) => h['u'] === String(costs.reduce((a, b) => a + b, 0)));
    expect(mine).toHaveLength(1);
    expect(mine[0]!['s']).toBe('0');
  });

  it('in-flight limit 10 under 200 concurrent long requests from 4 processes: never more than 10 in flight', async () => {
    const tenant = `inflight-${Date.now()}`;
    const intervals: [number, number][] = [];
    let denials = 0;
    await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        const id = `q${i}`;
        for (;;) {
          if ((await ask(i, reserveCheck(tenant, id, 'inflight_tenant'))) === 'OK') break;
          denials++;
          await sleep(150 + (i % 7) * 20);
        }
        const start = performance.now();
        await sleep(100);
        const end = performance.now();
        intervals.push([start, end]);
        expect(await ask(i + 1, settleCheck(tenant, id, 0, 'inflight_tenant'))).toBe('OK');
      }),
    );
    expect(intervals).toHaveLength(200);
    const overlap = maxOverlap(intervals);
    console.info(`in-flight: max overlap ${overlap} of limit 10, ${denials} denied reserves retried`);
    expect(overlap).toBeLessThanOrEqual(10);
    expect(overlap).toBeGreaterThan(1);
    expect(denials).toBeGreaterThan(0);
  }, 120_000);

  it('a gateway that never settles holds its slots only until the TTL (2 s); then they are free', async () => {
    const tenant = `crash-${Date.now()}`;
    const crashed = await Promise.all(Array.from({ length: 10 }, (_, i) => ask(i, reserveCheck(tenant, `c${i}`, 'inflight_tenant'))));
    expect(crashed).toEqual(Array(10).fill('OK'));
    expect(await ask(0, reserveCheck(tenant, 'after-0', 'inflight_tenant'))).toBe('OVER_LIMIT');
    let n = 0;
    await eventually(async () => (await ask(++n, reserveCheck(tenant, `after-${n}`, 'inflight_tenant'))) === 'OK', 20_000, 250);
    const metrics = await Promise.all(procs.map(async (p) => (await fetch(`${p.httpUrl}/metrics`)).text()));
    const expired = metrics
      .flatMap((t) => t.split('\n'))
      .filter((l) => l.startsWith('meshlimit_reservations_total{') && l.includes('outcome="expired"') && l.includes('inflight_tenant'))
      .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
    expect(expired).toBeGreaterThanOrEqual(10);
  }, 60_000);
});

/** The largest number of intervals that contain one instant. */
function maxOverlap(intervals: readonly [number, number][]): number {
  const events = intervals.flatMap(([s, e]) => [
    [s, 1],
    [e, -1],
  ]);
  events.sort((a, b) => a[0]! - b[0]! || a[1]! - b[1]!);
  let now = 0;
  let max = 0;
  for (const [, d] of events) max = Math.max(max, (now += d!));
  return max;
}
