import { describe, expect, it } from 'vitest';
import { MemoryBackend } from '../../../src/backend/memory.js';
import { compileConfig } from '../../../src/config/compile.js';
import type { CompiledSnapshot } from '../../../src/config/compiled.js';
import { ConfigStore } from '../../../src/config/store.js';
import { RateLimiter, type LimiterOptions } from '../../../src/limiter/limiter.js';
import type { Decision, RateLimitCheck, RequestDescriptor } from '../../../src/limiter/types.js';
import { mergeMetadata } from '../../../src/limiter/verdict.js';

/**
 * envoyproxy/ratelimit's answer semantics, on the memory backend with a fixed clock:
 * quota_mode / QUOTA_MODE (src/service/ratelimit.go shouldRateLimitWorker, the cases of
 * test/service/ratelimit_test.go), global SHADOW_MODE against rule shadow_mode
 * (base_limiter.go rewrites only a shadow-mode rule's status), descriptors without entries,
 * and the merged descriptor metadata of RESPONSE_DYNAMIC_METADATA.
 */

const T0 = 1_700_000_040_000; // a minute boundary

const CONFIG = `
domain: d
descriptors:
  - key: regular
    rate_limit: { unit: minute, requests_per_unit: 1 }
    metadata: { name: regular }
  - key: quota1
    quota_mode: true
    rate_limit: { unit: minute, requests_per_unit: 1 }
    metadata: { service_with_quota: { name: q1 }, only_q1: true }
  - key: quota2
    quota_mode: true
    rate_limit: { unit: minute, requests_per_unit: 2 }
    metadata: { service_with_quota: { name: q2, extra: [1, two, null] }, only_q2: 2.5 }
  - key: soft_quota
    quota_mode: true
    shadow_mode: true
    rate_limit: { unit: minute, requests_per_unit: 1 }
  - key: shadow
    shadow_mode: true
    rate_limit: { unit: minute, requests_per_unit: 1 }
    metadata: { name: shadow }
  - key: free
    rate_limit: { unlimited: true }
    metadata: { name: free }
  - key: named
    rate_limit: { unit: minute, requests_per_unit: 5, name: base }
    metadata: { name: named }
  - key: replacer
    rate_limit: { unit: minute, requests_per_unit: 5, replaces: [{ name: base }] }
`;

function limiter(options: Partial<LimiterOptions> = {}): RateLimiter {
  const store = new ConfigStore<CompiledSnapshot>(compileConfig([{ path: 'd.yaml', text: CONFIG }]));
  const backend = new MemoryBackend({ clock: () => T0 });
  return new RateLimiter(store, backend, { keyPrefix: '', shadowMode: false, chargeOnDeny: false, now: () => T0, ...options });
}

const desc = (key: string, hitsAddend?: number): RequestDescriptor => ({ entries: [{ key, value: 'v' }], hitsAddend });
const check = (...descriptors: RequestDescriptor[]): RateLimitCheck => ({ domain: 'd', hitsAddend: 0, descriptors });
const ask = (l: RateLimiter, ...descriptors: RequestDescriptor[]): Decision => l.decide(check(...descriptors)) as Decision;
/** `OVERALL status,status,...` */
const codes = (d: Decision): string => `${d.code} ${d.statuses.map((s) => s.code).join(',')}`;

describe('quota_mode (upstream semantics)', () => {
  it('only quota descriptors: OK while one is left, with each exhausted one reporting OVER_LIMIT; OVER_LIMIT once all are', () => {
    const l = limiter();
    expect(codes(ask(l, desc('quota1'), desc('quota2')))).toBe('OK OK,OK'); // q1 1/1, q2 1/2
    expect(codes(ask(l, desc('quota1'), desc('quota2')))).toBe('OK OVER_LIMIT,OK'); // q1 over, q2 2/2
    expect(codes(ask(l, desc('quota1'), desc('quota2')))).toBe('OVER_LIMIT OVER_LIMIT,OVER_LIMIT');
  });

  it('with a normal descriptor: a normal one over denies, quota ones over deny only when all of them are', () => {
    const l = limiter();
    expect(codes(ask(l, desc('regular', 0), desc('quota1')))).toBe('OK OK,OK'); // q1 charged: 1/1
    expect(codes(ask(l, desc('regular', 0), desc('quota1')))).toBe('OVER_LIMIT OK,OVER_LIMIT'); // every quota over
    expect(codes(ask(l, desc('regular', 0), desc('quota1'), desc('quota2', 0)))).toBe('OK OK,OVER_LIMIT,OK'); // q2 left
    expect(codes(ask(l, desc('regular'), desc('quota2', 0)))).toBe('OK OK,OK'); // regular 1/1
    expect(codes(ask(l, desc('regular'), desc('quota2', 0)))).toBe('OVER_LIMIT OVER_LIMIT,OK'); // a normal one over
  });

  it('a quota rule that is also shadow_mode reports OK when over, so it keeps the request from being all-quota-exhausted', () => {
    const l = limiter();
    expect(codes(ask(l, desc('soft_quota'), desc('quota1')))).toBe('OK OK,OK');
    const d = ask(l, desc('soft_quota'), desc('quota1'));
    expect(codes(d)).toBe('OK OK,OVER_LIMIT');
    expect(d.statuses[0]).toMatchObject({ shadowed: true });
  });

  it('a request with a quota descriptor is charged as upstream charges, past the limit too (the token-quota flow)', () => {
    // examples/envoy/proxy.yaml /tokenquota: a check with hits_addend 0 on the request path, the
    // consumption (hits_addend 1) on the response path. quota2 is 2 per minute; upstream's
    // integration-test/scripts/token-quota.sh admits 3 requests and rejects the 4th.
    const l = limiter();
    const served: string[] = [];
    for (let i = 0; i < 4; i++) {
      const request = ask(l, desc('quota2', 0));
      served.push(request.code);
      if (request.code === 'OK') ask(l, desc('quota2', 1)); // apply_on_stream_done
    }
    expect(served).toEqual(['OK', 'OK', 'OK', 'OVER_LIMIT']);
  });

  it('QUOTA_MODE makes every descriptor but unlimited ones a quota descriptor; one without a rule is never exhausted', () => {
    const l = limiter({ quotaMode: true });
    expect(codes(ask(l, desc('regular'), desc('named')))).toBe('OK OK,OK');
    expect(codes(ask(l, desc('regular'), desc('named')))).toBe('OK OVER_LIMIT,OK');
    expect(codes(ask(l, desc('regular'), desc('free')))).toBe('OVER_LIMIT OVER_LIMIT,OK');
    expect(codes(ask(l, desc('regular'), desc('nothing_matches')))).toBe('OK OVER_LIMIT,OK');
  });
});

