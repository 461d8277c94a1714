/**
 * The servers a benchmark drives: the echo baseline and meshlimit on each backend, each a child
 * process pinned to the service CPU, plus the Redis servers they use (pinned to the load CPU).
 * Every target can say how many requests it answered and how many it failed, so the harness
 * can prove "errors: 0" from the server side, and (for Redis) how much Redis CPU the scripts took.
 */
import path from 'node:path';
import { startRedis, type RedisInstance } from '../../test/support/redis.js';
import { parseInfo, redisCommand } from '../../test/support/redis-admin.js';
import { startRedisCluster, type RedisCluster } from '../../test/support/redis-cluster.js';
import { getFreePort } from '../../test/support/ports.js';
import {
  cpuTimeMs,
  meshlimitCommand,
  runQueueWaitNs,
  pinned,
  pinPid,
  realtimePid,
  rssMiB,
  ROOT,
  sleep,
  spawnChild,
  type Child,
  type RunMode,
} from './procs.js';

/** Requests a server answered with a decision, and requests it failed, since it started. */
export interface Counts {
  /** gRPC OK answers with overall code OK (echo: every call). */
  readonly ok: number;
  /** gRPC OK answers with overall code OVER_LIMIT. */
  readonly overLimit: number;
  /** Calls answered with a non-OK gRPC status (meshlimit_requests_total codes other than ok/over_limit). */
  readonly errors: number;
  /** `errors` by meshlimit_requests_total code (unavailable, deadline_exceeded, ...). */
  readonly errorsByCode: Readonly<Record<string, number>>;
}

/** Lua script time as Redis accounts it (INFO commandstats, EVALSHA + EVAL), summed over primaries. */
export interface ScriptStats {
  readonly calls: number;
  readonly usec: number;
}

export interface Target {
  readonly name: string;
  readonly kind: 'echo' | 'meshlimit';
  readonly grpcPort: number;
  /** The gRPC port speaks TLS (the TLS phase's targets). */
  readonly tls?: boolean;
  /** The admin port (`/metrics`), for meshlimit targets. */
  readonly httpPort?: number;
  readonly pid: number;
  /**
   * False when `counts()` may miss answers (several workers, each with its own metrics): errors
   * are then judged from the client side only.
   */
  readonly countsComplete: boolean;
  counts(): Promise<Counts>;
  /** Present for Redis-backed targets. */
  scriptStats?(): Promise<ScriptStats>;
  /** Redis used_memory (MiB) summed over primaries, for Redis-backed targets. */
  redisMemoryMiB?(): Promise<number>;
  cpuMs(): number;
  /** See {@link runQueueWaitNs}. */
  waitNs(): number;
  /** Run-queue wait of the target's redis-server processes, summed (Redis-backed targets). */
  redisWaitNs?(): number;
  rssMiB(): number;
  stop(): Promise<void>;
}

/**
 * meshlimit_requests_total by code, from the Prometheus text. The label is `outcome` since
 * 2026-12-06 and was `code` before: an A/B against an older build (benchmarks/ab-builds.ts) reads
 * both, or every request of the older build counts as unanswered, an error.
 */
export function parseRequestCounts(metrics: string): Counts {
  let ok = 0;
  let overLimit = 0;
  let errors = 0;
  const errorsByCode: Record<string, number> = {};
  for (const line of metrics.split('\n')) {
    const m = /^meshlimit_requests_total\{(?:outcome|code)="([a-z_]+)"\} ([\d.e+]+)$/.exec(line);
    if (!m) continue;
    const code = m[1] as string;
    const v = Number(m[2]);
    if (code === 'ok') ok += v;
    else if (code === 'over_limit') overLimit += v;
    else {
      errors += v;
      errorsByCode[code] = (errorsByCode[code] ?? 0) + v;
    }
  }
  return { ok, overLimit, errors, errorsByCode };
}

/** Sums `cmdstat_evalsha` and `cmdstat_eval` from `INFO commandstats` text. */
export function parseScriptStats(info: string): ScriptStats {
  let calls = 0;
  let usec = 0;
  for (const line of info.split(/\r?\n/)) {
    const m = /^cmdstat_(evalsha|eval):calls=(\d+),usec=(\d+),/.exec(line);
    if (!m) continue;
    calls += Number(m[2]);
    usec += Number(m[3]);
  }
  return { calls, usec };
}

