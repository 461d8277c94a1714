/**
 * Test harness: one primary, one replica and N sentinels (default 3, quorum 2), all
 * `redis-server` processes on free loopback ports, every address announced as 127.0.0.1.
 *
 * Timing trade-offs: `down-after-milliseconds` 1000 and `failover-timeout` 3000 make a failover
 * finish in a few seconds. A failover-timeout that short also means a failed election is retried
 * after 6 s (2x the timeout) instead of 6 minutes, which is what a test wants.
 *
 * The processes are run by the shared process layer (`redis-process.ts`), with its cleanup
 * (`redis-cleanup.ts`): tracked children, exit/signal hooks, orphan reaping, temp dir removal.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis, type RedisOptions } from 'ioredis';
import { HOST, RedisHarnessError, parseInfo, redisCommand, waitUntil, type RedisAuth } from './redis-admin.js';
import { makeTempRoot, reapOrphans, removeTempRoot } from './redis-cleanup.js';
import { NO_PERSISTENCE, RedisProcess, assertBinary, startOnFreePort, type RedisBinaries, type RedisServerTls } from './redis-process.js';

export interface StartRedisSentinelOptions {
  /** Default `mymaster`. */
  readonly masterName?: string;
  /** Sentinels to run. Default 3. */
  readonly sentinels?: number;
  /** Sentinels that must agree the primary is down. Default 2. */
  readonly quorum?: number;
  /** `sentinel down-after-milliseconds`. Default 1000. */
  readonly downAfterMs?: number;
  /** `sentinel failover-timeout`. Default 3000. */
  readonly failoverTimeoutMs?: number;
  /** Extra `redis-server` arguments for the primary and the replica (last, so they override defaults). */
  readonly args?: readonly string[];
  /** Bound on the whole start-up. Default 30 000 ms. */
  readonly startTimeoutMs?: number;
  readonly binaries?: RedisBinaries;
  /**
   * The data nodes' password (`requirepass`, and `masterauth` for the replica); the sentinels
   * are told it (`sentinel auth-pass`). The harness authenticates with it.
   */
  readonly password?: string;
  /** The sentinels' own password (`requirepass` in their config), separate from the data nodes'. */
  readonly sentinelPassword?: string;
  /**
   * Every process serves TLS only, with these files: the data nodes (replication over TLS too)
   * and the sentinels (which reach the data nodes and each other over TLS, `tls-replication
   * yes`). The harness's commands connect with `tls.clientCert` and `tls.clientKey`; `client()`
   * is plain TCP and does not apply.
   */
  readonly tls?: RedisServerTls;
}

type SentinelMasterReply = (string | number)[];

function fieldsOf(reply: SentinelMasterReply): Map<string, string> {
  const m = new Map<string, string>();
  for (let i = 0; i + 1 < reply.length; i += 2) m.set(String(reply[i]), String(reply[i + 1]));
  return m;
}

/** A running primary/replica/sentinels set-up. */
export class RedisSentinelSetup {
  private readonly clients = new Set<Redis>();
  private stopping: Promise<void> | undefined;
  private lastKilledPrimary: number | undefined;

  /** @internal use {@link startRedisSentinel} */
  constructor(
    /** Temp root; one sub-directory per process. */
    readonly dir: string,
    /** The name sentinels monitor. */
    readonly masterName: string,
    private readonly data: Map<number, RedisProcess>,
    private readonly sentinelProcs: Map<number, RedisProcess>,
    /** AUTH for the data nodes and for the sentinels, when they require one. */
    private readonly auth: { readonly data?: RedisAuth | undefined; readonly sentinel?: RedisAuth | undefined } = {},
  ) {}

  /** The AUTH a command to `port` needs. */
  private authOf(port: number): RedisAuth | undefined {
    return this.sentinelProcs.has(port) ? this.auth.sentinel : this.auth.data;
  }

