import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type RedisInstance } from '../support/redis.js';
import { bootService, type BootedService } from '../support/service.js';

/**
 * What broke: a Redis password holding `:` (`redis://:a%3Ab@host:6379`) reached ioredis as user
 * `a`, password `b`, so every Redis call failed authentication: settings decoded it, the
 * composition root rebuilt `user:password` as the string `a:b`, and the backend split that at the
 * first colon. Now the credentials travel as typed fields from the one parse in settings.
 */
const PASSWORD = 'a:b@c';
const CONFIG = 'domain: wiring\ndescriptors:\n  - key: k\n    rate_limit: { unit: minute, requests_per_unit: 10 }\n';
let redis: RedisInstance;
const booted: BootedService[] = [];

beforeAll(async () => {
  redis = await startRedis({ password: PASSWORD });
});
afterAll(async () => {
  for (const s of booted) await s.close();
  await redis?.stop();
});

async function decideThrough(env: Record<string, string>): Promise<number> {
  const svc = await bootService({ files: { 'wiring.yaml': CONFIG }, env: { BACKEND_TYPE: 'redis', ...env } });
  booted.push(svc);
  const res = await svc.client.shouldRateLimit({
    domain: 'wiring',
    descriptors: [{ entries: [{ key: 'k', value: `v${booted.length}` }] }],
  });
  expect(res.overallCode).toBe('OK');
  return res.statuses[0]!.limitRemaining;
}

describe('a Redis password holding ":" and "@"', () => {
  it('percent-encoded in REDIS_URL', async () => {
    expect(await decideThrough({ REDIS_URL: `redis://:${encodeURIComponent(PASSWORD)}@127.0.0.1:${redis.port}` })).toBe(9);
  });

  it('in REDIS_AUTH, with the user name that a colon requires (default:<password>)', async () => {
    expect(await decideThrough({ REDIS_URL: `127.0.0.1:${redis.port}`, REDIS_AUTH: `default:${PASSWORD}` })).toBe(9);
  });
});
