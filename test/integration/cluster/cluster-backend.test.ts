import { createHash, randomBytes } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CounterOp } from '../../../src/limiter/types.js';
import { RedisClusterBackend, type RedisClusterBackendOptions } from '../../../src/backend/redis/cluster-backend.js';
import type { RedisStateChange } from '../../../src/backend/redis/readiness.js';
import { keySlot } from '../../../src/backend/redis/slot.js';
import { BackendError, BackendUnavailableError, CancelledError } from '../../../src/errors.js';
import { counterKey, descriptorTag } from '../../../src/limiter/keys.js';
import type { Algorithm } from '../../../src/limiter/types.js';
import { getFreePort } from '../../support/ports.js';
import { type RedisCluster, startRedisCluster } from '../../support/redis-cluster.js';
import { defineBackendSuite, NODE_TAGS, readState, redisRaw, T0 } from '../backend/conformance.js';
import { SLOT_VECTORS } from '../../unit/backend/slot-vectors.js';
import { stateText } from '../../../src/limiter/algorithms/state-bytes.js';
import { redisNodes } from '../../support/redis-target.js';
import { eventually } from '../../support/service.js';
import { defaultEvaluateScripts } from '../../../src/backend/redis/backend.js';
import { assembleRefundScript } from '../../../src/backend/redis/lua-assembler.js';

/**
 * The Redis Cluster backend on a real cluster (3 primaries x 1 replica), shared by every test of
 * this file (each test uses its own key prefix): the conformance suite, then what only a cluster
 * has: slot routing, one round trip per node, refunds across slots, error mapping.
 * Faults (script flush, resharding, failover) are in cluster-faults.test.ts, on a cluster of
 * their own.
 */

let cluster: RedisCluster;
let admin: Cluster;

/** A key's stored state as a byte string (one char per byte), as stateText() reads it. */
const stored = (key: string): Promise<string | null> => readState(admin, key);
const opened: RedisClusterBackend[] = [];

beforeAll(async () => {
  // No failover is wanted here: a long node timeout keeps a loaded CI machine from causing one.
  cluster = await startRedisCluster({ nodeTimeoutMs: 5_000 });
  admin = cluster.client();
});
afterAll(async () => {
  await Promise.all(opened.splice(0).map((b) => b.close()));
  await cluster?.stop();
});

async function backend(extra: Partial<RedisClusterBackendOptions> = {}): Promise<RedisClusterBackend> {
  // A generous command timeout: a 2-core CI machine runs six servers and 2,000-call bursts; the
  // 50 ms production default is exercised by the fault tests.
  const b = new RedisClusterBackend({ nodes: redisNodes(cluster.seeds), type: 'cluster', commandTimeoutMs: 5_000, ...extra });
  opened.push(b);
  await b.waitReady(10_000);
  return b;
}

defineBackendSuite('redis cluster (3 primaries x 1 replica)', async () => {
  const b = new RedisClusterBackend({ nodes: redisNodes(cluster.seeds), type: 'cluster', commandTimeoutMs: 5_000 });
  await b.waitReady(10_000);
  return {
    backend: b,
    cleanup: () => b.close(),
    raw: redisRaw(admin),
  };
});

let n = 0;
const prefix = (): string => `cb:${randomBytes(4).toString('hex')}:${++n}:`;
function op(key: string, algorithm: Algorithm, threshold: number, o: { hits?: number; burst?: number } = {}): CounterOp {
  return { key, algorithm, windowMs: 60_000, threshold, burst: o.burst ?? threshold, hits: o.hits ?? 1, enforce: true };
}

/** Tags whose slots are on the primary serving the first (or last) third of the slots. */
function tagsInThird(third: 0 | 1 | 2, count: number): string[] {
  const out: string[] = [];
  for (let i = 0; out.length < count; i++) if (Math.floor(keySlot(`{t${i}}`) / 5462) === third) out.push(`t${i}`);
  return out;
}

async function primaryPortOf(key: string): Promise<number> {
  return (await cluster.primaryForKey(key)).port;
}

