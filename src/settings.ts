import { availableParallelism } from 'node:os';
import path from 'node:path';
import { SettingsError } from './errors.js';
import { FAILURE_POLICIES, type FailurePolicy } from './limiter/types.js';

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

export const SETTING_GROUPS = ['http', 'grpc', 'config', 'backend', 'redis', 'resilience', 'limiter', 'headers', 'log', 'lifecycle'] as const;
export type SettingGroup = (typeof SETTING_GROUPS)[number];

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export type LogFormat = 'text' | 'json';
export type BackendType = 'memory' | 'redis';
export type RedisType = 'single' | 'cluster' | 'sentinel';
export type RedisSocketType = 'tcp' | 'unix';

/** One declared environment variable. */
export interface SettingSpec<T = unknown> {
  readonly name: string;
  readonly group: SettingGroup;
  /** The default, written as it would be in the environment; undefined when the setting has none. */
  readonly default: string | undefined;
  /** What it does, in README quality: units, accepted values, and how it differs from envoyproxy/ratelimit. */
  readonly description: string;
  /** The value is a credential: never echoed in errors, logs or `redactedSettings`. */
  readonly secret: boolean;
  /**
   * Parses a raw value (non-empty when it comes from the environment, possibly empty when it is
   * the default); throws {@link InvalidValue} with a detail message.
   */
  readonly parse: (raw: string) => T;
}

/** What a parser throws: a detail message, without the variable name (the loader adds it). */
export class InvalidValue extends Error {}

/** Several invalid settings at once; `errors` holds one {@link SettingsError} per variable, in table order. */
export class SettingsErrors extends SettingsError {
  constructor(readonly errors: readonly SettingsError[]) {
    super(errors[0]?.setting ?? '', '');
    this.message = errors.map((e) => e.message).join('\n');
  }
}

// ---------------------------------------------------------------------------------------------
// Parsers. Each returns the typed value or throws InvalidValue(detail).

const BOOL_TRUE = new Set(['1', 't', 'true', 'y', 'yes', 'on']);
const BOOL_FALSE = new Set(['0', 'f', 'false', 'n', 'no', 'off']);

/**
 * Go's strconv.ParseBool set (1, t, true, 0, f, false; envoyproxy/ratelimit uses it) in any case,
 * plus yes/no, y/n and on/off.
 */
export function parseBool(raw: string): boolean {
  const v = raw.trim().toLowerCase();
  if (BOOL_TRUE.has(v)) return true;
  if (BOOL_FALSE.has(v)) return false;
  throw new InvalidValue(`expected a boolean (true/false, 1/0, t/f, yes/no, y/n, on/off; any case), got ${JSON.stringify(raw)}`);
}

function integer(min: number, max: number): (raw: string) => number {
  return (raw) => {
    const v = raw.trim();
    const n = /^\d+$/.test(v) ? Number(v) : Number.NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidValue(`expected an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`);
    }
    return n;
  };
}

const port = integer(0, 65_535);

function host(raw: string): string {
  const v = raw.trim();
  if (/[\s/]/.test(v)) throw new InvalidValue(`expected a host name or IP address, got ${JSON.stringify(raw)}`);
  return v;
}

function oneOf<T extends string>(values: readonly T[], aliases: Readonly<Record<string, T>> = {}): (raw: string) => T {
  return (raw) => {
    const v = raw.trim().toLowerCase();
    if ((values as readonly string[]).includes(v)) return v as T;
    const alias = aliases[v];
    if (alias !== undefined) return alias;
    throw new InvalidValue(`expected one of ${values.join(', ')} (any case), got ${JSON.stringify(raw)}`);
  };
}

/** RFC 9110 field-name: a token. */
function headerName(raw: string): string {
  const v = raw.trim();
  if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(v)) {
    throw new InvalidValue(`expected an HTTP header name (letters, digits and !#$%&'*+-.^_\`|~), got ${JSON.stringify(raw)}`);
  }
  return v;
}

function workers(raw: string): number {
  const v = raw.trim().toLowerCase();
  if (v === 'auto') return Math.max(1, availableParallelism());
  if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 256) throw new InvalidValue(`expected an integer from 1 to 256 or "auto", got ${JSON.stringify(raw)}`);
  return Number(v);
}

function ratio(raw: string): number {
  const v = Number(raw.trim());
  if (!Number.isFinite(v) || v <= 0 || v > 1) throw new InvalidValue(`expected a number with 0 < r <= 1, got ${JSON.stringify(raw)}`);
  return v;
}

