import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SettingsError } from '../../../src/errors.js';
import {
  SETTINGS,
  SETTING_GROUPS,
  SettingsErrors,
  configCompileOptions,
  loadSettings,
  parseBool,
  redactedSettings,
  settingsMarkdownTable,
  type Settings,
} from '../../../src/settings/index.js';
import { DEFAULT_TRANSPORT_LIMITS } from '../../../src/server/grpc/transport-guard.js';
import { goDuration as goDurationOf } from '../../../src/settings/spec.js';

const goDuration = goDurationOf();
import { redactUrl } from '../../../src/util/redact.js';

function errorOf(env: Record<string, string>): SettingsError {
  try {
    loadSettings(env);
  } catch (err) {
    expect(err).toBeInstanceOf(SettingsError);
    return err as SettingsError;
  }
  throw new Error('loadSettings did not throw');
}

describe('defaults', () => {
  it('an empty environment gives the documented defaults', () => {
    expect(loadSettings({})).toEqual({
      http: { host: '0.0.0.0', port: 8080, prometheus: undefined },
      grpc: {
        host: '0.0.0.0',
        port: 8081,
        maxConcurrentStreams: 256,
        maxOpenStreams: 10_000,
        maxConnections: 1000,
        maxConnectionIdleMs: 300_000,
        maxConnectionAgeMs: 86_400_000,
        maxConnectionAgeGraceMs: 3_600_000,
        streamTimeoutMs: 5000,
        keepaliveTimeMs: 60_000,
        keepaliveTimeoutMs: 20_000,
        permitKeepaliveTimeMs: 10_000,
        maxPingStrikes: 2,
        maxResetStreams: 200,
        uds: undefined,
        tls: undefined,
      },
      config: {
        type: 'FILE',
        forceStartWithoutInitialConfig: false,
        dir: './config',
        runtime: undefined,
        reloadDebounceMs: 200,
        mergeDomainConfigs: false,
        ignoreDotFiles: true,
        healthyWithAtLeastOneConfigLoaded: false,
      },
      xds: {
        serverUrl: 'localhost:18000',
        node: { id: 'default', metadata: {} },
        headers: {},
        connectRetryMs: 3000,
        backoff: { initialMs: 10_000, maxMs: 60_000, factor: 0.5, jitter: true },
        maxReceiveMessageBytes: undefined,
        tls: undefined,
      },
      backend: { type: 'memory', cacheKeyPrefix: '', memoryMaxKeys: 1_000_000 },
      redis: {
        type: 'single',
        socketType: 'tcp',
        url: '127.0.0.1:6379',
        label: 'Redis at REDIS_URL=127.0.0.1:6379',
        nodes: [{ host: '127.0.0.1', port: 6379 }],
        path: undefined,
        sentinelMasterName: undefined,
        sentinelAuth: undefined,
        auth: undefined,
        db: 0,
        tls: false,
        tlsOptions: undefined,
        tlsSkipHostnameVerification: false,
        tlsFiles: {},
        commandTimeoutMs: 50,
        connectTimeoutMs: 1000,
      },
      redisPerSecond: undefined,
      resilience: {
        failurePolicy: 'deny',
        localFallbackReplicas: 1,
        breaker: { enabled: true, consecutiveFailures: 5, silenceMs: 250, openMs: 2000, halfOpenProbes: 3 },
        admission: { maxOutstanding: 1000, maxEventLoopDelayMs: 250 },
        degradedHeader: undefined,
        redisHealthCheckActiveConnection: false,
      },
      limiter: {
        shadowMode: false,
        quotaMode: false,
        responseDynamicMetadata: false,
        chargeOnDeny: false,
        localCacheSize: 0,
        nearLimitRatio: 0.8,
        stringLimits: { maxDomainBytes: 256, maxKeyBytes: 256, maxValueBytes: 65_536 },
      },
      headers: { enabled: false, limit: 'RateLimit-Limit', remaining: 'RateLimit-Remaining', reset: 'RateLimit-Reset' },
      softLimit: undefined,
      log: { level: 'info', format: 'text' },
      tracing: {
        enabled: false,
        protocol: 'http',
        serviceName: undefined,
        serviceNamespace: undefined,
        serviceInstanceId: undefined,
        samplingRate: 1,
      },
      ignoredUpstream: [],
      lifecycle: { gracefulShutdownMs: 10_000, workers: 1, redisRequiredAtStart: false },
      admin: {
        token: undefined,
        readRequiresToken: false,
        dataDir: undefined,
        overridesPollMs: 250,
        overridesMax: 10_000,
        auditMax: 1000,
        tls: undefined,
      },
      rlqs: {
        enabled: true,
        unmatched: 'allow_all',
        unmatchedTtlSec: 60,
        bucketKeyOrder: [],
        clientIdHeader: 'x-meshlimit-client-id',
        reassignIntervalMs: 1000,
        abandonAfterSec: 60,
        maxStreams: 10_000,
        maxBucketsPerStream: 1000,
        maxBucketEntries: 32,
        maxReportsPerSecond: 100,
      },
    } satisfies Settings);
  });

  it("the gRPC transport defaults are the server's own (DEFAULT_TRANSPORT_LIMITS), so neither drifts", () => {
    const { host: _host, port: _port, ...limits } = loadSettings({}).grpc;
    expect(limits).toEqual(DEFAULT_TRANSPORT_LIMITS);
  });

  it('reads the gRPC transport settings, durations in Go syntax as envoyproxy/ratelimit', () => {
    const s = loadSettings({
      GRPC_MAX_CONCURRENT_STREAMS: '100',
      GRPC_MAX_CONNECTION_AGE: '1h30m',
      GRPC_MAX_CONNECTION_AGE_GRACE: '90s',
      GRPC_MAX_CONNECTION_IDLE: '0',
      GRPC_KEEPALIVE_TIME: '1.5s',
      GRPC_PERMIT_KEEPALIVE_TIME: '500ms',
      GRPC_STREAM_TIMEOUT_MS: '250',
    });
    expect(s.grpc).toMatchObject({
      maxConcurrentStreams: 100,
      maxConnectionAgeMs: 5_400_000,
      maxConnectionAgeGraceMs: 90_000,
      maxConnectionIdleMs: 0,
      keepaliveTimeMs: 1500,
      permitKeepaliveTimeMs: 500,
      streamTimeoutMs: 250,
    });
    expect(() => loadSettings({ GRPC_MAX_CONNECTION_AGE: '3600' })).toThrow(
      /GRPC_MAX_CONNECTION_AGE: expected a duration such as 500ms, 30s or 1h30m \(a number and a unit: ns, us, ms, s, m, h\), got "3600"/,
    );
    expect(() => loadSettings({ GRPC_MAX_CONNECTION_AGE: '-1h' })).toThrow(/GRPC_MAX_CONNECTION_AGE: expected a duration/);
    expect(() => loadSettings({ GRPC_KEEPALIVE_TIMEOUT: '0' })).toThrow(/GRPC_KEEPALIVE_TIMEOUT: expected a duration above 0/);
    expect(() => loadSettings({ GRPC_MAX_CONCURRENT_STREAMS: '0' })).toThrow(/GRPC_MAX_CONCURRENT_STREAMS: expected an integer from 1/);
  });

  it('reads the resilience settings and rejects bad ones by name', () => {
    const s = loadSettings({
      FAILURE_POLICY: 'LOCAL',
      LOCAL_FALLBACK_REPLICAS: '4',
      BREAKER_CONSECUTIVE_FAILURES: '3',
      BREAKER_SILENCE_MS: '400',
      ADMISSION_MAX_OUTSTANDING: '0',
      DEGRADED_HEADER: 'x-ratelimit-degraded',
    });
    expect(s.resilience).toMatchObject({ failurePolicy: 'local', localFallbackReplicas: 4, degradedHeader: 'x-ratelimit-degraded' });
    expect(s.resilience.breaker).toMatchObject({ consecutiveFailures: 3, silenceMs: 400 });
    expect(s.resilience.admission.maxOutstanding).toBe(0);
    expect(() => loadSettings({ FAILURE_POLICY: 'maybe' })).toThrow(/FAILURE_POLICY/);
    expect(() => loadSettings({ BREAKER_CONSECUTIVE_FAILURES: '0' })).toThrow(/BREAKER_CONSECUTIVE_FAILURES: expected an integer from 1/);
  });

  it('refuses the retired breaker settings, saying what replaced them', () => {
    expect(() => loadSettings({ BREAKER_FAILURE_RATIO: '0.25' })).toThrow(
      /^setting BREAKER_FAILURE_RATIO: no longer used: the breaker no longer judges a failure ratio .* BREAKER_CONSECUTIVE_FAILURES .* BREAKER_SILENCE_MS/,
    );
    expect(() => loadSettings({ BREAKER_WINDOW_MS: '10000' })).toThrow(
      'setting BREAKER_WINDOW_MS: no longer used: see BREAKER_CONSECUTIVE_FAILURES and BREAKER_SILENCE_MS',
    );
  });

  it('WORKERS: an integer or auto, and more than one only with Redis', () => {
    expect(loadSettings({ WORKERS: '3', BACKEND_TYPE: 'redis' }).lifecycle.workers).toBe(3);
    expect(loadSettings({ WORKERS: 'auto', BACKEND_TYPE: 'redis' }).lifecycle.workers).toBeGreaterThanOrEqual(1);
    expect(() => loadSettings({ WORKERS: '2' })).toThrow(/WORKERS: 2 workers need BACKEND_TYPE=redis/);
    expect(() => loadSettings({ WORKERS: '0', BACKEND_TYPE: 'redis' })).toThrow(/WORKERS: expected an integer from 1 to 256/);
  });

  it('REDIS_SENTINEL_AUTH is carried for sentinel and redacted in logs', () => {
    const s = loadSettings({ REDIS_TYPE: 'sentinel', REDIS_URL: 'mymaster,10.0.0.1:26379,10.0.0.2:26379', REDIS_SENTINEL_AUTH: 's3cret' });
    expect(s.redis).toMatchObject({
      sentinelMasterName: 'mymaster',
      sentinelAuth: { username: undefined, password: 's3cret' },
      nodes: [
        { host: '10.0.0.1', port: 26379 },
        { host: '10.0.0.2', port: 26379 },
      ],
    });
    expect(JSON.stringify(redactedSettings(s))).not.toContain('s3cret');
  });

  it('an empty variable counts as unset', () => {
    expect(loadSettings({ PORT: '', LOG_LEVEL: '', REDIS_AUTH: '' })).toEqual(loadSettings({}));
  });

  it('ignores variables it does not declare; upstream ones it does not use are listed to be logged', () => {
    const { ignoredUpstream, ...rest } = loadSettings({ PATH: '/usr/bin', USE_STATSD: 'false', REDIS_POOL_SIZE: 'abc' });
    const { ignoredUpstream: none, ...defaults } = loadSettings({});
    expect(rest).toEqual(defaults);
    expect([ignoredUpstream, none]).toEqual([['REDIS_POOL_SIZE', 'USE_STATSD'], []]);
  });

  it('reads process.env when no environment is passed', () => {
    const saved = process.env.GRPC_PORT;
    process.env.GRPC_PORT = '9999';
    try {
      expect(loadSettings().grpc.port).toBe(9999);
    } finally {
      if (saved === undefined) delete process.env.GRPC_PORT;
      else process.env.GRPC_PORT = saved;
    }
  });

  it('returns a deeply frozen object', () => {
    const s = loadSettings({});
    expect(Object.isFrozen(s)).toBe(true);
    expect(Object.isFrozen(s.redis)).toBe(true);
    expect(Object.isFrozen(s.redis.nodes)).toBe(true);
    expect(Object.isFrozen(s.redis.nodes[0])).toBe(true);
    expect(() => {
      (s.http as { port: number }).port = 1;
    }).toThrow(TypeError);
  });
});

