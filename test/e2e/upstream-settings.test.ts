import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createMetricsListener } from '../../src/server/http/metrics-listener.js';
import { spawnTracked, type TrackedChild } from '../support/child.js';
import { startRedis, type RedisInstance } from '../support/redis.js';
import { bootService, eventually, type BootedService } from '../support/service.js';
import { XdsTestServer } from '../support/xds-server.js';

/**
 * envoyproxy/ratelimit's settings that meshlimit now reads with upstream's meaning, through the
 * booted service; and the process as a user starts it (`tsx src/main.ts`): the one line that
 * lists the upstream variables accepted and not used, and a refused one stopping start-up.
 */

const ROOT = path.resolve(import.meta.dirname, '../..');
const T = 1_800_000_000_000;
let svc: BootedService | undefined;
let redis: RedisInstance | undefined;
let xds: XdsTestServer | undefined;
const children: TrackedChild[] = [];
afterEach(async () => {
  await svc?.close();
  svc = undefined;
  await redis?.stop();
  redis = undefined;
  await xds?.stop();
  xds = undefined;
  for (const c of children.splice(0)) await c.stop();
});

const health = async (s: BootedService) => (await fetch(`${s.httpUrl}/healthcheck`)).status;
const hit = (s: BootedService, domain: string, key = 'k') =>
  s.client.shouldRateLimit({ domain, descriptors: [{ entries: [{ key, value: 'v' }] }] });

describe('RUNTIME_IGNOREDOTFILES', () => {
  const files = {
    'visible.yaml': 'domain: seen\ndescriptors:\n  - key: k\n    rate_limit: { unit: hour, requests_per_unit: 1 }\n',
    '.hidden.yaml': 'domain: hidden\ndescriptors:\n  - key: k\n    rate_limit: { unit: hour, requests_per_unit: 1 }\n',
  };

  it('true (the default here): a file whose name starts with . is not loaded', async () => {
    svc = await bootService({ files, now: () => T });
    expect(svc.handle.store.current().domainNames).toEqual(['seen']);
  });

  it("false (upstream's default): it is, and reloads see it; Kubernetes' .. entries never are", async () => {
    svc = await bootService({ files, env: { RUNTIME_IGNOREDOTFILES: 'false' }, now: () => T });
    const s = svc;
    expect([...s.handle.store.current().domainNames].sort()).toEqual(['hidden', 'seen']);
    expect((await hit(s, 'hidden')).overallCode).toBe('OK');
    expect((await hit(s, 'hidden')).overallCode).toBe('OVER_LIMIT');
    s.writeConfig('..2026_12_06.yaml', 'domain: internal\ndescriptors: []\n');
    s.writeConfig('.more.yaml', 'domain: more\ndescriptors: []\n');
    await eventually(async () => s.handle.store.current().domainNames.includes('more'));
    expect(s.handle.store.current().domainNames).not.toContain('internal');
  });
});

describe('STOP_CACHE_KEY_INCREMENT_WHEN_OVERLIMIT', () => {
  const rule = (limit: number) => `domain: a\ndescriptors:\n  - key: k\n    rate_limit: { unit: hour, requests_per_unit: ${limit} }\n`;
  // Three requests against a limit of 1; then the limit raised to 5 (the counter survives a
  // reload) shows how far the count went: what remains is 5 minus what the three requests charged.
  const remainingAfterThree = async (env: Record<string, string>) => {
    svc = await bootService({ files: { 'a.yaml': rule(1) }, env, now: () => T });
    const s = svc;
    const codes = [];
    for (let i = 0; i < 3; i++) codes.push((await hit(s, 'a')).overallCode);
    expect(codes).toEqual(['OK', 'OVER_LIMIT', 'OVER_LIMIT']);
    s.writeConfig('a.yaml', rule(5));
    const read = async () =>
      (await s.client.shouldRateLimit({ domain: 'a', descriptors: [{ entries: [{ key: 'k', value: 'v' }], hitsAddend: 0 }] })).statuses[0]!;
    await eventually(async () => (await read()).currentLimit?.requestsPerUnit === 5);
    const remaining = (await read()).limitRemaining;
    await s.close();
    svc = undefined;
    return remaining;
  };

  it('true: denied requests are not counted (meshlimit default); false: they are (upstream default)', async () => {
    expect(await remainingAfterThree({ STOP_CACHE_KEY_INCREMENT_WHEN_OVERLIMIT: 'true' })).toBe(4);
    expect(await remainingAfterThree({ STOP_CACHE_KEY_INCREMENT_WHEN_OVERLIMIT: 'false' })).toBe(2);
  });
});

