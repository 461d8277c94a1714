import { performance } from 'node:perf_hooks';
import { CancelledError } from '../errors.js';
import type { Backend } from '../limiter/ports.js';
import type { CounterOp, EvaluateOptions, EvaluateResult } from '../limiter/types.js';

/**
 * Runs `fn` inside a tracing span named `name`; the composition root passes one (telemetry's
 * `inSpan`) only when tracing is on, so the backend layer never imports telemetry.
 */
export type SpanRunner = <T>(name: string, attributes: Readonly<Record<string, string | number>>, fn: () => Promise<T>) => Promise<T>;

/**
 * Times every call of a backend (for the Redis latency histogram) and, when tracing is on,
 * wraps it in a `meshlimit.backend` span (`span`), without changing what it answers. Sits directly around
 * the store, inside the circuit breaker, so it measures real round trips, not fail-fast answers.
 */
export class InstrumentedBackend implements Backend {
  readonly kind: string;
  constructor(
    private readonly inner: Backend,
    private readonly observe: (seconds: number, ok: boolean) => void,
    private readonly span?: SpanRunner,
  ) {
    this.kind = inner.kind;
  }

  evaluate(ops: readonly CounterOp[], options: EvaluateOptions): Promise<EvaluateResult> {
    if (this.span === undefined) return this.timed(ops, options);
    return this.span(
      'meshlimit.backend',
      { 'db.system': this.kind === 'memory' ? 'memory' : 'redis', 'meshlimit.counters': ops.length },
      () => this.timed(ops, options),
    );
  }

  private async timed(ops: readonly CounterOp[], options: EvaluateOptions): Promise<EvaluateResult> {
    const t0 = performance.now();
    try {
      const r = await this.inner.evaluate(ops, options);
      this.observe((performance.now() - t0) / 1000, true);
      return r;
    } catch (err) {
      // A request dropped because its caller went away made no round trip.
      if (!(err instanceof CancelledError)) this.observe((performance.now() - t0) / 1000, false);
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