  /** `127.0.0.1:s1,127.0.0.1:s2,...` */
  get sentinels(): string {
    return this.sentinelPorts.map((p) => `${HOST}:${p}`).join(',');
  }

  /** `<masterName>,127.0.0.1:s1,...`: envoyproxy/ratelimit's REDIS_URL for `REDIS_TYPE=sentinel`. */
  get redisUrl(): string {
    return `${this.masterName},${this.sentinels}`;
  }

  /** Sentinel addresses in ioredis form. */
  get sentinelAddresses(): { host: string; port: number }[] {
    return this.sentinelPorts.map((port) => ({ host: HOST, port }));
  }

  get sentinelPorts(): number[] {
    return [...this.sentinelProcs.keys()];
  }

  /** Ports of the data nodes (primary and replica), whatever their current role. */
  get dataPorts(): number[] {
    return [...this.data.keys()];
  }

  /** Every pid this harness ever spawned. */
  pids(): number[] {
    return [...this.data.values(), ...this.sentinelProcs.values()].flatMap((p) => p.pids);
  }

  /** One command on one process (fresh connection, 2 s timeout). */
  command(port: number, ...args: (string | number)[]): Promise<unknown> {
    return redisCommand(port, args, { auth: this.authOf(port) });
  }

  /** The primary's port according to the first running sentinel that answers. */
  async primaryPort(): Promise<number> {
    let lastError: unknown = new RedisHarnessError('no running sentinel');
    for (const [port, p] of this.sentinelProcs) {
      if (p.state !== 'running') continue;
      try {
        const reply = (await redisCommand(port, ['SENTINEL', 'GET-MASTER-ADDR-BY-NAME', this.masterName], { auth: this.auth.sentinel })) as
          [string, string] | null;
        if (reply === null) throw new RedisHarnessError(`sentinel ${port} does not know ${this.masterName}`);
        return Number(reply[1]);
      } catch (e) {
        lastError = e;
      }
    }
    throw lastError;
  }

  /**
   * An ioredis client that finds the primary through the sentinels; disconnected by `stop()`.
   * A no-op 'error' listener keeps expected reconnect errors out of the output; failed commands
   * still reject.
   */
  client(options: Omit<RedisOptions, 'sentinels' | 'name'> = {}): Redis {
    const c = new Redis({
      password: this.auth.data?.password,
      sentinelPassword: this.auth.sentinel?.password,
      ...options,
      sentinels: this.sentinelAddresses,
      name: this.masterName,
    });
    c.on('error', () => {});
    this.clients.add(c);
    c.once('end', () => this.clients.delete(c));
    return c;
  }

  private proc(port: number): RedisProcess {
    const p = this.data.get(port) ?? this.sentinelProcs.get(port);
    if (p === undefined) throw new RedisHarnessError(`no process on port ${port}`);
    return p;
  }

  /** SIGKILL the current primary (asked of a sentinel); returns its port. */
  async killPrimary(): Promise<number> {
    const port = await this.primaryPort();
    await this.proc(port).kill();
    this.lastKilledPrimary = port;
    return port;
  }

  /** SIGKILL any process of the set-up (data node or sentinel). */
  async killNode(port: number): Promise<void> {
    await this.proc(port).kill();
  }

  /**
   * Starts a killed process again with the same port and files. A restarted old primary comes
   * back as a primary until a sentinel reconfigures it as a replica, which Sentinel does only
   * after several seconds; this method does not wait for that.
   */
  async restartNode(port: number, timeoutMs = 10_000): Promise<void> {
    await this.proc(port).restart(timeoutMs, `process ${port}`);
  }

