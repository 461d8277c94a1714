/**
 * The one translation between the RLS v3 wire messages and the domain
 * (`src/limiter/types.ts`). The gRPC handler and the JSON endpoint (`../proto-json.ts`) both use
 * it, so a field means the same thing on both.
 *
 * Wire shapes are the objects @grpc/proto-loader produces with `SERVER_LOADER_OPTIONS`
 * (`protos.ts`): camelCase names, enum numbers, 64-bit integers as strings, absent messages as
 * null. Encoding goes through protobufjs `fromObject`, which accepts the same shapes.
 *
 * Response fidelity with envoyproxy/ratelimit (src/service/ratelimit.go, src/limiter/base_limiter.go):
 * - a descriptor with a limit: code, current_limit {requests_per_unit, unit, name},
 *   limit_remaining, duration_until_reset in whole seconds (Envoy reads only `.seconds()`);
 * - no rule matched: code OK, no current_limit, limit_remaining as reported (0), no duration;
 * - unlimited rule: code OK, limit_remaining = 2^32-1, no current_limit, no duration;
 * - response headers (LIMIT_RESPONSE_HEADERS_ENABLED): taken from the descriptor closest to its
 *   limit, see {@link decisionToResponse}.
 */
import { InvalidRequestError } from '../../errors.js';
export { EXPLAIN_HEADER, EXPLAIN_TRAILER } from './explain.js';
import { checkStringSizes, DEFAULT_STRING_LIMITS, type StringLimits } from '../../limiter/string-limits.js';
import type {
  Decision,
  DescriptorStatus,
  LimitOverride,
  MetadataStruct,
  MetadataValue,
  RateLimitCheck,
  RequestDescriptor,
  Unit,
} from '../../limiter/types.js';

/** `envoy.service.ratelimit.v3.RateLimitResponse.Code`. */
export const WireCode = { UNKNOWN: 0, OK: 1, OVER_LIMIT: 2 } as const;
export type WireCode = (typeof WireCode)[keyof typeof WireCode];

/**
 * `envoy.type.v3.RateLimitUnit` (request overrides) by enum number. Index 0 (UNKNOWN) and
 * numbers past the table have no domain unit.
 */
const OVERRIDE_UNITS: readonly (Unit | undefined)[] = [undefined, 'second', 'minute', 'hour', 'day', 'month', 'year', 'week'];

/** Domain unit -> `RateLimitResponse.RateLimit.Unit` number (same numbering as RateLimitUnit). */
export const RESPONSE_UNIT: Readonly<Record<Unit, number>> = Object.freeze({
  second: 1,
  minute: 2,
  hour: 3,
  day: 4,
  month: 5,
  year: 6,
  week: 7,
});

export const MAX_UINT32 = 4_294_967_295;

/** Metadata key carrying `Decision.degraded` in `RateLimitResponse.dynamic_metadata`. */
export const DEGRADED_METADATA_KEY = 'meshlimit.degraded';

// ---- request (wire -> domain) --------------------------------------------------------------

export interface WireEntry {
  key: string;
  value: string;
}

export interface WireRateLimitOverride {
  requestsPerUnit: number;
  /** `envoy.type.v3.RateLimitUnit` number. */
  unit: number;
}

export interface WireDescriptor {
  entries: WireEntry[];
  limit: WireRateLimitOverride | null;
  /** google.protobuf.UInt64Value; null when absent. `value` is a decimal string (or a number from JSON). */
  hitsAddend: { value: string | number } | null;
}

/** `RateLimitRequest` as decoded with `SERVER_LOADER_OPTIONS`. */
export interface WireRateLimitRequest {
  domain: string;
  descriptors: WireDescriptor[];
  hitsAddend: number;
  /**
   * Set by the gRPC codec only (codec-decode.ts), and only when some string field's bytes were
   * not valid UTF-8: that field's name (`domain`, `descriptors[0].entries[1].value`). Its string
   * holds U+FFFD where the bytes were invalid, so it cannot be counted as what was sent.
   */
  invalidUtf8?: string | undefined;
}

/**
 * Translates a decoded request. Checks on the request as received throw
 * {@link InvalidRequestError} here, naming the field: strings that are not valid UTF-8, strings
 * over `limits` (before descriptor resolution reads a token), unit numbers and 64-bit ranges.
 * The limiter validates the rest (empty domain, no descriptors, empty keys, counts).
 *
 * Entry objects are passed through, not copied: proto-loader builds exactly `{ key, value }`.
 */
