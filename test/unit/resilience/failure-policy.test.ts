import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BackendError, BackendUnavailableError, CancelledError } from '../../../src/errors.js';
import type { DegradedReason } from '../../../src/limiter/types.js';
import { CircuitBreakerBackend, CircuitOpenError } from '../../../src/backend/resilience/circuit-breaker.js';
import {
  FailurePolicyBackend,
  type BackendErrorKind,
  type FailurePolicy,
  type FailurePolicyOptions,
} from '../../../src/backend/resilience/failure-policy.js';
import { perReplicaShare, scaleOpsForReplicas } from '../../../src/backend/resilience/local-limits.js';
import { MemoryBackend } from '../../../src/backend/memory.js';
import { ManualClock, ReferenceBackend, ScriptedBackend, op } from './fakes.js';

const OPTIONS = { chargeOnDeny: false, now: 1_700_000_000_000 } as const;

function setup(overrides: Partial<FailurePolicyOptions> = {}) {
  const inner = new ScriptedBackend();
  const local = new ReferenceBackend();
  const degraded: Array<[DegradedReason, FailurePolicy]> = [];
  const errors: BackendErrorKind[] = [];
  const backend = new FailurePolicyBackend(
    inner,
    { policy: 'deny', localFallback: local, replicaCount: 1, ...overrides },
    { onDegraded: (reason, policy) => degraded.push([reason, policy]), onError: (kind) => errors.push(kind) },
  );
  return { inner, local, degraded, errors, backend };
}

const ops = [
  op({ key: 'a', threshold: 10, burst: 10 }),
  op({ key: 'b', algorithm: 'token_bucket', threshold: 5, burst: 20, hits: 2 }),
  op({ key: 'c', algorithm: 'sliding_window', threshold: 3, burst: 3, enforce: false }),
];

describe('FailurePolicyBackend, happy path', () => {
  it.each(['deny', 'allow', 'local'] as const)('%s: returns the inner result object untouched, no degraded, no hooks', async (policy) => {
    const s = setup({ policy });
    const result = { denied: true, outcomes: [{ overLimit: true, remaining: 0, resetMs: 1 }] };
    s.inner.succeed(result);
    const got = await s.backend.evaluate(ops, OPTIONS);
    expect(got).toBe(result);
    expect(got.degraded).toBeUndefined();
    expect(s.inner.received).toEqual([{ ops, options: OPTIONS }]);
    expect(s.local.received).toEqual([]);
    expect(s.degraded).toEqual([]);
    expect(s.errors).toEqual([]);
  });
});

describe('FailurePolicyBackend, a cancelled request', () => {
  it.each(['deny', 'allow', 'local'] as const)(
    '%s: passes CancelledError through: no answer, no error counted, no local evaluation',
    async (policy) => {
      const s = setup({ policy });
      const err = new CancelledError('caller gone');
      s.inner.fail(err);
      await expect(s.backend.evaluate(ops, OPTIONS)).rejects.toBe(err);
      expect(s.errors).toEqual([]);
      expect(s.degraded).toEqual([]);
      expect(s.local.received).toEqual([]);
    },
  );

  it('is invisible to the circuit breaker: a hundred of them do not open it', async () => {
    const inner = new ScriptedBackend().fail(new CancelledError('caller gone'));
    const breaker = new CircuitBreakerBackend(inner, {
      failureThreshold: 1,
      silenceMs: 250,
      openMs: 1000,
      halfOpenProbes: 1,
    });
    for (let i = 0; i < 100; i++) await expect(breaker.evaluate(ops, OPTIONS)).rejects.toBeInstanceOf(CancelledError);
    expect(breaker.state()).toBe('closed');
  });
});