describe('HEALTHY_WITH_AT_LEAST_ONE_CONFIG_LOADED', () => {
  const xdsEnv = (server: XdsTestServer, extra: Record<string, string>) => ({
    CONFIG_TYPE: 'GRPC_XDS_SOTW',
    CONFIG_GRPC_XDS_SERVER_URL: `127.0.0.1:${server.port}`,
    CONFIG_GRPC_XDS_NODE_ID: 'envoy-ratelimit',
    CONFIG_GRPC_XDS_SERVER_CONNECT_RETRY_INTERVAL: '100ms',
    FORCE_START_WITHOUT_INITIAL_CONFIG: 'true',
    ...extra,
  });
  const config = {
    config: { name: 'l', domain: 'edge', descriptors: [{ key: 'k', rate_limit: { unit: 'HOUR', requests_per_unit: 1 } }] },
  };

  it('with FORCE_START_WITHOUT_INITIAL_CONFIG: answers from the empty config but is not healthy until a config arrives', async () => {
    xds = await XdsTestServer.start();
    svc = await bootService({ env: xdsEnv(xds, { HEALTHY_WITH_AT_LEAST_ONE_CONFIG_LOADED: 'true' }), now: () => T });
    const s = svc;
    await xds.waitForRequest((r) => r.responseNonce === '');
    expect(await health(s)).toBe(500);
    expect(await s.client.checkHealth('')).toBe('NOT_SERVING');
    expect((await hit(s, 'edge')).overallCode).toBe('OK');
    xds.setSnapshot('1', [config]);
    await eventually(async () => (await health(s)) === 200);
    expect(await s.client.checkHealth('')).toBe('SERVING');
  });

  it('without it, forced to start means healthy at once', async () => {
    xds = await XdsTestServer.start();
    svc = await bootService({ env: xdsEnv(xds, {}), now: () => T });
    const s = svc;
    await eventually(async () => (await health(s)) === 200);
  });
});

describe('REDIS_HEALTH_CHECK_ACTIVE_CONNECTION', () => {
  const files = { 'a.yaml': 'domain: a\ndescriptors:\n  - key: k\n    rate_limit: { unit: hour, requests_per_unit: 1 }\n' };

  it.each([
    { flag: 'true', whileDown: 500 },
    { flag: 'false', whileDown: 200 },
  ])('=$flag with FAILURE_POLICY=allow: health while Redis is down is $whileDown', async ({ flag, whileDown }) => {
    redis = await startRedis();
    svc = await bootService({
      files,
      env: { BACKEND_TYPE: 'redis', REDIS_URL: redis.url, FAILURE_POLICY: 'allow', REDIS_HEALTH_CHECK_ACTIVE_CONNECTION: flag },
    });
    const s = svc;
    await eventually(async () => (await health(s)) === 200);
    await redis.kill();
    await eventually(async () => !s.handle.counterStore.isReady(), 10_000);
    await eventually(async () => (await health(s)) === whileDown, 5000);
    // allow keeps answering either way: only readiness follows the connection.
    expect((await hit(s, 'a')).overallCode).toBe('OK');
  });
});

