import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisBackend } from '../../src/backend/redis/backend.js';
import { RedisClusterBackend } from '../../src/backend/redis/cluster-backend.js';
import { BackendUnavailableError } from '../../src/errors.js';
import type { Backend } from '../../src/limiter/ports.js';
import type { CounterOp, EvaluateOptions } from '../../src/limiter/types.js';
import { startRedisCluster, type RedisCluster } from '../support/redis-cluster.js';
import { startRedis, type RedisInstance } from '../support/redis.js';
import { redisNodes } from '../support/redis-target.js';

/**
 * A reservation call (its own script call, never batched) gets the deadline of any decision:
 * REDIS_COMMAND_TIMEOUT_MS from its write on standalone Redis (twice that on a cluster), not
 * ioredis' backstop (ten times as long, at least 1 s). A stalled Redis (CLIENT PAUSE, longer than
 * the backstop) must fail it with meshlimit's own timeout error, which names the deadline.
 */
let redis: RedisInstance;
let cluster: RedisCluster;
beforeAll(async () => {
  [redis, cluster] = await Promise.all([startRedis(), startRedisCluster({ nodeTimeoutMs: 5_000 })]);
});
afterAll(async () => {
  await Promise.all([redis?.stop(), cluster?.stop()]);
});

const op: CounterOp = { key: 'dl:{t}:rsv', algorithm: 'fixed_window', windowMs: 60_000, threshold: 10, burst: 10, hits: 0, enforce: true };
const reserve = (id: string): EvaluateOptions => ({
  chargeOnDeny: false,
  reservation: { phase: 'reserve', id, amount: 1, ttlMs: 10_000, expiryCharge: false, maxOutstanding: 10 },
});

async function stalled(backend: Backend, pause: () => Promise<void>, ping: () => Promise<unknown>): Promise<unknown> {
  expect((await backend.evaluate([op], reserve('warm'))).reservation?.outcome).toBe('taken');
  await pause();
  const err = await backend.evaluate([op], reserve('stalled')).catch((e: unknown) => e);
  await ping(); // waits out the pause
  await backend.close();
  return err;
}

describe('reservation calls time out like any decision', () => {
  it('standalone: a stalled Redis fails the call with the 50 ms deadline from its write', async () => {
    const b = new RedisBackend({ nodes: redisNodes(redis.url), type: 'single', commandTimeoutMs: 50 });
    await b.waitReady();
    const admin = redis.client();
    const err = await stalled(
      b,
      () => redis.pause(1_500),
      () => admin.ping(),
    );
    expect(err).toBeInstanceOf(BackendUnavailableError);
    expect((err as Error).message).toBe('redis unavailable: Command timed out (no reply within 50 ms of the write)');
  });

  it('cluster: a stalled primary fails the call with the cluster deadline (2 x 50 ms)', async () => {
    const b = new RedisClusterBackend({ nodes: redisNodes(cluster.seeds), type: 'cluster', commandTimeoutMs: 50 });
    await b.waitReady(10_000);
    const primary = await cluster.primaryForKey(op.key);
    const err = await stalled(
      b,
      async () => void (await cluster.command(primary.port, 'CLIENT', 'PAUSE', 1_500, 'ALL')),
      () => cluster.command(primary.port, 'PING'),
    );
    expect(err).toBeInstanceOf(BackendUnavailableError);
    expect((err as Error).message).toBe('redis cluster: no answer within 100 ms');
  });
});
