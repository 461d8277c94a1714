/**
 * RLQS quota division: the port the RLQS stream service (src/server) uses, implemented by the
 * memory and Redis stores of this folder. Transport-free: no proto types here; the service maps
 * `BucketQuotaUsage` to {@link QuotaReport} and {@link QuotaAssignment} to a
 * `RateLimitStrategy.token_bucket` (or `blanket_rule: DENY_ALL` when `denyAll`).
 *
 * One rule's global limit (`limit.requestsPerUnit` per `limit.windowMs`) is divided among the
 * Envoys that report on it, by max-min fairness on their reported demand with a floor (see
 * ./allocate.ts and README "RLQS"). The budget is shared with RLS: reported allowed requests are
 * charged to the same fixed-window counter RLS uses for the rule, and RLS's count bounds what is
 * handed out.
 */

/** One `BucketQuotaUsage` of one Envoy, mapped to the rule (and counter) its bucket matched. */
export interface QuotaReport {
  /**
   * The counter key of the rule's limit for this bucket, built by {@link quotaCounterKey}: the
   * same key (prefix, `{hash tag}`, identity) as RLS's counter, so both protocols share one
   * budget and every key a store touches for it lives in one Redis Cluster slot.
   */
  readonly ruleKey: string;
  /** Stable id of the Envoy (the service derives it from the stream's node id or peer); 1..{@link MAX_ENVOY_ID_LENGTH} chars. */
  readonly envoyId: string;
  /** `num_requests_allowed` since this Envoy's previous report of the bucket (integer >= 0). */
  readonly allowed: number;
  /** `num_requests_denied` since the previous report (integer >= 0). */
  readonly denied: number;
  /** `time_elapsed` in whole seconds, clamped by the store to 1..{@link MAX_REPORT_INTERVAL_SEC}. */
  readonly elapsedSec: number;
  /** The rule's limit. Only fixed-window limits can be divided (see {@link quotaCounterKey}). */
  readonly limit: QuotaLimit;
}

/** The limit a {@link QuotaReport} divides: `requestsPerUnit` requests per `windowMs`. */
export interface QuotaLimit {
  readonly requestsPerUnit: number;
  /** Window length in ms (a whole number of seconds), windows aligned to the Unix epoch as RLS's fixed windows. */
  readonly windowMs: number;
}

/** What one Envoy enforces for one bucket until `ttlSec` has passed. */
export interface QuotaAssignment {
  /** Tokens added per fill: an integer >= 1, or 0 when `denyAll`. */
  readonly tokensPerFill: number;
  /** Whole seconds >= 1 (Envoy reads whole seconds). */
  readonly fillIntervalSec: number;
  /** Bucket capacity (= tokensPerFill: one fill, the smallest burst Envoy's token bucket allows). */
  readonly maxTokens: number;
  /** Whole seconds the assignment holds (`assignment_time_to_live`); 2 x the Envoy's reporting interval. */
  readonly ttlSec: number;
  /** The share as a rate (requests/s) = tokensPerFill / fillIntervalSec, for metrics and tests. */
  readonly ratePerSec: number;
  /** True when the rule's budget for the current window is spent: the service sends `blanket_rule: DENY_ALL`. */
  readonly denyAll: boolean;
}

/** The state of quota division, shared by every meshlimit replica on one backend. */
export interface QuotaStore {
  /**
   * Records the reports (each Envoy's demand and allowed requests, charged to the rule's budget)
   * and returns one assignment per report, in order. `nowMs` is for tests (the Redis store
   * otherwise uses Redis TIME, the memory store Date.now()). Throws a {@link QuotaError} for an
   * invalid report (nothing is recorded then) and a backend error (transient) when the store
   * cannot be reached. Reports are applied one by one, in order; when one fails, the Redis store
   * may have applied the others (each report is its own atomic script): the caller answers the
   * failed buckets by its failure policy and the next reports carry on.
   */
  report(reports: readonly QuotaReport[], nowMs?: number): Promise<QuotaAssignment[]>;
  /** Drops an Envoy from a rule's division (its stream ended for good or it abandoned the bucket). */
  forget(ruleKey: string, envoyId: string, nowMs?: number): Promise<void>;
  /**
   * Resolves once the store can serve (the Redis store's first connection; the memory store at
   * once), rejects with ML_ERR_BACKEND_UNAVAILABLE after `timeoutMs` (default 5,000). Before
   * that, `report` fails fast with ML_ERR_BACKEND_UNAVAILABLE, as the counter backend does.
   */
  waitReady(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** Longest accepted {@link QuotaReport.ruleKey} (quotaCounterKey builds keys of prefix + ~60 characters). */
export const MAX_RULE_KEY_LENGTH = 1024;
/** Longest accepted {@link QuotaReport.envoyId}, in UTF-16 units. */
export const MAX_ENVOY_ID_LENGTH = 256;
/** Longest `time_elapsed` taken at face value (1 hour); longer ones are clamped. */
export const MAX_REPORT_INTERVAL_SEC = 3600;
/** Most Envoys one rule's counter is divided among; the next new one gets a `ML_ERR_QUOTA_ENVOYS` error. */
export const MAX_ENVOYS_PER_RULE = 1024;
