import type { ConnectionOptions as TlsConnectionOptions } from 'node:tls';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';

/** The Redis deployment shapes meshlimit knows (REDIS_TYPE; settings parse upstream's any-case spelling). */
export const REDIS_TYPES = ['single', 'cluster', 'sentinel'] as const;
export type RedisType = (typeof REDIS_TYPES)[number];

/** One Redis (or sentinel) address; `host` is a name or an IP literal without brackets (`::1`). */
export interface RedisAddress {
  readonly host: string;
  readonly port: number;
}

/** AUTH credentials: a password, with an ACL user name for Redis 6 ACLs (undefined: the default user). */
export interface RedisCredentials {
  readonly username: string | undefined;
  readonly password: string;
}

/**
 * How to reach Redis, as typed fields: settings parse REDIS_URL, REDIS_AUTH and the rest once
 * (src/settings/redis.ts) and hand them over as they are, so nothing here parses a string again
 * (a rebuilt `host:port` broke IPv6 literals, a rebuilt `user:password` broke passwords holding
 * `:`). Keys arrive fully built (prefix included) from src/limiter/keys.ts, so no ioredis keyPrefix.
 */
export interface RedisConnectionOptions {
  /** REDIS_TYPE: `single` (default), `cluster` or `sentinel`. */
  readonly type?: RedisType;
  /**
   * How messages name this Redis: which one and the setting that points at it, e.g.
   * `Redis at REDIS_URL=127.0.0.1:6379` (settings set it, passwords redacted). Default `Redis`.
   */
  readonly label?: string | undefined;
  /**
   * `single`: the server (exactly one, unless `path` is given); `cluster`: the seed nodes;
   * `sentinel`: the sentinels.
   */
  readonly nodes?: readonly RedisAddress[] | undefined;
  /** `single` only: a Unix socket path (REDIS_SOCKET_TYPE=unix), instead of `nodes`. */
  readonly path?: string | undefined;
  /** `sentinel` only: the monitored master's name. */
  readonly sentinelMasterName?: string | undefined;
  /**
   * Credentials for the data nodes: the server, every cluster node, the sentinel-managed primary
   * (REDIS_AUTH or the URL's user info).
   */
  readonly auth?: RedisCredentials | undefined;
  /**
   * REDIS_SENTINEL_AUTH (envoyproxy/ratelimit's name): credentials for the sentinels themselves,
   * which Redis authenticates separately from the data nodes. Unset: the sentinels are asked
   * without AUTH, as upstream does.
   */
  readonly sentinelAuth?: RedisCredentials | undefined;
  /**
   * REDIS_TLS: connect with TLS (also implied by a `rediss://` URL). Applies to every connection:
   * data nodes, cluster nodes, and sentinels (as upstream, one switch for both).
   */
  readonly tls?: boolean;
  /**
   * TLS options of every connection when `tls` is on: settings put REDIS_TLS_CACERT's bundle in
   * `ca` (it then replaces Node's default CAs), REDIS_TLS_CLIENT_CERT and REDIS_TLS_CLIENT_KEY in
   * `cert` and `key` (PEM text read once at start-up). Settings set no `servername`: each
   * connection presents (SNI) and verifies the host it dials, which is right for every node of a
   * cluster and for the primary a sentinel names, where one fixed name would be wrong.
   */
  readonly tlsOptions?: TlsConnectionOptions;
  /**
   * REDIS_TLS_SKIP_HOSTNAME_VERIFICATION (envoyproxy/ratelimit's meaning): verify the server's
   * certificate chain against the trusted CAs as usual, but not that the certificate names the
   * host dialled (servers whose certificates carry another name, e.g. GCP Memorystore). An
   * untrusted or expired certificate is still refused.
   */
  readonly tlsSkipHostnameVerification?: boolean;
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
  /** Database index for standalone Redis and sentinel (default 0). A cluster has only 0. */
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

/** Exponential back-off from 50 ms, capped: reconnects forever so the backend heals by itself. */
function backoff(maxDelay: number): (times: number) => number {
  return (times: number) => Math.min(50 * 2 ** Math.min(Math.max(times, 1) - 1, 10), maxDelay);
}

/** Sets ioredis' `username`/`password` from `auth` (nothing when undefined). */
function applyAuth(o: { username?: string; password?: string }, auth: RedisCredentials | undefined): void {
  if (auth === undefined) return;
  if (auth.username !== undefined) o.username = auth.username;
  o.password = auth.password;
}

/** The nodes of `options`, which must hold at least one (a programming error otherwise: settings check REDIS_URL). */
function nodesOf(options: RedisConnectionOptions, what: string): readonly RedisAddress[] {
  const nodes = options.nodes ?? [];
  if (nodes.length === 0) throw new TypeError(`redis connection: ${what} needs at least one address in 'nodes'`);
  return nodes;
}

/**
 * The `tls` options of one ioredis connection: `tlsOptions`, plus a `checkServerIdentity` that
 * accepts any name when `tlsSkipHostnameVerification` (Node calls it only after the chain
 * verified, so the chain is still checked). Undefined when TLS is off.
 */
export function tlsConnectOptions(options: RedisConnectionOptions): TlsConnectionOptions | undefined {
  if (options.tls !== true) return undefined;
  const o: TlsConnectionOptions = { ...(options.tlsOptions ?? {}) };
  if (options.tlsSkipHostnameVerification === true) o.checkServerIdentity = skipHostnameCheck;
  return o;
}

/** Accepts the certificate's names whatever the host (REDIS_TLS_SKIP_HOSTNAME_VERIFICATION). */
const skipHostnameCheck = (): undefined => undefined;

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
  const type = options.type ?? 'single';
  if (type !== 'single') throw new TypeError(`redisClientOptions is for REDIS_TYPE=single, got ${type}`);
  const o: RedisOptions = {
    ...commonOptions(options),
    enableOfflineQueue: false,
    lazyConnect: options.lazyConnect ?? false,
    retryStrategy: backoff(options.maxReconnectDelayMs ?? DEFAULT_MAX_RECONNECT_DELAY_MS),
    reconnectOnError: reconnectOnReadOnly,
  };
  if (options.path !== undefined) o.path = options.path;
  else {
    const nodes = nodesOf(options, 'REDIS_TYPE=single');
    if (nodes.length > 1) throw new TypeError(`redis connection: REDIS_TYPE=single takes one address, got ${nodes.length}`);
    o.host = nodes[0]!.host;
    o.port = nodes[0]!.port;
  }
  if (options.db !== undefined) o.db = options.db;
  applyAuth(o, options.auth);
  const tls = tlsConnectOptions(options);
  if (tls !== undefined) o.tls = tls;
  return o;
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
  const name = options.sentinelMasterName;
  if (name === undefined || name === '') throw new TypeError("redis connection: REDIS_TYPE=sentinel needs 'sentinelMasterName'");
  const sentinels = nodesOf(options, 'REDIS_TYPE=sentinel');
  const maxDelay = options.maxReconnectDelayMs ?? DEFAULT_MAX_RECONNECT_DELAY_MS;
  const connectTimeout = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const o: RedisOptions = {
    ...commonOptions(options),
    enableOfflineQueue: false,
    lazyConnect: options.lazyConnect ?? false,
    retryStrategy: backoff(maxDelay),
    reconnectOnError: reconnectOnReadOnly,
    sentinels: sentinels.map((e) => ({ host: e.host, port: e.port })),
    name,
    role: 'master',
    sentinelRetryStrategy: backoff(maxDelay),
    sentinelReconnectStrategy: backoff(maxDelay),
    sentinelCommandTimeout: connectTimeout,
    failoverDetector: true,
  };
  if (options.db !== undefined) o.db = options.db;
  applyAuth(o, options.auth);
  if (options.sentinelAuth !== undefined) {
    if (options.sentinelAuth.username !== undefined) o.sentinelUsername = options.sentinelAuth.username;
    o.sentinelPassword = options.sentinelAuth.password;
  }
  const tls = tlsConnectOptions(options);
  if (tls !== undefined) {
    o.tls = tls;
    o.enableTLSForSentinelMode = true;
    o.sentinelTLS = { ...tls };
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
 * - TLS (`tls`, `tlsOptions`, `tlsSkipHostnameVerification`) on every node connection.
 */
export function clusterPlan(options: RedisConnectionOptions): ClusterPlan {
  const seeds = nodesOf(options, 'REDIS_TYPE=cluster');
  if (options.db !== undefined && options.db !== 0) throw new TypeError('redis connection: Redis Cluster has only database 0');
  const redisOptions: RedisOptions = { ...commonOptions(options) };
  applyAuth(redisOptions, options.auth);
  const tls = tlsConnectOptions(options);
  if (tls !== undefined) redisOptions.tls = tls;
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
  // With TLS, a seed given by name is dialled by that name, so its certificate is verified
  // against it (ioredis would resolve it to an address first, which a certificate for the name
  // does not list); the nodes CLUSTER SLOTS announces are dialled as announced (addresses,
  // unless the cluster announces hostnames), as envoyproxy/ratelimit's client does.
  if (tls !== undefined) clusterOptions.dnsLookup = (address, callback) => callback(null, address);
  return { startupNodes: seeds.map((e) => ({ host: e.host, port: e.port })), options: clusterOptions };
}

/** A new ioredis client for a standalone Redis or a sentinel-managed primary. */
export function createRedisClient(options: RedisConnectionOptions): Redis {
  const type = options.type ?? 'single';
  if (type === 'cluster') throw new TypeError('createRedisClient: use createClusterClient for REDIS_TYPE=cluster');
  return new Redis(type === 'sentinel' ? sentinelClientOptions(options) : redisClientOptions(options));
}

/** A new ioredis Cluster client (REDIS_TYPE=cluster). */
export function createClusterClient(options: RedisConnectionOptions): Cluster {
  const plan = clusterPlan(options);
  return new Cluster(plan.startupNodes, plan.options);
}
