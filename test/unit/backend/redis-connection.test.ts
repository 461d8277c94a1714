import { describe, expect, it } from 'vitest';
import { clusterPlan, redisClientOptions, sentinelClientOptions } from '../../../src/backend/redis/connection.js';

/*
 * The backend takes typed fields (settings parse REDIS_URL and REDIS_AUTH once, see
 * test/unit/settings); these tests pin how those fields become ioredis options.
 */
const H = [{ host: 'h', port: 6379 }];

describe('ioredis options', () => {
  it('fails fast and never resends by default', () => {
    const o = redisClientOptions({ nodes: H });
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

  it('applies timeouts, auth, TLS and db', () => {
    const o = redisClientOptions({
      nodes: [{ host: 'h', port: 1 }],
      db: 3,
      auth: { username: 'app', password: 'pw' },
      tls: true,
      tlsOptions: { servername: 'redis.example' },
      commandTimeoutMs: 20,
      connectTimeoutMs: 300,
      maxReconnectDelayMs: 200,
      lazyConnect: true,
    });
    expect(o).toMatchObject({
      username: 'app',
      password: 'pw',
      db: 3,
      tls: { servername: 'redis.example' },
      commandTimeout: 20,
      connectTimeout: 300,
      lazyConnect: true,
    });
    expect(o.retryStrategy!(10)).toBe(200);
    expect(redisClientOptions({ nodes: H, tls: true }).tls).toEqual({});
    expect(redisClientOptions({ nodes: H, auth: { username: undefined, password: 'a:b@c' } })).toMatchObject({ password: 'a:b@c' });
    expect(redisClientOptions({ nodes: H, auth: { username: undefined, password: 'a:b@c' } }).username).toBeUndefined();
    expect(redisClientOptions({ path: '/tmp/r.sock' }).path).toBe('/tmp/r.sock');
    expect(redisClientOptions({ nodes: [{ host: '::1', port: 7000 }] })).toMatchObject({ host: '::1', port: 7000 });
  });
});

describe('REDIS_TYPE=sentinel', () => {
  it('asks the sentinels for the named primary and fails fast like single', () => {
    const o = sentinelClientOptions({
      type: 'sentinel',
      sentinelMasterName: 'mymaster',
      nodes: [
        { host: '10.0.0.1', port: 26379 },
        { host: '::1', port: 26380 },
      ],
      auth: { username: 'app', password: 'pw' },
      sentinelAuth: { username: undefined, password: 'sentinel-secret' },
    });
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

  it('REDIS_SENTINEL_AUTH with a user, and TLS for primary and sentinels', () => {
    const o = sentinelClientOptions({
      type: 'sentinel',
      nodes: [{ host: 's1', port: 5000 }],
      sentinelMasterName: 'primary-a',
      sentinelAuth: { username: 'watcher', password: 'pw:x' },
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

  it('refuses options without a master name or sentinels (settings never build them)', () => {
    expect(() => sentinelClientOptions({ type: 'sentinel', nodes: H })).toThrow(/sentinelMasterName/);
    expect(() => sentinelClientOptions({ type: 'sentinel', sentinelMasterName: 'm', nodes: [] })).toThrow(/at least one address/);
  });
});

describe('REDIS_TYPE=cluster', () => {
  it('takes the seed nodes and builds the master-only, auto-pipelined, never-resending cluster options', () => {
    const plan = clusterPlan({
      type: 'cluster',
      nodes: [
        { host: '10.0.0.1', port: 7000 },
        { host: '10.0.0.2', port: 7001 },
        { host: 'redis-2', port: 6379 },
      ],
      auth: { username: undefined, password: 'secret' },
    });
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

  it('applies credentials, TLS and the cluster tuning', () => {
    const plan = clusterPlan({
      type: 'cluster',
      nodes: [
        { host: 'h1', port: 7000 },
        { host: 'h2', port: 7001 },
      ],
      auth: { username: 'app', password: 'pw' },
      tls: true,
      commandTimeoutMs: 20,
      clusterRetryDelayOnTryAgainMs: 2,
      clusterMaxRedirections: 4,
      clusterSlotsRefreshIntervalMs: 0,
    });
    expect(plan.options).toMatchObject({
      retryDelayOnTryAgain: 2,
      maxRedirections: 4,
      redisOptions: { username: 'app', password: 'pw', tls: {}, commandTimeout: 20 },
    });
    expect(plan.options.slotsRefreshInterval).toBeUndefined();
  });

  it('refuses a database other than 0 and an empty seed list (settings never build them)', () => {
    expect(() => clusterPlan({ type: 'cluster', nodes: H, db: 2 })).toThrow(/only database 0/);
    expect(() => clusterPlan({ type: 'cluster', nodes: [] })).toThrow(/at least one address/);
  });
});

describe('TLS (REDIS_TLS, REDIS_TLS_CACERT, REDIS_TLS_CLIENT_CERT/KEY, REDIS_TLS_SKIP_HOSTNAME_VERIFICATION)', () => {
  const pem = { ca: 'CA PEM', cert: 'CERT PEM', key: 'KEY PEM' };

  it('every connection of every deployment gets the CA, client certificate and key, and no fixed servername', () => {
    const single = redisClientOptions({ nodes: H, tls: true, tlsOptions: pem });
    const sentinel = sentinelClientOptions({ type: 'sentinel', nodes: H, sentinelMasterName: 'm', tls: true, tlsOptions: pem });
    const cluster = clusterPlan({ type: 'cluster', nodes: H, tls: true, tlsOptions: pem }).options.redisOptions!;
    for (const tls of [single.tls, sentinel.tls, sentinel.sentinelTLS, cluster.tls]) {
      expect(tls).toEqual(pem);
      // Each connection presents and verifies the host it dials: one name would be wrong for a
      // cluster's nodes and for the primary a sentinel names.
      expect(tls?.servername).toBeUndefined();
      expect(tls?.checkServerIdentity).toBeUndefined();
    }
    expect(sentinel.enableTLSForSentinelMode).toBe(true);
  });

  it('the files are not used while TLS is off', () => {
    expect(redisClientOptions({ nodes: H, tlsOptions: pem, tlsSkipHostnameVerification: true }).tls).toBeUndefined();
    const sentinel = sentinelClientOptions({ type: 'sentinel', nodes: H, sentinelMasterName: 'm', tlsOptions: pem });
    expect([sentinel.tls, sentinel.sentinelTLS, sentinel.enableTLSForSentinelMode]).toEqual([undefined, undefined, undefined]);
    const cluster = clusterPlan({ type: 'cluster', nodes: H, tlsOptions: pem }).options;
    expect(cluster.redisOptions?.tls).toBeUndefined();
    expect(cluster.dnsLookup).toBeUndefined();
  });

  it('skipping hostname verification replaces only the name check, on every connection', () => {
    const single = redisClientOptions({ nodes: H, tls: true, tlsOptions: pem, tlsSkipHostnameVerification: true });
    const sentinel = sentinelClientOptions({
      type: 'sentinel',
      nodes: H,
      sentinelMasterName: 'm',
      tls: true,
      tlsSkipHostnameVerification: true,
    });
    const cluster = clusterPlan({ type: 'cluster', nodes: H, tls: true, tlsSkipHostnameVerification: true }).options.redisOptions!;
    for (const tls of [single.tls, sentinel.tls, sentinel.sentinelTLS, cluster.tls]) {
      expect(tls?.checkServerIdentity).toBeTypeOf('function');
      // Node calls it only after the chain verified; it accepts any name.
      expect(tls?.checkServerIdentity!('redis.example', {} as never)).toBeUndefined();
      // The chain is still verified (rejectUnauthorized is not turned off).
      expect(tls?.rejectUnauthorized).toBeUndefined();
    }
    expect(single.tls).toMatchObject(pem);
  });

  it('a TLS cluster dials its seeds by the names given, so their certificates are checked against those names', () => {
    const options = clusterPlan({ type: 'cluster', nodes: [{ host: 'redis-0.redis.svc', port: 6379 }], tls: true }).options;
    let dialled: string | undefined;
    options.dnsLookup!('redis-0.redis.svc', (err, address) => {
      expect(err).toBeNull();
      dialled = address;
    });
    expect(dialled).toBe('redis-0.redis.svc');
  });
});