  /**
   * Waits until every running sentinel names a new primary (not `oldPrimaryPort`, by default the
   * one `killPrimary()` killed) and that node reports `role:master`. Returns its port.
   */
  async waitForFailover(oldPrimaryPort = this.lastKilledPrimary, timeoutMs = 15_000): Promise<number> {
    if (oldPrimaryPort === undefined) throw new RedisHarnessError('waitForFailover: no old primary given and none killed');
    let promoted: number | undefined;
    await waitUntil(`sentinel failover away from ${oldPrimaryPort}`, timeoutMs, async () => {
      promoted = undefined;
      for (const [port, p] of this.sentinelProcs) {
        if (p.state !== 'running') continue;
        const reply = (await redisCommand(port, ['SENTINEL', 'GET-MASTER-ADDR-BY-NAME', this.masterName], {
          timeoutMs: 1_000,
          auth: this.auth.sentinel,
        })) as [string, string] | null;
        const named = reply === null ? undefined : Number(reply[1]);
        if (named === undefined || named === oldPrimaryPort) return `sentinel ${port} still names ${String(named)}`;
        if (promoted !== undefined && named !== promoted) return `sentinels disagree: ${promoted} vs ${named}`;
        promoted = named;
      }
      if (promoted === undefined) return 'no running sentinel';
      const repl = parseInfo(String(await redisCommand(promoted, ['INFO', 'replication'], { timeoutMs: 1_000, auth: this.auth.data })));
      return repl.get('role') === 'master' ? true : `${promoted} reports role:${repl.get('role')}`;
    });
    return promoted as number;
  }