describe('hash slots', () => {
  it('keySlot agrees with CLUSTER KEYSLOT on the spec vectors and on keys.ts keys', async () => {
    const port = cluster.ports[0]!;
    for (const [key, slot] of SLOT_VECTORS) expect(await cluster.command(port, 'CLUSTER', 'KEYSLOT', key), key).toBe(slot);
    for (let i = 0; i < 50; i++) {
      const key = counterKey(i % 2 ? 'prod:' : '', descriptorTag('edge', [{ key: 'k', value: `v{${i}}:ü` }]), 'fw:second:1');
      expect(await cluster.command(port, 'CLUSTER', 'KEYSLOT', key)).toBe(keySlot(key));
    }
  });

  it('NODE_TAGS (used by the conformance suite) land on three different primaries', async () => {
    const ports = await Promise.all(NODE_TAGS.map((t) => primaryPortOf(`{${t}}`)));
    expect(new Set(ports).size).toBe(3);
  });
});

describe('warm-up', () => {
  it('loads every script on every primary as soon as the cluster client is ready (no cold first call under a burst)', async () => {
    for (const n of cluster.primaries()) await cluster.command(n.port, 'SCRIPT', 'FLUSH');
    const scripts = defaultEvaluateScripts();
    const shas = [scripts.multi, scripts.batch, ...Object.values(scripts.one), assembleRefundScript()].map((sc) => sc.sha1);
    await backend();
    const loaded = async (): Promise<boolean> => {
      for (const n of cluster.primaries()) {
        const exists = (await cluster.command(n.port, 'SCRIPT', 'EXISTS', ...shas)) as number[];
        if (exists.some((e) => e !== 1)) return false;
      }
      return true;
    };
    await eventually(loaded, 5_000, 20);
  });
});

