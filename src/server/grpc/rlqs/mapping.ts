/**
 * RLQS wire <-> domain, in one module: a `BucketQuotaUsage` becomes a descriptor (entries in a
 * documented order) and a usage count, a {@link QuotaAssignment} becomes a `BucketAction`. Wire
 * shapes are proto-loader's objects with the server options of ../protos.ts (camelCase, 64-bit
 * integers as strings, enums as numbers, absent messages as null).
 *
 * What Envoy's filter (envoy.filters.http.rate_limit_quota, source/extensions/filters/http/
 * rate_limit_quota/global_client_impl.cc) reads, and so what is sent:
 * - a token bucket, never `requests_per_time_unit` (logged as unsupported and allowed);
 * - `fill_interval` and `assignment_time_to_live` as whole seconds (nanos are dropped), so both
 *   are always whole seconds here; an unset TTL reads as 0 (expire at once), so it is always set;
 * - a token bucket equal to the active one (max_tokens, tokens_per_fill, fill_interval nanos) is
 *   kept with its tokens, a different one replaces it.
 */
import { InvalidRequestError, RlqsBoundError } from '../../../errors.js';
import type { StringLimits } from '../../../limiter/string-limits.js';
import type { DescriptorEntry } from '../../../limiter/types.js';
import type { QuotaAssignment } from '../../../quota/index.js';

export interface WireBucketId {
  readonly bucket: Readonly<Record<string, string>>;
}
export interface WireDuration {
  readonly seconds: string | number;
  readonly nanos?: number;
}
export interface WireBucketUsage {
  readonly bucketId: WireBucketId | null;
  readonly timeElapsed: WireDuration | null;
  readonly numRequestsAllowed: string | number;
  readonly numRequestsDenied: string | number;
}
export interface WireUsageReports {
  readonly domain: string;
  readonly bucketQuotaUsages: readonly WireBucketUsage[];
}

/** `RateLimitStrategy.BlanketRule`. */
export const BlanketRule = { ALLOW_ALL: 0, DENY_ALL: 1 } as const;

export interface WireStrategy {
  readonly blanketRule?: number;
  readonly tokenBucket?: {
    readonly maxTokens: number;
    readonly tokensPerFill: { readonly value: number };
    readonly fillInterval: { readonly seconds: number };
  };
}
export interface WireBucketAction {
  readonly bucketId: WireBucketId;
  readonly quotaAssignmentAction?: {
    readonly assignmentTimeToLive: { readonly seconds: number };
    readonly rateLimitStrategy: WireStrategy;
  };
  readonly abandonAction?: Record<string, never>;
}
export interface WireQuotaResponse {
  readonly bucketAction: readonly WireBucketAction[];
}

/** One usage entry, checked and mapped. */
export interface BucketUsage {
  /** Canonical identity of the bucket id (its entries in descriptor order, length-prefixed). */
  readonly key: string;
  /** The bucket id as received, echoed back in every action for it. */
  readonly bucketId: WireBucketId;
  /** The descriptor the bucket id maps to ({@link bucketEntries}). */
  readonly entries: readonly DescriptorEntry[];
  readonly allowed: number;
  readonly denied: number;
  /** `time_elapsed` in whole seconds (0 in a bucket's first report). */
  readonly elapsedSec: number;
}

/** What a bucket is told: a token bucket (from the store or the `local` policy) or a blanket rule. */
export type BucketVerdict =
  | {
      readonly kind: 'token_bucket';
      readonly tokensPerFill: number;
      readonly fillIntervalSec: number;
      readonly maxTokens: number;
      readonly ttlSec: number;
    }
  | { readonly kind: 'allow_all' | 'deny_all'; readonly ttlSec: number };

/**
 * The RLQS_* settings the stream service reads (the settings' `rlqs` group fits it as it is;
 * declared here so the transport does not import the settings module).
 */
export interface RlqsStreamSettings {
  readonly bucketKeyOrder: readonly string[];
  readonly clientIdHeader: string;
  readonly reassignIntervalMs: number;
  readonly abandonAfterSec: number;
  readonly maxStreams: number;
  readonly maxBucketsPerStream: number;
  readonly maxReportsPerSecond: number;
}

export interface UsageLimits {
  readonly strings: StringLimits;
  readonly maxBucketEntries: number;
}

/**
 * The descriptor of a bucket id: the keys of `keyOrder` first, in that order, then the other
 * keys sorted by UTF-16 code unit (JavaScript's default sort, equal to code point order for the
 * keys Envoy configs use). So `{tenant: t1, path: /a}` is `path=/a, tenant=t1` by default, and
 * `tenant=t1, path=/a` with RLQS_BUCKET_KEY_ORDER=tenant.
 */
