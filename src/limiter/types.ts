import type { ReservationCall, ReservationResult, ReservationSpec } from './reservation-types.js';

/**
 * The rate-limit domain: transport-free types shared by config, limiter and backends.
 * Nothing here imports grpc-js, fastify or generated proto types.
 */

export const UNITS = ['second', 'minute', 'hour', 'day', 'week', 'month', 'year'] as const;
export type Unit = (typeof UNITS)[number];

/**
 * Seconds per unit, with envoyproxy/ratelimit's arithmetic: a month is 30 days and a year 365
 * days, and windows are aligned to multiples of the window length since the Unix epoch.
 */
export const UNIT_SECONDS: Readonly<Record<Unit, number>> = Object.freeze({
  second: 1,
  minute: 60,
  hour: 3600,
  day: 86_400,
  week: 604_800,
  month: 2_592_000,
  year: 31_536_000,
});

export const ALGORITHMS = ['fixed_window', 'sliding_window', 'token_bucket'] as const;
export type Algorithm = (typeof ALGORITHMS)[number];

/**
 * One compiled limit: a threshold on one counter.
 *
 * `identity` names the counter and deliberately leaves the threshold out (`requestsPerUnit`,
 * `burst`), so a hot reload that only changes a threshold keeps the counters.
 */
export interface Limit {
  /** `rate_limit.name`; used by `replaces` and reported in `current_limit.name`. */
  readonly name: string | undefined;
  readonly algorithm: Algorithm;
  readonly unit: Unit;
  /** Window length = unit x unitMultiplier (our extension; 1 when absent). */
  readonly unitMultiplier: number;
  /** Requests admitted per window (fixed/sliding) or refill per window (token bucket). */
  readonly requestsPerUnit: number;
  /** Token bucket capacity; defaults to requestsPerUnit. Ignored by the window algorithms. */
  readonly burst: number;
  /** unit seconds x unitMultiplier x 1000. */
  readonly windowMs: number;
  /** Counter identity: algorithm, unit and multiplier, never the threshold. */
  readonly identity: string;
  /** Names of limits this one replaces (envoyproxy/ratelimit `replaces`). */
  readonly replaces: readonly string[];
}

/** What a config rule says about a matched request descriptor. */
export interface Rule {
  /** The config path of the rule, e.g. `domain.key_value.key2`, for metrics and logs. Never request values. */
  readonly ruleKey: string;
  /** Limits to enforce; empty when `unlimited`. */
  readonly limits: readonly Limit[];
  readonly unlimited: boolean;
  readonly shadowMode: boolean;
  readonly detailedMetric: boolean;
  /**
   * envoyproxy/ratelimit `quota_mode`: being over this rule's limit does not deny the request on
   * its own (its status still says OVER_LIMIT); the request is denied when every quota-mode
   * descriptor of it is over. Absent means false.
   */
  readonly quotaMode?: boolean | undefined;
  /**
   * envoyproxy/ratelimit descriptor `metadata`: returned to Envoy in the response's dynamic
   * metadata (key `metadata`, merged over the descriptors that passed) when
   * RESPONSE_DYNAMIC_METADATA is on. Absent when the descriptor has none.
   */
  readonly metadata?: MetadataStruct | undefined;
  /**
   * envoyproxy/ratelimit `share_threshold`: per request entry index, the wildcard pattern whose
   * matching values all share one counter (the key is built with the pattern instead of the
   * request's value), or undefined for entries that count per value. Absent when unused.
   */
  readonly sharedValues?: readonly (string | undefined)[] | undefined;
  /**
   * meshlimit `candidate_rate_limits`: limits evaluated and counted beside `limits` on counters of
   * their own (identity prefixed `cand:`), never enforced: being over one never changes a status
   * or the answer. Absent when the rule has none.
   */
  readonly candidates?: readonly Limit[] | undefined;
  /** meshlimit `reservation`: calls matching this rule reserve or settle (./reservation-types.ts). Absent otherwise. */
  readonly reservation?: ReservationSpec | undefined;
  /** True when a tenant override (./overrides.ts) replaced the rule's limits for this descriptor. */
  readonly tenantOverride?: true | undefined;
}

