import { InvalidRequestError } from '../errors.js';
import { REQUEST_LIMITS } from '../limiter/limiter.js';
import type { OverrideLimitSpec } from '../limiter/overrides.js';
import { DEFAULT_STRING_LIMITS, type StringLimits } from '../limiter/string-limits.js';
import type { DescriptorEntry } from '../limiter/types.js';
import { Checker } from './checker.js';
import { checkSingle } from './limit-schema.js';
import { json } from './xds-resources.js';

/**
 * A tenant override as sent to `PUT /v1/overrides`, checked as strictly as a config file's
 * `rate_limit` (the same checker: unit, requests_per_unit, algorithm, burst, unit_multiplier and
 * their bounds), plus what a config file does not have: the domain (which must be configured) and
 * the descriptor's entries. Every problem is reported at once, each naming its field:
 *
 *   {"domain": "edge", "entries": [{"key": "company_id", "value": "42"}],
 *    "rate_limit": {"unit": "minute", "requests_per_unit": 5000}}
 */

export const OVERRIDE_KEYS = ['domain', 'entries', 'rate_limit'] as const;
/** `rate_limit` keys an override may not use: it is one limit, not a config rule. */
const RULE_ONLY_KEYS = ['unlimited', 'name', 'replaces'] as const;

export interface CheckedOverride {
  readonly domain: string;
  readonly entries: readonly DescriptorEntry[];
  readonly limit: OverrideLimitSpec;
}

/**
 * @param knownDomain whether a domain is in the loaded config (an override of an unknown domain
 *   would never apply, since the limiter answers OK for it before looking at descriptors).
 * @throws InvalidRequestError naming each bad field.
 */
export function checkOverride(
  body: unknown,
  knownDomain: (d: string) => boolean,
  limits: StringLimits = DEFAULT_STRING_LIMITS,
): CheckedOverride {
  const problems: string[] = [];
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new InvalidRequestError('the override must be a JSON object with domain, entries and rate_limit');
  const o = body as Record<string, unknown>;
  for (const k of Object.keys(o))
    if (!(OVERRIDE_KEYS as readonly string[]).includes(k)) problems.push(`${k}: unknown key; allowed: ${OVERRIDE_KEYS.join(', ')}`);
  const domain = checkDomain(o['domain'], knownDomain, limits, problems);
  const entries = checkOverrideEntries(o['entries'], limits, problems);
  const limit = checkRateLimit(o['rate_limit'], problems);
  if (problems.length > 0 || domain === undefined || entries === undefined || limit === undefined)
    throw new InvalidRequestError(`invalid override: ${problems.join('; ')}`);
  return { domain, entries, limit };
}

function checkDomain(v: unknown, known: (d: string) => boolean, limits: StringLimits, problems: string[]): string | undefined {
  if (typeof v !== 'string' || v === '') {
    problems.push('domain: must be a non-empty string');
    return undefined;
  }
  if (Buffer.byteLength(v) > limits.maxDomainBytes) {
    problems.push(`domain: longer than ${limits.maxDomainBytes} bytes`);
    return undefined;
  }
  if (!known(v)) {
    problems.push(`domain: ${JSON.stringify(v)} is not a configured domain (an override of it would never apply)`);
    return undefined;
  }
  return v;
}

/** A descriptor's entries (`[{key, value}]`, 1 to 32, bounded strings); also used by the counters API. */
export function checkOverrideEntries(
  v: unknown,
  limits: StringLimits,
  problems: string[],
  field = 'entries',
): DescriptorEntry[] | undefined {
  if (!Array.isArray(v) || v.length === 0) {
    problems.push(`${field}: must be a non-empty list of {key, value}`);
    return undefined;
  }
  if (v.length > REQUEST_LIMITS.maxEntries) {
    problems.push(`${field}: ${v.length} entries (at most ${REQUEST_LIMITS.maxEntries})`);
    return undefined;
  }
  const out: DescriptorEntry[] = [];
  v.forEach((e: unknown, i) => {
    const at = `${field}[${i}]`;
    if (typeof e !== 'object' || e === null || Array.isArray(e)) return problems.push(`${at}: must be an object {key, value}`);
    const { key, value, ...rest } = e as Record<string, unknown>;
    for (const k of Object.keys(rest)) problems.push(`${at}.${k}: unknown key; allowed: key, value`);
    if (typeof key !== 'string' || key === '') problems.push(`${at}.key: must be a non-empty string`);
    else if (Buffer.byteLength(key) > limits.maxKeyBytes) problems.push(`${at}.key: longer than ${limits.maxKeyBytes} bytes`);
    if (typeof value !== 'string') problems.push(`${at}.value: must be a string`);
    else if (Buffer.byteLength(value) > limits.maxValueBytes) problems.push(`${at}.value: longer than ${limits.maxValueBytes} bytes`);
    if (typeof key === 'string' && typeof value === 'string') out.push({ key, value });
    return undefined;
  });
  return out.length === v.length ? out : undefined;
}

function checkRateLimit(v: unknown, problems: string[]): OverrideLimitSpec | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    problems.push('rate_limit: must be an object like {"unit": "minute", "requests_per_unit": 5000}');
    return undefined;
  }
  const r = v as Record<string, unknown>;
  for (const k of RULE_ONLY_KEYS)
    if (k in r) problems.push(`rate_limit.${k}: not allowed in an override (it is one limit; remove the override to go back to the rule)`);
  if (!('requests_per_unit' in r)) problems.push('rate_limit.requests_per_unit: missing');
  // Numbers from JSON: an integer written as 10.0 arrives as 10, which the YAML checker would
  // accept as an integer too; a float arrives as a float and is refused.
  const c = new Checker();
  const spec = checkSingle(c, json(v), 'rate_limit');
  for (const e of c.errors) problems.push(`${e.field}: ${e.detail}`);
  if (spec.kind !== 'limits' || spec.limits.length !== 1) return undefined;
  const l = spec.limits[0]!;
  return { algorithm: l.algorithm, unit: l.unit, unitMultiplier: l.unitMultiplier, requestsPerUnit: l.requestsPerUnit, burst: l.burst };
}
