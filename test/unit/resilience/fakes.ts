/**
 * Test doubles for the resilience unit tests: a manual clock and a backend whose every answer the
 * test scripts. Not a Redis mock: the decorators under test only see the Backend interface.
 */
import type { Backend } from '../../../src/limiter/ports.js';
import type { CounterOp, EvaluateOptions, EvaluateResult } from '../../../src/limiter/types.js';
import { evaluateStored } from '../../../src/limiter/algorithms/evaluate.js';

export class ManualClock {
  constructor(public t = 0) {}
  readonly now = (): number => this.t;
  advance(ms: number): void {
    this.t += ms;
  }
}

interface Held {
  readonly resolve: (r: EvaluateResult) => void;
  readonly reject: (e: unknown) => void;
}

export const OK_RESULT: EvaluateResult = Object.freeze({ denied: false, outcomes: Object.freeze([]) });

/**
 * A backend whose behaviour is set by the test: `succeed()`, `fail(err)` or `hold()` (calls stay
 * pending in `held` until the test settles them). Counts calls and records their arguments.
 */
export class ScriptedBackend implements Backend {
  readonly kind = 'scripted';
  calls = 0;
  closed = 0;
  ready = true;
  closeError: unknown = undefined;
  readonly received: Array<{ ops: readonly CounterOp[]; options: EvaluateOptions }> = [];
  readonly held: Held[] = [];
  private behaviour: (ops: readonly CounterOp[]) => Promise<EvaluateResult> = async () => OK_RESULT;

  succeed(result: EvaluateResult = OK_RESULT): this {
    this.behaviour = async () => result;
    return this;
  }

  fail(err: unknown): this {
    this.behaviour = async () => {
      throw err;
    };
    return this;
  }

  hold(): this {
    this.behaviour = () => new Promise<EvaluateResult>((resolve, reject) => this.held.push({ resolve, reject }));
    return this;
  }

  evaluate(ops: readonly CounterOp[], options: EvaluateOptions): Promise<EvaluateResult> {
    this.calls++;
    this.received.push({ ops, options });
    return this.behaviour(ops);
  }

  isReady(): boolean {
    return this.ready;
  }

  async close(): Promise<void> {
    this.closed++;
    if (this.closeError !== undefined) throw this.closeError;
  }
}

/**
 * The reference evaluation (src/limiter/algorithms/evaluate.ts) over a Map: the semantics every
 * real backend must have, used here as the `local` fallback so its answers are the real math.
 */
export class ReferenceBackend implements Backend {
  readonly kind = 'reference';
  readonly received: Array<readonly CounterOp[]> = [];
  readonly receivedOptions: EvaluateOptions[] = [];
  private readonly store = new Map<string, string>();

  async evaluate(ops: readonly CounterOp[], options: EvaluateOptions): Promise<EvaluateResult> {
    this.received.push(ops);
    this.receivedOptions.push(options);
    const { result, writes } = evaluateStored(ops, options.now ?? 0, options.chargeOnDeny, (k) => this.store.get(k));
    for (const [key, w] of writes) this.store.set(key, w.value);
    return result;
  }

  isReady(): boolean {
    return true;
  }

  async close(): Promise<void> {}
}

/** Lets pending promise callbacks run (settled fakes resolve in microtasks; no timers involved). */
export async function flush(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

export function op(overrides: Partial<CounterOp> = {}): CounterOp {
  return {
    key: 'ml:{d}:fixed_window:minute:1',
    algorithm: 'fixed_window',
    windowMs: 60_000,
    threshold: 10,
    burst: 10,
    hits: 1,
    enforce: true,
    ...overrides,
  };
}