/**
 * A `google.protobuf.Value` as config metadata holds it: JSON-like, numbers as doubles (upstream
 * converts YAML with structpb.NewValue). Objects are null-prototype, so any key (even
 * `__proto__`) is plain data.
 */
export type MetadataValue = null | boolean | number | string | readonly MetadataValue[] | MetadataStruct;
/** A `google.protobuf.Struct`: field name -> value. */
export interface MetadataStruct {
  readonly [key: string]: MetadataValue;
}

export interface DescriptorEntry {
  readonly key: string;
  readonly value: string;
}

/** A per-descriptor limit override sent by Envoy (`RateLimitDescriptor.limit`). */
export interface LimitOverride {
  readonly requestsPerUnit: number;
  readonly unit: Unit;
}

export interface RequestDescriptor {
  readonly entries: readonly DescriptorEntry[];
  readonly limitOverride?: LimitOverride | undefined;
  /** Per-descriptor hits_addend when the wrapper was present (0 = check without consuming). */
  readonly hitsAddend?: number | undefined;
}

/** A transport-free ShouldRateLimit request. */
export interface RateLimitCheck {
  readonly domain: string;
  readonly descriptors: readonly RequestDescriptor[];
  /** Request-level hits_addend as sent; 0 means 1. */
  readonly hitsAddend: number;
}

export type Verdict = 'OK' | 'OVER_LIMIT';

/**
 * What to answer when the counter store fails transiently (FAILURE_POLICY, a domain's
 * `failure_mode`): `deny` answers UNAVAILABLE so Envoy's `failure_mode_deny` decides, `allow`
 * answers OK (degraded), `local` enforces per-replica shares in process (degraded). Declared once
 * here; settings, the config schema and the failure-policy decorator all use it.
 */
export const FAILURE_POLICIES = ['deny', 'allow', 'local'] as const;
export type FailurePolicy = (typeof FAILURE_POLICIES)[number];

/** Why an answer is not an exact counter-backed decision. */
export const DEGRADED_REASONS = ['circuit_open', 'backend_error', 'local_fallback', 'overloaded'] as const;
export type DegradedReason = (typeof DEGRADED_REASONS)[number];

export interface DescriptorStatus {
  readonly code: Verdict;
  /** The reported limit (closest to exhaustion when several apply); absent when no limit matched. */
  readonly limit?: {
    readonly requestsPerUnit: number;
    readonly unit: Unit;
    readonly unitMultiplier: number;
    readonly name: string | undefined;
    /** The limit's algorithm and token-bucket capacity (RLS v3 has no field for them; `meshlimit ask` shows them). */
    readonly algorithm?: Algorithm | undefined;
    readonly burst?: number | undefined;
  };
  /** Requests left in the reported limit after this request (0 when over). */
  readonly remaining: number;
  /** Milliseconds until the reported limit resets (see algorithm docs for each meaning). */
  readonly resetMs: number;
  /**
   * True when this descriptor was over its limit but shadow mode let it pass: a shadow_mode rule
   * (its `code` is then OK, as upstream) or the global SHADOW_MODE (its `code` stays OVER_LIMIT,
   * as upstream; only the overall code becomes OK).
   */
  readonly shadowed: boolean;
  /** True for a quota-mode descriptor (see src/limiter/verdict.ts); absent otherwise. */
  readonly quota?: true | undefined;
  /** True when the descriptor matched an `unlimited` rule. */
  readonly unlimited: boolean;
  /** Rule key for metrics; absent when nothing matched. */
  readonly ruleKey?: string | undefined;
  readonly detailedMetric?: boolean | undefined;
}

export interface Decision {
  readonly code: Verdict;
  readonly statuses: readonly DescriptorStatus[];
  /** Present when the answer did not come from exact shared counters. */
  readonly degraded?: DegradedReason | undefined;
  /**
   * With RESPONSE_DYNAMIC_METADATA: the `metadata` of the rules of the descriptors that passed
   * (status OK, not unlimited), merged in request order, the first value of a key winning and
   * nested structs merged (envoyproxy/ratelimit `mergeMetadata`). Absent when none had any.
   */
  readonly metadata?: MetadataStruct | undefined;
  /**
   * With RESPONSE_DYNAMIC_METADATA: the request as decided (after descriptor resolution, so a
   * bearer token is never echoed), which the transports describe in the response's dynamic
   * metadata as upstream does. Absent otherwise.
   */
  readonly request?: RateLimitCheck | undefined;
}

