import { InvalidRequestError } from '../errors.js';
import { counterKey, descriptorTag } from '../limiter/keys.js';
import type { DescriptorEntry, Limit } from '../limiter/types.js';
import { MAX_ENVOY_ID_LENGTH } from './types.js';

/**
 * The {@link QuotaReport.ruleKey} of a rule's limit for one bucket: exactly RLS's counter key for
 * the same domain, descriptor entries and limit, so RLQS reports and RLS requests draw from one
 * budget. Only fixed-window limits are divided (RLQS reports arrive per interval, and a fixed
 * window's budget is a plain count to share); others are rejected here so the service can answer
 * the bucket with its default action and say why.
 */
export function quotaCounterKey(prefix: string, domain: string, entries: readonly DescriptorEntry[], limit: Limit): string {
  if (limit.algorithm !== 'fixed_window') {
    throw new InvalidRequestError(
      `RLQS divides only fixed_window limits: rule limit ${limit.name ?? limit.identity} is ${limit.algorithm}; set its algorithm to fixed_window or serve the route through RLS`,
    );
  }
  return counterKey(prefix, descriptorTag(domain, entries), limit.identity);
}

/**
 * The hash of the Envoys dividing `ruleKey`'s limit: beside the counter, in the same
 * `{hash tag}`, so one script touches both on one Redis Cluster slot.
 */
export function quotaStateKey(ruleKey: string): string {
  return `${ruleKey}:rlqs`;
}

/** Checks a report's Envoy id: 1..MAX_ENVOY_ID_LENGTH chars. */
export function checkEnvoyId(envoyId: string): void {
  if (envoyId.length === 0 || envoyId.length > MAX_ENVOY_ID_LENGTH) {
    throw new InvalidRequestError(`RLQS report: envoyId must be 1..${MAX_ENVOY_ID_LENGTH} characters, got ${envoyId.length}`);
  }
}
