/**
 * Test harness: a real Redis Cluster built from `redis-server` processes on free loopback ports.
 *
 * The processes are run by the shared process layer (`redis-process.ts`: ports, spawn, readiness,
 * faults; `redis-cleanup.ts`: exit hooks, temp dirs, orphans). This file creates the cluster and
 * answers questions about it; `redis-cluster-nodes.ts` parses what nodes report and probes health,
 * `redis-cluster-migrate.ts` moves slots.
 *
 * Timing trade-offs: `cluster-node-timeout` defaults to 1000 ms so a failover completes in about
 * 2-4 s; `cluster-replica-validity-factor 0` lets any replica take over however stale;
 * `repl-diskless-sync-delay 0` removes the default 5 s wait before a replica's first sync.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { Cluster, type ClusterOptions } from 'ioredis';
import { HOST, RedisHarnessError, errorMessage, redisCommand, sleep, tlsOption, waitUntil } from './redis-admin.js';
import { makeTempRoot, reapOrphans, removeTempRoot } from './redis-cleanup.js';
import { migrateSlot, type MigrateSlotOptions } from './redis-cluster-migrate.js';
import { clusterHealth, flaggedFailing, viewFrom, type ClusterNodeInfo, type NodesLine } from './redis-cluster-nodes.js';
import {
  NO_PERSISTENCE,
  RedisProcess,
  assertBinary,
  harnessClientTls,
  startOnFreePort,
  type RedisBinaries,
  type RedisServerTls,
} from './redis-process.js';

export type { ClusterNodeInfo } from './redis-cluster-nodes.js';
export type { MigrateSlotOptions } from './redis-cluster-migrate.js';

export interface StartRedisClusterOptions {
  /** Primaries; redis-cli needs at least 3. Default 3. */
  readonly primaries?: number;
  /** Replicas per primary. Default 1. */
  readonly replicasPerPrimary?: number;
  /** Extra `redis-server` arguments for every node, e.g. `['--maxmemory', '64mb']`; they come last, so they override the harness defaults. */
  readonly args?: readonly string[];
  /** `cluster-node-timeout` in ms. Default 1000: failover in a few seconds. */
  readonly nodeTimeoutMs?: number;
  /** Bound on the whole start-up (spawn, create, converge). Default 30 000 ms. */
  readonly startTimeoutMs?: number;
  readonly binaries?: RedisBinaries;
  /**
   * Every node serves TLS only, with these files (`--port 0 --tls-port`), and the cluster bus and
   * replication links use TLS too (`--tls-cluster yes --tls-replication yes`); `redis-cli
   * --cluster create`, the harness's commands and `client()` connect with `tls.clientCert` and `tls.clientKey`.
   */
  readonly tls?: RedisServerTls;
}

/**
 * A running cluster. `nodes` is a snapshot refreshed by `refresh()` and by every method that
 * changes the topology (start, restartNode, waitForHealthy, waitForFailover, migrateSlot).
 */
export class RedisCluster {
  private snapshot: ClusterNodeInfo[] = [];
  private readonly clients = new Set<Cluster>();
  private stopping: Promise<void> | undefined;

  /** @internal use {@link startRedisCluster} */
  constructor(
    /** Temp root; each node has `node-<port>/` below it. */
    readonly dir: string,
    private readonly procs: Map<number, RedisProcess>,
    private readonly nodeTimeoutMs: number,
    /** The TLS options of every node, when the cluster serves TLS only. */
    readonly tls?: RedisServerTls,
  ) {}

  /** Latest snapshot of every node (primaries first, then by port). */
  get nodes(): readonly ClusterNodeInfo[] {
    return this.snapshot;
  }

  /** `127.0.0.1:p1,127.0.0.1:p2,...` over all nodes (the form of ratelimit's cluster REDIS_URL; add REDIS_TLS=true for a TLS cluster). */
  get seeds(): string {
    return [...this.procs.keys()].map((p) => `${HOST}:${p}`).join(',');
  }

  /** Ports of all nodes, including killed ones. */
  get ports(): number[] {
    return [...this.procs.keys()];
  }

  /** Ports of the nodes whose process runs (not killed, not frozen). */
  runningPorts(): number[] {
    return [...this.procs.values()].filter((p) => p.state === 'running').map((p) => p.port);
  }

  /** Every pid this harness ever spawned (restarts included). */
  pids(): number[] {
    return [...this.procs.values()].flatMap((p) => p.pids);
  }

  node(port: number): ClusterNodeInfo {
    const n = this.snapshot.find((x) => x.port === port);
    if (n === undefined) throw new RedisHarnessError(`no cluster node on port ${port}`);
    return n;
  }

