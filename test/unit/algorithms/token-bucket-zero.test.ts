import { describe, expect, it } from 'vitest';
import { tokenBucket } from '../../../src/limiter/algorithms/token-bucket.js';

describe('token bucket with requests_per_unit 0', () => {
  it('blocks every request and never changes state (no dependence on expiry)', () => {
    const input = { windowMs: 1000, threshold: 0, burst: 5, hits: 1, chargeOnOver: false };
    expect(tokenBucket.step(undefined, input, 1_000)).toMatchObject({ over: true, remaining: 0, changed: false });
    expect(tokenBucket.step({ level: 5000, last: 0, armed: 10_000 }, input, 1_000)).toMatchObject({ over: true, changed: false });
    expect(tokenBucket.step(undefined, { ...input, hits: 0 }, 1_000)).toMatchObject({ over: false, changed: false });
  });
});