describe('the table', () => {
  it('declares each name once, in a known group, with a description', () => {
    const names = SETTINGS.map((s) => s.name);
    expect(new Set(names).size).toBe(names.length);
    for (const s of SETTINGS) {
      expect(SETTING_GROUPS).toContain(s.group);
      expect(s.description.length).toBeGreaterThan(20);
      expect(s.name).toMatch(/^[A-Z][A-Z0-9_]*$/);
    }
  });

  it('marks the credentials (the admin token, REDIS_AUTH, REDIS_SENTINEL_AUTH, their per-second twins, the xDS extra headers), and only them, as secret', () => {
    expect(SETTINGS.filter((s) => s.secret).map((s) => s.name)).toEqual([
      'ADMIN_TOKEN',
      'CONFIG_GRPC_XDS_CLIENT_ADDITIONAL_HEADERS',
      'REDIS_AUTH',
      'REDIS_SENTINEL_AUTH',
      'REDIS_PERSECOND_AUTH',
      'REDIS_PERSECOND_SENTINEL_AUTH',
    ]);
  });

  it('reads the admin token from ADMIN_TOKEN_FILE, refuses both, a short token and a read guard without a token, and redacts it', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'meshlimit-admin-'));
    const file = path.join(dir, 'token');
    writeFileSync(file, 'abcdefghijklmnop-from-file\n');
    expect(loadSettings({ ADMIN_TOKEN_FILE: file }).admin.token).toBe('abcdefghijklmnop-from-file');
    expect(redactedSettings(loadSettings({ ADMIN_TOKEN_FILE: file })).admin.token).toBe('[REDACTED]');
    expect(() => loadSettings({ ADMIN_TOKEN_FILE: file, ADMIN_TOKEN: 'abcdefghijklmnopq' })).toThrow(
      /ADMIN_TOKEN_FILE: set ADMIN_TOKEN or ADMIN_TOKEN_FILE, not both/,
    );
    expect(() => loadSettings({ ADMIN_TOKEN: 'short' })).toThrow(/setting ADMIN_TOKEN: must be 16 to 4096 characters/);
    expect(() => loadSettings({ ADMIN_TOKEN_FILE: path.join(dir, 'missing') })).toThrow(
      /setting ADMIN_TOKEN_FILE: .*missing cannot be read/,
    );
    expect(() => loadSettings({ ADMIN_READ_REQUIRES_TOKEN: 'true' })).toThrow(/ADMIN_READ_REQUIRES_TOKEN: is true but no token is set/);
    expect(() => loadSettings({ OVERRIDES_POLL_MS: '1001' })).toThrow(/OVERRIDES_POLL_MS/);
    rmSync(dir, { recursive: true });
  });

  it('keeps envoyproxy/ratelimit names and defaults where they exist', () => {
    const def = (name: string) => SETTINGS.find((s) => s.name === name)?.default;
    expect(def('PORT')).toBe('8080');
    expect(def('HOST')).toBe('0.0.0.0');
    expect(def('GRPC_PORT')).toBe('8081');
    expect(def('GRPC_HOST')).toBe('0.0.0.0');
    expect(def('LOG_FORMAT')).toBe('text');
    expect(def('RUNTIME_APPDIRECTORY')).toBe('config');
    expect(def('RUNTIME_WATCH_ROOT')).toBe('true');
    expect(def('LIMIT_LIMIT_HEADER')).toBe('RateLimit-Limit');
    expect(def('LIMIT_REMAINING_HEADER')).toBe('RateLimit-Remaining');
    expect(def('LIMIT_RESET_HEADER')).toBe('RateLimit-Reset');
    expect(def('CACHE_KEY_PREFIX')).toBe('');
    expect(def('SHADOW_MODE')).toBe('false');
    expect(def('REDIS_TLS')).toBe('false');
    expect(def('REDIS_TLS_SKIP_HOSTNAME_VERIFICATION')).toBe('false');
    expect(def('REDIS_PERSECOND')).toBe('false');
    expect(def('REDIS_PERSECOND_TLS')).toBe('false');
    expect(def('REDIS_PERSECOND_TYPE')).toBe('single');
    for (const name of [
      'REDIS_TLS_CACERT',
      'REDIS_TLS_CLIENT_CERT',
      'REDIS_TLS_CLIENT_KEY',
      'REDIS_PERSECOND_AUTH',
      'REDIS_PERSECOND_SENTINEL_AUTH',
    ])
      expect(def(name)).toBeUndefined();
  });

  it('renders a markdown table with one row per setting', () => {
    const table = settingsMarkdownTable();
    const lines = table.trimEnd().split('\n');
    expect(lines[0]).toBe('| Variable | Group | Default | Description |');
    expect(lines[1]).toBe('| --- | --- | --- | --- |');
    expect(lines).toHaveLength(SETTINGS.length + 2);
    expect(lines).toContain(`| \`PORT\` | http | \`8080\` | ${SETTINGS.find((s) => s.name === 'PORT')?.description} |`);
    expect(lines.find((l) => l.startsWith('| `RUNTIME_ROOT` '))).toContain('| config | (unset) |');
    expect(lines.find((l) => l.startsWith('| `CACHE_KEY_PREFIX` '))).toContain('| backend | (empty) |');
  });
});

