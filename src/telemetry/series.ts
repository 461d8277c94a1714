import type { Registry } from 'prom-client';

/**
 * Counters and histograms for the per-request hot path, exported through a prom-client Registry
 * in exactly the text and JSON form prom-client's own Counter and Histogram produce (so the
 * scrape, the WORKERS aggregation and the dashboards see no difference).
 *
 * Why not prom-client's classes here: their `inc()`/`observe()` validate the label names, hash
 * the label object and look the series up by that hash on every call, even through a child from
 * `labels()`. Measured in a CPU profile of one request shape, that was about 3% of the service's
 * CPU per request. Here a series is an object holding plain numbers: the caller keeps the series
 * it will update (label sets are fixed or come from the config) and an update is an add.
 *
 * prom-client's classes stay for everything off the hot path (gauges, reloads, breaker
 * transitions, JWT resolution).
 */

type Labels = Readonly<Record<string, string>>;

/** A value line of prom-client's `get()` output. */
interface ValueLine {
  readonly labels: Record<string, string | number>;
  readonly value: number;
  readonly metricName?: string;
  /** prom-client puts `exemplar: null` on histogram buckets (no exemplars here). */
  readonly exemplar?: null;
}

/** What prom-client's Registry needs of a metric (its `metrics()`, `getMetricsAsJSON()`, `resetMetrics()`). */
interface RegistrableMetric {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'histogram';
  readonly aggregator: 'sum';
  get(): Promise<{ name: string; help: string; type: string; values: ValueLine[]; aggregator: string }>;
  reset(): void;
}

abstract class SeriesMetric<S extends { readonly labels: Labels; present: boolean; zero(): void }> implements RegistrableMetric {
  abstract readonly type: 'counter' | 'histogram';
  readonly aggregator = 'sum' as const;
  /** By label values joined with NUL, in label-name order. */
  protected readonly series = new Map<string, S>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelNames: readonly string[],
    registers: readonly Registry[],
  ) {
    for (const r of registers) r.registerMetric(this as never);
  }

  /**
   * The series for these label values (created on first use, then the same object). As with
   * prom-client, a series is exported from its first update on (`inc(0)` or {@link
   * HistogramSeries.touch} export it at 0).
   */
  labels(...values: string[]): S {
    if (values.length !== this.labelNames.length) {
      throw new Error(
        `${this.name}: expected ${this.labelNames.length} label values (${this.labelNames.join(', ')}), got ${values.length}`,
      );
    }
    const id = values.join('\u0000');
    let s = this.series.get(id);
    if (s === undefined) {
      const labels: Record<string, string> = {};
      this.labelNames.forEach((n, i) => (labels[n] = values[i]!));
      s = this.create(Object.freeze(labels));
      this.series.set(id, s);
    }
    return s;
  }

  reset(): void {
    for (const s of this.series.values()) s.zero();
  }

  async get(): Promise<{ name: string; help: string; type: string; values: ValueLine[]; aggregator: string }> {
    const values: ValueLine[] = [];
    for (const s of this.series.values()) if (s.present) this.lines(s, values);
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  protected abstract create(labels: Labels): S;
  protected abstract lines(series: S, out: ValueLine[]): void;
}

export class CounterSeries {
  value = 0;
  present = false;
  constructor(readonly labels: Labels) {}
  inc(by = 1): void {
    this.value += by;
    this.present = true;
  }
  /** As prom-client's reset(): the series is gone from the output until its next update. */
  zero(): void {
    this.value = 0;
    this.present = false;
  }
}

/** A counter whose series are {@link CounterSeries}; output as prom-client's Counter. */
export class HotCounter extends SeriesMetric<CounterSeries> {
  readonly type = 'counter' as const;
  protected create(labels: Labels): CounterSeries {
    return new CounterSeries(labels);
  }
  protected lines(s: CounterSeries, out: ValueLine[]): void {
    out.push({ labels: { ...s.labels }, value: s.value });
  }
}

export class HistogramSeries {
  /** Observations per bucket, not cumulative; the last slot is above the largest bound. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  present = false;
  constructor(
    readonly labels: Labels,
    private readonly bounds: readonly number[],
  ) {
    this.counts = new Float64Array(bounds.length + 1);
  }
  /** Same bucket rule as prom-client: the first bound with value <= bound. */
  observe(value: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && !(value <= b[i]!)) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
    this.present = true;
  }
  /** Exports the series (at 0 until observed), as prom-client's `zero(labels)`. */
  touch(): void {
    this.present = true;
  }
  /** As prom-client's reset(): the series is gone from the output until its next update. */
  zero(): void {
    this.counts.fill(0);
    this.sum = 0;
    this.count = 0;
    this.present = false;
  }
}

/** A histogram whose series are {@link HistogramSeries}; output as prom-client's Histogram. */
export class HotHistogram extends SeriesMetric<HistogramSeries> {
  readonly type = 'histogram' as const;
  private readonly bounds: readonly number[];

  constructor(name: string, help: string, labelNames: readonly string[], buckets: readonly number[], registers: readonly Registry[]) {
    super(name, help, labelNames, registers);
    this.bounds = Object.freeze([...buckets].sort((a, b) => a - b));
  }

  protected create(labels: Labels): HistogramSeries {
    return new HistogramSeries(labels, this.bounds);
  }

  protected lines(s: HistogramSeries, out: ValueLine[]): void {
    const bucket = `${this.name}_bucket`;
    let acc = 0;
    for (let i = 0; i < this.bounds.length; i++) {
      acc += s.counts[i]!;
      out.push({ labels: { le: this.bounds[i]!, ...s.labels }, value: acc, metricName: bucket, exemplar: null });
    }
    out.push({ labels: { le: '+Inf', ...s.labels }, value: s.count, metricName: bucket, exemplar: null });
    out.push({ labels: { ...s.labels }, value: s.sum, metricName: `${this.name}_sum` });
    out.push({ labels: { ...s.labels }, value: s.count, metricName: `${this.name}_count` });
  }
}

/**
 * The series of one (domain, rule), made on first use and kept: domain -> rule -> series. At most
 * `maxRules` rules per domain get their own; the others share the rule label `other`.
 */
export function perRule(maxRules: number, other: string) {
  return <T>(make: (domain: string, rule: string) => T): ((domain: string, rule: string) => T) => {
    const byDomain = new Map<string, Map<string, T>>();
    const get = (domain: string, rule: string): T => {
      let byRule = byDomain.get(domain);
      if (byRule === undefined) {
        byRule = new Map();
        byDomain.set(domain, byRule);
      }
      let series = byRule.get(rule);
      if (series === undefined) {
        if (byRule.size >= maxRules && rule !== other) return get(domain, other);
        series = make(domain, rule);
        byRule.set(rule, series);
      }
      return series;
    };
    return get;
  };
}