describe('NEAR_LIMIT_RATIO', () => {
  it('counts the hits admitted past the ratio of their limit in meshlimit_near_limit_hits_total', async () => {
    svc = await bootService({
      files: { 'a.yaml': 'domain: a\ndescriptors:\n  - key: k\n    rate_limit: { unit: hour, requests_per_unit: 4 }\n' },
      env: { NEAR_LIMIT_RATIO: '0.5' },
      now: () => T,
    });
    const codes = [];
    for (let i = 0; i < 5; i++) codes.push((await hit(svc, 'a')).overallCode);
    expect(codes).toEqual(['OK', 'OK', 'OK', 'OK', 'OVER_LIMIT']);
    // threshold floor(4 x 0.5) = 2: the third and fourth hits were past it; the denied one is not counted.
    const text = await (await fetch(`${svc.httpUrl}/metrics`)).text();
    expect(text).toMatch(/^meshlimit_near_limit_hits_total\{domain="a",rule="[^"]+"\} 2$/m);
  });
});

describe('USE_PROMETHEUS', () => {
  it('serves the metrics on PROMETHEUS_ADDR at PROMETHEUS_PATH, and nothing else there; closed with the service', async () => {
    svc = await bootService({
      files: { 'a.yaml': 'domain: a\ndescriptors: []\n' },
      env: { USE_PROMETHEUS: 'true', PROMETHEUS_ADDR: '127.0.0.1:0', PROMETHEUS_PATH: '/stats/prometheus' },
    });
    const s = svc;
    await hit(s, 'a');
    const base = `http://127.0.0.1:${s.handle.metricsPort!}`;
    const res = await fetch(`${base}/stats/prometheus?x=1`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await res.text()).toMatch(/^meshlimit_requests_total\{outcome="ok"\} 1$/m);
    expect((await fetch(`${base}/metrics`)).status).toBe(404);
    expect((await fetch(`${base}/stats/prometheus`, { method: 'POST', body: 'x' })).status).toBe(405);
    // Still on PORT as well.
    expect(await (await fetch(`${s.httpUrl}/metrics`)).text()).toMatch(/^meshlimit_requests_total\{outcome="ok"\} 1$/m);
    await s.close();
    svc = undefined;
    expect(
      await fetch(`${base}/stats/prometheus`).then(
        () => 'answered',
        () => 'refused',
      ),
    ).toBe('refused');
  });

  it('keeps at most its bound of connections open, closing further ones at once', async () => {
    const listener = createMetricsListener('/metrics', { contentType: 'text/plain', render: async () => 'x 1\n' }, 2);
    const port = await listener.listen('127.0.0.1', 0);
    const sockets: Socket[] = [];
    try {
      const open = () =>
        new Promise<Socket>((resolve, reject) => {
          const sock = connect(port, '127.0.0.1', () => resolve(sock)).on('error', reject);
          sockets.push(sock);
        });
      await open();
      await open();
      const third = await open();
      const closed = await new Promise<boolean>((resolve) => {
        third.on('close', () => resolve(true));
        third.write('GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n');
      });
      expect(closed).toBe(true);
      expect(third.bytesRead).toBe(0);
    } finally {
      for (const sock of sockets) sock.destroy();
      await listener.close();
    }
  });

  it('off by default: no metrics port', async () => {
    svc = await bootService({ files: { 'a.yaml': 'domain: a\ndescriptors: []\n' }, env: { PROMETHEUS_ADDR: '127.0.0.1:0' } });
    expect(svc.handle.metricsPort).toBeUndefined();
  });
});

describe('the process (tsx src/main.ts)', () => {
  const run = (env: Record<string, string>): TrackedChild => {
    const c = spawnTracked(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', PORT: '0', GRPC_PORT: '0', HOST: '127.0.0.1', GRPC_HOST: '127.0.0.1', ...env },
    });
    children.push(c);
    return c;
  };

  it('logs the upstream variables it accepts without using in one line, with their reasons', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'meshlimit-upstream-'));
    try {
      writeFileSync(path.join(dir, 'a.yaml'), 'domain: a\ndescriptors: []\n');
      const c = run({
        CONFIG_DIR: dir,
        USE_STATSD: 'false',
        STATSD_PORT: '9125',
        REDIS_POOL_SIZE: '10',
        EXPIRATION_JITTER_MAX_SECONDS: '300',
      });
      await eventually(async () => c.output().includes('meshlimit serving'), 30_000);
      const lines = c.output().split('\n');
      // One line explains them (the start-up settings dump lists them too, as a field).
      const about = lines.filter((l) => l.includes('accepted and not used'));
      expect(about).toHaveLength(1);
      expect(about[0]).toContain('envoyproxy/ratelimit settings accepted and not used: ');
      for (const name of ['USE_STATSD', 'STATSD_PORT', 'REDIS_POOL_SIZE', 'EXPIRATION_JITTER_MAX_SECONDS'])
        expect(about[0]).toContain(name);
      expect(about[0]).toContain('(no statsd or DogStatsD sink: meshlimit serves Prometheus metrics at /metrics on PORT)');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('TRACING_ENABLED=true turns tracing on (OTLP), as OTEL_TRACES_EXPORTER=otlp would', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'meshlimit-upstream-'));
    try {
      writeFileSync(path.join(dir, 'a.yaml'), 'domain: a\ndescriptors: []\n');
      const c = run({ CONFIG_DIR: dir, TRACING_ENABLED: 'true', TRACING_SERVICE_NAME: 'envoy-ratelimit' });
      await eventually(async () => c.output().includes('meshlimit serving'), 30_000);
      expect(c.output()).toMatch(/msg="tracing enabled" exporter=otlp/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a refused setting stops start-up (exit 2) with the setting and what to use instead', async () => {
    const c = run({ REDIS_POOL_ON_EMPTY_BEHAVIOR: 'ERROR' });
    expect(await c.exited).toBe(2);
    expect(c.output()).toContain(
      'meshlimit: setting REDIS_POOL_ON_EMPTY_BEHAVIOR: "ERROR" is refused, as by envoyproxy/ratelimit (only WAIT is supported there); meshlimit has no connection pool: remove the variable',
    );
  });
});
