import { SettingsError } from '../errors.js';

/**
 * Every environment variable envoyproxy/ratelimit reads (its src/settings/settings.go; the list
 * this was checked against is test/fixtures/upstream-settings.txt, with the commit it came from),
 * and meshlimit's answer to each, so an environment written for upstream is never silently
 * half-honoured:
 *
 * - `supported`: meshlimit reads it with the same meaning (a row of the settings table, named in
 *   `meshlimit`; where the two differ in a detail, the row's description says so).
 * - `ignored`: accepted, because it tunes something meshlimit does not have (a connection pool, a
 *   statsd sink) and ignoring it changes no rate-limit answer; when set, it is listed with its
 *   reason in ONE log line at start-up ({@link ignoredSettingsMessage}).
 *
 * The third answer, refused at start-up with what to use instead, is given by value, where
 * upstream itself refuses the value or accepting it would change behaviour: a supported row's
 * parser (`BACKEND_TYPE=memcache`, an unknown `TRACING_EXPORTER_PROTOCOL`), the checks between
 * rows (`STOP_CACHE_KEY_INCREMENT_WHEN_OVERLIMIT` against `CHARGE_ON_DENY`, ./upstream-compose.ts)
 * and an ignored row's `refuse` (a pool behaviour other than WAIT). No variable is refused
 * whatever its value: each one upstream reads has either a meaning here or none that matters.
 *
 * Variables that are not upstream's and not meshlimit's are not looked at (the environment holds
 * many unrelated ones).
 */

export type UpstreamAnswerKind = 'supported' | 'ignored';

export interface UpstreamRow {
  /** The variable, or a prefix ending in `*` for a family whose names are made at run time. */
  readonly name: string;
  readonly kind: UpstreamAnswerKind;
  /** `supported`: the meshlimit settings that carry it (comma-separated names of settings-table rows). Otherwise what meshlimit does instead. */
  readonly meshlimit: string;
  /** Why, in one phrase: logged for `ignored` rows that are set. */
  readonly explanation: string;
  /** Values refused although the row is `supported` or `ignored`: returns the error (what to use instead), or undefined. */
  readonly refuse?: (value: string) => string | undefined;
}

type Env = Readonly<Record<string, string | undefined>>;

const same = (name: string, explanation = 'same name and meaning'): UpstreamRow => ({
  name,
  kind: 'supported',
  meshlimit: name,
  explanation,
});
const ignored = (names: readonly string[], meshlimit: string, explanation: string, refuse?: UpstreamRow['refuse']): UpstreamRow[] =>
  names.map((name) => ({ name, kind: 'ignored', meshlimit, explanation, ...(refuse ? { refuse } : {}) }));

// Reasons shared by several ignored rows; one log line groups the variables by reason.
const STATSD = 'no statsd or DogStatsD sink: meshlimit serves Prometheus metrics at /metrics on PORT';
const PROMETHEUS = 'the metrics are meshlimit_* series, durations in seconds, whatever the settings';
const POOL = 'no pool or pipeline to size: one multiplexed connection per Redis node, commands batched per event-loop turn';
const REDIS_TIMEOUT = 'meshlimit has REDIS_COMMAND_TIMEOUT_MS (per call) and REDIS_CONNECT_TIMEOUT_MS instead';
const STARTUP =
  'meshlimit waits REDIS_CONNECT_TIMEOUT_MS for its first Redis connection, then serves (not ready until connected) and keeps reconnecting';
const MEMCACHE = 'read only with BACKEND_TYPE=memcache, which meshlimit refuses';

/** A pool that is not WAIT makes upstream panic at start-up (radix v4); meshlimit refuses it too. */
const poolOnEmpty = (value: string): string | undefined =>
  value.trim().toUpperCase() === 'WAIT'
    ? undefined
    : `${JSON.stringify(value)} is refused, as by envoyproxy/ratelimit (only WAIT is supported there); meshlimit has no connection pool: remove the variable`;

