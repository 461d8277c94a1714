import { describe, expect, it } from 'vitest';
import { DEFAULT_TRANSPORT_LIMITS, transportServerOptions } from '../../../src/server/grpc/transport-guard.js';

/** The GRPC_* settings grpc-js enforces itself, as the options it reads. */
describe('transportServerOptions', () => {
  it('passes the defaults to grpc-js (envoyproxy/ratelimit age and grace, 256 streams, our keepalive)', () => {
    expect(transportServerOptions(DEFAULT_TRANSPORT_LIMITS)).toEqual({
      'grpc.max_concurrent_streams': 256,
      'grpc.max_connection_age_ms': 86_400_000,
      'grpc.max_connection_age_grace_ms': 3_600_000,
      'grpc.keepalive_time_ms': 60_000,
      'grpc.keepalive_timeout_ms': 20_000,
    });
  });

  it("turns 0, and what a Node timer cannot hold (24.8 days or more), into grpc-js's never", () => {
    const NEVER = 2_147_483_647;
    const o = transportServerOptions({
      ...DEFAULT_TRANSPORT_LIMITS,
      maxConnectionAgeMs: 0,
      maxConnectionAgeGraceMs: 30 * 86_400_000,
      keepaliveTimeMs: 0,
    });
    expect(o['grpc.max_connection_age_ms']).toBe(NEVER);
    expect(o['grpc.max_connection_age_grace_ms']).toBe(NEVER);
    expect(o['grpc.keepalive_time_ms']).toBe(NEVER);
  });
});
