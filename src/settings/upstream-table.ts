import { InvalidValue, integer, oneOf, parseBool, setting, text } from './spec.js';

/**
 * Rows of the settings table (./table.ts spreads them in place, by group) for settings that exist
 * because envoyproxy/ratelimit has them: same names and meaning, read here so that an environment
 * written for upstream behaves the same. How every other upstream variable is answered (supported
 * elsewhere, accepted and logged, refused): ./upstream.ts.
 */

/**
 * Bytes of heap one entry of the over-limit cache takes, rounded up: 281 measured for 200,000
 * entries with 46-character keys (`node --expose-gc --import tsx`, heap delta over the entries).
 * LOCAL_CACHE_SIZE_IN_BYTES is divided by it, so the cache stays within the byte budget given.
 */
export const OVER_LIMIT_CACHE_ENTRY_BYTES = 300;

/** A rate from 0 to 1 (`TRACING_SAMPLING_RATE`, Go's ParseFloat in upstream). */
function ratio(raw: string): number {
  const v = raw.trim();
  const n = /^(\d+(\.\d*)?|\.\d+)$/.test(v) ? Number(v) : Number.NaN;
  if (!(n >= 0 && n <= 1)) throw new InvalidValue(`expected a number from 0 to 1, got ${JSON.stringify(raw)}`);
  return n;
}

/** A value of an OpenTelemetry resource attribute: printable, no `,` or `=` (they separate OTEL_RESOURCE_ATTRIBUTES). */
function resourceValue(raw: string): string {
  const v = raw.trim();
  if (!/^[\x21-\x7e]*$/.test(v) || /[,=%]/.test(v))
    throw new InvalidValue(`expected printable ASCII without spaces, ',', '=' or '%', got ${JSON.stringify(raw)}`);
  return v;
}

/** A Go listen address (`PROMETHEUS_ADDR`): `:port` (every address), `host:port` or `[v6]:port`. */
export function listenAddress(raw: string): { readonly host: string | undefined; readonly port: number } {
  const v = raw.trim();
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^\s:/[\]]*)):(\d{1,5})$/.exec(v);
  const port = m === null ? Number.NaN : Number(m[3]);
  if (m === null || port > 65_535) throw new InvalidValue(`expected :port, host:port or [v6]:port, got ${JSON.stringify(raw)}`);
  const host = m[1] ?? m[2];
  return { host: host === '' ? undefined : host, port };
}

