import { describe, expect, it } from 'vitest';
import { connectRetryDelay, ReconnectBackoff } from '../../../src/xds/backoff.js';

/** The xDS client's waits, with envoyproxy/ratelimit's arithmetic (jpillora/backoff, grpc_retry's linear jitter). */
describe('reconnect backoff (XDS_CLIENT_BACKOFF_*)', () => {
  it('upstream defaults (10 s, 60 s, factor 0.5, jitter): always the initial interval', () => {
    for (const r of [0, 0.5, 0.999]) {
      const b = new ReconnectBackoff({ initialMs: 10_000, maxMs: 60_000, factor: 0.5, jitter: true, random: () => r });
      expect([b.next(), b.next(), b.next(), b.next()]).toEqual([10_000, 10_000, 10_000, 10_000]);
    }
  });

  it('factor 2 without jitter doubles up to the maximum; reset starts again', () => {
    const b = new ReconnectBackoff({ initialMs: 100, maxMs: 1000, factor: 2, jitter: false });
    expect([b.next(), b.next(), b.next(), b.next(), b.next(), b.next()]).toEqual([100, 200, 400, 800, 1000, 1000]);
    b.reset();
    expect(b.next()).toBe(100);
  });

  it('jitter picks between the initial interval and the computed one', () => {
    const b = new ReconnectBackoff({ initialMs: 100, maxMs: 10_000, factor: 2, jitter: true, random: () => 0.5 });
    // attempt 0: 100; attempt 1: 100 + 0.5 x (200 - 100); attempt 2: 100 + 0.5 x (400 - 100)
    expect([b.next(), b.next(), b.next()]).toEqual([100, 150, 250]);
  });

  it('an initial interval at or above the maximum waits the maximum', () => {
    expect(new ReconnectBackoff({ initialMs: 5000, maxMs: 1000, factor: 2, jitter: false }).next()).toBe(1000);
  });
});

describe('connect retry (CONFIG_GRPC_XDS_SERVER_CONNECT_RETRY_INTERVAL)', () => {
  it('is the interval +-50%', () => {
    expect(connectRetryDelay(3000, () => 0)).toBe(1500);
    expect(connectRetryDelay(3000, () => 0.5)).toBe(3000);
    expect(connectRetryDelay(3000, () => 0.999_999)).toBe(4500);
  });
});
