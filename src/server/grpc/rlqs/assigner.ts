/**
 * From buckets to verdicts: which rule a bucket's descriptor matches (the same config matcher as
 * RLS, `ConfigSnapshot.findRule`), and the verdicts of one round of reports, from the shared
 * quota store or, while it is unavailable, from the failure policy as for RLS:
 *
 * - `allow` -> ALLOW_ALL, `deny` -> DENY_ALL (a blanket rule: Envoy's filter cannot be told to
 *   fail a request, only to admit or deny it);
 * - `local` -> a token bucket of the rule's per-replica share (`perReplicaShare(limit,
 *   LOCAL_FALLBACK_REPLICAS)`, as RLS's `local` policy) split evenly among the Envoys this process
 *   serves on that rule, refilled once per window.
 *
 * "Unavailable" is what makes RLS fail fast (the main counter store's connection is down, or its
 * breaker is open: a hung Redis) or a transient error from the quota store itself. Any other
 * error (a bug, a rule the store refuses) is logged and the round's buckets get the
 * unmatched-bucket verdict.
 */
import { isTransientFailure } from '../../../backend/resilience/circuit-breaker.js';
import { perReplicaShare } from '../../../backend/resilience/local-limits.js';
import { counterEntries } from '../../../limiter/counter-refs.js';
import type { DescriptorEntry, FailurePolicy, Limit, Rule } from '../../../limiter/types.js';
import { quotaCounterKey, type QuotaLimit, type QuotaReport, type QuotaStore } from '../../../quota/index.js';
import type { RlqsRoundOutcome } from '../../../telemetry/rlqs-metrics.js';
import { assignmentVerdict, type BucketVerdict } from './mapping.js';

/** Where a bucket's verdict comes from: the quota store for a rule's counter, or a fixed verdict. */
export type BucketTarget =
  | { readonly kind: 'rule'; readonly ruleKey: string; readonly limit: QuotaLimit; readonly configRule: string }
  | { readonly kind: 'fixed'; readonly verdict: BucketVerdict; readonly why: 'unmatched' | 'unlimited' | 'not_divisible' };

export interface AssignerOptions {
  /** The current config's matcher (read once per call). */
  readonly findRule: (domain: string, entries: readonly DescriptorEntry[]) => Rule | undefined;
  readonly quota: QuotaStore;
  /** CACHE_KEY_PREFIX: quota state sits beside RLS's counter of the same rule. */
  readonly keyPrefix: string;
  /** RLQS_UNMATCHED_BUCKET / RLQS_UNMATCHED_TTL_S. */
  readonly unmatched: BucketVerdict;
  /** False while the main counter store is known to be down: not connected, or RLS's breaker open. */
  readonly storeReady: () => boolean;
  /** The domain's failure_mode, else FAILURE_POLICY. */
  readonly policyFor: (domain: string) => FailurePolicy;
  /** LOCAL_FALLBACK_REPLICAS. */
  readonly replicas: number;
  /** TTL of a failure-policy verdict, whole seconds. */
  readonly fallbackTtlSec: number;
  readonly logger?: { warn(obj: object, msg: string): void; error(obj: object, msg: string): void } | undefined;
}

/** One bucket's part of a round: who reports, on what, how much. */
export interface RoundItem {
  readonly target: Extract<BucketTarget, { kind: 'rule' }>;
  readonly envoyId: string;
  readonly allowed: number;
  readonly denied: number;
  readonly elapsedSec: number;
}

export class Assigner {
  private readonly warned = new Set<string>();

  constructor(private readonly o: AssignerOptions) {}