export function requestToCheck(req: WireRateLimitRequest, limits: StringLimits = DEFAULT_STRING_LIMITS): RateLimitCheck {
  // As envoyproxy/ratelimit (Go protobuf rejects invalid UTF-8 in a string field): decoded with
  // U+FFFD, distinct values sent as bytes would share one counter.
  if (req.invalidUtf8 !== undefined) throw new InvalidRequestError(`${req.invalidUtf8} is not valid UTF-8`);
  checkStringSizes(req.domain, req.descriptors, limits);
  const wire = req.descriptors;
  const descriptors = new Array<RequestDescriptor>(wire.length);
  for (let i = 0; i < wire.length; i++) {
    const d = wire[i]!;
    descriptors[i] = {
      entries: d.entries,
      limitOverride: d.limit == null ? undefined : overrideFromWire(d.limit, i),
      hitsAddend: d.hitsAddend == null ? undefined : uint64FromWire(d.hitsAddend.value, i),
    };
  }
  return { domain: req.domain, descriptors, hitsAddend: req.hitsAddend };
}

function overrideFromWire(limit: WireRateLimitOverride, i: number): LimitOverride {
  const unit = OVERRIDE_UNITS[limit.unit];
  if (unit === undefined) {
    throw new InvalidRequestError(`descriptors[${i}].limit.unit must be a known RateLimitUnit, got ${String(limit.unit)}`);
  }
  return { requestsPerUnit: limit.requestsPerUnit, unit };
}

/** A uint64 from the wire as a safe integer; larger values cannot be counted exactly. */
function uint64FromWire(value: string | number, i: number): number {
  const n = typeof value === 'number' ? value : Number(value);
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new InvalidRequestError(
      `descriptors[${i}].hits_addend must be an integer between 0 and ${Number.MAX_SAFE_INTEGER}, got ${String(value)}`,
    );
  }
  return n;
}

// ---- response (domain -> wire) -------------------------------------------------------------

export interface WireRateLimit {
  name: string;
  requestsPerUnit: number;
  /** `RateLimitResponse.RateLimit.Unit` number. */
  unit: number;
}

/** google.protobuf.Duration; `seconds` is an int64 (a number here: always small). */
export interface WireDuration {
  seconds: number;
  nanos?: number;
}

export interface WireDescriptorStatus {
  code: WireCode;
  currentLimit: WireRateLimit | undefined;
  limitRemaining: number;
  durationUntilReset: WireDuration | undefined;
}

export interface WireHeaderValue {
  key: string;
  value: string;
}

/** google.protobuf.Value: exactly one of its fields is set (the `kind` oneof). */
export interface WireStructValue {
  nullValue?: 0;
  numberValue?: number;
  stringValue?: string;
  boolValue?: boolean;
  structValue?: WireStruct;
  listValue?: WireListValue;
}

export interface WireListValue {
  values: WireStructValue[];
}

/** google.protobuf.Struct; `fields` has a null prototype when built here (any key is data). */
export interface WireStruct {
  fields: Record<string, WireStructValue>;
}

/** `RateLimitResponse` in the shape protobufjs `fromObject` encodes. */
export interface WireRateLimitResponse {
  overallCode: WireCode;
  statuses: WireDescriptorStatus[];
  responseHeadersToAdd: WireHeaderValue[] | undefined;
  dynamicMetadata: WireStruct | undefined;
}

/**
 * Names of the rate-limit response headers (envoyproxy/ratelimit LIMIT_RESPONSE_HEADERS_ENABLED,
 * defaults `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset`).
 */
export interface ResponseHeaderNames {
  readonly limit: string;
  readonly remaining: string;
  readonly reset: string;
}

/** SOFT_LIMIT_HEADER and SOFT_LIMIT_SHARE. */
export interface SoftLimit {
  readonly header: string;
  /** Between 0 and 1: past this share of a limit used, the header is sent. */
  readonly share: number;
}

/**
 * The soft-breach header of an admitted answer: the largest share used, in whole percent rounded
 * down, over the descriptors with a limit that are not over it (a token bucket against its
 * burst), when it is above `soft.share`; undefined otherwise. "Used" counts this request.
 */