describe('FailurePolicyBackend, transient failures', () => {
  it('deny: rethrows the same transient error', async () => {
    const s = setup({ policy: 'deny' });
    const err = new BackendUnavailableError('ETIMEDOUT');
    s.inner.fail(err);
    await expect(s.backend.evaluate(ops, OPTIONS)).rejects.toBe(err);
    expect(s.errors).toEqual(['transient']);
    expect(s.degraded).toEqual([]);
    expect(s.local.received).toEqual([]);
  });

  it('deny: rethrows an open circuit as is (UNAVAILABLE, reason circuit_open)', async () => {
    const s = setup({ policy: 'deny' });
    const err = new CircuitOpenError();
    s.inner.fail(err);
    await expect(s.backend.evaluate(ops, OPTIONS)).rejects.toBe(err);
    expect(s.errors).toEqual(['circuit_open']);
  });

  it('allow: every op allowed with its full quota, degraded backend_error', async () => {
    const s = setup({ policy: 'allow' });
    s.inner.fail(new BackendUnavailableError('ECONNRESET'));
    await expect(s.backend.evaluate(ops, OPTIONS)).resolves.toEqual({
      denied: false,
      outcomes: [
        { overLimit: false, remaining: 10, resetMs: 0 },
        { overLimit: false, remaining: 20, resetMs: 0 }, // token bucket: full bucket = burst
        { overLimit: false, remaining: 3, resetMs: 0 },
      ],
      degraded: 'backend_error',
    });
    expect(s.degraded).toEqual([['backend_error', 'allow']]);
    expect(s.errors).toEqual(['transient']);
  });

  it('allow: an open circuit is reported as circuit_open', async () => {
    const s = setup({ policy: 'allow' });
    s.inner.fail(new CircuitOpenError());
    const got = await s.backend.evaluate([op()], OPTIONS);
    expect(got).toEqual({ denied: false, outcomes: [{ overLimit: false, remaining: 10, resetMs: 0 }], degraded: 'circuit_open' });
    expect(s.degraded).toEqual([['circuit_open', 'allow']]);
    expect(s.errors).toEqual(['circuit_open']);
  });

  it('local: evaluates on the fallback with per-replica thresholds (ceil, at least 1), degraded local_fallback', async () => {
    const s = setup({ policy: 'local', replicaCount: 3 });
    s.inner.fail(new BackendUnavailableError('CLUSTERDOWN'));
    const limited = [op({ key: 'k', threshold: 10, burst: 10 })];
    const answers = [];
    for (let i = 0; i < 5; i++) answers.push(await s.backend.evaluate(limited, OPTIONS));
    // ceil(10 / 3) = 4 per replica in the window: 4 admitted, the 5th denied.
    expect(answers.map((a) => [a.denied, a.outcomes[0]!.remaining, a.degraded])).toEqual([
      [false, 3, 'local_fallback'],
      [false, 2, 'local_fallback'],
      [false, 1, 'local_fallback'],
      [false, 0, 'local_fallback'],
      [true, 0, 'local_fallback'],
    ]);
    expect(s.local.received[0]).toEqual([{ ...limited[0], threshold: 4, burst: 4 }]);
    expect(s.local.received[0]![0]).not.toBe(limited[0]); // the caller's op is not mutated
    expect(limited[0]!.threshold).toBe(10);
    expect(s.degraded).toEqual(Array.from({ length: 5 }, () => ['local_fallback', 'local']));
    // The options (chargeOnDeny, test clock) reach the fallback unchanged.
    expect(s.local.receivedOptions).toEqual(Array.from({ length: 5 }, () => OPTIONS));
    expect(s.errors).toEqual(['transient', 'transient', 'transient', 'transient', 'transient']);
  });

  it('local: divides threshold and burst of every op and keeps everything else', async () => {
    const s = setup({ policy: 'local', replicaCount: 4 });
    s.inner.fail(new CircuitOpenError());
    const got = await s.backend.evaluate(ops, OPTIONS);
    expect(s.local.received).toEqual([
      [
        { ...ops[0], threshold: 3, burst: 3 }, // ceil(10/4)
        { ...ops[1], threshold: 2, burst: 5 }, // ceil(5/4), ceil(20/4)
        { ...ops[2], threshold: 1, burst: 1 }, // ceil(3/4)
      ],
    ]);
    expect(got.degraded).toBe('local_fallback');
    expect(s.errors).toEqual(['circuit_open']);
  });

  it('local: with the real MemoryBackend as fallback, a token bucket gets its per-replica share', async () => {
    const memory = new MemoryBackend({ clock: () => OPTIONS.now, sweepIntervalMs: 0 });
    const inner = new ScriptedBackend().fail(new BackendUnavailableError('LOADING'));
    const b = new FailurePolicyBackend(inner, { policy: 'local', localFallback: memory, replicaCount: 4 });
    // 10 per minute, burst 10, over 4 replicas: ceil(10/4) = 3 tokens, refilled at 3 per minute here.
    const bucket = [op({ key: 'tb', algorithm: 'token_bucket', threshold: 10, burst: 10 })];
    const seen = [];
    for (let i = 0; i < 4; i++) {
      const r = await b.evaluate(bucket, OPTIONS);
      seen.push([r.denied, r.outcomes[0]!.remaining, r.degraded]);
    }
    expect(seen).toEqual([
      [false, 2, 'local_fallback'],
      [false, 1, 'local_fallback'],
      [false, 0, 'local_fallback'],
      [true, 0, 'local_fallback'],
    ]);
    // 20 s later one token (3 per 60 s) is back.
    const later = await b.evaluate(bucket, { ...OPTIONS, now: OPTIONS.now + 20_000 });
    expect([later.denied, later.outcomes[0]!.remaining]).toEqual([false, 0]);
    await b.close();
    expect(memory.isReady()).toBe(false);
  });

  it('local: an error of the fallback itself propagates and is not reported as a degraded answer', async () => {
    const inner = new ScriptedBackend().fail(new BackendUnavailableError('down'));
    const broken = new ScriptedBackend().fail(new TypeError('fallback bug'));
    const degraded: DegradedReason[] = [];
    const b = new FailurePolicyBackend(
      inner,
      { policy: 'local', localFallback: broken, replicaCount: 2 },
      { onDegraded: (r) => degraded.push(r) },
    );
    await expect(b.evaluate(ops, OPTIONS)).rejects.toThrow('fallback bug');
    expect(degraded).toEqual([]);
  });
});

