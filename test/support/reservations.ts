import type { RlsRequestInput } from '../../src/client/rls-client.js';
import type { RateLimitCheck } from '../../src/limiter/types.js';

/**
 * The reservation example shared by the race tests (limiter, backends, processes): a tenant's
 * token budget of 5,000 per minute with a fixed estimate of 1,000 (room for exactly 5 estimates),
 * an in-flight limit of 10, and an ordinary rule for today's check-then-report (quota_mode, so
 * the stream-end charge is recorded whole, as README "Quota mode is charged as upstream" says).
 */
export const RESERVATION_DOMAIN = 'ai';

export const RESERVATION_CONFIG = `domain: ai
descriptors:
  - key: tenant
    descriptors:
      - key: phase
        descriptors:
          - key: request_id
            rate_limit: { unit: minute, requests_per_unit: 5000 }
            reservation: { estimate: 1000, ttl_seconds: 30 }
  - key: inflight_tenant
    descriptors:
      - key: phase
        descriptors:
          - key: request_id
            rate_limit: { unit: minute, requests_per_unit: 10 }
            reservation: { mode: in_flight, ttl_seconds: 2 }
  - key: plain_tenant
    quota_mode: true
    rate_limit: { unit: minute, requests_per_unit: 5000 }
`;

/** What Envoy sends on the request path for a reservation rule (generic_key phase + request_headers x-request-id). */
export function reserveCheck(tenant: string, id: string, tenantKey = 'tenant'): RateLimitCheck {
  return {
    domain: RESERVATION_DOMAIN,
    hitsAddend: 0,
    descriptors: [
      {
        entries: [
          { key: tenantKey, value: tenant },
          { key: 'phase', value: 'reserve' },
          { key: 'request_id', value: id },
        ],
      },
    ],
  };
}

/** What Envoy sends at stream end (`apply_on_stream_done`, hits_addend = the real cost). */
export function settleCheck(tenant: string, id: string, cost: number, tenantKey = 'tenant'): RateLimitCheck {
  return {
    domain: RESERVATION_DOMAIN,
    hitsAddend: 0,
    descriptors: [
      {
        hitsAddend: cost,
        entries: [
          { key: tenantKey, value: tenant },
          { key: 'phase', value: 'settle' },
          { key: 'request_id', value: id },
        ],
      },
    ],
  };
}

/** A check as meshlimit's gRPC client sends it (what Envoy puts on the wire). */
export function rlsInput(c: RateLimitCheck): RlsRequestInput {
  return {
    domain: c.domain,
    hitsAddend: c.hitsAddend,
    descriptors: c.descriptors.map((d) => ({ entries: d.entries, hitsAddend: d.hitsAddend })),
  };
}

/** Today's check-then-report on an ordinary rule: a check with hits_addend 0, then the charge. */
export function plainCheck(tenant: string, hits: number): RateLimitCheck {
  return {
    domain: RESERVATION_DOMAIN,
    hitsAddend: 0,
    descriptors: [{ hitsAddend: hits, entries: [{ key: 'plain_tenant', value: tenant }] }],
  };
}

/** 50 real costs, each 1..1500 (a real cost may exceed its estimate), from a fixed seed. */
export function realCosts(n: number, seed = 7): number[] {
  let x = seed;
  return Array.from({ length: n }, () => {
    x = (x * 1_103_515_245 + 12_345) % 2_147_483_648;
    return 1 + (x % 1500);
  });
}