function text(raw: string): string {
  return raw;
}

function keyPrefix(raw: string): string {
  // Keys are `<prefix>{<tag>}:...`: a brace in the prefix would become the Redis Cluster hash tag
  // and send every counter to one slot (src/limiter/keys.ts).
  if (/[{}]/.test(raw)) throw new InvalidValue(`must not contain "{" or "}" (they would change the Redis Cluster hash tag), got ${JSON.stringify(raw)}`);
  if (/[\s\u0000-\u001f\u007f]/.test(raw)) throw new InvalidValue(`must not contain whitespace or control characters, got ${JSON.stringify(raw)}`);
  return raw;
}

function backendType(raw: string): BackendType {
  const v = raw.trim().toLowerCase();
  if (v === 'memcache' || v === 'memcached') {
    throw new InvalidValue('memcache is not supported by meshlimit (its counters cannot be updated atomically with the rate-limit algorithms); use redis or memory');
  }
  return oneOf<BackendType>(['memory', 'redis'])(raw);
}

export interface RedisAuth {
  readonly username: string | undefined;
  readonly password: string;
}

/** `password` or `username:password` (split at the first colon), as envoyproxy/ratelimit. Never echoes the value. */
function redisAuth(raw: string): RedisAuth {
  const colon = raw.indexOf(':');
  if (colon < 0) return { username: undefined, password: raw };
  const username = raw.slice(0, colon);
  const password = raw.slice(colon + 1);
  if (username === '' || password === '') throw new InvalidValue('expected "password" or "username:password" with both parts non-empty');
  return { username, password };
}

// ---------------------------------------------------------------------------------------------
// The table.

function setting<T, D extends string | undefined>(spec: {
  group: SettingGroup;
  default: D;
  description: string;
  parse: (raw: string) => T;
  secret?: boolean;
}): Omit<SettingSpec<T>, 'name' | 'default'> & { readonly default: D } {
  return { secret: false, ...spec };
}

