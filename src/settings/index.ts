import path from 'node:path';
import type { BackendType } from '../backend/index.js';
import { SettingsError } from '../errors.js';
import { DEFAULT_STRING_LIMITS, type StringLimits } from '../limiter/string-limits.js';
import type { FailurePolicy } from '../limiter/types.js';
import type { LogFormat, LogLevel } from '../telemetry/logger.js';
import { deepFreeze } from '../util/deep-freeze.js';
import { REDACTED } from '../util/redact.js';
import type { RedisSettings } from './redis.js';
import { composeRedisGroup, type RedisGroup } from './redis-group.js';
import { loadGrpcTls, type GrpcServerTls } from './grpc-tls.js';
import { composeAdmin, type AdminSettings } from './admin-table.js';
import type { RlqsSettings } from './rlqs-table.js';
import { InvalidValue, SettingsErrors } from './spec.js';
import { RETIRED_SETTINGS, SETTINGS, type Parsed, type SettingName } from './table.js';
import { composeXds, type ConfigType, type XdsSettings } from './xds.js';
import * as compose from './upstream-compose.js';
import { answerUpstream, type UpstreamTracing } from './upstream.js';

/**
 * Settings from the environment, declared once.
 *
 * Every variable meshlimit reads is one row of {@link SETTINGS}: name, group, default,
 * description (the README settings table is generated from it, see {@link settingsMarkdownTable})
 * and a parser. {@link loadSettings} parses every row, then composes the rows that depend on each
 * other (REDIS_*, RUNTIME_*), and returns a deeply frozen {@link Settings} grouped by concern.
 *
 * Rules shared by every setting:
 * - Names follow envoyproxy/ratelimit where it has the same setting, with its meaning.
 * - An unset variable and an empty one (`FOO=`) both mean "use the default".
 * - Every bad value is reported at once: one {@link SettingsError} per variable, several of them
 *   wrapped in a {@link SettingsErrors}. Values of secret settings never appear in messages.
 * - Variables not in the table are ignored (the environment holds many unrelated ones), except
 *   envoyproxy/ratelimit's: each has an answer in ./upstream.ts (read here, listed in
 *   `ignoredUpstream` to be logged, or refused with what to use instead).
 */

export { composeRedis, parseEndpoint, REDIS_SOCKET_TYPES, type RedisInputs, type RedisSettings, type RedisSocketType } from './redis.js';
export { InvalidValue, parseBool, SETTING_GROUPS, SettingsErrors, type SettingGroup, type SettingSpec } from './spec.js';
export { RETIRED_SETTINGS, SETTINGS, type SettingName } from './table.js';
export { settingsMarkdownTable } from './markdown.js';
export type { GrpcServerTls } from './grpc-tls.js';
export type { RlqsSettings, RlqsUnmatchedAction } from './rlqs-table.js';
export { CONFIG_TYPES, headerMap, nodeMetadata, type ConfigType, type XdsSettings } from './xds.js';
export { ignoredSettingsMessage, UPSTREAM_SETTINGS, upstreamRow, type UpstreamRow } from './upstream.js';

/** The envoyproxy/ratelimit `RUNTIME_*` layout, when it chose the config directory. */
export interface RuntimeLayout {
  readonly root: string;
  readonly subdirectory: string;
  readonly appDirectory: string;
  /** RUNTIME_WATCH_ROOT: also reload when `root` (typically a symlink) is swapped. */
  readonly watchRoot: boolean;
}