describe('shadow mode (upstream semantics)', () => {
  it('SHADOW_MODE: the overall code is OK, statuses keep OVER_LIMIT (marked shadowed)', () => {
    const l = limiter({ shadowMode: true });
    expect(codes(ask(l, desc('regular'), desc('named')))).toBe('OK OK,OK');
    const d = ask(l, desc('regular'), desc('named'));
    expect(codes(d)).toBe('OK OVER_LIMIT,OK');
    expect(d.statuses[0]).toMatchObject({ shadowed: true, remaining: 0 });
    expect(d.statuses[1]).toMatchObject({ shadowed: false });
  });

  it('SHADOW_MODE over quota descriptors: OK overall even when every quota is exhausted', () => {
    const l = limiter({ shadowMode: true });
    ask(l, desc('quota1'));
    expect(codes(ask(l, desc('quota1')))).toBe('OK OVER_LIMIT');
  });

  it('a shadow_mode rule: its status becomes OK when over (upstream rewrites it), the request passes', () => {
    const l = limiter();
    ask(l, desc('shadow'));
    const d = ask(l, desc('shadow'), desc('regular'));
    expect(codes(d)).toBe('OK OK,OK');
    expect(d.statuses[0]).toMatchObject({ shadowed: true, remaining: 0 });
  });
});

describe('descriptors without entries', () => {
  it('are answered OK without a limit, as upstream answers them', () => {
    const d = ask(limiter(), { entries: [] }, desc('regular'));
    expect(codes(d)).toBe('OK OK,OK');
    expect(d.statuses[0]).toEqual({ code: 'OK', remaining: 0, resetMs: 0, shadowed: false, unlimited: false });
  });

  it('still take a limit override from Envoy, as upstream does', () => {
    const l = limiter();
    const over: RequestDescriptor = { entries: [], limitOverride: { requestsPerUnit: 1, unit: 'minute' } };
    expect(codes(ask(l, over))).toBe('OK OK');
    expect(codes(ask(l, over))).toBe('OVER_LIMIT OVER_LIMIT');
  });
});

describe('descriptor metadata for RESPONSE_DYNAMIC_METADATA', () => {
  it('is merged over the descriptors that passed, in request order, the first value of a key winning and structs merged', () => {
    const l = limiter({ responseDynamicMetadata: true });
    const d = ask(l, desc('quota2', 0), desc('quota1', 0), desc('regular', 0));
    expect(d.metadata).toEqual({
      service_with_quota: { name: 'q2', extra: [1, 'two', null] },
      only_q2: 2.5,
      only_q1: true,
      name: 'regular',
    });
    expect(d.request).toEqual(check(desc('quota2', 0), desc('quota1', 0), desc('regular', 0)));
  });

  it('leaves out descriptors over their limit (global shadow included), unlimited ones and replaced limits; keeps shadow_mode rules', () => {
    const l = limiter({ responseDynamicMetadata: true, shadowMode: true });
    ask(l, desc('quota1'));
    ask(l, desc('quota1')); // charged past its limit (a quota request is charged as upstream charges): 2/1
    ask(l, desc('shadow'));
    const d = ask(l, desc('quota1', 0), desc('free'), desc('named'), desc('replacer'), desc('shadow'));
    expect(d.statuses.map((s) => s.code)).toEqual(['OVER_LIMIT', 'OK', 'OK', 'OK', 'OK']);
    expect(d.metadata).toEqual({ name: 'shadow' });
  });

  it('is absent when the setting is off, and when no passed descriptor has any', () => {
    expect(ask(limiter(), desc('quota1')).metadata).toBeUndefined();
    expect(ask(limiter(), desc('quota1')).request).toBeUndefined();
    const d = ask(limiter({ responseDynamicMetadata: true }), desc('free'));
    expect(d.metadata).toBeUndefined();
    expect(d.request).toBeDefined();
  });

  it('merging never changes the config it reads (upstream merges into the struct it took from the config)', () => {
    const a = Object.freeze({ svc: Object.freeze({ name: 'a' }) });
    const b = Object.freeze({ svc: Object.freeze({ id: 'b' }), __proto__x: 1 });
    const proto = JSON.parse('{"__proto__": {"polluted": true}}') as Record<string, never>;
    expect(mergeMetadata(a, b)).toEqual({ svc: { name: 'a', id: 'b' }, __proto__x: 1 });
    expect(a).toEqual({ svc: { name: 'a' } });
    const merged = mergeMetadata(Object.create(null) as Record<string, never>, proto);
    expect(Object.keys(merged)).toEqual(['__proto__']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});
