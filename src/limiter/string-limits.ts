import { InvalidRequestError } from '../errors.js';
import type { DescriptorEntry } from './types.js';

/**
 * The largest strings a rate-limit request may carry, in UTF-8 bytes; a request with a longer
 * one is INVALID_ARGUMENT naming the field. The transports check them on the request as received
 * (`requestToCheck`, for gRPC and `/json` alike), before descriptor resolution reads any token.
 *
 * Why these sizes: keys and domains come from the Envoy config (`descriptor_key`, the filter's
 * `domain`), never from a client, so 256 bytes is generous. Values are what clients send: header
 * values, paths, addresses, IDs, bearer tokens (a few KB). The default, 64 KiB, is above
 * Envoy's default limit on all request headers together (`max_request_headers_kb`, 60 KiB), so
 * no value that Envoy forwards by default is refused: a refused request fails its RLS call, and
 * Envoy's default `failure_mode_deny: false` would then let it through unlimited, a way around
 * the limit. Raise it (`MAX_DESCRIPTOR_VALUE_BYTES`) with Envoy's header limit.
 *
 * What the sizes do not have to bound: memory kept between requests. Nothing a request sends is
 * retained beyond its own call except counter identities, which are fixed-size digests
 * (keys.ts), and tag-cache entries, which only short descriptors get, within a byte budget.
 */
export interface StringLimits {
  readonly maxDomainBytes: number;
  readonly maxKeyBytes: number;
  readonly maxValueBytes: number;
}

export const DEFAULT_STRING_LIMITS: StringLimits = Object.freeze({ maxDomainBytes: 256, maxKeyBytes: 256, maxValueBytes: 65_536 });

/**
 * Throws {@link InvalidRequestError} for the first string over its limit, e.g.
 * `descriptors[0].entries[1].value is 70000 bytes; at most 65536`. Cost: a length comparison per
 * string; the UTF-8 length is computed only for a string between a third of its limit and the
 * limit in UTF-16 units (a unit is 1 to 3 UTF-8 bytes; a surrogate pair, 2 units, is 4 bytes).
 */
export function checkStringSizes(
  domain: string,
  descriptors: readonly { readonly entries: readonly DescriptorEntry[] }[],
  limits: StringLimits,
): void {
  if (overBytes(domain, limits.maxDomainBytes)) throw tooLong('domain', domain, limits.maxDomainBytes);
  for (let i = 0; i < descriptors.length; i++) {
    const entries = descriptors[i]!.entries;
    for (let j = 0; j < entries.length; j++) {
      const e = entries[j]!;
      if (overBytes(e.key, limits.maxKeyBytes)) throw tooLong(`descriptors[${i}].entries[${j}].key`, e.key, limits.maxKeyBytes);
      if (overBytes(e.value, limits.maxValueBytes)) throw tooLong(`descriptors[${i}].entries[${j}].value`, e.value, limits.maxValueBytes);
    }
  }
}

/** True when `s` is over `max` UTF-8 bytes (the byte length computed only when the UTF-16 length leaves it open). */
export function overBytes(s: string, max: number): boolean {
  const n = s.length;
  if (n * 3 <= max) return false;
  return n > max || Buffer.byteLength(s, 'utf8') > max;
}

function tooLong(field: string, s: string, max: number): InvalidRequestError {
  return new InvalidRequestError(`${field} is ${Buffer.byteLength(s, 'utf8')} bytes; at most ${max}`);
}
