/**
 * The one way the test harnesses run `redis-server`: pick a free port, spawn the server with its
 * own dir and arguments, wait until it answers as *itself*, freeze/thaw/kill/terminate/restart
 * it, and leave nothing behind (see `redis-cleanup.ts`). The standalone (`redis.ts`), cluster
 * (`redis-cluster.ts`) and sentinel (`redis-sentinel.ts`) set-ups are built on it.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import { HOST, PortInUseError, RedisHarnessError, redisCommand, setHarnessTls, sleep, type RedisAuth } from './redis-admin.js';
import { PID_FILE, track, untrack } from './redis-cleanup.js';
import { CLUSTER_BUS_OFFSET, getFreePort } from './ports.js';

/** Paths of the Redis binaries; by default looked up on PATH. */
export interface RedisBinaries {
  readonly server?: string;
  readonly cli?: string;
}

const INSTALL_HINT = 'install them: apt-get install redis-server (it ships redis-server and redis-cli)';
const checkedBinaries = new Set<string>();

/** Throws a clear error when `bin` cannot be executed. Cached per binary path. */
export function assertBinary(bin: string, what: 'redis-server' | 'redis-cli'): void {
  if (checkedBinaries.has(bin)) return;
  const res = spawnSync(bin, ['--version'], { encoding: 'utf8', timeout: 5_000 });
  if (res.error !== undefined || res.status !== 0) {
    const why = res.error !== undefined ? res.error.message : `exit status ${String(res.status)}: ${res.stderr}`;
    throw new RedisHarnessError(`${what} is not runnable (tried "${bin}": ${why}); ${INSTALL_HINT}`);
  }
  checkedBinaries.add(bin);
}

export type ProcessState = 'idle' | 'running' | 'frozen' | 'dead';

/** How to run one server. `dir` is its own directory (and cwd); it holds the log and pid file. */
export interface RedisProcessSpec {
  readonly bin: string;
  readonly port: number;
  readonly dir: string;
  /** Extra arguments after the common ones (`--port --bind --dir --logfile --daemonize`). */
  readonly args: readonly string[];
  /** Passed first (a sentinel needs a writable config file). */
  readonly configFile?: string;
  readonly sentinel?: boolean;
  /** What the harness authenticates its own commands with, when the server requires a password. */
  readonly auth?: RedisAuth | undefined;
  /** Serve TLS only on `port` (`--port 0 --tls-port <port>`), see {@link RedisServerTls}. */
  readonly tls?: RedisServerTls | undefined;
}

/**
 * A TLS-only server: its certificate files, whether clients must present a certificate, and the
 * client certificate the harness itself connects with (test/support/tls-pki.ts makes them all).
 */
export interface RedisServerTls {
  /** `--tls-cert-file`, `--tls-key-file`: the server's certificate and key (also presented on its own outgoing cluster bus and replication links). */
  readonly cert: string;
  readonly key: string;
  /** `--tls-ca-cert-file`: the CA client certificates (and peer nodes') must chain to; the harness also trusts it for the server's. */
  readonly ca: string;
  /** `--tls-auth-clients` (default `yes`: a client certificate is required). */
  readonly authClients?: 'yes' | 'no' | 'optional';
  /** The harness's own client certificate and key (its commands, `client()`, redis-cli). */
  readonly clientCert: string;
  readonly clientKey: string;
}

/**
 * What the harness connects to a TLS server with: its CA, client certificate and key, as PEM
 * text. It verifies the server's chain but not its name: tests give servers certificates for
 * other names on purpose (to see what meshlimit does with them), and the harness must still
 * reach them.
 */
export function harnessClientTls(tls: RedisServerTls): ConnectionOptions {
  return {
    ca: readFileSync(tls.ca, 'utf8'),
    cert: readFileSync(tls.clientCert, 'utf8'),
    key: readFileSync(tls.clientKey, 'utf8'),
    checkServerIdentity: () => undefined,
  };
}

/** The listening arguments of a server: plain `--port`, or TLS only on that port. */
function listenArgs(port: number, tls: RedisServerTls | undefined): string[] {
  if (tls === undefined) return ['--port', String(port)];
  return [
    '--port',
    '0',
    '--tls-port',
    String(port),
    '--tls-cert-file',
    tls.cert,
    '--tls-key-file',
    tls.key,
    '--tls-ca-cert-file',
    tls.ca,
    '--tls-auth-clients',
    tls.authClients ?? 'yes',
  ];
}

/** Arguments every data node gets: no persistence, so a test server writes nothing but its log. */
export const NO_PERSISTENCE = ['--save', '', '--appendonly', 'no'] as const;

function logTail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/**
 * One `redis-server` child. `start()` resolves once the server answers `INFO` with *its own*
 * pid (so a foreign server that grabbed the port is never mistaken for ours); it can be called
 * again after the process died, with the same port, dir and config (see {@link restart}).
 */
export class RedisProcess {
  state: ProcessState = 'idle';
  /** Every pid this process has had (restarts append). */
  readonly pids: number[] = [];
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private exitInfo = '';

  constructor(readonly spec: RedisProcessSpec) {}

  get port(): number {
    return this.spec.port;
  }

  get pid(): number | undefined {
    return this.state === 'running' || this.state === 'frozen' ? this.child?.pid : undefined;
  }

  get logFile(): string {
    return join(this.spec.dir, 'redis.log');
  }

