import type { ServiceError } from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import type { RlsResponse } from '../../src/client/rls-client.js';
import { startRedis, type RedisInstance } from '../support/redis.js';
import { bootService, metricValue, type BootedService } from '../support/service.js';

/**
 * Overload is not an outage. A burst far above what one process settles within the command
 * timeout (4,000 concurrent requests on a 2-core box), against a healthy Redis, at default
 * settings but for one: admission bounds are set low, so shedding is certain on any machine
 * rather than depending on how fast this one is. Every answer is a decision or an `overloaded`
 * shed, the admitted ones are exact (OK never exceeds the limit), a shed charges nothing, and
 * the circuit breaker never opens. (The same at default bounds with h2load, standalone and
 * cluster, 1 and 4 processes: benchmarks/overload.)
 */
const LIMIT = 100;
const CONFIG = `domain: o\ndescriptors:\n  - key: k\n    rate_limit: { unit: hour, requests_per_unit: ${LIMIT} }\n`;
const BURST = 4_000;

let redis: RedisInstance | undefined;
let svc: BootedService | undefined;
afterEach(async () => {
  await svc?.close();
  await redis?.stop();
  svc = redis = undefined;
});

async function burst(
  policy: 'deny' | 'allow',
): Promise<{ results: PromiseSettledResult<RlsResponse>[]; s: BootedService; r: RedisInstance }> {
  redis = await startRedis();
  svc = await bootService({
    files: { 'o.yaml': CONFIG },
    env: { BACKEND_TYPE: 'redis', REDIS_URL: `127.0.0.1:${redis.port}`, FAILURE_POLICY: policy, ADMISSION_MAX_OUTSTANDING: '200' },
  });
  const calls = Array.from({ length: BURST }, () =>
    svc!.client.shouldRateLimit({ domain: 'o', descriptors: [{ entries: [{ key: 'k', value: 'hot' }] }] }, { deadlineMs: 30_000 }),
  );
  return { results: await Promise.allSettled(calls), s: svc, r: redis };
}

/** The counter's count in Redis (fixed window: "F <start>:<count>"), 0 when absent. */
async function charged(r: RedisInstance): Promise<number> {
  const c = r.client();
  const keys = await c.keys('*');
  expect(keys.length).toBeLessThanOrEqual(1);
  if (keys.length === 0) return 0;
  const state = await c.eval("local m, s, n = struct.unpack('<Bdd', redis.call('GET', KEYS[1])) return n", 1, keys[0]!);
  return Number(state);
}

describe('a burst above the admission bounds, healthy Redis', () => {
  it('FAILURE_POLICY=deny: decisions or overloaded UNAVAILABLE, OK exact, sheds charge nothing, breaker closed', async () => {
    const { results, s, r } = await burst('deny');
    let ok = 0;
    let over = 0;
    let shed = 0;
    for (const res of results) {
      if (res.status === 'fulfilled') {
        if (res.value.overallCode === 'OK') ok++;
        else over++;
        continue;
      }
      const err = res.reason as ServiceError;
      expect(err.code, err.details).toBe(14);
      expect(err.metadata.get('meshlimit-error-code')).toEqual(['ML_ERR_OVERLOADED']);
      shed++;
    }
    expect(ok + over + shed).toBe(BURST);
    expect(shed).toBeGreaterThan(0);
    expect(ok).toBeLessThanOrEqual(LIMIT);
    // Every admitted request was charged (OK) or denied (charging nothing): the counter holds
    // exactly the OKs, so no shed request reached Redis.
    expect(await charged(r)).toBe(ok);
    expect(await metricValue(s.httpUrl, 'meshlimit_backend_errors_total{outcome="overloaded"}')).toBe(shed);
    expect(await metricValue(s.httpUrl, 'meshlimit_backend_errors_total{outcome="transient"}')).toBe(0);
    expect(await metricValue(s.httpUrl, 'meshlimit_breaker_transitions_total{from="closed",to="open"}')).toBeNaN();
    expect(await metricValue(s.httpUrl, 'meshlimit_breaker_state{state="closed"}')).toBe(1);
  });

  it('FAILURE_POLICY=allow: sheds are OK marked overloaded; the exact OKs never exceed the limit', async () => {
    const { results, s, r } = await burst('allow');
    let exactOk = 0;
    let shedOk = 0;
    for (const res of results) {
      expect(res.status).toBe('fulfilled');
      const v = (res as PromiseFulfilledResult<RlsResponse>).value;
      const degraded = v.dynamicMetadata?.fields['meshlimit.degraded']?.stringValue;
      if (degraded === undefined) {
        if (v.overallCode === 'OK') exactOk++;
      } else {
        expect(degraded).toBe('overloaded');
        expect(v.overallCode).toBe('OK');
        shedOk++;
      }
    }
    expect(shedOk).toBeGreaterThan(0);
    expect(exactOk).toBeLessThanOrEqual(LIMIT);
    expect(await charged(r)).toBe(exactOk);
    expect(await metricValue(s.httpUrl, 'meshlimit_degraded_answers_total{outcome="overloaded"}')).toBe(shedOk);
    expect(await metricValue(s.httpUrl, 'meshlimit_breaker_state{state="closed"}')).toBe(1);
  });
});
