import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { SettingsError } from '../../../src/errors.js';
import { ignoredSettingsMessage, loadSettings, SETTINGS, UPSTREAM_SETTINGS, upstreamRow } from '../../../src/settings/index.js';
import { OVER_LIMIT_CACHE_ENTRY_BYTES } from '../../../src/settings/upstream-table.js';
import { tracingEnvironment, UPSTREAM_EXTRA_NAMES } from '../../../src/settings/upstream.js';

/**
 * Every variable envoyproxy/ratelimit reads has exactly one answer here (src/settings/upstream.ts):
 * supported with its meaning, accepted and logged, or refused with what to use instead.
 */

const FIXTURE = new URL('../../fixtures/upstream-settings.txt', import.meta.url);
const upstreamNames = readFileSync(FIXTURE, 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l !== '' && !l.startsWith('#'));

function errorOf(env: Record<string, string>): SettingsError {
  try {
    loadSettings(env);
  } catch (err) {
    return err as SettingsError;
  }
  throw new Error('loadSettings did not throw');
}

describe('the catalogue of upstream settings', () => {
  it("the fixture is upstream's settings.go: 114 variables, each once, with the commit it was read from", () => {
    expect(readFileSync(FIXTURE, 'utf8')).toMatch(/commit f2fb15770f7fd1c88ca6c3a1b58ee513917ace96 \(2026-07-05/);
    expect(upstreamNames).toHaveLength(114);
    expect(new Set(upstreamNames).size).toBe(upstreamNames.length);
    expect(upstreamNames).toEqual(expect.arrayContaining(['NEAR_LIMIT_RATIO', 'REDIS_POOL_SIZE', 'TRACING_SAMPLING_RATE', 'MEMCACHE_SRV']));
  });

  it.each(upstreamNames)('%s has exactly one answer row', (name) => {
    const rows = UPSTREAM_SETTINGS.filter((r) => r.name === name);
    expect(rows).toHaveLength(1);
    expect(['supported', 'ignored']).toContain(rows[0]!.kind);
    expect(rows[0]!.explanation).not.toBe('');
  });

  it("has no row that is neither upstream's settings.go nor a listed extra", () => {
    const known = new Set([...upstreamNames, ...UPSTREAM_EXTRA_NAMES]);
    expect(UPSTREAM_SETTINGS.map((r) => r.name).filter((n) => !known.has(n))).toEqual([]);
    expect(new Set(UPSTREAM_SETTINGS.map((r) => r.name)).size).toBe(UPSTREAM_SETTINGS.length);
  });

  it('a supported row names settings-table rows that carry it', () => {
    const table = new Set(SETTINGS.map((s) => s.name));
    const unread = UPSTREAM_SETTINGS.filter((r) => r.kind === 'supported').flatMap((r) =>
      r.meshlimit
        .split(',')
        .map((n) => n.trim())
        .filter((n) => !table.has(n))
        .map((n) => `${r.name} -> ${n}`),
    );
    expect(unread).toEqual([]);
  });

  it('an ignored row is not a setting meshlimit reads (it would be answered twice)', () => {
    const table = new Set(SETTINGS.map((s) => s.name));
    expect(UPSTREAM_SETTINGS.filter((r) => r.kind !== 'supported' && table.has(r.name)).map((r) => r.name)).toEqual([]);
  });

  it("the README's migration table names every one of them", () => {
    const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
    const section = readme.slice(readme.indexOf('## Coming from envoyproxy/ratelimit'), readme.indexOf('## Deploying and operating it'));
    // Named in backticks (`NAME` or `NAME=value`), or covered by a family written `PREFIX_*`.
    const families = [...section.matchAll(/`([A-Z0-9_]+_)\*`/g)].map((m) => m[1]!);
    const named = (n: string) =>
      new RegExp(`\`${n.replace('*', '\\*')}(=[^\`]*)?\``).test(section) || families.some((f) => n.startsWith(f) && !n.endsWith('*'));
    const missing = UPSTREAM_SETTINGS.map((r) => r.name).filter((n) => !named(n));
    expect(missing).toEqual([]);
  });

  it('a family made at run time is answered by its prefix', () => {
    expect(upstreamRow('DOG_STATSD_MOGRIFIER_HTTP_PATTERN')?.name).toBe('DOG_STATSD_MOGRIFIER_*');
    expect(upstreamRow('NOT_UPSTREAM')).toBeUndefined();
  });
});

describe('accepted and logged', () => {
  it('lists the upstream variables set and not used, sorted; unset and empty ones are not listed', () => {
    const s = loadSettings({ USE_STATSD: 'false', STATSD_PORT: '9125', REDIS_POOL_SIZE: '10', NEAR_LIMIT_RATIO: '', PATH: '/bin' });
    expect(s.ignoredUpstream).toEqual(['REDIS_POOL_SIZE', 'STATSD_PORT', 'USE_STATSD']);
    expect(loadSettings({}).ignoredUpstream).toEqual([]);
  });

  it('the explanation is one line naming every ignored variable, grouped by reason', () => {
    const names = loadSettings({
      USE_STATSD: 'false',
      STATSD_PORT: '9125',
      REDIS_POOL_SIZE: '10',
      REDIS_PIPELINE_WINDOW: '150us',
      EXPIRATION_JITTER_MAX_SECONDS: '300',
      DOG_STATSD_MOGRIFIER_HTTP_PATTERN: '^x$',
    }).ignoredUpstream;
    const line = ignoredSettingsMessage(names)!;
    expect(line).not.toContain('\n');
    expect(line).toBe(
      'envoyproxy/ratelimit settings accepted and not used: ' +
        'DOG_STATSD_MOGRIFIER_HTTP_PATTERN, STATSD_PORT, USE_STATSD (no statsd or DogStatsD sink: meshlimit serves Prometheus metrics at /metrics on PORT); ' +
        'EXPIRATION_JITTER_MAX_SECONDS (counter keys expire with their window; the jitter only spreads Redis expiry work, and no answer depends on it); ' +
        'REDIS_PIPELINE_WINDOW, REDIS_POOL_SIZE (no pool or pipeline to size: one multiplexed connection per Redis node, commands batched per event-loop turn)',
    );
    expect(ignoredSettingsMessage([])).toBeUndefined();
  });

  it('a variable name that is not an upper-case word (a newline in it) is never listed', () => {
    expect(loadSettings({ 'DOG_STATSD_MOGRIFIER_X\nINJECTED': '1' }).ignoredUpstream).toEqual([]);
  });

  it("Envoy Gateway's full environment loads; what is not used is its statsd switch and statsd-to-Prometheus mapping", () => {
    const s = loadSettings({
      RUNTIME_ROOT: '/data',
      RUNTIME_SUBDIRECTORY: 'ratelimit',
      RUNTIME_IGNOREDOTFILES: 'true',
      RUNTIME_WATCH_ROOT: 'false',
      LOG_LEVEL: 'info',
      USE_STATSD: 'false',
      CONFIG_TYPE: 'GRPC_XDS_SOTW',
      CONFIG_GRPC_XDS_SERVER_URL: 'envoy-gateway:18001',
      CONFIG_GRPC_XDS_NODE_ID: 'envoy-ratelimit',
      FORCE_START_WITHOUT_INITIAL_CONFIG: 'true',
      REDIS_SOCKET_TYPE: 'tcp',
      REDIS_URL: 'redis.redis-system.svc.cluster.local:6379',
      USE_PROMETHEUS: 'true',
      PROMETHEUS_ADDR: ':19001',
      PROMETHEUS_MAPPER_YAML: '/etc/statsd-exporter/conf.yaml',
      TRACING_ENABLED: 'true',
      TRACING_SERVICE_NAME: 'envoy-ratelimit',
      TRACING_SERVICE_NAMESPACE: 'envoy-gateway-system',
      TRACING_SERVICE_INSTANCE_ID: 'envoy-ratelimit-7d9f-abcde',
      TRACING_SAMPLING_RATE: '0.5',
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel-collector:4318',
    });
    expect(s.ignoredUpstream).toEqual(['PROMETHEUS_MAPPER_YAML', 'USE_STATSD']);
    expect(s.http.prometheus).toEqual({ host: undefined, port: 19001, path: '/metrics' });
    expect(s.config).toMatchObject({ ignoreDotFiles: true, type: 'GRPC_XDS_SOTW' });
    expect(s.tracing).toEqual({
      enabled: true,
      protocol: 'http',
      serviceName: 'envoy-ratelimit',
      serviceNamespace: 'envoy-gateway-system',
      serviceInstanceId: 'envoy-ratelimit-7d9f-abcde',
      samplingRate: 0.5,
    });
  });
});

describe('refused at start-up, saying what to use instead', () => {
  it('a pool behaviour upstream itself refuses', () => {
    expect(errorOf({ REDIS_POOL_ON_EMPTY_BEHAVIOR: 'CREATE' }).message).toBe(
      'setting REDIS_POOL_ON_EMPTY_BEHAVIOR: "CREATE" is refused, as by envoyproxy/ratelimit (only WAIT is supported there); meshlimit has no connection pool: remove the variable',
    );
    expect(loadSettings({ REDIS_PERSECOND_POOL_ON_EMPTY_BEHAVIOR: 'wait' }).ignoredUpstream).toEqual([
      'REDIS_PERSECOND_POOL_ON_EMPTY_BEHAVIOR',
    ]);
  });

  it('BACKEND_TYPE=memcache', () => {
    const err = errorOf({ BACKEND_TYPE: 'memcache', MEMCACHE_HOST_PORT: 'memcached:11211' });
    expect(err.setting).toBe('BACKEND_TYPE');
    expect(err.message).toBe(
      'setting BACKEND_TYPE: memcache is not supported by meshlimit (its counters cannot be updated atomically with the rate-limit algorithms); use redis or memory',
    );
  });

  it('MEMCACHE_* left beside another backend are accepted and logged, as upstream ignores them there', () => {
    expect(loadSettings({ MEMCACHE_HOST_PORT: 'memcached:11211' }).ignoredUpstream).toEqual(['MEMCACHE_HOST_PORT']);
    expect(ignoredSettingsMessage(['MEMCACHE_HOST_PORT'])).toContain('read only with BACKEND_TYPE=memcache, which meshlimit refuses');
  });

  it('STOP_CACHE_KEY_INCREMENT_WHEN_OVERLIMIT contradicting CHARGE_ON_DENY', () => {
    expect(errorOf({ STOP_CACHE_KEY_INCREMENT_WHEN_OVERLIMIT: 'true', CHARGE_ON_DENY: 'true' }).message).toBe(
      'setting STOP_CACHE_KEY_INCREMENT_WHEN_OVERLIMIT: true contradicts CHARGE_ON_DENY=true (STOP_CACHE_KEY_INCREMENT_WHEN_OVERLIMIT=true is CHARGE_ON_DENY=false): set only CHARGE_ON_DENY',
    );
    expect(errorOf({ STOP_CACHE_KEY_INCREMENT_WHEN_OVERLIMIT: 'false', CHARGE_ON_DENY: 'false' }).setting).toBe(
      'STOP_CACHE_KEY_INCREMENT_WHEN_OVERLIMIT',
    );
  });

  it('LOCAL_CACHE_SIZE_IN_BYTES together with LOCAL_CACHE_SIZE', () => {
    expect(errorOf({ LOCAL_CACHE_SIZE_IN_BYTES: '1048576', LOCAL_CACHE_SIZE: '100' }).message).toBe(
      'setting LOCAL_CACHE_SIZE_IN_BYTES: is set together with LOCAL_CACHE_SIZE: they size the same cache (in bytes and in entries); set only one',
    );
  });

  it('a tracing protocol upstream does not know (it exits there too)', () => {
    expect(errorOf({ TRACING_EXPORTER_PROTOCOL: 'zipkin' }).message).toBe(
      'setting TRACING_EXPORTER_PROTOCOL: expected one of http, grpc (any case), got "zipkin"',
    );
  });
});

describe('newly supported, with upstream meaning', () => {
  it('STOP_CACHE_KEY_INCREMENT_WHEN_OVERLIMIT: true is CHARGE_ON_DENY=false, false is CHARGE_ON_DENY=true', () => {
    expect(loadSettings({ STOP_CACHE_KEY_INCREMENT_WHEN_OVERLIMIT: 'true' }).limiter.chargeOnDeny).toBe(false);
    expect(loadSettings({ STOP_CACHE_KEY_INCREMENT_WHEN_OVERLIMIT: 'false' }).limiter.chargeOnDeny).toBe(true);
    expect(loadSettings({ STOP_CACHE_KEY_INCREMENT_WHEN_OVERLIMIT: 'true', CHARGE_ON_DENY: 'false' }).limiter.chargeOnDeny).toBe(false);
    expect(loadSettings({}).limiter.chargeOnDeny).toBe(false);
  });

  it('LOCAL_CACHE_SIZE_IN_BYTES: a byte budget, turned into over-limit cache entries', () => {
    expect(OVER_LIMIT_CACHE_ENTRY_BYTES).toBe(300);
    expect(loadSettings({ LOCAL_CACHE_SIZE_IN_BYTES: '3000000' }).limiter.localCacheSize).toBe(10_000);
    expect(loadSettings({ LOCAL_CACHE_SIZE_IN_BYTES: '100' }).limiter.localCacheSize).toBe(1);
    expect(loadSettings({ LOCAL_CACHE_SIZE_IN_BYTES: '0' }).limiter.localCacheSize).toBe(0);
    expect(errorOf({ LOCAL_CACHE_SIZE_IN_BYTES: '-1' }).setting).toBe('LOCAL_CACHE_SIZE_IN_BYTES');
  });

  it('RUNTIME_IGNOREDOTFILES, HEALTHY_WITH_AT_LEAST_ONE_CONFIG_LOADED, REDIS_HEALTH_CHECK_ACTIVE_CONNECTION are read', () => {
    const s = loadSettings({
      RUNTIME_IGNOREDOTFILES: 'false',
      HEALTHY_WITH_AT_LEAST_ONE_CONFIG_LOADED: 'true',
      REDIS_HEALTH_CHECK_ACTIVE_CONNECTION: 'true',
    });
    expect([s.config.ignoreDotFiles, s.config.healthyWithAtLeastOneConfigLoaded, s.resilience.redisHealthCheckActiveConnection]).toEqual([
      false,
      true,
      true,
    ]);
  });

  it('USE_PROMETHEUS, PROMETHEUS_ADDR (a Go listen address), PROMETHEUS_PATH', () => {
    expect(loadSettings({ PROMETHEUS_ADDR: ':19001' }).http.prometheus).toBeUndefined();
    expect(loadSettings({ USE_PROMETHEUS: 'true' }).http.prometheus).toEqual({ host: undefined, port: 9090, path: '/metrics' });
    const at = (addr: string) => loadSettings({ USE_PROMETHEUS: 'true', PROMETHEUS_ADDR: addr }).http.prometheus;
    expect(at('127.0.0.1:9102')).toMatchObject({ host: '127.0.0.1', port: 9102 });
    expect(at('[::1]:9102')).toMatchObject({ host: '::1', port: 9102 });
    expect(at('metrics.local:0')).toMatchObject({ host: 'metrics.local', port: 0 });
    for (const bad of ['19001', ':70000', 'a b:1', 'http://x:1', ':']) {
      expect(errorOf({ USE_PROMETHEUS: 'true', PROMETHEUS_ADDR: bad }).message).toBe(
        `setting PROMETHEUS_ADDR: expected :port, host:port or [v6]:port, got ${JSON.stringify(bad)}`,
      );
    }
    expect(loadSettings({ USE_PROMETHEUS: 'true', PROMETHEUS_PATH: '/stats/prometheus' }).http.prometheus?.path).toBe('/stats/prometheus');
    expect(errorOf({ PROMETHEUS_PATH: 'metrics' }).message).toBe(
      'setting PROMETHEUS_PATH: expected a path starting with / (printable, no spaces, ? or #), got "metrics"',
    );
    expect(errorOf({ USE_PROMETHEUS: 'true', PROMETHEUS_ADDR: ':8080' }).message).toBe(
      "setting PROMETHEUS_ADDR: port 8080 is PORT's, which serves /metrics already: choose another port, or unset USE_PROMETHEUS to scrape PORT",
    );
  });

  describe('TRACING_* become the OpenTelemetry SDK variables', () => {
    const tracing = (env: Record<string, string>) => loadSettings(env).tracing;

    it('nothing unless TRACING_ENABLED', () => {
      expect(tracingEnvironment(tracing({ TRACING_SERVICE_NAME: 'rl' }), {})).toEqual({});
    });

    it("upstream's tracer: OTLP over http or grpc, parent-based ratio sampling, B3 as well, resource attributes", () => {
      const env = {
        TRACING_ENABLED: 'true',
        TRACING_EXPORTER_PROTOCOL: 'grpc',
        TRACING_SERVICE_NAME: 'envoy-ratelimit',
        TRACING_SERVICE_NAMESPACE: 'envoy-gateway-system',
        TRACING_SERVICE_INSTANCE_ID: 'pod-1',
        TRACING_SAMPLING_RATE: '0.25',
      };
      expect(tracingEnvironment(tracing(env), env)).toEqual({
        OTEL_TRACES_EXPORTER: 'otlp',
        OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
        OTEL_SERVICE_NAME: 'envoy-ratelimit',
        OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
        OTEL_TRACES_SAMPLER_ARG: '0.25',
        OTEL_PROPAGATORS: 'tracecontext,baggage,b3',
        OTEL_RESOURCE_ATTRIBUTES: 'service.namespace=envoy-gateway-system,service.instance.id=pod-1',
      });
      expect(tracingEnvironment(tracing({ TRACING_ENABLED: 'true' }), {})).toMatchObject({
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
        OTEL_TRACES_SAMPLER_ARG: '1',
      });
    });

    it('an OTEL_* variable already set wins; its resource attributes come last (last wins)', () => {
      const env = {
        TRACING_ENABLED: 'true',
        TRACING_SERVICE_NAME: 'a',
        TRACING_SERVICE_NAMESPACE: 'ns',
        OTEL_SERVICE_NAME: 'b',
        OTEL_TRACES_EXPORTER: 'console',
        OTEL_RESOURCE_ATTRIBUTES: 'service.namespace=mine',
      };
      const out = tracingEnvironment(tracing(env), env);
      expect(out.OTEL_SERVICE_NAME).toBeUndefined();
      expect(out.OTEL_TRACES_EXPORTER).toBeUndefined();
      expect(out.OTEL_RESOURCE_ATTRIBUTES).toBe('service.namespace=ns,service.namespace=mine');
    });

    it('bounds: a rate within 0..1, attribute values that cannot break OTEL_RESOURCE_ATTRIBUTES', () => {
      expect(errorOf({ TRACING_SAMPLING_RATE: '1.5' }).message).toBe(
        'setting TRACING_SAMPLING_RATE: expected a number from 0 to 1, got "1.5"',
      );
      expect(errorOf({ TRACING_SERVICE_NAMESPACE: 'a,b=c' }).message).toBe(
        "setting TRACING_SERVICE_NAMESPACE: expected printable ASCII without spaces, ',', '=' or '%', got \"a,b=c\"",
      );
    });
  });
});
