import type { RedisAddress, RedisConnectionOptions, RedisCredentials, RedisType } from '../backend/index.js';
import { SettingsError } from '../errors.js';
import { redactUrl } from '../util/redact.js';
import { InvalidValue } from './spec.js';

/**
 * REDIS_URL and its companions, parsed once into the typed fields the Redis backends take
 * ({@link RedisConnectionOptions}). Nothing downstream turns them back into strings: a rebuilt
 * `host:port` broke IPv6 literals (`[::1]:6379` became `::1:6379`), a rebuilt `user:password`
 * broke passwords holding `:` (see test/regressions/).
 */

/**
 * `password` or `username:password`, split at the FIRST colon as envoyproxy/ratelimit does, so a
 * password holding `:` must be given with its user (`default:pa:ss` for the default user). Never
 * echoes the value.
 */
export function redisAuth(raw: string): RedisCredentials {
  const colon = raw.indexOf(':');
  if (colon < 0) return { username: undefined, password: raw };
  const username = raw.slice(0, colon);
  const password = raw.slice(colon + 1);
  if (username === '' || password === '') throw new InvalidValue('expected "password" or "username:password" with both parts non-empty');
  return { username, password };
}

export const REDIS_SOCKET_TYPES = ['tcp', 'unix'] as const;
export type RedisSocketType = (typeof REDIS_SOCKET_TYPES)[number];

/**
 * The Redis settings: the connection options the backend takes as they are, plus what only logs
 * need. Secrets (`auth`, `sentinelAuth`, the private key in `tlsOptions`) are redacted by
 * `redactedSettings`.
 */
export interface RedisSettings extends RedisConnectionOptions {
  readonly type: RedisType;
  readonly socketType: RedisSocketType;
  /** REDIS_URL as given with any password replaced by `[REDACTED]`: for logs, never for connecting. */
  readonly url: string;
  /** How messages name this Redis: `Redis at REDIS_URL=<url, password redacted>` (`Redis cluster at ...`, `... REDIS_PERSECOND_URL=...`). */
  readonly label: string;
  /** single: the server; cluster: the seed nodes; sentinel: the sentinels. Empty for a Unix socket. */
  readonly nodes: readonly RedisAddress[];
  /** Socket path when `socketType` is `unix`. */
  readonly path: string | undefined;
  /** The master name when `type` is `sentinel`. */
  readonly sentinelMasterName: string | undefined;
  /** From REDIS_AUTH or the URL's user info. A secret. */
  readonly auth: RedisCredentials | undefined;
  /** REDIS_SENTINEL_AUTH, for the sentinels themselves. A secret. */
  readonly sentinelAuth: RedisCredentials | undefined;
  /** Logical database from a `redis://host/db` URL; always 0 for a cluster. */
  readonly db: number;
  readonly tls: boolean;
  /**
   * The PEM text of REDIS_TLS_CACERT (`ca`), REDIS_TLS_CLIENT_CERT (`cert`) and
   * REDIS_TLS_CLIENT_KEY (`key`, a secret), read at start-up; undefined when none is set.
   */
  readonly tlsOptions: RedisTlsPem | undefined;
  /** REDIS_TLS_SKIP_HOSTNAME_VERIFICATION. */
  readonly tlsSkipHostnameVerification: boolean;
  /** The paths `tlsOptions` was read from, for logs. */
  readonly tlsFiles: RedisTlsFiles;
  readonly commandTimeoutMs: number;
  readonly connectTimeoutMs: number;
}

/** TLS material as PEM text (what node:tls takes as `ca`, `cert` and `key`). */
export interface RedisTlsPem {
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
}

/** The REDIS_TLS_* file settings as given (paths). */
export interface RedisTlsFiles {
  readonly caCert?: string;
  readonly clientCert?: string;
  readonly clientKey?: string;
}

/** The names of the variables one Redis is configured by, for error messages. */
export interface RedisVariables {
  readonly type: string;
  readonly socketType: string;
  readonly url: string;
  readonly auth: string;
}

