/**
 * Per-call overhead of the circuit breaker, measured rather than guessed (not a test; run with
 * `npx tsx benchmarks/breaker/measure-overhead.ts`). Compares, for N sequential calls around an
 * async no-op backend: a direct call, CircuitBreakerBackend (closed, and open = fast fail), and
 * cockatiel 3.2.1's circuitBreaker with SamplingBreaker / ConsecutiveBreaker (closed, and open).
 * Each variant runs ROUNDS times interleaved; the median ns/call is printed.
 */
import { BrokenCircuitError, ConsecutiveBreaker, SamplingBreaker, circuitBreaker, handleWhen } from 'cockatiel';
import type { Backend } from '../../src/limiter/ports.js';
import type { CounterOp, EvaluateOptions, EvaluateResult } from '../../src/limiter/types.js';
import { BackendUnavailableError } from '../../src/errors.js';
import { CircuitBreakerBackend, isTransientFailure } from '../../src/backend/resilience/circuit-breaker.js';

const N = Number(process.env.N ?? 1_000_000);
const ROUNDS = Number(process.env.ROUNDS ?? 5);
const RESULT: EvaluateResult = { denied: false, outcomes: [] };
const OPS: readonly CounterOp[] = [];
const OPTIONS: EvaluateOptions = { chargeOnDeny: false };

const noop: Backend = {
  kind: 'noop',
  evaluate: async () => RESULT,
  isReady: () => true,
  close: async () => {},
};
const down: Backend = {
  kind: 'down',
  evaluate: async () => {
    throw new BackendUnavailableError('down');
  },
  isReady: () => true,
  close: async () => {},
};

const breakerOpts = { failureThreshold: 5, silenceMs: 250, openMs: 3_600_000, halfOpenProbes: 3 };
const cockatielSampling = (): ReturnType<typeof circuitBreaker> =>
  circuitBreaker(handleWhen(isTransientFailure), {
    halfOpenAfter: 3_600_000,
    breaker: new SamplingBreaker({ threshold: 0.5, duration: 10_000, minimumRps: 1 }),
  });
const cockatielConsecutive = (): ReturnType<typeof circuitBreaker> =>
  circuitBreaker(handleWhen(isTransientFailure), { halfOpenAfter: 3_600_000, breaker: new ConsecutiveBreaker(5) });

async function time(label: string, call: () => Promise<unknown>): Promise<[string, number]> {
  const start = process.hrtime.bigint();
  for (let i = 0; i < N; i++) {
    try {
      await call();
    } catch {
      // open-circuit variants reject every call
    }
  }
  return [label, Number(process.hrtime.bigint() - start) / N];
}

async function openedOurs(): Promise<CircuitBreakerBackend> {
  const b = new CircuitBreakerBackend(down, breakerOpts);
  for (let i = 0; i < 10; i++) await b.evaluate(OPS, OPTIONS).catch(() => undefined);
  if (b.state() !== 'open') throw new Error('expected open');
  return b;
}

async function openedCockatiel(): Promise<ReturnType<typeof circuitBreaker>> {
  const p = cockatielConsecutive();
  for (let i = 0; i < 10; i++) await p.execute(() => down.evaluate(OPS, OPTIONS)).catch(() => undefined);
  await p
    .execute(() => noop.evaluate(OPS, OPTIONS))
    .catch((e: unknown) => {
      if (!(e instanceof BrokenCircuitError)) throw e;
    });
  return p;
}

async function main(): Promise<void> {
  const ours = new CircuitBreakerBackend(noop, breakerOpts);
  const sampling = cockatielSampling();
  const consecutive = cockatielConsecutive();
  const oursOpen = await openedOurs();
  const cockatielOpen = await openedCockatiel();
  const variants: Array<[string, () => Promise<unknown>]> = [
    ['direct async no-op', () => noop.evaluate(OPS, OPTIONS)],
    ['CircuitBreakerBackend closed', () => ours.evaluate(OPS, OPTIONS)],
    ['cockatiel SamplingBreaker closed', () => sampling.execute(() => noop.evaluate(OPS, OPTIONS))],
    ['cockatiel ConsecutiveBreaker closed', () => consecutive.execute(() => noop.evaluate(OPS, OPTIONS))],
    ['CircuitBreakerBackend open (fast fail)', () => oursOpen.evaluate(OPS, OPTIONS)],
    ['cockatiel open (fast fail)', () => cockatielOpen.execute(() => noop.evaluate(OPS, OPTIONS))],
  ];
  const samples = new Map<string, number[]>(variants.map(([l]) => [l, []]));
  for (let r = 0; r < ROUNDS; r++) {
    for (const [label, call] of variants) {
      const [, ns] = await time(label, call);
      samples.get(label)!.push(ns);
    }
  }
  console.log(`node ${process.version}, N=${N} sequential calls, median of ${ROUNDS} rounds`);
  const base = median(samples.get('direct async no-op')!);
  for (const [label, values] of samples) {
    const m = median(values);
    console.log(
      `${label.padEnd(40)} ${m.toFixed(0).padStart(6)} ns/call  (${(m - base >= 0 ? '+' : '') + (m - base).toFixed(0)} vs direct)`,
    );
  }
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

await main();
