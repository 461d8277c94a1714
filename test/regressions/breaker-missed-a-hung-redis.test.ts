import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type RedisInstance } from '../support/redis.js';
import { bootService, metricValue, type BootedService } from '../support/service.js';

/**
 * What broke: during a real outage (Redis stopped, its socket open, nothing answering) the breaker
 * never opened under steady traffic, because it needed failures to outnumber the successes of
 * the last 10 s; every request waited the full command timeout. Now calls that wait
 * BREAKER_SILENCE_MS with no reply at all open it, and later answers come without waiting.
 */
const CONFIG = 'domain: h\ndescriptors:\n  - key: k\n    rate_limit: { unit: hour, requests_per_unit: 1000000 }\n';
const TIMEOUT_MS = 100;
const SILENCE_MS = 250;
let redis: RedisInstance;
let svc: BootedService;
beforeAll(async () => {
  redis = await startRedis();
  svc = await bootService({
    files: { 'h.yaml': CONFIG },
    env: {
      BACKEND_TYPE: 'redis',
      REDIS_URL: `127.0.0.1:${redis.port}`,
      REDIS_COMMAND_TIMEOUT_MS: String(TIMEOUT_MS),
      BREAKER_SILENCE_MS: String(SILENCE_MS),
      BREAKER_OPEN_MS: '60000',
    },
  });
});
afterAll(async () => {
  if (redis !== undefined) process.kill(redis.pid, 'SIGCONT');
  await svc?.close();
  await redis?.stop();
});

const ask = () =>
  svc.client.shouldRateLimit({ domain: 'h', descriptors: [{ entries: [{ key: 'k', value: 'v' }] }] }, { deadlineMs: 5_000 });

describe('a hung Redis under steady traffic after many successes', () => {
  it('opens the breaker within the silence bound, and then answers without waiting for the timeout', async () => {
    for (let i = 0; i < 500; i++) await ask(); // a long run of successes first
    process.kill(redis.pid, 'SIGSTOP');
    const stoppedAt = performance.now();
    let openedAfterMs: number | undefined;
    while (openedAfterMs === undefined && performance.now() - stoppedAt < 5_000) {
      await ask().catch(() => undefined);
      if ((await metricValue(svc.httpUrl, 'meshlimit_breaker_state{state="open"}')) === 1) openedAfterMs = performance.now() - stoppedAt;
    }
    expect(openedAfterMs).toBeDefined();
    // Silence bound, plus the call that notices it (one command timeout), plus scheduling on a busy CI box.
    expect(openedAfterMs!).toBeLessThan(SILENCE_MS + TIMEOUT_MS + 500);
    const t0 = performance.now();
    const err = await ask().catch((e: unknown) => e);
    expect((err as { code: number }).code).toBe(14);
    expect(performance.now() - t0).toBeLessThan(TIMEOUT_MS);
  });
});
