/**
 * Calls and failures over the last `windowMs`, kept in `buckets` time buckets of
 * `windowMs / buckets` each (a ring, amortised O(1) per record, no allocation).
 *
 * Accuracy trade-off: buckets are aligned to `floor(now / bucketMs)`, so the window actually
 * covers the current, partly elapsed bucket plus the `buckets - 1` before it: between
 * `windowMs - bucketMs` and `windowMs` of history. With the default 10 buckets that is a 10%
 * granularity, which is plenty for a failure *rate* and keeps the hot path free of per-call
 * timestamps.
 */
export class FailureWindow {
  private readonly bucketMs: number;
  private readonly calls: Float64Array;
  private readonly failures: Float64Array;
  /** Bucket index (floor(now / bucketMs)) of the newest bucket; -Infinity before the first record. */
  private head = Number.NEGATIVE_INFINITY;
  private totalCalls = 0;
  private totalFailures = 0;

  constructor(
    windowMs: number,
    private readonly buckets = 10,
  ) {
    if (!Number.isInteger(buckets) || buckets < 1) throw new RangeError(`buckets must be a positive integer, got ${buckets}`);
    if (!(windowMs > 0 && Number.isFinite(windowMs))) throw new RangeError(`windowMs must be a positive finite number, got ${windowMs}`);
    this.bucketMs = windowMs / buckets;
    this.calls = new Float64Array(buckets);
    this.failures = new Float64Array(buckets);
  }

  /** Counts one call at `now`; `failed` for a failure. */
  record(now: number, failed: boolean): void {
    const slot = this.advance(now);
    this.calls[slot]!++;
    this.totalCalls++;
    if (failed) {
      this.failures[slot]!++;
      this.totalFailures++;
    }
  }

  /** Calls and failures inside the window ending at `now`. */
  snapshot(now: number): { calls: number; failures: number } {
    this.advance(now);
    return { calls: this.totalCalls, failures: this.totalFailures };
  }

  reset(): void {
    this.calls.fill(0);
    this.failures.fill(0);
    this.totalCalls = 0;
    this.totalFailures = 0;
    this.head = Number.NEGATIVE_INFINITY;
  }

  /** Expires buckets that left the window; returns the slot of the bucket holding `now`. */
  private advance(now: number): number {
    const index = Math.floor(now / this.bucketMs);
    if (index > this.head) {
      // Clear every bucket between the old head and the new one (at most `buckets` of them).
      const steps = Math.min(index - this.head, this.buckets);
      for (let i = 0; i < steps; i++) {
        const slot = mod(index - i, this.buckets);
        this.totalCalls -= this.calls[slot]!;
        this.totalFailures -= this.failures[slot]!;
        this.calls[slot] = 0;
        this.failures[slot] = 0;
      }
      this.head = index;
    }
    // A clock that steps back (should not happen with a monotonic clock) lands in the head bucket.
    return mod(this.head, this.buckets);
  }
}

function mod(n: number, m: number): number {
  const r = n % m;
  return r < 0 ? r + m : r;
}
