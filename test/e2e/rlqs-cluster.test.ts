/**
 * RLQS acceptance on a Redis Cluster (3 primaries, real redis-server processes): five simulated
 * Envoys spread over two meshlimit processes share one global limit; every full window admits at
 * most LIMIT + overshootBound(...), and shares follow a demand shift within two reporting
 * intervals. The quota state sits beside the rule's RLS counter under its hash tag, so one
 * script's keys are on one slot (a CROSSSLOT error would fail every report into the failure policy).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startRedisCluster, type RedisCluster } from '../support/redis-cluster.js';
import { spawnService, type ServiceProcess } from '../support/service-process.js';
import { LIMIT, OVERSHOOT, runShift, SCENARIO_ENV, scenarioConfigDir } from './rlqs-scenario.js';

let cluster: RedisCluster;
const started: ServiceProcess[] = [];

beforeAll(async () => {
  cluster = await startRedisCluster({ replicasPerPrimary: 0 });
  const configDir = scenarioConfigDir();
  for (let i = 0; i < 2; i++) {
    started.push(
      await spawnService(
        { CONFIG_DIR: configDir, BACKEND_TYPE: 'redis', REDIS_TYPE: 'cluster', REDIS_URL: cluster.seeds, ...SCENARIO_ENV },
        { what: 'RLQS cluster e2e' },
      ),
    );
  }
}, 120_000);

afterAll(async () => {
  await Promise.allSettled(started.map((s) => s.proc.stop()));
  await cluster?.stop();
});

it('two meshlimit processes on a Redis Cluster: every window within the bound; shares follow a demand shift within two reporting intervals', async () => {
  const [a, b] = started;
  const r = await runShift('cluster', (i) => [i % 2 === 0 ? a!.grpcAddress : b!.grpcAddress]);
  expect(r.windows.length).toBeGreaterThanOrEqual(2);
  for (const w of r.windows) {
    expect(w.admitted).toBeLessThanOrEqual(LIMIT + OVERSHOOT);
    expect(w.admitted).toBeGreaterThanOrEqual(LIMIT / 2);
  }
  expect(r.after[1]).toBeGreaterThan(r.before[1]!);
  expect(r.after[0]).toBeLessThan(r.before[0]!);
  expect(r.before[0]).toBe(Math.max(...r.before));
  // Both processes answered from the store, never from the failure policy.
  for (const s of started) {
    const text = await (await fetch(`${s.httpUrl}/metrics`)).text();
    expect(text).toMatch(/meshlimit_rlqs_reassignment_duration_seconds_count\{outcome="store"\} [1-9]/);
    expect(text).toMatch(/meshlimit_rlqs_reassignment_duration_seconds_count\{outcome="failure_policy"\} 0\n/);
  }
}, 60_000);
