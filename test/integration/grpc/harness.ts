/**
 * A real grpc-js server on a free loopback port with a scriptable fake limiter (the limiter is
 * not what these tests exercise: the wire, the status mapping and the health service are).
 */
import { InvalidRequestError } from '../../../src/errors.js';
import type { Decision, RateLimitCheck } from '../../../src/limiter/types.js';
import { HealthState } from '../../../src/server/grpc/health.js';
import type { ResponseHeaderNames } from '../../../src/server/grpc/mapping.js';
import { createGrpcServer, type GrpcServer, type RateLimitService } from '../../../src/server/grpc/server.js';

export type Behaviour = (check: RateLimitCheck, opts: { deadline?: number | undefined }) => Promise<Decision>;

export interface Harness {
  readonly address: string;
  readonly port: number;
  readonly grpc: GrpcServer;
  readonly health: HealthState;
  /** Every call the limiter received, in order. */
  readonly calls: { check: RateLimitCheck; deadline: number | undefined }[];
  /** Replaces what the limiter does for the following calls. */
  behave(b: Behaviour): void;
  close(): Promise<void>;
}

/** Validates like the real limiter's first step, then answers OK with no limit per descriptor. */
export const defaultBehaviour: Behaviour = (check) => {
  if (check.domain === '') return Promise.reject(new InvalidRequestError('rate limit domain must not be empty'));
  if (check.descriptors.length === 0) return Promise.reject(new InvalidRequestError('rate limit descriptor list must not be empty'));
  return Promise.resolve({
    code: 'OK',
    statuses: check.descriptors.map(() => ({ code: 'OK' as const, remaining: 0, resetMs: 0, shadowed: false, unlimited: false })),
  });
};

export async function startHarness(opts: { headers?: ResponseHeaderNames } = {}): Promise<Harness> {
  const calls: Harness['calls'] = [];
  let behaviour = defaultBehaviour;
  const limiter: RateLimitService = {
    shouldRateLimit(check, o) {
      calls.push({ check, deadline: o.deadline });
      return behaviour(check, o);
    },
  };
  const health = new HealthState(true);
  const grpc = createGrpcServer({ limiter, health, headers: opts.headers });
  const port = await grpc.listen('127.0.0.1', 0);
  return {
    address: `127.0.0.1:${port}`,
    port,
    grpc,
    health,
    calls,
    behave(b) {
      behaviour = b;
    },
    close: () => grpc.close(1000),
  };
}
