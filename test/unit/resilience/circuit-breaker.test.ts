import { describe, expect, it } from 'vitest';
import { BackendError, BackendUnavailableError } from '../../../src/errors.js';
import {
  CircuitBreakerBackend,
  CircuitOpenError,
  isCircuitOpenError,
  type BreakerTransitionReason,
  type CircuitBreakerOptions,
  type CircuitState,
  type StoreHealth,
} from '../../../src/backend/resilience/circuit-breaker.js';
import { ManualClock, OK_RESULT, ScriptedBackend, flush, op } from './fakes.js';

const OPTIONS = { chargeOnDeny: false } as const;
const OPS = [op()];

type Transition = [CircuitState, CircuitState, BreakerTransitionReason];

function setup(overrides: Partial<CircuitBreakerOptions> = {}, start = 1_000_000) {
  const clock = new ManualClock(start);
  const inner = new ScriptedBackend();
  const transitions: Transition[] = [];
  const breaker = new CircuitBreakerBackend(
    inner,
    { failureThreshold: 4, silenceMs: 300, openMs: 5_000, halfOpenProbes: 2, clock: clock.now, ...overrides },
    { onStateChange: (from, to, reason) => transitions.push([from, to, reason]) },
  );
  const call = () => breaker.evaluate(OPS, OPTIONS);
  /** Runs one call and returns the error it rejected with (undefined on success). */
  const attempt = async (): Promise<unknown> => {
    try {
      await call();
      return undefined;
    } catch (e) {
      return e;
    }
  };
  return { clock, inner, transitions, breaker, call, attempt };
}

const transient = () => new BackendUnavailableError('connection reset');

/** Opens the breaker of `setup()` defaults with 4 transient failures at the current time. */
async function open(s: ReturnType<typeof setup>): Promise<void> {
  s.inner.fail(transient());
  for (let i = 0; i < 4; i++) await s.attempt();
  expect(s.breaker.state()).toBe('open');
}

describe('CircuitBreakerBackend, closed', () => {
  it('passes calls and results through unchanged', async () => {
    const s = setup();
    const result = { denied: true, outcomes: [{ overLimit: true, remaining: 0, resetMs: 7 }] };
    s.inner.succeed(result);
    await expect(s.call()).resolves.toBe(result);
    expect(s.inner.received).toEqual([{ ops: OPS, options: OPTIONS }]);
    expect(s.breaker.kind).toBe('scripted');
  });

  it('without store health: opens on the failureThreshold-th failed request in a row', async () => {
    const s = setup();
    s.inner.fail(transient());
    for (let i = 0; i < 3; i++) expect(await s.attempt()).toBeInstanceOf(BackendUnavailableError);
    expect(s.breaker.state()).toBe('closed');
    expect(s.transitions).toEqual([]);
    const fourth = await s.attempt();
    // The call that trips the breaker still reports its own error, not a circuit-open error.
    expect(fourth).toBeInstanceOf(BackendUnavailableError);
    expect(isCircuitOpenError(fourth)).toBe(false);
    expect(s.breaker.state()).toBe('open');
    expect(s.transitions).toEqual([['closed', 'open', 'failures']]);
  });

  it('without store health: a success resets the run of failures', async () => {
    const s = setup();
    for (let round = 0; round < 5; round++) {
      s.inner.fail(transient());
      for (let i = 0; i < 3; i++) await s.attempt();
      s.inner.succeed();
      await s.attempt();
    }
    expect(s.breaker.state()).toBe('closed');
  });

  it('never counts non-transient errors, and rethrows them unchanged', async () => {
    const s = setup({ failureThreshold: 1 });
    const bug = new BackendError('ERR Error running script: attempt to compare nil');
    s.inner.fail(bug);
    for (let i = 0; i < 50; i++) expect(await s.attempt()).toBe(bug);
    const plain = new TypeError('not a meshlimit error');
    s.inner.fail(plain);
    for (let i = 0; i < 50; i++) expect(await s.attempt()).toBe(plain);
    expect(s.breaker.state()).toBe('closed');
    expect(s.inner.calls).toBe(100);
    expect(s.transitions).toEqual([]);
  });

  it('non-transient errors neither break nor extend a run of failures', async () => {
    const s = setup();
    s.inner.fail(transient());
    for (let i = 0; i < 2; i++) await s.attempt();
    s.inner.fail(new BackendError('bug'));
    for (let i = 0; i < 10; i++) await s.attempt();
    s.inner.fail(transient());
    await s.attempt();
    expect(s.breaker.state()).toBe('closed'); // 3 transient failures in a row
    await s.attempt();
    expect(s.breaker.state()).toBe('open'); // the 4th
  });

  it('isReady follows the inner backend while closed', async () => {
    const s = setup();
    expect(s.breaker.isReady()).toBe(true);
    s.inner.ready = false;
    expect(s.breaker.isReady()).toBe(false);
  });
});

