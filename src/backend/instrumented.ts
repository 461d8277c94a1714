import { performance } from 'node:perf_hooks';
import type { Backend, CounterOp, EvaluateOptions, EvaluateResult } from './backend.js';

/**
 * Times every call of a backend (for the Redis latency histogram) without changing what it
 * answers. Sits directly around the store, inside the circuit breaker, so it measures real
 * round trips, not fail-fast answers.
 */
export class InstrumentedBackend implements Backend {
  readonly kind: string;
  constructor(
    private readonly inner: Backend,
    private readonly observe: (seconds: number, ok: boolean) => void,
  ) {
    this.kind = inner.kind;
  }

  async evaluate(ops: readonly CounterOp[], options: EvaluateOptions): Promise<EvaluateResult> {
    const t0 = performance.now();
    try {
      const r = await this.inner.evaluate(ops, options);
      this.observe((performance.now() - t0) / 1000, true);
      return r;
    } catch (err) {
      this.observe((performance.now() - t0) / 1000, false);
      throw err;
    }
  }

  isReady(): boolean {
    return this.inner.isReady();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
