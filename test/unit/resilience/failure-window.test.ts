import { describe, expect, it } from 'vitest';
import { FailureWindow } from '../../../src/backend/resilience/failure-window.js';

// 10 buckets of 1_000 ms over a 10_000 ms window.
describe('FailureWindow', () => {
  it('keeps calls for the current bucket plus the 9 before it', () => {
    const w = new FailureWindow(10_000, 10);
    w.record(500, true); // bucket 0
    w.record(1_500, false); // bucket 1
    w.record(1_999, true); // bucket 1
    expect(w.snapshot(9_999)).toEqual({ calls: 3, failures: 2 }); // bucket 9: 0..9 inside
    expect(w.snapshot(10_000)).toEqual({ calls: 2, failures: 1 }); // bucket 10: bucket 0 left
    expect(w.snapshot(11_000)).toEqual({ calls: 0, failures: 0 }); // bucket 11: bucket 1 left
  });

  it('clears every skipped bucket after a long quiet gap, not only the one it lands in', () => {
    const w = new FailureWindow(10_000, 10);
    w.record(1_500, true); // bucket 1
    w.record(3_500, true); // bucket 3, the head
    // Bucket 12 covers buckets 3..12: bucket 1 is stale (its slot is not the one landed on), 3 stays.
    expect(w.snapshot(12_000)).toEqual({ calls: 1, failures: 1 });
    w.record(12_100, true);
    expect(w.snapshot(13_000)).toEqual({ calls: 1, failures: 1 }); // bucket 3 left, 12 stays
    expect(w.snapshot(1_000_000)).toEqual({ calls: 0, failures: 0 });
  });

  it('counts a call from a clock that stepped back in the newest bucket', () => {
    const w = new FailureWindow(10_000, 10);
    w.record(5_000, false);
    w.record(4_000, true);
    expect(w.snapshot(5_000)).toEqual({ calls: 2, failures: 1 });
    expect(w.snapshot(15_000)).toEqual({ calls: 0, failures: 0 });
  });

  it('reset() empties it', () => {
    const w = new FailureWindow(10_000, 10);
    w.record(0, true);
    w.reset();
    expect(w.snapshot(0)).toEqual({ calls: 0, failures: 0 });
    w.record(0, true);
    expect(w.snapshot(0)).toEqual({ calls: 1, failures: 1 });
  });

  it('rejects a bad shape', () => {
    expect(() => new FailureWindow(0, 10)).toThrow('windowMs must be a positive finite number, got 0');
    expect(() => new FailureWindow(1_000, 0)).toThrow('buckets must be a positive integer, got 0');
  });
});
