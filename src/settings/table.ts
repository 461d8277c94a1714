import { BACKEND_TYPES, type BackendType } from '../backend/index.js';
import { DEFAULT_STRING_LIMITS } from '../limiter/string-limits.js';
import { REDIS_DEFS } from './redis-table.js';
import { FAILURE_POLICIES, type FailurePolicy } from '../limiter/types.js';
import { LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel } from '../telemetry/logger.js';
import {
  headerName,
  share,
  host,
  integer,
  InvalidValue,
  keyPrefix,
  oneOf,
  parseBool,
  port,
  setting,
  text,
  workers,
  type SettingSpec,
} from './spec.js';
import { ADMIN_DEFS } from './admin-table.js';
import { ADMIN_TLS_DEFS } from './admin-tls.js';
import { GRPC_TRANSPORT_DEFS } from './grpc-table.js';
import { GRPC_TLS_DEFS } from './grpc-tls.js';
import { RLQS_DEFS } from './rlqs-table.js';
import { CONFIG_SOURCE_DEFS } from './xds.js';
import {
  UPSTREAM_CONFIG_DEFS,
  UPSTREAM_HTTP_DEFS,
  UPSTREAM_LIMITER_DEFS,
  UPSTREAM_RESILIENCE_DEFS,
  UPSTREAM_TRACING_DEFS,
} from './upstream-table.js';

/**
 * The table: every environment variable meshlimit reads, one row each, in documentation order
 * (the README's settings table is generated from it). The rows are read as one list and the
 * typed {@link Parsed} record is derived from this one object; only the Redis rows, which are
 * many and change together, are kept in ./redis-table.ts and spread in place.
 */

function backendType(raw: string): BackendType {
  const v = raw.trim().toLowerCase();
  if (v === 'memcache' || v === 'memcached') {
    throw new InvalidValue(
      'memcache is not supported by meshlimit (its counters cannot be updated atomically with the rate-limit algorithms); use redis or memory',
    );
  }
  return oneOf<BackendType>(BACKEND_TYPES)(raw);
}

