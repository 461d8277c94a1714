import { afterEach, describe, expect, it } from 'vitest';
import type { RlsClient } from '../../src/client/rls-client.js';
import { startRedis, type RedisInstance } from '../support/redis.js';
import { bootService, eventually, metricValue, type BootedService } from '../support/service.js';

/**
 * Redis misbehaving under a running service (standalone Redis; the cluster variants live with
 * the cluster tests): stopped, restarted, paused. Each loop is bounded; expectations are exact
 * or bounded by the configured timeouts.
 */
const CONFIG = `
domain: faults
descriptors:
  - key: k
    rate_limit: { unit: hour, requests_per_unit: 10 }
`;
const ALLOW_DOMAIN = `
domain: lenient
failure_mode: allow
descriptors:
  - key: k
    rate_limit: { unit: hour, requests_per_unit: 10 }
`;
// Above the 50 ms default so a loaded 2-core CI box does not time out the healthy calls these
// tests make before the fault; the bounds below scale with it.
const COMMAND_TIMEOUT_MS = 200;
const OPEN_MS = 400;
const BREAKER_ENV = {
  BACKEND_TYPE: 'redis',
  REDIS_COMMAND_TIMEOUT_MS: String(COMMAND_TIMEOUT_MS),
  BREAKER_OPEN_MS: String(OPEN_MS),
  BREAKER_HALF_OPEN_PROBES: '1',
};
/** Margin above the command timeout for a failed answer: loopback + event-loop scheduling on a busy 2-core CI box. */
const MARGIN_MS = 250;

let redis: RedisInstance | undefined;
let svc: BootedService | undefined;
afterEach(async () => {
  await svc?.close();
  await redis?.stop();
  svc = undefined;
  redis = undefined;
});

const ask = (client: RlsClient, domain = 'faults', value = 'v') =>
  client.shouldRateLimit({ domain, descriptors: [{ entries: [{ key: 'k', value }] }] }, { deadlineMs: 5000 });

async function timed<T>(p: Promise<T>): Promise<{ ms: number; value?: T; error?: { code: number; details: string } }> {
  const t0 = performance.now();
  try {
    const value = await p;
    return { ms: performance.now() - t0, value };
  } catch (err) {
    return { ms: performance.now() - t0, error: err as { code: number; details: string } };
  }
}

async function boot(env: Record<string, string>, files: Record<string, string> = { 'f.yaml': CONFIG }): Promise<BootedService> {
  redis = await startRedis();
  return bootService({ files, env: { ...BREAKER_ENV, REDIS_URL: `127.0.0.1:${redis.port}`, ...env } });
}

describe('FAILURE_POLICY=deny (default)', () => {
  it('answers UNAVAILABLE fast while Redis is down, opens the breaker, reports NOT_SERVING, and recovers exactly', async () => {
    svc = await boot({});
    const s = svc;
    expect((await ask(s.client)).statuses[0]!.limitRemaining).toBe(9);
    const port = redis!.port;
    await redis!.kill();

    const results = [];
    for (let i = 0; i < 30; i++) results.push(await timed(ask(s.client)));
    for (const r of results) {
      expect(r.error?.code, JSON.stringify(r)).toBe(14); // UNAVAILABLE, never OK with code UNKNOWN
      expect(r.ms).toBeLessThan(COMMAND_TIMEOUT_MS + MARGIN_MS);
    }
    expect(await metricValue(s.httpUrl, 'meshlimit_breaker_state{state="open"}')).toBe(1);
    // The connection is gone: the first failed request opens the breaker (a second one may fail
    // before the client has seen the close), every later one fails fast without touching Redis.
    const transient = await metricValue(s.httpUrl, 'meshlimit_backend_errors_total{outcome="transient"}');
    expect(transient).toBeGreaterThanOrEqual(1);
    expect(transient).toBeLessThanOrEqual(2);
    expect(await metricValue(s.httpUrl, 'meshlimit_backend_errors_total{outcome="circuit_open"}')).toBe(30 - transient);
    expect(await metricValue(s.httpUrl, 'meshlimit_breaker_transitions_total{from="closed",to="open"}')).toBe(1);
    expect((await fetch(`${s.httpUrl}/healthcheck`)).status).toBe(500);
    expect(await s.client.checkHealth()).toBe('NOT_SERVING');

    // Redis back (empty, on the same port): the breaker closes and exact answers resume.
    redis = await startRedis({ port });
    await eventually(async () => (await timed(ask(s.client, 'faults', 'after'))).value !== undefined, 10_000, 100);
    const r = await ask(s.client, 'faults', 'fresh');
    expect(r.overallCode).toBe('OK');
    expect(r.statuses[0]!.limitRemaining).toBe(9);
    expect(r.dynamicMetadata).toBeNull();
    await eventually(async () => (await s.client.checkHealth()) === 'SERVING', 5000, 100);
    expect(await metricValue(s.httpUrl, 'meshlimit_breaker_state{state="closed"}')).toBe(1);
    expect(await metricValue(s.httpUrl, 'meshlimit_breaker_transitions_total{from="half_open",to="closed"}')).toBeGreaterThanOrEqual(1);
  });

  it('a paused Redis (no reply at all) opens the breaker after BREAKER_SILENCE_MS', async () => {
    svc = await boot({});
    const s = svc;
    await ask(s.client);
    await redis!.pause(3000);
    const results = [];
    for (let i = 0; i < 12; i++) results.push(await timed(ask(s.client)));
    for (const r of results) {
      expect(r.error?.code).toBe(14);
      expect(r.ms).toBeLessThan(COMMAND_TIMEOUT_MS + MARGIN_MS);
    }
    expect(await metricValue(s.httpUrl, 'meshlimit_breaker_state{state="open"}')).toBe(1);
  });

  it('a domain with failure_mode: allow answers OK (degraded) while others answer UNAVAILABLE', async () => {
    svc = await boot({ DEGRADED_HEADER: 'x-ratelimit-degraded' }, { 'f.yaml': CONFIG, 'l.yaml': ALLOW_DOMAIN });
    await redis!.kill();
    expect((await timed(ask(svc.client))).error?.code).toBe(14);
    const lenient = await ask(svc.client, 'lenient');
    expect(lenient.overallCode).toBe('OK');
    expect(lenient.dynamicMetadata?.fields['meshlimit.degraded']?.stringValue).toMatch(/^(backend_error|circuit_open)$/);
    expect(lenient.responseHeadersToAdd.map((h) => h.key)).toEqual(['x-ratelimit-degraded']);
  });
});

