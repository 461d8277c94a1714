import type { ConnectionOptions as TlsConnectionOptions } from 'node:tls';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { SettingsError } from '../../errors.js';

/**
 * How to reach Redis. Names follow envoyproxy/ratelimit's settings (REDIS_URL, REDIS_TYPE,
 * REDIS_AUTH, REDIS_SENTINEL_AUTH, REDIS_TLS, REDIS_SOCKET_TYPE); the composition root maps
 * settings onto this. Keys arrive fully built (prefix included) from src/limiter/keys.ts, so no
 * ioredis keyPrefix.
 */
export interface RedisConnectionOptions {
  /**
   * REDIS_URL. `single`: `host:port` (envoyproxy/ratelimit's form), `redis://[user:password@]host:port[/db]`
   * or `rediss://...` (TLS), or a socket path with `socketType: 'unix'`. `cluster`: a comma-separated
   * seed list of those (`host:port,host:port`). `sentinel`: `master-name,host:port[,host:port...]`,
   * the addresses being the sentinels'. Ignored for cluster and sentinel when `nodes` is given.
   */
  readonly url: string;
  /** REDIS_TYPE: `single` (default), `cluster` or `sentinel`, any case (as upstream). */
  readonly type?: string;
  /**
   * Cluster: the seed nodes; sentinel: the sentinels. When given (non-empty), used instead of the
   * addresses in `url` (settings have already parsed REDIS_URL into `settings.redis.nodes`).
   */
  readonly nodes?: readonly { readonly host: string; readonly port: number }[] | undefined;
  /** Sentinel: the monitored master's name; when given, used instead of the first item of `url`. */
  readonly sentinelMasterName?: string | undefined;
  /** REDIS_SOCKET_TYPE: `tcp` (default here) or `unix` (single only). */
  readonly socketType?: 'tcp' | 'unix';
  /**
   * REDIS_AUTH: `password`, or `user:password` (split at the first colon). Overrides URL
   * credentials. Used for the data nodes: the server, every cluster node, the sentinel-managed
   * primary.
   */
  readonly auth?: string | undefined;
  /**
   * REDIS_SENTINEL_AUTH (envoyproxy/ratelimit's name): `password` or `user:password` for the
   * sentinels themselves, which Redis authenticates separately from the data nodes. Unset: the
   * sentinels are asked without AUTH, as upstream does.
   */
  readonly sentinelAuth?: string | undefined;
  /**
   * REDIS_TLS: connect with TLS (also implied by a `rediss://` URL). Applies to every connection:
   * data nodes, cluster nodes, and sentinels (as upstream, one switch for both).
   */
  readonly tls?: boolean;
  /** Extra TLS options (CA, client certificate, servername, ...), used when TLS is on. */
  readonly tlsOptions?: TlsConnectionOptions;
  /**
   * Per-command deadline (default 50 ms). A rate-limit decision is on every request's path, so a
   * slow Redis must fail fast into UNAVAILABLE (Envoy's failure mode then decides) rather than
   * hold requests. On a cluster it bounds each script call including ioredis' redirections.
   */
  readonly commandTimeoutMs?: number;
  /** TCP/TLS connect deadline per attempt (default 1,000 ms); also the cluster's slot-map refresh deadline. */
  readonly connectTimeoutMs?: number;
  /** Upper bound of the reconnect back-off (default 1,000 ms; attempts start at 50 ms and double). */
  readonly maxReconnectDelayMs?: number;
  /** Do not connect until the first command or `connect()` (default false). */
  readonly lazyConnect?: boolean;
  /** Database index for standalone Redis and sentinel (default 0, or the URL's path). A cluster has only 0. */
  readonly db?: number;
  /** CLIENT SETNAME value (default `meshlimit`), visible in CLIENT LIST. */
  readonly connectionName?: string;
  /**
   * Cluster: wait before retrying a script call refused with TRYAGAIN (its keys are split by a
   * slot migration in progress), default 5 ms. The retry count is bounded by
   * `clusterMaxRedirections` and the whole call by `commandTimeoutMs`.
   */
  readonly clusterRetryDelayOnTryAgainMs?: number;
  /** Cluster: most MOVED/ASK/TRYAGAIN redirections one call follows (default 16), so a MOVED loop fails. */
  readonly clusterMaxRedirections?: number;
  /**
   * Cluster: period of a background CLUSTER SLOTS refresh (default 5,000 ms; 0 disables), a
   * backstop to the refresh every MOVED triggers, so a failover is picked up even without traffic.
   */
  readonly clusterSlotsRefreshIntervalMs?: number;
}