/** Every upstream variable, in the order of upstream's settings.go, and the ones it reads elsewhere. */
export const UPSTREAM_SETTINGS: readonly UpstreamRow[] = Object.freeze(
  (
    [
      same('HOST'),
      same('PORT'),
      ...ignored(
        ['DEBUG_HOST', 'DEBUG_PORT'],
        'PORT',
        'no debug port: /rlconfig (as JSON) and /metrics are served on PORT, and there is no pprof',
      ),
      same('GRPC_UDS'),
      same('GRPC_HOST'),
      same('GRPC_PORT'),
      same('GRPC_MAX_CONNECTION_AGE', 'same name, Go duration syntax and default'),
      same('GRPC_MAX_CONNECTION_AGE_GRACE', 'same name, Go duration syntax and default'),
      same('GRPC_SERVER_USE_TLS'),
      same('GRPC_SERVER_TLS_CERT'),
      same('GRPC_SERVER_TLS_KEY'),
      same('GRPC_CLIENT_TLS_CACERT'),
      same('GRPC_CLIENT_TLS_SAN'),
      same('LOG_LEVEL', 'same name and levels; default info (upstream warn)'),
      same('LOG_FORMAT'),
      same('CONFIG_TYPE'),
      same('FORCE_START_WITHOUT_INITIAL_CONFIG'),
      same('CONFIG_GRPC_XDS_NODE_ID'),
      same('CONFIG_GRPC_XDS_NODE_METADATA', 'same format; an item without = is an error (upstream drops it)'),
      same('CONFIG_GRPC_XDS_SERVER_URL'),
      same('CONFIG_GRPC_XDS_SERVER_CONNECT_RETRY_INTERVAL'),
      same('CONFIG_GRPC_XDS_CLIENT_ADDITIONAL_HEADERS'),
      same('CONFIG_GRPC_XDS_SERVER_USE_TLS'),
      same('CONFIG_GRPC_XDS_CLIENT_TLS_CERT'),
      same('CONFIG_GRPC_XDS_CLIENT_TLS_KEY'),
      same('CONFIG_GRPC_XDS_SERVER_TLS_CACERT'),
      same('CONFIG_GRPC_XDS_SERVER_TLS_SAN'),
      same('XDS_CLIENT_BACKOFF_INITIAL_INTERVAL'),
      same('XDS_CLIENT_BACKOFF_MAX_INTERVAL'),
      same('XDS_CLIENT_BACKOFF_RANDOM_FACTOR'),
      same('XDS_CLIENT_BACKOFF_JITTER'),
      same('XDS_CLIENT_MAX_MSG_SIZE_IN_BYTES'),
      ...ignored(
        ['USE_DOG_STATSD', 'USE_DOG_STATSD_MOGRIFIERS', 'DOG_STATSD_MOGRIFIER_*', 'USE_STATSD', 'STATSD_HOST', 'STATSD_PORT'],
        '/metrics',
        STATSD,
      ),
      ...ignored(['EXTRA_TAGS', 'STATS_FLUSH_INTERVAL', 'DISABLE_STATS'], '/metrics', 'statsd tuning: ' + STATSD),
      same('USE_PROMETHEUS', "same name: the metrics also on PROMETHEUS_ADDR, as meshlimit's series"),
      same('PROMETHEUS_ADDR'),
      same('PROMETHEUS_PATH'),
      ...ignored(['PROMETHEUS_MAPPER_YAML'], '(none)', "it maps upstream's statsd names to Prometheus names; " + PROMETHEUS),
      ...ignored(['PROMETHEUS_RESPONSE_TIME_AS_MILLISECONDS'], '(none)', PROMETHEUS),
      same('RUNTIME_ROOT', 'same name; unset means "not used" (upstream: /srv/runtime_data/current)'),
      same('RUNTIME_SUBDIRECTORY'),
      same('RUNTIME_APPDIRECTORY'),
      same('RUNTIME_IGNOREDOTFILES', 'same name and meaning; default true (upstream false)'),
      same('RUNTIME_WATCH_ROOT'),
      ...ignored(
        ['EXPIRATION_JITTER_MAX_SECONDS'],
        '(none)',
        'counter keys expire with their window; the jitter only spreads Redis expiry work, and no answer depends on it',
      ),
      {
        name: 'LOCAL_CACHE_SIZE_IN_BYTES',
        kind: 'supported',
        meshlimit: 'LOCAL_CACHE_SIZE_IN_BYTES, LOCAL_CACHE_SIZE',
        explanation: 'the byte budget is turned into entries of the over-limit cache (LOCAL_CACHE_SIZE)',
      },
      same('NEAR_LIMIT_RATIO', 'same name and meaning: hits past it are counted in meshlimit_near_limit_hits_total'),
      same('CACHE_KEY_PREFIX'),
      same('BACKEND_TYPE', 'redis as upstream; memcache is refused (use redis); also memory'),
      {
        name: 'STOP_CACHE_KEY_INCREMENT_WHEN_OVERLIMIT',
        kind: 'supported',
        meshlimit: 'STOP_CACHE_KEY_INCREMENT_WHEN_OVERLIMIT, CHARGE_ON_DENY',
        explanation: 'true is CHARGE_ON_DENY=false (meshlimit default), false is CHARGE_ON_DENY=true (upstream default)',
      },
      same('LIMIT_RESPONSE_HEADERS_ENABLED'),
      same('LIMIT_LIMIT_HEADER'),
      same('LIMIT_REMAINING_HEADER'),
      same('LIMIT_RESET_HEADER'),
      same('HEALTHY_WITH_AT_LEAST_ONE_CONFIG_LOADED'),
      same('REDIS_SOCKET_TYPE', 'same name and values; default tcp (upstream unix)'),
      same('REDIS_TYPE'),
      same('REDIS_URL'),
      ...ignored(['REDIS_POOL_SIZE'], '(none)', POOL),
      same('REDIS_AUTH'),
      same('REDIS_TLS'),
      same('REDIS_TLS_CLIENT_CERT'),
      same('REDIS_TLS_CLIENT_KEY'),
      same('REDIS_TLS_CACERT', 'same name; replaces the trusted CAs instead of adding to the system pool'),
      same('REDIS_TLS_SKIP_HOSTNAME_VERIFICATION'),
      ...ignored(['REDIS_PIPELINE_WINDOW', 'REDIS_PIPELINE_LIMIT', 'REDIS_CLUSTER_PIPELINE_PARALLELISM'], '(none)', POOL),
      same('REDIS_PERSECOND'),
      same('REDIS_PERSECOND_SOCKET_TYPE'),
      same('REDIS_PERSECOND_TYPE'),
      same('REDIS_PERSECOND_URL'),
      ...ignored(['REDIS_PERSECOND_POOL_SIZE'], '(none)', POOL),
      same('REDIS_PERSECOND_AUTH'),
      same('REDIS_PERSECOND_TLS'),
      same('REDIS_SENTINEL_AUTH'),
      same('REDIS_PERSECOND_SENTINEL_AUTH'),
      ...ignored(
        ['REDIS_PERSECOND_PIPELINE_WINDOW', 'REDIS_PERSECOND_PIPELINE_LIMIT', 'REDIS_PERSECOND_CLUSTER_PIPELINE_PARALLELISM'],
        '(none)',
        POOL,
      ),
      same('REDIS_HEALTH_CHECK_ACTIVE_CONNECTION'),
      ...ignored(['REDIS_TIMEOUT', 'REDIS_PERSECOND_TIMEOUT'], 'REDIS_COMMAND_TIMEOUT_MS, REDIS_CONNECT_TIMEOUT_MS', REDIS_TIMEOUT),
      ...ignored(['REDIS_POOL_ON_EMPTY_BEHAVIOR', 'REDIS_PERSECOND_POOL_ON_EMPTY_BEHAVIOR'], '(none)', POOL, poolOnEmpty),
      ...ignored(
        ['REDIS_STARTUP_INITIAL_INTERVAL', 'REDIS_STARTUP_MAX_INTERVAL', 'REDIS_STARTUP_MAX_ELAPSED_TIME'],
        'REDIS_CONNECT_TIMEOUT_MS',
        STARTUP,
      ),
      ...ignored(
        [
          'MEMCACHE_HOST_PORT',
          'MEMCACHE_MAX_IDLE_CONNS',
          'MEMCACHE_SRV',
          'MEMCACHE_SRV_REFRESH',
          'MEMCACHE_TLS',
          'MEMCACHE_TLS_CLIENT_CERT',
          'MEMCACHE_TLS_CLIENT_KEY',
          'MEMCACHE_TLS_CACERT',
          'MEMCACHE_TLS_SKIP_HOSTNAME_VERIFICATION',
        ],
        'BACKEND_TYPE=redis',
        MEMCACHE,
      ),
      same('SHADOW_MODE'),
      same('QUOTA_MODE'),
      same('RESPONSE_DYNAMIC_METADATA'),
      same('MERGE_DOMAIN_CONFIG'),
      same('TRACING_ENABLED', 'same name; translated to OTEL_TRACES_EXPORTER=otlp'),
      same('TRACING_SERVICE_NAME', 'same name; default meshlimit (upstream RateLimit)'),
      same('TRACING_SERVICE_NAMESPACE'),
      same('TRACING_SERVICE_INSTANCE_ID', 'same name; unset: none (upstream: a random UUID)'),
      same('TRACING_EXPORTER_PROTOCOL'),
      same('TRACING_SAMPLING_RATE'),
      // Not in upstream's settings.go: Envoy Gateway sets it beside GRPC_SERVER_TLS_* for mTLS
      // (internal/infrastructure/kubernetes/ratelimit/resource.go); upstream reads GRPC_CLIENT_TLS_CACERT.
      same('GRPC_SERVER_TLS_CA_CERT', 'unread by upstream; accepted and unused here too, with its own line at start-up (./grpc-tls.ts)'),
    ] satisfies UpstreamRow[]
  ).map((row): UpstreamRow => Object.freeze(row)),
);