describe('scalar parsers', () => {
  it('accepts Go ParseBool values in any case, plus yes/no, y/n and on/off', () => {
    for (const v of ['1', 't', 'T', 'true', 'TRUE', 'True', 'tRuE', 'yes', 'YES', 'y', 'on']) expect(parseBool(v)).toBe(true);
    for (const v of ['0', 'f', 'F', 'false', 'FALSE', 'False', 'no', 'No', 'n', 'off']) expect(parseBool(v)).toBe(false);
    expect(
      loadSettings({ SHADOW_MODE: 'True', CHARGE_ON_DENY: '1', LIMIT_RESPONSE_HEADERS_ENABLED: 'yes', REDIS_TLS: 'no' }),
    ).toMatchObject({
      limiter: { shadowMode: true, chargeOnDeny: true },
      headers: { enabled: true },
      redis: { tls: false },
    });
  });

  it('rejects other boolean values', () => {
    expect(errorOf({ SHADOW_MODE: 'maybe' }).message).toBe(
      'setting SHADOW_MODE: expected a boolean (true/false, 1/0, t/f, yes/no, y/n, on/off; any case), got "maybe"',
    );
  });

  it('validates ports and integer ranges', () => {
    expect(loadSettings({ PORT: '0', GRPC_PORT: '65535' })).toMatchObject({ http: { port: 0 }, grpc: { port: 65535 } });
    expect(errorOf({ PORT: 'http' }).message).toBe('setting PORT: expected an integer from 0 to 65535, got "http"');
    expect(errorOf({ GRPC_PORT: '65536' }).message).toBe('setting GRPC_PORT: expected an integer from 0 to 65535, got "65536"');
    expect(errorOf({ PORT: '-1' }).message).toBe('setting PORT: expected an integer from 0 to 65535, got "-1"');
    expect(errorOf({ PORT: '80.5' }).message).toBe('setting PORT: expected an integer from 0 to 65535, got "80.5"');
    expect(errorOf({ REDIS_COMMAND_TIMEOUT_MS: '0' }).message).toBe(
      'setting REDIS_COMMAND_TIMEOUT_MS: expected an integer from 1 to 60000, got "0"',
    );
    expect(errorOf({ MEMORY_MAX_KEYS: '1e6' }).message).toBe('setting MEMORY_MAX_KEYS: expected an integer from 1 to 100000000, got "1e6"');
    expect(errorOf({ MAX_DESCRIPTOR_VALUE_BYTES: '63' }).message).toBe(
      'setting MAX_DESCRIPTOR_VALUE_BYTES: expected an integer from 64 to 1048576, got "63"',
    );
    expect(loadSettings({ MAX_DESCRIPTOR_VALUE_BYTES: '8192' }).limiter.stringLimits).toEqual({
      maxDomainBytes: 256,
      maxKeyBytes: 256,
      maxValueBytes: 8192,
    });
    expect(loadSettings({ GRACEFUL_SHUTDOWN_MS: ' 2500 ', CONFIG_RELOAD_DEBOUNCE_MS: '0' })).toMatchObject({
      lifecycle: { gracefulShutdownMs: 2500 },
      config: { reloadDebounceMs: 0 },
    });
  });

  it('rejects a host with whitespace or a slash', () => {
    expect(errorOf({ HOST: 'http://x' }).message).toBe('setting HOST: expected a host name or IP address, got "http://x"');
    expect(loadSettings({ GRPC_HOST: '::' }).grpc.host).toBe('::');
  });

  it('accepts log levels in any case, including logrus aliases', () => {
    expect(loadSettings({ LOG_LEVEL: 'WARN' }).log.level).toBe('warn');
    expect(loadSettings({ LOG_LEVEL: 'warning' }).log.level).toBe('warn');
    expect(loadSettings({ LOG_LEVEL: 'Debug' }).log.level).toBe('debug');
    expect(loadSettings({ LOG_LEVEL: 'panic' }).log.level).toBe('fatal');
    expect(loadSettings({ LOG_FORMAT: 'JSON' }).log.format).toBe('json');
    expect(errorOf({ LOG_LEVEL: 'verbose' }).message).toBe(
      'setting LOG_LEVEL: expected one of trace, debug, info, warn, error, fatal (any case), got "verbose"',
    );
    expect(errorOf({ LOG_FORMAT: 'logfmt' }).message).toBe('setting LOG_FORMAT: expected one of text, json (any case), got "logfmt"');
  });

  it('accepts redis and memory backends and rejects memcache with a reason', () => {
    expect(loadSettings({ BACKEND_TYPE: 'REDIS' }).backend.type).toBe('redis');
    expect(errorOf({ BACKEND_TYPE: 'memcache' }).message).toBe(
      'setting BACKEND_TYPE: memcache is not supported by meshlimit (its counters cannot be updated atomically with the rate-limit algorithms); use redis or memory',
    );
    expect(errorOf({ BACKEND_TYPE: 'dynamo' }).message).toBe(
      'setting BACKEND_TYPE: expected one of memory, redis (any case), got "dynamo"',
    );
  });

  it('rejects a key prefix that would change the hash tag', () => {
    expect(loadSettings({ CACHE_KEY_PREFIX: 'ml:prod:' }).backend.cacheKeyPrefix).toBe('ml:prod:');
    expect(errorOf({ CACHE_KEY_PREFIX: 'a{b}' }).message).toBe(
      'setting CACHE_KEY_PREFIX: must not contain "{" or "}" (they would change the Redis Cluster hash tag), got "a{b}"',
    );
    expect(errorOf({ CACHE_KEY_PREFIX: 'a b' }).message).toBe(
      'setting CACHE_KEY_PREFIX: must not contain whitespace or control characters, got "a b"',
    );
  });

  it('validates header names as HTTP tokens', () => {
    expect(loadSettings({ LIMIT_LIMIT_HEADER: 'X-RateLimit-Limit' }).headers.limit).toBe('X-RateLimit-Limit');
    expect(errorOf({ LIMIT_RESET_HEADER: 'Reset: now' }).message).toBe(
      'setting LIMIT_RESET_HEADER: expected an HTTP header name (letters, digits and !#$%&\'*+-.^_`|~), got "Reset: now"',
    );
  });
});

