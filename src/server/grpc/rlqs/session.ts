/**
 * One RLQS stream: its domain, its Envoy, the buckets it subscribed to, and the rounds of
 * assignments it is pushed. Transport-free: the service (./service.ts) gives it a channel to send
 * on and to fail with. Reports and periodic re-evaluations run one at a time, in arrival order,
 * so the assignments of a bucket are pushed in the order they were computed.
 *
 * Lifecycle of a bucket: subscribed by its first report; re-evaluated at each report and, when
 * its Envoy has not reported for RLQS_REASSIGN_INTERVAL_MS, by the service's timer; abandoned
 * (`abandon_action`, and dropped from the rule's division in the store) once it has reported no
 * request for RLQS_ABANDON_AFTER_S. A closed stream's buckets stay in the store, so an Envoy that
 * reconnects (with the same RLQS_CLIENT_ID_HEADER) resumes its shares.
 */
import { InvalidRequestError } from '../../../errors.js';
import type { RlqsMetrics, RlqsRoundOutcome } from '../../../telemetry/rlqs-metrics.js';
import type { Assigner, BucketTarget, RoundItem } from './assigner.js';
import {
  abandonAction,
  boundError,
  toBucketUsage,
  verdictAction,
  type BucketUsage,
  type BucketVerdict,
  type RlqsStreamSettings,
  type UsageLimits,
  type WireBucketAction,
  type WireBucketId,
  type WireQuotaResponse,
  type WireUsageReports,
} from './mapping.js';

export interface SessionChannel {
  send(response: WireQuotaResponse): void;
  /** Ends the stream with the error's status (a MeshlimitError's; INTERNAL for anything else). */
  fail(err: unknown): void;
}

/** What a session needs from the service that owns it. */
export interface SessionHost {
  readonly settings: RlqsStreamSettings;
  readonly limits: UsageLimits;
  readonly assigner: Assigner;
  readonly metrics?: RlqsMetrics | undefined;
  now(): number;
  /** Envoys this process serves on a rule (the `local` policy splits the per-replica share among them). */
  localShare(ruleKey: string): number;
  /** A session started (+1) or stopped (-1) serving a rule. */
  subscribed(ruleKey: string, delta: 1 | -1): void;
  /** Wraps one round in a trace span when tracing is on. */
  span<T>(name: string, attributes: Record<string, string | number>, fn: () => Promise<T>): Promise<T>;
}

interface Subscription {
  readonly bucketId: WireBucketId;
  target: BucketTarget;
  lastReportMs: number;
  lastActiveMs: number;
  /** The last report's counts, replayed as demand (nothing charged) by a re-evaluation. */
  lastDemand: number;
  lastElapsedSec: number;
  verdict: BucketVerdict | undefined;
  pushedAtMs: number;
}

export class RlqsSession {
  private domain: string | undefined;
  private readonly subs = new Map<string, Subscription>();
  private queue: Promise<void> = Promise.resolve();
  private windowStart = 0;
  private reportsInWindow = 0;
  private closed = false;

  constructor(
    private readonly host: SessionHost,
    private readonly channel: SessionChannel,
    readonly envoyId: string,
  ) {}

  get bucketCount(): number {
    return this.subs.size;
  }

  /** One `RateLimitQuotaUsageReports`: checked at once (bounds, domain), evaluated in turn. */
  receive(msg: WireUsageReports): void {
    if (this.closed) return;
    const now = this.host.now();
    if (now - this.windowStart >= 1000) {
      this.windowStart = now;
      this.reportsInWindow = 0;
    }
    const max = this.host.settings.maxReportsPerSecond;
    if (++this.reportsInWindow > max)
      return this.fail(boundError(`the stream sent more than ${max} reports in one second`, max, 'RLQS_MAX_REPORTS_PER_SECOND'));
    let usages: BucketUsage[];
    try {
      this.checkDomain(msg.domain);
      usages = mergeDuplicates(
        msg.bucketQuotaUsages.map((u, i) => toBucketUsage(u, i, this.host.settings.bucketKeyOrder, this.host.limits)),
      );
      this.checkBucketBound(usages);
    } catch (err) {
      return this.fail(err);
    }
    this.enqueue(() => this.report(usages));
  }