describe('FAILURE_POLICY=allow', () => {
  it('answers OK marked degraded, first backend_error then circuit_open, and counts them', async () => {
    svc = await boot({ FAILURE_POLICY: 'allow' });
    const s = svc;
    await redis!.kill();
    const reasons: string[] = [];
    for (let i = 0; i < 20; i++) {
      const r = await timed(ask(s.client));
      expect(r.value?.overallCode).toBe('OK');
      expect(r.ms).toBeLessThan(COMMAND_TIMEOUT_MS + MARGIN_MS);
      reasons.push(r.value!.dynamicMetadata!.fields['meshlimit.degraded']!.stringValue!);
    }
    // backend_error until the breaker opens on the lost connection (one request, at most two),
    // then circuit_open for every later one.
    const failed = reasons.indexOf('circuit_open');
    expect(failed === 1 || failed === 2, reasons.join(',')).toBe(true);
    expect(reasons.slice(0, failed)).toEqual(Array(failed).fill('backend_error'));
    expect(reasons.slice(failed)).toEqual(Array(20 - failed).fill('circuit_open'));
    expect(await metricValue(s.httpUrl, 'meshlimit_degraded_answers_total{outcome="backend_error"}')).toBe(failed);
    expect(await metricValue(s.httpUrl, 'meshlimit_degraded_answers_total{outcome="circuit_open"}')).toBe(20 - failed);
    // allow keeps the pod in rotation: the answer is still useful.
    expect(await s.client.checkHealth()).toBe('SERVING');
  });
});

describe('FAILURE_POLICY=local', () => {
  it('keeps enforcing in-process at the limit divided by the replica count', async () => {
    svc = await boot({ FAILURE_POLICY: 'local', LOCAL_FALLBACK_REPLICAS: '2' });
    const s = svc;
    await redis!.kill();
    const codes = [];
    for (let i = 0; i < 8; i++) {
      const r = await ask(s.client, 'faults', 'local');
      expect(r.dynamicMetadata!.fields['meshlimit.degraded']!.stringValue).toBe('local_fallback');
      codes.push(r.overallCode);
    }
    // 10 per hour over 2 replicas: this replica admits ceil(10 / 2) = 5.
    expect(codes).toEqual(['OK', 'OK', 'OK', 'OK', 'OK', 'OVER_LIMIT', 'OVER_LIMIT', 'OVER_LIMIT']);
    expect(await metricValue(s.httpUrl, 'meshlimit_degraded_answers_total{outcome="local_fallback"}')).toBe(8);
  });
});

describe('non-transient backend errors are never masked', () => {
  it('a key of the wrong type answers INTERNAL under every policy and does not trip the breaker', async () => {
    svc = await boot({ FAILURE_POLICY: 'allow' });
    const s = svc;
    expect((await ask(s.client, 'faults', 'typed')).dynamicMetadata).toBeNull(); // a real, Redis-backed answer
    const client = redis!.client();
    const keys = await client.keys('*');
    expect(keys).toHaveLength(1);
    await client.del(keys[0]!);
    await client.lpush(keys[0]!, 'x'); // WRONGTYPE for GET
    for (let i = 0; i < 12; i++) expect((await timed(ask(s.client, 'faults', 'typed'))).error?.code).toBe(13);
    expect(await metricValue(s.httpUrl, 'meshlimit_breaker_state{state="closed"}')).toBe(1);
    expect(await metricValue(s.httpUrl, 'meshlimit_backend_errors_total{outcome="permanent"}')).toBe(12);
  });
});
