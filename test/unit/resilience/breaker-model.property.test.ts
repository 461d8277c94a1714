import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CircuitBreakerBackend,
  CircuitOpenError,
  type CircuitState,
  type StoreHealth,
} from '../../../src/backend/resilience/circuit-breaker.js';
import { FailurePolicyBackend } from '../../../src/backend/resilience/failure-policy.js';
import { BackendError, BackendUnavailableError } from '../../../src/errors.js';
import type { EvaluateResult, FailurePolicy } from '../../../src/limiter/types.js';
import { ManualClock, OK_RESULT, ReferenceBackend, ScriptedBackend, flush, op } from './fakes.js';

/**
 * The circuit breaker and the failure policy checked by model: fast-check drives the real
 * `FailurePolicyBackend(CircuitBreakerBackend(store))` with random sequences of call outcomes,
 * clock advances, changes of the store's health and bursts of concurrent calls (probes), and
 * after every step compares the state and each answer with a reference state machine written
 * from the contract (README "When Redis fails"), not from the code.
 *
 * Then the properties the contract promises, each on its own: it opens within silenceMs (plus
 * one call) of a sustained outage; it never opens while the store keeps replying, however many
 * requests a timed-out call carried (the old ratio breaker failed this one: 64 requests of one
 * timed-out batch opened it); half-open lets exactly the configured probes through.
 */

type Outcome = 'ok' | 'transient' | 'timeout' | 'permanent';
const OPTIONS = { chargeOnDeny: false, now: 1_700_000_000_000, domain: 'd' } as const;
const SILENCE_MS = 250;
const OPEN_MS = 1_000;

class Health implements StoreHealth {
  up = true;
  failures = 0;
  waitingSince: number | undefined = undefined;
  lost(): boolean {
    return !this.up;
  }
  consecutiveFailures(): number {
    return this.failures;
  }
  silentFor(now: number): number {
    return this.waitingSince === undefined ? 0 : now - this.waitingSince;
  }
}

/** The reference: the contract's state machine, over the same health readings. */
class Model {
  state: CircuitState = 'closed';
  openedAt = 0;
  probesAdmitted = 0;
  probesSucceeded = 0;
  failedInARow = 0;
  /** Transitions so far: a call's result counts only if none happened since it was admitted. */
  transitions = 0;
  constructor(
    readonly threshold: number,
    readonly probes: number,
    readonly health: Health | undefined,
  ) {}

  refresh(now: number): void {
    if (this.state === 'open' && now - this.openedAt >= OPEN_MS) this.go('half_open', now);
  }

  /** Whether a call now reaches the store. */
  admit(now: number): boolean {
    this.refresh(now);
    if (this.state === 'open') return false;
    if (this.state === 'half_open') {
      if (this.probesAdmitted >= this.probes) return false;
      this.probesAdmitted++;
    }
    return true;
  }

  /** An admitted call ended with `outcome` in the state it was admitted in. */
  settle(outcome: Outcome, now: number): void {
    if (outcome === 'ok') {
      if (this.state === 'closed') this.failedInARow = 0;
      else if (this.state === 'half_open' && ++this.probesSucceeded >= this.probes) this.go('closed', now);
    } else if (outcome === 'permanent') {
      if (this.state === 'half_open') this.probesAdmitted--;
    } else if (this.state === 'half_open') this.go('open', now);
    else if (this.state === 'closed' && this.outage(now)) this.go('open', now);
  }

  private outage(now: number): boolean {
    const h = this.health;
    if (h === undefined) return ++this.failedInARow >= this.threshold;
    return !h.up || h.silentFor(now) >= SILENCE_MS || h.failures >= this.threshold;
  }

  private go(to: CircuitState, now: number): void {
    this.state = to;
    this.transitions++;
    this.failedInARow = 0;
    if (to === 'open') this.openedAt = now;
    if (to === 'half_open') this.probesAdmitted = this.probesSucceeded = 0;
  }
}

/** What the policy must answer for a call that ended with `outcome` (`reached`: it got to the store). */
function expectedAnswer(policy: FailurePolicy, outcome: Outcome, reached: boolean): string {
  const failure = !reached ? 'circuit_open' : outcome === 'ok' ? undefined : outcome === 'permanent' ? 'permanent' : 'backend_error';
  if (failure === undefined) return 'ok';
  if (failure === 'permanent') return 'throws:ML_ERR_BACKEND';
  if (policy === 'deny') return failure === 'circuit_open' ? 'throws:circuit_open' : 'throws:ML_ERR_BACKEND_UNAVAILABLE';
  if (policy === 'allow') return `degraded:${failure}`;
  return 'degraded:local_fallback';
}