describe('round trips: one script call per slot, one write per node, all nodes in parallel', () => {
  /** A backend connected to every primary, with the script loaded on each (so streams exist). */
  async function warmBackend(): Promise<RedisClusterBackend> {
    const b = await backend({ clusterSlotsRefreshIntervalMs: 0 });
    await b.evaluate(
      NODE_TAGS.map((t) => op(`${prefix()}{${t}}:warm`, 'fixed_window', 5)),
      { now: T0, chargeOnDeny: false },
    );
    expect((b.client.nodes('master') as Redis[]).map((r) => r.status)).toEqual(['ready', 'ready', 'ready']);
    return b;
  }

  /** Counts socket writes per primary port on the backend's own node connections. */
  function countWrites(b: RedisClusterBackend): { counts: Map<number, number>; stop: () => void } {
    const counts = new Map<number, number>();
    const restore: Array<() => void> = [];
    for (const node of b.client.nodes('master') as Redis[]) {
      const stream = node.stream;
      const port = node.options.port!;
      counts.set(port, 0);
      const write = stream.write;
      stream.write = function (this: typeof stream, ...args: Parameters<typeof write>) {
        // Only writes that carry script calls: the client's own traffic (a periodic CLUSTER SLOTS
        // refresh on a slow machine) is not the batching under test.
        if (/evalsha/i.test(String(args[0]))) counts.set(port, counts.get(port)! + 1);
        return write.apply(this, args);
      } as typeof write;
      restore.push(() => (stream.write = write));
    }
    return { counts, stop: () => restore.forEach((r) => r()) };
  }

  async function evalshaCalls(): Promise<Map<number, number>> {
    const out = new Map<number, number>();
    for (const p of cluster.primaries()) {
      const info = String(await cluster.command(p.port, 'INFO', 'commandstats'));
      const calls = (name: string): number => Number(new RegExp(`cmdstat_${name}:calls=(\\d+)`).exec(info)?.[1] ?? 0);
      out.set(p.port, calls('evalsha') + calls('eval'));
    }
    return out;
  }

  it('a request on 4 descriptors over 2 nodes: 2 script calls on each, 1 write to each, none to the third', async () => {
    const b = await warmBackend();
    const [x1, x2] = tagsInThird(0, 2);
    const [z1, z2] = tagsInThird(2, 2);
    const p = prefix();
    const ops = [
      op(`${p}{${x1}}:a`, 'fixed_window', 5),
      op(`${p}{${z1}}:a`, 'sliding_window', 5),
      op(`${p}{${x2}}:a`, 'token_bucket', 5),
      op(`${p}{${z2}}:a`, 'fixed_window', 5),
    ];
    await b.evaluate(ops, { now: T0, chargeOnDeny: false }); // connects and loads the script on both nodes
    const portX = await primaryPortOf(`{${x1}}`);
    const portZ = await primaryPortOf(`{${z1}}`);
    expect(await primaryPortOf(`{${x2}}`)).toBe(portX);
    expect(await primaryPortOf(`{${z2}}`)).toBe(portZ);
    await Promise.all(cluster.primaries().map((pr) => cluster.command(pr.port, 'CONFIG', 'RESETSTAT')));

    const w = countWrites(b);
    const r = await b.evaluate(ops, { now: T0, chargeOnDeny: false });
    w.stop();

    expect(r.outcomes.map((o) => o.remaining)).toEqual([3, 3, 3, 3]);
    const third = cluster.primaries().find((pr) => pr.port !== portX && pr.port !== portZ)!.port;
    expect(Object.fromEntries(w.counts)).toEqual({ [portX]: 1, [portZ]: 1, [third]: 0 });
    const calls = await evalshaCalls();
    expect([calls.get(portX), calls.get(portZ), calls.get(third)]).toEqual([2, 2, 0]);
  });

  it('50 concurrent requests touching all three nodes: their 150 slot groups go out as one batch call per slot, one write per node', async () => {
    const b = await warmBackend();
    const p = prefix();
    const ops = NODE_TAGS.map((t) => op(`${p}{${t}}:c`, 'fixed_window', 1_000));
    await Promise.all([0, 1].map(() => b.evaluate(ops, { now: T0, chargeOnDeny: false }))); // loads the batch script on every node
    await Promise.all(cluster.primaries().map((pr) => cluster.command(pr.port, 'CONFIG', 'RESETSTAT')));

    const w = countWrites(b);
    const results = await Promise.all(Array.from({ length: 50 }, () => b.evaluate(ops, { now: T0, chargeOnDeny: false })));
    w.stop();

    expect(results.every((r) => !r.denied)).toBe(true);
    expect([...w.counts.values()]).toEqual([1, 1, 1]);
    expect([...(await evalshaCalls()).values()]).toEqual([1, 1, 1]);
    expect(results.map((r) => r.outcomes[0]!.remaining)).toEqual(Array.from({ length: 50 }, (_, i) => 997 - i));
    const check = await b.evaluate(
      ops.map((o) => ({ ...o, hits: 0 })),
      { now: T0, chargeOnDeny: false },
    );
    expect(check.outcomes.map((o) => o.remaining)).toEqual([948, 948, 948]);
  });

  it('one-slot requests of one tick: one script call per slot (lua/evaluate-batch.lua), one write per node, each answered as if alone', async () => {
    const b = await warmBackend();
    const p = prefix();
    // Two slots on the first node, one on each other node; 30 requests per slot, limit 20.
    const [x1, x2] = tagsInThird(0, 2);
    const slots = [x1!, x2!, NODE_TAGS[1]!, NODE_TAGS[2]!];
    const warm = slots.map((t) => op(`${p}{${t}}:warm`, 'fixed_window', 5));
    await Promise.all([...warm, ...warm].map((o) => b.evaluate([o], { now: T0, chargeOnDeny: false }))); // loads the batch script everywhere
    await Promise.all(cluster.primaries().map((pr) => cluster.command(pr.port, 'CONFIG', 'RESETSTAT')));

    const w = countWrites(b);
    const requests = Array.from({ length: 120 }, (_, i) => [op(`${p}{${slots[i % 4]}}:hot`, 'fixed_window', 20)]);
    const results = await Promise.all(requests.map((ops) => b.evaluate(ops, { now: T0, chargeOnDeny: false })));
    w.stop();

    for (let s = 0; s < 4; s++) {
      const mine = results.filter((_, i) => i % 4 === s);
      expect(mine.map((r) => r.denied)).toEqual([...Array<boolean>(20).fill(false), ...Array<boolean>(10).fill(true)]);
      expect(mine.slice(0, 20).map((r) => r.outcomes[0]!.remaining)).toEqual(Array.from({ length: 20 }, (_, i) => 19 - i));
    }
    expect([...w.counts.values()]).toEqual([1, 1, 1]);
    const portX = await primaryPortOf(`{${x1}}`);
    const calls = await evalshaCalls();
    expect([...calls.entries()].map(([port, c]) => (port === portX ? c === 2 : c === 1))).toEqual([true, true, true]);
  });

  it('a denied request on several nodes costs a second round trip (the refunds), on the charged nodes only', async () => {
    const b = await warmBackend();
    const [A, B, C] = NODE_TAGS;
    const p = prefix();
    await b.evaluate([op(`${p}{${B}}:full`, 'fixed_window', 1)], { now: T0, chargeOnDeny: false });
    const ops = [op(`${p}{${A}}:a`, 'fixed_window', 5), op(`${p}{${B}}:full`, 'fixed_window', 1), op(`${p}{${C}}:c`, 'token_bucket', 5)];
    // Load the refund script on A and C first, so the measured refunds are one EVALSHA each.
    await b.evaluate(
      [op(`${p}{${A}}:w`, 'fixed_window', 5), op(`${p}{${B}}:full`, 'fixed_window', 1), op(`${p}{${C}}:w`, 'fixed_window', 5)],
      { now: T0, chargeOnDeny: false },
    );
    const [pa, pb, pc] = await Promise.all(NODE_TAGS.map((t) => primaryPortOf(`{${t}}`)));

    const w = countWrites(b);
    const r = await b.evaluate(ops, { now: T0, chargeOnDeny: false });
    w.stop();

    expect(r.denied).toBe(true);
    expect([w.counts.get(pa!), w.counts.get(pb!), w.counts.get(pc!)]).toEqual([2, 1, 2]);
    expect(stateText(await stored(`${p}{${A}}:a`))).toBe(`F ${T0}:0`);
    expect(stateText(await stored(`${p}{${C}}:c`))).toBe(`T 300000:${T0}:${T0 + 120_000}`); // refunded; armed by the charge, kept
  });
});