/** Validated, deeply frozen settings, grouped by concern. */
export interface Settings {
  /** `prometheus`: USE_PROMETHEUS, the metrics also on their own port; undefined when off. */
  readonly http: { readonly host: string; readonly port: number; readonly prometheus: compose.PrometheusListen | undefined };
  /** The admin API: token, read protection, tenant overrides (./admin-table.ts). */
  readonly admin: AdminSettings;
  /** Where the gRPC server listens and the bounds of its HTTP/2 transport (src/server/grpc/transport-guard.ts); durations in ms, 0 for never. */
  readonly grpc: {
    readonly host: string;
    readonly port: number;
    readonly maxConcurrentStreams: number;
    readonly maxOpenStreams: number;
    readonly maxConnections: number;
    readonly maxConnectionIdleMs: number;
    readonly maxConnectionAgeMs: number;
    readonly maxConnectionAgeGraceMs: number;
    readonly streamTimeoutMs: number;
    readonly keepaliveTimeMs: number;
    readonly keepaliveTimeoutMs: number;
    readonly permitKeepaliveTimeMs: number;
    readonly maxPingStrikes: number;
    readonly maxResetStreams: number;
    /** GRPC_UDS: serve on this unix socket instead of host:port. */
    readonly uds: string | undefined;
    /** GRPC_SERVER_USE_TLS and the files (./grpc-tls.ts); undefined: plaintext. */
    readonly tls: GrpcServerTls | undefined;
  };
  /** The RLQS service (./rlqs-table.ts, src/server/grpc/rlqs/). */
  readonly rlqs: RlqsSettings;
  readonly config: {
    /** CONFIG_TYPE: the YAML directory (`FILE`) or an xDS management server (`GRPC_XDS_SOTW`, see `xds`). */
    readonly type: ConfigType;
    /** FORCE_START_WITHOUT_INITIAL_CONFIG (xDS): ready with an empty config until the first one arrives. */
    readonly forceStartWithoutInitialConfig: boolean;
    /** The directory to load, from CONFIG_DIR or the RUNTIME_* layout (as given, not resolved). */
    readonly dir: string;
    /** Set when the RUNTIME_* layout chose `dir`. */
    readonly runtime: RuntimeLayout | undefined;
    readonly reloadDebounceMs: number;
    /** MERGE_DOMAIN_CONFIG: several files may define one domain. */
    readonly mergeDomainConfigs: boolean;
    /** RUNTIME_IGNOREDOTFILES: skip config files whose name starts with `.` (`..` entries are always skipped). */
    readonly ignoreDotFiles: boolean;
    /** HEALTHY_WITH_AT_LEAST_ONE_CONFIG_LOADED: not ready before a config has loaded, even when forced to start without one. */
    readonly healthyWithAtLeastOneConfigLoaded: boolean;
  };
  /** The xDS client (used with `config.type` `GRPC_XDS_SOTW`). */
  readonly xds: XdsSettings;
  readonly backend: { readonly type: BackendType; readonly cacheKeyPrefix: string; readonly memoryMaxKeys: number };
  readonly redis: RedisSettings;
  /** REDIS_PERSECOND: the Redis of the per-second counters; undefined when off. */
  readonly redisPerSecond: RedisSettings | undefined;
  readonly resilience: {
    readonly failurePolicy: FailurePolicy;
    readonly localFallbackReplicas: number;
    readonly breaker: {
      readonly enabled: boolean;
      readonly consecutiveFailures: number;
      readonly silenceMs: number;
      readonly openMs: number;
      readonly halfOpenProbes: number;
    };
    readonly admission: { readonly maxOutstanding: number; readonly maxEventLoopDelayMs: number };
    readonly degradedHeader: string | undefined;
    /** REDIS_HEALTH_CHECK_ACTIVE_CONNECTION: not ready while a Redis is not connected, whatever the failure policy. */
    readonly redisHealthCheckActiveConnection: boolean;
  };
  readonly limiter: {
    readonly shadowMode: boolean;
    readonly quotaMode: boolean;
    readonly responseDynamicMetadata: boolean;
    readonly chargeOnDeny: boolean;
    readonly localCacheSize: number;
    /** NEAR_LIMIT_RATIO: hits admitted past this share of their limit are counted as near the limit. */
    readonly nearLimitRatio: number;
    /** The largest domain, key and value a request may carry (MAX_DESCRIPTOR_VALUE_BYTES), checked by both transports. */
    readonly stringLimits: StringLimits;
  };
  readonly headers: { readonly enabled: boolean; readonly limit: string; readonly remaining: string; readonly reset: string };
  /** SOFT_LIMIT_HEADER and SOFT_LIMIT_SHARE; undefined when the header is unset. */
  readonly softLimit: { readonly header: string; readonly share: number } | undefined;
  readonly log: { readonly level: LogLevel; readonly format: LogFormat };
  /** TRACING_* (envoyproxy/ratelimit's), turned into the OpenTelemetry SDK's variables by `tracingEnvironment`. */
  readonly tracing: UpstreamTracing;
  /** Upstream (envoyproxy/ratelimit) variables that are set and accepted without being used; logged once at start-up. */
  readonly ignoredUpstream: readonly string[];
  readonly lifecycle: {
    readonly gracefulShutdownMs: number;
    readonly workers: number;
    /** REDIS_REQUIRED_AT_START: exit when a Redis is not connected after REDIS_CONNECT_TIMEOUT_MS at start. */
    readonly redisRequiredAtStart: boolean;
  };
}