  /** Disconnects clients, SIGKILLs every process, removes the temp dir. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      for (const c of this.clients) c.disconnect();
      this.clients.clear();
      await Promise.all([...this.data.values(), ...this.sentinelProcs.values()].map((p) => p.kill()));
      removeTempRoot(this.dir);
    })();
    return this.stopping;
  }
}

/**
 * Starts the primary and replica, waits for the replication link, then starts the sentinels and
 * waits until each one sees the primary up, the replica and all other sentinels. On failure,
 * everything started so far is torn down before the error propagates.
 */
export async function startRedisSentinel(opts: StartRedisSentinelOptions = {}): Promise<RedisSentinelSetup> {
  const masterName = opts.masterName ?? 'mymaster';
  const sentinelCount = opts.sentinels ?? 3;
  const quorum = opts.quorum ?? 2;
  if (!Number.isInteger(sentinelCount) || sentinelCount < 1 || !Number.isInteger(quorum) || quorum < 1 || quorum > sentinelCount) {
    throw new RedisHarnessError(`startRedisSentinel: need 1 <= quorum (${quorum}) <= sentinels (${sentinelCount})`);
  }
  if (!/^[A-Za-z0-9._-]+$/.test(masterName)) throw new RedisHarnessError(`startRedisSentinel: bad master name "${masterName}"`);
  const serverBin = opts.binaries?.server ?? 'redis-server';
  assertBinary(serverBin, 'redis-server');
  reapOrphans();

  const deadline = Date.now() + (opts.startTimeoutMs ?? 30_000);
  const remaining = (): number => Math.max(1_000, deadline - Date.now());
  const root = makeTempRoot();
  const data = new Map<number, RedisProcess>();
  const sentinels = new Map<number, RedisProcess>();
  const dataAuth = opts.password === undefined ? undefined : { password: opts.password };
  const sentinelAuth = opts.sentinelPassword === undefined ? undefined : { password: opts.sentinelPassword };
  const setup = new RedisSentinelSetup(root, masterName, data, sentinels, { data: dataAuth, sentinel: sentinelAuth });
  const used = new Set<number>();
  const passwordArgs = dataAuth === undefined ? [] : ['--requirepass', dataAuth.password, '--masterauth', dataAuth.password];
  const dataArgs = [...NO_PERSISTENCE, '--repl-diskless-sync-delay', '0', '--replica-announce-ip', HOST, ...passwordArgs];
  const dataNode =
    (extra: string[]) =>
    (port: number): RedisProcess =>
      new RedisProcess({
        bin: serverBin,
        port,
        dir: join(root, `data-${port}`),
        args: [...dataArgs, ...(opts.tls === undefined ? [] : ['--tls-replication', 'yes']), ...extra, ...(opts.args ?? [])],
        auth: dataAuth,
        tls: opts.tls,
      });

  try {
    const primary = await startOnFreePort(dataNode([]), used, { withClusterBus: false, timeoutMs: remaining() });
    data.set(primary.port, primary);
    const replica = await startOnFreePort(dataNode(['--replicaof', HOST, String(primary.port)]), used, {
      withClusterBus: false,
      timeoutMs: remaining(),
    });
    data.set(replica.port, replica);
    await waitUntil(`replica ${replica.port} linked to ${primary.port}`, remaining(), async () => {
      const repl = parseInfo(String(await redisCommand(replica.port, ['INFO', 'replication'], { timeoutMs: 1_000, auth: dataAuth })));
      return repl.get('master_link_status') === 'up' ? true : `master_link_status:${repl.get('master_link_status')}`;
    });

    // Each sentinel gets its own config file, written before the spawn (sentinels rewrite it).
    const sentinelNode = (port: number): RedisProcess => {
      const dir = join(root, `sentinel-${port}`);
      const configFile = join(dir, 'sentinel.conf');
      mkdirSync(dir, { recursive: true });
      writeFileSync(configFile, sentinelConfig({ masterName, primaryPort: primary.port, quorum, opts }));
      return new RedisProcess({ bin: serverBin, port, dir, sentinel: true, configFile, args: [], auth: sentinelAuth, tls: opts.tls });
    };
    const spawned = await Promise.allSettled(
      Array.from({ length: sentinelCount }, () => startOnFreePort(sentinelNode, used, { withClusterBus: false, timeoutMs: remaining() })),
    );
    for (const r of spawned) if (r.status === 'fulfilled') sentinels.set(r.value.port, r.value);
    const failed = spawned.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;

    await waitUntil('sentinels to see the primary, the replica and each other', remaining(), async () => {
      for (const port of sentinels.keys()) {
        const m = fieldsOf(
          (await redisCommand(port, ['SENTINEL', 'MASTER', masterName], { timeoutMs: 1_000, auth: sentinelAuth })) as SentinelMasterReply,
        );
        if (m.get('flags') !== 'master') return `sentinel ${port}: flags ${m.get('flags')}`;
        if (m.get('num-slaves') !== '1') return `sentinel ${port}: num-slaves ${m.get('num-slaves')}`;
        if (m.get('num-other-sentinels') !== String(sentinelCount - 1)) {
          return `sentinel ${port}: num-other-sentinels ${m.get('num-other-sentinels')}`;
        }
      }
      return true;
    });
    return setup;
  } catch (e) {
    await setup.stop();
    throw e;
  }
}

function sentinelConfig(c: { masterName: string; primaryPort: number; quorum: number; opts: StartRedisSentinelOptions }): string {
  const name = c.masterName;
  return [
    `sentinel announce-ip ${HOST}`,
    'sentinel resolve-hostnames no',
    `sentinel monitor ${name} ${HOST} ${c.primaryPort} ${c.quorum}`,
    `sentinel down-after-milliseconds ${name} ${c.opts.downAfterMs ?? 1_000}`,
    `sentinel failover-timeout ${name} ${c.opts.failoverTimeoutMs ?? 3_000}`,
    `sentinel parallel-syncs ${name} 1`,
    ...(c.opts.tls === undefined ? [] : ['tls-replication yes']),
    ...(c.opts.password === undefined ? [] : [`sentinel auth-pass ${name} ${c.opts.password}`]),
    // Sentinels that require a password also need it to ask each other (sentinel-pass).
    ...(c.opts.sentinelPassword === undefined
      ? []
      : [`requirepass ${c.opts.sentinelPassword}`, `sentinel sentinel-pass ${c.opts.sentinelPassword}`]),
    '',
  ].join('\n');
}