describe('a request whose caller has gone is not sent', () => {
  it('a request over three nodes, cancelled before the turn is sent: CancelledError, nothing charged on any node', async () => {
    const b = await backend();
    const p = prefix();
    const ops = NODE_TAGS.map((t) => op(`${p}{${t}}:x`, 'fixed_window', 5));
    const gone = { cancelled: false };
    const pending = b.evaluate(ops, { now: T0, chargeOnDeny: false, cancellation: gone });
    const kept = b.evaluate([op(`${p}{${NODE_TAGS[0]}}:kept`, 'fixed_window', 5)], { now: T0, chargeOnDeny: false });
    gone.cancelled = true;
    await expect(pending).rejects.toBeInstanceOf(CancelledError);
    expect((await kept).denied).toBe(false);
    for (const o of ops) expect(await stored(o.key)).toBeNull();
    expect(stateText(await stored(`${p}{${NODE_TAGS[0]}}:kept`))).toBe(`F ${T0}:1`);
  });
});

describe('denied requests consume nothing across slots, on Redis time', () => {
  /** Waits (rarely) so the next seconds stay inside one aligned minute of the cluster's clock. */
  async function awayFromMinuteEdge(): Promise<void> {
    const [s] = (await cluster.command(cluster.primaries()[0]!.port, 'TIME')) as [string, string];
    const inMinute = (Number(s) * 1000) % 60_000;
    if (inMinute > 50_000) await new Promise((r) => setTimeout(r, 60_000 - inMinute + 10));
  }

  it('2,000 concurrent requests on two nodes (100 and 10,000 per minute): exactly 100 admitted, the wide counter holds exactly 100', async () => {
    const b = await backend();
    const p = prefix();
    const [A, , C] = NODE_TAGS;
    const narrow = op(`${p}{${A}}:narrow`, 'fixed_window', 100);
    const wide = op(`${p}{${C}}:wide`, 'sliding_window', 10_000);
    await awayFromMinuteEdge();
    const results = await Promise.all(Array.from({ length: 2_000 }, () => b.evaluate([wide, narrow], { chargeOnDeny: false })));
    expect(results.filter((r) => !r.denied)).toHaveLength(100);
    const narrowState = stateText(await stored(narrow.key))!;
    const start = Number(narrowState.slice(2).split(':')[0]);
    expect(narrowState).toBe(`F ${start}:100`);
    expect(stateText(await stored(wide.key))).toBe(`S ${start}:100:0`);
  });

  it('a token bucket charged on one node and refunded because another node denied: exactly full again', async () => {
    const b = await backend();
    const p = prefix();
    const [A, B] = NODE_TAGS;
    const bucket = op(`${p}{${A}}:tb`, 'token_bucket', 6, { hits: 3, burst: 10 });
    const r = await b.evaluate([bucket, op(`${p}{${B}}:full`, 'fixed_window', 0)], { chargeOnDeny: false });
    expect(r.denied).toBe(true);
    const check = await b.evaluate([{ ...bucket, hits: 0 }], { chargeOnDeny: false });
    expect(check.outcomes[0]).toEqual({ overLimit: false, remaining: 10, resetMs: 0 });
  });

  it('a failing refund never changes the answer and is reported to onRefundError', async () => {
    const reported: Error[] = [];
    const broken = 'return redis.call("INCR", KEYS[1], "not-an-argument")';
    const b = await backend({
      refundScript: { source: broken, sha1: createHash('sha1').update(broken).digest('hex') },
      onRefundError: (e) => reported.push(e),
    });
    const p = prefix();
    const [A, B] = NODE_TAGS;
    const r = await b.evaluate([op(`${p}{${A}}:a`, 'fixed_window', 5), op(`${p}{${B}}:b`, 'fixed_window', 0)], {
      now: T0,
      chargeOnDeny: false,
    });
    expect(r.denied).toBe(true);
    expect(reported).toHaveLength(1);
    expect(reported[0]).toBeInstanceOf(BackendError);
    expect(reported[0]!.message).toMatch(/Wrong number of args/);
    // The charge stayed (documented under-admission until the window moves on).
    expect(stateText(await stored(`${p}{${A}}:a`))).toBe(`F ${T0}:1`);
  });
});