type Env = Readonly<Record<string, string | undefined>>;

/**
 * Reads, validates and freezes the settings. Throws a {@link SettingsError} naming the variable
 * (or a {@link SettingsErrors} listing every bad variable).
 */
export function loadSettings(env: Env = process.env): Settings {
  const errors: SettingsError[] = [];
  const given = (name: SettingName): boolean => (env[name] ?? '') !== '';
  const p = parseEach(env, given, errors);
  // BACKEND_TYPE unset with REDIS_URL set (Envoy Gateway's environment): upstream's default, redis.
  if (!given('BACKEND_TYPE') && given('REDIS_URL')) p.BACKEND_TYPE = 'redis';
  for (const [name, instead] of Object.entries(RETIRED_SETTINGS))
    if ((env[name] ?? '') !== '') errors.push(new SettingsError(name, instead));
  const ignoredUpstream = answerUpstream(env, errors);
  const limiterAliases = compose.composeLimiterAliases(p, given, errors);
  compose.checkPrometheusPort(p, errors);
  // REDIS_* are composed only when each of them parsed, so every error names its real cause.
  const redisParsed = !errors.some((e) => e.setting.startsWith('REDIS_'));
  const redis = redisParsed ? composeRedisGroup(p, errors) : undefined;
  const xds = composeXds(p, errors);
  const grpcTls = loadGrpcTls(p, errors);
  const admin = composeAdmin(p, errors);
  if (p.WORKERS !== undefined && p.WORKERS > 1 && p.BACKEND_TYPE === 'memory') {
    errors.push(
      new SettingsError(
        'WORKERS',
        `${p.WORKERS} workers need BACKEND_TYPE=redis: the memory backend's counters are per process, so each worker would admit the full limit`,
      ),
    );
  }
  if (errors.length > 0 || redis === undefined) throw combine(errors);
  const runtime: RuntimeLayout | undefined =
    !given('CONFIG_DIR') && p.RUNTIME_ROOT !== undefined
      ? {
          root: p.RUNTIME_ROOT,
          subdirectory: p.RUNTIME_SUBDIRECTORY,
          appDirectory: p.RUNTIME_APPDIRECTORY,
          watchRoot: p.RUNTIME_WATCH_ROOT,
        }
      : undefined;
  return deepFreeze({ ...group(p, redis, xds, grpcTls, runtime, limiterAliases, ignoredUpstream), admin });
}

/**
 * The config load options alone (MERGE_DOMAIN_CONFIG, RUNTIME_IGNOREDOTFILES), read by the same
 * table rows as {@link loadSettings} reads them: `check-config` loads a directory exactly as the
 * service does without requiring every other setting to be valid.
 * @throws SettingsError for a bad value.
 */
export function configCompileOptions(env: Env = process.env): { readonly mergeDomainConfigs: boolean; readonly ignoreDotFiles: boolean } {
  const errors: SettingsError[] = [];
  const given = (name: SettingName): boolean => (env[name] ?? '') !== '';
  const p = parseEach(env, given, errors, new Set<SettingName>(['MERGE_DOMAIN_CONFIG', 'RUNTIME_IGNOREDOTFILES']));
  if (errors.length > 0) throw combine(errors);
  return Object.freeze({ mergeDomainConfigs: p.MERGE_DOMAIN_CONFIG, ignoreDotFiles: p.RUNTIME_IGNOREDOTFILES });
}

/** Every row parsed (its value, else its default); a bad value is pushed onto `errors`. */
function parseEach(env: Env, given: (name: SettingName) => boolean, errors: SettingsError[], only?: ReadonlySet<SettingName>): Parsed {
  const parsed = {} as Record<SettingName, unknown>;
  for (const spec of SETTINGS) {
    const name = spec.name as SettingName;
    if (only !== undefined && !only.has(name)) continue;
    const raw = given(name) ? (env[name] as string) : spec.default;
    if (raw === undefined) {
      parsed[name] = undefined;
      continue;
    }
    try {
      parsed[name] = spec.parse(raw);
    } catch (err) {
      if (!(err instanceof InvalidValue)) throw err;
      errors.push(new SettingsError(name, given(name) ? err.message : `invalid default: ${err.message}`));
    }
  }
  return parsed as Parsed;
}