/**
 * One counter operation inside a request: "charge `hits` against `key` under `limit`, with
 * this effective `threshold`".
 */
export interface CounterOp {
  /** Full store key, built by `src/limiter/keys.ts` (cluster-safe, injection-safe). */
  readonly key: string;
  readonly algorithm: Algorithm;
  readonly windowMs: number;
  /** Requests per window (fixed/sliding) or refill per window (token bucket); override-aware. */
  readonly threshold: number;
  /** Token bucket capacity; equals threshold for the window algorithms. */
  readonly burst: number;
  /** Hits to add; 0 checks without consuming. */
  readonly hits: number;
  /**
   * false for shadow-mode limits: being over them never denies the request and never blocks
   * other ops from being charged (the shadow counter itself is treated as if enforced).
   */
  readonly enforce: boolean;
}

export interface CounterOutcome {
  /** This op alone is over its limit. */
  readonly overLimit: boolean;
  /** Whole requests left after this op (0 when over). For a denied request: as if admitted. */
  readonly remaining: number;
  /** Milliseconds until reset (integer, >= 0). */
  readonly resetMs: number;
}

/**
 * Whether the caller of a request has gone away, read when that can still save work: a grpc-js
 * call object is one as it is (its `cancelled` turns true when the client resets the stream, the
 * deadline passes or the connection is lost), so passing it costs no allocation.
 */
export interface CancellationProbe {
  readonly cancelled: boolean;
}

export interface EvaluateOptions {
  /**
   * false (default, meshlimit): when any enforced op is over its limit, no op of the request is
   * charged. true: envoyproxy/ratelimit's behaviour, every window op is charged regardless.
   */
  readonly chargeOnDeny: boolean;
  /** Clock override in Unix milliseconds, for tests only. Undefined: the backend's own clock (Redis TIME). */
  readonly now?: number | undefined;
  /**
   * The request's domain, for decorators that act per domain (the failure policy reads the
   * domain's `failure_mode`). Counter stores ignore it: keys already carry the domain.
   */
  readonly domain?: string | undefined;
  /**
   * The caller may have to give this evaluation's charges back: it split one request over two
   * stores (REDIS_PERSECOND, see src/backend/per-second.ts) and the other store may deny it. A
   * store that can answers an admitted evaluation that charged something with
   * {@link EvaluateResult.refund}; decorators pass the flag and the handle through unchanged.
   */
  readonly refundable?: boolean | undefined;
  /**
   * Read by a store that sends requests later than it is asked (Redis batches a turn's requests
   * in a `setImmediate`): a request whose caller has gone by then is dropped unsent and rejected
   * with CancelledError, so it charges nothing. Absent when there is no caller to ask (the memory
   * backend answers at once and is never given one).
   */
  readonly cancellation?: CancellationProbe | undefined;
  /**
   * Present for a reservation rule's call (see ./reservation-types.ts): the one op names the
   * counter, and the store reserves or settles on it instead of evaluating it. Absent on every
   * ordinary decision.
   */
  readonly reservation?: ReservationCall | undefined;
}

export interface EvaluateResult {
  /** True when some enforced op was over its limit. */
  readonly denied: boolean;
  /**
   * Present when the answer is not an exact, shared-counter answer (a failure policy answered
   * for an unavailable store); the limiter copies it into `Decision.degraded`.
   */
  readonly degraded?: DegradedReason | undefined;
  /** One outcome per op, in order. */
  readonly outcomes: readonly CounterOutcome[];
  /**
   * Present only when {@link EvaluateOptions.refundable} was set, the request was admitted and
   * the store charged something: gives back exactly what this evaluation charged, at the time it
   * charged it (see refundOps in src/limiter/algorithms/refund.ts: never more than the counters
   * still hold, so a refund can never cause over-admission). Best effort: it always resolves; a
   * refund that failed leaves the charge in place (under-admission until the window or bucket
   * moves on) and is reported by the store's `onRefundError`.
   */
  readonly refund?: (() => Promise<void>) | undefined;
  /** What a reservation call did (present when {@link EvaluateOptions.reservation} was). */
  readonly reservation?: ReservationResult | undefined;
}
