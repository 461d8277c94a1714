import { describe, expect, it } from 'vitest';
import { loadSettings } from '../../../src/settings/index.js';

/** How messages (logs, /healthcheck, request errors) name a Redis: the setting and its value, never a password. */
describe('the Redis label', () => {
  it('names the setting and the address, with a password in the URL redacted', () => {
    const s = loadSettings({ BACKEND_TYPE: 'redis', REDIS_URL: 'redis://app:s3cret-pw@redis.internal:6380/2' });
    expect(s.redis.label).toBe('Redis at REDIS_URL=redis://app:[REDACTED]@redis.internal:6380/2');
    expect(s.redis.label).not.toContain('s3cret');
  });

  it('says which Redis: a cluster, and the per-second one by its own setting', () => {
    const s = loadSettings({
      BACKEND_TYPE: 'redis',
      REDIS_TYPE: 'cluster',
      REDIS_URL: 'a:7000,b:7001',
      REDIS_PERSECOND: 'true',
      REDIS_PERSECOND_URL: 'ps:6379',
    });
    expect(s.redis.label).toBe('Redis cluster at REDIS_URL=a:7000,b:7001');
    expect(s.redisPerSecond?.label).toBe('Redis at REDIS_PERSECOND_URL=ps:6379');
  });
});
