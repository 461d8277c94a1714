import { InvalidRequestError } from '../errors.js';
import {
  FLOOR_FRACTION,
  RECLAIM_INTERVALS,
  TTL_INTERVALS,
  capacity,
  shareOf,
  smoothDemand,
  tokenBucketFor,
  type EnvoyQuotaState,
} from './allocate.js';
import { checkEnvoyId } from './keys.js';
import { MAX_REPORT_INTERVAL_SEC, MAX_RULE_KEY_LENGTH, type QuotaAssignment, type QuotaReport } from './types.js';

/**
 * One report's way through a store, in TypeScript: validation (both stores), then the steps the
 * memory store runs and lua/quota-report.lua mirrors line for line (drop silent Envoys, bound the
 * Envoys per rule, charge the counter, smooth the demand, share, round to a token bucket).
 */

/** Largest count accepted in a report: 2^53 - 1 (Envoy sends uint64; a larger one is not a real count). */
const MAX_COUNT = Number.MAX_SAFE_INTEGER;

/** A report checked and clamped: `interval` is `elapsedSec` as a whole number in 1..MAX_REPORT_INTERVAL_SEC. */
export interface CheckedReport extends QuotaReport {
  readonly interval: number;
}

/** Validates a report (throws InvalidRequestError naming the field) and clamps its interval. */
export function checkReport(r: QuotaReport): CheckedReport {
  checkEnvoyId(r.envoyId);
  if (r.ruleKey.length === 0 || r.ruleKey.length > MAX_RULE_KEY_LENGTH) {
    throw new InvalidRequestError(
      `RLQS report: ruleKey must be 1..${MAX_RULE_KEY_LENGTH} characters, got ${r.ruleKey.length} (build it with quotaCounterKey)`,
    );
  }
  for (const [field, v] of [
    ['allowed', r.allowed],
    ['denied', r.denied],
  ] as const) {
    if (!Number.isSafeInteger(v) || v < 0 || v > MAX_COUNT) {
      throw new InvalidRequestError(`RLQS report: ${field} must be an integer in 0..${MAX_COUNT}, got ${v}`);
    }
  }
  if (!Number.isFinite(r.elapsedSec))
    throw new InvalidRequestError(`RLQS report: elapsedSec must be a number of seconds, got ${r.elapsedSec}`);
  const { requestsPerUnit, windowMs } = r.limit;
  if (!Number.isSafeInteger(requestsPerUnit) || requestsPerUnit < 0) {
    throw new InvalidRequestError(`RLQS report: limit.requestsPerUnit must be an integer >= 0, got ${requestsPerUnit}`);
  }
  if (!Number.isSafeInteger(windowMs) || windowMs < 1000 || windowMs % 1000 !== 0) {
    throw new InvalidRequestError(`RLQS report: limit.windowMs must be a whole number of seconds in ms, got ${windowMs}`);
  }
  const whole = Math.floor(r.elapsedSec);
  const interval = whole < 1 ? 1 : whole > MAX_REPORT_INTERVAL_SEC ? MAX_REPORT_INTERVAL_SEC : whole;
  return { ...r, interval };
}

/** What a store tells {@link assign} about the rule's counter after charging the report's allowed requests. */
export interface CounterAfterCharge {
  /** Requests left in the current window (0 when spent). */
  readonly remaining: number;
  /** Ms until the window ends (> 0). */
  readonly resetMs: number;
}

/**
 * The reporting Envoy's new state and assignment. `envoys` holds the rule's other active Envoys
 * (silent ones already dropped) and this one's previous state if any; the caller stores `state`.
 */
export function assign(
  r: CheckedReport,
  envoys: ReadonlyMap<string, EnvoyQuotaState>,
  counter: CounterAfterCharge,
  nowMs: number,
): { state: EnvoyQuotaState; assignment: QuotaAssignment } {
  const previous = envoys.get(r.envoyId);
  const demand = smoothDemand(previous?.demand, r.allowed, r.denied, r.interval);
  const demands: number[] = [demand];
  const othersHolding: number[] = [];
  // A first report (time_elapsed 0: Envoy reports a new bucket at once) says nothing of the
  // reporting interval; its TTL then uses the longest interval of the rule's other Envoys
  // (they usually share one filter config), read back from their state, so the assignment does
  // not expire before the Envoy's first periodic report. 1 s when it is the rule's only Envoy.
  let ttlInterval = r.interval;
  for (const [id, e] of envoys) {
    if (id === r.envoyId) continue;
    demands.push(e.demand);
    othersHolding.push(e.heldUntilMs > nowMs ? e.heldRate : 0);
    if (r.elapsedSec < 1) {
      const theirs = (e.reclaimAtMs - e.heldUntilMs) / ((RECLAIM_INTERVALS - TTL_INTERVALS) * 1000);
      if (theirs > ttlInterval) ttlInterval = theirs;
    }
  }
  const limitRate = r.limit.requestsPerUnit / (r.limit.windowMs / 1000);
  const cap = capacity(limitRate, counter.remaining, counter.resetMs);
  const share = shareOf(cap, demand, demands, othersHolding);
  const bucket = tokenBucketFor(share.rate);
  const heldRate = bucket.tokensPerFill / bucket.fillIntervalSec;
  const ttlSec = TTL_INTERVALS * ttlInterval;
  const state: EnvoyQuotaState = {
    demand,
    heldRate,
    heldUntilMs: nowMs + ttlSec * 1000,
    reclaimAtMs: nowMs + RECLAIM_INTERVALS * ttlInterval * 1000,
  };
  const assignment = assignmentOf(bucket.tokensPerFill, bucket.fillIntervalSec, ttlSec);
  return { state, assignment };
}

/** The assignment a store's script reply (tokensPerFill, fillIntervalSec, ttlSec) stands for. */
export function assignmentOf(tokensPerFill: number, fillIntervalSec: number, ttlSec: number): QuotaAssignment {
  return {
    tokensPerFill,
    fillIntervalSec,
    maxTokens: tokensPerFill,
    ttlSec,
    ratePerSec: tokensPerFill / fillIntervalSec,
    denyAll: tokensPerFill === 0,
  };
}

/** The constants lua/quota-report.lua takes as ARGV, so they are declared once (in allocate.ts). */
export const SCRIPT_CONSTANTS = [FLOOR_FRACTION, TTL_INTERVALS, RECLAIM_INTERVALS] as const;
