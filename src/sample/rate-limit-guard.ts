/**
 * App-level rate limits for a service that is not behind Envoy (or wants limits Envoy cannot
 * express, e.g. per operation after authentication): one `ShouldRateLimit` call over gRPC per
 * check, through the typed client in src/client/rls-client.ts, answered as "allowed or not, and
 * what to tell the caller".
 *
 * ```ts
 * const guard = createRateLimitGuard({ address: 'meshlimit:8081', domain: 'users-app' });
 * const d = await guard.check([[['company_id', companyId], ['operation', 'report']]]);
 * if (!d.allowed) return reply.code(429).headers(d.headers).send({ error: 'rate limited' });
 * ```
 *
 * Failure contract: when meshlimit cannot answer within `deadlineMs` (down, overloaded, network),
 * the check answers `allowed: failOpen` with `reason: 'unavailable'`, never throws: the same
 * choice Envoy's `failure_mode_deny` makes, made explicit. Default: fail open (a limiter outage
 * should not take the service down with it).
 */
import { createRlsClient, type RlsClient, type RlsDescriptorStatus, type RlsResponse } from '../client/rls-client.js';

/** One descriptor: ordered (key, value) entries, as in the descriptor config. */
export type GuardDescriptor = readonly (readonly [key: string, value: string])[];

export interface RateLimitGuardOptions {
  /** meshlimit's gRPC `host:port`; ignored when `client` is given. */
  readonly address?: string | undefined;
  /** An existing client (shared by several guards); not closed by {@link RateLimitGuard.close}. */
  readonly client?: RlsClient | undefined;
  /** The descriptor config domain to ask in. */
  readonly domain: string;
  /** Answer when meshlimit cannot (default true: allow). */
  readonly failOpen?: boolean | undefined;
  /** Longest wait for meshlimit per check, ms (default 100). */
  readonly deadlineMs?: number | undefined;
}

export interface GuardDecision {
  readonly allowed: boolean;
  readonly reason: 'ok' | 'over_limit' | 'unavailable';
  /** The limit closest to exhaustion among the descriptors (absent when none matched or unavailable). */
  readonly limit?:
    { readonly requestsPerUnit: number; readonly unit: string; readonly remaining: number; readonly resetSeconds: number } | undefined;
  /**
   * Headers to send back: `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` when a
   * limit matched, plus `Retry-After` (seconds) when over the limit.
   */
  readonly headers: Readonly<Record<string, string>>;
}

export interface RateLimitGuard {
  /** One check, charging `hits` (default 1) to every descriptor. Never rejects. */
  check(descriptors: readonly GuardDescriptor[], opts?: { readonly hits?: number }): Promise<GuardDecision>;
  close(): void;
}

export function createRateLimitGuard(options: RateLimitGuardOptions): RateLimitGuard {
  if (options.client === undefined && options.address === undefined)
    throw new TypeError('createRateLimitGuard: give an address or a client');
  const client = options.client ?? createRlsClient(options.address!);
  const owned = options.client === undefined;
  const failOpen = options.failOpen ?? true;
  const deadlineMs = options.deadlineMs ?? 100;
  return {
    async check(descriptors, opts) {
      let res: RlsResponse;
      try {
        res = await client.shouldRateLimit(
          {
            domain: options.domain,
            hitsAddend: opts?.hits ?? 0,
            descriptors: descriptors.map((d) => ({ entries: d.map(([key, value]) => ({ key, value })) })),
          },
          { deadlineMs },
        );
      } catch {
        return { allowed: failOpen, reason: 'unavailable', headers: {} };
      }
      return toDecision(res);
    },
    close() {
      if (owned) client.close();
    },
  };
}

/** The status to report: over-limit first, then fewest remaining (as meshlimit's own header choice). */
function closest(statuses: readonly RlsDescriptorStatus[]): RlsDescriptorStatus | undefined {
  let best: RlsDescriptorStatus | undefined;
  for (const s of statuses) {
    if (s.currentLimit === null) continue;
    if (best === undefined) best = s;
    else if (s.code === 'OVER_LIMIT' && best.code !== 'OVER_LIMIT') best = s;
    else if ((s.code === 'OVER_LIMIT') === (best.code === 'OVER_LIMIT') && s.limitRemaining < best.limitRemaining) best = s;
  }
  return best;
}

function toDecision(res: RlsResponse): GuardDecision {
  const over = res.overallCode === 'OVER_LIMIT';
  const s = closest(res.statuses);
  const headers: Record<string, string> = {};
  let limit: GuardDecision['limit'];
  if (s !== undefined && s.currentLimit !== null) {
    const resetSeconds = s.durationUntilReset?.seconds ?? 0;
    limit = {
      requestsPerUnit: s.currentLimit.requestsPerUnit,
      unit: s.currentLimit.unit.toLowerCase(),
      remaining: s.limitRemaining,
      resetSeconds,
    };
    headers['RateLimit-Limit'] = String(limit.requestsPerUnit);
    headers['RateLimit-Remaining'] = String(limit.remaining);
    headers['RateLimit-Reset'] = String(resetSeconds);
    if (over) headers['Retry-After'] = String(Math.max(1, resetSeconds));
  }
  return { allowed: !over, reason: over ? 'over_limit' : 'ok', limit, headers };
}