async function httpGet(url: string, timeoutMs = 5000): Promise<{ status: number; text: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  return { status: res.status, text: await res.text() };
}

/** A Redis deployment the meshlimit targets share: standalone or a cluster. */
export interface RedisDeployment {
  readonly kind: 'single' | 'cluster';
  /** REDIS_URL for meshlimit. */
  readonly url: string;
  /** Ports of the primaries (where scripts run). */
  readonly primaryPorts: readonly number[];
  readonly pids: readonly number[];
  /** Every redis-server runs under SCHED_FIFO (see procs.realtimePid): commandstats count no preemption. */
  readonly realtime: boolean;
  stop(): Promise<void>;
}

async function redisPid(port: number): Promise<number> {
  return Number(parseInfo(String(await redisCommand(port, ['INFO', 'server']))).get('process_id'));
}

export async function startStandaloneRedis(cpus: string | undefined): Promise<RedisDeployment> {
  const r: RedisInstance = await startRedis();
  const pid = await redisPid(r.port);
  pinPid(pid, cpus);
  return {
    kind: 'single',
    url: `127.0.0.1:${r.port}`,
    primaryPorts: [r.port],
    pids: [pid],
    realtime: realtimePid(pid),
    stop: () => r.stop(),
  };
}

/**
 * Three primaries, no replicas (replication would add CPU the 2-core machine does not have);
 * a long node timeout so a saturated CPU never gets a node flagged as failing.
 */
export async function startClusterRedis(cpus: string | undefined): Promise<RedisDeployment> {
  const c: RedisCluster = await startRedisCluster({ primaries: 3, replicasPerPrimary: 0, nodeTimeoutMs: 15_000 });
  const pids = c.pids();
  for (const pid of pids) pinPid(pid, cpus);
  const realtime = pids.map(realtimePid).every(Boolean);
  return { kind: 'cluster', url: c.seeds, primaryPorts: c.primaries().map((n) => n.port), pids, realtime, stop: () => c.stop() };
}

async function sumOverPrimaries<T>(
  ports: readonly number[],
  section: string,
  f: (info: string) => T,
  add: (a: T, b: T) => T,
  zero: T,
): Promise<T> {
  let acc = zero;
  for (const p of ports) acc = add(acc, f(String(await redisCommand(p, ['INFO', section]))));
  return acc;
}

export interface MeshlimitOptions {
  readonly name: string;
  readonly mode: RunMode;
  readonly cpus: string | undefined;
  readonly configDir: string;
  readonly backend: 'memory' | RedisDeployment;
  /** Extra environment (WORKERS, REDIS_COMMAND_TIMEOUT_MS, ...). */
  readonly env?: Readonly<Record<string, string>>;
  readonly startTimeoutMs?: number;
  /** See {@link Target.countsComplete}; default true. */
  readonly countsComplete?: boolean;
  /** With mode `dist`: the directory holding the build to run (default: the run's snapshot). */
  readonly buildDir?: string;
  /** Serve gRPC over TLS with this certificate (GRPC_SERVER_USE_TLS). */
  readonly tls?: TlsFiles | undefined;
}

/** A server certificate and its key, as file paths. */
export interface TlsFiles {
  readonly cert: string;
  readonly key: string;
}

/** Thrown when meshlimit exits during start-up (e.g. an unsupported setting). */
export class StartupError extends Error {
  override name = 'StartupError';
}