const DEFS = {
  // http
  HOST: setting({
    group: 'http',
    default: '0.0.0.0',
    parse: host,
    description:
      'Address the HTTP admin server (`/healthcheck`, `/json`, `/rlconfig`, `/metrics`, the admin API and console) binds to. `127.0.0.1` keeps it to this host (e.g. reached by `kubectl port-forward`).',
  }),
  PORT: setting({ group: 'http', default: '8080', parse: port, description: 'Port of the HTTP admin server. `0` picks a free port.' }),
  ...UPSTREAM_HTTP_DEFS,
  ...ADMIN_DEFS,
  ...ADMIN_TLS_DEFS,
  // grpc
  GRPC_HOST: setting({
    group: 'grpc',
    default: '0.0.0.0',
    parse: host,
    description: 'Address the gRPC server (`envoy.service.ratelimit.v3.RateLimitService`, `grpc.health.v1.Health`) binds to.',
  }),
  GRPC_PORT: setting({ group: 'grpc', default: '8081', parse: port, description: 'Port of the gRPC server. `0` picks a free port.' }),
  ...GRPC_TRANSPORT_DEFS,
  ...GRPC_TLS_DEFS,
  ...RLQS_DEFS,
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
  RUNTIME_SUBDIRECTORY: setting({
    group: 'config',
    default: '',
    parse: text,
    description: 'Subdirectory of `RUNTIME_ROOT` (envoyproxy/ratelimit layout).',
  }),
  RUNTIME_APPDIRECTORY: setting({
    group: 'config',
    default: 'config',
    parse: text,
    description: 'Directory under `RUNTIME_ROOT/RUNTIME_SUBDIRECTORY` holding the config files (envoyproxy/ratelimit layout).',
  }),
  RUNTIME_WATCH_ROOT: setting({
    group: 'config',
    default: 'true',
    parse: parseBool,
    description:
      'With the `RUNTIME_ROOT` layout: `true` also reloads when `RUNTIME_ROOT` itself is swapped (a symlink pointed at a new tree), `false` watches only the config directory. Same meaning as in envoyproxy/ratelimit.',
  }),
  ...UPSTREAM_CONFIG_DEFS,
  MERGE_DOMAIN_CONFIG: setting({
    group: 'config',
    default: 'false',
    parse: parseBool,
    description:
      'As in envoyproxy/ratelimit: `true` lets several config files define one domain, their top-level descriptors merged into it (a descriptor defined in two files is still an error, and so are two `failure_mode` values or two `resolution` blocks for one domain); `false` makes a domain defined twice an error. `check-config` reads it too.',
  }),
  CONFIG_RELOAD_DEBOUNCE_MS: setting({
    group: 'config',
    default: '200',
    parse: integer(0, 60_000),
    description:
      'Milliseconds to wait after the last change in the config directory before reloading, so a burst of file events (a ConfigMap swap) causes one reload.',
  }),
  // config source (CONFIG_TYPE, FORCE_START_WITHOUT_INITIAL_CONFIG) and xds (the client's settings)
  ...CONFIG_SOURCE_DEFS,
  // backend
  BACKEND_TYPE: setting({
    group: 'backend',
    default: 'memory',
    parse: backendType,
    description:
      'Counter store: `memory` (one process; counters are not shared between replicas) or `redis` (shared by every replica). Unset, it is `redis` when `REDIS_URL` is set (as envoyproxy/ratelimit, whose default is `redis`: Envoy Gateway sets `REDIS_URL` and no `BACKEND_TYPE`), else `memory`; `memcache` is rejected.',
  }),
  CACHE_KEY_PREFIX: setting({
    group: 'backend',
    default: '',
    parse: keyPrefix,
    description:
      'String put in front of every counter key, e.g. to share a Redis between deployments. Must not contain `{`, `}`, whitespace or control characters.',
  }),
  MEMORY_MAX_KEYS: setting({
    group: 'backend',
    default: '1000000',
    parse: integer(1, 100_000_000),
    description:
      'Most counters the `memory` backend holds at once, so a flood of distinct descriptor values cannot exhaust the heap: a counter takes up to about 450 bytes, so the default is a budget of about 450 MB. When full, the least recently used counter is dropped.',
  }),
  // redis (./redis-table.ts)
  ...REDIS_DEFS,
  // resilience
  FAILURE_POLICY: setting({
    group: 'resilience',
    default: 'deny',
    parse: oneOf<FailurePolicy>(FAILURE_POLICIES),
    description:
      "What to answer when Redis fails or the circuit breaker is open: `deny` answers gRPC `UNAVAILABLE` so Envoy's `failure_mode_deny` decides (and readiness turns NOT_SERVING while the breaker is open); `allow` answers `OK`, marked degraded; `local` keeps enforcing with in-process counters at each limit divided by `LOCAL_FALLBACK_REPLICAS`, marked degraded. A domain's `failure_mode` in the config overrides it.",
  }),
  LOCAL_FALLBACK_REPLICAS: setting({
    group: 'resilience',
    default: '1',
    parse: integer(1, 10_000),
    description:
      'With the `local` policy, the number of meshlimit replicas sharing the traffic: each replica enforces ceil(limit / replicas) on its own while Redis is away.',
  }),
  BREAKER_ENABLED: setting({
    group: 'resilience',
    default: 'true',
    parse: parseBool,
    description: 'Put a circuit breaker around the Redis backend (ignored for `memory`).',
  }),
  BREAKER_CONSECUTIVE_FAILURES: setting({
    group: 'resilience',
    default: '5',
    parse: integer(1, 1_000_000),
    description:
      'The breaker opens when this many Redis calls in a row failed (connection refused or reset, CLUSTERDOWN, LOADING, READONLY, ...). Counted per call, never per request: a call carries every request of an event-loop turn. A timeout is not a failure here (see `BREAKER_SILENCE_MS`); script and argument errors never count.',
  }),
  BREAKER_SILENCE_MS: setting({
    group: 'resilience',
    default: '250',
    parse: integer(1, 600_000),
    description:
      'The breaker opens when Redis calls have waited this long (ms) without any reply at all, on time or late: a hung or stopped Redis. A busy machine whose replies come late never opens it, and a lost connection opens it at once.',
  }),
  BREAKER_OPEN_MS: setting({
    group: 'resilience',
    default: '2000',
    parse: integer(10, 3_600_000),
    description:
      'How long (ms) the breaker stays open, answering by the failure policy without touching Redis, before it lets probes through.',
  }),
  BREAKER_HALF_OPEN_PROBES: setting({
    group: 'resilience',
    default: '3',
    parse: integer(1, 1000),
    description: 'Trial calls let through when half-open: all succeeding closes the breaker, one transient failure reopens it.',
  }),
  ...UPSTREAM_RESILIENCE_DEFS,
  DEGRADED_HEADER: setting({
    group: 'resilience',
    default: undefined,
    parse: headerName,
    description:
      'When set, degraded answers (policy `allow` or `local`) carry this response header with the reason (`circuit_open`, `backend_error`, `local_fallback`, `overloaded`). Degraded answers always carry `dynamic_metadata` `meshlimit.degraded`.',
  }),
  ADMISSION_MAX_OUTSTANDING: setting({
    group: 'resilience',
    default: '1000',
    parse: integer(0, 1_000_000),
    description:
      'Requests of one process allowed to wait on Redis at once (about what it settles within one `REDIS_COMMAND_TIMEOUT_MS` at full speed); beyond it a request is shed before anything is sent to Redis, charges nothing, and is answered by the failure policy with reason `overloaded`. `0` disables the bound. Not used by the memory backend.',
  }),
  ADMISSION_MAX_EVENT_LOOP_DELAY_MS: setting({
    group: 'resilience',
    default: '250',
    parse: integer(0, 60_000),
    description:
      'While the event loop has lately been delayed by more than this (ms, largest delay in the last 100-200 ms), requests for Redis are shed as `overloaded`, as above: a process that stalls this long answers after Envoy has given up (its RLS timeout defaults to 20 ms) anyway. The default leaves room for garbage collection and brief CPU throttling. `0` disables the check.',
  }),
  // limiter
  SHADOW_MODE: setting({
    group: 'limiter',
    default: 'false',
    parse: parseBool,
    description:
      "Global shadow mode, as in envoyproxy/ratelimit: counters and metrics work as usual but the overall answer is always `OK`; each descriptor's status still says `OVER_LIMIT` when it is over, so Envoy lets the request through and the statuses show what would have been limited.",
  }),
  QUOTA_MODE: setting({
    group: 'limiter',
    default: 'false',
    parse: parseBool,
    description:
      'Global quota mode, as in envoyproxy/ratelimit: every descriptor is treated as `quota_mode: true` (its status says `OVER_LIMIT` when over, but the request is `OVER_LIMIT` only when all of its descriptors are; requests are charged as upstream charges them).',
  }),
  RESPONSE_DYNAMIC_METADATA: setting({
    group: 'limiter',
    default: 'false',
    parse: parseBool,
    description:
      "As in envoyproxy/ratelimit: every answer carries `dynamic_metadata` with `domain`, `descriptors` (each with its `entries` as `key=value`, and its `limit` and `hitsAddend` when sent), `hitsAddend` (when not 0) and `metadata`, the config `metadata` of the descriptors that passed, merged (first value of a key wins). meshlimit's `meshlimit.degraded` key is added alongside when an answer is degraded.",
  }),
  CHARGE_ON_DENY: setting({
    group: 'limiter',
    default: 'false',
    parse: parseBool,
    description:
      "`false`: a denied request consumes nothing, so a client that keeps retrying regains access as soon as the window allows. `true`: every request is counted, denied or not (envoyproxy/ratelimit's behaviour).",
  }),
  ...UPSTREAM_LIMITER_DEFS,
  // headers
  LIMIT_RESPONSE_HEADERS_ENABLED: setting({
    group: 'headers',
    default: 'false',
    parse: parseBool,
    description: 'Add rate-limit headers (limit, remaining, reset) to responses through `response_headers_to_add`.',
  }),
  LIMIT_LIMIT_HEADER: setting({
    group: 'headers',
    default: 'RateLimit-Limit',
    parse: headerName,
    description: 'Name of the header carrying the limit of the descriptor closest to its limit.',
  }),
  LIMIT_REMAINING_HEADER: setting({
    group: 'headers',
    default: 'RateLimit-Remaining',
    parse: headerName,
    description: 'Name of the header carrying the requests left in that limit.',
  }),
  LIMIT_RESET_HEADER: setting({
    group: 'headers',
    default: 'RateLimit-Reset',
    parse: headerName,
    description: 'Name of the header carrying the seconds until that limit resets.',
  }),
  SOFT_LIMIT_HEADER: setting({
    group: 'headers',
    default: undefined,
    parse: headerName,
    description:
      'When set, an admitted answer carries this response header (`response_headers_to_add`) when a descriptor has used more than `SOFT_LIMIT_SHARE` of its limit, so clients can slow down before a 429 (the soft-breach signal proposed for envoyproxy/ratelimit in PR #1215; there is no upstream name to follow, so the name is yours). Its value is the share used, in whole percent, of the admitted descriptor closest to its limit; denied answers do not carry it.',
  }),
  SOFT_LIMIT_SHARE: setting({
    group: 'headers',
    default: '0.8',
    parse: share,
    description: 'The share of a limit (between 0 and 1) past which `SOFT_LIMIT_HEADER` is sent; a token bucket counts against its burst.',
  }),
  LOCAL_CACHE_SIZE: setting({
    group: 'limiter',
    default: '0',
    parse: integer(0, 10_000_000),
    description:
      'Fixed-window counters remembered in-process as over their limit until their window ends, so a hot key that keeps being denied costs no Redis round trip (0 = off; envoyproxy/ratelimit has LOCAL_CACHE_SIZE_IN_BYTES). Exact for fixed windows (a count never goes down within a window; cleared on every config reload); sliding windows and token buckets are never cached. With `CHARGE_ON_DENY=true`, cached denials are not counted, as upstream.',
  }),
  MAX_DESCRIPTOR_VALUE_BYTES: setting({
    group: 'limiter',
    default: String(DEFAULT_STRING_LIMITS.maxValueBytes),
    parse: integer(64, 1_048_576),
    description: `Largest descriptor value accepted, in UTF-8 bytes; a request with a longer one is \`INVALID_ARGUMENT\` naming the field (as are a domain or key over ${DEFAULT_STRING_LIMITS.maxDomainBytes} bytes). The default is above Envoy's default limit on all request headers together (60 KiB), so no value Envoy forwards by default is refused: a refused RLS call is let through unlimited by Envoy's default \`failure_mode_deny: false\`. Raise it with Envoy's \`max_request_headers_kb\`.`,
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
    parse: oneOf<LogFormat>(LOG_FORMATS),
    description: '`text` (one `key=value` line per event) or `json` (one JSON object per line, for log collectors).',
  }),
  // tracing (the TRACING_* rows; the OTEL_* variables are read by the OpenTelemetry SDK itself)
  ...UPSTREAM_TRACING_DEFS,
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
export type Parsed = { [K in SettingName]: ReturnType<Defs[K]['parse']> | (Defs[K]['default'] extends string ? never : undefined) };

/** Every setting, in documentation order. */
export const SETTINGS: readonly SettingSpec[] = Object.freeze(
  (Object.keys(DEFS) as SettingName[]).map((name) => Object.freeze({ name, ...DEFS[name] }) as SettingSpec),
);

/**
 * Settings meshlimit read once and no longer does, with what replaced them. Set, they stop
 * start-up with that pointer: a setting that silently does nothing would leave a user believing
 * it still tunes something.
 */
export const RETIRED_SETTINGS: Readonly<Record<string, string>> = Object.freeze({
  BREAKER_FAILURE_RATIO:
    'no longer used: the breaker no longer judges a failure ratio (a burst of requests from one timed-out call opened it); it opens after BREAKER_CONSECUTIVE_FAILURES failed calls in a row or BREAKER_SILENCE_MS without any reply from Redis',
  BREAKER_MINIMUM_CALLS: 'no longer used: see BREAKER_CONSECUTIVE_FAILURES and BREAKER_SILENCE_MS',
  BREAKER_WINDOW_MS: 'no longer used: see BREAKER_CONSECUTIVE_FAILURES and BREAKER_SILENCE_MS',
});