const DEFS = {
  // http
  HOST: setting({ group: 'http', default: '0.0.0.0', parse: host, description: 'Address the HTTP admin server (`/healthcheck`, `/json`, `/rlconfig`, `/metrics`) binds to.' }),
  PORT: setting({ group: 'http', default: '8080', parse: port, description: 'Port of the HTTP admin server. `0` picks a free port.' }),
  // grpc
  GRPC_HOST: setting({ group: 'grpc', default: '0.0.0.0', parse: host, description: 'Address the gRPC server (`envoy.service.ratelimit.v3.RateLimitService`, `grpc.health.v1.Health`) binds to.' }),
  GRPC_PORT: setting({ group: 'grpc', default: '8081', parse: port, description: 'Port of the gRPC server. `0` picks a free port.' }),
  // config
  CONFIG_DIR: setting({
    group: 'config',
    default: './config',
    parse: text,
    description:
      'Directory holding the descriptor config files (YAML). The directory, not each file, is watched, so a Kubernetes ConfigMap update reloads. Takes precedence over `RUNTIME_ROOT`.',
  }),
  RUNTIME_ROOT: setting({
    group: 'config',
    default: undefined,
    parse: text,
    description:
      'envoyproxy/ratelimit layout: when set and `CONFIG_DIR` is not, config files are read from `RUNTIME_ROOT/RUNTIME_SUBDIRECTORY/RUNTIME_APPDIRECTORY`. Unlike envoyproxy/ratelimit (default `/srv/runtime_data/current`), unset means "not used".',
  }),
  RUNTIME_SUBDIRECTORY: setting({ group: 'config', default: '', parse: text, description: 'Subdirectory of `RUNTIME_ROOT` (envoyproxy/ratelimit layout).' }),
  RUNTIME_APPDIRECTORY: setting({ group: 'config', default: 'config', parse: text, description: 'Directory under `RUNTIME_ROOT/RUNTIME_SUBDIRECTORY` holding the config files (envoyproxy/ratelimit layout).' }),
  RUNTIME_WATCH_ROOT: setting({
    group: 'config',
    default: 'true',
    parse: parseBool,
    description:
      'With the `RUNTIME_ROOT` layout: `true` also reloads when `RUNTIME_ROOT` itself is swapped (a symlink pointed at a new tree), `false` watches only the config directory. Same meaning as in envoyproxy/ratelimit.',
  }),
  CONFIG_RELOAD_DEBOUNCE_MS: setting({
    group: 'config',
    default: '200',
    parse: integer(0, 60_000),
    description: 'Milliseconds to wait after the last change in the config directory before reloading, so a burst of file events (a ConfigMap swap) causes one reload.',
  }),
  // backend
  BACKEND_TYPE: setting({
    group: 'backend',
    default: 'memory',
    parse: backendType,
    description:
      'Counter store: `memory` (one process; counters are not shared between replicas) or `redis` (shared by every replica). envoyproxy/ratelimit defaults to `redis`; `memcache` is rejected.',
  }),
  CACHE_KEY_PREFIX: setting({
    group: 'backend',
    default: '',
    parse: keyPrefix,
    description: 'String put in front of every counter key, e.g. to share a Redis between deployments. Must not contain `{`, `}`, whitespace or control characters.',
  }),
  MEMORY_MAX_KEYS: setting({
    group: 'backend',
    default: '1000000',
    parse: integer(1, 100_000_000),
    description: 'Most counters the `memory` backend holds at once, so a flood of distinct descriptor values cannot exhaust the heap.',
  }),
  // redis
  REDIS_TYPE: setting({
    group: 'redis',
    default: 'single',
    parse: oneOf<RedisType>(['single', 'cluster', 'sentinel']),
    description:
      '`single` (one server or a proxy), `cluster` (`REDIS_URL` is a comma-separated seed list) or `sentinel` (`REDIS_URL` is `master-name,host:port,...`), case-insensitive as in envoyproxy/ratelimit.',
  }),
  REDIS_SOCKET_TYPE: setting({
    group: 'redis',
    default: 'tcp',
    parse: oneOf<RedisSocketType>(['tcp', 'unix']),
    description: '`tcp`, or `unix` to connect to the Unix socket path in `REDIS_URL` (single only). envoyproxy/ratelimit defaults to `unix`.',
  }),
  REDIS_URL: setting({
    group: 'redis',
    default: '127.0.0.1:6379',
    parse: text,
    description:
      'Where Redis is: `host:port`, `redis://[[user]:password@]host:port[/db]` or `rediss://...` (TLS); comma-separated for `cluster` and `sentinel`; a socket path when `REDIS_SOCKET_TYPE=unix`. Credentials may be given here or in `REDIS_AUTH`, not both.',
  }),
  REDIS_AUTH: setting({
    group: 'redis',
    default: undefined,
    parse: redisAuth,
    secret: true,
    description: 'Redis credentials: `password`, or `username:password` for a Redis 6 ACL user.',
  }),
  REDIS_SENTINEL_AUTH: setting({
    group: 'redis',
    default: undefined,
    parse: text,
    secret: true,
    description: 'With `REDIS_TYPE=sentinel`: credentials for the sentinels themselves (`password` or `username:password`), as in envoyproxy/ratelimit. Unset: sentinels are asked without AUTH; `REDIS_AUTH` is for the data nodes.',
  }),
  REDIS_TLS: setting({ group: 'redis', default: 'false', parse: parseBool, description: 'Connect to Redis over TLS (also implied by a `rediss://` URL).' }),
  REDIS_COMMAND_TIMEOUT_MS: setting({
    group: 'redis',
    default: '50',
    parse: integer(1, 60_000),
    description: 'Milliseconds a Redis call may take before the request is answered as backend-unavailable (gRPC `UNAVAILABLE`, so Envoy\'s `failure_mode_deny` decides).',
  }),
  REDIS_CONNECT_TIMEOUT_MS: setting({ group: 'redis', default: '1000', parse: integer(1, 600_000), description: 'Milliseconds to wait for a Redis connection to open.' }),
  // resilience
  FAILURE_POLICY: setting({
    group: 'resilience',
    default: 'deny',
    parse: oneOf<FailurePolicy>(FAILURE_POLICIES),
    description:
      'What to answer when Redis fails or the circuit breaker is open: `deny` answers gRPC `UNAVAILABLE` so Envoy\'s `failure_mode_deny` decides (and readiness turns NOT_SERVING while the breaker is open); `allow` answers `OK`, marked degraded; `local` keeps enforcing with in-process counters at each limit divided by `LOCAL_FALLBACK_REPLICAS`, marked degraded. A domain\'s `failure_mode` in the config overrides it.',
  }),
  LOCAL_FALLBACK_REPLICAS: setting({
    group: 'resilience',
    default: '1',
    parse: integer(1, 10_000),
    description:
      'With the `local` policy, the number of meshlimit replicas sharing the traffic: each replica enforces ceil(limit / replicas) on its own while Redis is away.',
  }),
  BREAKER_ENABLED: setting({ group: 'resilience', default: 'true', parse: parseBool, description: 'Put a circuit breaker around the Redis backend (ignored for `memory`).' }),
  BREAKER_FAILURE_RATIO: setting({
    group: 'resilience',
    default: '0.5',
    parse: ratio,
    description: 'The breaker opens when at least this share (0 < r <= 1) of the calls in `BREAKER_WINDOW_MS` failed with a transient error (timeout, connection refused/reset, CLUSTERDOWN, TRYAGAIN, LOADING, failover). Script and argument errors never count.',
  }),
  BREAKER_MINIMUM_CALLS: setting({ group: 'resilience', default: '10', parse: integer(1, 1_000_000), description: 'Calls needed in the window before the failure ratio is judged.' }),
  BREAKER_WINDOW_MS: setting({ group: 'resilience', default: '10000', parse: integer(100, 3_600_000), description: 'Sliding window (ms) over which failures are counted.' }),
  BREAKER_OPEN_MS: setting({ group: 'resilience', default: '2000', parse: integer(10, 3_600_000), description: 'How long (ms) the breaker stays open, answering by the failure policy without touching Redis, before it lets probes through.' }),
  BREAKER_HALF_OPEN_PROBES: setting({ group: 'resilience', default: '3', parse: integer(1, 1000), description: 'Trial calls let through when half-open: all succeeding closes the breaker, one transient failure reopens it.' }),
  DEGRADED_HEADER: setting({
    group: 'resilience',
    default: undefined,
    parse: headerName,
    description:
      'When set, degraded answers (policy `allow` or `local`) carry this response header with the reason (`circuit_open`, `backend_error`, `local_fallback`). Degraded answers always carry `dynamic_metadata` `meshlimit.degraded`.',
  }),
  // limiter
  SHADOW_MODE: setting({
    group: 'limiter',
    default: 'false',
    parse: parseBool,
    description: 'Global shadow mode: counters and metrics work as usual but every request is answered `OK`, as in envoyproxy/ratelimit.',
  }),
  CHARGE_ON_DENY: setting({
    group: 'limiter',
    default: 'false',
    parse: parseBool,
    description:
      '`false`: a denied request consumes nothing, so a client that keeps retrying regains access as soon as the window allows. `true`: every request is counted, denied or not (envoyproxy/ratelimit\'s behaviour).',
  }),
  // headers
  LIMIT_RESPONSE_HEADERS_ENABLED: setting({
    group: 'headers',
    default: 'false',
    parse: parseBool,
    description: 'Add rate-limit headers (limit, remaining, reset) to responses through `response_headers_to_add`.',
  }),
  LIMIT_LIMIT_HEADER: setting({ group: 'headers', default: 'RateLimit-Limit', parse: headerName, description: 'Name of the header carrying the limit of the descriptor closest to its limit.' }),
  LIMIT_REMAINING_HEADER: setting({ group: 'headers', default: 'RateLimit-Remaining', parse: headerName, description: 'Name of the header carrying the requests left in that limit.' }),
  LIMIT_RESET_HEADER: setting({ group: 'headers', default: 'RateLimit-Reset', parse: headerName, description: 'Name of the header carrying the seconds until that limit resets.' }),
  LOCAL_CACHE_SIZE: setting({
    group: 'limiter',
    default: '0',
    parse: integer(0, 10_000_000),
    description:
      'Fixed-window counters remembered in-process as over their limit until their window ends, so a hot key that keeps being denied costs no Redis round trip (0 = off; envoyproxy/ratelimit has LOCAL_CACHE_SIZE_IN_BYTES). Exact for fixed windows (a count never goes down within a window; cleared on every config reload); sliding windows and token buckets are never cached. With `CHARGE_ON_DENY=true`, cached denials are not counted, as upstream.',
  }),
  // log
  LOG_LEVEL: setting({
    group: 'log',
    default: 'info',
    parse: oneOf<LogLevel>(LOG_LEVELS, { warning: 'warn', panic: 'fatal' }),
    description:
      '`trace`, `debug`, `info`, `warn`, `error` or `fatal`, any case (`warning` and `panic` are accepted as in envoyproxy/ratelimit, which defaults to `warn`).',
  }),
  LOG_FORMAT: setting({
    group: 'log',
    default: 'text',
    parse: oneOf<LogFormat>(['text', 'json']),
    description: '`text` (one `key=value` line per event) or `json` (one JSON object per line, for log collectors).',
  }),
  // lifecycle
  WORKERS: setting({
    group: 'lifecycle',
    default: '1',
    parse: workers,
    description:
      'Processes serving the same ports (Node cluster), so one pod can use every core: an integer, or `auto` for one per CPU. More than 1 requires `BACKEND_TYPE=redis` (memory counters are per process). `/metrics` then reports the sum over all workers.',
  }),
  GRACEFUL_SHUTDOWN_MS: setting({
    group: 'lifecycle',
    default: '10000',
    parse: integer(0, 600_000),
    description: 'On SIGTERM/SIGINT, milliseconds to let in-flight requests finish before connections are closed.',
  }),
} as const;

