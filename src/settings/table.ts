import { BACKEND_TYPES, REDIS_TYPES, type BackendType, type RedisType } from '../backend/index.js';
import { REDIS_SOCKET_TYPES, redisAuth, type RedisSocketType } from './redis.js';
import { FAILURE_POLICIES, type FailurePolicy } from '../limiter/types.js';
import { LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel } from '../telemetry/logger.js';
import {
  goDuration,
  headerName,
  host,
  integer,
  InvalidValue,
  keyPrefix,
  oneOf,
  parseBool,
  port,
  positiveDuration,
  ratio,
  setting,
  text,
  workers,
  type SettingSpec,
} from './spec.js';

/**
 * The table: every environment variable meshlimit reads, one row each, in documentation order
 * (the README's settings table is generated from it). One file on purpose: the rows are read as
 * one list, and the typed {@link Parsed} record is derived from this one object.
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
    description: 'Address the HTTP admin server (`/healthcheck`, `/json`, `/rlconfig`, `/metrics`) binds to.',
  }),
  PORT: setting({ group: 'http', default: '8080', parse: port, description: 'Port of the HTTP admin server. `0` picks a free port.' }),
  // grpc
  GRPC_HOST: setting({
    group: 'grpc',
    default: '0.0.0.0',
    parse: host,
    description: 'Address the gRPC server (`envoy.service.ratelimit.v3.RateLimitService`, `grpc.health.v1.Health`) binds to.',
  }),
  GRPC_PORT: setting({ group: 'grpc', default: '8081', parse: port, description: 'Port of the gRPC server. `0` picks a free port.' }),
  GRPC_MAX_CONCURRENT_STREAMS: setting({
    group: 'grpc',
    default: '256',
    parse: integer(1, 2_147_483_647),
    description:
      'Streams (calls in flight) one gRPC connection may have open, advertised as HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS; the client must wait or open another connection (Envoy does). grpc-js would advertise 2^32-1.',
  }),
  GRPC_MAX_OPEN_STREAMS: setting({
    group: 'grpc',
    default: '10000',
    parse: integer(1, 100_000_000),
    description:
      'Streams open at once over all gRPC connections of the process; a stream beyond it is refused at once (RST_STREAM REFUSED_STREAM), so the memory clients can pin is bounded however many connections they open (about 7.5 KB per stream).',
  }),
  GRPC_MAX_CONNECTIONS: setting({
    group: 'grpc',
    default: '1000',
    parse: integer(1, 1_000_000),
    description:
      'gRPC connections open at once (per process with `WORKERS`); one beyond it is closed as soon as it is accepted. Each Envoy holds about one connection per worker thread: raise it for a mesh where many sidecars call meshlimit.',
  }),
  GRPC_MAX_CONNECTION_IDLE: setting({
    group: 'grpc',
    default: '5m',
    parse: goDuration,
    description:
      "A gRPC connection without a call for this long is closed with GOAWAY (Envoy reconnects on its next call). Go duration syntax (`30s`, `5m`, `1h30m`); `0` never. Named after grpc-go's `MaxConnectionIdle`.",
  }),
  GRPC_MAX_CONNECTION_AGE: setting({
    group: 'grpc',
    default: '24h',
    parse: goDuration,
    description:
      "A gRPC connection this old (+-10% jitter) is sent GOAWAY, so clients reconnect and spread over replicas. Go duration syntax as in envoyproxy/ratelimit, same default; `0` never. Durations of 24.8 days or more (a Node timer's limit) also mean never.",
  }),
  GRPC_MAX_CONNECTION_AGE_GRACE: setting({
    group: 'grpc',
    default: '1h',
    parse: goDuration,
    description:
      "After that GOAWAY, how long the connection's calls may still run before it is closed. Go duration syntax as in envoyproxy/ratelimit, same default; `0` no limit.",
  }),
  GRPC_STREAM_TIMEOUT_MS: setting({
    group: 'grpc',
    default: '5000',
    parse: integer(1, 3_600_000),
    description:
      'Milliseconds a gRPC stream may take to deliver its whole request, and a unary call (`ShouldRateLimit`, health `Check`) to end; past it the stream is reset (RST_STREAM CANCEL), so clients that never finish a request cannot hold streams. A health `Watch` lives on once its request is complete. Reset between 1 and 1.25 times this after the stream opened.',
  }),
  GRPC_KEEPALIVE_TIME: setting({
    group: 'grpc',
    default: '60s',
    parse: goDuration,
    description: 'meshlimit PINGs each gRPC client this often, to drop connections to peers that vanished. Go duration syntax; `0` off.',
  }),
  GRPC_KEEPALIVE_TIMEOUT: setting({
    group: 'grpc',
    default: '20s',
    parse: positiveDuration,
    description: 'A client that has not answered that PING within this is disconnected. Go duration syntax.',
  }),
  GRPC_PERMIT_KEEPALIVE_TIME: setting({
    group: 'grpc',
    default: '10s',
    parse: goDuration,
    description:
      "Keepalive enforcement: a client PING sooner than this after its previous one, with no new call in between, is a strike (grpc-go's `EnforcementPolicy.MinTime`, grpc-java's `permitKeepAliveTime`; grpc-go defaults to 5 minutes). Go duration syntax.",
  }),
  GRPC_MAX_PING_STRIKES: setting({
    group: 'grpc',
    default: '2',
    parse: integer(0, 1_000_000),
    description:
      'Strikes a gRPC connection may collect; the next one closes it with GOAWAY ENHANCE_YOUR_CALM `too_many_pings` (what grpc clients read to slow their keepalive down), as grpc-go does.',
  }),
  GRPC_MAX_RESET_STREAMS: setting({
    group: 'grpc',
    default: '200',
    parse: integer(1, 1_000_000),
    description:
      'HTTP/2 rapid-reset protection: streams a client may reset (cancel) on one connection beyond those it let end; each call that ends normally earns one back, up to this number. Past it the connection is closed with GOAWAY ENHANCE_YOUR_CALM `too_many_resets`. A client that cancels some calls at its timeout (Envoy) never gets there; a reset flood does after this many resets.',
  }),
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
  CONFIG_RELOAD_DEBOUNCE_MS: setting({
    group: 'config',
    default: '200',
    parse: integer(0, 60_000),
    description:
      'Milliseconds to wait after the last change in the config directory before reloading, so a burst of file events (a ConfigMap swap) causes one reload.',
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
    description:
      'String put in front of every counter key, e.g. to share a Redis between deployments. Must not contain `{`, `}`, whitespace or control characters.',
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
    parse: oneOf<RedisType>(REDIS_TYPES),
    description:
      '`single` (one server or a proxy), `cluster` (`REDIS_URL` is a comma-separated seed list) or `sentinel` (`REDIS_URL` is `master-name,host:port,...`), case-insensitive as in envoyproxy/ratelimit.',
  }),
  REDIS_SOCKET_TYPE: setting({
    group: 'redis',
    default: 'tcp',
    parse: oneOf<RedisSocketType>(REDIS_SOCKET_TYPES),
    description:
      '`tcp`, or `unix` to connect to the Unix socket path in `REDIS_URL` (single only). envoyproxy/ratelimit defaults to `unix`.',
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
    description:
      'Redis credentials: `password`, or `username:password` for a Redis 6 ACL user, split at the first `:` as in envoyproxy/ratelimit; a password holding `:` is therefore given with its user (`default:pa:ss` for the default user), or in `REDIS_URL` (`redis://:pa%3Ass@host`).',
  }),
  REDIS_SENTINEL_AUTH: setting({
    group: 'redis',
    default: undefined,
    parse: redisAuth,
    secret: true,
    description:
      'With `REDIS_TYPE=sentinel`: credentials for the sentinels themselves (`password` or `username:password`), as in envoyproxy/ratelimit. Unset: sentinels are asked without AUTH; `REDIS_AUTH` is for the data nodes.',
  }),
  REDIS_TLS: setting({
    group: 'redis',
    default: 'false',
    parse: parseBool,
    description: 'Connect to Redis over TLS (also implied by a `rediss://` URL).',
  }),
  REDIS_COMMAND_TIMEOUT_MS: setting({
    group: 'redis',
    default: '50',
    parse: integer(1, 60_000),
    description:
      "Milliseconds a Redis call may take before the request is answered as backend-unavailable (gRPC `UNAVAILABLE`, so Envoy's `failure_mode_deny` decides).",
  }),
  REDIS_CONNECT_TIMEOUT_MS: setting({
    group: 'redis',
    default: '1000',
    parse: integer(1, 600_000),
    description: 'Milliseconds to wait for a Redis connection to open.',
  }),
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
  BREAKER_FAILURE_RATIO: setting({
    group: 'resilience',
    default: '0.5',
    parse: ratio,
    description:
      'The breaker opens when at least this share (0 < r <= 1) of the calls in `BREAKER_WINDOW_MS` failed with a transient error (timeout, connection refused/reset, CLUSTERDOWN, TRYAGAIN, LOADING, failover). Script and argument errors never count.',
  }),
  BREAKER_MINIMUM_CALLS: setting({
    group: 'resilience',
    default: '10',
    parse: integer(1, 1_000_000),
    description: 'Calls needed in the window before the failure ratio is judged.',
  }),
  BREAKER_WINDOW_MS: setting({
    group: 'resilience',
    default: '10000',
    parse: integer(100, 3_600_000),
    description: 'Sliding window (ms) over which failures are counted.',
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
      "`false`: a denied request consumes nothing, so a client that keeps retrying regains access as soon as the window allows. `true`: every request is counted, denied or not (envoyproxy/ratelimit's behaviour).",
  }),
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
    parse: oneOf<LogFormat>(LOG_FORMATS),
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
export type Parsed = { [K in SettingName]: ReturnType<Defs[K]['parse']> | (Defs[K]['default'] extends string ? never : undefined) };

/** Every setting, in documentation order. */
export const SETTINGS: readonly SettingSpec[] = Object.freeze(
  (Object.keys(DEFS) as SettingName[]).map((name) => Object.freeze({ name, ...DEFS[name] }) as SettingSpec),
);