describe('FailurePolicyBackend, non-transient errors are never masked', () => {
  it.each(['deny', 'allow', 'local'] as const)('%s: rethrows BackendError and foreign errors unchanged', async (policy) => {
    const s = setup({ policy, replicaCount: 2 });
    const bug = new BackendError('ERR wrong number of arguments');
    s.inner.fail(bug);
    await expect(s.backend.evaluate(ops, OPTIONS)).rejects.toBe(bug);
    const foreign = new RangeError('oops');
    s.inner.fail(foreign);
    await expect(s.backend.evaluate(ops, OPTIONS)).rejects.toBe(foreign);
    expect(s.local.received).toEqual([]);
    expect(s.degraded).toEqual([]);
    expect(s.errors).toEqual(['permanent', 'permanent']);
  });
});

describe('FailurePolicyBackend, choosing the policy', () => {
  it('applies the override of options.domain, else the default', async () => {
    const looked: string[] = [];
    const s = setup({
      policy: 'deny',
      replicaCount: 2,
      perDomain: (d) => {
        looked.push(d);
        return d === 'public' ? 'allow' : d === 'edge' ? 'local' : undefined;
      },
    });
    s.inner.succeed();
    await s.backend.evaluate(ops, { ...OPTIONS, domain: 'public' });
    expect(looked).toEqual([]); // no lookup on the happy path

    const err = new BackendUnavailableError('down');
    s.inner.fail(err);
    await expect(s.backend.evaluate([op()], { ...OPTIONS, domain: 'public' })).resolves.toMatchObject({
      denied: false,
      degraded: 'backend_error',
    });
    await expect(s.backend.evaluate([op()], { ...OPTIONS, domain: 'edge' })).resolves.toMatchObject({
      denied: false,
      degraded: 'local_fallback',
    });
    await expect(s.backend.evaluate([op()], { ...OPTIONS, domain: 'internal' })).rejects.toBe(err);
    await expect(s.backend.evaluate([op()], OPTIONS)).rejects.toBe(err); // no domain: default policy
    expect(looked).toEqual(['public', 'edge', 'internal']);
    expect(s.backend.policyFor('public')).toBe('allow');
    expect(s.backend.policyFor('other')).toBe('deny');
  });

  it('an override that is not a policy falls back to the default', async () => {
    const s = setup({ policy: 'allow', perDomain: () => 'permit' as FailurePolicy });
    s.inner.fail(new BackendUnavailableError('down'));
    expect(s.backend.policyFor('x')).toBe('allow');
    await expect(s.backend.evaluate([op()], { ...OPTIONS, domain: 'x' })).resolves.toMatchObject({ degraded: 'backend_error' });
  });
});