function softBreach(decision: Decision, soft: SoftLimit): WireHeaderValue | undefined {
  let most = 0;
  for (const s of decision.statuses) {
    const l = s.limit;
    if (l === undefined || s.code !== 'OK' || s.shadowed) continue;
    const capacity = l.algorithm === 'token_bucket' ? (l.burst ?? l.requestsPerUnit) : l.requestsPerUnit;
    if (capacity <= 0) continue;
    const used = 1 - s.remaining / capacity;
    if (used > most) most = used;
  }
  return most > soft.share ? { key: soft.header, value: String(Math.floor(most * 100)) } : undefined;
}

/**
 * Translates a decision. With `headers`, adds the three rate-limit headers exactly as
 * envoyproxy/ratelimit does: the reported descriptor is the last OVER_LIMIT one that is not a quota descriptor if any, else the
 * first with the fewest `limit_remaining` among those with a current limit (strictly below
 * 2^32-1); none when no descriptor has a limit. Values: requests_per_unit, limit_remaining, and
 * seconds until reset (upstream recomputes them from the unit and its clock; we use the
 * status's own reset, which is the same number for a plain fixed window and the true one for
 * the other algorithms and custom windows).
 */
export function decisionToResponse(
  decision: Decision,
  headers?: ResponseHeaderNames,
  degradedHeader?: string,
  softLimit?: SoftLimit,
): WireRateLimitResponse {
  const n = decision.statuses.length;
  const statuses = new Array<WireDescriptorStatus>(n);
  let reported: WireDescriptorStatus | undefined;
  let minRemaining = MAX_UINT32;
  for (let i = 0; i < n; i++) {
    const wire = statusToWire(decision.statuses[i]!);
    statuses[i] = wire;
    if (headers !== undefined && wire.currentLimit !== undefined) {
      // As upstream: an over-limit quota descriptor does not claim the headers, it competes on remaining.
      if (wire.code === WireCode.OVER_LIMIT && decision.statuses[i]!.quota !== true) {
        reported = wire;
        minRemaining = 0;
      } else if (wire.limitRemaining < minRemaining) {
        reported = wire;
        minRemaining = wire.limitRemaining;
      }
    }
  }
  let responseHeadersToAdd = reported === undefined ? undefined : rateLimitHeaders(reported, headers!);
  if (degradedHeader !== undefined && decision.degraded !== undefined) {
    // DEGRADED_HEADER: tells the client (and logs at the edge) this answer was not an exact, shared-counter one.
    responseHeadersToAdd = [...(responseHeadersToAdd ?? []), { key: degradedHeader, value: decision.degraded }];
  }
  const soft = softLimit === undefined || decision.code !== 'OK' ? undefined : softBreach(decision, softLimit);
  if (soft !== undefined) responseHeadersToAdd = [...(responseHeadersToAdd ?? []), soft];
  return {
    overallCode: decision.code === 'OVER_LIMIT' ? WireCode.OVER_LIMIT : WireCode.OK,
    statuses,
    responseHeadersToAdd,
    dynamicMetadata: decision.request === undefined && decision.degraded === undefined ? undefined : dynamicMetadata(decision),
  };
}

/**
 * `dynamic_metadata`: with RESPONSE_DYNAMIC_METADATA (`decision.request` set), what
 * envoyproxy/ratelimit's `ratelimitToMetadata` sends (src/service/ratelimit.go):
 * - `domain`: the request's domain;
 * - `descriptors`: one struct per request descriptor, `entries` as `key=value` strings, `limit`
 *   (the override as protobuf text, `requests_per_unit:N unit:UNIT`; upstream prints it with Go's
 *   deliberately unstable text format, which may put two spaces between the fields) and
 *   `hitsAddend` (a number) when the descriptor carries them;
 * - `hitsAddend`: the request's, when not 0;
 * - `metadata`: the passed descriptors' config metadata, merged (`decision.metadata`), when any.
 * And meshlimit's own `meshlimit.degraded` when the answer is degraded, with or without the rest.
 */
function dynamicMetadata(decision: Decision): WireStruct {
  const fields = Object.create(null) as Record<string, WireStructValue>;
  const req = decision.request;
  if (req !== undefined) {
    fields.domain = { stringValue: req.domain };
    fields.descriptors = { listValue: { values: req.descriptors.map(descriptorToWire) } };
    if (req.hitsAddend !== 0) fields.hitsAddend = { numberValue: req.hitsAddend };
    if (decision.metadata !== undefined) fields.metadata = { structValue: structToWire(decision.metadata) };
  }
  if (decision.degraded !== undefined) fields[DEGRADED_METADATA_KEY] = { stringValue: decision.degraded };
  return { fields };
}

