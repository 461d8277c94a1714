/**
 * proto3 JSON for the RLS messages, for the HTTP `POST /json` endpoint (envoyproxy/ratelimit
 * decodes it with `protojson.Unmarshal` and answers with `protojson.Marshal`).
 *
 * This module only translates JSON syntax to and from the wire shapes of
 * `grpc/mapping.ts`; the meaning of every field lives there, once, for both transports.
 *
 * Request (protojson.Unmarshal rules): field names in lowerCamelCase or as in the .proto;
 * `null` means absent; unknown fields are errors; integers as JSON numbers or decimal strings;
 * enums by name or number; a UInt64Value is its bare value (`"hitsAddend": "5"`).
 * Response (protojson.Marshal rules): lowerCamelCase; fields at their default are omitted;
 * enums by name; Duration as `"<seconds>s"`; Struct as a plain JSON object.
 */
import { InvalidRequestError } from '../../errors.js';
import type { StringLimits } from '../../limiter/string-limits.js';
import type { Decision, RateLimitCheck } from '../../limiter/types.js';
import {
  decisionToResponse,
  type SoftLimit,
  MAX_UINT32,
  requestToCheck,
  type ResponseHeaderNames,
  type WireDescriptor,
  type WireDuration,
  type WireEntry,
  type WireRateLimitRequest,
  type WireRateLimitResponse,
  type WireStruct,
  type WireStructValue,
} from '../grpc/mapping.js';

const CODE_NAMES = ['UNKNOWN', 'OK', 'OVER_LIMIT'] as const;
const UNIT_NAMES = ['UNKNOWN', 'SECOND', 'MINUTE', 'HOUR', 'DAY', 'MONTH', 'YEAR', 'WEEK'] as const;
type UnitName = (typeof UNIT_NAMES)[number];

export interface ProtoJsonRateLimit {
  name?: string;
  requestsPerUnit?: number;
  unit?: UnitName;
}

export interface ProtoJsonDescriptorStatus {
  code?: 'OK' | 'OVER_LIMIT';
  currentLimit?: ProtoJsonRateLimit;
  limitRemaining?: number;
  /** e.g. `"42s"`. */
  durationUntilReset?: string;
}

/** `RateLimitResponse` as protojson.Marshal writes it (only the fields meshlimit sets). */
export interface ProtoJsonResponse {
  overallCode?: 'OK' | 'OVER_LIMIT';
  statuses?: ProtoJsonDescriptorStatus[];
  responseHeadersToAdd?: { key?: string; value?: string }[];
  /** google.protobuf.Struct as a plain JSON object. */
  dynamicMetadata?: Record<string, unknown>;
}

/**
 * Parses a proto3 JSON `RateLimitRequest` (already `JSON.parse`d) into a domain check.
 * @throws InvalidRequestError naming the offending field.
 */
export function jsonToCheck(body: unknown, limits?: StringLimits): RateLimitCheck {
  return requestToCheck(jsonToWireRequest(body), limits);
}

/** Serialises a decision as envoyproxy/ratelimit's `/json` endpoint does. */
export function decisionToJson(
  decision: Decision,
  headers?: ResponseHeaderNames,
  degradedHeader?: string,
  softLimit?: SoftLimit,
): ProtoJsonResponse {
  return responseToJson(decisionToResponse(decision, headers, degradedHeader, softLimit));
}

// ---- request ------------------------------------------------------------------------------

/** [lowerCamelCase name, .proto name] of each field of a message. */
type FieldNames = readonly (readonly [string, string])[];

const REQUEST_FIELDS: FieldNames = [
  ['domain', 'domain'],
  ['descriptors', 'descriptors'],
  ['hitsAddend', 'hits_addend'],
];
const DESCRIPTOR_FIELDS: FieldNames = [
  ['entries', 'entries'],
  ['limit', 'limit'],
  ['hitsAddend', 'hits_addend'],
];
const ENTRY_FIELDS: FieldNames = [
  ['key', 'key'],
  ['value', 'value'],
];
const OVERRIDE_FIELDS: FieldNames = [
  ['requestsPerUnit', 'requests_per_unit'],
  ['unit', 'unit'],
];

/** The wire shape of a proto3 JSON request (exported for tests). */
export function jsonToWireRequest(body: unknown): WireRateLimitRequest {
  const f = readMessage(body, '', REQUEST_FIELDS);
  const descriptors = readArray(f.descriptors, 'descriptors').map((d, i) => readDescriptor(d, `descriptors[${i}]`));
  return {
    domain: readString(f.domain, 'domain'),
    descriptors,
    hitsAddend: readUint32(f.hitsAddend, 'hits_addend'),
  };
}

function readDescriptor(value: unknown, path: string): WireDescriptor {
  const f = readMessage(value, path, DESCRIPTOR_FIELDS);
  const entries = readArray(f.entries, `${path}.entries`).map((e, j): WireEntry => {
    const ef = readMessage(e, `${path}.entries[${j}]`, ENTRY_FIELDS);
    return { key: readString(ef.key, `${path}.entries[${j}].key`), value: readString(ef.value, `${path}.entries[${j}].value`) };
  });
  let limit: WireDescriptor['limit'] = null;
  if (f.limit !== undefined) {
    const lf = readMessage(f.limit, `${path}.limit`, OVERRIDE_FIELDS);
    limit = {
      requestsPerUnit: readUint32(lf.requestsPerUnit, `${path}.limit.requests_per_unit`),
      unit: readUnit(lf.unit, `${path}.limit.unit`),
    };
  }
  return { entries, limit, hitsAddend: f.hitsAddend === undefined ? null : { value: readUint64(f.hitsAddend, `${path}.hits_addend`) } };
}

