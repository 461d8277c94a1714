import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackendStack } from '../../src/backend/stack.js';
import { loadSettings } from '../../src/settings/index.js';
import { backendEvents } from '../../src/telemetry/events.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { createMetrics, type Metrics } from '../../src/telemetry/metrics.js';
import { minuteOp, stackOf } from '../support/backend-stack.js';
import { startRedis, type RedisInstance } from '../support/redis.js';
import { eventually } from '../support/service.js';

/**
 * What broke: when a denied request's charge could not be given back (lua/refund.lua timed out or
 * failed: a per-second Redis or a cluster group denied, the other had charged), the stores
 * reported it to an `onRefundError` hook that nothing wired: the charge silently stayed until its
 * window moved on (under-admission nobody could see). Now it is counted,
 * `meshlimit_backend_errors_total{outcome="refund_failed"}`, and logged at debug with the store.
 */
let redis: RedisInstance;
let stack: BackendStack;
let metrics: Metrics;
beforeAll(async () => {
  redis = await startRedis();
  const settings = loadSettings({ BACKEND_TYPE: 'redis', REDIS_URL: `127.0.0.1:${redis.port}`, REDIS_COMMAND_TIMEOUT_MS: '100' });
  metrics = createMetrics();
  const events = backendEvents(metrics, createLogger({ level: 'fatal', format: 'json' }), () => undefined);
  stack = stackOf(settings, events);
  await eventually(async () => stack.storesConnected(), 10_000, 20);
});
afterAll(async () => {
  if (redis !== undefined) process.kill(redis.pid, 'SIGCONT');
  await stack?.backend.close();
  await redis?.stop();
});

const op = minuteOp('refund-reg:{k}');

describe('a refund that fails', () => {
  it('is counted as meshlimit_backend_errors_total{outcome="refund_failed"}, and the give-back still resolves', async () => {
    const refundFailed = async (): Promise<string | undefined> =>
      (await metrics.registry.metrics()).split('\n').find((l) => l.startsWith('meshlimit_backend_errors_total{outcome="refund_failed"}'));
    expect(await refundFailed()).toBe('meshlimit_backend_errors_total{outcome="refund_failed"} 0');
    const charged = await stack.backend.evaluate([op], { chargeOnDeny: false, refundable: true });
    expect(charged.outcomes[0]!.remaining).toBe(4);
    expect(charged.refund).toBeDefined();
    process.kill(redis.pid, 'SIGSTOP'); // a hung Redis: the give-back times out
    await charged.refund!(); // resolves in every case
    process.kill(redis.pid, 'SIGCONT');
    expect(await refundFailed()).toBe('meshlimit_backend_errors_total{outcome="refund_failed"} 1');
  });
});