type Defs = typeof DEFS;
export type SettingName = keyof Defs;
type Parsed = { [K in SettingName]: ReturnType<Defs[K]['parse']> | (Defs[K]['default'] extends string ? never : undefined) };

/** Every setting, in documentation order. */
export const SETTINGS: readonly SettingSpec[] = Object.freeze(
  (Object.keys(DEFS) as SettingName[]).map((name) => Object.freeze({ name, ...DEFS[name] }) as SettingSpec),
);

// ---------------------------------------------------------------------------------------------
// The typed result.

export interface RedisNode {
  readonly host: string;
  readonly port: number;
}

export interface RedisSettings {
  readonly type: RedisType;
  readonly socketType: RedisSocketType;
  /** REDIS_URL as given with any password replaced by `[REDACTED]`: for logs, never for connecting. */
  readonly url: string;
  /** single: the server; cluster: the seed nodes; sentinel: the sentinels. Empty for a Unix socket. */
  readonly nodes: readonly RedisNode[];
  /** Socket path when `socketType` is `unix`. */
  readonly path: string | undefined;
  /** The master name when `type` is `sentinel`. */
  readonly sentinelMasterName: string | undefined;
  /** REDIS_SENTINEL_AUTH, for the sentinels themselves. A secret. */
  readonly sentinelAuth: string | undefined;
  /** From REDIS_AUTH or the URL. */
  readonly username: string | undefined;
  /** From REDIS_AUTH or the URL. A secret: see {@link redactedSettings}. */
  readonly password: string | undefined;
  /** Logical database from a `redis://host/db` URL; always 0 for a cluster. */
  readonly db: number;
  readonly tls: boolean;
  readonly commandTimeoutMs: number;
  readonly connectTimeoutMs: number;
}

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
  readonly grpc: { readonly host: string; readonly port: number };
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

