/**
 * Smoke tests of the Redis Cluster harness against real `redis-server` processes.
 * The tests share one cluster and run in order: each leaves the cluster healthy for the next,
 * and the last one stops it.
 */
import { existsSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseInfo, redisCommand } from '../../support/redis-admin.js';
import { type RedisCluster, startRedisCluster } from '../../support/redis-cluster.js';

const isGone = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
};

describe('startRedisCluster (3 primaries x 1 replica)', () => {
  let cluster: RedisCluster;

  beforeAll(async () => {
    const t0 = performance.now();
    cluster = await startRedisCluster();
    console.info(`[harness] Redis Cluster 3x(1+1) start-up: ${Math.round(performance.now() - t0)} ms`);
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  it('comes up with 3 primaries covering all 16384 slots and one replica per primary', async () => {
    const primaries = cluster.nodes.filter((n) => n.role === 'primary');
    const replicas = cluster.nodes.filter((n) => n.role === 'replica');
    expect(primaries).toHaveLength(3);
    expect(replicas).toHaveLength(3);
    const followed = replicas.map((r) => r.primaryId).sort();
    expect(followed).toEqual(primaries.map((p) => p.id).sort());
    const slotCount = primaries.flatMap((p) => p.slots).reduce((sum, [a, b]) => sum + (b - a + 1), 0);
    expect(slotCount).toBe(16384);
    expect(cluster.nodes.every((n) => n.process === 'running' && n.host === '127.0.0.1')).toBe(true);
    expect(cluster.seeds).toBe(cluster.ports.map((p) => `127.0.0.1:${p}`).join(','));
    expect(cluster.ports.every((p) => p >= 10_000 && p + 10_000 < 55_536)).toBe(true);
    for (const port of cluster.ports) {
      const info = parseInfo(String(await cluster.command(port, 'CLUSTER', 'INFO')));
      expect(info.get('cluster_state')).toBe('ok');
    }
  });

  it('a key set through the Cluster client reads back and lives on primaryForKey', async () => {
    const client = cluster.client();
    const key = 'harness:{rw}:k';
    await client.set(key, 'v1');
    expect(await client.get(key)).toBe('v1');
    const owner = await cluster.primaryForKey(key);
    expect(await cluster.command(owner.port, 'GET', key)).toBe('v1');
    const slot = await cluster.keySlot(key);
    const other = cluster.primaries().find((p) => p.port !== owner.port);
    await expect(cluster.command(other!.port, 'GET', key)).rejects.toThrow(`MOVED ${slot} 127.0.0.1:${owner.port}`);
  });

  it('stopNode freezes a node (commands time out) until resumeNode', async () => {
    const replica = cluster.nodes.find((n) => n.role === 'replica')!;
    cluster.stopNode(replica.port);
    await expect(redisCommand(replica.port, ['PING'], { timeoutMs: 200 })).rejects.toThrow('Command timed out');
    cluster.resumeNode(replica.port);
    expect(await cluster.command(replica.port, 'PING')).toBe('PONG');
  });

  it('migrateSlot moves a slot with its keys in batches; the client still reads every key', async () => {
    const client = cluster.client();
    const keys = Array.from({ length: 250 }, (_, i) => `harness:{mig}:${i}`);
    const pipeline = client.pipeline();
    keys.forEach((k, i) => pipeline.set(k, String(i)));
    await pipeline.exec();
    const slot = await cluster.keySlot(keys[0]!);
    const from = await cluster.primaryForSlot(slot);
    const to = cluster.primaries().find((p) => p.port !== from.port)!;

    const batches: number[] = [];
    const moved = await cluster.migrateSlot(slot, from.port, to.port, { batchSize: 100, onBatch: (n) => void batches.push(n) });

    expect(moved).toBe(250);
    expect(batches).toEqual([100, 200, 250]);
    expect((await cluster.primaryForSlot(slot)).port).toBe(to.port);
    expect(await cluster.command(to.port, 'CLUSTER', 'COUNTKEYSINSLOT', slot)).toBe(250);
    expect(await cluster.command(from.port, 'CLUSTER', 'COUNTKEYSINSLOT', slot)).toBe(0);
    expect(await client.mget(...keys)).toEqual(keys.map((_, i) => String(i)));
  });

  it('flushScriptsEverywhere empties the script cache of every node, replicas included', async () => {
    const shas = await Promise.all(cluster.ports.map((p) => cluster.command(p, 'SCRIPT', 'LOAD', 'return 1')));
    expect(new Set(shas).size).toBe(1);
    const sha = String(shas[0]);
    await cluster.flushScriptsEverywhere();
    for (const port of cluster.ports) expect(await cluster.command(port, 'SCRIPT', 'EXISTS', sha)).toEqual([0]);
  });

  it('killNode on a primary: its replica is promoted, cluster_state:ok everywhere within 15 s; the old primary rejoins as a replica', async () => {
    const key = 'harness:{fo}:k';
    const old = await cluster.primaryForKey(key);
    const [replica] = cluster.replicasOf(old.port);
    const direct = new Redis({ host: '127.0.0.1', port: old.port, lazyConnect: true });
    try {
      await direct.connect();
      await direct.set(key, 'survives');
      expect(await direct.call('WAIT', '1', '2000')).toBe(1); // the replica has the write
    } finally {
      direct.disconnect();
    }

    const t0 = performance.now();
    await cluster.killNode(old.port);
    expect(isGone(old.pid!)).toBe(true);
    const promoted = await cluster.waitForFailover(old.port, 15_000);
    console.info(`[harness] Redis Cluster failover after SIGKILL: ${Math.round(performance.now() - t0)} ms`);

    expect(promoted.port).toBe(replica!.port);
    expect(promoted.role).toBe('primary');
    expect((await cluster.primaryForKey(key)).port).toBe(replica!.port);
    for (const port of cluster.ports.filter((p) => p !== old.port)) {
      expect(parseInfo(String(await cluster.command(port, 'CLUSTER', 'INFO'))).get('cluster_state')).toBe('ok');
    }
    expect(await cluster.client().get(key)).toBe('survives');

    await cluster.restartNode(old.port);
    expect(cluster.node(old.port)).toMatchObject({ role: 'replica', primaryId: promoted.id, process: 'running' });
  });

  it('stop() kills every process it spawned and removes the temp dir', async () => {
    const pids = cluster.pids();
    expect(pids).toHaveLength(7); // 6 nodes + 1 restart
    await cluster.stop();
    for (const pid of pids) expect(isGone(pid)).toBe(true);
    expect(existsSync(cluster.dir)).toBe(false);
  });
});