export const MAIN_REDIS_VARIABLES: RedisVariables = {
  type: 'REDIS_TYPE',
  socketType: 'REDIS_SOCKET_TYPE',
  url: 'REDIS_URL',
  auth: 'REDIS_AUTH',
};
export const PER_SECOND_REDIS_VARIABLES: RedisVariables = {
  type: 'REDIS_PERSECOND_TYPE',
  socketType: 'REDIS_PERSECOND_SOCKET_TYPE',
  url: 'REDIS_PERSECOND_URL',
  auth: 'REDIS_PERSECOND_AUTH',
};

/** The parsed values {@link composeRedis} combines (each already valid on its own). */
export interface RedisInputs {
  readonly type: RedisType;
  readonly socketType: RedisSocketType;
  readonly url: string;
  readonly auth: RedisCredentials | undefined;
  readonly sentinelAuth: RedisCredentials | undefined;
  readonly tls: boolean;
  readonly commandTimeoutMs: number;
  readonly connectTimeoutMs: number;
}

interface Endpoint {
  readonly node: RedisAddress;
  readonly tls: boolean;
  readonly username: string | undefined;
  readonly password: string | undefined;
  readonly db: number;
}

/** Parses one `host:port`, `[v6]:port`, `host`, `redis://...` or `rediss://...` item of REDIS_URL. */
export function parseEndpoint(item: string): Endpoint {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(item)?.[1]?.toLowerCase();
  if (scheme === undefined) return parseHostPort(item);
  if (scheme !== 'redis' && scheme !== 'rediss') throw new InvalidValue(`unsupported scheme "${scheme}://" (use redis:// or rediss://)`);
  const shown = JSON.stringify(redactUrl(item, { keepQuery: true }));
  let url: URL;
  try {
    url = new URL(item);
  } catch {
    throw new InvalidValue(`${shown} is not a valid URL`);
  }
  if (url.search !== '' || url.hash !== '') throw new InvalidValue(`${shown}: query strings and fragments are not supported`);
  const dbText = url.pathname.replace(/^\//, '');
  if (dbText !== '' && !/^\d+$/.test(dbText)) throw new InvalidValue(`${shown}: the path must be a database number`);
  const username = url.username === '' ? undefined : decodeURIComponent(url.username);
  const password = url.password === '' ? undefined : decodeURIComponent(url.password);
  if (username !== undefined && password === undefined) {
    throw new InvalidValue(`${shown} has a user name but no password; write redis://:password@host for a password alone`);
  }
  const hostname = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (hostname === '') throw new InvalidValue(`${shown} has no host`);
  const port = url.port === '' ? 6379 : Number(url.port);
  return { node: { host: hostname, port }, tls: scheme === 'rediss', username, password, db: dbText === '' ? 0 : Number(dbText) };
}

function parseHostPort(item: string): Endpoint {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^\s:/@[\]]+))(?::(\d+))?$/.exec(item);
  if (m === null) throw new InvalidValue(`expected host:port, [ipv6]:port, redis://... or rediss://..., got ${JSON.stringify(item)}`);
  const port = m[3] === undefined ? 6379 : Number(m[3]);
  if (port < 1 || port > 65_535) throw new InvalidValue(`port must be from 1 to 65535, got ${JSON.stringify(item)}`);
  return { node: { host: (m[1] ?? m[2]) as string, port }, tls: false, username: undefined, password: undefined, db: 0 };
}

/**
 * Combines the REDIS_* values into {@link RedisSettings} (without TLS material: see
 * ./redis-tls.ts); a contradiction is pushed onto `errors` (naming the variable to fix, from
 * `vars`: the main Redis's or the per-second one's) and yields undefined.
 */