describe('CircuitBreakerBackend, open', () => {
  it('fails fast with a circuit-open BackendUnavailableError without calling the inner backend', async () => {
    const s = setup();
    await open(s);
    const callsWhenOpened = s.inner.calls;
    s.inner.succeed(); // even a healthy backend is not called while open
    s.clock.advance(4_999);
    for (let i = 0; i < 20; i++) {
      const err = await s.attempt();
      expect(err).toBeInstanceOf(CircuitOpenError);
      expect(err).toBeInstanceOf(BackendUnavailableError);
      expect(err).toMatchObject({ code: 'ML_ERR_BACKEND_UNAVAILABLE', reason: 'circuit_open', transient: true, grpcStatus: 14 });
    }
    expect(s.inner.calls).toBe(callsWhenOpened);
    expect(s.breaker.state()).toBe('open');
    expect(s.breaker.isReady()).toBe(false);
    expect(s.transitions).toEqual([['closed', 'open', 'failures']]);
  });

  it('reports half_open from state() once openMs has elapsed, once', async () => {
    const s = setup();
    await open(s);
    s.clock.advance(5_000);
    expect(s.breaker.state()).toBe('half_open');
    expect(s.breaker.state()).toBe('half_open');
    expect(s.breaker.isReady()).toBe(true);
    expect(s.transitions).toEqual([
      ['closed', 'open', 'failures'],
      ['open', 'half_open', 'open_elapsed'],
    ]);
  });
});

describe('CircuitBreakerBackend, half-open', () => {
  it('admits exactly halfOpenProbes trial calls, fails the rest fast, and closes when all succeed', async () => {
    const s = setup({ halfOpenProbes: 3 });
    await open(s);
    const before = s.inner.calls;
    s.clock.advance(5_000);
    s.inner.hold();
    const probes = [s.call(), s.call(), s.call()];
    const extra = await s.attempt();
    expect(extra).toBeInstanceOf(CircuitOpenError);
    expect(s.inner.calls).toBe(before + 3);
    expect(s.breaker.state()).toBe('half_open');

    s.inner.held[0]!.resolve(OK_RESULT);
    s.inner.held[1]!.resolve(OK_RESULT);
    await flush();
    expect(s.breaker.state()).toBe('half_open'); // 2 of 3 probes succeeded
    expect(await s.attempt()).toBeInstanceOf(CircuitOpenError); // slots are not reused
    s.inner.held[2]!.resolve(OK_RESULT);
    await expect(Promise.all(probes)).resolves.toEqual([OK_RESULT, OK_RESULT, OK_RESULT]);
    expect(s.breaker.state()).toBe('closed');
    expect(s.transitions).toEqual([
      ['closed', 'open', 'failures'],
      ['open', 'half_open', 'open_elapsed'],
      ['half_open', 'closed', 'probes_succeeded'],
    ]);
    s.inner.succeed();
    await expect(s.call()).resolves.toBe(OK_RESULT);
    expect(s.inner.calls).toBe(before + 4);
  });

  it('reopens on the first transient probe failure for another openMs; later probe results are ignored', async () => {
    const s = setup({ halfOpenProbes: 2 });
    await open(s);
    s.clock.advance(5_000);
    s.inner.hold();
    const p1 = s.attempt();
    const p2 = s.attempt();
    s.clock.advance(100);
    const failure = transient();
    s.inner.held[0]!.reject(failure);
    expect(await p1).toBe(failure);
    expect(s.breaker.state()).toBe('open');
    s.inner.held[1]!.resolve(OK_RESULT); // a stale probe: must not close the new open period
    expect(await p2).toBeUndefined();
    expect(s.breaker.state()).toBe('open');

    const calls = s.inner.calls;
    s.clock.advance(4_999); // open since the failed probe, 5_100 ms after the first opening
    expect(await s.attempt()).toBeInstanceOf(CircuitOpenError);
    expect(s.inner.calls).toBe(calls);
    s.clock.advance(1);
    expect(s.breaker.state()).toBe('half_open');
    expect(s.transitions).toEqual([
      ['closed', 'open', 'failures'],
      ['open', 'half_open', 'open_elapsed'],
      ['half_open', 'open', 'probe_failed'],
      ['open', 'half_open', 'open_elapsed'],
    ]);
  });

  it('a probe ending with a non-transient error gives its slot back and decides nothing', async () => {
    const s = setup({ halfOpenProbes: 1 });
    await open(s);
    s.clock.advance(5_000);
    const bug = new BackendError('bug');
    s.inner.fail(bug);
    expect(await s.attempt()).toBe(bug);
    expect(s.breaker.state()).toBe('half_open');
    s.inner.succeed();
    expect(await s.attempt()).toBeUndefined(); // the slot was free again
    expect(s.breaker.state()).toBe('closed');
  });

  it('after closing, the run of failures starts from zero', async () => {
    const s = setup({ halfOpenProbes: 1 });
    await open(s);
    s.clock.advance(5_000);
    s.inner.succeed();
    await s.attempt();
    expect(s.breaker.state()).toBe('closed');
    s.inner.fail(transient());
    for (let i = 0; i < 3; i++) await s.attempt(); // 3 in a row: the 4 before the opening are forgotten
    expect(s.breaker.state()).toBe('closed');
  });
});

