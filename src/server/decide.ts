import type { Decision, RateLimitCheck } from '../limiter/types.js';
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
export type DecideStep = (check: RateLimitCheck, deadline: number | undefined) => Decision | Promise<Decision>;

/**
 * One request's decision. Not async: a check that needs no token verification goes straight to
 * the limiter, so a request costs no promise beyond the backend's (each layer is a promise and a
 * microtask), and none at all on the memory backend, which the limiter asks synchronously.
 */
export type Decider = (
  check: RateLimitCheck,
  deadline: number | undefined,
  traceCarrier?: Record<string, unknown>,
) => Decision | Promise<Decision>;

export function createDecider(resolve: ResolveStep, decide: DecideStep): Decider {
  const plain = (check: RateLimitCheck, deadline: number | undefined): Decision | Promise<Decision> => {
    const resolved = tracingEnabled()
      ? inSpan('meshlimit.resolve', { 'meshlimit.domain': check.domain }, async () => resolve(check))
      : resolve(check);
    return resolved instanceof Promise ? resolved.then((c) => decide(c, deadline)) : decide(resolved, deadline);
  };
  const traced = (check: RateLimitCheck, deadline: number | undefined, carrier: Record<string, unknown> | undefined): Promise<Decision> =>
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
        const d = await plain(check, deadline);
        span.setAttribute('meshlimit.verdict', d.code);
        if (d.degraded !== undefined) span.setAttribute('meshlimit.degraded', d.degraded);
        return d;
      },
      { parent: carrier === undefined ? undefined : extractContext(carrier), kind: SpanKind.SERVER },
    );
  return (check, deadline, carrier) => (tracingEnabled() ? traced(check, deadline, carrier) : plain(check, deadline));
}
