import { counterKey, descriptorTag } from './keys.js';
import type { CounterOp, DescriptorEntry, Limit, RateLimitCheck, Rule } from './types.js';
import type { Planned } from './verdict.js';

/** From a request's plans to its counter ops (split from ./limiter.ts for its length). */

export const NONE: readonly Limit[] = Object.freeze([]);

/**
 * Appends the ops of `plans` to `ops` (setting each plan's `firstOp`), then their candidate ops
 * (`firstCandidate`; never enforced, on counters of their own, after every enforced op so the
 * enforced ops' indices and outcomes are the same with or without them). Returns whether a
 * quota-mode descriptor has an op (`quota`), whether a reservation rule's descriptor has one
 * (`reservation`: the request takes ./reservations.ts's path), and `ops.length` before the
 * candidates (`candidateStart`).
 */
export function buildOps(
  keyPrefix: string,
  check: RateLimitCheck,
  plans: Planned[],
  ops: CounterOp[],
): { quota: boolean; reservation: boolean; candidateStart: number } {
  let quota = false;
  let reservation = false;
  for (let i = 0; i < plans.length; i++) {
    const p = plans[i]!;
    p.firstOp = ops.length;
    if (p.limits.length === 0) continue;
    if (p.quota) quota = true;
    const rule = p.rule;
    if (rule?.reservation !== undefined) reservation = true;
    const entries = check.descriptors[i]!.entries;
    const tag = descriptorTag(
      check.domain,
      rule?.reservation === undefined ? counterEntries(entries, rule?.sharedValues) : reservationEntries(entries, rule),
    );
    for (const limit of p.limits) {
      ops.push({
        key: counterKey(keyPrefix, tag, limit.identity),
        algorithm: limit.algorithm,
        windowMs: limit.windowMs,
        threshold: limit.requestsPerUnit,
        burst: limit.burst,
        hits: p.hits,
        enforce: p.enforce,
      });
    }
  }
  const candidateStart = ops.length;
  for (let i = 0; i < plans.length; i++) {
    const p = plans[i]!;
    p.firstCandidate = ops.length;
    if (p.candidates.length === 0) continue;
    const tag = descriptorTag(check.domain, counterEntries(check.descriptors[i]!.entries, p.rule?.sharedValues));
    for (const c of p.candidates) {
      ops.push({
        key: counterKey(keyPrefix, tag, c.identity),
        algorithm: c.algorithm,
        windowMs: c.windowMs,
        threshold: c.requestsPerUnit,
        burst: c.burst,
        hits: p.hits,
        enforce: false,
      });
    }
  }
  return { quota, reservation, candidateStart };
}

/**
 * A reservation rule's counter entries: the request's without its phase and correlation entries
 * (the counter is per tenant, not per request or phase), `share_threshold` applied.
 */
function reservationEntries(entries: readonly DescriptorEntry[], rule: Rule): readonly DescriptorEntry[] {
  const { phaseKey, idKey } = rule.reservation!;
  const shared = rule.sharedValues;
  const out: DescriptorEntry[] = [];
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    if (e.key === phaseKey || e.key === idKey) continue;
    out.push(shared?.[i] === undefined ? e : { key: e.key, value: shared[i]! });
  }
  return out;
}

/** The entries a counter key is built from: the request's, with `share_threshold` patterns substituted. */
function counterEntries(entries: readonly DescriptorEntry[], shared: Rule['sharedValues']): readonly DescriptorEntry[] {
  if (shared === undefined) return entries;
  return entries.map((e, i) => (shared[i] === undefined ? e : { key: e.key, value: shared[i]! }));
}
