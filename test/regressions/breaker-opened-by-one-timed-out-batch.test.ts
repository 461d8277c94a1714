import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type RedisInstance } from '../support/redis.js';
import { bootService, eventually, metricValue, type BootedService } from '../support/service.js';

/**
 * What broke: every request of a timed-out batch counted as one breaker failure, so one call to
 * a healthy but momentarily stalled Redis (a busy machine) opened the breaker for 2 s: 64
 * requests of one batch were 64 failures. Now a timeout is not a failure unless Redis has gone
 * silent (no reply at all, on time or late, for BREAKER_SILENCE_MS); the stalled call's late
 * reply proves it alive.
 */
const CONFIG = 'domain: r\ndescriptors:\n  - key: k\n    rate_limit: { unit: hour, requests_per_unit: 1000000 }\n';
let redis: RedisInstance;
let svc: BootedService;
beforeAll(async () => {
  redis = await startRedis();
  svc = await bootService({
    files: { 'r.yaml': CONFIG },
    env: { BACKEND_TYPE: 'redis', REDIS_URL: `127.0.0.1:${redis.port}`, REDIS_COMMAND_TIMEOUT_MS: '50', BREAKER_SILENCE_MS: '500' },
  });
});
afterAll(async () => {
  await svc?.close();
  await redis?.stop();
});

const ask = (value: string) =>
  svc.client.shouldRateLimit({ domain: 'r', descriptors: [{ entries: [{ key: 'k', value }] }] }, { deadlineMs: 5_000 });

describe('a batch of requests that timed out on a stalled but live Redis', () => {
  it('fails those requests (UNAVAILABLE) and leaves the breaker closed', async () => {
    await ask('warm');
    await redis.pause(150); // one stall: longer than the command timeout, shorter than the silence bound
    const results = await Promise.allSettled(Array.from({ length: 64 }, (_, i) => ask(`v${i}`)));
    expect(results.filter((r) => r.status === 'rejected').length).toBeGreaterThan(0);
    await eventually(async () => (await ask('after').catch(() => undefined))?.overallCode === 'OK', 5_000, 50);
    expect(await metricValue(svc.httpUrl, 'meshlimit_breaker_transitions_total{from="closed",to="open"}')).toBeNaN();
    expect(await metricValue(svc.httpUrl, 'meshlimit_breaker_state{state="closed"}')).toBe(1);
  });
});
