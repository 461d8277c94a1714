import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type RedisInstance } from '../support/redis.js';
import { bootService, type BootedService } from '../support/service.js';

/**
 * 2,000 concurrent gRPC requests on one descriptor limited to 100 per minute, on real Redis with
 * its own clock: exactly 100 are admitted. The burst is started away from a minute boundary (a
 * fixed window that rolls over mid-burst would rightly admit a second 100). Admission control is
 * off (as the long command timeout, it would turn a 2,000-request burst on a 2-core box into
 * overload answers): this measures exactness, test/e2e/overload.test.ts measures shedding.
 */
let redis: RedisInstance;
let svc: BootedService;
beforeAll(async () => {
  redis = await startRedis();
  svc = await bootService({
    files: { 'c.yaml': 'domain: c\ndescriptors:\n  - key: k\n    rate_limit: { unit: minute, requests_per_unit: 100 }\n' },
    env: {
      BACKEND_TYPE: 'redis',
      REDIS_URL: `127.0.0.1:${redis.port}`,
      REDIS_COMMAND_TIMEOUT_MS: '5000',
      ADMISSION_MAX_OUTSTANDING: '0',
      ADMISSION_MAX_EVENT_LOOP_DELAY_MS: '0',
    },
  });
});
afterAll(async () => {
  await svc?.close();
  await redis?.stop();
});

describe('concurrency on real Redis', () => {
  it('admits exactly the limit out of 2,000 concurrent requests', async () => {
    const [seconds] = await redis.client().time();
    const intoMinute = Number(seconds) % 60;
    if (intoMinute > 45) await new Promise((r) => setTimeout(r, (61 - intoMinute) * 1000));
    const calls = Array.from({ length: 2000 }, () =>
      svc.client.shouldRateLimit({ domain: 'c', descriptors: [{ entries: [{ key: 'k', value: 'hot' }] }] }, { deadlineMs: 30_000 }),
    );
    const results = await Promise.all(calls);
    const ok = results.filter((r) => r.overallCode === 'OK').length;
    const over = results.filter((r) => r.overallCode === 'OVER_LIMIT').length;
    expect({ ok, over }).toEqual({ ok: 100, over: 1900 });
  });
});