  /** Primaries in the snapshot that no node flags as failing (`fail` or `fail?`). */
  primaries(): ClusterNodeInfo[] {
    return this.snapshot.filter((n) => n.role === 'primary' && !flaggedFailing(n));
  }

  replicasOf(primaryPort: number): ClusterNodeInfo[] {
    const id = this.node(primaryPort).id;
    return this.snapshot.filter((n) => n.role === 'replica' && n.primaryId === id);
  }

  /** One command on one node (fresh connection, 2 s timeout unless given). */
  command(port: number, ...args: (string | number)[]): Promise<unknown> {
    return redisCommand(port, args);
  }

  /**
   * An ioredis Cluster client seeded with every node; disconnected by `stop()`.
   * `options` are passed through (merged over ioredis defaults). A no-op 'error' listener is
   * attached so expected connection errors during faults do not flood the output; failed
   * commands still reject.
   */
  client(options: ClusterOptions = {}): Cluster {
    const tls = tlsOption(this.tls === undefined ? undefined : harnessClientTls(this.tls));
    const c = new Cluster(
      [...this.procs.keys()].map((port) => ({ host: HOST, port })),
      this.tls === undefined ? options : { ...options, redisOptions: { ...tls, ...options.redisOptions } },
    );
    c.on('error', () => {});
    this.clients.add(c);
    c.once('end', () => this.clients.delete(c));
    return c;
  }

  private proc(port: number): RedisProcess {
    const p = this.procs.get(port);
    if (p === undefined) throw new RedisHarnessError(`no cluster node on port ${port}`);
    return p;
  }

  /** Re-reads `CLUSTER NODES` from the first running node that answers. */
  async refresh(): Promise<readonly ClusterNodeInfo[]> {
    let lastError: unknown = new RedisHarnessError('no running node');
    for (const port of this.runningPorts()) {
      try {
        this.snapshot = (await viewFrom(port))
          .filter((l) => this.procs.has(l.port))
          .map((l) => this.nodeInfo(l))
          .sort((a, b) => (a.role === b.role ? a.port - b.port : a.role === 'primary' ? -1 : 1));
        return this.snapshot;
      } catch (e) {
        lastError = e;
      }
    }
    throw new RedisHarnessError(`cannot refresh cluster nodes: ${errorMessage(lastError)}`);
  }

  private nodeInfo(l: NodesLine): ClusterNodeInfo {
    const p = this.proc(l.port);
    return {
      host: HOST,
      port: l.port,
      id: l.id,
      role: l.flags.includes('master') ? 'primary' : 'replica',
      primaryId: l.primaryId,
      slots: l.slots,
      flags: l.flags.filter((f) => f !== 'myself'),
      process: p.state,
      pid: p.pid,
    };
  }

  /**
   * Waits until {@link clusterHealth} passes on every running node, then until the refreshed view
   * shows every running primary owning slots. Roles spread after the slot map: right after
   * start-up (or a failover) a node can still list a replica as a slot-less master, which would
   * make `primaries()` and `migrateSlot` pick it.
   */
  async waitForHealthy(timeoutMs = 15_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    await waitUntil('a healthy cluster', timeoutMs, () => clusterHealth(this.runningPorts(), this.procs.size));
    await waitUntil('every node seen in its final role', Math.max(1_000, end - Date.now()), async () => {
      const running = this.runningPorts();
      const slotless = (await this.refresh()).filter((n) => n.role === 'primary' && n.slots.length === 0 && running.includes(n.port));
      return slotless.length === 0 ? true : `slot-less primaries in the view: ${slotless.map((n) => n.port).join(',')}`;
    });
  }

  /** The hash slot of `key` (asked of a running node: CLUSTER KEYSLOT). */
  async keySlot(key: string): Promise<number> {
    const port = this.runningPorts()[0];
    if (port === undefined) throw new RedisHarnessError('no running node');
    return Number(await redisCommand(port, ['CLUSTER', 'KEYSLOT', key]));
  }

  /** The primary serving `slot`, per CLUSTER SLOTS on a running node. */
  async primaryForSlot(slot: number): Promise<ClusterNodeInfo> {
    const port = this.runningPorts()[0];
    if (port === undefined) throw new RedisHarnessError('no running node');
    const ranges = (await redisCommand(port, ['CLUSTER', 'SLOTS'])) as [number, number, [string, number, string]][];
    const range = ranges.find(([a, b]) => slot >= a && slot <= b);
    if (range === undefined) throw new RedisHarnessError(`slot ${slot} is not served by any primary`);
    const ownerPort = Number(range[2][1]);
    if (!this.snapshot.some((n) => n.port === ownerPort && n.role === 'primary')) await this.refresh();
    return this.node(ownerPort);
  }

