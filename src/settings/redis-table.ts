import { REDIS_TYPES, type RedisCredentials, type RedisType } from '../backend/index.js';
import { REDIS_SOCKET_TYPES, type RedisSocketType } from './redis.js';
import { InvalidValue, integer, oneOf, parseBool, setting, text } from './spec.js';

/**
 * The rows of the settings table (./table.ts) for Redis, in documentation order: the main Redis,
 * its TLS files, its timeouts, then the per-second Redis (REDIS_PERSECOND_*). Kept apart from the
 * other groups because they are many and change together; table.ts spreads them in place.
 */

/**
 * `password` or `username:password`, split at the FIRST colon as envoyproxy/ratelimit does, so a
 * password holding `:` must be given with its user (`default:pa:ss` for the default user). Never
 * echoes the value.
 */
function redisAuth(raw: string): RedisCredentials {
  const colon = raw.indexOf(':');
  if (colon < 0) return { username: undefined, password: raw };
  const username = raw.slice(0, colon);
  const password = raw.slice(colon + 1);
  if (username === '' || password === '') throw new InvalidValue('expected "password" or "username:password" with both parts non-empty');
  return { username, password };
}

/** A file path (read and checked at start-up by ./redis-tls.ts, which names the setting in its errors). */
function filePath(raw: string): string {
  const v = raw.trim();
  if (v === '') throw new InvalidValue('expected a file path');
  return v;
}

export const REDIS_DEFS = {
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
    description:
      "Connect to Redis over TLS (also implied by a `rediss://` URL), to the data nodes and, with `REDIS_TYPE=sentinel`, to the sentinels (one switch for both, as in envoyproxy/ratelimit). The server certificate is verified against `REDIS_TLS_CACERT`, else Node's default CAs.",
  }),
  REDIS_TLS_CACERT: setting({
    group: 'redis',
    default: undefined,
    parse: filePath,
    description:
      "Path of a PEM bundle of the CAs that sign the Redis server certificates, read at start-up. It replaces Node's default CAs (envoyproxy/ratelimit adds it to the system pool; see \"Redis over TLS\"). Unset: Node's default CAs (plus `NODE_EXTRA_CA_CERTS`). Applies to every TLS connection, the per-second Redis's included; set without any TLS connection it is an error.",
  }),
  REDIS_TLS_CLIENT_CERT: setting({
    group: 'redis',
    default: undefined,
    parse: filePath,
    description:
      'Path of the PEM client certificate (chain) presented to Redis servers that require one (`tls-auth-clients yes`), read at start-up; needs `REDIS_TLS_CLIENT_KEY`. Same name and meaning as in envoyproxy/ratelimit.',
  }),
  REDIS_TLS_CLIENT_KEY: setting({
    group: 'redis',
    default: undefined,
    parse: filePath,
    description:
      'Path of the PEM private key of `REDIS_TLS_CLIENT_CERT` (unencrypted), read at start-up and checked against the certificate. The key itself is never logged.',
  }),
  REDIS_TLS_SKIP_HOSTNAME_VERIFICATION: setting({
    group: 'redis',
    default: 'false',
    parse: parseBool,
    description:
      "`true`: verify the Redis server certificate's chain against the trusted CAs but not that it names the host dialled, as in envoyproxy/ratelimit (for servers whose certificates carry another name, e.g. GCP Memorystore). Use it with `REDIS_TLS_CACERT`: with the default CAs any publicly trusted certificate would pass.",
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
    description:
      'Milliseconds to wait for a Redis connection to open. At start-up meshlimit also waits this long for its first connection before opening its ports (so a new replica counts its first requests); a Redis still down after that is logged, and meshlimit serves not ready, answering by `FAILURE_POLICY` until it connects.',
  }),
  REDIS_REQUIRED_AT_START: setting({
    group: 'redis',
    default: 'false',
    parse: parseBool,
    description:
      '`true`: with `BACKEND_TYPE=redis`, exit (status 1, the reason logged) when a Redis is still not connected `REDIS_CONNECT_TIMEOUT_MS` after start, as envoyproxy/ratelimit does (its first PING panics), so Kubernetes restarts the pod. `false` (default): start anyway, not ready (`/healthcheck` 500 saying why, gRPC health `NOT_SERVING`), log why every so often until Redis connects, and answer by `FAILURE_POLICY` meanwhile; the pod becomes ready by itself when Redis arrives, with no crash-loop back-off.',
  }),
  REDIS_PERSECOND: setting({
    group: 'redis',
    default: 'false',
    parse: parseBool,
    description:
      '`true`: the counters of per-second limits (a window of exactly one second: `unit: second` without `unit_multiplier`) live in a second Redis, `REDIS_PERSECOND_URL`; every other counter in `REDIS_URL`. As in envoyproxy/ratelimit. A request spanning both is evaluated on both, and a denied one is refunded where it was charged (see "A per-second Redis"). Each Redis has its own circuit breaker, admission bound and failure policy. The `REDIS_PERSECOND_*` settings are used only when this is `true`.',
  }),
  REDIS_PERSECOND_TYPE: setting({
    group: 'redis',
    default: 'single',
    parse: oneOf<RedisType>(REDIS_TYPES),
    description: 'As `REDIS_TYPE`, for the per-second Redis.',
  }),
  REDIS_PERSECOND_SOCKET_TYPE: setting({
    group: 'redis',
    default: 'tcp',
    parse: oneOf<RedisSocketType>(REDIS_SOCKET_TYPES),
    description: 'As `REDIS_SOCKET_TYPE`, for the per-second Redis (envoyproxy/ratelimit defaults to `unix`).',
  }),
  REDIS_PERSECOND_URL: setting({
    group: 'redis',
    default: undefined,
    parse: text,
    description:
      'As `REDIS_URL`, for the per-second Redis; required with `REDIS_PERSECOND=true` (envoyproxy/ratelimit defaults to a nutcracker socket path).',
  }),
  REDIS_PERSECOND_AUTH: setting({
    group: 'redis',
    default: undefined,
    parse: redisAuth,
    secret: true,
    description: 'As `REDIS_AUTH`, for the per-second Redis.',
  }),
  REDIS_PERSECOND_SENTINEL_AUTH: setting({
    group: 'redis',
    default: undefined,
    parse: redisAuth,
    secret: true,
    description: 'As `REDIS_SENTINEL_AUTH`, for the sentinels of the per-second Redis (`REDIS_PERSECOND_TYPE=sentinel`).',
  }),
  REDIS_PERSECOND_TLS: setting({
    group: 'redis',
    default: 'false',
    parse: parseBool,
    description:
      'As `REDIS_TLS`, for the per-second Redis (also implied by `rediss://`). It uses the same `REDIS_TLS_CACERT`, `REDIS_TLS_CLIENT_CERT`, `REDIS_TLS_CLIENT_KEY` and `REDIS_TLS_SKIP_HOSTNAME_VERIFICATION` as the main Redis, as envoyproxy/ratelimit does.',
  }),
} as const;