describe('CircuitBreakerBackend, stale results and reporting', () => {
  it('ignores the result of a call admitted before the state changed', async () => {
    const s = setup({ halfOpenProbes: 1 });
    s.inner.hold();
    const slow = s.attempt(); // admitted while closed
    s.inner.fail(transient());
    for (let i = 0; i < 4; i++) await s.attempt();
    expect(s.breaker.state()).toBe('open');
    s.clock.advance(5_000);
    expect(s.breaker.state()).toBe('half_open');
    s.inner.held[0]!.resolve(OK_RESULT); // the old call succeeds: not a probe, must not close
    expect(await slow).toBeUndefined();
    expect(s.breaker.state()).toBe('half_open');
    s.inner.succeed();
    await s.attempt(); // the real probe
    expect(s.breaker.state()).toBe('closed');
  });

  it('reports each transition once over several cycles, never per call, and survives a throwing hook', async () => {
    const clock = new ManualClock(0);
    const inner = new ScriptedBackend();
    const seen: string[] = [];
    const b = new CircuitBreakerBackend(
      inner,
      { failureThreshold: 2, silenceMs: 300, openMs: 100, halfOpenProbes: 1, clock: clock.now },
      {
        onStateChange: (from, to, reason) => {
          seen.push(`${from}->${to}:${reason}`);
          throw new Error('broken telemetry');
        },
      },
    );
    const attempt = () => b.evaluate(OPS, OPTIONS).catch(() => undefined);
    for (let cycle = 0; cycle < 2; cycle++) {
      inner.fail(transient());
      for (let i = 0; i < 5; i++) await attempt(); // 2 failures open it, 3 fast fails
      clock.advance(100);
      await attempt(); // probe fails
      for (let i = 0; i < 5; i++) await attempt(); // fast fails
      clock.advance(100);
      inner.succeed();
      for (let i = 0; i < 5; i++) await attempt(); // probe succeeds, then closed
      clock.advance(2_000);
    }
    const cycle = [
      'closed->open:failures',
      'open->half_open:open_elapsed',
      'half_open->open:probe_failed',
      'open->half_open:open_elapsed',
      'half_open->closed:probes_succeeded',
    ];
    expect(seen).toEqual([...cycle, ...cycle]);
    expect(b.state()).toBe('closed');
  });

  it('closes the inner backend', async () => {
    const s = setup();
    await s.breaker.close();
    expect(s.inner.closed).toBe(1);
  });

  it('rejects invalid options', () => {
    const inner = new ScriptedBackend();
    const base = { failureThreshold: 3, silenceMs: 250, openMs: 1_000, halfOpenProbes: 1 };
    expect(() => new CircuitBreakerBackend(inner, { ...base, failureThreshold: 0 })).toThrow(
      'failureThreshold must be an integer >= 1, got 0',
    );
    expect(() => new CircuitBreakerBackend(inner, { ...base, failureThreshold: 1.5 })).toThrow(
      'failureThreshold must be an integer >= 1, got 1.5',
    );
    expect(() => new CircuitBreakerBackend(inner, { ...base, halfOpenProbes: 1.5 })).toThrow(
      'halfOpenProbes must be an integer >= 1, got 1.5',
    );
    expect(() => new CircuitBreakerBackend(inner, { ...base, silenceMs: 0 })).toThrow('silenceMs must be a positive finite number, got 0');
    expect(() => new CircuitBreakerBackend(inner, { ...base, openMs: -1 })).toThrow('openMs must be a finite number >= 0, got -1');
  });
});