describe('several bad settings', () => {
  it('reports all of them in one error, in table order', () => {
    const err = errorOf({ LOG_LEVEL: 'loud', PORT: 'x', REDIS_URL: 'a:1,b:2', BACKEND_TYPE: 'memcache' });
    expect(err).toBeInstanceOf(SettingsErrors);
    expect(err.code).toBe('ML_ERR_SETTINGS');
    expect((err as SettingsErrors).errors.map((e) => e.setting)).toEqual(['PORT', 'BACKEND_TYPE', 'REDIS_URL', 'LOG_LEVEL']);
    expect(err.message).toBe(
      [
        'setting PORT: expected an integer from 0 to 65535, got "x"',
        'setting BACKEND_TYPE: memcache is not supported by meshlimit (its counters cannot be updated atomically with the rate-limit algorithms); use redis or memory',
        'setting REDIS_URL: REDIS_TYPE=single takes one address; set REDIS_TYPE=cluster for a seed list or REDIS_TYPE=sentinel for sentinels',
        'setting LOG_LEVEL: expected one of trace, debug, info, warn, error, fatal (any case), got "loud"',
      ].join('\n'),
    );
  });

  it('a single bad setting is a plain SettingsError naming it', () => {
    const err = errorOf({ PORT: 'x' });
    expect(err).not.toBeInstanceOf(SettingsErrors);
    expect(err.setting).toBe('PORT');
  });
});

