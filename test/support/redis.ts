/**
 * Throw-away standalone `redis-server` processes for integration tests and benchmarks.
 *
 * Each instance listens on a free loopback port (never 6379), keeps nothing on disk but its log
 * in its own temp dir, and is killed when the test process exits, even if a test failed or forgot
 * `stop()` (see `redis-cleanup.ts`). Process management is `redis-process.ts`, shared with the
 * cluster and sentinel set-ups.
 */
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { HOST, redisCommand, tlsOption } from './redis-admin.js';
import { makeTempRoot, reapOrphans, removeTempRoot } from './redis-cleanup.js';
import {
  NO_PERSISTENCE,
  RedisProcess,
  assertBinary,
  harnessClientTls,
  startOnFreePort,
  type RedisBinaries,
  type RedisServerTls,
} from './redis-process.js';

export interface RedisInstance {
  readonly host: '127.0.0.1';
  readonly port: number;
  /** `redis://127.0.0.1:<port>`, or `rediss://127.0.0.1:<port>` for a TLS server. */
  readonly url: string;
  /** The server's pid. */
  readonly pid: number;
  /** Its temp dir (log, pid file); removed by `stop()`. */
  readonly dir: string;
  /** The server's log file (inside `dir`): what it says about refused connections, for instance. */
  readonly logFile: string;
  /** A new ioredis client on this instance, over TLS with the harness's client certificate for a TLS server (closed by `stop()`). */
  client(): Redis;
  /** `CLIENT PAUSE <ms> ALL`: every client's commands wait `ms` (simulates a stalled server). */
  pause(ms: number): Promise<void>;
  /** SIGKILL: the server dies without closing sockets gracefully. Resolves when it has exited. */
  kill(): Promise<void>;
  /** Graceful stop: closes clients made by `client()`, then terminates the server. Idempotent. */
  stop(): Promise<void>;
}

export interface StartRedisOptions {
  /** Extra redis-server arguments, e.g. `['--maxmemory', '10mb']`. */
  readonly args?: readonly string[];
  /** A fixed port (e.g. to restart a killed instance where clients expect it); default: a free one. */
  readonly port?: number;
  /** Bound on the start-up (per port tried). Default 10 000 ms. */
  readonly startTimeoutMs?: number;
  readonly binaries?: Pick<RedisBinaries, 'server'>;
  /**
   * The default user's password (`--requirepass`); the harness authenticates its own commands and
   * the clients of `client()` with it. ACL users are added with `args` (`--user name on >pw ~* +@all`).
   */
  readonly password?: string;
  /**
   * Serve TLS only (`--port 0 --tls-port <port>`) with these files; a client certificate is
   * required unless `authClients` says otherwise. The harness's own commands and `client()` use
   * `tls.clientCert` and `tls.clientKey`. See test/support/tls-pki.ts for throwaway certificates.
   */
  readonly tls?: RedisServerTls;
}

/** Starts a fresh redis-server (on a free port unless `opts.port`) and waits until it answers. */
export async function startRedis(opts: StartRedisOptions = {}): Promise<RedisInstance> {
  const bin = opts.binaries?.server ?? 'redis-server';
  assertBinary(bin, 'redis-server');
  reapOrphans();
  const root = makeTempRoot();
  const timeoutMs = opts.startTimeoutMs ?? 10_000;
  const auth = opts.password === undefined ? undefined : { password: opts.password };
  const args = [...NO_PERSISTENCE, ...(auth === undefined ? [] : ['--requirepass', auth.password]), ...(opts.args ?? [])];
  const make = (port: number): RedisProcess => new RedisProcess({ bin, port, dir: join(root, `redis-${port}`), args, auth, tls: opts.tls });
  try {
    let proc: RedisProcess;
    if (opts.port === undefined) {
      proc = await startOnFreePort(make, new Set(), { withClusterBus: false, timeoutMs });
    } else {
      proc = make(opts.port);
      await proc.start(timeoutMs);
    }
    return instance(proc, root);
  } catch (e) {
    removeTempRoot(root);
    throw e;
  }
}

function instance(proc: RedisProcess, root: string): RedisInstance {
  const clients = new Set<Redis>();
  let stopping: Promise<void> | undefined;
  const { port } = proc;
  return {
    host: HOST,
    port,
    url: `${proc.spec.tls === undefined ? 'redis' : 'rediss'}://${HOST}:${port}`,
    pid: proc.pid as number,
    dir: root,
    logFile: proc.logFile,
    client() {
      const c = new Redis({
        host: HOST,
        port,
        lazyConnect: false,
        maxRetriesPerRequest: 1,
        password: proc.spec.auth?.password,
        ...tlsOption(proc.spec.tls === undefined ? undefined : harnessClientTls(proc.spec.tls)),
      });
      c.on('error', () => {
        // tests that kill the server expect connection errors
      });
      clients.add(c);
      return c;
    },
    async pause(ms) {
      await redisCommand(port, ['CLIENT', 'PAUSE', ms, 'ALL'], { auth: proc.spec.auth });
    },
    kill: () => proc.kill(),
    stop() {
      stopping ??= (async () => {
        for (const c of clients) c.disconnect();
        clients.clear();
        await proc.terminate(2_000);
        removeTempRoot(root);
      })();
      return stopping;
    },
  };
}