export function bucketEntries(bucket: Readonly<Record<string, string>>, keyOrder: readonly string[]): DescriptorEntry[] {
  const keys = Object.keys(bucket);
  const first = keyOrder.filter((k) => Object.hasOwn(bucket, k));
  const rest = keys.filter((k) => !keyOrder.includes(k)).sort();
  return [...first, ...rest].map((key) => ({ key, value: bucket[key] as string }));
}

/** Checks one `bucket_quota_usages[i]` and maps it; INVALID_ARGUMENT names the field and the bound. */
export function toBucketUsage(u: WireBucketUsage, i: number, keyOrder: readonly string[], limits: UsageLimits): BucketUsage {
  const field = `bucket_quota_usages[${i}]`;
  const bucket = u.bucketId?.bucket;
  if (bucket === undefined || bucket === null) throw new InvalidRequestError(`${field}.bucket_id is required`);
  const keys = Object.keys(bucket);
  if (keys.length === 0) throw new InvalidRequestError(`${field}.bucket_id.bucket is empty; a bucket id needs at least one entry`);
  if (keys.length > limits.maxBucketEntries) {
    throw new InvalidRequestError(
      `${field}.bucket_id.bucket has ${keys.length} entries; at most ${limits.maxBucketEntries} (RLQS_MAX_BUCKET_ENTRIES)`,
    );
  }
  for (const k of keys) {
    const v = bucket[k] as string;
    if (k === '') throw new InvalidRequestError(`${field}.bucket_id.bucket has an empty key`);
    if (v === '') throw new InvalidRequestError(`${field}.bucket_id.bucket[${JSON.stringify(k)}] is empty`);
    const kb = Buffer.byteLength(k, 'utf8');
    if (kb > limits.strings.maxKeyBytes) {
      throw new InvalidRequestError(`${field}.bucket_id.bucket key is ${kb} bytes; at most ${limits.strings.maxKeyBytes}`);
    }
    const vb = Buffer.byteLength(v, 'utf8');
    if (vb > limits.strings.maxValueBytes) {
      throw new InvalidRequestError(
        `${field}.bucket_id.bucket[${JSON.stringify(k)}] is ${vb} bytes; at most ${limits.strings.maxValueBytes} (MAX_DESCRIPTOR_VALUE_BYTES)`,
      );
    }
  }
  const entries = bucketEntries(bucket, keyOrder);
  let key = '';
  for (const e of entries) key += `${e.key.length}:${e.key}=${e.value.length}:${e.value}|`;
  return {
    key,
    bucketId: { bucket: Object.fromEntries(entries.map((e) => [e.key, e.value])) },
    entries,
    allowed: count(u.numRequestsAllowed, `${field}.num_requests_allowed`),
    denied: count(u.numRequestsDenied, `${field}.num_requests_denied`),
    elapsedSec: u.timeElapsed === null ? 0 : count(u.timeElapsed.seconds, `${field}.time_elapsed.seconds`),
  };
}

function count(raw: string | number, field: string): number {
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidRequestError(`${field} is ${String(raw)}; at most ${Number.MAX_SAFE_INTEGER}`);
  return n;
}

/** The verdict for a store assignment: DENY_ALL when the budget is spent, else its token bucket. */
export function assignmentVerdict(a: QuotaAssignment): BucketVerdict {
  if (a.denyAll || a.tokensPerFill <= 0) return { kind: 'deny_all', ttlSec: a.ttlSec };
  return {
    kind: 'token_bucket',
    tokensPerFill: a.tokensPerFill,
    fillIntervalSec: a.fillIntervalSec,
    maxTokens: a.maxTokens,
    ttlSec: a.ttlSec,
  };
}

/** The `BucketAction` for a verdict; `ttlSec` overrides the verdict's TTL (0 at shutdown). */
export function verdictAction(bucketId: WireBucketId, v: BucketVerdict, ttlSec: number = v.ttlSec): WireBucketAction {
  const strategy: WireStrategy =
    v.kind === 'token_bucket'
      ? {
          tokenBucket: {
            maxTokens: Math.max(1, Math.round(v.maxTokens)),
            tokensPerFill: { value: Math.max(1, Math.round(v.tokensPerFill)) },
            fillInterval: { seconds: Math.max(1, Math.round(v.fillIntervalSec)) },
          },
        }
      : { blanketRule: v.kind === 'deny_all' ? BlanketRule.DENY_ALL : BlanketRule.ALLOW_ALL };
  return {
    bucketId,
    quotaAssignmentAction: { assignmentTimeToLive: { seconds: Math.max(0, Math.round(ttlSec)) }, rateLimitStrategy: strategy },
  };
}

export function abandonAction(bucketId: WireBucketId): WireBucketAction {
  return { bucketId, abandonAction: {} };
}

/** RESOURCE_EXHAUSTED naming a bound and its setting. */
export function boundError(what: string, limit: number, setting: string): RlqsBoundError {
  return new RlqsBoundError(`${what}; at most ${limit} (${setting}); raise ${setting} or split the load`);
}
