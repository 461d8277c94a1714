import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startService, type ServiceHandle } from '../../src/app.js';
import { createRlsClient } from '../../src/client/rls-client.js';
import { loadSettings } from '../../src/settings/index.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { minuteOp, stackOf } from '../support/backend-stack.js';
import { startRedis, type RedisInstance } from '../support/redis.js';

/**
 * What broke: a request that reached a freshly started meshlimit before its first Redis
 * connection was up failed with "Stream isn't writeable", and the breaker took "not connected
 * yet" for "connection lost" and opened for BREAKER_OPEN_MS: the first ~2 s of every new replica
 * (and the whole of `npm run demo`'s first clicks) were answered by the failure policy, never
 * counted. Found by test/e2e/jwt.test.ts. Now a connection can only be lost once it was up
 * (failures before it count as failures, so a Redis that never comes up still opens the
 * breaker), and the service waits up to REDIS_CONNECT_TIMEOUT_MS for its first connection
 * before it opens its ports.
 */
const CONFIG = 'domain: r\ndescriptors:\n  - key: k\n    rate_limit: { unit: hour, requests_per_unit: 2 }\n';
let redis: RedisInstance;
let dir: string;
beforeAll(async () => {
  redis = await startRedis();
  dir = mkdtempSync(path.join(tmpdir(), 'meshlimit-reg-'));
  writeFileSync(path.join(dir, 'r.yaml'), CONFIG);
});
afterAll(async () => {
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const env = () => ({ PORT: '0', GRPC_PORT: '0', HOST: '127.0.0.1', GRPC_HOST: '127.0.0.1', CONFIG_DIR: dir, LOG_LEVEL: 'fatal' });
const op = minuteOp;

describe('a replica that just started', () => {
  it('counts its very first requests (it served before Redis was connected, and the breaker opened)', async () => {
    const settings = loadSettings({ ...env(), BACKEND_TYPE: 'redis', REDIS_URL: `127.0.0.1:${redis.port}`, FAILURE_POLICY: 'allow' });
    let handle: ServiceHandle | undefined;
    const client = { close: () => undefined } as { close(): void };
    try {
      handle = await startService(settings, { logger: createLogger({ level: 'fatal', format: 'json' }) });
      const rls = createRlsClient(`127.0.0.1:${handle.grpcPort}`);
      client.close = () => rls.close();
      const codes: string[] = [];
      for (let i = 0; i < 3; i++) {
        const r = await rls.shouldRateLimit(
          { domain: 'r', descriptors: [{ entries: [{ key: 'k', value: 'first' }] }] },
          { deadlineMs: 5_000 },
        );
        codes.push(r.overallCode);
      }
      expect(codes).toEqual(['OK', 'OK', 'OVER_LIMIT']);
      const text = await handle.metrics.registry.metrics();
      expect(text).not.toMatch(/meshlimit_breaker_transitions_total\{from="closed",to="open"\} [1-9]/);
    } finally {
      client.close();
      await handle?.close();
    }
  });

  it('a call made before the first connection fails, and does not keep the breaker open once Redis is up', async () => {
    const settings = loadSettings({ ...env(), BACKEND_TYPE: 'redis', REDIS_URL: `127.0.0.1:${redis.port}`, FAILURE_POLICY: 'deny' });
    const transitions: string[] = [];
    const stack = stackOf(settings, { onBreakerTransition: (from, to, reason) => transitions.push(`${from}->${to} (${reason})`) });
    try {
      // Before the connection: unavailable (FAILURE_POLICY=deny answers it as an error), not counted.
      await expect(stack.backend.evaluate([op('{reg}:early')], { chargeOnDeny: false, domain: 'r' })).rejects.toThrow(
        /^Redis at REDIS_URL=127.0.0.1:\d+ is not connected: /,
      );
      const until = Date.now() + 5_000;
      while (!stack.store.isReady() && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
      expect(stack.store.isReady()).toBe(true);
      const r = await stack.backend.evaluate([op('{reg}:early')], { chargeOnDeny: false, domain: 'r' });
      expect(r.degraded).toBeUndefined();
      expect(r.outcomes[0]!.remaining).toBe(4);
      expect(transitions).toEqual([]);
    } finally {
      await stack.backend.close();
    }
  });
});