describe('config directory', () => {
  it('uses CONFIG_DIR', () => {
    expect(loadSettings({ CONFIG_DIR: '/etc/meshlimit' }).config).toEqual({
      type: 'FILE',
      forceStartWithoutInitialConfig: false,
      dir: '/etc/meshlimit',
      runtime: undefined,
      reloadDebounceMs: 200,
      mergeDomainConfigs: false,
      ignoreDotFiles: true,
      healthyWithAtLeastOneConfigLoaded: false,
    });
  });

  it('uses the envoyproxy/ratelimit RUNTIME_* layout when RUNTIME_ROOT is set and CONFIG_DIR is not', () => {
    expect(loadSettings({ RUNTIME_ROOT: '/data', RUNTIME_SUBDIRECTORY: 'ratelimit' }).config).toEqual({
      type: 'FILE',
      forceStartWithoutInitialConfig: false,
      dir: '/data/ratelimit/config',
      runtime: { root: '/data', subdirectory: 'ratelimit', appDirectory: 'config', watchRoot: true },
      reloadDebounceMs: 200,
      mergeDomainConfigs: false,
      ignoreDotFiles: true,
      healthyWithAtLeastOneConfigLoaded: false,
    });
    expect(
      loadSettings({ RUNTIME_ROOT: '/srv/runtime_data/current', RUNTIME_APPDIRECTORY: 'rl', RUNTIME_WATCH_ROOT: 'false' }).config,
    ).toEqual({
      type: 'FILE',
      forceStartWithoutInitialConfig: false,
      dir: '/srv/runtime_data/current/rl',
      runtime: { root: '/srv/runtime_data/current', subdirectory: '', appDirectory: 'rl', watchRoot: false },
      reloadDebounceMs: 200,
      mergeDomainConfigs: false,
      ignoreDotFiles: true,
      healthyWithAtLeastOneConfigLoaded: false,
    });
  });

  it('prefers CONFIG_DIR over RUNTIME_ROOT', () => {
    expect(loadSettings({ CONFIG_DIR: '/cfg', RUNTIME_ROOT: '/data' }).config.dir).toBe('/cfg');
    expect(loadSettings({ CONFIG_DIR: '/cfg', RUNTIME_ROOT: '/data' }).config.runtime).toBeUndefined();
  });

  it('MERGE_DOMAIN_CONFIG, read the same way by the service and by check-config (configCompileOptions)', () => {
    expect(loadSettings({ MERGE_DOMAIN_CONFIG: 'true' }).config.mergeDomainConfigs).toBe(true);
    expect(configCompileOptions({ MERGE_DOMAIN_CONFIG: 'true' })).toMatchObject({ mergeDomainConfigs: true });
    expect(configCompileOptions({})).toEqual({ mergeDomainConfigs: false, ignoreDotFiles: true });
    // Only its own row: an unrelated bad setting does not stop check-config.
    expect(configCompileOptions({ MERGE_DOMAIN_CONFIG: '1', REDIS_URL: ':::' })).toMatchObject({ mergeDomainConfigs: true });
    expect(() => configCompileOptions({ MERGE_DOMAIN_CONFIG: 'maybe' })).toThrow(
      'setting MERGE_DOMAIN_CONFIG: expected a boolean (true/false, 1/0, t/f, yes/no, y/n, on/off; any case), got "maybe"',
    );
  });

  it('QUOTA_MODE and RESPONSE_DYNAMIC_METADATA (upstream names), off by default', () => {
    expect(loadSettings({ QUOTA_MODE: 'true', RESPONSE_DYNAMIC_METADATA: 'true' }).limiter).toMatchObject({
      quotaMode: true,
      responseDynamicMetadata: true,
    });
  });
});