  /** The timer's turn: abandon silent buckets, re-evaluate those not reported on lately. */
  refresh(): void {
    if (!this.closed && this.subs.size > 0) this.enqueue(() => this.reevaluate());
  }

  /** Shutdown: every assigned bucket pushed again with TTL 0, so Envoy falls back now. */
  expireAll(): void {
    const actions: WireBucketAction[] = [];
    for (const s of this.subs.values()) if (s.verdict !== undefined) actions.push(verdictAction(s.bucketId, s.verdict, 0));
    if (actions.length > 0) this.push(actions, 'expire');
  }

  /** The stream ended: stop serving its rules here (their state stays in the store for a reconnect). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.subs.values()) if (s.target.kind === 'rule') this.host.subscribed(s.target.ruleKey, -1);
    this.host.metrics?.buckets(-this.subs.size);
    this.subs.clear();
  }

  private fail(err: unknown): void {
    this.channel.fail(err);
    this.close();
  }

  private enqueue(step: () => Promise<void>): void {
    this.queue = this.queue.then(step).catch((err: unknown) => this.fail(err));
  }

  private checkDomain(domain: string): void {
    if (this.domain === undefined) {
      if (domain === '') throw new InvalidRequestError('domain is required in the first report of an RLQS stream');
      const bytes = Buffer.byteLength(domain, 'utf8');
      const max = this.host.limits.strings.maxDomainBytes;
      if (bytes > max) throw new InvalidRequestError(`domain is ${bytes} bytes; at most ${max}`);
      this.domain = domain;
    } else if (domain !== '' && domain !== this.domain) {
      throw new InvalidRequestError(
        `domain changed from ${JSON.stringify(this.domain)} to ${JSON.stringify(domain)}; open a new stream for another domain`,
      );
    }
  }

  private checkBucketBound(usages: readonly BucketUsage[]): void {
    const max = this.host.settings.maxBucketsPerStream;
    let total = this.subs.size;
    for (const u of usages) if (!this.subs.has(u.key)) total++;
    if (total > max) throw boundError(`the stream subscribed to ${total} buckets`, max, 'RLQS_MAX_BUCKETS_PER_STREAM');
  }

  private async report(usages: readonly BucketUsage[]): Promise<void> {
    if (this.closed) return;
    const domain = this.domain as string;
    const now = this.host.now();
    const round: { sub: Subscription; item: RoundItem | undefined }[] = [];
    for (const u of usages) {
      const sub = this.subscribe(u, domain, now);
      this.host.metrics?.reported(u.allowed, u.denied);
      const t = sub.target;
      round.push({
        sub,
        item:
          t.kind === 'rule'
            ? { target: t, envoyId: this.envoyId, allowed: u.allowed, denied: u.denied, elapsedSec: u.elapsedSec }
            : undefined,
      });
    }
    await this.runRound(domain, round, now);
  }

  private async reevaluate(): Promise<void> {
    if (this.closed) return;
    const now = this.host.now();
    const abandonMs = this.host.settings.abandonAfterSec * 1000;
    const actions: WireBucketAction[] = [];
    for (const [key, s] of this.subs) {
      if (now - s.lastActiveMs < abandonMs) continue;
      actions.push(abandonAction(s.bucketId));
      this.unsubscribe(key, s);
    }
    if (actions.length > 0) this.push(actions, 'abandon');
    const round: { sub: Subscription; item: RoundItem }[] = [];
    for (const s of this.subs.values()) {
      if (s.target.kind !== 'rule' || now - s.lastReportMs < this.host.settings.reassignIntervalMs) continue;
      round.push({
        sub: s,
        item: { target: s.target, envoyId: this.envoyId, allowed: 0, denied: s.lastDemand, elapsedSec: Math.max(1, s.lastElapsedSec) },
      });
    }
    if (round.length > 0) await this.runRound(this.domain as string, round, now);
  }

  /**
   * Asks the assigner for the round's rule buckets and pushes every verdict. A re-evaluation
   * pushes its verdicts too, changed or not: the store now counts the Envoy as holding them (its
   * headroom rule), so Envoy must hold them; an unchanged token bucket keeps its tokens on Envoy
   * and only its TTL is extended.
   */
  private async runRound(domain: string, round: readonly { sub: Subscription; item: RoundItem | undefined }[], now: number): Promise<void> {
    const items = round.flatMap((r) => (r.item === undefined ? [] : [r.item]));
    const started = performance.now();
    const { verdicts, outcome } = await this.host.span('rlqs.report', { domain, buckets: round.length, envoy: this.envoyId }, () =>
      this.host.assigner.assign(domain, items, (k) => this.host.localShare(k)),
    );
    if (this.closed) return;
    const actions: WireBucketAction[] = [];
    let i = 0;
    for (const { sub, item } of round) {
      const v = item === undefined ? (sub.target as Extract<BucketTarget, { kind: 'fixed' }>).verdict : (verdicts[i++] as BucketVerdict);
      actions.push(verdictAction(sub.bucketId, v));
      sub.verdict = v;
      sub.pushedAtMs = now;
    }
    if (actions.length > 0) this.push(actions, outcome, started);
  }

