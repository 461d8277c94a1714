/**
 * The RLQS allocation rule, pure: how one rule's global limit is divided among the Envoys that
 * report on it. The memory store runs it as it stands; lua/quota-report.lua is its twin (same
 * arithmetic in the same order, so both stores give the same assignments; checked by
 * test/integration/quota/quota-conformance.ts). README "RLQS" > "Allocation rule and overshoot
 * bound" states the rule and the bound for users.
 *
 * Rates are requests per second. For one rule at one moment:
 * - R = requestsPerUnit / window seconds, the limit as a rate.
 * - The capacity C = min(R, remaining / timeLeft): what is left of the current fixed window's
 *   budget (RLS requests and RLQS-reported allowed requests, one counter) spread over the time
 *   left in it. C = 0 when the budget is spent: every Envoy then gets DENY_ALL.
 * - Each of the n active Envoys has a floor f = FLOOR_FRACTION x C / n, so a new Envoy and one
 *   whose demand was 0 get a positive share at once. C is divided by max-min fairness (water
 *   filling) on the smoothed demands raised to the floor: share = min(max(demand, f), level),
 *   where the level makes the shares sum to C (or is infinite when every demand fits). An Envoy
 *   asking less than its fair part gets max(demand, f), and what idle Envoys leave flows to busy
 *   ones. (The floor is a minimum, not an addition: adding f on top of every demand wasted about
 *   5% of the limit under contention in the simulation of test/unit/quota.)
 * - Headroom: the shares other Envoys still hold (assigned earlier, TTL not expired) are counted,
 *   so the reporting Envoy gets min(share, C - held by others), but never less than f. Shares an
 *   Envoy holds therefore sum to at most R + N f (see {@link overshootBound}); a busy Envoy's
 *   share grows on its first report after the idle ones' reports shrank theirs.
 */

/** Fraction of the capacity reserved as floors (divided evenly among the active Envoys). */
export const FLOOR_FRACTION = 0.125;
/**
 * Assignment TTL in reporting intervals: 2, so one late or lost report does not expire an
 * assignment (Envoy would fall back to its no-assignment behaviour), and a silent Envoy stops
 * enforcing a stale share after 2 intervals.
 */
export const TTL_INTERVALS = 2;
/**
 * An Envoy that has not reported for 2 reporting intervals + its TTL (= 4 intervals) is dropped
 * from the division: by then its last assignment has expired (so reclaiming its share cannot make
 * shares sum above the limit) and it has missed at least two reports.
 */
export const RECLAIM_INTERVALS = 2 + TTL_INTERVALS;
/** Longest fill interval sent (a year): a share below one token per year is 0, answered DENY_ALL. */
export const MAX_FILL_INTERVAL_SEC = 31_536_000;

/** What a store keeps per Envoy of a rule. */
export interface EnvoyQuotaState {
  /** Smoothed demand, requests/s: max(latest rate, (previous + latest) / 2); rises at once, halves per report when it falls. */
  readonly demand: number;
  /** The rate of the assignment last sent (after rounding to a token bucket), requests/s. */
  readonly heldRate: number;
  /** Unix ms when that assignment expires (its TTL). */
  readonly heldUntilMs: number;
  /** Unix ms after which the Envoy is dropped from the division. */
  readonly reclaimAtMs: number;
}

/** The demand after a report: the rate (allowed + denied) / elapsed, smoothed with the previous one. */
export function smoothDemand(previous: number | undefined, allowed: number, denied: number, elapsedSec: number): number {
  const rate = (allowed + denied) / elapsedSec;
  if (previous === undefined) return rate;
  const mean = (previous + rate) / 2;
  return rate > mean ? rate : mean;
}

/** C = min(R, remaining / timeLeft), 0 when nothing remains. `timeLeftMs` > 0. */
export function capacity(limitRate: number, remaining: number, timeLeftMs: number): number {
  if (remaining <= 0) return 0;
  const spread = remaining / (timeLeftMs / 1000);
  return spread < limitRate ? spread : limitRate;
}

/**
 * Max-min fair water level of `capacity` over `demands` (sorted ascending): every demand at or
 * below the level is served in full, the others get the level. Infinity when all are served.
 */