/** An absolute URL path without a query (`PROMETHEUS_PATH`). */
function urlPath(raw: string): string {
  const v = raw.trim();
  if (!/^\/[\x21-\x7e]*$/.test(v) || /[?#]/.test(v))
    throw new InvalidValue(`expected a path starting with / (printable, no spaces, ? or #), got ${JSON.stringify(raw)}`);
  return v;
}

export const UPSTREAM_HTTP_DEFS = {
  USE_PROMETHEUS: setting({
    group: 'http',
    default: 'false',
    parse: parseBool,
    description:
      'As in envoyproxy/ratelimit: `true` also serves the Prometheus metrics on `PROMETHEUS_ADDR` at `PROMETHEUS_PATH` (a port serving nothing else), where Envoy Gateway points Prometheus. They are always on `PORT` at `/metrics` too. The series are meshlimit\'s (`meshlimit_*`, see "Metrics"), not upstream\'s statsd names.',
  }),
  PROMETHEUS_ADDR: setting({
    group: 'http',
    default: ':9090',
    parse: listenAddress,
    description:
      "With `USE_PROMETHEUS=true`: where the metrics port listens, as upstream: `:port` (every address), `host:port` or `[v6]:port`; not `PORT`'s port. Envoy Gateway sets `:19001`.",
  }),
  PROMETHEUS_PATH: setting({
    group: 'http',
    default: '/metrics',
    parse: urlPath,
    description: 'With `USE_PROMETHEUS=true`: the path of the metrics on that port; anything else there is 404.',
  }),
} as const;

export const UPSTREAM_CONFIG_DEFS = {
  RUNTIME_IGNOREDOTFILES: setting({
    group: 'config',
    default: 'true',
    parse: parseBool,
    description:
      "As in envoyproxy/ratelimit: `true` skips config files whose name starts with `.`; `false` loads them too (names starting with `..`, Kubernetes' ConfigMap internals, are always skipped). Upstream defaults to `false`; Envoy Gateway sets `true`.",
  }),
  HEALTHY_WITH_AT_LEAST_ONE_CONFIG_LOADED: setting({
    group: 'config',
    default: 'false',
    parse: parseBool,
    description:
      'As in envoyproxy/ratelimit: `true` keeps health `NOT_SERVING` (and `/healthcheck` 500) until a descriptor config has been loaded, also with `FORCE_START_WITHOUT_INITIAL_CONFIG=true`, which then still answers requests from the empty config. Only changes anything with `CONFIG_TYPE=GRPC_XDS_SOTW` (a config directory is loaded before the ports open).',
  }),
} as const;

export const UPSTREAM_RESILIENCE_DEFS = {
  REDIS_HEALTH_CHECK_ACTIVE_CONNECTION: setting({
    group: 'resilience',
    default: 'false',
    parse: parseBool,
    description:
      'As in envoyproxy/ratelimit: `true` keeps health `NOT_SERVING` (and `/healthcheck` 500) while a Redis (the per-second one included) is not connected, whatever `FAILURE_POLICY` says. Without it readiness already follows Redis with `FAILURE_POLICY=deny` (the breaker open or no connection), but not with `allow` or `local`, which keep answering.',
  }),
} as const;

export const UPSTREAM_LIMITER_DEFS = {
  NEAR_LIMIT_RATIO: setting({
    group: 'limiter',
    default: '0.8',
    parse: ratio,
    description:
      "As in envoyproxy/ratelimit: hits admitted past this share of their limit are counted in `meshlimit_near_limit_hits_total` (upstream's `near_limit` stat), per domain and rule, e.g. to alert before clients are denied. A number from 0 to 1.",
  }),
  STOP_CACHE_KEY_INCREMENT_WHEN_OVERLIMIT: setting({
    group: 'limiter',
    default: undefined,
    parse: parseBool,
    description:
      "envoyproxy/ratelimit's switch for what `CHARGE_ON_DENY` says: `true` is `CHARGE_ON_DENY=false` (a request that would be over its limit does not increment the counters; meshlimit's default), `false` is `CHARGE_ON_DENY=true` (upstream's default: every request is counted). Setting both to the same behaviour is allowed; contradicting each other is an error.",
  }),
  LOCAL_CACHE_SIZE_IN_BYTES: setting({
    group: 'limiter',
    default: undefined,
    parse: integer(0, 2_147_483_647),
    description: `envoyproxy/ratelimit's size of the local over-limit cache, in bytes: read as \`LOCAL_CACHE_SIZE\` = this / ${OVER_LIMIT_CACHE_ENTRY_BYTES} (the heap one entry takes, measured), so the cache stays within the budget. \`0\` off. Not together with \`LOCAL_CACHE_SIZE\`.`,
  }),
} as const;

export const TRACING_PROTOCOLS = ['http', 'grpc'] as const;
export type TracingProtocol = (typeof TRACING_PROTOCOLS)[number];

export const UPSTREAM_TRACING_DEFS = {
  TRACING_ENABLED: setting({
    group: 'tracing',
    default: 'false',
    parse: parseBool,
    description:
      'As in envoyproxy/ratelimit: `true` exports traces over OTLP, the same as `OTEL_TRACES_EXPORTER=otlp` (see "Tracing"; the `TRACING_*` settings are translated to the standard `OTEL_*` variables, and an `OTEL_*` variable set as well wins). Endpoint from `OTEL_EXPORTER_OTLP_ENDPOINT`, as upstream.',
  }),
  TRACING_EXPORTER_PROTOCOL: setting({
    group: 'tracing',
    default: 'http',
    parse: oneOf<TracingProtocol>(TRACING_PROTOCOLS),
    description: 'With `TRACING_ENABLED`: `http` (OTLP over HTTP, protobuf) or `grpc`, as upstream (`OTEL_EXPORTER_OTLP_PROTOCOL`).',
  }),
  TRACING_SERVICE_NAME: setting({
    group: 'tracing',
    default: undefined,
    parse: text,
    description:
      "With `TRACING_ENABLED`: the traces' `service.name` (`OTEL_SERVICE_NAME`). Unset: `meshlimit` (upstream: `RateLimit`). Envoy Gateway sets `envoy-ratelimit`.",
  }),
  TRACING_SERVICE_NAMESPACE: setting({
    group: 'tracing',
    default: undefined,
    parse: resourceValue,
    description: "With `TRACING_ENABLED`: the traces' `service.namespace` resource attribute.",
  }),
  TRACING_SERVICE_INSTANCE_ID: setting({
    group: 'tracing',
    default: undefined,
    parse: resourceValue,
    description: "With `TRACING_ENABLED`: the traces' `service.instance.id` resource attribute (Envoy Gateway: the pod name).",
  }),
  TRACING_SAMPLING_RATE: setting({
    group: 'tracing',
    default: '1',
    parse: ratio,
    description:
      "With `TRACING_ENABLED`: the share of traces sampled, 0 to 1, following the parent's decision when Envoy sends one (`parentbased_traceidratio`), as upstream.",
  }),
} as const;
