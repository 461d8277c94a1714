import { describe, expect, it } from 'vitest';
import { MemoryBackend } from '../../../src/backend/memory.js';
import { CircuitBreakerBackend } from '../../../src/backend/resilience/circuit-breaker.js';
import { FailurePolicyBackend } from '../../../src/backend/resilience/failure-policy.js';
import { compileConfig } from '../../../src/config/compile.js';
import type { CompiledSnapshot } from '../../../src/config/compiled.js';
import { ConfigStore } from '../../../src/config/store.js';
import { BackendUnavailableError, InvalidRequestError } from '../../../src/errors.js';
import { RateLimiter, type LimiterObserver } from '../../../src/limiter/limiter.js';
import type { Backend } from '../../../src/limiter/ports.js';
import type { RateLimitCheck } from '../../../src/limiter/types.js';
import { reserveCheck, settleCheck } from '../../support/reservations.js';
import { ScriptedBackend } from '../resilience/fakes.js';

/**
 * The limiter's reservation path (src/limiter/reservations.ts) on the memory backend: request
 * bounds, the counter key per tenant (never per request id or phase), hits_addend estimates,
 * cancellation when another descriptor denies, and the failure policy and breaker around it.
 */
const CONFIG = `domain: ai
descriptors:
  - key: tenant
    descriptors:
      - key: phase
        descriptors:
          - key: request_id
            rate_limit: { unit: minute, requests_per_unit: 1000 }
            reservation: { estimate: hits_addend, ttl_seconds: 30 }
  - key: route
    rate_limit: { unit: minute, requests_per_unit: 1 }
`;
const T0 = 1_700_000_040_000;

function make(backend: Backend = new MemoryBackend({ sweepIntervalMs: 0 })) {
  const events: string[] = [];
  const observer: LimiterObserver = { onStatus: () => {}, onReservation: (_d, rule, outcome) => events.push(`${rule}:${outcome}`) };
  const store = new ConfigStore<CompiledSnapshot>(compileConfig([{ path: 'ai.yaml', text: CONFIG }]));
  const limiter = new RateLimiter(
    store,
    backend,
    { keyPrefix: 'u:', shadowMode: false, chargeOnDeny: false, now: () => T0 + 1_000 },
    observer,
  );
  return { limiter, events };
}
const reserve = (tenant: string, id: string, estimate: number): RateLimitCheck => {
  const c = reserveCheck(tenant, id);
  return { ...c, descriptors: [{ ...c.descriptors[0]!, hitsAddend: estimate }] };
};
const RULE = 'ai.tenant.phase.request_id';

