import { describe, expect, it } from 'vitest';
import { AdmissionBackend } from '../../../src/backend/resilience/admission.js';
import { FailurePolicyBackend } from '../../../src/backend/resilience/failure-policy.js';
import { OverloadedError } from '../../../src/errors.js';
import { OK_RESULT, ReferenceBackend, ScriptedBackend, flush, op } from './fakes.js';

const OPTIONS = { chargeOnDeny: false } as const;

function gate(maxOutstanding: number, delayMs = 0, maxEventLoopDelayMs = 0) {
  const inner = new ScriptedBackend().hold();
  const admission = new AdmissionBackend(inner, { maxOutstanding, maxEventLoopDelayMs, eventLoopDelay: { recentMaxMs: () => delayMs } });
  return { inner, admission };
}

describe('AdmissionBackend', () => {
  it('admits up to maxOutstanding waiting requests and sheds the next one without calling the store', async () => {
    const { inner, admission } = gate(3);
    const admitted = [admission.evaluate([op()], OPTIONS), admission.evaluate([op()], OPTIONS), admission.evaluate([op()], OPTIONS)];
    const shed = await admission.evaluate([op()], OPTIONS).catch((e: unknown) => e);
    expect(shed).toBeInstanceOf(OverloadedError);
    expect(shed).toMatchObject({ code: 'ML_ERR_OVERLOADED', transient: true, grpcStatus: 14, reason: 'overloaded' });
    expect((shed as Error).message).toMatch(
      /^overloaded: request shed before reaching Redis, nothing charged \(3 requests already wait on the counter store, ADMISSION_MAX_OUTSTANDING=3\)$/,
    );
    expect(inner.calls).toBe(3);
    expect(admission.inFlight).toBe(3);
    // One settles (even by failing): a place frees up.
    inner.held[0]!.resolve(OK_RESULT);
    inner.held[1]!.reject(new Error('x'));
    await Promise.allSettled(admitted.slice(0, 2));
    await flush();
    expect(admission.inFlight).toBe(1);
    void admission.evaluate([op()], OPTIONS);
    expect(inner.calls).toBe(4);
  });

  it('sheds while the event loop lags beyond the bound, and not otherwise', async () => {
    const lagging = gate(0, 150, 100);
    await expect(lagging.admission.evaluate([op()], OPTIONS)).rejects.toThrow(
      /event-loop delay 150 ms, ADMISSION_MAX_EVENT_LOOP_DELAY_MS=100\)$/,
    );
    expect(lagging.inner.calls).toBe(0);
    const fine = gate(0, 99, 100);
    void fine.admission.evaluate([op()], OPTIONS);
    expect(fine.inner.calls).toBe(1);
  });

  it('0 disables each bound', () => {
    const { inner, admission } = gate(0, 10_000, 0);
    for (let i = 0; i < 5_000; i++) void admission.evaluate([op()], OPTIONS);
    expect(inner.calls).toBe(5_000);
  });

  it('a shed answered by the allow policy is OK, degraded "overloaded", and counted as such', async () => {
    const { admission } = gate(1);
    const degraded: string[] = [];
    const kinds: string[] = [];
    const policy = new FailurePolicyBackend(
      admission,
      { policy: 'allow', localFallback: new ReferenceBackend(), replicaCount: 1 },
      { onDegraded: (r) => degraded.push(r), onError: (k) => kinds.push(k) },
    );
    void policy.evaluate([op()], OPTIONS); // takes the one place
    await expect(policy.evaluate([op()], OPTIONS)).resolves.toMatchObject({ denied: false, degraded: 'overloaded' });
    expect(degraded).toEqual(['overloaded']);
    expect(kinds).toEqual(['overloaded']);
  });
});