describe('redis', () => {
  const redis = (env: Record<string, string>) => loadSettings(env).redis;

  it('parses host:port, a bare host and [ipv6]:port', () => {
    expect(redis({ REDIS_URL: 'redis.svc:6380' }).nodes).toEqual([{ host: 'redis.svc', port: 6380 }]);
    expect(redis({ REDIS_URL: 'redis.svc' }).nodes).toEqual([{ host: 'redis.svc', port: 6379 }]);
    expect(redis({ REDIS_URL: '[::1]:7000' }).nodes).toEqual([{ host: '::1', port: 7000 }]);
  });

  it('parses redis:// URLs with credentials and database', () => {
    expect(redis({ REDIS_URL: 'redis://app:s%40cret@10.0.0.5:6390/2' })).toMatchObject({
      nodes: [{ host: '10.0.0.5', port: 6390 }],
      auth: { username: 'app', password: 's@cret' },
      db: 2,
      tls: false,
      url: 'redis://app:[REDACTED]@10.0.0.5:6390/2',
    });
    expect(redis({ REDIS_URL: 'redis://:pw@h' })).toMatchObject({
      nodes: [{ host: 'h', port: 6379 }],
      auth: { username: undefined, password: 'pw' },
      url: 'redis://:[REDACTED]@h',
    });
    expect(redis({ REDIS_URL: 'redis://[::1]:7001' }).nodes).toEqual([{ host: '::1', port: 7001 }]);
  });

  it('turns TLS on for rediss:// or REDIS_TLS', () => {
    expect(redis({ REDIS_URL: 'rediss://h:6380' }).tls).toBe(true);
    expect(redis({ REDIS_URL: 'h:6380', REDIS_TLS: 'true' }).tls).toBe(true);
  });

  it('reads REDIS_AUTH as password or username:password', () => {
    expect(redis({ REDIS_AUTH: 'pw' }).auth).toEqual({ username: undefined, password: 'pw' });
    expect(redis({ REDIS_AUTH: 'user:pa:ss' }).auth).toEqual({ username: 'user', password: 'pa:ss' });
  });

  it('never echoes REDIS_AUTH in an error', () => {
    const err = errorOf({ REDIS_AUTH: 'topsecret:' });
    expect(err.message).toBe('setting REDIS_AUTH: expected "password" or "username:password" with both parts non-empty');
    expect(err.message).not.toContain('topsecret');
  });

  it('rejects credentials given twice', () => {
    expect(errorOf({ REDIS_URL: 'redis://:a@h', REDIS_AUTH: 'b' }).message).toBe(
      'setting REDIS_AUTH: credentials are given both in REDIS_URL and REDIS_AUTH; give them in one place',
    );
  });

  it('takes a seed list for a cluster, case-insensitive type', () => {
    expect(redis({ REDIS_TYPE: 'CLUSTER', REDIS_URL: 'a:7000, b:7001,redis://c:7002' })).toMatchObject({
      type: 'cluster',
      nodes: [
        { host: 'a', port: 7000 },
        { host: 'b', port: 7001 },
        { host: 'c', port: 7002 },
      ],
    });
    expect(errorOf({ REDIS_TYPE: 'cluster', REDIS_URL: 'redis://a:7000/1' }).message).toBe(
      'setting REDIS_URL: Redis Cluster has only database 0, got /1',
    );
    expect(errorOf({ REDIS_TYPE: 'cluster', REDIS_URL: 'redis://a:7000,rediss://b:7001' }).message).toBe(
      'setting REDIS_URL: mixes redis:// and rediss:// items; use one scheme for every node',
    );
    expect(errorOf({ REDIS_TYPE: 'cluster', REDIS_URL: 'redis://:x@a:7000,redis://:y@b:7001' }).message).toBe(
      'setting REDIS_URL: items carry different credentials; give them once, in REDIS_AUTH',
    );
    expect(errorOf({ REDIS_TYPE: 'cluster', REDIS_URL: 'a:7000,,b:7001' }).message).toBe(
      'setting REDIS_URL: empty item in the comma-separated list "a:7000,,b:7001"',
    );
  });

  it('takes master name then sentinels for sentinel, as envoyproxy/ratelimit', () => {
    expect(redis({ REDIS_TYPE: 'sentinel', REDIS_URL: 'mymaster,s1:26379,s2:26379' })).toMatchObject({
      type: 'sentinel',
      sentinelMasterName: 'mymaster',
      nodes: [
        { host: 's1', port: 26379 },
        { host: 's2', port: 26379 },
      ],
    });
    expect(errorOf({ REDIS_TYPE: 'sentinel', REDIS_URL: 's1:26379' }).message).toBe(
      'setting REDIS_URL: with REDIS_TYPE=sentinel, expected "master-name,host:port[,host:port...]" (the master name, then at least one sentinel)',
    );
    expect(errorOf({ REDIS_TYPE: 'sentinel', REDIS_URL: 's1:26379,s2:26379' }).message).toBe(
      'setting REDIS_URL: with REDIS_TYPE=sentinel, the first item must be the master name, got "s1:26379"',
    );
  });

  it.each(['a:b:c', 'h:70000', 'redis://h/x', 'h1:6379,h2:6379'])('rejects REDIS_URL %j naming the variable', (url) => {
    expect(errorOf({ REDIS_URL: url }).message).toMatch(/^setting REDIS_URL: /);
  });

  it('decodes a percent-encoded password holding : and @ (it reaches Redis as one password)', () => {
    expect(redis({ REDIS_URL: 'redis://:a%3Ab%40c@h:6379' }).auth).toEqual({ username: undefined, password: 'a:b@c' });
  });

  it('reads REDIS_SENTINEL_AUTH as password or username:password, split at the first colon', () => {
    const sentinel = (auth: string) => redis({ REDIS_TYPE: 'SENTINEL', REDIS_URL: 'm,s1:26379', REDIS_SENTINEL_AUTH: auth }).sentinelAuth;
    expect(sentinel('pw')).toEqual({ username: undefined, password: 'pw' });
    expect(sentinel('watcher:p:w@x')).toEqual({ username: 'watcher', password: 'p:w@x' });
  });

  it('connects to a unix socket path when REDIS_SOCKET_TYPE=unix', () => {
    expect(redis({ REDIS_SOCKET_TYPE: 'unix', REDIS_URL: '/var/run/redis.sock', REDIS_AUTH: 'pw' })).toMatchObject({
      socketType: 'unix',
      path: '/var/run/redis.sock',
      nodes: [],
      auth: { username: undefined, password: 'pw' },
    });
    expect(errorOf({ REDIS_SOCKET_TYPE: 'unix', REDIS_TYPE: 'cluster' }).message).toBe(
      'setting REDIS_SOCKET_TYPE: unix sockets work only with REDIS_TYPE=single, got REDIS_TYPE=cluster',
    );
  });

  it('rejects malformed addresses with the reason', () => {
    expect(errorOf({ REDIS_URL: 'http://h:1' }).message).toBe(
      'setting REDIS_URL: unsupported scheme "http://" (use redis:// or rediss://)',
    );
    expect(errorOf({ REDIS_URL: 'h:0' }).message).toBe('setting REDIS_URL: port must be from 1 to 65535, got "h:0"');
    expect(errorOf({ REDIS_URL: 'h:port' }).message).toBe(
      'setting REDIS_URL: expected host:port, [ipv6]:port, redis://... or rediss://..., got "h:port"',
    );
    expect(errorOf({ REDIS_URL: 'redis://h/x' }).message).toBe('setting REDIS_URL: "redis://h/x": the path must be a database number');
    expect(errorOf({ REDIS_URL: 'redis://h?db=1' }).message).toBe(
      'setting REDIS_URL: "redis://h?db=1": query strings and fragments are not supported',
    );
  });

  it('never echoes a URL password in an error', () => {
    const err = errorOf({ REDIS_URL: 'redis://u:hunter2@h/x' });
    expect(err.message).toBe('setting REDIS_URL: "redis://u:[REDACTED]@h/x": the path must be a database number');
    expect(errorOf({ REDIS_URL: 'redis://onlyuser@h' }).message).toBe(
      'setting REDIS_URL: "redis://onlyuser@h" has a user name but no password; write redis://:password@host for a password alone',
    );
  });
});

