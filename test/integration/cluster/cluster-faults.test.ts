import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CounterOp, EvaluateResult } from '../../../src/limiter/types.js';
import { RedisClusterBackend, type RedisClusterBackendOptions } from '../../../src/backend/redis/cluster-backend.js';
import { keySlot } from '../../../src/backend/redis/slot.js';
import { BackendUnavailableError } from '../../../src/errors.js';
import { parseInfo, sleep } from '../../support/redis-admin.js';
import { type RedisCluster, startRedisCluster } from '../../support/redis-cluster.js';
import { NODE_TAGS, readState, T0 } from '../backend/conformance.js';
import { stateText } from '../../../src/limiter/algorithms/state-bytes.js';
import { redisNodes } from '../../support/redis-target.js';

/**
 * The Redis Cluster backend under cluster faults, on one real cluster (3 primaries x 1 replica)
 * shared by the tests below, which run in order and leave it usable for the next: script cache
 * flushed everywhere, a slot resharded, and last a primary killed. Load is a bounded number of
 * requests; every expectation is exact (admitted == limit, zero failures) or, during the
 * failover, bounded (failures only of the transient kind, and answers exact again afterwards).
 */

let cluster: RedisCluster;
let admin: Cluster;

/** A key's stored state as a byte string (one char per byte), as stateText() reads it. */
const stored = (key: string): Promise<string | null> => readState(admin, key);
const opened: RedisClusterBackend[] = [];

beforeAll(async () => {
  cluster = await startRedisCluster();
  admin = cluster.client();
});
afterAll(async () => {
  await Promise.all(opened.splice(0).map((b) => b.close()));
  await cluster?.stop();
});

async function backend(extra: Partial<RedisClusterBackendOptions> = {}): Promise<RedisClusterBackend> {
  const b = new RedisClusterBackend({ nodes: redisNodes(cluster.seeds), type: 'cluster', commandTimeoutMs: 2_000, ...extra });
  opened.push(b);
  await b.waitReady(10_000);
  return b;
}

const fw = (key: string, threshold: number, hits = 1): CounterOp => ({
  key,
  algorithm: 'fixed_window',
  windowMs: 60_000,
  threshold,
  burst: threshold,
  hits,
  enforce: true,
});
const sw = (key: string, threshold: number): CounterOp => ({ ...fw(key, threshold), algorithm: 'sliding_window' });
const prefix = (): string => `flt:${randomBytes(4).toString('hex')}:`;
const opts = { now: T0 + 1_000, chargeOnDeny: false } as const;

/** Sums `INFO errorstats` counters (errorstat_<PREFIX>:count=N) over the primaries. */
async function errorCounts(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const p of cluster.primaries()) {
    for (const [k, v] of parseInfo(String(await cluster.command(p.port, 'INFO', 'errorstats')))) {
      const name = k.replace(/^errorstat_/, '');
      out[name] = (out[name] ?? 0) + Number(/count=(\d+)/.exec(v)?.[1] ?? 0);
    }
  }
  return out;
}

async function resetStats(): Promise<void> {
  await Promise.all(cluster.primaries().map((p) => cluster.command(p.port, 'CONFIG', 'RESETSTAT')));
}

function admittedOf(results: PromiseSettledResult<EvaluateResult>[]): number {
  return results.filter((r) => r.status === 'fulfilled' && !r.value.denied).length;
}
function failuresOf(results: PromiseSettledResult<EvaluateResult>[]): unknown[] {
  return results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason);
}

