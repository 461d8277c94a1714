/** One trace span per RLQS round (`rlqs.report`), with the domain, the bucket count and the Envoy id. */
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { afterAll, expect, it } from 'vitest';
import { inSpan, startTracing, type Tracing } from '../../../src/telemetry/tracing.js';
import { openRawStream, startRlqsHarness, usage } from './rlqs-harness.js';

let tracing: Tracing | undefined;
afterAll(async () => {
  await tracing?.shutdown();
});

it('each report is one rlqs.report span', async () => {
  const exporter = new InMemorySpanExporter();
  tracing = await startTracing({}, [new SimpleSpanProcessor(exporter)]);
  const h = await startRlqsHarness({ span: (name, attributes, fn) => inSpan(name, attributes, () => fn()) });
  const s = openRawStream(h.address, 'e1');
  try {
    s.send({ domain: 'rlqs', bucketQuotaUsages: [usage({ api: 'orders' }), usage({ api: 'other' })] });
    await s.responsesAtLeast(1);
    s.send({ domain: 'rlqs', bucketQuotaUsages: [usage({ api: 'orders' }), usage({ api: 'other' })] });
    await s.responsesAtLeast(2);
    // The processor exports once the SDK's resource is ready: wait for it, not for time.
    let spans = exporter.getFinishedSpans().filter((x) => x.name === 'rlqs.report');
    for (let i = 0; i < 100 && spans.length < 2; i++) {
      await new Promise((r) => setTimeout(r, 20));
      spans = exporter.getFinishedSpans().filter((x) => x.name === 'rlqs.report');
    }
    expect(spans).toHaveLength(2);
    expect(spans[0]!.attributes).toEqual({ domain: 'rlqs', buckets: 2, envoy: 'e1' });
  } finally {
    s.close();
    await h.close();
  }
});
