import path from 'node:path';
import type { BackendType } from '../backend/index.js';
import { SettingsError } from '../errors.js';
import type { FailurePolicy } from '../limiter/types.js';
import type { LogFormat, LogLevel } from '../telemetry/logger.js';
import { deepFreeze } from '../util/deep-freeze.js';
import { REDACTED } from '../util/redact.js';
import { composeRedis, type RedisSettings } from './redis.js';
import { InvalidValue, SettingsErrors } from './spec.js';
import { SETTINGS, type Parsed, type SettingName } from './table.js';

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
 * - Variables not in the table are ignored (the environment holds many unrelated ones).
 */

export { composeRedis, parseEndpoint, REDIS_SOCKET_TYPES, type RedisInputs, type RedisSettings, type RedisSocketType } from './redis.js';
export { InvalidValue, parseBool, SETTING_GROUPS, SettingsErrors, type SettingGroup, type SettingSpec } from './spec.js';
export { SETTINGS, type SettingName } from './table.js';

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
  readonly http: { readonly host: string; readonly port: number };
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
  };
  readonly config: {
    /** The directory to load, from CONFIG_DIR or the RUNTIME_* layout (as given, not resolved). */
    readonly dir: string;
    /** Set when the RUNTIME_* layout chose `dir`. */
    readonly runtime: RuntimeLayout | undefined;
    readonly reloadDebounceMs: number;
  };
  readonly backend: { readonly type: BackendType; readonly cacheKeyPrefix: string; readonly memoryMaxKeys: number };
  readonly redis: RedisSettings;
  readonly resilience: {
    readonly failurePolicy: FailurePolicy;
    readonly localFallbackReplicas: number;
    readonly breaker: {
      readonly enabled: boolean;
      readonly failureRatio: number;
      readonly minimumCalls: number;
      readonly windowMs: number;
      readonly openMs: number;
      readonly halfOpenProbes: number;
    };
    readonly degradedHeader: string | undefined;
  };
  readonly limiter: { readonly shadowMode: boolean; readonly chargeOnDeny: boolean; readonly localCacheSize: number };
  readonly headers: { readonly enabled: boolean; readonly limit: string; readonly remaining: string; readonly reset: string };
  readonly log: { readonly level: LogLevel; readonly format: LogFormat };
  readonly lifecycle: { readonly gracefulShutdownMs: number; readonly workers: number };
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
  // REDIS_* are composed only when each of them parsed, so every error names its real cause.
  const redisParsed = !errors.some((e) => e.setting.startsWith('REDIS_'));
  const redis = redisParsed
    ? composeRedis(
        {
          type: p.REDIS_TYPE,
          socketType: p.REDIS_SOCKET_TYPE,
          url: p.REDIS_URL,
          auth: p.REDIS_AUTH,
          sentinelAuth: p.REDIS_SENTINEL_AUTH,
          tls: p.REDIS_TLS,
          commandTimeoutMs: p.REDIS_COMMAND_TIMEOUT_MS,
          connectTimeoutMs: p.REDIS_CONNECT_TIMEOUT_MS,
        },
        errors,
      )
    : undefined;
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
  return deepFreeze(group(p, redis, runtime));
}

/** Every row parsed (its value, else its default); a bad value is pushed onto `errors`. */
function parseEach(env: Env, given: (name: SettingName) => boolean, errors: SettingsError[]): Parsed {
  const parsed = {} as Record<SettingName, unknown>;
  for (const spec of SETTINGS) {
    const name = spec.name as SettingName;
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
function group(p: Parsed, redis: RedisSettings, runtime: RuntimeLayout | undefined): Settings {
  return {
    http: { host: p.HOST, port: p.PORT },
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
    },
    config: {
      dir: runtime ? path.join(runtime.root, runtime.subdirectory, runtime.appDirectory) : p.CONFIG_DIR,
      runtime,
      reloadDebounceMs: p.CONFIG_RELOAD_DEBOUNCE_MS,
    },
    backend: { type: p.BACKEND_TYPE, cacheKeyPrefix: p.CACHE_KEY_PREFIX, memoryMaxKeys: p.MEMORY_MAX_KEYS },
    redis,
    resilience: {
      failurePolicy: p.FAILURE_POLICY,
      localFallbackReplicas: p.LOCAL_FALLBACK_REPLICAS,
      breaker: {
        enabled: p.BREAKER_ENABLED,
        failureRatio: p.BREAKER_FAILURE_RATIO,
        minimumCalls: p.BREAKER_MINIMUM_CALLS,
        windowMs: p.BREAKER_WINDOW_MS,
        openMs: p.BREAKER_OPEN_MS,
        halfOpenProbes: p.BREAKER_HALF_OPEN_PROBES,
      },
      degradedHeader: p.DEGRADED_HEADER,
    },
    limiter: { shadowMode: p.SHADOW_MODE, chargeOnDeny: p.CHARGE_ON_DENY, localCacheSize: p.LOCAL_CACHE_SIZE },
    headers: {
      enabled: p.LIMIT_RESPONSE_HEADERS_ENABLED,
      limit: p.LIMIT_LIMIT_HEADER,
      remaining: p.LIMIT_REMAINING_HEADER,
      reset: p.LIMIT_RESET_HEADER,
    },
    log: { level: p.LOG_LEVEL, format: p.LOG_FORMAT },
    lifecycle: { gracefulShutdownMs: p.GRACEFUL_SHUTDOWN_MS, workers: p.WORKERS },
  };
}

/** One error, or all of them in table order. */
function combine(errors: readonly SettingsError[]): SettingsError {
  const order = (e: SettingsError): number => SETTINGS.findIndex((s) => s.name === e.setting);
  const sorted = [...errors].sort((a, b) => order(a) - order(b));
  return sorted.length === 1 ? (sorted[0] as SettingsError) : new SettingsErrors(sorted);
}

/**
 * A copy safe to log: secrets (Redis credentials) replaced by `[REDACTED]`. `redis.url` is
 * already redacted by {@link loadSettings}.
 */
export function redactedSettings(settings: Settings): Settings {
  const hide = (c: RedisSettings['auth']): RedisSettings['auth'] =>
    c === undefined ? undefined : { username: c.username, password: REDACTED };
  const copy: Settings = {
    ...settings,
    redis: { ...settings.redis, auth: hide(settings.redis.auth), sentinelAuth: hide(settings.redis.sentinelAuth) },
  };
  return deepFreeze(structuredClone(copy));
}

/**
 * The README settings table, generated from {@link SETTINGS}: one row per variable with its
 * group, default and description. `test/unit/settings` checks the README lists every name.
 */
export function settingsMarkdownTable(): string {
  const cell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
  const rows = SETTINGS.map((s) => {
    const def = s.default === undefined ? '(unset)' : s.default === '' ? '(empty)' : `\`${s.default}\``;
    return `| \`${s.name}\` | ${s.group} | ${cell(def)} | ${cell(s.description)} |`;
  });
  return ['| Variable | Group | Default | Description |', '| --- | --- | --- | --- |', ...rows].join('\n') + '\n';
}