/** A store's account of its calls, set by the test. */
class FakeHealth implements StoreHealth {
  up = true;
  failures = 0;
  /** When calls started waiting with no reply (undefined: nothing waits). */
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

describe('CircuitBreakerBackend, judged from the store health', () => {
  const timeout = () => new BackendUnavailableError('redis unavailable: Command timed out (no reply within 50 ms of the write)');
  function withHealth(overrides: Partial<CircuitBreakerOptions> = {}) {
    const health = new FakeHealth();
    return { health, ...setup({ health, ...overrides }) };
  }

  it('a busy machine never opens it: timed-out requests whose calls still get (late) replies', async () => {
    const s = withHealth();
    s.inner.fail(timeout());
    for (let i = 0; i < 500; i++) {
      s.health.waitingSince = s.clock.t - 50; // replies keep coming, each a little late
      await s.attempt();
      s.clock.advance(10);
    }
    expect(s.breaker.state()).toBe('closed');
    expect(s.transitions).toEqual([]);
  });

  it('a hung store opens it once calls have waited silenceMs with no reply at all', async () => {
    const s = withHealth();
    s.health.waitingSince = s.clock.t;
    s.inner.fail(timeout());
    s.clock.advance(299);
    await s.attempt();
    expect(s.breaker.state()).toBe('closed');
    s.clock.advance(1);
    await s.attempt();
    expect(s.transitions).toEqual([['closed', 'open', 'silence']]);
    s.inner.succeed();
    expect(await s.attempt()).toBeInstanceOf(CircuitOpenError); // answers now come without waiting
  });

  it('time this process spent lagging is not silence of the store', async () => {
    let lagMs = 950;
    const asked: number[] = [];
    const s = withHealth({
      loopDelay: {
        lagSinceMs: (since: number) => {
          asked.push(since);
          return lagMs;
        },
      },
    });
    s.health.waitingSince = s.clock.t - 1_000; // 1 s without a reply, 950 ms of it inside this process
    s.inner.fail(timeout());
    for (let i = 0; i < 20; i++) await s.attempt();
    expect(s.breaker.state()).toBe('closed');
    expect(asked.at(-1)).toBe(s.clock.t - 1_000); // lag counted over the silence itself
    lagMs = 700; // 300 ms of it is Redis's
    await s.attempt();
    expect(s.transitions).toEqual([['closed', 'open', 'silence']]);
  });

  it('a lost connection opens it on the first failed request', async () => {
    const s = withHealth();
    s.health.up = false;
    s.inner.fail(new BackendUnavailableError("redis unavailable: Stream isn't writeable"));
    await s.attempt();
    expect(s.transitions).toEqual([['closed', 'open', 'connection_lost']]);
  });

  it('failed calls count once each, however many requests they carried', async () => {
    const s = withHealth();
    s.inner.fail(transient());
    s.health.failures = 3; // three failed calls, each carrying many requests
    for (let i = 0; i < 200; i++) await s.attempt();
    expect(s.breaker.state()).toBe('closed');
    s.health.failures = 4;
    await s.attempt();
    expect(s.transitions).toEqual([['closed', 'open', 'failures']]);
  });

  it('a success does not open it, whatever the health says', async () => {
    const s = withHealth();
    s.health.up = false;
    s.health.failures = 99;
    s.health.waitingSince = s.clock.t - 10_000;
    s.inner.succeed();
    for (let i = 0; i < 10; i++) await s.attempt();
    expect(s.breaker.state()).toBe('closed');
  });
});
