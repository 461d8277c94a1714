/**
 * Small statistics helpers for the harness. Percentiles use the nearest-rank method on sorted
 * samples (the value below which p% of samples fall, always an observed sample), so p99.9 of
 * 1000 samples is the largest one, not an interpolation.
 */

/** Nearest-rank percentile of ascending `sorted` (p in [0, 100]); NaN when empty. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  if (p <= 0) return sorted[0] as number;
  // toFixed: (99.9 / 100) * 1000 is 999.0000000000001 in binary floating point, not 999.
  const rank = Math.ceil(Number(((p / 100) * n).toFixed(9)));
  return sorted[Math.min(n, Math.max(1, rank)) - 1] as number;
}

/** Median of unsorted values (mean of the two middle ones for an even count); NaN when empty. */
export function median(values: readonly number[]): number {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  const n = v.length;
  if (n === 0) return Number.NaN;
  const mid = Math.floor(n / 2);
  return n % 2 === 1 ? (v[mid] as number) : ((v[mid - 1] as number) + (v[mid] as number)) / 2;
}

/** A median's confidence interval: see {@link medianInterval}. */
export interface MedianInterval {
  readonly low: number;
  readonly high: number;
  readonly coverage: number;
}

/**
 * A distribution-free confidence interval for the median of `values`: the order statistics
 * [x(r), x(n+1-r)] (1-based, ascending) for the largest r whose chance of missing the true
 * median, 2 * P(Binomial(n, 1/2) <= r - 1), is at most 1 - `confidence`. Nothing is assumed about
 * the shape of the noise, which on a shared VM is anything but normal. `coverage` is the
 * interval's actual confidence (at least `confidence`). Undefined when even the whole range falls
 * short (at 95%: fewer than 6 values; 5 values give 93.75%).
 */
export function medianInterval(values: readonly number[], confidence = 0.95): MedianInterval | undefined {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  const n = v.length;
  let found: MedianInterval | undefined;
  let coef = 1; // C(n, r - 1)
  let cdf = 0; // P(Binomial(n, 1/2) <= r - 1)
  for (let r = 1; 2 * r <= n + 1; r++) {
    cdf += coef / 2 ** n;
    coef = (coef * (n - r + 1)) / r;
    const coverage = 1 - 2 * cdf;
    if (coverage < confidence) break;
    found = { low: v[r - 1] as number, high: v[n - r] as number, coverage };
  }
  return found;
}

/** Latency percentiles in milliseconds. */
export interface LatencySummary {
  readonly samples: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
}

/** Summarizes latencies given in microseconds into milliseconds. */
export function summarizeUs(latenciesUs: ArrayLike<number>): LatencySummary {
  const sorted = Float64Array.from(latenciesUs).sort();
  const ms = (x: number): number => Math.round(x) / 1000;
  return {
    samples: sorted.length,
    p50: ms(percentile(sorted, 50)),
    p90: ms(percentile(sorted, 90)),
    p99: ms(percentile(sorted, 99)),
    p999: ms(percentile(sorted, 99.9)),
    max: ms(sorted.length > 0 ? (sorted[sorted.length - 1] as number) : Number.NaN),
  };
}

/** Rounds to `digits` significant decimals for reports (keeps integers readable). */
export function round(x: number, digits = 2): number {
  if (!Number.isFinite(x)) return x;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