describe('reservation requests', () => {
  it('estimate hits_addend reserves the reserve call’s hits_addend; the counter is per tenant, not per id', async () => {
    const { limiter } = make();
    expect((await limiter.shouldRateLimit(reserve('t', 'a', 600))).code).toBe('OK');
    const second = await limiter.shouldRateLimit(reserve('t', 'b', 600));
    expect(second.code).toBe('OVER_LIMIT');
    expect(second.statuses[0]!.remaining).toBe(400);
    expect((await limiter.shouldRateLimit(reserve('other', 'b', 600))).code).toBe('OK');
    // The settle reaches the same counter although its phase entry differs.
    const settled = await limiter.shouldRateLimit(settleCheck('t', 'a', 100));
    expect(settled.code).toBe('OK');
    expect(settled.statuses[0]!.remaining).toBe(900);
  });

  it('rejects a correlation id longer than 128 characters, a missing one, and a phase other than reserve/settle', async () => {
    const { limiter } = make();
    expect((await limiter.shouldRateLimit(reserve('t', 'x'.repeat(128), 1))).code).toBe('OK');
    await expect(limiter.shouldRateLimit(reserve('t', 'x'.repeat(129), 1))).rejects.toThrow(
      new InvalidRequestError(
        "descriptors[0]: rule ai.tenant.phase.request_id needs a correlation entry 'request_id' of 1 to 128 characters, got 129",
      ),
    );
    const noId: RateLimitCheck = {
      domain: 'ai',
      hitsAddend: 0,
      descriptors: [
        {
          entries: [
            { key: 'tenant', value: 't' },
            { key: 'phase', value: 'reserve' },
            { key: 'request_id', value: '' },
          ],
        },
      ],
    };
    await expect(limiter.shouldRateLimit(noId)).rejects.toThrow(/needs a correlation entry 'request_id' of 1 to 128 characters, got 0/);
    const badPhase: RateLimitCheck = {
      domain: 'ai',
      hitsAddend: 0,
      descriptors: [
        {
          entries: [
            { key: 'tenant', value: 't' },
            { key: 'phase', value: 'commit' },
            { key: 'request_id', value: 'a' },
          ],
        },
      ],
    };
    await expect(limiter.shouldRateLimit(badPhase)).rejects.toThrow(/entry 'phase' must be 'reserve' or 'settle', got 'commit'/);
  });

  it("rejects a reserve or settle carrying more than 1,000,000,000 (Envoy's own hits_addend cap)", async () => {
    const { limiter } = make();
    expect((await limiter.shouldRateLimit(settleCheck('t', 'a', 1_000_000_000))).code).toBe('OK');
    await expect(limiter.shouldRateLimit(settleCheck('t', 'a', 1_000_000_001))).rejects.toThrow(
      new InvalidRequestError(
        'descriptors[0]: rule ai.tenant.phase.request_id is a reservation rule; its settle carries 1000000001 (hits_addend), at most 1000000000',
      ),
    );
    await expect(limiter.shouldRateLimit(reserve('t', 'b', 1_000_000_001))).rejects.toThrow(/its reserve carries 1000000001/);
  });

  it('a request another descriptor denies takes no reservation (it is cancelled at once)', async () => {
    const { limiter, events } = make();
    const withRoute = (id: string): RateLimitCheck => {
      const c = reserve('t', id, 1000);
      return { ...c, descriptors: [...c.descriptors, { entries: [{ key: 'route', value: '/chat' }] }] };
    };
    expect((await limiter.shouldRateLimit(withRoute('a'))).code).toBe('OK');
    await limiter.shouldRateLimit(settleCheck('t', 'a', 0));
    const denied = await limiter.shouldRateLimit(withRoute('b'));
    expect(denied.code).toBe('OVER_LIMIT');
    expect(denied.statuses.map((s) => s.code)).toEqual(['OK', 'OVER_LIMIT']);
    expect(events).toEqual([`${RULE}:taken`, `${RULE}:settled`, `${RULE}:taken`, `${RULE}:cancelled`]);
    // The whole budget is free again: the cancelled reservation holds nothing.
    expect((await limiter.shouldRateLimit(reserve('t', 'c', 1000))).code).toBe('OK');
  });

  it('the failure policy answers for an unavailable store (allow: OK, degraded, no reservation; deny: UNAVAILABLE)', async () => {
    const down = new ScriptedBackend().fail(new BackendUnavailableError('redis unavailable: connection refused'));
    const allow = new FailurePolicyBackend(down, { policy: 'allow', localFallback: new MemoryBackend(), replicaCount: 1 });
    const a = make(allow);
    const d = await a.limiter.shouldRateLimit(reserve('t', 'a', 10));
    expect(d.code).toBe('OK');
    expect(d.degraded).toBe('backend_error');
    expect(a.events).toEqual([`${RULE}:degraded`]);
    const deny = new FailurePolicyBackend(down, { policy: 'deny', localFallback: new MemoryBackend(), replicaCount: 1 });
    await expect(make(deny).limiter.shouldRateLimit(reserve('t', 'a', 10))).rejects.toThrow(BackendUnavailableError);
  });

  it('the breaker opens on failing reservation calls and then fails them fast (circuit_open)', async () => {
    const down = new ScriptedBackend().fail(new BackendUnavailableError('redis unavailable: connection refused'));
    const breaker = new CircuitBreakerBackend(down, { failureThreshold: 2, silenceMs: 1_000, openMs: 60_000, halfOpenProbes: 1 });
    const allow = new FailurePolicyBackend(breaker, { policy: 'allow', localFallback: new MemoryBackend(), replicaCount: 1 });
    const { limiter } = make(allow);
    for (const id of ['a', 'b']) expect((await limiter.shouldRateLimit(reserve('t', id, 1))).degraded).toBe('backend_error');
    const callsBefore = down.calls;
    expect((await limiter.shouldRateLimit(reserve('t', 'c', 1))).degraded).toBe('circuit_open');
    expect(down.calls).toBe(callsBefore);
  });

  it('explain and the admin API refuse a reservation descriptor with a clear error (their state is not an ordinary counter)', async () => {
    const { limiter } = make();
    const read = async () => ({ now: T0, values: [] });
    await expect(limiter.explain(reserve('t', 'a', 1), read)).rejects.toThrow(
      new InvalidRequestError(
        'explain does not cover reservation rules (ai.tenant.phase.request_id matched): their state is not an ordinary counter (README "Reservations")',
      ),
    );
    expect(() => limiter.counters(reserve('t', 'a', 1))).toThrow(/the admin API does not cover reservation rules/);
  });
});