/** The names of {@link UPSTREAM_SETTINGS} that are not in upstream's settings.go (read elsewhere upstream, or set by Envoy Gateway). */
export const UPSTREAM_EXTRA_NAMES: readonly string[] = Object.freeze(['DOG_STATSD_MOGRIFIER_*', 'GRPC_SERVER_TLS_CA_CERT']);

/** The row answering `name` (exact, else the longest `*` prefix), or undefined. */
export function upstreamRow(name: string): UpstreamRow | undefined {
  const exact = UPSTREAM_SETTINGS.find((r) => r.name === name);
  if (exact !== undefined) return exact;
  return UPSTREAM_SETTINGS.filter((r) => r.name.endsWith('*') && name.startsWith(r.name.slice(0, -1))).sort(
    (a, b) => b.name.length - a.name.length,
  )[0];
}

/**
 * The upstream variables set in `env` that meshlimit accepts without using (sorted), after
 * pushing a {@link SettingsError} for each value a row's `refuse` rejects. An empty variable
 * counts as unset, as for every setting.
 */
export function answerUpstream(env: Env, errors: SettingsError[]): readonly string[] {
  const ignoredNames: string[] = [];
  for (const [name, value] of Object.entries(env)) {
    // Upstream's names are upper-case words; anything else (a name with a newline) is not one.
    if (value === undefined || value === '' || !/^[A-Z0-9_]+$/.test(name)) continue;
    const row = upstreamRow(name);
    if (row === undefined) continue;
    const refusal = row.refuse?.(value);
    if (refusal !== undefined) errors.push(new SettingsError(name, refusal));
    else if (row.kind === 'ignored') ignoredNames.push(name);
  }
  return Object.freeze(ignoredNames.sort());
}