  /**
   * The bucket's target. A rule with several limits is divided on its most restrictive
   * fixed-window limit (lowest requests per second); `unlimited` and shadow-mode rules are
   * ALLOW_ALL, as their RLS answer is OK.
   */
  target(domain: string, entries: readonly DescriptorEntry[]): BucketTarget {
    const rule = this.o.findRule(domain, entries);
    if (rule === undefined) return { kind: 'fixed', verdict: this.o.unmatched, why: 'unmatched' };
    const ttlSec = this.o.unmatched.ttlSec;
    if (rule.unlimited || rule.shadowMode || rule.limits.length === 0)
      return { kind: 'fixed', verdict: { kind: 'allow_all', ttlSec }, why: 'unlimited' };
    const fixed = rule.limits.filter((l) => l.algorithm === 'fixed_window');
    const limit = fixed.sort((a, b) => a.requestsPerUnit / a.windowMs - b.requestsPerUnit / b.windowMs)[0];
    if (limit === undefined) {
      this.warnOnce(rule.ruleKey, rule.limits[0]!);
      return { kind: 'fixed', verdict: this.o.unmatched, why: 'not_divisible' };
    }
    const ruleKey = quotaCounterKey(this.o.keyPrefix, domain, counterEntries(entries, rule.sharedValues), limit);
    return { kind: 'rule', ruleKey, limit: { requestsPerUnit: limit.requestsPerUnit, windowMs: limit.windowMs }, configRule: rule.ruleKey };
  }

  /**
   * The verdicts of one round, in order. `localShare(ruleKey)` is how many Envoys this process
   * serves on a rule (for the `local` policy).
   */
  async assign(
    domain: string,
    items: readonly RoundItem[],
    localShare: (ruleKey: string) => number,
  ): Promise<{ verdicts: BucketVerdict[]; outcome: RlqsRoundOutcome }> {
    if (items.length === 0) return { verdicts: [], outcome: 'store' };
    if (!this.o.storeReady()) return { verdicts: this.fallback(domain, items, localShare), outcome: 'failure_policy' };
    const reports: QuotaReport[] = items.map((it) => ({
      ruleKey: it.target.ruleKey,
      envoyId: it.envoyId,
      allowed: it.allowed,
      denied: it.denied,
      elapsedSec: it.elapsedSec,
      limit: it.target.limit,
    }));
    try {
      const assignments = await this.o.quota.report(reports);
      return { verdicts: assignments.map(assignmentVerdict), outcome: 'store' };
    } catch (err) {
      if (isTransientFailure(err)) return { verdicts: this.fallback(domain, items, localShare), outcome: 'failure_policy' };
      this.o.logger?.error({ err, domain }, 'RLQS: the quota store refused a report; its buckets get RLQS_UNMATCHED_BUCKET');
      return { verdicts: items.map(() => this.o.unmatched), outcome: 'failure_policy' };
    }
  }

  /** Drops an Envoy from a rule (abandoned bucket); failures are logged, never thrown. */
  forget(ruleKey: string, envoyId: string): void {
    this.o.quota
      .forget(ruleKey, envoyId)
      .catch((err: unknown) => this.o.logger?.warn({ err }, 'RLQS: could not forget an abandoned bucket'));
  }

  private fallback(domain: string, items: readonly RoundItem[], localShare: (ruleKey: string) => number): BucketVerdict[] {
    const ttlSec = this.o.fallbackTtlSec;
    const policy = this.o.policyFor(domain);
    if (policy === 'allow') return items.map(() => ({ kind: 'allow_all', ttlSec }));
    if (policy === 'deny') return items.map(() => ({ kind: 'deny_all', ttlSec }));
    return items.map((it) => {
      const perProcess = perReplicaShare(it.target.limit.requestsPerUnit, this.o.replicas);
      const tokens = Math.max(1, Math.floor(perProcess / Math.max(1, localShare(it.target.ruleKey))));
      const fillIntervalSec = Math.max(1, Math.round(it.target.limit.windowMs / 1000));
      return { kind: 'token_bucket', tokensPerFill: tokens, maxTokens: tokens, fillIntervalSec, ttlSec };
    });
  }

  private warnOnce(ruleKey: string, limit: Limit): void {
    if (this.warned.has(ruleKey)) return;
    this.warned.add(ruleKey);
    this.o.logger?.warn(
      { rule: ruleKey, algorithm: limit.algorithm },
      'RLQS divides only fixed_window limits: buckets matching this rule get RLQS_UNMATCHED_BUCKET; set the algorithm to fixed_window or serve the route through RLS',
    );
  }
}
