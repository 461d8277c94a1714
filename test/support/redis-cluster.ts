/**
 * Test harness: a real Redis Cluster built from `redis-server` processes on free loopback ports.
 *
 * The processes are run by the shared process layer (`redis-process.ts`: ports, spawn, readiness,
 * faults; `redis-cleanup.ts`: exit hooks, temp dirs, orphans; `redis-admin.ts`: commands, waits).
 *
 * Timing trade-offs: `cluster-node-timeout` defaults to 1000 ms so a failover completes in about
 * 2-4 s; `cluster-replica-validity-factor 0` lets any replica take over however stale;
 * `repl-diskless-sync-delay 0` removes the default 5 s wait before a replica's first sync.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { Cluster, type ClusterOptions } from 'ioredis';
import { HOST, RedisHarnessError, errorMessage, parseInfo, redisCommand, sleep, waitUntil } from './redis-admin.js';
import { makeTempRoot, reapOrphans, removeTempRoot } from './redis-cleanup.js';
import { NO_PERSISTENCE, RedisProcess, assertBinary, startOnFreePort, type ProcessState, type RedisBinaries } from './redis-process.js';

const CLUSTER_SLOTS = 16_384;

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
}

/** One node as the cluster sees it, plus our process state. */
export interface ClusterNodeInfo {
  readonly host: string;
  readonly port: number;
  readonly id: string;
  readonly role: 'primary' | 'replica';
  /** For a replica, the id of the primary it follows; else null. */
  readonly primaryId: string | null;
  /** For a primary, the slot ranges it serves (inclusive); empty for replicas. */
  readonly slots: readonly (readonly [number, number])[];
  /** Cluster flags as reported (`master`, `slave`, `fail`, `fail?`, ...), without `myself`. */
  readonly flags: readonly string[];
  /** Our view of the process: running, frozen (SIGSTOP) or dead (killed). */
  readonly process: ProcessState;
  readonly pid: number | undefined;
}

interface NodesLine {
  readonly id: string;
  readonly port: number;
  readonly flags: readonly string[];
  readonly primaryId: string | null;
  readonly slots: readonly (readonly [number, number])[];
}

/** Parses `CLUSTER NODES` output (importing/migrating markers `[slot->-id]` are skipped). */
export function parseClusterNodes(text: string): NodesLine[] {
  const out: NodesLine[] = [];
  for (const line of text.split('\n')) {
    const parts = line.trim().split(' ');
    const [id, addr, flags, master] = parts;
    if (id === undefined || addr === undefined || flags === undefined || master === undefined) continue;
    const port = Number(/:(\d+)@/.exec(addr)?.[1]);
    const slots: [number, number][] = [];
    for (const s of parts.slice(8)) {
      if (s.startsWith('[')) continue;
      const [a, b] = s.split('-');
      slots.push([Number(a), Number(b ?? a)]);
    }
    out.push({ id, port, flags: flags.split(','), primaryId: master === '-' ? null : master, slots });
  }
  return out;
}