function describeAnswer(r: PromiseSettledResult<EvaluateResult>): string {
  if (r.status === 'rejected')
    return r.reason instanceof CircuitOpenError ? 'throws:circuit_open' : `throws:${(r.reason as { code?: string }).code}`;
  return r.value.degraded === undefined ? 'ok' : `degraded:${r.value.degraded}`;
}

const errorFor = (o: Exclude<Outcome, 'ok'>): Error =>
  o === 'permanent'
    ? new BackendError('ERR script error')
    : new BackendUnavailableError(o === 'timeout' ? 'redis unavailable: Command timed out' : 'redis unavailable: connect ECONNREFUSED');

interface Real {
  clock: ManualClock;
  store: ScriptedBackend;
  breaker: CircuitBreakerBackend;
  backend: FailurePolicyBackend;
  health: Health | undefined;
  policy: FailurePolicy;
}

type Cmd = fc.AsyncCommand<Model, Real>;

class CallCmd implements Cmd {
  constructor(readonly outcome: Outcome) {}
  check = (): boolean => true;
  async run(m: Model, r: Real): Promise<void> {
    const before = r.store.calls;
    const reached = m.admit(r.clock.t);
    if (this.outcome === 'ok') r.store.succeed(OK_RESULT);
    else r.store.fail(errorFor(this.outcome));
    const [answer] = await Promise.allSettled([r.backend.evaluate([op()], OPTIONS)]);
    expect(r.store.calls - before, 'reached the store').toBe(reached ? 1 : 0);
    if (reached) m.settle(this.outcome, r.clock.t);
    expect(describeAnswer(answer!)).toBe(expectedAnswer(r.policy, this.outcome, reached));
    expect(r.breaker.state()).toBe(m.state);
  }
  toString = (): string => `call(${this.outcome})`;
}

/** Several calls at once (in half-open: concurrent probes), settled in the given order. */
class BurstCmd implements Cmd {
  constructor(readonly outcomes: readonly Outcome[]) {}
  check = (): boolean => true;
  async run(m: Model, r: Real): Promise<void> {
    const now = r.clock.t;
    r.store.hold();
    const heldBefore = r.store.held.length;
    const admitted = this.outcomes.map(() => m.admit(now));
    const answers = this.outcomes.map(() => Promise.allSettled([r.backend.evaluate([op()], OPTIONS)]));
    const held = r.store.held.slice(heldBefore);
    expect(held.length, 'calls that reached the store').toBe(admitted.filter(Boolean).length);
    const generation = m.transitions;
    let k = 0;
    for (let i = 0; i < this.outcomes.length; i++) {
      if (!admitted[i]) continue;
      const o = this.outcomes[i]!;
      const h = held[k++]!;
      // A result counts only if the state has not changed since it was admitted (a later one describes an older store).
      if (m.transitions === generation) m.settle(o, now);
      if (o === 'ok') h.resolve(OK_RESULT);
      else h.reject(errorFor(o));
      await flush();
    }
    const results = await Promise.all(answers);
    for (let i = 0; i < this.outcomes.length; i++) {
      expect(describeAnswer(results[i]![0]!)).toBe(expectedAnswer(r.policy, this.outcomes[i]!, admitted[i]!));
    }
    expect(r.breaker.state()).toBe(m.state);
  }
  toString = (): string => `burst(${this.outcomes.join(',')})`;
}

class AdvanceCmd implements Cmd {
  constructor(readonly ms: number) {}
  check = (): boolean => true;
  async run(m: Model, r: Real): Promise<void> {
    r.clock.advance(this.ms);
    m.refresh(r.clock.t);
    expect(r.breaker.state()).toBe(m.state);
  }
  toString = (): string => `advance(${this.ms})`;
}

class HealthCmd implements Cmd {
  constructor(
    readonly up: boolean,
    readonly failures: number,
    readonly silentForMs: number | undefined,
  ) {}
  check = (m: Readonly<Model>): boolean => m.health !== undefined;
  async run(_m: Model, r: Real): Promise<void> {
    const h = r.health!;
    h.up = this.up;
    h.failures = this.failures;
    h.waitingSince = this.silentForMs === undefined ? undefined : r.clock.t - this.silentForMs;
  }
  toString = (): string => `health(up=${this.up},failures=${this.failures},silent=${this.silentForMs})`;
}

