import { counterKey, descriptorTag } from './keys.js';
import type { Planned } from './verdict.js';
import type { CounterOp, DescriptorEntry, Limit, RateLimitCheck, Rule } from './types.js';

/** One counter a request descriptor would touch ({@link RateLimiter.counters}). */
export interface CounterRef {
  /** Index of the request descriptor. */
  readonly descriptor: number;
  /** The matched rule's key; undefined when only an override applies to an unmatched descriptor. */
  readonly ruleKey: string | undefined;
  /** Where the limit comes from: the config rule, a tenant override, or the request's own `limit`. */
  readonly source: 'rule' | 'tenant_override' | 'request_override';
  readonly limit: Limit;
  /** The op that reads the counter without charging it (hits 0, not enforced). */
  readonly op: CounterOp;
}

/**
 * The counters of `check`'s planned descriptors ({@link RateLimiter.counters}), each with an op
 * that reads it without charging (hits 0, not enforced).
 */
export function counterRefs(check: RateLimitCheck, plans: readonly Planned[], keyPrefix: string): CounterRef[] {
  const refs: CounterRef[] = [];
  for (let i = 0; i < plans.length; i++) {
    const p = plans[i]!;
    if (p.limits.length === 0) continue;
    const d = check.descriptors[i]!;
    const tag = descriptorTag(check.domain, counterEntries(d.entries, p.rule?.sharedValues));
    const source = d.limitOverride !== undefined ? 'request_override' : p.rule?.tenantOverride === true ? 'tenant_override' : 'rule';
    for (const limit of p.limits) {
      const op: CounterOp = {
        key: counterKey(keyPrefix, tag, limit.identity),
        algorithm: limit.algorithm,
        windowMs: limit.windowMs,
        threshold: limit.requestsPerUnit,
        burst: limit.burst,
        hits: 0,
        enforce: false,
      };
      refs.push({ descriptor: i, ruleKey: p.rule?.ruleKey, source, limit, op });
    }
  }
  return refs;
}

export /** The entries a counter key is built from: the request's, with `share_threshold` patterns substituted. */
function counterEntries(entries: readonly DescriptorEntry[], shared: Rule['sharedValues']): readonly DescriptorEntry[] {
  if (shared === undefined) return entries;
  return entries.map((e, i) => (shared[i] === undefined ? e : { key: e.key, value: shared[i]! }));
}