describe('cluster errors and readiness', () => {
  it('a script error on one slot group is a non-transient BackendError; the other groups are refunded', async () => {
    const b = await backend();
    const p = prefix();
    const [A, B] = NODE_TAGS;
    await admin.hset(`${p}{${B}}:hash`, 'f', '1');
    const err = await b
      .evaluate([op(`${p}{${A}}:a`, 'fixed_window', 5), op(`${p}{${B}}:hash`, 'fixed_window', 5)], { now: T0, chargeOnDeny: false })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackendError);
    expect((err as BackendError).transient).toBe(false);
    expect((err as Error).message).toMatch(/WRONGTYPE/);
    expect(stateText(await stored(`${p}{${A}}:a`))).toBe(`F ${T0}:0`);
    expect(b.isReady()).toBe(true);
  });

  it('reports ready once, not ready after close, and then fails fast as unavailable', async () => {
    const changes: RedisStateChange[] = [];
    const b = new RedisClusterBackend({ nodes: redisNodes(cluster.seeds), type: 'cluster', onStateChange: (c) => changes.push(c) });
    expect(b.isReady()).toBe(false);
    await b.waitReady(10_000);
    await b.evaluate([op(`${prefix()}{x}:a`, 'fixed_window', 5)], { now: T0, chargeOnDeny: false });
    expect(b.isReady()).toBe(true);
    expect(changes).toEqual([{ ready: true }]);
    await b.close();
    expect(b.isReady()).toBe(false);
    await expect(b.evaluate([op('x{y}', 'fixed_window', 1)], { now: T0, chargeOnDeny: false })).rejects.toThrow(BackendUnavailableError);
    await new Promise<void>((resolve) => (b.client.status === 'end' ? resolve() : b.client.once('end', () => resolve())));
    expect(changes.map((c) => c.ready)).toEqual([true, false]);
    await b.close();
  });

  it('a busy service is not a slow cluster: a reply already received is never a timeout', async () => {
    const b = await backend({ commandTimeoutMs: 50 });
    const busy = (ms: number): void => {
      const until = performance.now() + ms;
      while (performance.now() < until); // the event loop is blocked, as by a long turn of work
    };
    await b.evaluate([op(`${prefix()}{busy}:w`, 'fixed_window', 10)], { now: T0, chargeOnDeny: false }); // connections and scripts ready
    // 1. queued, then the process is busy for 3x the deadline (2 x 50 ms) before anything is written
    const queued = b.evaluate([op(`${prefix()}{busy}:a`, 'fixed_window', 10)], { now: T0, chargeOnDeny: false });
    busy(300);
    await expect(queued).resolves.toMatchObject({ denied: false });
    // 2. written, then busy while the reply waits in the socket
    const written = b.evaluate([op(`${prefix()}{busy}:b`, 'fixed_window', 10)], { now: T0, chargeOnDeny: false });
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    busy(300);
    await expect(written).resolves.toMatchObject({ denied: false });
  });

  it('no cluster listening: evaluate fails fast with BackendUnavailableError and waitReady times out', async () => {
    const port = await getFreePort();
    const b = new RedisClusterBackend({
      nodes: [{ host: '127.0.0.1', port }],
      type: 'cluster',
      commandTimeoutMs: 50,
      connectTimeoutMs: 200,
    });
    opened.push(b);
    const started = performance.now();
    const err = await b.evaluate([op('x{y}', 'fixed_window', 1)], { now: T0, chargeOnDeny: false }).catch((e: unknown) => e);
    expect(performance.now() - started).toBeLessThan(100);
    expect(err).toBeInstanceOf(BackendUnavailableError);
    await expect(b.waitReady(300)).rejects.toThrow(BackendUnavailableError);
    expect(b.isReady()).toBe(false);
  });
});