  async start(timeoutMs = 10_000): Promise<void> {
    if (this.state === 'running' || this.state === 'frozen') {
      throw new RedisHarnessError(`redis-server on port ${this.port} is already running`);
    }
    const { spec } = this;
    mkdirSync(spec.dir, { recursive: true });
    const argv = [
      ...(spec.configFile !== undefined ? [spec.configFile] : []),
      ...(spec.sentinel === true ? ['--sentinel'] : []),
      ...listenArgs(spec.port, spec.tls),
      '--bind',
      HOST,
      '--dir',
      spec.dir,
      '--logfile',
      this.logFile,
      '--daemonize',
      'no',
      ...spec.args,
    ];
    const child = spawn(spec.bin, argv, { cwd: spec.dir, stdio: 'ignore' });
    this.child = child;
    setHarnessTls(spec.port, spec.tls === undefined ? undefined : harnessClientTls(spec.tls));
    this.state = 'running';
    this.exitInfo = '';
    track(this);
    this.exited = new Promise<void>((resolve) => {
      const done = (info: string): void => {
        if (this.child !== child) return resolve();
        this.state = 'dead';
        this.exitInfo = info;
        if (spec.tls !== undefined) setHarnessTls(spec.port, undefined);
        untrack(this);
        resolve();
      };
      child.once('exit', (code, signal) => done(signal !== null ? `signal ${signal}` : `exit code ${String(code)}`));
      child.once('error', (err) => done(`spawn error: ${err.message}`));
    });
    if (child.pid !== undefined) {
      this.pids.push(child.pid);
      writeFileSync(join(spec.dir, PID_FILE), String(child.pid));
    }
    await this.waitReady(child, timeoutMs);
  }

  /** Starts a killed process again: same port, dir and config. `what` names it in the error. */
  async restart(timeoutMs = 10_000, what = `redis-server ${this.port}`): Promise<void> {
    if (this.state !== 'dead') throw new RedisHarnessError(`${what} is ${this.state}; kill it before restarting`);
    await this.start(timeoutMs);
  }

  private async waitReady(child: ChildProcess, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.child !== child || this.state === 'dead') {
        const tail = logTail(this.logFile);
        if (/Address already in use/i.test(tail)) {
          throw new PortInUseError(`port ${this.port} (or its cluster bus port) is in use`);
        }
        throw new RedisHarnessError(
          `redis-server on port ${this.port} exited (${this.exitInfo}) before accepting connections; log tail:\n${tail}`,
        );
      }
      let info = '';
      try {
        info = String(await redisCommand(this.port, ['INFO', 'server'], { timeoutMs: 500, auth: this.spec.auth }));
      } catch {
        // not listening yet
      }
      const pid = /process_id:(\d+)/.exec(info)?.[1];
      if (pid !== undefined && Number(pid) === child.pid) return;
      if (pid !== undefined) {
        await this.kill();
        throw new PortInUseError(`port ${this.port} is held by another redis-server (pid ${pid})`);
      }
      if (Date.now() > deadline) {
        await this.kill();
        throw new RedisHarnessError(
          `redis-server on port ${this.port} did not accept connections within ${timeoutMs} ms; log tail:\n${logTail(this.logFile)}`,
        );
      }
      await sleep(20);
    }
  }

  /** SIGKILL; resolves once the process has been reaped (so `kill(pid, 0)` throws ESRCH). */
  async kill(): Promise<void> {
    if (this.state === 'running' || this.state === 'frozen') this.child?.kill('SIGKILL');
    await this.exited;
  }

  /** SIGTERM (a graceful shutdown), then SIGKILL after `graceMs`; resolves once reaped. */
  async terminate(graceMs = 2_000): Promise<void> {
    if (this.state !== 'running' && this.state !== 'frozen') return this.exited;
    this.child?.kill('SIGTERM');
    const timer = setTimeout(() => this.child?.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  /** For exit hooks: signal only, no waiting. */
  killSync(): void {
    if (this.state === 'running' || this.state === 'frozen') this.child?.kill('SIGKILL');
  }

  /** SIGSTOP: the process keeps its sockets but answers nothing, like a stalled VM. */
  freeze(): void {
    if (this.state !== 'running') throw new RedisHarnessError(`cannot freeze port ${this.port}: it is ${this.state}`);
    this.child?.kill('SIGSTOP');
    this.state = 'frozen';
  }

  /** SIGCONT after `freeze()`. */
  thaw(): void {
    if (this.state !== 'frozen') throw new RedisHarnessError(`cannot thaw port ${this.port}: it is ${this.state}`);
    this.child?.kill('SIGCONT');
    this.state = 'running';
  }
}

const pickLocks = new WeakMap<Set<number>, Promise<unknown>>();

/** Picks ports for one set-up one at a time, so parallel starts never pick the same one. */
function reservePort(used: Set<number>, withClusterBus: boolean): Promise<number> {
  const pick = (pickLocks.get(used) ?? Promise.resolve())
    .catch(() => {})
    .then(async () => {
      const port = await getFreePort({ withClusterBus, exclude: used });
      used.add(port);
      used.add(port + CLUSTER_BUS_OFFSET);
      return port;
    });
  pickLocks.set(used, pick);
  return pick;
}

/**
 * Picks a free port, builds the process with `make(port)` and starts it; when the port turns out
 * to be taken (a race with another worker), tries another one. `used` collects the ports handed out.
 */
export async function startOnFreePort(
  make: (port: number) => RedisProcess,
  used: Set<number>,
  opts: { withClusterBus: boolean; timeoutMs: number },
): Promise<RedisProcess> {
  for (let attempt = 1; ; attempt++) {
    const port = await reservePort(used, opts.withClusterBus);
    const proc = make(port);
    try {
      await proc.start(opts.timeoutMs);
      return proc;
    } catch (e) {
      rmSync(proc.spec.dir, { recursive: true, force: true });
      if (!(e instanceof PortInUseError) || attempt >= 5) throw e;
    }
  }
}