/** The parsed rows, grouped by concern. */
function group(
  p: Parsed,
  redis: RedisGroup,
  xds: XdsSettings,
  grpcTls: GrpcServerTls | undefined,
  runtime: RuntimeLayout | undefined,
  aliases: compose.LimiterAliases,
  ignoredUpstream: readonly string[],
): Omit<Settings, 'admin'> {
  return {
    http: { host: p.HOST, port: p.PORT, prometheus: p.USE_PROMETHEUS ? { ...p.PROMETHEUS_ADDR, path: p.PROMETHEUS_PATH } : undefined },
    grpc: {
      host: p.GRPC_HOST,
      port: p.GRPC_PORT,
      maxConcurrentStreams: p.GRPC_MAX_CONCURRENT_STREAMS,
      maxOpenStreams: p.GRPC_MAX_OPEN_STREAMS,
      maxConnections: p.GRPC_MAX_CONNECTIONS,
      maxConnectionIdleMs: p.GRPC_MAX_CONNECTION_IDLE,
      maxConnectionAgeMs: p.GRPC_MAX_CONNECTION_AGE,
      maxConnectionAgeGraceMs: p.GRPC_MAX_CONNECTION_AGE_GRACE,
      streamTimeoutMs: p.GRPC_STREAM_TIMEOUT_MS,
      keepaliveTimeMs: p.GRPC_KEEPALIVE_TIME,
      keepaliveTimeoutMs: p.GRPC_KEEPALIVE_TIMEOUT,
      permitKeepaliveTimeMs: p.GRPC_PERMIT_KEEPALIVE_TIME,
      maxPingStrikes: p.GRPC_MAX_PING_STRIKES,
      maxResetStreams: p.GRPC_MAX_RESET_STREAMS,
      uds: p.GRPC_UDS,
      tls: grpcTls,
    },
    rlqs: rlqsGroup(p),
    config: {
      type: p.CONFIG_TYPE,
      forceStartWithoutInitialConfig: p.FORCE_START_WITHOUT_INITIAL_CONFIG,
      dir: runtime ? path.join(runtime.root, runtime.subdirectory, runtime.appDirectory) : p.CONFIG_DIR,
      runtime,
      reloadDebounceMs: p.CONFIG_RELOAD_DEBOUNCE_MS,
      mergeDomainConfigs: p.MERGE_DOMAIN_CONFIG,
      ignoreDotFiles: p.RUNTIME_IGNOREDOTFILES,
      healthyWithAtLeastOneConfigLoaded: p.HEALTHY_WITH_AT_LEAST_ONE_CONFIG_LOADED,
    },
    xds,
    backend: { type: p.BACKEND_TYPE, cacheKeyPrefix: p.CACHE_KEY_PREFIX, memoryMaxKeys: p.MEMORY_MAX_KEYS },
    redis: redis.main,
    redisPerSecond: redis.perSecond,
    resilience: {
      failurePolicy: p.FAILURE_POLICY,
      localFallbackReplicas: p.LOCAL_FALLBACK_REPLICAS,
      breaker: {
        enabled: p.BREAKER_ENABLED,
        consecutiveFailures: p.BREAKER_CONSECUTIVE_FAILURES,
        silenceMs: p.BREAKER_SILENCE_MS,
        openMs: p.BREAKER_OPEN_MS,
        halfOpenProbes: p.BREAKER_HALF_OPEN_PROBES,
      },
      admission: { maxOutstanding: p.ADMISSION_MAX_OUTSTANDING, maxEventLoopDelayMs: p.ADMISSION_MAX_EVENT_LOOP_DELAY_MS },
      degradedHeader: p.DEGRADED_HEADER,
      redisHealthCheckActiveConnection: p.REDIS_HEALTH_CHECK_ACTIVE_CONNECTION,
    },
    limiter: {
      shadowMode: p.SHADOW_MODE,
      quotaMode: p.QUOTA_MODE,
      responseDynamicMetadata: p.RESPONSE_DYNAMIC_METADATA,
      chargeOnDeny: aliases.chargeOnDeny,
      localCacheSize: aliases.localCacheSize,
      nearLimitRatio: p.NEAR_LIMIT_RATIO,
      stringLimits: { ...DEFAULT_STRING_LIMITS, maxValueBytes: p.MAX_DESCRIPTOR_VALUE_BYTES },
    },
    headers: {
      enabled: p.LIMIT_RESPONSE_HEADERS_ENABLED,
      limit: p.LIMIT_LIMIT_HEADER,
      remaining: p.LIMIT_REMAINING_HEADER,
      reset: p.LIMIT_RESET_HEADER,
    },
    softLimit: p.SOFT_LIMIT_HEADER === undefined ? undefined : { header: p.SOFT_LIMIT_HEADER, share: p.SOFT_LIMIT_SHARE },
    log: { level: p.LOG_LEVEL, format: p.LOG_FORMAT },
    tracing: compose.tracingGroup(p),
    ignoredUpstream,
    lifecycle: { gracefulShutdownMs: p.GRACEFUL_SHUTDOWN_MS, workers: p.WORKERS, redisRequiredAtStart: p.REDIS_REQUIRED_AT_START },
  };
}

