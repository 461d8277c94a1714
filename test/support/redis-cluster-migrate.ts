/**
 * Moving one hash slot with its keys between primaries of a test cluster, the way
 * `redis-cli --cluster reshard` does (see {@link migrateSlot}).
 */
import { HOST, RedisHarnessError, redisCommand, waitUntil } from './redis-admin.js';
import { CLUSTER_SLOTS, servesSlot, viewFrom, type ClusterNodeInfo } from './redis-cluster-nodes.js';

/** Options for {@link migrateSlot} (and `RedisCluster.migrateSlot`). */
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

/** What a migration needs of the cluster it runs on. */
export interface MigrationCluster {
  /** Re-reads the topology; `node` and `primaries` answer from it. */
  refresh(): Promise<readonly ClusterNodeInfo[]>;
  node(port: number): ClusterNodeInfo;
  primaries(): ClusterNodeInfo[];
  runningPorts(): number[];
}

/**
 * Moves one slot with its keys from one primary to another: SETSLOT IMPORTING on the target,
 * MIGRATING on the source, MIGRATE keys in batches, then SETSLOT NODE on target, source and every
 * other primary; waits until every running node maps the slot to the target. Returns the number
 * of keys moved. If a step (or `onBatch`) throws, the slot stays MIGRATING/IMPORTING, as with redis-cli.
 */
export async function migrateSlot(
  cluster: MigrationCluster,
  slot: number,
  fromPort: number,
  toPort: number,
  opts: MigrateSlotOptions = {},
): Promise<number> {
  if (!Number.isInteger(slot) || slot < 0 || slot >= CLUSTER_SLOTS) throw new RedisHarnessError(`migrateSlot: bad slot ${slot}`);
  await cluster.refresh();
  const from = cluster.node(fromPort);
  const to = cluster.node(toPort);
  if (from.role !== 'primary' || to.role !== 'primary') {
    throw new RedisHarnessError(`migrateSlot: ${fromPort} and ${toPort} must both be primaries`);
  }
  if (!servesSlot(from, slot)) throw new RedisHarnessError(`migrateSlot: slot ${slot} is not served by ${fromPort}`);
  await redisCommand(toPort, ['CLUSTER', 'SETSLOT', slot, 'IMPORTING', from.id]);
  await redisCommand(fromPort, ['CLUSTER', 'SETSLOT', slot, 'MIGRATING', to.id]);
  const moved = await moveKeys(slot, fromPort, toPort, opts);
  // Target first, so it owns the slot before the source starts redirecting with MOVED.
  await redisCommand(toPort, ['CLUSTER', 'SETSLOT', slot, 'NODE', to.id]);
  await redisCommand(fromPort, ['CLUSTER', 'SETSLOT', slot, 'NODE', to.id]);
  const running = cluster.runningPorts();
  for (const p of cluster.primaries()) {
    if (p.port !== fromPort && p.port !== toPort && running.includes(p.port)) {
      await redisCommand(p.port, ['CLUSTER', 'SETSLOT', slot, 'NODE', to.id]);
    }
  }
  await waitUntil(`every node to map slot ${slot} to ${toPort}`, opts.timeoutMs ?? 10_000, async () => {
    for (const port of cluster.runningPorts()) {
      const owner = (await viewFrom(port)).find((l) => servesSlot(l, slot));
      if (owner?.port !== toPort) return `${port} maps slot ${slot} to ${owner?.port ?? 'nobody'}`;
    }
    return true;
  });
  await cluster.refresh();
  return moved;
}

/** MIGRATEs the slot's keys in batches until the source has none left; returns how many moved. */
async function moveKeys(slot: number, fromPort: number, toPort: number, opts: MigrateSlotOptions): Promise<number> {
  const batch = opts.batchSize ?? 100;
  const migrateTimeout = opts.migrateTimeoutMs ?? 5_000;
  const cmdTimeout = { timeoutMs: migrateTimeout + 2_000 };
  const replace = opts.replace === true ? ['REPLACE'] : [];
  let moved = 0;
  for (;;) {
    const keys = (await redisCommand(fromPort, ['CLUSTER', 'GETKEYSINSLOT', slot, batch])) as string[];
    if (keys.length === 0) return moved;
    await redisCommand(fromPort, ['MIGRATE', HOST, toPort, '', 0, migrateTimeout, ...replace, 'KEYS', ...keys], cmdTimeout);
    moved += keys.length;
    await opts.onBatch?.(moved);
  }
}