  /** The primary serving `key` (CLUSTER KEYSLOT, then CLUSTER SLOTS). */
  async primaryForKey(key: string): Promise<ClusterNodeInfo> {
    return this.primaryForSlot(await this.keySlot(key));
  }

  /** SIGKILL one node; resolves once the process is gone. `nodes` is not refreshed. */
  async killNode(port: number): Promise<void> {
    await this.proc(port).kill();
  }

  /**
   * Starts a killed node again on the same port with the same `nodes-<port>.conf`, so it rejoins
   * with its old identity (a failed-over primary comes back as a replica). By default waits for
   * the whole cluster to be healthy again.
   */
  async restartNode(port: number, opts: { waitHealthy?: boolean; timeoutMs?: number } = {}): Promise<void> {
    await this.proc(port).restart(opts.timeoutMs ?? 10_000, `node ${port}`);
    if (opts.waitHealthy !== false) await this.waitForHealthy(opts.timeoutMs ?? 15_000);
  }

  /** SIGSTOP a node until {@link resumeNode}: it holds its sockets but answers nothing. */
  stopNode(port: number): void {
    this.proc(port).freeze();
  }

  /** SIGCONT a node stopped by {@link stopNode}. */
  resumeNode(port: number): void {
    this.proc(port).thaw();
  }

  /**
   * SIGSTOP now, SIGCONT after `ms`; the promise resolves once resumed. With `ms` above the node
   * timeout, the cluster fails the node over. (For a pause that keeps the cluster bus alive, use
   * `command(port, 'CLIENT', 'PAUSE', ms, 'ALL')`.)
   */
  async pauseNode(port: number, ms: number): Promise<void> {
    this.stopNode(port);
    try {
      await sleep(ms);
    } finally {
      if (this.proc(port).state === 'frozen') this.resumeNode(port);
    }
  }

  /**
   * Waits until a replica of the (killed or stopped) primary on `oldPrimaryPort` has been promoted
   * and the cluster is healthy over running nodes. Returns the new primary. Uses the `nodes`
   * snapshot taken before the fault to know the old primary's replicas.
   */
  async waitForFailover(oldPrimaryPort: number, timeoutMs = 15_000): Promise<ClusterNodeInfo> {
    const old = this.node(oldPrimaryPort);
    if (old.role !== 'primary') throw new RedisHarnessError(`node ${oldPrimaryPort} was not a primary in the last snapshot`);
    const candidates = this.snapshot.filter((n) => n.role === 'replica' && n.primaryId === old.id).map((n) => n.port);
    if (candidates.length === 0) throw new RedisHarnessError(`primary ${oldPrimaryPort} had no replica to promote`);
    let promoted: number | undefined;
    await waitUntil(`failover of primary ${oldPrimaryPort}`, timeoutMs, async () => {
      promoted = undefined;
      for (const port of candidates) {
        if (this.proc(port).state !== 'running') continue;
        const me = (await viewFrom(port)).find((l) => l.flags.includes('myself'));
        if (me?.flags.includes('master') === true && me.slots.length > 0) promoted = port;
      }
      if (promoted === undefined) return `no replica of ${oldPrimaryPort} (${candidates.join(',')}) promoted yet`;
      return clusterHealth(this.runningPorts(), this.procs.size);
    });
    await this.refresh();
    return this.node(promoted as number);
  }

  /** Moves one slot with its keys between primaries: see {@link migrateSlot} in redis-cluster-migrate.ts. */
  migrateSlot(slot: number, fromPort: number, toPort: number, opts: MigrateSlotOptions = {}): Promise<number> {
    return migrateSlot(this, slot, fromPort, toPort, opts);
  }

  /** SCRIPT FLUSH on every running node, replicas included (each keeps its own script cache). */
  async flushScriptsEverywhere(): Promise<void> {
    await Promise.all(this.runningPorts().map((p) => redisCommand(p, ['SCRIPT', 'FLUSH', 'SYNC'])));
  }

  /** FLUSHALL on every running primary (replicas follow). */
  async flushAll(): Promise<void> {
    const ports = this.primaries()
      .map((n) => n.port)
      .filter((p) => this.proc(p).state === 'running');
    await Promise.all(ports.map((p) => redisCommand(p, ['FLUSHALL', 'SYNC'])));
  }

