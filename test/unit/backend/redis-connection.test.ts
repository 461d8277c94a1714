import { describe, expect, it } from 'vitest';
import { normalizeRedisType, parseAuth, parseRedisUrl, redisClientOptions } from '../../../src/backend/redis/connection.js';
import { SettingsError } from '../../../src/errors.js';

describe('REDIS_URL forms', () => {
  it.each([
    ['localhost:6379', { host: 'localhost', port: 6379, tls: false }],
    ['redis.internal', { host: 'redis.internal', port: 6379, tls: false }],
    ['10.0.0.7:7000', { host: '10.0.0.7', port: 7000, tls: false }],
    ['[::1]:6380', { host: '::1', port: 6380, tls: false }],
    ['redis://h:1234', { host: 'h', port: 1234, tls: false }],
    ['redis://:s%40cret@h', { host: 'h', port: 6379, password: 's@cret', tls: false }],
    ['rediss://app:pw@h:6390/2', { host: 'h', port: 6390, username: 'app', password: 'pw', db: 2, tls: true }],
  ])('%s', (url, expected) => {
    expect(parseRedisUrl(url)).toEqual(expected);
  });

  it('a unix socket path with socketType unix', () => {
    expect(parseRedisUrl('/var/run/redis.sock', 'unix')).toEqual({ path: '/var/run/redis.sock', tls: false });
  });

  it.each(['', 'a:b:c', 'h:0', 'h:70000', 'h1:6379,h2:6379', 'redis://h/x'])('rejects %j naming REDIS_URL', (url) => {
    expect(() => parseRedisUrl(url)).toThrow(SettingsError);
    expect(() => parseRedisUrl(url)).toThrow(/REDIS_URL/);
  });

  it('never echoes a password in the error', () => {
    expect(() => parseRedisUrl('redis://u:topsecret@h/x')).toThrow(/\*\*\*@/);
    expect(() => parseRedisUrl('redis://u:topsecret@h/x')).not.toThrow(/topsecret/);
  });
});

describe('REDIS_AUTH and REDIS_TYPE', () => {
  it('splits user:password at the first colon, else it is a password', () => {
    expect(parseAuth('secret')).toEqual({ password: 'secret' });
    expect(parseAuth('app:pa:ss')).toEqual({ username: 'app', password: 'pa:ss' });
  });

  it("accepts 'single' in any case and refuses the rest for now", () => {
    expect(normalizeRedisType(undefined)).toBe('single');
    expect(normalizeRedisType('SINGLE')).toBe('single');
    expect(normalizeRedisType('single')).toBe('single');
    expect(() => normalizeRedisType('cluster')).toThrow(/not supported yet/);
    expect(() => normalizeRedisType('sentinel')).toThrow(SettingsError);
    expect(() => normalizeRedisType('x')).toThrow(/unknown value 'x'/);
  });
});

describe('ioredis options', () => {
  it('fails fast and never resends by default', () => {
    const o = redisClientOptions({ url: 'h:6379' });
    expect(o).toMatchObject({
      host: 'h',
      port: 6379,
      commandTimeout: 50,
      connectTimeout: 1_000,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      enableReadyCheck: true,
      lazyConnect: false,
      connectionName: 'meshlimit',
    });
    expect(o.keyPrefix).toBeUndefined();
    expect(o.tls).toBeUndefined();
    expect([1, 2, 3, 4, 5, 6, 50].map((n) => o.retryStrategy!(n))).toEqual([50, 100, 200, 400, 800, 1_000, 1_000]);
  });

  it('applies timeouts, auth (over URL credentials), TLS and db', () => {
    const o = redisClientOptions({
      url: 'redis://u:urlpw@h:1/3',
      auth: 'app:pw',
      tls: true,
      tlsOptions: { servername: 'redis.example' },
      commandTimeoutMs: 20,
      connectTimeoutMs: 300,
      maxReconnectDelayMs: 200,
      lazyConnect: true,
    });
    expect(o).toMatchObject({ username: 'app', password: 'pw', db: 3, tls: { servername: 'redis.example' }, commandTimeout: 20, connectTimeout: 300, lazyConnect: true });
    expect(o.retryStrategy!(10)).toBe(200);
    expect(redisClientOptions({ url: 'rediss://h' }).tls).toEqual({});
    expect(redisClientOptions({ url: 'redis://u:urlpw@h' })).toMatchObject({ username: 'u', password: 'urlpw' });
    expect(redisClientOptions({ url: '/tmp/r.sock', socketType: 'unix' }).path).toBe('/tmp/r.sock');
  });
});
