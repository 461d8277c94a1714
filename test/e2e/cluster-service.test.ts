import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRlsClient, type RlsClient } from '../../src/client/rls-client.js';
import type { TrackedChild } from '../support/child.js';
import { startRedisCluster, type RedisCluster } from '../support/redis-cluster.js';
import { spawnService } from '../support/service-process.js';
import { eventually } from '../support/service.js';

/**
 * meshlimit processes sharing a real Redis Cluster (3 primaries x 1 replica), as a user deploys
 * them: global accuracy across replicas, and a primary killed mid-load.
 */
const CONFIG = `
domain: mesh
failure_mode: deny
descriptors:
  - key: tenant
    rate_limit: { unit: minute, requests_per_unit: 200 }
  - key: steady
    rate_limit: { unit: hour, requests_per_unit: 1000000 }
`;
const OPEN_MS = 1000;

interface Proc {
  process: TrackedChild;
  client: RlsClient;
  httpPort: number;
}

let cluster: RedisCluster;
let configDir: string;
const procs: Proc[] = [];

async function startProcess(env: Record<string, string>): Promise<Proc> {
  const svc = await spawnService({
    CONFIG_DIR: configDir,
    BACKEND_TYPE: 'redis',
    REDIS_TYPE: 'cluster',
    REDIS_URL: cluster.seeds,
    REDIS_COMMAND_TIMEOUT_MS: '1000',
    BREAKER_OPEN_MS: String(OPEN_MS),
    ...env,
  });
  return { process: svc.proc, client: createRlsClient(svc.grpcAddress), httpPort: svc.httpPort };
}

beforeAll(async () => {
  configDir = mkdtempSync(path.join(tmpdir(), 'meshlimit-cluster-e2e-'));
  writeFileSync(path.join(configDir, 'mesh.yaml'), CONFIG);
  cluster = await startRedisCluster();
  // A burst of 4,000 concurrent calls on a 2-core box queues for seconds: this measures accuracy,
  // not latency or shedding, so these processes get a generous Redis timeout and no admission bounds.
  for (let i = 0; i < 4; i++) {
    procs.push(
      await startProcess({ REDIS_COMMAND_TIMEOUT_MS: '20000', ADMISSION_MAX_OUTSTANDING: '0', ADMISSION_MAX_EVENT_LOOP_DELAY_MS: '0' }),
    );
  }
}, 120_000);

afterAll(async () => {
  for (const p of procs) {
    p.client.close();
    p.process.child.kill('SIGKILL');
  }
  await cluster?.stop();
  rmSync(configDir, { recursive: true, force: true });
});

describe('four meshlimit processes on one Redis Cluster', () => {
  it('admit exactly 200 of 4,000 concurrent requests on one descriptor limited to 200 per minute', async () => {
    // Stay clear of a minute boundary: a fixed window that rolls over mid-burst rightly admits more.
    const [seconds] = await cluster.client().time();
    const intoMinute = Number(seconds) % 60;
    if (intoMinute > 40) await new Promise((r) => setTimeout(r, (61 - intoMinute) * 1000));
    const calls = Array.from({ length: 4000 }, (_, i) =>
      procs[i % 4]!.client.shouldRateLimit(
        { domain: 'mesh', descriptors: [{ entries: [{ key: 'tenant', value: 'acme' }] }] },
        { deadlineMs: 30_000 },
      ),
    );
    const results = await Promise.all(calls);
    const ok = results.filter((r) => r.overallCode === 'OK').length;
    expect({ ok, over: results.length - ok }).toEqual({ ok: 200, over: 3800 });
  }, 60_000);

  it('keep answering under the policy while a primary fails over, then answer exactly again', async () => {
    const p = await startProcess({});
    procs.push(p);
    const key = 'steady';
    // Find the primary that owns this descriptor's slot by asking Redis where the counter key is.
    await p.client.shouldRateLimit({ domain: 'mesh', descriptors: [{ entries: [{ key, value: 'load' }] }] });
    const counterKeys: string[] = [];
    for (const node of cluster.primaries()) counterKeys.push(...((await cluster.command(node.port, 'KEYS', '*fw:hour:1')) as string[]));
    expect(counterKeys).toHaveLength(1);
    const victim = await cluster.primaryForKey(counterKeys[0]!);

    const outcomes: { t: number; ok: boolean; code?: number }[] = [];
    let stop = false;
    const load = (async () => {
      while (!stop) {
        const t = Date.now();
        try {
          const r = await p.client.shouldRateLimit(
            { domain: 'mesh', descriptors: [{ entries: [{ key, value: 'load' }] }] },
            { deadlineMs: 5000 },
          );
          outcomes.push({ t, ok: r.overallCode === 'OK' });
        } catch (err) {
          outcomes.push({ t, ok: false, code: (err as { code: number }).code });
        }
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    await new Promise((r) => setTimeout(r, 300));
    await cluster.killNode(victim.port);
    const failedOverAt = await (async () => {
      await cluster.waitForFailover(victim.port, 20_000);
      return Date.now();
    })();
    // Bounded: keep the load going until answers are exact again, at most 15 s after failover.
    await eventually(async () => outcomes.length > 0 && outcomes.at(-1)!.ok && outcomes.at(-1)!.t > failedOverAt, 15_000, 50);
    await new Promise((r) => setTimeout(r, 300));
    stop = true;
    await load;

    const failures = outcomes.filter((o) => !o.ok);
    // Under `deny` every failure is UNAVAILABLE (never INTERNAL or OK with code UNKNOWN).
    expect(new Set(failures.map((f) => f.code))).toEqual(new Set(failures.length > 0 ? [14] : []));
    // After the failover completed, requests fail for at most the breaker's open duration (plus
    // the time a probe and ioredis' slot refresh take).
    const lastFailure = failures.at(-1)?.t ?? failedOverAt;
    expect(lastFailure - failedOverAt).toBeLessThan(OPEN_MS + 2000);
    // And the answers after that are exact Redis-backed ones again.
    const r = await p.client.shouldRateLimit({
      domain: 'mesh',
      descriptors: [{ entries: [{ key: 'tenant', value: `after-${Date.now()}` }] }],
    });
    expect(r.statuses[0]!.limitRemaining).toBe(199);
    expect(r.dynamicMetadata).toBeNull();
    console.log(
      `failover: ${failures.length} failed of ${outcomes.length} requests; last failure ${lastFailure - failedOverAt} ms after failover completed`,
    );
  }, 90_000);
});
