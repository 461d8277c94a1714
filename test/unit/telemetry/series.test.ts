import fc from 'fast-check';
import { AggregatorRegistry, Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { HotCounter, HotHistogram } from '../../../src/telemetry/series.js';

const BUCKETS = [0.001, 0.01, 0.1, 1];

/** The same observations through prom-client's Histogram and our HotHistogram, on two registries. */
function histograms(observations: ReadonlyArray<readonly [string, number]>) {
  const theirs = new Registry();
  const ours = new Registry();
  const h = new Histogram({ name: 'x_seconds', help: 'h', labelNames: ['result'], buckets: BUCKETS, registers: [theirs] });
  const hot = new HotHistogram('x_seconds', 'h', ['result'], BUCKETS, [ours]);
  for (const [result, v] of observations) {
    h.labels(result).observe(v);
    hot.labels(result).observe(v);
  }
  return { theirs, ours, h, hot };
}

const observation = fc.tuple(
  fc.constantFrom('ok', 'over_limit', 'error'),
  fc.oneof(fc.constantFrom(0, ...BUCKETS, 2), fc.double({ min: 0, max: 5, noNaN: true })),
);

describe('HotHistogram', () => {
  it('renders exactly what prom-client renders for the same observations, bucket edges included (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(observation, { maxLength: 50 }), async (obs) => {
        const { theirs, ours } = histograms(obs);
        expect(await ours.metrics()).toBe(await theirs.metrics());
        expect(await ours.getMetricsAsJSON()).toEqual(await theirs.getMetricsAsJSON());
      }),
      { numRuns: 200 },
    );
  });

  it('aggregates across workers (AggregatorRegistry, as WORKERS=N does) like prom-client', async () => {
    const a = histograms([
      ['ok', 0.005],
      ['ok', 0.5],
      ['error', 3],
    ]);
    const b = histograms([
      ['ok', 0.0005],
      ['over_limit', 0.05],
    ]);
    const theirs = AggregatorRegistry.aggregate([await a.theirs.getMetricsAsJSON(), await b.theirs.getMetricsAsJSON()]);
    const ours = AggregatorRegistry.aggregate([await a.ours.getMetricsAsJSON(), await b.ours.getMetricsAsJSON()]);
    expect(await ours.metrics()).toBe(await theirs.metrics());
  });

  it('exports a series from touch() or its first observation on; reset() removes it again', async () => {
    const { theirs, ours, h, hot } = histograms([]);
    expect(await ours.metrics()).toBe(await theirs.metrics());
    h.zero({ result: 'ok' });
    hot.labels('ok').touch();
    expect(await ours.metrics()).toBe(await theirs.metrics());
    expect(await ours.metrics()).toContain('x_seconds_count{result="ok"} 0');
    h.reset();
    hot.reset();
    expect(await ours.metrics()).toBe(await theirs.metrics());
    expect(await ours.metrics()).not.toContain('result="ok"');
  });

  it('rejects a wrong number of label values', () => {
    const hot = new HotHistogram('y_seconds', 'h', ['result'], BUCKETS, []);
    expect(() => hot.labels('a', 'b')).toThrow(/expected 1 label values \(result\), got 2/);
  });
});

describe('HotCounter', () => {
  it('renders and aggregates exactly as prom-client, inc(0) exporting a zero series', async () => {
    const make = () => {
      const theirs = new Registry();
      const ours = new Registry();
      const c = new Counter({ name: 'y_total', help: 'c', labelNames: ['domain', 'result'], registers: [theirs] });
      const hot = new HotCounter('y_total', 'c', ['domain', 'result'], [ours]);
      return { theirs, ours, c, hot };
    };
    const one = make();
    const two = make();
    for (const { c, hot } of [one, two]) {
      c.labels('edge', 'ok').inc();
      hot.labels('edge', 'ok').inc();
      c.labels('edge', 'over_limit').inc(0);
      hot.labels('edge', 'over_limit').inc(0);
      c.labels('api', 'ok').inc(5);
      hot.labels('api', 'ok').inc(5);
      // a series asked for but never updated is not exported, by either
      c.labels('never', 'ok');
      hot.labels('never', 'ok');
    }
    expect(await one.ours.metrics()).toBe(await one.theirs.metrics());
    expect(await one.ours.metrics()).toContain('y_total{domain="edge",result="over_limit"} 0');
    expect(await one.ours.metrics()).not.toContain('never');
    const theirs = AggregatorRegistry.aggregate([await one.theirs.getMetricsAsJSON(), await two.theirs.getMetricsAsJSON()]);
    const ours = AggregatorRegistry.aggregate([await one.ours.getMetricsAsJSON(), await two.ours.getMetricsAsJSON()]);
    expect(await ours.metrics()).toBe(await theirs.metrics());
    expect(await ours.metrics()).toContain('y_total{domain="api",result="ok"} 10');
  });
});