function descriptorToWire(d: RequestDescriptor): WireStructValue {
  const fields = Object.create(null) as Record<string, WireStructValue>;
  fields.entries = { listValue: { values: d.entries.map((e) => ({ stringValue: `${e.key}=${e.value}` })) } };
  const o = d.limitOverride;
  if (o !== undefined) {
    const parts = o.requestsPerUnit === 0 ? [] : [`requests_per_unit:${o.requestsPerUnit}`];
    parts.push(`unit:${o.unit.toUpperCase()}`);
    fields.limit = { stringValue: parts.join(' ') };
  }
  if (d.hitsAddend !== undefined) fields.hitsAddend = { numberValue: d.hitsAddend };
  return { structValue: { fields } };
}

/** Config metadata (src/limiter/types.ts `MetadataValue`) as protobuf Struct values. */
export function structToWire(s: MetadataStruct): WireStruct {
  const fields = Object.create(null) as Record<string, WireStructValue>;
  for (const key of Object.keys(s)) fields[key] = valueToWire(s[key]!);
  return { fields };
}

function valueToWire(v: MetadataValue): WireStructValue {
  if (v === null) return { nullValue: 0 };
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'number') return { numberValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (Array.isArray(v)) return { listValue: { values: (v as readonly MetadataValue[]).map(valueToWire) } };
  return { structValue: structToWire(v as MetadataStruct) };
}

export function explainLimits(decision: Decision): string {
  return JSON.stringify(
    decision.statuses.map((s) =>
      s.limit === undefined || s.unlimited
        ? null
        : {
            requestsPerUnit: s.limit.requestsPerUnit,
            unit: s.limit.unit,
            unitMultiplier: s.limit.unitMultiplier,
            algorithm: s.limit.algorithm ?? 'fixed_window',
            burst: s.limit.burst ?? s.limit.requestsPerUnit,
          },
    ),
  );
}

/** One descriptor status on the wire; see the module comment for the three shapes. */
export function statusToWire(s: DescriptorStatus): WireDescriptorStatus {
  if (s.unlimited) {
    return { code: WireCode.OK, currentLimit: undefined, limitRemaining: MAX_UINT32, durationUntilReset: undefined };
  }
  const code = s.code === 'OVER_LIMIT' ? WireCode.OVER_LIMIT : WireCode.OK;
  const limit = s.limit;
  if (limit === undefined) {
    return { code, currentLimit: undefined, limitRemaining: toUint32(s.remaining), durationUntilReset: undefined };
  }
  return {
    code,
    // unitMultiplier has no field in RLS v3 (upstream proposals add one); the base unit is sent.
    currentLimit: { name: limit.name ?? '', requestsPerUnit: toUint32(limit.requestsPerUnit), unit: RESPONSE_UNIT[limit.unit] },
    limitRemaining: toUint32(s.remaining),
    durationUntilReset: resetDuration(s.resetMs),
  };
}

/**
 * `duration_until_reset` from milliseconds: whole seconds rounded up, no nanos. This is what
 * envoyproxy/ratelimit sends (`window - now % window` in whole seconds) and what Envoy reads
 * (`duration_until_reset().seconds()` for X-RateLimit-Reset); rounding down would announce a
 * reset up to a second early.
 */
export function resetDuration(resetMs: number): WireDuration {
  return { seconds: resetMs > 0 ? Math.ceil(resetMs / 1000) : 0 };
}

function rateLimitHeaders(s: WireDescriptorStatus, names: ResponseHeaderNames): WireHeaderValue[] {
  return [
    { key: names.limit, value: String(s.currentLimit!.requestsPerUnit) },
    { key: names.remaining, value: String(s.limitRemaining) },
    { key: names.reset, value: String(s.durationUntilReset?.seconds ?? 0) },
  ];
}

/** Clamps to the uint32 range of the wire fields (protobufjs would otherwise wrap around). */
function toUint32(n: number): number {
  return n >= MAX_UINT32 ? MAX_UINT32 : n > 0 ? Math.floor(n) : 0;
}
