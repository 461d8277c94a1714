import type { CounterOutcome, Decision, DescriptorStatus, Limit, MetadataStruct, MetadataValue, Rule } from './types.js';

/**
 * From counter outcomes to the answer: each descriptor's status and the overall code, with
 * envoyproxy/ratelimit's semantics (src/service/ratelimit.go `shouldRateLimitWorker`,
 * src/limiter/base_limiter.go `GetResponseDescriptorStatus`):
 *
 * - a descriptor over its limit has status OVER_LIMIT, except under a `shadow_mode` rule, whose
 *   status is OK (upstream rewrites the status of a shadow-mode limit);
 * - quota mode (a `quota_mode` rule, or QUOTA_MODE for every descriptor that is not unlimited):
 *   an over-limit quota descriptor keeps its OVER_LIMIT status, but the request is OVER_LIMIT
 *   only when every quota descriptor of it is (so Envoy can pick another backend by the
 *   statuses or the metadata while one quota is left), or when a normal descriptor is over;
 * - global SHADOW_MODE changes only the overall code to OK: statuses keep OVER_LIMIT;
 * - unlimited descriptors are neither normal nor quota descriptors.
 */

/** One request descriptor as the limiter planned it. */
export interface Planned {
  readonly rule: Rule | undefined;
  /** After `replaces` is applied. */
  limits: readonly Limit[];
  readonly hits: number;
  /** Index of this descriptor's first op in the ops array (set while the ops are built). */
  firstOp: number;
  /** The rule's candidate limits (never enforced; their ops follow every enforced op); empty when none. */
  candidates: readonly Limit[];
  /** Index of this descriptor's first candidate op (set while the ops are built). */
  firstCandidate: number;
  /** The rule's own shadow_mode: an over-limit status is reported as OK. */
  readonly ruleShadow: boolean;
  /** A quota descriptor (rule quota_mode with a limit left after `replaces`, or QUOTA_MODE). */
  quota: boolean;
  /** Over its limit denies the request by itself (not shadow, not quota, not global shadow). */
  enforce: boolean;
}

export interface VerdictFlags {
  /** SHADOW_MODE. */
  readonly globalShadow: boolean;
  /** RESPONSE_DYNAMIC_METADATA: merge the passed descriptors' metadata into the decision. */
  readonly metadata: boolean;
}

export const OK_NO_LIMIT: DescriptorStatus = Object.freeze({ code: 'OK', remaining: 0, resetMs: 0, shadowed: false, unlimited: false });

/** The decision from each op's outcome (`outcomes[i]` belongs to op i). */
export function verdict(plans: readonly Planned[], outcomes: readonly CounterOutcome[], flags: VerdictFlags): Decision {
  let failed = 0;
  let quotas = 0;
  let failedQuotas = 0;
  let metadata: MetadataStruct | undefined;
  const statuses = new Array<DescriptorStatus>(plans.length);
  for (let i = 0; i < plans.length; i++) {
    const p = plans[i]!;
    const s = descriptorStatus(p, outcomes, flags.globalShadow);
    statuses[i] = s;
    if (s.unlimited) continue;
    if (p.quota) quotas++;
    if (s.code === 'OVER_LIMIT') {
      if (p.quota) failedQuotas++;
      else failed++;
    } else if (flags.metadata && p.limits.length > 0 && p.rule?.metadata !== undefined) {
      metadata = metadata === undefined ? p.rule.metadata : mergeMetadata(metadata, p.rule.metadata);
    }
  }
  const over = failed > 0 || (quotas > 0 && failedQuotas === quotas);
  const code = over && !flags.globalShadow ? 'OVER_LIMIT' : 'OK';
  return metadata === undefined ? { code, statuses } : { code, statuses, metadata };
}

function descriptorStatus(p: Planned, outcomes: readonly CounterOutcome[], globalShadow: boolean): DescriptorStatus {
  const rule = p.rule;
  if (rule === undefined) return OK_NO_LIMIT;
  if (p.limits.length === 0) {
    return rule.unlimited
      ? {
          code: 'OK',
          remaining: 0,
          resetMs: 0,
          shadowed: false,
          unlimited: true,
          ruleKey: rule.ruleKey,
          detailedMetric: rule.detailedMetric,
        }
      : { ...OK_NO_LIMIT, ruleKey: rule.ruleKey, detailedMetric: rule.detailedMetric };
  }
  // Report the limit closest to exhaustion: over first, then fewest remaining, then longest reset.
  let best = 0;
  for (let j = 1; j < p.limits.length; j++) {
    const a = outcomes[p.firstOp + j]!;
    const b = outcomes[p.firstOp + best]!;
    if (
      (a.overLimit && !b.overLimit) ||
      (a.overLimit === b.overLimit && (a.remaining < b.remaining || (a.remaining === b.remaining && a.resetMs > b.resetMs)))
    ) {
      best = j;
    }
  }
  const outcome = outcomes[p.firstOp + best]!;
  const limit = p.limits[best]!;
  const over = outcome.overLimit;
  const status: DescriptorStatus = {
    code: over && !p.ruleShadow ? 'OVER_LIMIT' : 'OK',
    limit: {
      requestsPerUnit: limit.requestsPerUnit,
      unit: limit.unit,
      unitMultiplier: limit.unitMultiplier,
      name: limit.name,
      algorithm: limit.algorithm,
      burst: limit.burst,
    },
    remaining: outcome.remaining,
    resetMs: outcome.resetMs,
    shadowed: over && (p.ruleShadow || globalShadow),
    unlimited: false,
    ruleKey: rule.ruleKey,
    detailedMetric: rule.detailedMetric,
  };
  return p.quota ? { ...status, quota: true } : status;
}

/**
 * envoyproxy/ratelimit `mergeMetadata(dest, src)`: a key `dest` lacks is added from `src`; a key
 * both hold as structs is merged recursively; any other key keeps `dest`'s value (the first
 * descriptor wins). Unlike upstream, which adds `src`'s struct itself and later merges into it
 * (so one request's merge changes the loaded config for the next), neither input is changed:
 * what is changed is a copy.
 */
export function mergeMetadata(dest: MetadataStruct, src: MetadataStruct): MetadataStruct {
  let out: Record<string, MetadataValue> | undefined;
  for (const key of Object.keys(src)) {
    const s = src[key]!;
    if (!Object.hasOwn(dest, key)) {
      (out ??= copy(dest))[key] = s;
      continue;
    }
    const d = dest[key]!;
    if (isStruct(d) && isStruct(s)) (out ??= copy(dest))[key] = mergeMetadata(d, s);
  }
  return out ?? dest;
}

function isStruct(v: MetadataValue): v is MetadataStruct {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A null-prototype copy, so `__proto__` stays a plain key. */
function copy(s: MetadataStruct): Record<string, MetadataValue> {
  return Object.assign(Object.create(null) as Record<string, MetadataValue>, s);
}
