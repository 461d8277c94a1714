import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RlsDescriptorInput } from '../../src/client/rls-client.js';
import { stateText } from '../../src/limiter/algorithms/state-bytes.js';
import { readState } from '../integration/backend/conformance.js';
import { redisCommand } from '../support/redis-admin.js';
import { startRedis, type RedisInstance } from '../support/redis.js';
import { bootService, metricValue, type BootedService } from '../support/service.js';

/**
 * REDIS_PERSECOND through the service: per-second limits counted in their own Redis, every other
 * limit in the main one, with envoyproxy/ratelimit's variables; a request spanning both Redis
 * denied by either charges neither; a dead per-second Redis is handled by its own breaker and
 * the domain's failure policy while the main Redis keeps enforcing exactly. The clock is fixed
 * (Unix ms passed to the scripts), so windows never roll over mid-test.
 */

const T0 = 1_700_000_040_000; // minute-aligned
const LIMITS = `
  - key: client
    rate_limits:
      - { unit: second, requests_per_unit: 2 }
      - { unit: minute, requests_per_unit: 100 }
  - key: window30
    rate_limit: { unit: second, unit_multiplier: 30, requests_per_unit: 50 }
  - key: tight
    rate_limit: { unit: minute, requests_per_unit: 1 }
`;
const FILES = {
  'ps.yaml': `domain: ps\ndescriptors:${LIMITS}`,
  'lenient.yaml': `domain: lenient\nfailure_mode: allow\ndescriptors:${LIMITS}`,
};

let main: RedisInstance;
let perSecond: RedisInstance;
let svc: BootedService;
let now = T0;
const admin = new Map<RedisInstance, Redis>();

beforeAll(async () => {
  [main, perSecond] = await Promise.all([startRedis(), startRedis()]);
  for (const r of [main, perSecond]) admin.set(r, r.client());
  svc = await bootService({
    env: {
      BACKEND_TYPE: 'redis',
      REDIS_URL: `127.0.0.1:${main.port}`,
      REDIS_PERSECOND: 'true',
      REDIS_PERSECOND_URL: `redis://127.0.0.1:${perSecond.port}`,
      BREAKER_OPEN_MS: '60000',
    },
    files: FILES,
    now: () => now,
  });
}, 60_000);

afterAll(async () => {
  await svc?.close();
  for (const c of admin.values()) c.disconnect();
  await Promise.allSettled([main?.stop(), perSecond?.stop()]);
});

const d = (key: string, value: string): RlsDescriptorInput => ({ entries: [{ key, value }] });
const ask = (domain: string, ...descriptors: RlsDescriptorInput[]) => svc.client.shouldRateLimit({ domain, descriptors });
const keys = async (r: RedisInstance): Promise<string[]> => ((await redisCommand(r.port, ['KEYS', '*'])) as string[]).sort();
/** The stored states of the counters in `r` whose key ends with `suffix` (identity: algorithm:unit:multiplier), sorted. */
async function states(r: RedisInstance, suffix: string): Promise<string[]> {
  const found = (await keys(r)).filter((k) => k.endsWith(suffix));
  return (await Promise.all(found.map(async (k) => String(stateText(await readState(admin.get(r)!, k)))))).sort();
}
const flush = (): Promise<unknown> => Promise.all([main, perSecond].map((r) => redisCommand(r.port, ['FLUSHALL'])));

