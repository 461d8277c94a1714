import { describe, expect, it } from 'vitest';
import { createBackend, MemoryBackend, RedisBackend, RedisClusterBackend } from '../../../src/backend/index.js';
import { SettingsError } from '../../../src/errors.js';

describe('createBackend', () => {
  it('builds a memory backend', async () => {
    const b = createBackend({ type: 'memory', memory: { maxKeys: 10, sweepIntervalMs: 0 } });
    expect(b).toBeInstanceOf(MemoryBackend);
    expect(b.kind).toBe('memory');
    await b.close();
  });

  it("builds a standalone Redis backend for type 'single' (upstream spelling, any case) without connecting when lazy", async () => {
    for (const type of ['single', 'SINGLE', undefined]) {
      const b = createBackend({ type: 'redis', redis: { url: '127.0.0.1:1', type, lazyConnect: true } });
      expect(b).toBeInstanceOf(RedisBackend);
      expect(b.kind).toBe('redis');
      expect(b.isReady()).toBe(false);
      await b.close();
    }
  });

  it("builds a Sentinel-backed RedisBackend for 'sentinel' and a RedisClusterBackend for 'cluster' (any case), lazily", async () => {
    const s = createBackend({ type: 'redis', redis: { url: 'mymaster,127.0.0.1:1', type: 'SENTINEL', lazyConnect: true } });
    expect(s).toBeInstanceOf(RedisBackend);
    expect((s as RedisBackend).redisType).toBe('sentinel');
    expect(s.isReady()).toBe(false);
    await s.close();
    const c = createBackend({ type: 'redis', redis: { url: '127.0.0.1:1,127.0.0.1:2', type: 'Cluster', lazyConnect: true } });
    expect(c).toBeInstanceOf(RedisClusterBackend);
    expect(c.kind).toBe('redis');
    expect(c.isReady()).toBe(false);
    await c.close();
  });

  it('refuses unknown Redis types and missing options', () => {
    expect(() => createBackend({ type: 'redis', redis: { url: 'h:1', type: 'memcache', lazyConnect: true } })).toThrow(SettingsError);
    expect(() => createBackend({ type: 'redis' })).toThrow(/needs a 'redis' options object/);
    expect(() => createBackend({ type: 'disk' as 'memory' })).toThrow(/unknown backend type 'disk'/);
  });
});