export const DEFAULT_COMMAND_TIMEOUT_MS = 50;
export const DEFAULT_CONNECT_TIMEOUT_MS = 1_000;
export const DEFAULT_MAX_RECONNECT_DELAY_MS = 1_000;
export const DEFAULT_CLUSTER_RETRY_DELAY_ON_TRYAGAIN_MS = 5;
export const DEFAULT_CLUSTER_MAX_REDIRECTIONS = 16;
export const DEFAULT_CLUSTER_SLOTS_REFRESH_INTERVAL_MS = 5_000;

/** The Redis deployment shapes meshlimit knows, as upstream spells them (case-insensitive). */
export type RedisType = 'single' | 'cluster' | 'sentinel';

export function normalizeRedisType(type: string | undefined): RedisType {
  const t = (type ?? 'single').toLowerCase();
  if (t === 'single' || t === 'cluster' || t === 'sentinel') return t;
  throw new SettingsError('REDIS_TYPE', `unknown value '${type}' (expected 'single', 'cluster' or 'sentinel')`);
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

/** Exponential back-off from 50 ms, capped: reconnects forever so the backend heals by itself. */
function backoff(maxDelay: number): (times: number) => number {
  return (times: number) => Math.min(50 * 2 ** Math.min(Math.max(times, 1) - 1, 10), maxDelay);
}

function applyAuth(o: { username?: string; password?: string }, auth: string | undefined, ep: Endpoint): void {
  if (auth) {
    const a = parseAuth(auth);
    if (a.username !== undefined) o.username = a.username;
    o.password = a.password;
  } else {
    if (ep.username !== undefined) o.username = ep.username;
    if (ep.password !== undefined) o.password = ep.password;
  }
}

/** READONLY means the connection reached a demoted primary (a failover we missed): reconnect, never resend. */
function reconnectOnReadOnly(err: Error): 1 | false {
  return err.message.startsWith('READONLY') ? 1 : false;
}

/**
 * ioredis options every connection of a rate limiter shares:
 * - `maxRetriesPerRequest: 0` and `autoResendUnfulfilledCommands: false`: a command in flight
 *   when the connection drops fails instead of being resent, which could count its hits twice.
 * - `commandTimeout`: every command has a deadline.
 * (Standalone and Sentinel backends send one script call per event-loop turn, see
 * RedisBackend.flush; the cluster client also uses ioredis' auto-pipelining, see clusterPlan.)
 */
function commonOptions(options: RedisConnectionOptions): RedisOptions {
  return {
    connectTimeout: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    commandTimeout: options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    enableReadyCheck: true,
    connectionName: options.connectionName ?? 'meshlimit',
    keepAlive: 10_000,
  };
}

/**
 * ioredis options for a standalone Redis (REDIS_TYPE=single), on top of {@link commonOptions}:
 * - `enableOfflineQueue: false`: while disconnected, commands fail at once (UNAVAILABLE) instead
 *   of queueing behind a dead connection.
 * - reconnects forever with a short capped back-off; a READONLY reply (a proxy or DNS name now
 *   pointing at a demoted primary) drops the connection so the next one finds the new primary.
 */
export function redisClientOptions(options: RedisConnectionOptions): RedisOptions {
  const type = normalizeRedisType(options.type);
  if (type !== 'single') throw new TypeError(`redisClientOptions is for REDIS_TYPE=single, got ${type}`);
  const ep = parseRedisUrl(options.url, options.socketType);
  const o: RedisOptions = {
    ...commonOptions(options),
    enableOfflineQueue: false,
    lazyConnect: options.lazyConnect ?? false,
    retryStrategy: backoff(options.maxReconnectDelayMs ?? DEFAULT_MAX_RECONNECT_DELAY_MS),
    reconnectOnError: reconnectOnReadOnly,
  };
  if (ep.path !== undefined) o.path = ep.path;
  else {
    o.host = ep.host!;
    o.port = ep.port!;
  }
  const db = options.db ?? ep.db;
  if (db !== undefined) o.db = db;
  applyAuth(o, options.auth, ep);
  if (options.tls || ep.tls) o.tls = { ...(options.tlsOptions ?? {}) };
  return o;
}

/** Parses a comma-separated address list; every item in any single-address form (no unix socket). */
function parseAddressList(items: readonly string[]): Endpoint[] {
  return items.map((item) => parseRedisUrl(item.trim()));
}

/**
 * Sentinel (REDIS_TYPE=sentinel): ioredis asks the sentinels for the primary of `name`, connects
 * to it and checks its role; on a failover the connection to the old primary drops (or it
 * answers READONLY, or a sentinel announces +switch-master to the failover detector) and ioredis
 * reconnects through the sentinels to the new primary. Meanwhile commands fail at once
 * (`enableOfflineQueue: false`): UNAVAILABLE, never a queue.
 *
 * Auth: REDIS_AUTH (or URL credentials) for the primary, REDIS_SENTINEL_AUTH for the sentinels
 * (unset: no AUTH to sentinels), as envoyproxy/ratelimit does. TLS: REDIS_TLS for both.
 */
export function sentinelClientOptions(options: RedisConnectionOptions): RedisOptions {
  const items = options.url.split(',').map((s) => s.trim());
  let name = options.sentinelMasterName;
  const fromUrl = items.slice(1);
  if (name === undefined) {
    name = items[0];
    if (name === undefined || name === '' || /[\s:/@]/.test(name) || fromUrl.length === 0) {
      throw new SettingsError('REDIS_URL', "with REDIS_TYPE=sentinel, expected 'master-name,host:port[,host:port...]'");
    }
  }
  const eps = options.nodes !== undefined && options.nodes.length > 0 ? options.nodes.map((n) => ({ host: n.host, port: n.port, tls: false }) as Endpoint) : parseAddressList(fromUrl);
  if (eps.length === 0) throw new SettingsError('REDIS_URL', 'with REDIS_TYPE=sentinel, at least one sentinel address is needed');
  const first = eps[0]!;
  const maxDelay = options.maxReconnectDelayMs ?? DEFAULT_MAX_RECONNECT_DELAY_MS;
  const connectTimeout = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const o: RedisOptions = {
    ...commonOptions(options),
    enableOfflineQueue: false,
    lazyConnect: options.lazyConnect ?? false,
    retryStrategy: backoff(maxDelay),
    reconnectOnError: reconnectOnReadOnly,
    sentinels: eps.map((e) => ({ host: e.host!, port: e.port! })),
    name,
    role: 'master',
    sentinelRetryStrategy: backoff(maxDelay),
    sentinelReconnectStrategy: backoff(maxDelay),
    sentinelCommandTimeout: connectTimeout,
    failoverDetector: true,
  };
  const db = options.db ?? first.db;
  if (db !== undefined) o.db = db;
  applyAuth(o, options.auth, first);
  if (options.sentinelAuth) {
    const a = parseAuth(options.sentinelAuth);
    if (a.username !== undefined) o.sentinelUsername = a.username;
    o.sentinelPassword = a.password;
  }
  if (options.tls || eps.some((e) => e.tls)) {
    o.tls = { ...(options.tlsOptions ?? {}) };
    o.enableTLSForSentinelMode = true;
    o.sentinelTLS = { ...(options.tlsOptions ?? {}) };
  }
  return o;
}

/** What `new Cluster(startupNodes, options)` takes. */
export interface ClusterPlan {
  readonly startupNodes: { host: string; port: number }[];
  readonly options: ClusterOptions;
}

/**
 * Redis Cluster (REDIS_TYPE=cluster), on top of {@link commonOptions} for every node connection:
 * - `scaleReads: 'master'`: the scripts write; a replica is never asked.
 * - `enableOfflineQueue: true`, on purpose (unlike single and sentinel): ioredis opens a node's
 *   connection lazily, on the first command for it (at start-up, after a MOVED or ASK to a node not
 *   used yet, after a failover). With the queue off, every other command for that node issued
 *   while the connection is being established fails with "Connection is closed.", so a burst
 *   after start-up or during a resharding fails for no reason. With it on, those commands wait for
 *   the connection, bounded by the per-command timeout (which ioredis arms when a command is
 *   queued on a node); a node that refuses the connection fails them at once (node connections
 *   never retry). The cluster-wide queue, used only while the cluster client itself is not ready,
 *   is never reached in practice: RedisClusterBackend fails fast when the client is not ready and
 *   bounds every call with its own deadline.
 * - MOVED and ASK are followed by ioredis (MOVED also refreshes the slot map); TRYAGAIN (a
 *   multi-key call whose keys a migration has split) is retried after
 *   `clusterRetryDelayOnTryAgainMs`; `maxRedirections` bounds all of them, so a MOVED loop ends in
 *   "Too many Cluster redirections" (UNAVAILABLE).
 * - `retryDelayOnFailover: 0` and `retryDelayOnClusterDown: 0`: a call that met a closed
 *   connection (it may have run) or CLUSTERDOWN fails at once rather than being resent, as on
 *   standalone Redis: no hit is ever counted twice, and the failover window is UNAVAILABLE.
 * - `enableAutoPipelining: true`: script calls issued in the same event-loop tick for slots of
 *   one node go out as one pipeline, one write (the cluster backend issues a request's per-slot
 *   calls together, so a request costs one round trip per node it touches, in parallel).
 * - reconnects (after losing every node) with the capped back-off; the slot map is also refreshed
 *   every `clusterSlotsRefreshIntervalMs`.
 */
export function clusterPlan(options: RedisConnectionOptions): ClusterPlan {
  const eps = options.nodes !== undefined && options.nodes.length > 0
    ? options.nodes.map((n) => ({ host: n.host, port: n.port, tls: false }) as Endpoint)
    : parseAddressList(options.url.split(','));
  if (eps.length === 0) throw new SettingsError('REDIS_URL', 'with REDIS_TYPE=cluster, at least one seed node is needed');
  const first = eps[0]!;
  if (eps.some((e) => e.db !== undefined && e.db !== 0) || (options.db !== undefined && options.db !== 0)) {
    throw new SettingsError('REDIS_URL', 'Redis Cluster has only database 0');
  }
  const redisOptions: RedisOptions = { ...commonOptions(options) };
  applyAuth(redisOptions, options.auth, first);
  if (options.tls || eps.some((e) => e.tls)) redisOptions.tls = { ...(options.tlsOptions ?? {}) };
  const maxDelay = options.maxReconnectDelayMs ?? DEFAULT_MAX_RECONNECT_DELAY_MS;
  const refreshEvery = options.clusterSlotsRefreshIntervalMs ?? DEFAULT_CLUSTER_SLOTS_REFRESH_INTERVAL_MS;
  const clusterOptions: ClusterOptions = {
    redisOptions,
    scaleReads: 'master',
    enableOfflineQueue: true,
    enableReadyCheck: true,
    enableAutoPipelining: true,
    lazyConnect: options.lazyConnect ?? false,
    maxRedirections: options.clusterMaxRedirections ?? DEFAULT_CLUSTER_MAX_REDIRECTIONS,
    retryDelayOnMoved: 0,
    retryDelayOnTryAgain: options.clusterRetryDelayOnTryAgainMs ?? DEFAULT_CLUSTER_RETRY_DELAY_ON_TRYAGAIN_MS,
    retryDelayOnFailover: 0,
    retryDelayOnClusterDown: 0,
    slotsRefreshTimeout: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    clusterRetryStrategy: backoff(maxDelay),
  };
  if (refreshEvery > 0) clusterOptions.slotsRefreshInterval = refreshEvery;
  return { startupNodes: eps.map((e) => ({ host: e.host!, port: e.port! })), options: clusterOptions };
}

/** A new ioredis client for a standalone Redis or a sentinel-managed primary. */
export function createRedisClient(options: RedisConnectionOptions): Redis {
  const type = normalizeRedisType(options.type);
  if (type === 'cluster') throw new TypeError('createRedisClient: use createClusterClient for REDIS_TYPE=cluster');
  return new Redis(type === 'sentinel' ? sentinelClientOptions(options) : redisClientOptions(options));
}

/** A new ioredis Cluster client (REDIS_TYPE=cluster). */
export function createClusterClient(options: RedisConnectionOptions): Cluster {
  const plan = clusterPlan(options);
  return new Cluster(plan.startupNodes, plan.options);
}