export function waterLevel(capacityLeft: number, sortedDemands: readonly number[]): number {
  let rest = capacityLeft;
  let m = sortedDemands.length;
  for (const d of sortedDemands) {
    if (d > rest / m) return rest / m;
    rest -= d;
    m -= 1;
  }
  return Infinity;
}

/** A share and the floor it was computed with. */
export interface Share {
  readonly rate: number;
  readonly floor: number;
}

/**
 * The share of capacity `cap` of an Envoy whose smoothed demand is `mine` (see the module
 * comment). `demands` holds every active Envoy's demand (this one's included), `othersHolding`
 * the rate each other Envoy holds now (0 when its assignment expired). Both are summed in
 * ascending order of value, so the Lua twin, whose hash order differs, adds the same doubles in
 * the same order.
 */
export function shareOf(cap: number, mine: number, demands: readonly number[], othersHolding: readonly number[]): Share {
  if (cap <= 0) return { rate: 0, floor: 0 };
  const n = demands.length;
  const floor = (FLOOR_FRACTION * cap) / n;
  const level = waterLevel(cap, demands.map((d) => (d > floor ? d : floor)).sort(ascending));
  const wanted = mine > floor ? mine : floor;
  const fair = wanted < level ? wanted : level;
  let others = 0;
  for (const h of [...othersHolding].sort(ascending)) others += h;
  const headroom = cap - others;
  const capped = fair < headroom ? fair : headroom;
  return { rate: capped > floor ? capped : floor, floor };
}

const ascending = (a: number, b: number): number => a - b;

/** A rate as Envoy's token bucket: whole-second fill interval, tokens rounded down (never above the rate). */
export interface TokenBucketShape {
  readonly tokensPerFill: number;
  readonly fillIntervalSec: number;
}

export function tokenBucketFor(rate: number): TokenBucketShape {
  if (rate >= 1) return { tokensPerFill: Math.floor(rate), fillIntervalSec: 1 };
  if (rate <= 0) return { tokensPerFill: 0, fillIntervalSec: 1 };
  const fill = Math.ceil(1 / rate);
  return fill > MAX_FILL_INTERVAL_SEC ? { tokensPerFill: 0, fillIntervalSec: 1 } : { tokensPerFill: 1, fillIntervalSec: fill };
}

/** Inputs of {@link overshootBound}. */
export interface OvershootInput {
  /** The rule's limit: requests per window. */
  readonly requestsPerUnit: number;
  readonly windowSec: number;
  /** N: the most Envoys dividing the rule during the window. */
  readonly envoys: number;
  /** I: the longest reporting interval among the Envoys, whole seconds. */
  readonly reportingIntervalSec: number;
  /** T: the assignment TTL, whole seconds (TTL_INTERVALS x I as the stores send it). */
  readonly ttlSec: number;
}

/**
 * Most requests admitted in one window beyond `requestsPerUnit`, by Envoys that follow their
 * assignments (and deny when they have none or it expired):
 *
 *   S x P + S + N,   S = R x (1 + FLOOR_FRACTION x N),   P = max(I, T),   R = limit / window
 *
 * Why: every report is charged to the window's counter as it arrives (RLS requests are counted
 * and checked against the same counter), and once the counter reaches the limit every report
 * gets DENY_ALL. So the admissions of a window that the counter did not see before it reached
 * the limit are those of the assignment periods (from an Envoy's report to its next one, or to
 * expiry: at most P long) in progress at one moment: just before the report that spent the
 * budget, or, when it was not spent, at the window's end. Shares held at one moment sum to at
 * most S (R from the headroom rule, plus at most one floor f <= FLOOR_FRACTION x R per Envoy),
 * and each assignment may start with a full bucket of maxTokens = tokensPerFill <= max(rate, 1):
 * at most S + N more.
 */
export function overshootBound(input: OvershootInput): number {
  const r = input.requestsPerUnit / input.windowSec;
  const s = r * (1 + FLOOR_FRACTION * input.envoys);
  const p = Math.max(input.reportingIntervalSec, input.ttlSec);
  return s * p + s + input.envoys;
}
