import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type RedisInstance } from '../support/redis.js';
import { bootService, type BootedService } from '../support/service.js';

/**
 * What broke: `REDIS_URL=[::1]:6379` passed validation, then start-up failed with
 * `setting REDIS_URL: must be 'host:port' ... (got '::1:6379')`: settings parsed the URL, the
 * composition root rebuilt `host:port` without brackets, and the backend parsed that again.
 * Now settings parse REDIS_URL once and the backend takes the typed address.
 */
const CONFIG = 'domain: wiring\ndescriptors:\n  - key: k\n    rate_limit: { unit: minute, requests_per_unit: 10 }\n';
let redis: RedisInstance;
let svc: BootedService | undefined;

beforeAll(async () => {
  redis = await startRedis({ args: ['--bind', '127.0.0.1', '::1'] });
});
afterAll(async () => {
  await svc?.close();
  await redis?.stop();
});

describe('REDIS_URL with an IPv6 literal', () => {
  it('[::1]:PORT connects and answers a decision counted in that Redis', async () => {
    svc = await bootService({ files: { 'wiring.yaml': CONFIG }, env: { BACKEND_TYPE: 'redis', REDIS_URL: `[::1]:${redis.port}` } });
    const res = await svc.client.shouldRateLimit({ domain: 'wiring', descriptors: [{ entries: [{ key: 'k', value: 'v' }] }] });
    expect(res.overallCode).toBe('OK');
    expect(res.statuses[0]!.limitRemaining).toBe(9);
    expect(await redis.client().dbsize()).toBe(1);
  });
});