describe('redaction', () => {
  it('hides every password of a REDIS_URL list', () => {
    expect(loadSettings({ REDIS_TYPE: 'cluster', REDIS_URL: 'redis://u:p@a:1,redis://u:p@b:2' }).redis.url).toBe(
      'redis://u:[REDACTED]@a:1,redis://u:[REDACTED]@b:2',
    );
    expect(redactUrl('redis://u:p@a:1,rediss://:q@b:2,c:3')).toBe('redis://u:[REDACTED]@a:1,rediss://:[REDACTED]@b:2,c:3');
  });

  it('redactedSettings hides the password and leaves everything else', () => {
    const s = loadSettings({ REDIS_URL: 'redis://app:hunter2@h:1', PORT: '9000' });
    const r = redactedSettings(s);
    expect(JSON.stringify(r)).not.toContain('hunter2');
    expect(r.redis.auth).toEqual({ username: 'app', password: '[REDACTED]' });
    expect(r.redis.url).toBe('redis://app:[REDACTED]@h:1');
    expect(r.http.port).toBe(9000);
    expect(Object.isFrozen(r.redis)).toBe(true);
    // The original is untouched.
    expect(s.redis.auth?.password).toBe('hunter2');
  });

  it('hides REDIS_AUTH too', () => {
    const r = redactedSettings(
      loadSettings({ REDIS_AUTH: 'admin:s3cr3t', REDIS_TYPE: 'sentinel', REDIS_URL: 'm,h:26379', REDIS_SENTINEL_AUTH: 'sent:in3l' }),
    );
    expect(JSON.stringify(r)).not.toContain('s3cr3t');
    expect(JSON.stringify(r)).not.toContain('in3l');
    expect(r.redis.auth).toEqual({ username: 'admin', password: '[REDACTED]' });
    expect(r.redis.sentinelAuth).toEqual({ username: 'sent', password: '[REDACTED]' });
  });

  it('leaves an absent password absent', () => {
    expect(redactedSettings(loadSettings({})).redis.auth).toBeUndefined();
  });
});

describe('goDuration (Go time.ParseDuration syntax, in ms rounded up)', () => {
  it.each([
    ['0', 0],
    ['300ms', 300],
    ['1.1s', 1100],
    ['.5s', 500],
    ['5m', 300_000],
    ['1h30m', 5_400_000],
    ['1.5h', 5_400_000],
    ['1m0.5s', 60_500],
    ['24h', 86_400_000],
    ['500us', 1],
    ['2\u00b5s', 1],
    ['1ns', 1],
  ])('%s is %d ms', (raw, ms) => {
    expect(goDuration(raw)).toBe(ms);
  });

  it.each(['', 's', '10', '-1s', '1h 30m', '1d', '1.2.3s'])('rejects %j', (raw) => {
    expect(() => goDuration(raw)).toThrow(/expected a duration such as 500ms, 30s or 1h30m/);
  });
});