// ---------------------------------------------------------------------------------------------
// Loading.

type Env = Readonly<Record<string, string | undefined>>;

/**
 * Reads, validates and freezes the settings. Throws a {@link SettingsError} naming the variable
 * (or a {@link SettingsErrors} listing every bad variable).
 */
export function loadSettings(env: Env = process.env): Settings {
  const errors: SettingsError[] = [];
  const given = (name: SettingName): boolean => (env[name] ?? '') !== '';
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
  // REDIS_* are composed only when each of them parsed, so every error names its real cause.
  const p = parsed as Parsed;
  const redisParsed = !errors.some((e) => e.setting.startsWith('REDIS_'));
  const redis = redisParsed ? composeRedis(p, errors) : undefined;
  if (p.WORKERS !== undefined && p.WORKERS > 1 && p.BACKEND_TYPE === 'memory') {
    errors.push(new SettingsError('WORKERS', `${p.WORKERS} workers need BACKEND_TYPE=redis: the memory backend's counters are per process, so each worker would admit the full limit`));
  }
  if (errors.length > 0 || redis === undefined) throw combine(errors);

  const runtime: RuntimeLayout | undefined =
    !given('CONFIG_DIR') && p.RUNTIME_ROOT !== undefined
      ? { root: p.RUNTIME_ROOT, subdirectory: p.RUNTIME_SUBDIRECTORY, appDirectory: p.RUNTIME_APPDIRECTORY, watchRoot: p.RUNTIME_WATCH_ROOT }
      : undefined;

  const settings: Settings = {
    http: { host: p.HOST, port: p.PORT },
    grpc: { host: p.GRPC_HOST, port: p.GRPC_PORT },
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
    headers: { enabled: p.LIMIT_RESPONSE_HEADERS_ENABLED, limit: p.LIMIT_LIMIT_HEADER, remaining: p.LIMIT_REMAINING_HEADER, reset: p.LIMIT_RESET_HEADER },
    log: { level: p.LOG_LEVEL, format: p.LOG_FORMAT },
    lifecycle: { gracefulShutdownMs: p.GRACEFUL_SHUTDOWN_MS, workers: p.WORKERS },
  };
  return deepFreeze(settings);
}

