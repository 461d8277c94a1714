import type { ConnectionOptions as TlsConnectionOptions } from 'node:tls';
import { Redis, type RedisOptions } from 'ioredis';
import { SettingsError } from '../../errors.js';

/**
 * How to reach Redis. Names follow envoyproxy/ratelimit's settings (REDIS_URL, REDIS_TYPE,
 * REDIS_AUTH, REDIS_TLS, REDIS_SOCKET_TYPE); the composition root maps settings onto this.
 * Keys arrive fully built (prefix included) from src/limiter/keys.ts, so no ioredis keyPrefix.
 */
export interface RedisConnectionOptions {
  /**
   * `host:port` (envoyproxy/ratelimit's REDIS_URL form), `redis://[user:password@]host:port[/db]`
   * or `rediss://...` (TLS); with `socketType: 'unix'`, a socket path.
   */
  readonly url: string;
  /** REDIS_TYPE: only `single` (standalone, any case) for now; `cluster` and `sentinel` are rejected. */
  readonly type?: string;
  /** REDIS_SOCKET_TYPE: `tcp` (default here) or `unix`. */
  readonly socketType?: 'tcp' | 'unix';
  /** REDIS_AUTH: `password`, or `user:password` (split at the first colon). Overrides URL credentials. */
  readonly auth?: string | undefined;
  /** REDIS_TLS: connect with TLS (also implied by a `rediss://` URL). */
  readonly tls?: boolean;
  /** Extra TLS options (CA, client certificate, servername, ...), used when TLS is on. */
  readonly tlsOptions?: TlsConnectionOptions;
  /**
   * Per-command deadline (default 50 ms). A rate-limit decision is on every request's path, so a
   * slow Redis must fail fast into UNAVAILABLE (Envoy's failure mode then decides) rather than
   * hold requests.
   */
  readonly commandTimeoutMs?: number;
  /** TCP/TLS connect deadline per attempt (default 1,000 ms). */
  readonly connectTimeoutMs?: number;
  /** Upper bound of the reconnect back-off (default 1,000 ms; attempts start at 50 ms and double). */
  readonly maxReconnectDelayMs?: number;
  /** Do not connect until the first command or `connect()` (default false). */
  readonly lazyConnect?: boolean;
  /** Database index for standalone Redis (default 0, or the URL's path). */
  readonly db?: number;
  /** CLIENT SETNAME value (default `meshlimit`), visible in CLIENT LIST. */
  readonly connectionName?: string;
}

export const DEFAULT_COMMAND_TIMEOUT_MS = 50;
export const DEFAULT_CONNECT_TIMEOUT_MS = 1_000;
export const DEFAULT_MAX_RECONNECT_DELAY_MS = 1_000;

/** The Redis deployment shapes meshlimit knows, as upstream spells them (case-insensitive). */
export type RedisType = 'single';

export function normalizeRedisType(type: string | undefined): RedisType {
  const t = (type ?? 'single').toLowerCase();
  if (t === 'single') return 'single';
  if (t === 'cluster' || t === 'sentinel') {
    throw new SettingsError('REDIS_TYPE', `'${type}' is not supported yet; use 'single'`);
  }
  throw new SettingsError('REDIS_TYPE', `unknown value '${type}' (expected 'single')`);
}

interface Endpoint {
  host?: string;
  port?: number;
  path?: string;
  username?: string;
  password?: string;
  db?: number;
  tls: boolean;
}

/** Parses REDIS_URL in any of the accepted forms; exported for settings validation and tests. */
export function parseRedisUrl(url: string, socketType: 'tcp' | 'unix' = 'tcp'): Endpoint {
  const fail = (detail: string): never => {
    throw new SettingsError('REDIS_URL', `${detail} (got '${redact(url)}')`);
  };
  if (url.trim() === '') fail('must not be empty');
  if (socketType === 'unix') return { path: url, tls: false };
  if (/^rediss?:\/\//i.test(url)) {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      return fail('is not a valid redis:// URL');
    }
    const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : undefined;
    if (db !== undefined && !(Number.isSafeInteger(db) && db >= 0)) fail('has an invalid database index');
    const ep: Endpoint = {
      host: u.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: u.port ? Number(u.port) : 6379,
      tls: u.protocol.toLowerCase() === 'rediss:',
    };
    if (u.username) ep.username = decodeURIComponent(u.username);
    if (u.password) ep.password = decodeURIComponent(u.password);
    if (db !== undefined) ep.db = db;
    return ep;
  }
  if (url.includes(',')) fail('lists several addresses, which only cluster and sentinel types accept');
  const m = /^(?:\[([^\]]+)\]|([^:]+))(?::(\d+))?$/.exec(url);
  if (!m) return fail("must be 'host:port', 'redis://...' or 'rediss://...'");
  const port = m[3] === undefined ? 6379 : Number(m[3]);
  if (!(port > 0 && port < 65536)) fail('has an invalid port');
  return { host: m[1] ?? m[2]!, port, tls: false };
}

function redact(url: string): string {
  return url.replace(/\/\/([^@/]*)@/, '//***@');
}

/** Splits REDIS_AUTH: `user:password` or a bare password (upstream's rule). */
export function parseAuth(auth: string): { username?: string; password: string } {
  const i = auth.indexOf(':');
  return i < 0 ? { password: auth } : { username: auth.slice(0, i), password: auth.slice(i + 1) };
}

/**
 * ioredis options for a rate limiter:
 * - `enableOfflineQueue: false`: while disconnected, commands fail at once (UNAVAILABLE) instead
 *   of queueing behind a dead connection.
 * - `maxRetriesPerRequest: 0` and `autoResendUnfulfilledCommands: false`: a command in flight
 *   when the connection drops fails instead of being resent, which could count its hits twice.
 * - `commandTimeout`: every command has a deadline.
 * - reconnects forever with a short capped back-off, so the backend heals by itself.
 */
export function redisClientOptions(options: RedisConnectionOptions): RedisOptions {
  normalizeRedisType(options.type);
  const ep = parseRedisUrl(options.url, options.socketType);
  const maxDelay = options.maxReconnectDelayMs ?? DEFAULT_MAX_RECONNECT_DELAY_MS;
  const o: RedisOptions = {
    connectTimeout: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    commandTimeout: options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    enableReadyCheck: true,
    lazyConnect: options.lazyConnect ?? false,
    connectionName: options.connectionName ?? 'meshlimit',
    keepAlive: 10_000,
    retryStrategy: (times: number) => Math.min(50 * 2 ** Math.min(times - 1, 10), maxDelay),
  };
  if (ep.path !== undefined) o.path = ep.path;
  else {
    o.host = ep.host!;
    o.port = ep.port!;
  }
  const db = options.db ?? ep.db;
  if (db !== undefined) o.db = db;
  if (options.auth) {
    const a = parseAuth(options.auth);
    if (a.username !== undefined) o.username = a.username;
    o.password = a.password;
  } else {
    if (ep.username !== undefined) o.username = ep.username;
    if (ep.password !== undefined) o.password = ep.password;
  }
  if (options.tls || ep.tls) o.tls = { ...(options.tlsOptions ?? {}) };
  return o;
}

/** A new ioredis client for a standalone Redis. */
export function createRedisClient(options: RedisConnectionOptions): Redis {
  return new Redis(redisClientOptions(options));
}