  /**
   * Disconnects the clients made by {@link client}, SIGKILLs every node (frozen ones too) and
   * removes the temp dir. Idempotent; resolves once every process has been reaped.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      for (const c of this.clients) c.disconnect();
      this.clients.clear();
      await Promise.all([...this.procs.values()].map((p) => p.kill()));
      removeTempRoot(this.dir);
    })();
    return this.stopping;
  }

  /** The configured `cluster-node-timeout`, for callers sizing their own waits. */
  get clusterNodeTimeoutMs(): number {
    return this.nodeTimeoutMs;
  }
}

function runCli(bin: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(bin, args, { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err !== null) {
        reject(new RedisHarnessError(`${bin} ${args.join(' ')} failed: ${err.message}\n${stdout}\n${stderr}`));
      } else {
        resolve(stdout);
      }
    });
  });
}

/** redis-cli's TLS arguments for a TLS cluster: the CA, and the client certificate the nodes require. */
function cliTlsArgs(tls: RedisServerTls | undefined): string[] {
  if (tls === undefined) return [];
  return ['--tls', '--cacert', tls.ca, '--cert', tls.clientCert, '--key', tls.clientKey];
}

/** The arguments of one cluster node: its own nodes file, the harness's timings, then `extra`. */
function nodeArgs(dir: string, port: number, nodeTimeoutMs: number, extra: readonly string[]): string[] {
  return [
    '--cluster-enabled',
    'yes',
    '--cluster-config-file',
    join(dir, `nodes-${port}.conf`),
    '--cluster-node-timeout',
    String(nodeTimeoutMs),
    '--cluster-announce-ip',
    HOST,
    '--cluster-replica-validity-factor',
    '0',
    ...NO_PERSISTENCE,
    '--repl-diskless-sync-delay',
    '0',
    ...extra,
  ];
}

/**
 * Starts `primaries * (1 + replicasPerPrimary)` nodes, creates the cluster with
 * `redis-cli --cluster create` and waits until it is healthy (see {@link RedisCluster.waitForHealthy}).
 * On any failure, everything started so far is torn down before the error propagates.
 */
export async function startRedisCluster(opts: StartRedisClusterOptions = {}): Promise<RedisCluster> {
  const primaries = opts.primaries ?? 3;
  const replicas = opts.replicasPerPrimary ?? 1;
  if (!Number.isInteger(primaries) || primaries < 3) {
    throw new RedisHarnessError(
      `startRedisCluster: primaries must be an integer >= 3 (redis-cli --cluster create needs 3), got ${primaries}`,
    );
  }
  if (!Number.isInteger(replicas) || replicas < 0) {
    throw new RedisHarnessError(`startRedisCluster: replicasPerPrimary must be an integer >= 0, got ${replicas}`);
  }
  const serverBin = opts.binaries?.server ?? 'redis-server';
  const cliBin = opts.binaries?.cli ?? 'redis-cli';
  assertBinary(serverBin, 'redis-server');
  assertBinary(cliBin, 'redis-cli');
  reapOrphans();

  const deadline = Date.now() + (opts.startTimeoutMs ?? 30_000);
  const remaining = (): number => Math.max(1_000, deadline - Date.now());
  const nodeTimeout = opts.nodeTimeoutMs ?? 1_000;
  const root = makeTempRoot();
  const procs = new Map<number, RedisProcess>();
  const cluster = new RedisCluster(root, procs, nodeTimeout, opts.tls);
  const tlsArgs = opts.tls === undefined ? [] : ['--tls-cluster', 'yes', '--tls-replication', 'yes'];
  const make = (port: number): RedisProcess => {
    const dir = join(root, `node-${port}`);
    return new RedisProcess({
      bin: serverBin,
      port,
      dir,
      args: nodeArgs(dir, port, nodeTimeout, [...tlsArgs, ...(opts.args ?? [])]),
      tls: opts.tls,
    });
  };

  try {
    const used = new Set<number>();
    const total = primaries * (1 + replicas);
    // Ports are picked one after another (so they differ), servers start in parallel.
    const spawned = await Promise.allSettled(
      Array.from({ length: total }, () => startOnFreePort(make, used, { withClusterBus: true, timeoutMs: remaining() })),
    );
    for (const r of spawned) if (r.status === 'fulfilled') procs.set(r.value.port, r.value);
    const failed = spawned.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;

    await runCli(
      cliBin,
      [
        ...cliTlsArgs(opts.tls),
        '--cluster',
        'create',
        ...[...procs.keys()].map((p) => `${HOST}:${p}`),
        '--cluster-replicas',
        String(replicas),
        '--cluster-yes',
      ],
      remaining(),
    );
    await cluster.waitForHealthy(remaining());
    return cluster;
  } catch (e) {
    await cluster.stop();
    throw e;
  }
}