describe('FailurePolicyBackend, lifecycle and telemetry', () => {
  it('readiness follows the default policy', () => {
    for (const [policy, innerReady, localReady, expected] of [
      ['deny', true, true, true],
      ['deny', false, true, false],
      ['allow', false, false, true],
      ['local', false, true, true],
      ['local', true, false, true],
      ['local', false, false, false],
    ] as const) {
      const inner = new ScriptedBackend();
      inner.ready = innerReady;
      const local = new ScriptedBackend();
      local.ready = localReady;
      const b = new FailurePolicyBackend(inner, { policy, localFallback: local, replicaCount: 1 });
      expect([policy, innerReady, localReady, b.isReady()]).toEqual([policy, innerReady, localReady, expected]);
    }
  });

  it('close() closes both backends, and reports a failure after trying both', async () => {
    const inner = new ScriptedBackend();
    const local = new ScriptedBackend();
    inner.closeError = new Error('quit failed');
    const b = new FailurePolicyBackend(inner, { policy: 'local', localFallback: local, replicaCount: 1 });
    await expect(b.close()).rejects.toThrow('quit failed');
    expect([inner.closed, local.closed]).toEqual([1, 1]);
  });

  it('a throwing hook does not change the answer', async () => {
    const inner = new ScriptedBackend().fail(new BackendUnavailableError('down'));
    const b = new FailurePolicyBackend(
      inner,
      { policy: 'allow', localFallback: new ReferenceBackend(), replicaCount: 1 },
      {
        onDegraded: () => {
          throw new Error('telemetry');
        },
        onError: () => {
          throw new Error('telemetry');
        },
      },
    );
    await expect(b.evaluate([op()], OPTIONS)).resolves.toMatchObject({ denied: false, degraded: 'backend_error' });
  });

  it('rejects invalid options', () => {
    const inner = new ScriptedBackend();
    const localFallback = new ReferenceBackend();
    expect(() => new FailurePolicyBackend(inner, { policy: 'open' as FailurePolicy, localFallback, replicaCount: 1 })).toThrow(
      'policy must be one of deny, allow, local, got open',
    );
    expect(() => new FailurePolicyBackend(inner, { policy: 'deny', localFallback, replicaCount: 0 })).toThrow(
      'replicaCount must be an integer >= 1, got 0',
    );
    expect(() => new FailurePolicyBackend(inner, { policy: 'deny', localFallback, replicaCount: 2.5 })).toThrow(
      'replicaCount must be an integer >= 1, got 2.5',
    );
  });
});

describe('per-replica share', () => {
  it('rounds up, keeps at least 1, and keeps 0 (deny everything) at 0', () => {
    expect([perReplicaShare(10, 3), perReplicaShare(9, 3), perReplicaShare(1, 5), perReplicaShare(7, 1), perReplicaShare(0, 5)]).toEqual([
      4, 3, 1, 7, 0,
    ]);
  });

  it('fleet-wide it admits at least the limit and fewer than limit + replicas', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1_000_000 }), fc.integer({ min: 1, max: 500 }), (value, replicas) => {
        const fleet = perReplicaShare(value, replicas) * replicas;
        return fleet >= value && fleet < value + replicas;
      }),
    );
  });

  it('returns the same array with one replica', () => {
    expect(scaleOpsForReplicas(ops, 1)).toBe(ops);
  });
});

describe('FailurePolicyBackend around CircuitBreakerBackend', () => {
  it('allow: backend_error until the breaker opens, then circuit_open without calling the backend, then recovery', async () => {
    const clock = new ManualClock(0);
    const redis = new ScriptedBackend().fail(new BackendUnavailableError('ECONNREFUSED'));
    const states: string[] = [];
    const breaker = new CircuitBreakerBackend(
      redis,
      { failureThreshold: 3, silenceMs: 250, openMs: 1_000, halfOpenProbes: 1, clock: clock.now },
      { onStateChange: (from, to) => states.push(`${from}->${to}`) },
    );
    const b = new FailurePolicyBackend(breaker, { policy: 'allow', localFallback: new ReferenceBackend(), replicaCount: 1 });
    const reasons = [];
    for (let i = 0; i < 6; i++) reasons.push((await b.evaluate([op()], OPTIONS)).degraded);
    expect(reasons).toEqual(['backend_error', 'backend_error', 'backend_error', 'circuit_open', 'circuit_open', 'circuit_open']);
    expect(redis.calls).toBe(3);
    clock.advance(1_000);
    redis.succeed();
    expect((await b.evaluate([op()], OPTIONS)).degraded).toBeUndefined();
    expect(redis.calls).toBe(4);
    expect(states).toEqual(['closed->open', 'open->half_open', 'half_open->closed']);
  });
});
