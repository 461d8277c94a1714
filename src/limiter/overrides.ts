import { limitIdentity } from './keys.js';
import { UNIT_SECONDS, type Algorithm, type DescriptorEntry, type Limit, type Rule, type Unit } from './types.js';

/**
 * Tenant limits at run time: a limit set through the admin API for one descriptor value
 * (`domain edge, company_id=42` gets 5,000/minute), applied in place of the limits of the rule
 * the descriptor matches (or as its only limit when no rule matches), as an Envoy-sent
 * `RateLimitDescriptor.limit` is. It needs no config edit and reaches every replica through the
 * override store (src/admin/override-store.ts).
 *
 * Matching is exact: the request descriptor's entries, in order, equal the override's. The
 * counter is the override's own (identity `tov:<alg>:<unit>:<mult>`), so setting an override
 * starts it from zero and removing one returns the tenant to the rule's counter as it was.
 */

/** An override's limit as validated (src/config/override-schema.ts) and stored. */
export interface OverrideLimitSpec {
  readonly algorithm: Algorithm;
  readonly unit: Unit;
  readonly unitMultiplier: number;
  readonly requestsPerUnit: number;
  readonly burst: number;
}

/** One tenant override as stored and listed. */
export interface TenantOverride {
  readonly domain: string;
  readonly entries: readonly DescriptorEntry[];
  readonly limit: OverrideLimitSpec;
  /** ISO time and caller of the last change. */
  readonly setAt: string;
  readonly setBy: string;
}

/** What the limiter asks: the override of one request descriptor, if any. */
export interface OverrideSource {
  lookup(domain: string, entries: readonly DescriptorEntry[]): Limit | undefined;
}

/** The stable id of a descriptor (its store field): JSON of the domain and the entries' pairs. */
export function overrideId(domain: string, entries: readonly DescriptorEntry[]): string {
  return JSON.stringify([domain, ...entries.map((e) => [e.key, e.value])]);
}

/** The compiled limit of an override (its own counter identity, see the module doc). */
export function overrideLimit(spec: OverrideLimitSpec): Limit {
  return Object.freeze({
    name: undefined,
    algorithm: spec.algorithm,
    unit: spec.unit,
    unitMultiplier: spec.unitMultiplier,
    requestsPerUnit: spec.requestsPerUnit,
    burst: spec.burst,
    windowMs: UNIT_SECONDS[spec.unit] * spec.unitMultiplier * 1000,
    identity: `tov:${limitIdentity(spec.algorithm, spec.unit, spec.unitMultiplier)}`,
    replaces: Object.freeze([]),
  });
}

/**
 * An immutable set of overrides, swapped whole when the store changes. A request of a domain
 * without overrides costs one Map lookup; only a domain with overrides builds the id.
 */
export class OverrideTable implements OverrideSource {
  static readonly EMPTY = new OverrideTable([]);
  private readonly byDomain = new Map<string, Map<string, Limit>>();
  readonly list: readonly TenantOverride[];

  constructor(overrides: readonly TenantOverride[]) {
    this.list = Object.freeze([...overrides]);
    for (const o of overrides) {
      let m = this.byDomain.get(o.domain);
      if (m === undefined) this.byDomain.set(o.domain, (m = new Map()));
      m.set(overrideId(o.domain, o.entries), overrideLimit(o.limit));
    }
  }

  lookup(domain: string, entries: readonly DescriptorEntry[]): Limit | undefined {
    const m = this.byDomain.get(domain);
    return m === undefined ? undefined : m.get(overrideId(domain, entries));
  }

  get size(): number {
    return this.list.length;
  }
}

/**
 * The rule a descriptor with a tenant override is limited by: the override's limit in place of
 * the matched rule's limits (or the only limit when no rule matched); the rule's shadow mode and
 * metrics settings still apply.
 */
export function tenantRule(domain: string, matched: Rule | undefined, limit: Limit): Rule {
  return {
    ruleKey: matched?.ruleKey ?? `${domain}._tenant_override_`,
    limits: [limit],
    unlimited: false,
    shadowMode: matched?.shadowMode ?? false,
    detailedMetric: matched?.detailedMetric ?? false,
    tenantOverride: true,
  };
}

/**
 * The rule a descriptor is limited by once tenant overrides apply (RLS decisions and RLQS buckets
 * alike): `tenant` (its override's limit, if any) replaces the matched rule's limits, except on a
 * reservation rule, which keeps its own (an override would turn it into an ordinary rule).
 */
export function ruleWithOverride(domain: string, matched: Rule | undefined, tenant: Limit | undefined): Rule | undefined {
  return tenant !== undefined && matched?.reservation === undefined ? tenantRule(domain, matched, tenant) : matched;
}
