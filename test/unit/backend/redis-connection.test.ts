import { describe, expect, it } from 'vitest';
import {
  clusterPlan,
  normalizeRedisType,
  parseAuth,
  parseRedisUrl,
  redisClientOptions,
  sentinelClientOptions,
} from '../../../src/backend/redis/connection.js';
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

  it("accepts 'single', 'cluster' and 'sentinel' in any case (upstream spells them SINGLE, CLUSTER, SENTINEL)", () => {
    expect(normalizeRedisType(undefined)).toBe('single');
    expect(normalizeRedisType('SINGLE')).toBe('single');
    expect(normalizeRedisType('single')).toBe('single');
    expect(normalizeRedisType('CLUSTER')).toBe('cluster');
    expect(normalizeRedisType('Sentinel')).toBe('sentinel');
    expect(() => normalizeRedisType('x')).toThrow(SettingsError);
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
    // A READONLY reply (a demoted primary behind a proxy or DNS name) reconnects, never resends.
    const onError = o.reconnectOnError as (e: Error) => unknown;
    expect(onError(new Error("READONLY You can't write against a read only replica."))).toBe(1);
    expect(onError(new Error('ERR something else'))).toBe(false);
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

describe('REDIS_TYPE=sentinel', () => {
  it("reads 'master-name,host:port,...' (envoyproxy/ratelimit's REDIS_URL) and fails fast like single", () => {
    const o = sentinelClientOptions({ url: 'mymaster,10.0.0.1:26379,[::1]:26380', type: 'sentinel', auth: 'app:pw', sentinelAuth: 'sentinel-secret' });
    expect(o).toMatchObject({
      name: 'mymaster',
      role: 'master',
      sentinels: [
        { host: '10.0.0.1', port: 26379 },
        { host: '::1', port: 26380 },
      ],
      username: 'app',
      password: 'pw',
      sentinelPassword: 'sentinel-secret',
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      commandTimeout: 50,
      failoverDetector: true,
    });
    expect(o.sentinelUsername).toBeUndefined();
    expect(o.host).toBeUndefined();
    expect(o.tls).toBeUndefined();
    expect(o.sentinelTLS).toBeUndefined();
    expect(o.retryStrategy!(10)).toBe(1_000);
    expect(o.sentinelRetryStrategy!(1)).toBe(50);
  });

  it('REDIS_SENTINEL_AUTH user:password, TLS for primary and sentinels, and explicit nodes/master name over the URL', () => {
    const o = sentinelClientOptions({
      url: 'ignored',
      type: 'sentinel',
      nodes: [{ host: 's1', port: 5000 }],
      sentinelMasterName: 'primary-a',
      sentinelAuth: 'watcher:pw:x',
      tls: true,
      tlsOptions: { servername: 'redis.example' },
    });
    expect(o).toMatchObject({
      name: 'primary-a',
      sentinels: [{ host: 's1', port: 5000 }],
      sentinelUsername: 'watcher',
      sentinelPassword: 'pw:x',
      tls: { servername: 'redis.example' },
      enableTLSForSentinelMode: true,
      sentinelTLS: { servername: 'redis.example' },
    });
    expect(o.password).toBeUndefined();
  });

  it.each(['mymaster', ',h:1', 'my master,h:1', 'h:1:2,h:1'])('rejects %j naming REDIS_URL', (url) => {
    expect(() => sentinelClientOptions({ url, type: 'sentinel' })).toThrow(/REDIS_URL/);
  });
});

describe('REDIS_TYPE=cluster', () => {
  it('reads a seed list and builds the master-only, auto-pipelined, never-resending cluster options', () => {
    const plan = clusterPlan({ url: '10.0.0.1:7000,10.0.0.2:7001,redis-2', type: 'cluster', auth: 'secret' });
    expect(plan.startupNodes).toEqual([
      { host: '10.0.0.1', port: 7000 },
      { host: '10.0.0.2', port: 7001 },
      { host: 'redis-2', port: 6379 },
    ]);
    expect(plan.options).toMatchObject({
      scaleReads: 'master',
      // true on purpose: commands for a node whose connection is being opened wait for it
      // (bounded by the command timeout) instead of failing; see clusterPlan.
      enableOfflineQueue: true,
      enableReadyCheck: true,
      enableAutoPipelining: true,
      maxRedirections: 16,
      retryDelayOnMoved: 0,
      retryDelayOnTryAgain: 5,
      retryDelayOnFailover: 0,
      retryDelayOnClusterDown: 0,
      slotsRefreshTimeout: 1_000,
      slotsRefreshInterval: 5_000,
      redisOptions: {
        password: 'secret',
        commandTimeout: 50,
        connectTimeout: 1_000,
        maxRetriesPerRequest: 0,
        autoResendUnfulfilledCommands: false,
        connectionName: 'meshlimit',
      },
    });
    expect(plan.options.redisOptions?.username).toBeUndefined();
    expect(plan.options.redisOptions?.tls).toBeUndefined();
    expect(plan.options.clusterRetryStrategy!(3)).toBe(200);
  });

  it('takes credentials and TLS from rediss:// items, tuning and nodes from options', () => {
    const plan = clusterPlan({
      url: 'rediss://app:pw@h1:7000,rediss://app:pw@h2:7001',
      type: 'cluster',
      commandTimeoutMs: 20,
      clusterRetryDelayOnTryAgainMs: 2,
      clusterMaxRedirections: 4,
      clusterSlotsRefreshIntervalMs: 0,
    });
    expect(plan.options).toMatchObject({ retryDelayOnTryAgain: 2, maxRedirections: 4, redisOptions: { username: 'app', password: 'pw', tls: {}, commandTimeout: 20 } });
    expect(plan.options.slotsRefreshInterval).toBeUndefined();
    expect(clusterPlan({ url: 'x', type: 'cluster', nodes: [{ host: 'n1', port: 1 }] }).startupNodes).toEqual([{ host: 'n1', port: 1 }]);
  });

  it('rejects a database other than 0 and malformed items naming REDIS_URL', () => {
    expect(() => clusterPlan({ url: 'redis://h:7000/2', type: 'cluster' })).toThrow(/only database 0/);
    expect(() => clusterPlan({ url: 'h:7000,', type: 'cluster' })).toThrow(/REDIS_URL/);
    expect(() => clusterPlan({ url: 'h:7000,h:70000', type: 'cluster' })).toThrow(/REDIS_URL/);
  });
});
