import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { envoyOn, rlqsRules, type SimEnvoy } from '../support/rlqs-envoy.js';
import { startHungRedisService, type HungRedisService } from '../support/hung-redis.js';
import { eventually } from '../support/service.js';

/**
 * What broke: RLQS asked only whether the counter store's connection was up before sending a
 * report to the quota store. A hung Redis (stopped, its socket open) keeps the connection "up",
 * so while RLS's breaker was open on silence, every RLQS report still went to Redis, waited out
 * REDIS_COMMAND_TIMEOUT_MS, and stayed queued in the socket, to be applied when Redis woke up.
 * Now an open breaker sends RLQS to the failure policy at once, as it does RLS: the report never
 * reaches Redis, which the keys after Redis resumes show.
 */
const CONFIG = `domain: h
descriptors:
  - key: k
    rate_limit: { unit: hour, requests_per_unit: 1000000 }
${rlqsRules('api', { a: 'hour 36000', b: 'hour 36000' })}`;
let h: HungRedisService;
let envoy: SimEnvoy | undefined;
beforeAll(async () => {
  h = await startHungRedisService({
    files: { 'h.yaml': CONFIG },
    domain: 'h',
    descriptor: { key: 'k', value: 'v' },
    env: { REDIS_COMMAND_TIMEOUT_MS: '100', BREAKER_SILENCE_MS: '250', BREAKER_OPEN_MS: '60000', FAILURE_POLICY: 'deny' },
  });
});
afterAll(async () => {
  envoy?.close();
  await h?.close();
});

describe('RLQS while RLS`s breaker is open on a hung Redis', () => {
  it('answers with the failure policy without sending the report to Redis', async () => {
    for (let i = 0; i < 50; i++) await h.ask();
    // An Envoy subscribed while Redis answers: its quota store is open and connected.
    envoy = envoyOn(h.svc.handle.grpcPort, 'h');
    envoy.request({ api: 'a' });
    await eventually(async () => envoy!.assignment({ api: 'a' })?.kind === 'token_bucket', 5_000, 20);
    const keysBefore = await h.redis.client().keys('*');
    expect(await h.hangUntilBreakerOpens()).toBeDefined();
    // A bucket of another rule, first reported now: its verdict is the failure policy's (deny).
    envoy.request({ api: 'b' });
    await eventually(async () => envoy!.assignment({ api: 'b' }) !== undefined, 5_000, 20);
    expect(envoy.assignment({ api: 'b' })?.kind).toBe('deny_all');

    h.resume();
    // Whatever was queued in the quota store's socket runs now: no key of rule b may appear.
    await eventually(async () => (await h.redis.client().ping()) === 'PONG', 5_000, 20);
    await new Promise((r) => setTimeout(r, 300));
    // Rule a's counter and quota state and RLS's counter at most (a window may have ended since and
    // taken its counter); before the fix, rule b's counter and quota state too.
    const keys = await h.redis.client().keys('*');
    expect(keys.filter((k) => !keysBefore.includes(k))).toEqual([]);
  });
});