  private push(actions: readonly WireBucketAction[], outcome: RlqsRoundOutcome | 'abandon' | 'expire', started?: number): void {
    this.channel.send({ bucketAction: actions });
    const m = this.host.metrics;
    if (m === undefined) return;
    for (const a of actions) m.assignment(actionKind(a, outcome));
    if (started !== undefined && (outcome === 'store' || outcome === 'failure_policy'))
      m.observeRound((performance.now() - started) / 1000, outcome);
  }

  private subscribe(u: BucketUsage, domain: string, now: number): Subscription {
    const target = this.host.assigner.target(domain, u.entries);
    let sub = this.subs.get(u.key);
    if (sub === undefined) {
      sub = {
        bucketId: u.bucketId,
        target,
        lastReportMs: now,
        lastActiveMs: now,
        lastDemand: 0,
        lastElapsedSec: 1,
        verdict: undefined,
        pushedAtMs: 0,
      };
      this.subs.set(u.key, sub);
      this.host.metrics?.buckets(1);
      if (target.kind === 'rule') this.host.subscribed(target.ruleKey, 1);
    } else if (ruleKeyOf(sub.target) !== ruleKeyOf(target)) {
      // A config reload moved the bucket to another rule (or none): leave the old rule's division.
      const old = ruleKeyOf(sub.target);
      if (old !== undefined) {
        this.host.subscribed(old, -1);
        this.host.assigner.forget(old, this.envoyId);
      }
      if (target.kind === 'rule') this.host.subscribed(target.ruleKey, 1);
      sub.target = target;
    }
    sub.lastReportMs = now;
    if (u.allowed + u.denied > 0) sub.lastActiveMs = now;
    sub.lastDemand = u.allowed + u.denied;
    sub.lastElapsedSec = u.elapsedSec;
    return sub;
  }

  private unsubscribe(key: string, s: Subscription): void {
    this.subs.delete(key);
    this.host.metrics?.buckets(-1);
    if (s.target.kind !== 'rule') return;
    this.host.subscribed(s.target.ruleKey, -1);
    this.host.assigner.forget(s.target.ruleKey, this.envoyId);
  }
}

function ruleKeyOf(t: BucketTarget): string | undefined {
  return t.kind === 'rule' ? t.ruleKey : undefined;
}

function actionKind(a: WireBucketAction, outcome: string): 'token_bucket' | 'allow_all' | 'deny_all' | 'abandon' | 'expire' {
  if (a.abandonAction !== undefined) return 'abandon';
  if (outcome === 'expire') return 'expire';
  const s = a.quotaAssignmentAction?.rateLimitStrategy;
  if (s?.tokenBucket !== undefined) return 'token_bucket';
  return s?.blanketRule === 1 ? 'deny_all' : 'allow_all';
}

/** Two entries of one message for the same bucket count as one report (Envoy sends each bucket once). */
function mergeDuplicates(usages: BucketUsage[]): BucketUsage[] {
  const byKey = new Map<string, BucketUsage>();
  for (const u of usages) {
    const prev = byKey.get(u.key);
    byKey.set(
      u.key,
      prev === undefined
        ? u
        : { ...u, allowed: prev.allowed + u.allowed, denied: prev.denied + u.denied, elapsedSec: Math.max(prev.elapsedSec, u.elapsedSec) },
    );
  }
  return [...byKey.values()];
}