describe('REDIS_PERSECOND', () => {
  it("puts a per-second limit's counter in the per-second Redis and the others in the main one", async () => {
    now = T0 + 100;
    const r = await ask('ps', d('client', 'a'), d('window30', 'a'));
    expect(r.overallCode).toBe('OK');
    const inPerSecond = await keys(perSecond);
    const inMain = await keys(main);
    expect(inPerSecond).toHaveLength(1);
    expect(inPerSecond[0]).toMatch(/:fw:second:1$/);
    // The minute limit of the same descriptor, and a 30-second custom window, are not per-second limits.
    expect(inMain).toHaveLength(2);
    expect(inMain.filter((k) => k.endsWith(':fw:minute:1'))).toHaveLength(1);
    expect(inMain.filter((k) => k.endsWith(':fw:second:30'))).toHaveLength(1);
    await flush();
  });

  it('a request denied by the per-second Redis charges nothing in the main one', async () => {
    now = T0 + 1_100;
    expect((await ask('ps', d('client', 'b'))).overallCode).toBe('OK');
    expect((await ask('ps', d('client', 'b'))).overallCode).toBe('OK');
    const denied = await ask('ps', d('client', 'b'));
    expect(denied.overallCode).toBe('OVER_LIMIT');
    expect(denied.statuses[0]!.currentLimit?.unit).toBe('SECOND');
    expect(await states(main, ':fw:minute:1')).toEqual([`F ${T0}:2`]);
    expect(await states(perSecond, ':fw:second:1')).toEqual([`F ${T0 + 1_000}:2`]);
    // The next second admits again, and the minute count goes on from 2.
    now = T0 + 2_100;
    expect((await ask('ps', d('client', 'b'))).overallCode).toBe('OK');
    expect(await states(main, ':fw:minute:1')).toEqual([`F ${T0}:3`]);
    await flush();
  });

  it('a request denied by the main Redis charges nothing in the per-second one (its share is refunded)', async () => {
    now = T0 + 3_100;
    expect((await ask('ps', d('client', 'c'), d('tight', 'c'))).overallCode).toBe('OK');
    const denied = await ask('ps', d('client', 'c'), d('tight', 'c'));
    expect(denied.overallCode).toBe('OVER_LIMIT');
    expect(denied.statuses.map((s) => s.code)).toEqual(['OK', 'OVER_LIMIT']);
    // Charged by the first request only: the refund gave the second one's hit back.
    expect(await states(perSecond, ':fw:second:1')).toEqual([`F ${T0 + 3_000}:1`]);
    // client=c's minute counter and tight=c's, each charged once (the denial was atomic in the main Redis).
    expect(await states(main, ':fw:minute:1')).toEqual([`F ${T0}:1`, `F ${T0}:1`]);
    await flush();
  });

  it('a dead per-second Redis: its own breaker opens; deny domains answer UNAVAILABLE when they need it, allow domains answer degraded; the main Redis keeps enforcing', async () => {
    now = T0 + 4_100;
    await perSecond.kill();
    // Needs the per-second Redis, under the default policy (deny): UNAVAILABLE, nothing charged in the main Redis.
    await expect(ask('ps', d('client', 'd'))).rejects.toMatchObject({ code: 14 });
    // The main Redis's share was charged and given back.
    expect(await states(main, ':fw:minute:1')).toEqual([`F ${T0}:0`]);
    expect(await metricValue(svc.httpUrl, 'meshlimit_breaker_state{state="open"}')).toBe(1);
    // Needs only the main Redis: exact, not degraded.
    const mainOnly = await ask('ps', d('tight', 'd'));
    expect(mainOnly.overallCode).toBe('OK');
    expect(mainOnly.dynamicMetadata?.fields['meshlimit.degraded']).toBeUndefined();
    expect((await ask('ps', d('tight', 'd'))).overallCode).toBe('OVER_LIMIT');
    // failure_mode: allow: the per-second share is answered degraded, the minute share still counted exactly.
    const lenient = await ask('lenient', d('client', 'e'), d('tight', 'e'));
    expect(lenient.overallCode).toBe('OK');
    expect(lenient.dynamicMetadata?.fields['meshlimit.degraded']?.stringValue).toBe('circuit_open');
    const over = await ask('lenient', d('client', 'e'), d('tight', 'e'));
    expect(over.overallCode).toBe('OVER_LIMIT');
    expect(over.statuses.map((s) => s.code)).toEqual(['OK', 'OVER_LIMIT']);
  });
});
