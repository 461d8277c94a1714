/**
 * Talking to a test `redis-server` for administration and polling: one command on a fresh,
 * non-retrying connection, `INFO` parsing, a polling wait that says what it last saw, and the
 * harness's error classes. Shared by the process layer (`redis-process.ts`) and the standalone,
 * cluster and sentinel set-ups.
 */
import type { ConnectionOptions } from 'node:tls';
import { Redis } from 'ioredis';

/** Every test server binds and announces this address (never a public interface). */
export const HOST = '127.0.0.1';

/** Any failure of the harness itself (missing binary, timeout, process died early). */
export class RedisHarnessError extends Error {
  override name = 'RedisHarnessError';
}

/** The server could not bind its port (or cluster bus port): pick another port and retry. */
export class PortInUseError extends RedisHarnessError {
  override name = 'PortInUseError';
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export const errorMessage = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/**
 * Polls `probe` until it returns `true`; any other return value (or a thrown error) is the reason
 * it is not done yet, quoted in the timeout error so a failed wait says what it last saw.
 */
export async function waitUntil(what: string, timeoutMs: number, probe: () => Promise<true | string>, intervalMs = 50): Promise<void> {
  const started = Date.now();
  let last = 'not probed yet';
  for (;;) {
    try {
      const r = await probe();
      if (r === true) return;
      last = r;
    } catch (e) {
      last = errorMessage(e);
    }
    if (Date.now() - started >= timeoutMs) {
      throw new RedisHarnessError(`timed out after ${timeoutMs} ms waiting for ${what}; last state: ${last}`);
    }
    await sleep(intervalMs);
  }
}

/** AUTH for a server that requires it (`requirepass`, or an ACL user). */
export interface RedisAuth {
  readonly username?: string | undefined;
  readonly password: string;
}

/**
 * How the harness reaches each TLS-only test server it runs, by port: set by the process layer
 * when it starts one (`redis-process.ts`), dropped when that process exits. Every administration
 * call (`redisCommand`) on that port then uses TLS with the harness's client certificate, so the
 * cluster and sentinel helpers need no TLS parameter of their own.
 */
const tlsByPort = new Map<number, ConnectionOptions>();

/** Registers (or with undefined, forgets) the TLS options the harness uses for the server on `port`. */
export function setHarnessTls(port: number, tls: ConnectionOptions | undefined): void {
  if (tls === undefined) tlsByPort.delete(port);
  else tlsByPort.set(port, tls);
}

/** The TLS options the harness uses for `port` (undefined: plain TCP). */
export function harnessTls(port: number): ConnectionOptions | undefined {
  return tlsByPort.get(port);
}

/**
 * One command on a fresh, non-retrying connection (closed afterwards). Used for administration
 * and polling: a dead or frozen node fails fast with a timeout instead of hanging or queueing.
 * `auth` is sent first when the server requires a password; TLS is used when `tls` is given or
 * the port is a TLS server the harness started ({@link setHarnessTls}); `tls: false` forces plain TCP.
 */
export async function redisCommand(
  port: number,
  args: readonly (string | number)[],
  opts: { timeoutMs?: number; auth?: RedisAuth | undefined; tls?: ConnectionOptions | false | undefined } = {},
): Promise<unknown> {
  const timeoutMs = opts.timeoutMs ?? 2_000;
  const [name, ...rest] = args;
  if (name === undefined) throw new RedisHarnessError('redisCommand: empty command');
  const conn = new Redis({
    host: HOST,
    port,
    lazyConnect: true,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableReadyCheck: false,
    enableOfflineQueue: false,
    disableClientInfo: true,
    ...(opts.auth === undefined ? {} : { username: opts.auth.username, password: opts.auth.password }),
    ...tlsOption(opts.tls === false ? undefined : (opts.tls ?? harnessTls(port))),
  });
  conn.on('error', () => {}); // the awaited promise carries the error
  try {
    await conn.connect();
    return await conn.call(String(name), rest);
  } finally {
    conn.disconnect();
  }
}

/** Parses `INFO` / `CLUSTER INFO` text into a map. */
export function parseInfo(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0 && !line.startsWith('#')) out.set(line.slice(0, i), line.slice(i + 1).trim());
  }
  return out;
}

/** `{ tls }` for ioredis options, or nothing (a copy: ioredis and node:tls may add fields). */
export function tlsOption(tls: ConnectionOptions | undefined): { tls?: ConnectionOptions } {
  return tls === undefined ? {} : { tls: { ...tls } };
}
