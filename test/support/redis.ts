import { spawnSync, type ChildProcess } from 'node:child_process';
import { createConnection, createServer } from 'node:net';
import { Redis } from 'ioredis';
import { spawnTracked } from './child.js';

/**
 * Throw-away `redis-server` processes for integration tests.
 *
 * Each instance listens on a free loopback port (never 6379), keeps nothing on disk and is killed
 * when the test process exits, even if a test failed or forgot `stop()`.
 */
export interface RedisInstance {
  readonly host: '127.0.0.1';
  readonly port: number;
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  /** A new ioredis client on this instance (closed by `stop()`). */
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
}

let checkedBinary = false;
function assertRedisInstalled(): void {
  if (checkedBinary) return;
  const r = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    throw new Error(
      'redis-server is not installed or not on PATH; integration tests need it ' +
        '(install it: apt-get install redis-server)',
    );
  }
  checkedBinary = true;
}

/** A TCP port that was free a moment ago (bind 0 on loopback, read it, close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => (port ? resolve(port) : reject(new Error('could not get a free port'))));
    });
  });
}

/**
 * True once the server on `port` answers and is *our* child (INFO's process_id), so a process
 * that grabbed the port between freePort() and bind is never mistaken for ours.
 */
function answersAs(port: number, pid: number | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection({ host: '127.0.0.1', port });
    let buf = '';
    const done = (ok: boolean): void => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(500, () => done(false));
    sock.once('error', () => done(false));
    sock.once('connect', () => sock.write('INFO server\r\n'));
    sock.on('data', (d) => {
      buf += d.toString('latin1');
      if (buf.startsWith('-')) return done(false); // e.g. LOADING: not ready yet
      const m = /process_id:(\d+)\r\n/.exec(buf);
      if (m) done(Number(m[1]) === pid);
    });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Spawned {
  child: ChildProcess;
  exited: Promise<number | null>;
  output: () => string;
}

function spawnRedis(port: number, args: readonly string[]): Spawned {
  const t = spawnTracked(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no', ...args],
    { name: `redis-server :${port}`, keepBytes: 4000 },
  );
  return { child: t.child, exited: t.exited, output: t.output };
}

/** Starts a fresh redis-server on a free port and waits until it answers. */
export async function startRedis(opts: StartRedisOptions = {}): Promise<RedisInstance> {
  assertRedisInstalled();
  let lastError = '';
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = opts.port ?? (await freePort());
    const spawned = spawnRedis(port, opts.args ?? []);
    let dead = false;
    void spawned.exited.then(() => {
      dead = true;
    });
    const deadline = Date.now() + 10_000;
    while (!dead && Date.now() < deadline) {
      if (await answersAs(port, spawned.child.pid)) return instance(port, spawned);
      await sleep(20);
    }
    spawned.child.kill('SIGKILL');
    await spawned.exited;
    lastError = spawned.output();
    // Another process may have taken the port between freePort() and bind: try another one.
    if (opts.port !== undefined || !/Address already in use/i.test(lastError)) break;
  }
  throw new Error(`redis-server did not start:\n${lastError}`);
}

function instance(port: number, spawned: Spawned): RedisInstance {
  const clients = new Set<Redis>();
  let stopped = false;
  const url = `redis://127.0.0.1:${port}`;
  return {
    host: '127.0.0.1',
    port,
    url,
    client() {
      const c = new Redis({ host: '127.0.0.1', port, lazyConnect: false, maxRetriesPerRequest: 1 });
      c.on('error', () => {
        // tests that kill the server expect connection errors
      });
      clients.add(c);
      return c;
    },
    async pause(ms) {
      const c = new Redis({ host: '127.0.0.1', port });
      try {
        await c.call('CLIENT', 'PAUSE', String(ms), 'ALL');
      } finally {
        c.disconnect();
      }
    },
    async kill() {
      if (spawned.child.exitCode === null && spawned.child.signalCode === null) spawned.child.kill('SIGKILL');
      await spawned.exited;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      for (const c of clients) c.disconnect();
      clients.clear();
      if (spawned.child.exitCode === null && spawned.child.signalCode === null) {
        spawned.child.kill('SIGTERM');
        const timer = setTimeout(() => spawned.child.kill('SIGKILL'), 2000);
        await spawned.exited;
        clearTimeout(timer);
      }
    },
  };
}