export function composeRedis(
  p: RedisInputs,
  errors: SettingsError[],
  vars: RedisVariables = MAIN_REDIS_VARIABLES,
): RedisSettings | undefined {
  const fail = (name: string, detail: string): undefined => {
    errors.push(new SettingsError(name, detail));
    return undefined;
  };
  const raw = p.url.trim();
  const base = {
    type: p.type,
    socketType: p.socketType,
    url: redactUrl(p.url),
    label: `${p.type === 'single' ? 'Redis' : `Redis ${p.type}`} at ${vars.url}=${redactUrl(raw)}`,
    sentinelAuth: p.sentinelAuth,
    commandTimeoutMs: p.commandTimeoutMs,
    connectTimeoutMs: p.connectTimeoutMs,
    tlsOptions: undefined,
    tlsSkipHostnameVerification: false,
    tlsFiles: {},
  };
  if (p.socketType === 'unix') {
    if (p.type !== 'single') return fail(vars.socketType, `unix sockets work only with ${vars.type}=single, got ${vars.type}=${p.type}`);
    if (raw.includes(',') || raw.includes('://'))
      return fail(vars.url, `with ${vars.socketType}=unix, expected a socket path, got ${JSON.stringify(redactUrl(raw))}`);
    return { ...base, nodes: [], path: raw, sentinelMasterName: undefined, sentinelAuth: undefined, auth: p.auth, db: 0, tls: p.tls };
  }
  const items = raw.split(',').map((s) => s.trim());
  if (items.some((s) => s === '')) return fail(vars.url, `empty item in the comma-separated list ${JSON.stringify(redactUrl(raw))}`);
  let sentinelMasterName: string | undefined;
  if (p.type === 'sentinel') {
    if (items.length < 2)
      return fail(
        vars.url,
        `with ${vars.type}=sentinel, expected "master-name,host:port[,host:port...]" (the master name, then at least one sentinel)`,
      );
    sentinelMasterName = items.shift() as string;
    if (!/^[^\s:/@]+$/.test(sentinelMasterName))
      return fail(
        vars.url,
        `with ${vars.type}=sentinel, the first item must be the master name, got ${JSON.stringify(sentinelMasterName)}`,
      );
  } else if (p.type === 'single' && items.length > 1) {
    return fail(
      vars.url,
      `${vars.type}=single takes one address; set ${vars.type}=cluster for a seed list or ${vars.type}=sentinel for sentinels`,
    );
  }
  const endpoints: Endpoint[] = [];
  for (const item of items) {
    try {
      endpoints.push(parseEndpoint(item));
    } catch (err) {
      if (!(err instanceof InvalidValue)) throw err;
      return fail(vars.url, err.message);
    }
  }
  const problem = endpointsProblem(endpoints, p, vars);
  if (problem !== undefined) return fail(problem.setting, problem.detail);
  const first = endpoints[0] as Endpoint;
  const fromUrl: RedisCredentials | undefined =
    first.password === undefined ? undefined : { username: first.username, password: first.password };
  return {
    ...base,
    nodes: endpoints.map((e) => e.node),
    path: undefined,
    sentinelMasterName,
    auth: p.auth ?? fromUrl,
    db: first.db,
    tls: p.tls || first.tls,
  };
}

/** What is wrong with a list of endpoints taken together, if anything. */
function endpointsProblem(
  endpoints: readonly Endpoint[],
  p: RedisInputs,
  vars: RedisVariables,
): { setting: string; detail: string } | undefined {
  const first = endpoints[0] as Endpoint;
  const same = (f: (e: Endpoint) => unknown): boolean => endpoints.every((e) => f(e) === f(first));
  if (!same((e) => e.tls)) return { setting: vars.url, detail: 'mixes redis:// and rediss:// items; use one scheme for every node' };
  if (!same((e) => e.username) || !same((e) => e.password))
    return { setting: vars.url, detail: `items carry different credentials; give them once, in ${vars.auth}` };
  if (!same((e) => e.db)) return { setting: vars.url, detail: 'items name different databases' };
  if (p.type === 'cluster' && first.db !== 0) return { setting: vars.url, detail: `Redis Cluster has only database 0, got /${first.db}` };
  if (first.password !== undefined && p.auth !== undefined)
    return { setting: vars.auth, detail: `credentials are given both in ${vars.url} and ${vars.auth}; give them in one place` };
  return undefined;
}
