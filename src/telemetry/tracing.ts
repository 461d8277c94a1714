import {
  context,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Span,
} from '@opentelemetry/api';
import type { SpanProcessor } from '@opentelemetry/sdk-trace-base';

/**
 * OpenTelemetry tracing, configured by the standard `OTEL_*` variables and off by default.
 *
 * On when `OTEL_TRACES_EXPORTER` names an exporter (`otlp`, `console`, `zipkin`; endpoint from
 * `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, service name from
 * `OTEL_SERVICE_NAME`, default `meshlimit`) and `OTEL_SDK_DISABLED` is not `true`. When off, the
 * SDK is never loaded and every helper below returns before touching the OpenTelemetry API, so
 * tracing costs one boolean test per request.
 *
 * Spans: `ShouldRateLimit` (SERVER, one per request; parent taken from the W3C `traceparent` /
 * `tracestate` metadata Envoy sends) with `meshlimit.domain`, `meshlimit.descriptors` and
 * `meshlimit.verdict`; children `meshlimit.resolve` (descriptor resolution) and
 * `meshlimit.backend` (the Redis round trip or memory evaluation). Descriptor values, tokens and
 * IPs are never attributes.
 */
export interface Tracing {
  readonly enabled: boolean;
  /** Flushes and stops the exporter. */
  shutdown(): Promise<void>;
}

let enabled = false;
const tracer = trace.getTracer('meshlimit');

export function tracingEnabled(): boolean {
  return enabled;
}

/**
 * Starts the SDK when the environment asks for it. `spanProcessors` (tests) forces it on with
 * those processors instead of the environment's exporter.
 */
export async function startTracing(
  env: Readonly<Record<string, string | undefined>> = process.env,
  spanProcessors?: SpanProcessor[],
): Promise<Tracing> {
  const exporter = (env.OTEL_TRACES_EXPORTER ?? '').trim().toLowerCase();
  const disabled = (env.OTEL_SDK_DISABLED ?? '').trim().toLowerCase() === 'true';
  if (spanProcessors === undefined && (disabled || exporter === '' || exporter === 'none')) {
    return { enabled: false, shutdown: async () => {} };
  }
  const { NodeSDK } = await import('@opentelemetry/sdk-node');
  const sdk = new NodeSDK({
    serviceName: env.OTEL_SERVICE_NAME ?? 'meshlimit',
    // Manual spans only: auto-instrumentation of http/grpc would add spans (and cost) per request
    // that say less than ours.
    instrumentations: [],
    ...(spanProcessors !== undefined ? { spanProcessors } : {}),
  });
  sdk.start();
  enabled = true;
  return {
    enabled: true,
    shutdown: async () => {
      enabled = false;
      await sdk.shutdown();
    },
  };
}

/** The parent context from W3C trace-context headers (gRPC metadata or HTTP headers). */
export function extractContext(carrier: Record<string, unknown>): Context {
  return propagation.extract(ROOT_CONTEXT, carrier, {
    keys: (c) => Object.keys(c),
    get: (c, key) => {
      const v = (c as Record<string, unknown>)[key];
      if (typeof v === 'string') return v;
      if (Array.isArray(v)) return v.map(String);
      return Buffer.isBuffer(v) ? v.toString('latin1') : undefined;
    },
  });
}

/** Runs `fn` inside a new span (child of `parent`, or of the active span); records errors. */
export async function inSpan<T>(
  name: string,
  attributes: Attributes,
  fn: (span: Span) => Promise<T>,
  options: { parent?: Context; kind?: SpanKind } = {},
): Promise<T> {
  const parent = options.parent ?? context.active();
  const span = tracer.startSpan(name, { kind: options.kind ?? SpanKind.INTERNAL, attributes }, parent);
  try {
    return await context.with(trace.setSpan(parent, span), () => fn(span));
  } catch (err) {
    span.recordException(err as Error);
    span.setStatus({ code: SpanStatusCode.ERROR, message: (err as { code?: string }).code ?? (err as Error).message });
    throw err;
  } finally {
    span.end();
  }
}

export { SpanKind };