describe('cluster faults', () => {
  it('SCRIPT FLUSH on every node, four times mid-load: no request fails and counts stay exact', async () => {
    const b = await backend({ commandTimeoutMs: 1_000 });
    const p = prefix();
    const [A, B, C] = NODE_TAGS;
    const single = [fw(`${p}{${A}}:hot`, 150)];
    const multi = [fw(`${p}{${B}}:wide`, 1_000), sw(`${p}{${C}}:narrow`, 120)];
    await b.evaluate(
      NODE_TAGS.map((t) => fw(`${p}{${t}}:warm`, 1)),
      opts,
    ); // the script is on every primary
    await resetStats();
    const all: Promise<EvaluateResult>[] = [];
    for (let round = 0; round < 20; round++) {
      const batch = Array.from({ length: 10 }, () => [b.evaluate(single, opts), b.evaluate(multi, opts)]).flat();
      if (round % 5 === 4) await cluster.flushScriptsEverywhere();
      all.push(...batch);
      await Promise.allSettled(batch);
    }
    const results = await Promise.allSettled(all);
    expect(failuresOf(results)).toEqual([]);
    const singles = results.filter((_, i) => i % 2 === 0);
    const multis = results.filter((_, i) => i % 2 === 1);
    expect(admittedOf(singles)).toBe(150);
    expect(admittedOf(multis)).toBe(120);
    // The wide descriptor was refunded for every multi request the narrow one denied.
    expect(stateText(await stored(`${p}{${B}}:wide`))).toBe(`F ${T0}:120`);
    const errors = await errorCounts();
    console.info(
      `[cluster] SCRIPT FLUSH x4 under load: 400 requests, 0 failed; NOSCRIPT replies answered by EVAL: ${errors.NOSCRIPT ?? 0}`,
    );
    // At least one per node and flush (the last flush follows the last round: 3 x 3).
    expect(errors.NOSCRIPT).toBeGreaterThanOrEqual(9);
  });

  it('resharding a slot mid-load (ASK, TRYAGAIN, then MOVED): no request fails and admitted == limit', async () => {
    const b = await backend({ clusterRetryDelayOnTryAgainMs: 20 });
    const p = prefix();
    // Every key below shares the tag T (used by no other test), hence the slot being moved;
    // `otherTag` lives on another primary.
    let T = 'mig0';
    for (let i = 1; Math.floor(keySlot(`{${T}}`) / 5462) !== 0; i++) T = `mig${i}`;
    const slot = keySlot(`{${T}}`);
    await cluster.refresh(); // current roles
    const from = await cluster.primaryForSlot(slot);
    const to = cluster.primaries().find((n) => n.port !== from.port)!;
    const otherTag = NODE_TAGS.find((t) => t !== T && Math.floor(keySlot(`{${t}}`) / 5462) !== Math.floor(slot / 5462))!;
    const oneKey = [fw(`${p}{${T}}:one`, 60)];
    const twoKeys = [fw(`${p}{${T}}:two-a`, 50), sw(`${p}{${T}}:two-b`, 1_000)];
    const acrossSlots = [fw(`${p}{${T}}:wide`, 1_000), fw(`${p}{${otherTag}}:narrow`, 40)];
    const kinds = [oneKey, twoKeys, acrossSlots];
    const results: Array<Array<Promise<EvaluateResult>>> = [[], [], []];
    // Each call also gets a no-op handler, so a failure before the awaits below is not "unhandled".
    const track = (call: Promise<EvaluateResult>): Promise<EvaluateResult> => (call.catch(() => undefined), call);
    // All three kinds in one tick (the one-slot calls share a batch call on slot T) ...
    const fire = (): void => kinds.forEach((ops, k) => results[k]!.push(track(b.evaluate(ops, opts))));
    // ... and each in a turn of its own (a call of its own: one key alone is what meets ASK).
    const fireApart = async (): Promise<void> => {
      for (const [k, ops] of kinds.entries()) {
        await new Promise((r) => setImmediate(r));
        results[k]!.push(track(b.evaluate(ops, opts)));
      }
    };
    // Two keys of which one is new: while the slot is split, no node holds both, so Redis answers
    // TRYAGAIN until the move completes. Fired during the last batches only, so that the bounded
    // retries (clusterMaxRedirections x clusterRetryDelayOnTryAgainMs) outlast the rest of the move.
    const fresh: Array<Promise<EvaluateResult>> = [];
    let freshN = 0;
    const fireFresh = (): void =>
      void fresh.push(track(b.evaluate([fw(`${p}{${T}}:one`, 1_000_000, 0), fw(`${p}{${T}}:new${freshN++}`, 5)], opts)));

    // The counters exist before the move; 300 filler keys make the move take 31 batches.
    fire();
    await Promise.allSettled(results.flat());
    const pipe = admin.pipeline();
    for (let i = 0; i < 300; i++) pipe.set(`${p}{${T}}:filler:${i}`, 'x', 'PX', 600_000);
    await pipe.exec();
    // A counter created after the fillers: a slot's keys migrate newest first, so this one moves in
    // the first batch and every call on it alone meets ASK (the others move last).
    const early = [fw(`${p}{${T}}:early`, 1_000_000)];
    await b.evaluate(early, opts);
    const asked: Array<Promise<EvaluateResult>> = [];
    await resetStats();

    const started = performance.now();
    const moved = await cluster.migrateSlot(slot, from.port, to.port, {
      batchSize: 10,
      // Requests are fired, not awaited: a call whose keys the move has split answers TRYAGAIN
      // until the next batch moves, which must not wait for it.
      onBatch: async (movedSoFar) => {
        fire();
        await fireApart();
        await new Promise((r) => setImmediate(r));
        asked.push(track(b.evaluate(early, opts)));
        if (movedSoFar >= 270) fireFresh();
        await sleep(1);
      },
    });
    const migrationMs = Math.round(performance.now() - started);
    for (let i = 0; i < 10; i++) {
      fire(); // after the move: MOVED, then the new owner
      await fireApart();
    }
    const settled = await Promise.all(results.map((r) => Promise.allSettled(r)));
    const freshSettled = await Promise.allSettled(fresh);

    expect(moved).toBe(305); // 300 fillers, one, two-a, two-b, wide, early
    expect(settled.map(failuresOf)).toEqual([[], [], []]);
    expect(settled.map(admittedOf)).toEqual([60, 50, 40]);
    expect(failuresOf(freshSettled)).toEqual([]);
    const askedSettled = await Promise.allSettled(asked);
    expect(failuresOf(askedSettled)).toEqual([]);
    expect(admittedOf(askedSettled)).toBe(asked.length);
    expect(admittedOf(freshSettled)).toBe(fresh.length);
    expect(fresh.length).toBeGreaterThanOrEqual(3);
    for (let i = 0; i < freshN; i++) expect(stateText(await stored(`${p}{${T}}:new${i}`))).toBe(`F ${T0}:1`);
    expect(stateText(await stored(`${p}{${T}}:wide`))).toBe(`F ${T0}:40`);
    expect((await cluster.primaryForSlot(slot)).port).toBe(to.port);
    const errors = await errorCounts();
    console.info(
      `[cluster] resharding slot ${slot} (${moved} keys, 10 per batch) took ${migrationMs} ms under load: ` +
        `${settled.reduce((s, r) => s + r.length, 0) + fresh.length} requests, 0 failed; ASK ${errors.ASK ?? 0}, TRYAGAIN ${errors.TRYAGAIN ?? 0}, MOVED ${errors.MOVED ?? 0}`,
    );
    expect(errors.ASK).toBeGreaterThan(0);
    expect(errors.TRYAGAIN).toBeGreaterThan(0);
    expect(errors.MOVED).toBeGreaterThan(0);
  });

  it('killing a primary mid-load: only BackendUnavailableError until the failover, then exact answers again', async () => {
    const b = await backend({ commandTimeoutMs: 500 });
    const p = prefix();
    const victimTag = NODE_TAGS[1];
    const victim = await cluster.primaryForKey(`{${victimTag}}`);
    const ops = [fw(`${p}{${victimTag}}:load`, 1_000_000)];
    const log: Array<{ at: number; ok: boolean; error?: unknown }> = [];
    let stop = false;
    const load = (async () => {
      while (!stop) {
        const at = performance.now();
        b.evaluate(ops, opts).then(
          () => log.push({ at, ok: true }),
          (error: unknown) => log.push({ at, ok: false, error }),
        );
        await sleep(10);
      }
    })();

    await sleep(300);
    const killedAt = performance.now();
    await cluster.killNode(victim.port);
    const promoted = await cluster.waitForFailover(victim.port, 20_000);
    const failoverMs = Math.round(performance.now() - killedAt);
    // Bounded: the backend must answer again within 10 s of the cluster being healthy.
    const deadline = performance.now() + 10_000;
    while (!log.some((e) => e.ok && e.at > killedAt + failoverMs) && performance.now() < deadline) await sleep(20);
    await sleep(200);
    stop = true;
    await load;
    await sleep(600); // the last calls settle (command timeout 500 ms)

    const failures = log.filter((e) => !e.ok);
    for (const f of failures) expect(f.error, String(f.error)).toBeInstanceOf(BackendUnavailableError);
    expect(log.filter((e) => e.ok && e.at < killedAt).length).toBeGreaterThan(0);
    expect(failures.length).toBeGreaterThan(0);
    const firstFailure = Math.min(...failures.map((f) => f.at)) - killedAt;
    const lastFailure = Math.max(...failures.map((f) => f.at)) - killedAt;
    const recovered = log.filter((e) => e.ok && e.at > killedAt + lastFailure);
    expect(recovered.length).toBeGreaterThan(0);
    console.info(
      `[cluster] primary ${victim.port} SIGKILLed under load (a request every 10 ms): ${failures.length} of ${log.length} requests failed, ` +
        `all BackendUnavailableError, from +${Math.round(firstFailure)} ms to +${Math.round(lastFailure)} ms after the kill; ` +
        `replica ${promoted.port} promoted and cluster healthy at +${failoverMs} ms`,
    );

    // Exact again on the promoted primary and on the others.
    const q = prefix();
    const fresh = [fw(`${q}{${victimTag}}:after`, 20), fw(`${q}{${NODE_TAGS[0]}}:after`, 1_000)];
    const after: EvaluateResult[] = [];
    for (let i = 0; i < 30; i++) after.push(await b.evaluate(fresh, opts));
    expect(after.filter((r) => !r.denied)).toHaveLength(20);
    expect(stateText(await stored(`${q}{${NODE_TAGS[0]}}:after`))).toBe(`F ${T0}:20`);
    expect(b.isReady()).toBe(true);
  });
});
