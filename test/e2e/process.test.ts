import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRlsClient } from '../../src/client/rls-client.js';
import { spawnTracked, type TrackedChild } from '../support/child.js';
import { getFreePort } from '../support/ports.js';
import { startRedis, type RedisInstance } from '../support/redis.js';
import { eventually } from '../support/service.js';

/**
 * The service as a user runs it: `npm start` builds to dist/ and runs `node dist/main.js` with
 * the example config. Here: build once, then start real processes with environment settings.
 */
const ROOT = path.resolve(import.meta.dirname, '../..');
const children = new Set<TrackedChild>();
let redis: RedisInstance;

beforeAll(async () => {
  const build = spawnSync('npm', ['run', 'build'], { cwd: ROOT, encoding: 'utf8' });
  expect(build.status, build.stderr + build.stdout).toBe(0);
  redis = await startRedis();
}, 120_000);
afterAll(async () => {
  for (const c of children) c.child.kill('SIGKILL');
  await redis?.stop();
});

type Running = TrackedChild;

function run(env: Record<string, string>, args = ['dist/main.js']): Running {
  const r = spawnTracked(process.execPath, args, { cwd: ROOT, env: { PATH: process.env.PATH ?? '', ...env } });
  children.add(r);
  void r.exited.then(() => children.delete(r));
  return r;
}

async function waitFor(r: Running, text: string, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!r.output().includes(text)) {
    if (Date.now() > end || r.child.exitCode !== null) throw new Error(`no "${text}" in output:\n${r.output()}`);
    await new Promise((res) => setTimeout(res, 50));
  }
}

describe.each([
  { backend: 'memory', env: (): Record<string, string> => ({}) },
  { backend: 'redis', env: (): Record<string, string> => ({ BACKEND_TYPE: 'redis', REDIS_URL: `127.0.0.1:${redis.port}` }) },
])('node dist/main.js with the example config ($backend)', ({ env }) => {
  it('serves gRPC and HTTP, enforces the example limits, and exits 0 on SIGTERM', async () => {
    const [http, grpcPort] = [await getFreePort(), await getFreePort()];
    const r = run({ PORT: String(http), GRPC_PORT: String(grpcPort), HOST: '127.0.0.1', GRPC_HOST: '127.0.0.1', ...env() });
    await waitFor(r, 'meshlimit serving');
    // Ready (200 OK) once the backend is connected, as a Kubernetes readiness probe would wait.
    await eventually(async () => (await fetch(`http://127.0.0.1:${http}/healthcheck`)).status === 200, 10_000, 50);
    expect(await (await fetch(`http://127.0.0.1:${http}/healthcheck`)).text()).toBe('OK');
    const client = createRlsClient(`127.0.0.1:${grpcPort}`);
    try {
      // config/gateway.yaml blocks 203.0.113.7 outright (requests_per_unit: 0) and exempts /healthz
      const res = await client.shouldRateLimit({
        domain: 'edge',
        descriptors: [{ entries: [{ key: 'remote_address', value: '203.0.113.7' }] }, { entries: [{ key: 'path', value: '/healthz' }] }],
      });
      expect(res.overallCode).toBe('OVER_LIMIT');
      expect(res.statuses.map((s) => s.code)).toEqual(['OVER_LIMIT', 'OK']);
      expect(res.statuses[1]!.limitRemaining).toBe(4294967295);
    } finally {
      client.close();
    }
    r.child.kill('SIGTERM');
    expect(await r.exited).toBe(0);
    expect(r.output()).toContain('meshlimit stopped');
  });
});

