import { Metadata } from '@grpc/grpc-js';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTracing, type Tracing } from '../../src/telemetry/tracing.js';
import { startRedis, type RedisInstance } from '../support/redis.js';
import { bootService, type BootedService } from '../support/service.js';

/**
 * Tracing through the real gRPC server: one SERVER span per ShouldRateLimit whose parent is the
 * W3C context Envoy sends in the metadata, with children for resolution and the Redis call, and
 * no descriptor values in any attribute.
 */
const exporter = new InMemorySpanExporter();
let tracing: Tracing;
let redis: RedisInstance;
let svc: BootedService;

beforeAll(async () => {
  tracing = await startTracing({}, [new SimpleSpanProcessor(exporter)]);
  redis = await startRedis();
  svc = await bootService({
    files: { 't.yaml': 'domain: traced\ndescriptors:\n  - key: user\n    rate_limit: { unit: minute, requests_per_unit: 1 }\n' },
    env: { BACKEND_TYPE: 'redis', REDIS_URL: `127.0.0.1:${redis.port}` },
  });
});
afterAll(async () => {
  await svc?.close();
  await redis?.stop();
  await tracing?.shutdown();
});

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT_SPAN = '00f067aa0ba902b7';

describe('OpenTelemetry tracing', () => {
  it('is off unless OTEL_TRACES_EXPORTER names an exporter', async () => {
    expect((await startTracing({})).enabled).toBe(false);
    expect((await startTracing({ OTEL_TRACES_EXPORTER: 'none' })).enabled).toBe(false);
    expect((await startTracing({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_SDK_DISABLED: 'true' })).enabled).toBe(false);
  });

  it("records a ShouldRateLimit span under the caller's W3C context, with resolve and backend children", async () => {
    exporter.reset();
    const metadata = new Metadata();
    metadata.set('traceparent', `00-${TRACE_ID}-${PARENT_SPAN}-01`);
    for (let i = 0; i < 2; i++) {
      await svc.client.shouldRateLimit(
        { domain: 'traced', descriptors: [{ entries: [{ key: 'user', value: 'secret-value-42' }] }] },
        { metadata },
      );
    }
    const spans = exporter.getFinishedSpans();
    const roots = spans.filter((s) => s.name === 'ShouldRateLimit');
    expect(roots).toHaveLength(2);
    for (const root of roots) {
      expect(root.spanContext().traceId).toBe(TRACE_ID);
      expect(root.parentSpanContext?.spanId).toBe(PARENT_SPAN);
      expect(root.kind).toBe(1); // SERVER
      expect(root.attributes).toMatchObject({ 'meshlimit.domain': 'traced', 'meshlimit.descriptors': 1, 'rpc.method': 'ShouldRateLimit' });
      const children = spans.filter((s) => s.parentSpanContext?.spanId === root.spanContext().spanId);
      expect(children.map((c) => c.name).sort()).toEqual(['meshlimit.backend', 'meshlimit.resolve']);
      const backend = children.find((c) => c.name === 'meshlimit.backend')!;
      expect(backend.attributes).toMatchObject({ 'db.system': 'redis', 'meshlimit.counters': 1 });
      expect(backend.spanContext().traceId).toBe(TRACE_ID);
    }
    expect(roots.map((r) => r.attributes['meshlimit.verdict'])).toEqual(['OK', 'OVER_LIMIT']);
    expect(JSON.stringify(spans.map((s) => s.attributes))).not.toContain('secret-value-42');
  });

  it('starts a new trace when the caller sends no context', async () => {
    exporter.reset();
    await svc.client.shouldRateLimit({ domain: 'traced', descriptors: [{ entries: [{ key: 'user', value: 'b' }] }] });
    const root = exporter.getFinishedSpans().find((s) => s.name === 'ShouldRateLimit')!;
    expect(root.parentSpanContext).toBeUndefined();
    expect(root.spanContext().traceId).not.toBe(TRACE_ID);
  });
});