const outcomeArb = fc.constantFrom<Outcome>('ok', 'ok', 'transient', 'timeout', 'permanent');
const commands = fc.commands(
  [
    outcomeArb.map((o) => new CallCmd(o)),
    fc.array(outcomeArb, { minLength: 2, maxLength: 6 }).map((os) => new BurstCmd(os)),
    fc.constantFrom(1, 100, 249, 250, 999, 1_000, 5_000).map((ms) => new AdvanceCmd(ms)),
    fc
      .tuple(fc.boolean(), fc.nat(6), fc.option(fc.constantFrom(0, 100, 249, 250, 2_000), { nil: undefined }))
      .map(([up, f, s]) => new HealthCmd(up, f, s)),
  ],
  { maxCommands: 60 },
);

function setup(policy: FailurePolicy, threshold: number, probes: number, withHealth: boolean): { model: Model; real: Real } {
  const clock = new ManualClock(10_000);
  const store = new ScriptedBackend();
  const health = withHealth ? new Health() : undefined;
  const breaker = new CircuitBreakerBackend(store, {
    failureThreshold: threshold,
    silenceMs: SILENCE_MS,
    openMs: OPEN_MS,
    halfOpenProbes: probes,
    health,
    clock: clock.now,
  });
  const backend = new FailurePolicyBackend(breaker, { policy, localFallback: new ReferenceBackend(), replicaCount: 1 });
  return { model: new Model(threshold, probes, health), real: { clock, store, breaker, backend, health, policy } };
}

describe('circuit breaker + failure policy against the reference state machine', () => {
  it('every state and every answer match the model, for each policy, with and without store health', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom<FailurePolicy>('deny', 'allow', 'local'),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 3 }),
        fc.boolean(),
        commands,
        async (policy, threshold, probes, withHealth, cmds) => {
          const { model, real } = setup(policy, threshold, probes, withHealth);
          await fc.asyncModelRun(() => ({ model, real }), cmds);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('what the breaker promises', () => {
  it('opens within silenceMs plus one call of a sustained outage (a hung store: calls time out, nothing replies)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 100 }), fc.integer({ min: 1, max: 5 }), async (gapMs, threshold) => {
        const { real } = setup('deny', threshold, 1, true);
        const outageAt = real.clock.t;
        real.health!.waitingSince = outageAt; // from now on nothing replies
        real.store.fail(errorFor('timeout'));
        let openedAt: number | undefined;
        while (openedAt === undefined && real.clock.t - outageAt < 10_000) {
          await real.backend.evaluate([op()], OPTIONS).catch(() => undefined);
          if (real.breaker.state() === 'open') openedAt = real.clock.t;
          else real.clock.advance(gapMs);
        }
        expect(openedAt).toBeDefined();
        expect(openedAt! - outageAt).toBeLessThan(SILENCE_MS + gapMs);
      }),
      { numRuns: 200 },
    );
  });

  it('never opens while the store keeps replying, however many requests each timed-out call carried', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            burst: fc.integer({ min: 1, max: 64 }),
            gapMs: fc.integer({ min: 1, max: 200 }),
            lateByMs: fc.integer({ min: 0, max: 200 }),
          }),
          {
            minLength: 1,
            maxLength: 40,
          },
        ),
        async (turns) => {
          const { real } = setup('deny', 5, 1, true);
          for (const t of turns) {
            // One call timed out for a whole turn of requests; its reply (and the others') keeps coming, late.
            real.health!.waitingSince = real.clock.t - t.lateByMs;
            real.store.fail(errorFor('timeout'));
            await Promise.allSettled(Array.from({ length: t.burst }, () => real.backend.evaluate([op()], OPTIONS)));
            expect(real.breaker.state()).toBe('closed');
            real.clock.advance(t.gapMs);
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('half-open lets exactly halfOpenProbes concurrent calls through, the rest fail fast', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 20 }), async (probes, callers) => {
        const { real } = setup('deny', 1, probes, false);
        real.store.fail(errorFor('transient'));
        await real.backend.evaluate([op()], OPTIONS).catch(() => undefined);
        expect(real.breaker.state()).toBe('open');
        real.clock.advance(OPEN_MS);
        real.store.hold();
        const before = real.store.calls;
        const answers = Array.from({ length: callers }, () => real.backend.evaluate([op()], OPTIONS).catch((e: unknown) => e));
        expect(real.store.calls - before).toBe(Math.min(probes, callers));
        for (const h of real.store.held) h.resolve(OK_RESULT);
        const settled = await Promise.all(answers);
        expect(settled.filter((a) => a instanceof CircuitOpenError)).toHaveLength(Math.max(0, callers - probes));
        expect(real.breaker.state()).toBe(callers >= probes ? 'closed' : 'half_open');
      }),
      { numRuns: 200 },
    );
  });
});
