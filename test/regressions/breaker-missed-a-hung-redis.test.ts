import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHungRedisService, type HungRedisService } from '../support/hung-redis.js';

/**
 * What broke: during a real outage (Redis stopped, its socket open, nothing answering) the breaker
 * never opened under steady traffic, because it needed failures to outnumber the successes of
 * the last 10 s; every request waited the full command timeout. Now calls that wait
 * BREAKER_SILENCE_MS with no reply at all open it, and later answers come without waiting.
 */
const CONFIG = 'domain: h\ndescriptors:\n  - key: k\n    rate_limit: { unit: hour, requests_per_unit: 1000000 }\n';
const TIMEOUT_MS = 100;
const SILENCE_MS = 250;
let h: HungRedisService;
beforeAll(async () => {
  h = await startHungRedisService({
    files: { 'h.yaml': CONFIG },
    domain: 'h',
    descriptor: { key: 'k', value: 'v' },
    env: { REDIS_COMMAND_TIMEOUT_MS: String(TIMEOUT_MS), BREAKER_SILENCE_MS: String(SILENCE_MS), BREAKER_OPEN_MS: '60000' },
  });
});
afterAll(async () => {
  await h?.close();
});

describe('a hung Redis under steady traffic after many successes', () => {
  it('opens the breaker within the silence bound, and then answers without waiting for the timeout', async () => {
    for (let i = 0; i < 500; i++) await h.ask(); // a long run of successes first
    const openedAfterMs = await h.hangUntilBreakerOpens();
    expect(openedAfterMs).toBeDefined();
    // Silence bound, plus the call that notices it (one command timeout), plus scheduling on a busy CI box.
    expect(openedAfterMs!).toBeLessThan(SILENCE_MS + TIMEOUT_MS + 500);
    const t0 = performance.now();
    const err = await h.ask().catch((e: unknown) => e);
    expect((err as { code: number }).code).toBe(14);
    expect(performance.now() - t0).toBeLessThan(TIMEOUT_MS);
  });
});