/** Options for {@link RedisCluster.migrateSlot}. */
export interface MigrateSlotOptions {
  /** Keys per MIGRATE. Default 100. */
  readonly batchSize?: number;
  /** MIGRATE timeout in ms. Default 5000. */
  readonly migrateTimeoutMs?: number;
  /** Pass REPLACE to MIGRATE (overwrite keys already on the target). Default false. */
  readonly replace?: boolean;
  /**
   * Called after each batch with the running total of moved keys, while the slot is
   * MIGRATING/IMPORTING (clients get ASK redirects): the hook for load-during-resharding tests.
   */
  readonly onBatch?: (movedSoFar: number) => void | Promise<void>;
  /** Bound on every node agreeing on the new owner. Default 10 000 ms. */
  readonly timeoutMs?: number;
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
  ) {}

  /** Latest snapshot of every node (primaries first, then by port). */
  get nodes(): readonly ClusterNodeInfo[] {
    return this.snapshot;
  }

  /** `127.0.0.1:p1,127.0.0.1:p2,...` over all nodes (the form of ratelimit's cluster REDIS_URL). */
  get seeds(): string {
    return [...this.procs.keys()].map((p) => `${HOST}:${p}`).join(',');
  }

  /** Ports of all nodes, including killed ones. */
  get ports(): number[] {
    return [...this.procs.keys()];
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
    return this.snapshot.filter((n) => n.role === 'primary' && !n.flags.some((f) => f === 'fail' || f === 'fail?'));
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
    const c = new Cluster(
      [...this.procs.keys()].map((port) => ({ host: HOST, port })),
      options,
    );
    c.on('error', () => {});
    this.clients.add(c);
    c.once('end', () => this.clients.delete(c));
    return c;
  }

  private runningPorts(): number[] {
    return [...this.procs.values()].filter((p) => p.state === 'running').map((p) => p.port);
  }

  private proc(port: number): RedisProcess {
    const p = this.procs.get(port);
    if (p === undefined) throw new RedisHarnessError(`no cluster node on port ${port}`);
    return p;
  }

  private async viewFrom(port: number): Promise<NodesLine[]> {
    return parseClusterNodes(String(await redisCommand(port, ['CLUSTER', 'NODES'])));
  }

  /** Re-reads `CLUSTER NODES` from the first running node that answers. */
  async refresh(): Promise<readonly ClusterNodeInfo[]> {
    let lastError: unknown = new RedisHarnessError('no running node');
    for (const port of this.runningPorts()) {
      try {
        const view = await this.viewFrom(port);
        this.snapshot = view
          .filter((l) => this.procs.has(l.port))
          .map((l): ClusterNodeInfo => {
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
          })
          .sort((a, b) => (a.role === b.role ? a.port - b.port : a.role === 'primary' ? -1 : 1));
        return this.snapshot;
      } catch (e) {
        lastError = e;
      }
    }
    throw new RedisHarnessError(`cannot refresh cluster nodes: ${errorMessage(lastError)}`);
  }

  /**
   * One probe of cluster health over running nodes: every one says `cluster_state:ok`, knows every
   * node, sees all 16384 slots assigned, reports the same slot owners, flags no running node as
   * failing; every running replica has `master_link_status:up`. Returns true or what is wrong.
   */
  private async healthProbe(): Promise<true | string> {
    const running = this.runningPorts();
    let signature: string | undefined;
    for (const port of running) {
      const info = parseInfo(String(await redisCommand(port, ['CLUSTER', 'INFO'], { timeoutMs: 1_000 })));
      if (info.get('cluster_state') !== 'ok') return `${port}: cluster_state:${info.get('cluster_state')}`;
      if (info.get('cluster_slots_assigned') !== String(CLUSTER_SLOTS)) {
        return `${port}: cluster_slots_assigned:${info.get('cluster_slots_assigned')}`;
      }
      if (info.get('cluster_known_nodes') !== String(this.procs.size)) {
        return `${port}: cluster_known_nodes:${info.get('cluster_known_nodes')} of ${this.procs.size}`;
      }
      const view = await this.viewFrom(port);
      const sig = view
        .filter((l) => l.slots.length > 0)
        .map((l) => `${l.port}=${l.slots.map(([a, b]) => `${a}-${b}`).join(',')}`)
        .sort()
        .join(' ');
      if (signature !== undefined && sig !== signature) return `${port} sees slot owners [${sig}], another node [${signature}]`;
      signature = sig;
      const failing = view.filter((l) => running.includes(l.port) && l.flags.some((f) => f === 'fail' || f === 'fail?'));
      if (failing.length > 0) return `${port} flags running node(s) ${failing.map((l) => l.port).join(',')} as failing`;
      const me = view.find((l) => l.flags.includes('myself'));
      if (me?.flags.includes('slave') === true) {
        const repl = parseInfo(String(await redisCommand(port, ['INFO', 'replication'], { timeoutMs: 1_000 })));
        if (repl.get('master_link_status') !== 'up') return `replica ${port}: master_link_status:${repl.get('master_link_status')}`;
      }
    }
    return true;
  }

  /**
   * Waits until {@link healthProbe} passes on every running node, then until the refreshed view
   * shows every running primary owning slots. Roles spread after the slot map: right after
   * start-up (or a failover) a node can still list a replica as a slot-less master, which would
   * make `primaries()` and `migrateSlot` pick it.
   */
  async waitForHealthy(timeoutMs = 15_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    await waitUntil('a healthy cluster', timeoutMs, () => this.healthProbe());
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
        const me = (await this.viewFrom(port)).find((l) => l.flags.includes('myself'));
        if (me?.flags.includes('master') === true && me.slots.length > 0) promoted = port;
      }
      if (promoted === undefined) return `no replica of ${oldPrimaryPort} (${candidates.join(',')}) promoted yet`;
      return this.healthProbe();
    });
    await this.refresh();
    return this.node(promoted as number);
  }

  /**
   * Moves one slot with its keys from one primary to another, the way `redis-cli --cluster
   * reshard` does: SETSLOT IMPORTING on the target, MIGRATING on the source, MIGRATE keys in
   * batches, then SETSLOT NODE on target, source and every other primary; waits until every
   * running node maps the slot to the target. Returns the number of keys moved.
   * If a step (or `onBatch`) throws, the slot stays MIGRATING/IMPORTING, as with redis-cli.
   */
  async migrateSlot(slot: number, fromPort: number, toPort: number, opts: MigrateSlotOptions = {}): Promise<number> {
    if (!Number.isInteger(slot) || slot < 0 || slot >= CLUSTER_SLOTS) throw new RedisHarnessError(`migrateSlot: bad slot ${slot}`);
    await this.refresh();
    const from = this.node(fromPort);
    const to = this.node(toPort);
    if (from.role !== 'primary' || to.role !== 'primary') {
      throw new RedisHarnessError(`migrateSlot: ${fromPort} and ${toPort} must both be primaries`);
    }
    if (!from.slots.some(([a, b]) => slot >= a && slot <= b)) {
      throw new RedisHarnessError(`migrateSlot: slot ${slot} is not served by ${fromPort}`);
    }
    const batch = opts.batchSize ?? 100;
    const migrateTimeout = opts.migrateTimeoutMs ?? 5_000;
    const cmdTimeout = { timeoutMs: migrateTimeout + 2_000 };
    await redisCommand(toPort, ['CLUSTER', 'SETSLOT', slot, 'IMPORTING', from.id]);
    await redisCommand(fromPort, ['CLUSTER', 'SETSLOT', slot, 'MIGRATING', to.id]);
    let moved = 0;
    for (;;) {
      const keys = (await redisCommand(fromPort, ['CLUSTER', 'GETKEYSINSLOT', slot, batch])) as string[];
      if (keys.length === 0) break;
      const replace = opts.replace === true ? ['REPLACE'] : [];
      await redisCommand(fromPort, ['MIGRATE', HOST, toPort, '', 0, migrateTimeout, ...replace, 'KEYS', ...keys], cmdTimeout);
      moved += keys.length;
      await opts.onBatch?.(moved);
    }
    // Target first, so it owns the slot before the source starts redirecting with MOVED.
    await redisCommand(toPort, ['CLUSTER', 'SETSLOT', slot, 'NODE', to.id]);
    await redisCommand(fromPort, ['CLUSTER', 'SETSLOT', slot, 'NODE', to.id]);
    for (const p of this.primaries()) {
      if (p.port !== fromPort && p.port !== toPort && this.proc(p.port).state === 'running') {
        await redisCommand(p.port, ['CLUSTER', 'SETSLOT', slot, 'NODE', to.id]);
      }
    }
    await waitUntil(`every node to map slot ${slot} to ${toPort}`, opts.timeoutMs ?? 10_000, async () => {
      for (const port of this.runningPorts()) {
        const owner = (await this.viewFrom(port)).find((l) => l.slots.some(([a, b]) => slot >= a && slot <= b));
        if (owner?.port !== toPort) return `${port} maps slot ${slot} to ${owner?.port ?? 'nobody'}`;
      }
      return true;
    });
    await this.refresh();
    return moved;
  }

  /** SCRIPT FLUSH on every running node, replicas included (each keeps its own script cache). */
  async flushScriptsEverywhere(): Promise<void> {
    await Promise.all(this.runningPorts().map((p) => redisCommand(p, ['SCRIPT', 'FLUSH', 'SYNC'])));
  }

  /** FLUSHALL on every running primary (replicas follow). */
  async flushAll(): Promise<void> {
    const ports = this.primaries().map((n) => n.port).filter((p) => this.proc(p).state === 'running');
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

/**
 * Starts `primaries * (1 + replicasPerPrimary)` nodes, creates the cluster with
 * `redis-cli --cluster create` and waits until it is healthy (see {@link RedisCluster.waitForHealthy}).
 * On any failure, everything started so far is torn down before the error propagates.
 */
export async function startRedisCluster(opts: StartRedisClusterOptions = {}): Promise<RedisCluster> {
  const primaries = opts.primaries ?? 3;
  const replicas = opts.replicasPerPrimary ?? 1;
  if (!Number.isInteger(primaries) || primaries < 3) {
    throw new RedisHarnessError(`startRedisCluster: primaries must be an integer >= 3 (redis-cli --cluster create needs 3), got ${primaries}`);
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
  const cluster = new RedisCluster(root, procs, nodeTimeout);
  const make = (port: number): RedisProcess => {
    const dir = join(root, `node-${port}`);
    return new RedisProcess({
      bin: serverBin,
      port,
      dir,
      args: [
        '--cluster-enabled', 'yes',
        '--cluster-config-file', join(dir, `nodes-${port}.conf`),
        '--cluster-node-timeout', String(nodeTimeout),
        '--cluster-announce-ip', HOST,
        '--cluster-replica-validity-factor', '0',
        ...NO_PERSISTENCE,
        '--repl-diskless-sync-delay', '0',
        ...(opts.args ?? []),
      ],
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
      ['--cluster', 'create', ...[...procs.keys()].map((p) => `${HOST}:${p}`), '--cluster-replicas', String(replicas), '--cluster-yes'],
      remaining(),
    );
    await cluster.waitForHealthy(remaining());
    return cluster;
  } catch (e) {
    await cluster.stop();
    throw e;
  }
}