/** Fields of a JSON object keyed by their camelCase name; null values dropped. */
function readMessage(value: unknown, path: string, names: FieldNames): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalid(path || 'request', 'must be a JSON object');
  }
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    const field = names.find(([json, proto]) => key === json || key === proto);
    if (field === undefined) throw invalid(join(path, key), 'unknown field');
    const [json] = field;
    if (json in out) throw invalid(join(path, key), 'duplicate field');
    out[json] = v === null ? undefined : v;
  }
  return out;
}

function readArray(value: unknown, path: string): unknown[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw invalid(path, 'must be an array');
  return value;
}

/**
 * A string field. A lone surrogate (`"\ud800"`, valid JSON) is rejected: it has no UTF-8 form
 * (protojson, like Go, rejects it as invalid UTF-8), and counter digests, which hash the UTF-8
 * form, would count `\ud800`, `\udfff` and `\ufffd` on one counter.
 */
function readString(value: unknown, path: string): string {
  if (value === undefined) return '';
  if (typeof value !== 'string') throw invalid(path, 'must be a string');
  if (!value.isWellFormed()) throw invalid(path, 'holds a lone surrogate, which is not valid UTF-8');
  return value;
}

function readUint32(value: unknown, path: string): number {
  const n = readInteger(value, path);
  if (n > MAX_UINT32) throw invalid(path, `must be at most ${MAX_UINT32}`);
  return n;
}

/** uint64 stays a string when given as one: the mapping rejects values above 2^53 exactly. */
function readUint64(value: unknown, path: string): string | number {
  if (typeof value === 'string') {
    if (!/^\d+$/.test(value)) throw invalid(path, 'must be a non-negative integer');
    return value;
  }
  return readInteger(value, path);
}

function readInteger(value: unknown, path: string): number {
  if (value === undefined) return 0;
  const n = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) throw invalid(path, 'must be a non-negative integer');
  return n;
}

function readUnit(value: unknown, path: string): number {
  if (value === undefined) return 0;
  if (typeof value === 'number' && Number.isInteger(value)) return value;
  const i = typeof value === 'string' ? UNIT_NAMES.indexOf(value as UnitName) : -1;
  if (i < 0) throw invalid(path, `must be one of ${UNIT_NAMES.join(', ')}`);
  return i;
}

function join(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

function invalid(path: string, detail: string): InvalidRequestError {
  return new InvalidRequestError(`${path}: ${detail}`);
}

// ---- response -----------------------------------------------------------------------------

/** protojson.Marshal of a wire response (defaults omitted). */
export function responseToJson(res: WireRateLimitResponse): ProtoJsonResponse {
  const out: ProtoJsonResponse = {};
  if (res.overallCode !== 0) out.overallCode = CODE_NAMES[res.overallCode] as 'OK' | 'OVER_LIMIT';
  if (res.statuses.length > 0) {
    out.statuses = res.statuses.map((s) => {
      const js: ProtoJsonDescriptorStatus = {};
      if (s.code !== 0) js.code = CODE_NAMES[s.code] as 'OK' | 'OVER_LIMIT';
      if (s.currentLimit !== undefined) {
        const l: ProtoJsonRateLimit = {};
        if (s.currentLimit.name !== '') l.name = s.currentLimit.name;
        if (s.currentLimit.requestsPerUnit !== 0) l.requestsPerUnit = s.currentLimit.requestsPerUnit;
        if (s.currentLimit.unit !== 0) l.unit = UNIT_NAMES[s.currentLimit.unit] ?? 'UNKNOWN';
        js.currentLimit = l;
      }
      if (s.limitRemaining !== 0) js.limitRemaining = s.limitRemaining;
      if (s.durationUntilReset !== undefined) js.durationUntilReset = durationToJson(s.durationUntilReset);
      return js;
    });
  }
  if (res.responseHeadersToAdd !== undefined && res.responseHeadersToAdd.length > 0) {
    out.responseHeadersToAdd = res.responseHeadersToAdd.map((h) => (h.value === '' ? { key: h.key } : { key: h.key, value: h.value }));
  }
  if (res.dynamicMetadata !== undefined) out.dynamicMetadata = structToJson(res.dynamicMetadata);
  return out;
}

/** protojson of a Struct: a JSON object (null-prototype, so any key is data). */
function structToJson(s: WireStruct): Record<string, unknown> {
  const out = Object.create(null) as Record<string, unknown>;
  for (const key of Object.keys(s.fields)) out[key] = valueToJson(s.fields[key]!);
  return out;
}

/**
 * protojson of a Value. A non-finite number has no JSON form (protojson.Marshal fails on it, so
 * upstream's /json answers an error); it is written as the string protojson reads back for a
 * double ("NaN", "Infinity", "-Infinity") rather than failing the whole answer.
 */
function valueToJson(v: WireStructValue): unknown {
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.numberValue !== undefined) return Number.isFinite(v.numberValue) ? v.numberValue : String(v.numberValue);
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.structValue !== undefined) return structToJson(v.structValue);
  if (v.listValue !== undefined) return v.listValue.values.map(valueToJson);
  return null;
}

/** proto3 JSON Duration: seconds with 0, 3, 6 or 9 fractional digits and an `s`. */
export function durationToJson(d: WireDuration): string {
  const nanos = d.nanos ?? 0;
  if (nanos === 0) return `${d.seconds}s`;
  let frac = String(nanos).padStart(9, '0');
  if (frac.endsWith('000000')) frac = frac.slice(0, 3);
  else if (frac.endsWith('000')) frac = frac.slice(0, 6);
  return `${d.seconds}.${frac}s`;
}
