import type { CancellationProbe, Decision, RateLimitCheck } from '../limiter/types.js';
import { extractContext, inSpan, SpanKind, tracingEnabled } from '../telemetry/tracing.js';

/**
 * The decision pipeline both transports call: descriptor resolution, then the limiter, and with
 * tracing on a `ShouldRateLimit` SERVER span around both (a child of the trace context Envoy
 * sent) and a `meshlimit.resolve` span around resolution. Spans carry the domain, the descriptor
 * count and the verdict, never values.
 */

/** Resolution (src/resolve): the check as the limiter must see it, synchronously when no token needs verifying. */
export type ResolveStep = (check: RateLimitCheck) => RateLimitCheck | Promise<RateLimitCheck>;
/** The limiter's `decide` (src/limiter/limiter.ts). */
export type DecideStep = (
  check: RateLimitCheck,
  deadline: number | undefined,
  cancellation: CancellationProbe | undefined,
) => Decision | Promise<Decision>;

/** What a transport knows about one request besides the request itself. */
export interface DecideOptions {
  /** Unix ms after which the caller has stopped waiting (the gRPC deadline); undefined when none. */
  readonly deadline?: number | undefined;
  /** The request metadata (W3C `traceparent`/`tracestate`), only when tracing is enabled. */
  readonly traceCarrier?: Record<string, unknown> | undefined;
  /** The caller's cancellation (the grpc-js call), read before and while the request is evaluated. */
  readonly cancellation?: CancellationProbe | undefined;
}

/**
 * One request's decision. Not async: a check that needs no token verification goes straight to
 * the limiter, so a request costs no promise beyond the backend's (each layer is a promise and a
 * microtask), and none at all on the memory backend, which the limiter asks synchronously.
 */
export type Decider = (check: RateLimitCheck, opts: DecideOptions) => Decision | Promise<Decision>;

export function createDecider(resolve: ResolveStep, decide: DecideStep): Decider {
  const plain = (check: RateLimitCheck, opts: DecideOptions): Decision | Promise<Decision> => {
    const resolved = tracingEnabled()
      ? inSpan('meshlimit.resolve', { 'meshlimit.domain': check.domain }, async () => resolve(check))
      : resolve(check);
    return resolved instanceof Promise
      ? resolved.then((c) => decide(c, opts.deadline, opts.cancellation))
      : decide(resolved, opts.deadline, opts.cancellation);
  };
  const traced = (check: RateLimitCheck, opts: DecideOptions): Promise<Decision> =>
    inSpan(
      'ShouldRateLimit',
      {
        'rpc.system': 'grpc',
        'rpc.service': 'envoy.service.ratelimit.v3.RateLimitService',
        'rpc.method': 'ShouldRateLimit',
        'meshlimit.domain': check.domain,
        'meshlimit.descriptors': check.descriptors.length,
      },
      async (span) => {
        const d = await plain(check, opts);
        span.setAttribute('meshlimit.verdict', d.code);
        if (d.degraded !== undefined) span.setAttribute('meshlimit.degraded', d.degraded);
        return d;
      },
      { parent: opts.traceCarrier === undefined ? undefined : extractContext(opts.traceCarrier), kind: SpanKind.SERVER },
    );
  return (check, opts) => (tracingEnabled() ? traced(check, opts) : plain(check, opts));
}