export async function startMeshlimit(o: MeshlimitOptions): Promise<Target> {
  const grpcPort = await getFreePort();
  const httpPort = await getFreePort({ exclude: new Set([grpcPort]) });
  const redis = o.backend === 'memory' ? undefined : o.backend;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOST: '127.0.0.1',
    PORT: String(httpPort),
    GRPC_HOST: '127.0.0.1',
    GRPC_PORT: String(grpcPort),
    CONFIG_DIR: o.configDir,
    LOG_LEVEL: 'error',
    BACKEND_TYPE: redis === undefined ? 'memory' : 'redis',
    ...(redis === undefined ? {} : { REDIS_URL: redis.url, REDIS_TYPE: redis.kind }),
    ...(o.tls === undefined ? {} : { GRPC_SERVER_USE_TLS: 'true', GRPC_SERVER_TLS_CERT: o.tls.cert, GRPC_SERVER_TLS_KEY: o.tls.key }),
    ...o.env,
  };
  const [cmd, ...args] = meshlimitCommand(o.mode, o.buildDir);
  const [c, a] = pinned(o.cpus, cmd as string, args);
  const child: Child = spawnChild(o.name, c, a, env);
  const base = `http://127.0.0.1:${httpPort}`;
  const deadline = Date.now() + (o.startTimeoutMs ?? 30_000);
  let dead = false;
  void child.exited.then(() => (dead = true));
  for (;;) {
    if (dead) throw new StartupError(`${o.name}: meshlimit exited during start-up:\n${child.output().trim().slice(-1500)}`);
    if (Date.now() > deadline) {
      await child.stop();
      throw new StartupError(`${o.name}: meshlimit did not become healthy in time:\n${child.output().trim().slice(-1500)}`);
    }
    try {
      if ((await httpGet(`${base}/healthcheck`, 1000)).status === 200) break;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  return {
    name: o.name,
    kind: 'meshlimit',
    grpcPort,
    tls: o.tls !== undefined,
    httpPort,
    countsComplete: o.countsComplete ?? true,
    pid: child.pid,
    counts: async () => parseRequestCounts((await httpGet(`${base}/metrics`)).text),
    ...(redis === undefined
      ? {}
      : {
          scriptStats: () =>
            sumOverPrimaries(
              redis.primaryPorts,
              'commandstats',
              parseScriptStats,
              (x, y) => ({ calls: x.calls + y.calls, usec: x.usec + y.usec }),
              {
                calls: 0,
                usec: 0,
              },
            ),
          redisWaitNs: () => redis.pids.reduce((a, p) => a + runQueueWaitNs(p), 0),
          redisMemoryMiB: async () =>
            Math.round(
              (await sumOverPrimaries(
                redis.primaryPorts,
                'memory',
                (t) => Number(parseInfo(t).get('used_memory')),
                (x, y) => x + y,
                0,
              )) / 1048576,
            ),
        }),
    cpuMs: () => cpuTimeMs(child.pid),
    waitNs: () => runQueueWaitNs(child.pid),
    rssMiB: () => rssMiB(child.pid),
    stop: () => child.stop(),
  };
}

/** The bare grpc-js baseline (benchmarks/echo-server.ts); over TLS with `tls`. */
export async function startEcho(cpus: string | undefined, tls?: TlsFiles, name = 'echo'): Promise<Target> {
  const [c, a] = pinned(cpus, 'node', ['--import', 'tsx', path.join(ROOT, 'benchmarks/echo-server.ts')]);
  const tlsEnv = tls === undefined ? {} : { ECHO_TLS_CERT: tls.cert, ECHO_TLS_KEY: tls.key };
  const child = spawnChild(name, c, a, { ...process.env, GRPC_PORT: '0', STATS_PORT: '0', ...tlsEnv });
  const deadline = Date.now() + 20_000;
  let ports: [number, number] | undefined;
  while (ports === undefined) {
    const m = /READY (\d+) (\d+)/.exec(child.output());
    if (m) ports = [Number(m[1]), Number(m[2])];
    else if (child.child.exitCode !== null || Date.now() > deadline) throw new Error(`echo server did not start:\n${child.output()}`);
    else await sleep(50);
  }
  const [grpcPort, statsPort] = ports;
  return {
    name,
    kind: 'echo',
    grpcPort,
    tls: tls !== undefined,
    countsComplete: true,
    pid: child.pid,
    counts: async () => {
      const { calls } = JSON.parse((await httpGet(`http://127.0.0.1:${statsPort}/count`)).text) as { calls: number };
      return { ok: calls, overLimit: 0, errors: 0, errorsByCode: {} };
    },
    cpuMs: () => cpuTimeMs(child.pid),
    waitNs: () => runQueueWaitNs(child.pid),
    rssMiB: () => rssMiB(child.pid),
    stop: () => child.stop(),
  };
}