describe('WORKERS=2 (Node cluster) on Redis', () => {
  // Regression: this test used the example config's trial-* limit (10 per second, fixed window),
  // so a burst that crossed a second boundary admitted 11 and failed CI. A token bucket refilled at
  // 10 per hour gives back one token every 6 minutes, so a burst of 12 admits exactly 10 whenever
  // it runs and however the workers share it.
  it('serves from two processes on the same ports with one shared count and pod-wide metrics', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'meshlimit-workers-'));
    writeFileSync(
      path.join(dir, 'workers.yaml'),
      'domain: workers\ndescriptors:\n  - key: tenant\n    rate_limit: { algorithm: token_bucket, unit: hour, requests_per_unit: 10 }\n',
    );
    const [http, grpcPort] = [await getFreePort(), await getFreePort()];
    const r = run({
      CONFIG_DIR: dir,
      PORT: String(http),
      GRPC_PORT: String(grpcPort),
      HOST: '127.0.0.1',
      GRPC_HOST: '127.0.0.1',
      WORKERS: '2',
      BACKEND_TYPE: 'redis',
      REDIS_URL: `127.0.0.1:${redis.port}`,
    });
    // Separate connections get spread over the workers by the primary; the limit is shared.
    const clients: ReturnType<typeof createRlsClient>[] = [];
    try {
      await eventually(async () => (r.output().match(/meshlimit serving/g) ?? []).length === 2, 15_000, 50);
      await eventually(
        async () => (await fetch(`http://127.0.0.1:${http}/healthcheck`).catch(() => undefined))?.status === 200,
        10_000,
        50,
      );
      for (let i = 0; i < 6; i++)
        clients.push(createRlsClient(`127.0.0.1:${grpcPort}`, { channelOptions: { 'grpc.use_local_subchannel_pool': 1 } }));
      const codes: string[] = [];
      for (let i = 0; i < 12; i++) {
        const res = await clients[i % clients.length]!.shouldRateLimit({
          domain: 'workers',
          descriptors: [{ entries: [{ key: 'tenant', value: 'acme' }] }],
        });
        codes.push(res.overallCode);
      }
      expect(codes).toEqual([...Array<string>(10).fill('OK'), 'OVER_LIMIT', 'OVER_LIMIT']);
      const text = await (await fetch(`http://127.0.0.1:${http}/metrics`)).text();
      const total = (code: string) => Number(new RegExp(`^meshlimit_requests_total\\{outcome="${code}"\\} (\\d+)$`, 'm').exec(text)?.[1]);
      expect(total('ok')).toBe(10);
      expect(total('over_limit')).toBe(2);
    } finally {
      for (const c of clients) c.close();
      rmSync(dir, { recursive: true, force: true });
    }
    r.child.kill('SIGTERM');
    expect(await r.exited).toBe(0);
  });
});

describe('start-up errors name what is wrong', () => {
  it('a bad setting stops start-up with exit code 2 and names the variable', async () => {
    const r = run({ GRPC_PORT: 'eighty', LOG_FORMAT: 'xml' });
    expect(await r.exited).toBe(2);
    expect(r.output()).toContain('GRPC_PORT');
    expect(r.output()).toContain('LOG_FORMAT');
  });

  it('a broken config directory stops start-up with exit code 1 and names the file and field', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'meshlimit-bad-'));
    try {
      writeFileSync(
        path.join(dir, 'bad.yaml'),
        'domain: x\ndescriptors:\n  - key: k\n    rate_limit: { unit: fortnight, requests_per_unit: 1 }\n',
      );
      const r = run({ CONFIG_DIR: dir, PORT: '0', GRPC_PORT: '0' });
      expect(await r.exited).toBe(1);
      expect(r.output()).toContain(path.join(dir, 'bad.yaml'));
      expect(r.output()).toContain('descriptors[0].rate_limit.unit');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('BACKEND_TYPE=memcache (an upstream value we do not support) is rejected naming the setting', async () => {
    const r = run({ BACKEND_TYPE: 'memcache' });
    expect(await r.exited).toBe(2);
    expect(r.output()).toContain('BACKEND_TYPE');
  });
});

describe('meshlimit check-config', () => {
  it('accepts the example config and rejects a broken one', async () => {
    const ok = spawnSync(process.execPath, ['bin/meshlimit.js', 'check-config', 'config'], { cwd: ROOT, encoding: 'utf8' });
    expect(ok.status, ok.stdout + ok.stderr).toBe(0);
    const bad = spawnSync(process.execPath, ['bin/meshlimit.js', 'check-config', 'test/fixtures/config/bad_unit'], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    expect(bad.status).toBe(1);
    expect(bad.stdout + bad.stderr).toContain('rate_limit.unit');
  });
});
