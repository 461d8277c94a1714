import { InvalidRequestError } from '../errors.js';
import type { RateLimitCheck } from './types.js';

/** Limits on requests accepted before any work is done (bounded work per request). */
export const REQUEST_LIMITS = Object.freeze({ maxDescriptors: 64, maxEntries: 32 });

/** Checks a request's shape before any work (split from ./limiter.ts for its length). */
export function validate(check: RateLimitCheck): void {
  if (typeof check.domain !== 'string' || check.domain.length === 0) {
    throw new InvalidRequestError('rate limit domain must not be empty');
  }
  const n = check.descriptors.length;
  if (n === 0) throw new InvalidRequestError('rate limit descriptor list must not be empty');
  if (n > REQUEST_LIMITS.maxDescriptors) {
    throw new InvalidRequestError(`too many descriptors: ${n} (at most ${REQUEST_LIMITS.maxDescriptors})`);
  }
  if (!Number.isSafeInteger(check.hitsAddend) || check.hitsAddend < 0) {
    throw new InvalidRequestError(`hits_addend must be a non-negative integer, got ${String(check.hitsAddend)}`);
  }
  for (let i = 0; i < n; i++) {
    const d = check.descriptors[i]!;
    // A descriptor without entries matches no rule and is answered OK without a limit, as
    // upstream answers it (a limit override on it still applies).
    if (d.entries.length > REQUEST_LIMITS.maxEntries) {
      throw new InvalidRequestError(`descriptors[${i}] has ${d.entries.length} entries (at most ${REQUEST_LIMITS.maxEntries})`);
    }
    for (let j = 0; j < d.entries.length; j++) {
      if (d.entries[j]!.key.length === 0) throw new InvalidRequestError(`descriptors[${i}].entries[${j}].key must not be empty`);
    }
    if (d.hitsAddend !== undefined && (!Number.isSafeInteger(d.hitsAddend) || d.hitsAddend < 0)) {
      throw new InvalidRequestError(`descriptors[${i}].hits_addend must be a non-negative integer`);
    }
    if (d.limitOverride !== undefined && (!Number.isSafeInteger(d.limitOverride.requestsPerUnit) || d.limitOverride.requestsPerUnit < 0)) {
      throw new InvalidRequestError(`descriptors[${i}].limit.requests_per_unit must be a non-negative integer`);
    }
  }
}