/** One error, or all of them in table order. */
function combine(errors: readonly SettingsError[]): SettingsError {
  const order = (e: SettingsError): number => SETTINGS.findIndex((s) => s.name === e.setting);
  const sorted = [...errors].sort((a, b) => order(a) - order(b));
  return sorted.length === 1 ? (sorted[0] as SettingsError) : new SettingsErrors(sorted);
}

interface Endpoint {
  readonly node: RedisNode;
  readonly tls: boolean;
  readonly username: string | undefined;
  readonly password: string | undefined;
  readonly db: number;
}

const REDACTED = '[REDACTED]';

/** Parses one `host:port`, `[v6]:port`, `host`, `redis://...` or `rediss://...` item of REDIS_URL. */
function parseEndpoint(item: string): Endpoint {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(item)?.[1]?.toLowerCase();
  if (scheme !== undefined) {
    if (scheme !== 'redis' && scheme !== 'rediss') throw new InvalidValue(`unsupported scheme "${scheme}://" (use redis:// or rediss://)`);
    let url: URL;
    try {
      url = new URL(item);
    } catch {
      throw new InvalidValue(`${JSON.stringify(redactUrlItem(item))} is not a valid URL`);
    }
    if (url.search !== '' || url.hash !== '') throw new InvalidValue(`${JSON.stringify(redactUrlItem(item))}: query strings and fragments are not supported`);
    const dbText = url.pathname.replace(/^\//, '');
    if (dbText !== '' && !/^\d+$/.test(dbText)) throw new InvalidValue(`${JSON.stringify(redactUrlItem(item))}: the path must be a database number`);
    const username = url.username === '' ? undefined : decodeURIComponent(url.username);
    const password = url.password === '' ? undefined : decodeURIComponent(url.password);
    if (username !== undefined && password === undefined) {
      throw new InvalidValue(`${JSON.stringify(redactUrlItem(item))} has a user name but no password; write redis://:password@host for a password alone`);
    }
    const hostname = url.hostname.replace(/^\[(.*)\]$/, '$1');
    if (hostname === '') throw new InvalidValue(`${JSON.stringify(redactUrlItem(item))} has no host`);
    return { node: { host: hostname, port: url.port === '' ? 6379 : Number(url.port) }, tls: scheme === 'rediss', username, password, db: dbText === '' ? 0 : Number(dbText) };
  }
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^\s:/@[\]]+))(?::(\d+))?$/.exec(item);
  if (m === null) throw new InvalidValue(`expected host:port, [ipv6]:port, redis://... or rediss://..., got ${JSON.stringify(item)}`);
  const portNumber = m[3] === undefined ? 6379 : Number(m[3]);
  if (portNumber < 1 || portNumber > 65_535) throw new InvalidValue(`port must be from 1 to 65535, got ${JSON.stringify(item)}`);
  return { node: { host: (m[1] ?? m[2]) as string, port: portNumber }, tls: false, username: undefined, password: undefined, db: 0 };
}

function redactUrlItem(item: string): string {
  return item.replace(/^([a-z][a-z0-9+.-]*:\/\/)([^@/]*)@/i, (_all, scheme: string, userinfo: string) => {
    const colon = userinfo.indexOf(':');
    return colon < 0 ? `${scheme}${userinfo}@` : `${scheme}${userinfo.slice(0, colon)}:${REDACTED}@`;
  });
}

/** REDIS_URL with every password replaced by `[REDACTED]`. */
export function redactRedisUrl(url: string): string {
  return url
    .split(',')
    .map((item) => redactUrlItem(item.trim()))
    .join(',');
}

