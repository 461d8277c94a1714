import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startService, type ServiceHandle } from '../../src/app.js';
import { createRlsClient } from '../../src/client/rls-client.js';
import { loadSettings } from '../../src/settings/index.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { spawnTracked } from '../support/child.js';
import { startRedis } from '../support/redis.js';

/**
 * What broke: with BACKEND_TYPE=redis and a Redis that is not there (a closed port, a name that
 * does not resolve), meshlimit logged `meshlimit serving ... backend=redis` and then nothing;
 * `/healthcheck` was 500 with an empty body; every request failed with ioredis' internals
 * ("redis unavailable: Stream isn't writeable and enableOfflineQueue options is false"), naming
 * neither the Redis nor what to check. Now the start-up line and a reminder say which Redis
 * (the setting and its value), what failed and what to check; so do the health body and each
 * request's error, with the library's text only as the detail. REDIS_REQUIRED_AT_START=true exits
 * instead, as envoyproxy/ratelimit does.
 */
const CONFIG = 'domain: r\ndescriptors:\n  - key: k\n    rate_limit: { unit: hour, requests_per_unit: 2 }\n';
let dir: string;
let closedPort: number;
beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'meshlimit-reg-'));
  writeFileSync(path.join(dir, 'r.yaml'), CONFIG);
  // A port a real Redis listened on a moment ago: "wrong port" / "Redis went away" as a user meets it.
  const redis = await startRedis();
  closedPort = redis.port;
  await redis.stop();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const env = (extra: Record<string, string>) => ({
  PORT: '0',
  GRPC_PORT: '0',
  HOST: '127.0.0.1',
  GRPC_HOST: '127.0.0.1',
  CONFIG_DIR: dir,
  BACKEND_TYPE: 'redis',
  REDIS_CONNECT_TIMEOUT_MS: '300',
  ...extra,
});

/** Starts the service with a logger whose JSON lines are kept. */
async function start(extra: Record<string, string>): Promise<{ handle: ServiceHandle; lines: Record<string, unknown>[] }> {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({ level: 'info', format: 'json', destination: { write: (l) => void lines.push(JSON.parse(l)) } });
  const handle = await startService(loadSettings(env(extra)), { logger });
  return { handle, lines };
}

describe('BACKEND_TYPE=redis with no Redis there', () => {
  it('a closed port: the start-up log, /healthcheck and a request all name the Redis, what failed and what to check', async () => {
    const { handle, lines } = await start({ REDIS_URL: `127.0.0.1:${closedPort}` });
    const rls = createRlsClient(`127.0.0.1:${handle.grpcPort}`);
    try {
      // pino's levels: 40 warn, 60 fatal.
      const warned = lines.find((l) => l.level === 40 && typeof l.redis === 'string');
      expect(warned?.msg).toMatch(/^Redis is not connected: serving anyway, not ready/);
      expect(warned?.redis).toBe(
        `Redis at REDIS_URL=127.0.0.1:${closedPort} is not connected: connection refused (connect ECONNREFUSED 127.0.0.1:${closedPort}); ` +
          'check that Redis is running and listening on that host and port, and that REDIS_URL names them',
      );

      const health = await fetch(`http://127.0.0.1:${handle.httpPort}/healthcheck`);
      expect(health.status).toBe(500);
      expect(await health.text()).toBe(warned?.redis);

      const json = await fetch(`http://127.0.0.1:${handle.httpPort}/json`, {
        method: 'POST',
        body: JSON.stringify({ domain: 'r', descriptors: [{ entries: [{ key: 'k', value: 'v' }] }] }),
      });
      expect(json.status).toBe(503);
      const body = (await json.json()) as { code: string; message: string };
      expect(body.code).toBe('ML_ERR_BACKEND_UNAVAILABLE');
      expect(body.message.startsWith(`${String(warned?.redis)} (detail: `)).toBe(true);
      expect(body.message).toMatch(/\(detail: Stream isn't writeable[^)]*\)$/);

      const grpc = await rls
        .shouldRateLimit({ domain: 'r', descriptors: [{ entries: [{ key: 'k', value: 'v' }] }] })
        .catch((e: Error) => e);
      expect(grpc).toBeInstanceOf(Error);
      expect((grpc as Error).message).toContain(`Redis at REDIS_URL=127.0.0.1:${closedPort} is not connected: connection refused`);
    } finally {
      rls.close();
      await handle.close();
    }
  });

  it('a host name that does not resolve (REDIS_URL=nonsense): says so and points at the name and DNS', async () => {
    const { handle } = await start({ REDIS_URL: 'nonsense.invalid' });
    try {
      const health = await fetch(`http://127.0.0.1:${handle.httpPort}/healthcheck`);
      expect(health.status).toBe(500);
      expect(await health.text()).toMatch(
        /^Redis at REDIS_URL=nonsense\.invalid is not connected: the host name does not resolve \(getaddrinfo (ENOTFOUND|EAI_AGAIN) nonsense\.invalid\); check the host name in REDIS_URL and this pod's DNS$/,
      );
    } finally {
      await handle.close();
    }
  });

  it('REDIS_REQUIRED_AT_START=true: the process exits 1 at start, saying which Redis and what to check', async () => {
    const proc = spawnTracked(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      name: 'meshlimit',
      env: { ...process.env, ...env({ REDIS_URL: `127.0.0.1:${closedPort}`, REDIS_REQUIRED_AT_START: 'true', LOG_FORMAT: 'json' }) },
    });
    expect(await proc.exited).toBe(1);
    const fatal = proc
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.level === 60);
    expect(fatal?.code).toBe('ML_ERR_BACKEND_UNAVAILABLE');
    expect(fatal?.error).toBe(
      `Redis at REDIS_URL=127.0.0.1:${closedPort} is not connected: connection refused (connect ECONNREFUSED 127.0.0.1:${closedPort}); ` +
        'check that Redis is running and listening on that host and port, and that REDIS_URL names them. ' +
        'Not starting: REDIS_REQUIRED_AT_START=true and Redis was not connected after REDIS_CONNECT_TIMEOUT_MS=300 ms',
    );
  });
});
