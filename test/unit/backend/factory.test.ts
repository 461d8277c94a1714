import { describe, expect, it } from 'vitest';
import { createBackend, MemoryBackend, RedisBackend, RedisClusterBackend } from '../../../src/backend/index.js';

describe('createBackend', () => {
  it('builds a memory backend', async () => {
    const b = createBackend({ type: 'memory', memory: { maxKeys: 10, sweepIntervalMs: 0 } });
    expect(b).toBeInstanceOf(MemoryBackend);
    expect(b.kind).toBe('memory');
    await b.close();
  });

  it("builds a standalone Redis backend for type 'single' (the default) without connecting when lazy", async () => {
    for (const type of ['single', undefined] as const) {
      const b = createBackend({ type: 'redis', redis: { nodes: [{ host: '127.0.0.1', port: 1 }], type, lazyConnect: true } });
      expect(b).toBeInstanceOf(RedisBackend);
      expect(b.kind).toBe('redis');
      expect(b.isReady()).toBe(false);
      await b.close();
    }
  });

  it("builds a Sentinel-backed RedisBackend for 'sentinel' and a RedisClusterBackend for 'cluster', lazily", async () => {
    const s = createBackend({
      type: 'redis',
      redis: { nodes: [{ host: '127.0.0.1', port: 1 }], sentinelMasterName: 'mymaster', type: 'sentinel', lazyConnect: true },
    });
    expect(s).toBeInstanceOf(RedisBackend);
    expect((s as RedisBackend).redisType).toBe('sentinel');
    expect(s.isReady()).toBe(false);
    await s.close();
    const c = createBackend({
      type: 'redis',
      redis: {
        nodes: [
          { host: '127.0.0.1', port: 1 },
          { host: '127.0.0.1', port: 2 },
        ],
        type: 'cluster',
        lazyConnect: true,
      },
    });
    expect(c).toBeInstanceOf(RedisClusterBackend);
    expect(c.kind).toBe('redis');
    expect(c.isReady()).toBe(false);
    await c.close();
  });

  it('refuses missing options and unknown backend types', () => {
    expect(() => createBackend({ type: 'redis' })).toThrow(/needs a 'redis' options object/);
    expect(() => createBackend({ type: 'disk' as 'memory' })).toThrow(/unknown backend type 'disk'/);
  });
});