function composeRedis(p: Parsed, errors: SettingsError[]): RedisSettings | undefined {
  const fail = (name: SettingName, detail: string): undefined => {
    errors.push(new SettingsError(name, detail));
    return undefined;
  };
  const base = {
    type: p.REDIS_TYPE,
    socketType: p.REDIS_SOCKET_TYPE,
    url: redactRedisUrl(p.REDIS_URL),
    commandTimeoutMs: p.REDIS_COMMAND_TIMEOUT_MS,
    connectTimeoutMs: p.REDIS_CONNECT_TIMEOUT_MS,
  };
  const auth = p.REDIS_AUTH;
  const raw = p.REDIS_URL.trim();

  if (p.REDIS_SOCKET_TYPE === 'unix') {
    if (p.REDIS_TYPE !== 'single') return fail('REDIS_SOCKET_TYPE', `unix sockets work only with REDIS_TYPE=single, got REDIS_TYPE=${p.REDIS_TYPE}`);
    if (raw.includes(',') || raw.includes('://')) return fail('REDIS_URL', `with REDIS_SOCKET_TYPE=unix, expected a socket path, got ${JSON.stringify(redactRedisUrl(raw))}`);
    return { ...base, nodes: [], path: raw, sentinelMasterName: undefined, sentinelAuth: undefined, username: auth?.username, password: auth?.password, db: 0, tls: p.REDIS_TLS };
  }

  const items = raw.split(',').map((s) => s.trim());
  if (items.some((s) => s === '')) return fail('REDIS_URL', `empty item in the comma-separated list ${JSON.stringify(redactRedisUrl(raw))}`);
  let sentinelMasterName: string | undefined;
  if (p.REDIS_TYPE === 'sentinel') {
    if (items.length < 2) return fail('REDIS_URL', 'with REDIS_TYPE=sentinel, expected "master-name,host:port[,host:port...]" (the master name, then at least one sentinel)');
    sentinelMasterName = items.shift() as string;
    if (!/^[^\s:/@]+$/.test(sentinelMasterName)) return fail('REDIS_URL', `with REDIS_TYPE=sentinel, the first item must be the master name, got ${JSON.stringify(sentinelMasterName)}`);
  } else if (p.REDIS_TYPE === 'single' && items.length > 1) {
    return fail('REDIS_URL', 'REDIS_TYPE=single takes one address; set REDIS_TYPE=cluster for a seed list or REDIS_TYPE=sentinel for sentinels');
  }

  const endpoints: Endpoint[] = [];
  for (const item of items) {
    try {
      endpoints.push(parseEndpoint(item));
    } catch (err) {
      if (!(err instanceof InvalidValue)) throw err;
      return fail('REDIS_URL', err.message);
    }
  }
  const first = endpoints[0] as Endpoint;
  const same = (f: (e: Endpoint) => unknown): boolean => endpoints.every((e) => f(e) === f(first));
  if (!same((e) => e.tls)) return fail('REDIS_URL', 'mixes redis:// and rediss:// items; use one scheme for every node');
  if (!same((e) => e.username) || !same((e) => e.password)) return fail('REDIS_URL', 'items carry different credentials; give them once, in REDIS_AUTH');
  if (!same((e) => e.db)) return fail('REDIS_URL', 'items name different databases');
  if (p.REDIS_TYPE === 'cluster' && first.db !== 0) return fail('REDIS_URL', `Redis Cluster has only database 0, got /${first.db}`);
  if (first.password !== undefined && auth !== undefined) return fail('REDIS_AUTH', 'credentials are given both in REDIS_URL and REDIS_AUTH; give them in one place');

  return {
    ...base,
    nodes: endpoints.map((e) => e.node),
    path: undefined,
    sentinelMasterName,
    sentinelAuth: p.REDIS_SENTINEL_AUTH,
    username: auth ? auth.username : first.username,
    password: auth ? auth.password : first.password,
    db: first.db,
    tls: p.REDIS_TLS || first.tls,
  };
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/**
 * A copy safe to log: secrets (the Redis password) replaced by `[REDACTED]`. `redis.url` is
 * already redacted by {@link loadSettings}.
 */
export function redactedSettings(settings: Settings): Settings {
  const copy: Settings = {
    ...settings,
    redis: {
      ...settings.redis,
      password: settings.redis.password === undefined ? undefined : REDACTED,
      sentinelAuth: settings.redis.sentinelAuth === undefined ? undefined : REDACTED,
      url: redactRedisUrl(settings.redis.url),
    },
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