/** The RLQS_* rows as the `rlqs` group. */
function rlqsGroup(p: Parsed): RlqsSettings {
  return {
    enabled: p.RLQS_ENABLED,
    unmatched: p.RLQS_UNMATCHED_BUCKET,
    unmatchedTtlSec: p.RLQS_UNMATCHED_TTL_S,
    bucketKeyOrder: p.RLQS_BUCKET_KEY_ORDER,
    clientIdHeader: p.RLQS_CLIENT_ID_HEADER,
    reassignIntervalMs: p.RLQS_REASSIGN_INTERVAL_MS,
    abandonAfterSec: p.RLQS_ABANDON_AFTER_S,
    maxStreams: p.RLQS_MAX_STREAMS,
    maxBucketsPerStream: p.RLQS_MAX_BUCKETS_PER_STREAM,
    maxBucketEntries: p.RLQS_MAX_BUCKET_ENTRIES,
    maxReportsPerSecond: p.RLQS_MAX_REPORTS_PER_SECOND,
  };
}

/** One error, or all of them in table order. */
function combine(errors: readonly SettingsError[]): SettingsError {
  const order = (e: SettingsError): number => SETTINGS.findIndex((s) => s.name === e.setting);
  const sorted = [...errors].sort((a, b) => order(a) - order(b));
  return sorted.length === 1 ? (sorted[0] as SettingsError) : new SettingsErrors(sorted);
}

/**
 * A copy safe to log: secrets (Redis credentials, the TLS private key, the xDS stream's extra
 * headers) replaced by `[REDACTED]`, and the PEM text of certificates by `[PEM]` (their paths are
 * in `tlsFiles`). The URLs are already redacted by {@link loadSettings}.
 */
export function redactedSettings(settings: Settings): Settings {
  const hide = (c: RedisSettings['auth']): RedisSettings['auth'] =>
    c === undefined ? undefined : { username: c.username, password: REDACTED };
  const pem = (t: RedisSettings['tlsOptions']): RedisSettings['tlsOptions'] =>
    t === undefined
      ? undefined
      : {
          ...(t.ca === undefined ? {} : { ca: '[PEM]' }),
          ...(t.cert === undefined ? {} : { cert: '[PEM]' }),
          ...(t.key === undefined ? {} : { key: REDACTED }),
        };
  const redis = (r: RedisSettings): RedisSettings => ({
    ...r,
    auth: hide(r.auth),
    sentinelAuth: hide(r.sentinelAuth),
    tlsOptions: pem(r.tlsOptions),
  });
  const copy: Settings = {
    ...settings,
    redis: redis(settings.redis),
    redisPerSecond: settings.redisPerSecond === undefined ? undefined : redis(settings.redisPerSecond),
    xds: { ...settings.xds, headers: Object.fromEntries(Object.keys(settings.xds.headers).map((k) => [k, REDACTED])) },
    admin: { ...settings.admin, token: settings.admin.token === undefined ? undefined : REDACTED },
  };
  return deepFreeze(structuredClone(copy));
}