/**
 * The one log line naming the ignored variables, grouped by reason:
 * `envoyproxy/ratelimit settings accepted and not used: USE_STATSD, STATSD_PORT (no statsd ...); REDIS_POOL_SIZE (...)`.
 * Undefined when there are none.
 */
export function ignoredSettingsMessage(names: readonly string[]): string | undefined {
  if (names.length === 0) return undefined;
  const byReason = new Map<string, string[]>();
  for (const name of names) {
    const reason = upstreamRow(name)?.explanation ?? 'not used by meshlimit';
    byReason.set(reason, [...(byReason.get(reason) ?? []), name]);
  }
  const parts = [...byReason].map(([reason, group]) => `${group.join(', ')} (${reason})`);
  return `envoyproxy/ratelimit settings accepted and not used: ${parts.join('; ')}`;
}

/** The TRACING_* settings, as parsed (`Settings['tracing']`). */
export interface UpstreamTracing {
  readonly enabled: boolean;
  readonly protocol: 'http' | 'grpc';
  readonly serviceName: string | undefined;
  readonly serviceNamespace: string | undefined;
  readonly serviceInstanceId: string | undefined;
  readonly samplingRate: number;
}

/**
 * envoyproxy/ratelimit's TRACING_* settings as the OpenTelemetry SDK's own variables, which
 * meshlimit's tracing reads (src/telemetry/tracing.ts): the variables to add to the environment
 * before tracing starts. Nothing when TRACING_ENABLED is false; an `OTEL_*` variable already set
 * is never overridden (the standard variable is the more specific). Upstream's tracer: an OTLP
 * exporter over http or grpc, a parent-based trace-id-ratio sampler, W3C trace context and B3
 * propagation, `service.namespace` and `service.instance.id` resource attributes.
 */
export function tracingEnvironment(t: UpstreamTracing, env: Env): Record<string, string> {
  if (!t.enabled) return {};
  const out: Record<string, string> = {};
  const put = (name: string, value: string | undefined): void => {
    if (value !== undefined && (env[name] ?? '') === '') out[name] = value;
  };
  put('OTEL_TRACES_EXPORTER', 'otlp');
  put('OTEL_EXPORTER_OTLP_PROTOCOL', t.protocol === 'grpc' ? 'grpc' : 'http/protobuf');
  put('OTEL_SERVICE_NAME', t.serviceName);
  put('OTEL_TRACES_SAMPLER', 'parentbased_traceidratio');
  put('OTEL_TRACES_SAMPLER_ARG', String(t.samplingRate));
  put('OTEL_PROPAGATORS', 'tracecontext,baggage,b3');
  const attributes = [
    t.serviceNamespace === undefined ? undefined : `service.namespace=${t.serviceNamespace}`,
    t.serviceInstanceId === undefined ? undefined : `service.instance.id=${t.serviceInstanceId}`,
    env.OTEL_RESOURCE_ATTRIBUTES === undefined || env.OTEL_RESOURCE_ATTRIBUTES === '' ? undefined : env.OTEL_RESOURCE_ATTRIBUTES,
  ].filter((a): a is string => a !== undefined);
  // Appended attributes win in the SDK's parser: the user's own OTEL_RESOURCE_ATTRIBUTES last.
  if (attributes.length > 0) out.OTEL_RESOURCE_ATTRIBUTES = attributes.join(',');
  return out;
}
