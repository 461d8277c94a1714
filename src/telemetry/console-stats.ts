import { descriptorTag } from '../limiter/keys.js';
import type { LimiterObserver } from '../limiter/limiter.js';
import type { DescriptorStatus, RequestDescriptor } from '../limiter/types.js';

/**
 * What the web console shows of live traffic (GET /v1/console/traffic): decisions and denials per
 * rule since start, and the descriptors denied most. Kept in this process (each replica shows its
 * own traffic; Prometheus has the fleet's sum in `meshlimit_decisions_total`).
 *
 * Descriptor values are private: a limited descriptor is shown by its rule, its shape (the entry
 * keys) and its hashed id (the counter key's hash tag, so an operator can find its counters),
 * and by its values only when its rule says values may be shown (`detailed_metric: true`, the
 * same opt-in that puts them into metric labels).
 *
 * Bounded: at most {@link MAX_RULES} rules (more fold into `_other_`) and {@link MAX_LIMITED}
 * limited descriptors; when the table is full the less-denied half is dropped (amortised
 * O(log n) per new descriptor, so a flood of distinct denied values costs little).
 */

export const MAX_RULES = 5000;
export const MAX_LIMITED = 1000;
/** Longest value shown for a `detailed_metric` rule's descriptor. */
export const MAX_SHOWN_VALUE_CHARS = 128;

export interface RuleTraffic {
  readonly domain: string;
  readonly ruleKey: string;
  decisions: number;
  overLimit: number;
  shadowOverLimit: number;
}

export interface LimitedDescriptor {
  readonly domain: string;
  readonly ruleKey: string;
  /** The entry keys, e.g. `company_id.path`. */
  readonly shape: string;
  /** The descriptor's hash tag (as in its counter keys). */
  readonly id: string;
  /** The entries' values, only for a `detailed_metric` rule. */
  readonly values: readonly string[] | undefined;
  denials: number;
  lastAt: number;
}

export class ConsoleStats implements LimiterObserver {
  /** domain -> rule key -> row (no key built per decision); {@link ruleCount} rows in all. */
  private readonly rules = new Map<string, Map<string, RuleTraffic>>();
  private ruleCount = 0;
  private readonly limited = new Map<string, LimitedDescriptor>();
  readonly since = Date.now();

  onStatus(domain: string, status: DescriptorStatus, knownDomain: boolean, descriptor: RequestDescriptor): void {
    const ruleKey = status.ruleKey;
    if (!knownDomain || ruleKey === undefined) return;
    const over = status.code === 'OVER_LIMIT' && !status.shadowed;
    const row = this.rule(domain, ruleKey);
    row.decisions++;
    if (over) row.overLimit++;
    else if (status.shadowed) row.shadowOverLimit++;
    if (over) this.deny(domain, ruleKey, status, descriptor);
  }

  private rule(domain: string, ruleKey: string): RuleTraffic {
    let byRule = this.rules.get(domain);
    if (byRule === undefined) this.rules.set(domain, (byRule = new Map()));
    const row = byRule.get(ruleKey);
    if (row !== undefined) return row;
    // Full: every further rule counts under one `_other_` row (which may take the table one past
    // MAX_RULES - 1 new rows, never more).
    const key = this.ruleCount >= MAX_RULES - 1 ? '_other_' : ruleKey;
    let created = byRule.get(key);
    if (created === undefined) {
      byRule.set(key, (created = { domain, ruleKey: key, decisions: 0, overLimit: 0, shadowOverLimit: 0 }));
      this.ruleCount++;
    }
    return created;
  }

  private deny(domain: string, ruleKey: string, status: DescriptorStatus, d: RequestDescriptor): void {
    const id = descriptorTag(domain, d.entries);
    const now = Date.now();
    const known = this.limited.get(id);
    if (known !== undefined) {
      known.denials++;
      known.lastAt = now;
      return;
    }
    if (this.limited.size >= MAX_LIMITED) this.shrink();
    const values = status.detailedMetric === true ? d.entries.map((e) => e.value.slice(0, MAX_SHOWN_VALUE_CHARS)) : undefined;
    this.limited.set(id, { domain, ruleKey, shape: d.entries.map((e) => e.key).join('.'), id, values, denials: 1, lastAt: now });
  }

  /** Drops the less-denied half of the limited table. */
  private shrink(): void {
    const sorted = [...this.limited.values()].sort((a, b) => b.denials - a.denials || b.lastAt - a.lastAt);
    this.limited.clear();
    for (const e of sorted.slice(0, MAX_LIMITED / 2)) this.limited.set(e.id, e);
  }

  /** Per-rule traffic, busiest first. */
  ruleTraffic(): RuleTraffic[] {
    const rows = [...this.rules.values()].flatMap((byRule) => [...byRule.values()]);
    return rows.map((r) => ({ ...r })).sort((a, b) => b.decisions - a.decisions);
  }

  /** The `n` most-denied descriptors. */
  topLimited(n: number): LimitedDescriptor[] {
    return [...this.limited.values()]
      .sort((a, b) => b.denials - a.denials || b.lastAt - a.lastAt)
      .slice(0, n)
      .map((e) => ({ ...e }));
  }
}

/** One observer that tells each of `observers`. */
export function teeObservers(...observers: LimiterObserver[]): LimiterObserver {
  return {
    onStatus(domain, status, known, descriptor, hits) {
      for (const o of observers) o.onStatus(domain, status, known, descriptor, hits);
    },
    onCandidate(domain, rule, candidate, over, denied) {
      for (const o of observers) o.onCandidate?.(domain, rule, candidate, over, denied);
    },
    onReservation(domain, ruleKey, outcome, result) {
      for (const o of observers) o.onReservation?.(domain, ruleKey, outcome, result);
    },
  };
}
