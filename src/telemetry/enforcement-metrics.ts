import { Counter, Gauge, type Registry } from 'prom-client';
import type { CompiledSnapshot, DescriptorDump } from '../config/index.js';
import type { DescriptorStatus, Limit, RequestDescriptor } from '../limiter/types.js';
import type { Logger } from './logger.js';

/**
 * Part of metrics.ts's declarations (split for its length): silent non-enforcement made visible.
 * A typo'd domain or a descriptor that matches no rule is answered OK (as upstream) and, before
 * these, only moved `meshlimit_decisions_total{rule="_none_"}`; a rule no traffic reaches had no
 * series at all.
 *
 * - `meshlimit_unknown_domain_requests_total{domain}`: descriptors sent for a domain the config
 *   does not have, by the domain as sent;
 * - `meshlimit_unmatched_descriptors_total{domain,shape}`: descriptors of a configured domain
 *   that matched no rule, by key shape (the entry keys joined by `.`, e.g. `company_id.path`;
 *   never values);
 * - `meshlimit_rule_idle_seconds{domain,rule}`: per configured rule, seconds since a descriptor
 *   last matched it (since the rule was first loaded when none has), computed at scrape time,
 *   so the request path only adds one to a counter.
 *
 * Cardinality: domain names and key shapes come from requests, so each label set is capped
 * ({@link MAX_UNKNOWN_DOMAINS}, {@link MAX_UNMATCHED_SHAPES}, values over
 * {@link MAX_LABEL_CHARS} long), the rest share `_other_`; the idle gauge has one series per
 * configured rule, at most {@link MAX_IDLE_RULES}.
 *
 * Log: one line per domain or shape at most every {@link LOG_EVERY_MS}, naming it and counting the
 * descriptors since the last line (a request must never cost a log line of its own).
 */

export const ENFORCEMENT_METRIC_NAMES = [
  'meshlimit_unknown_domain_requests_total',
  'meshlimit_unmatched_descriptors_total',
  'meshlimit_rule_idle_seconds',
  'meshlimit_candidate_decisions_total',
] as const;

export const MAX_UNKNOWN_DOMAINS = 50;
export const MAX_UNMATCHED_SHAPES = 200;
export const MAX_LABEL_CHARS = 128;
export const MAX_IDLE_RULES = 5000;
export const LOG_EVERY_MS = 60_000;
const OTHER = '_other_';
/** The shape of a descriptor without entries. */
const EMPTY_SHAPE = '_empty_';

type Child = { inc(value?: number): void };

interface Seen {
  readonly label: string;
  readonly child: Child;
  /** Descriptors since the last log line. */
  pending: number;
  /** When the last log line was written (ms; -Infinity: never). */
  loggedAt: number;
}

interface RuleActivity {
  hits: number;
  seenHits: number;
  activeAt: number;
}

export interface EnforcementMetrics {
  /** One descriptor's decision (the limiter observer calls it for every status). */
  observe(domain: string, status: DescriptorStatus, knownDomain: boolean, descriptor: RequestDescriptor): void;
  /** One candidate limit's evaluation (`over`: it would have denied this request). */
  candidate(domain: string, ruleKey: string, candidate: Limit, over: boolean): void;
  /** Where the idle gauge reads the configured rules from (the config store), and where the throttled lines go. */
  watch(current: () => CompiledSnapshot, logger: Logger): void;
}

/** The key shape of a descriptor: its keys joined by `.` (never values). */
export function keyShape(d: RequestDescriptor): string {
  if (d.entries.length === 0) return EMPTY_SHAPE;
  let s = d.entries[0]!.key;
  for (let i = 1; i < d.entries.length; i++) s += `.${d.entries[i]!.key}`;
  return s;
}

export function enforcementMetrics(registry: Registry, now: () => number = Date.now): EnforcementMetrics {
  return new EnforcementWatch(registry, now);
}

class EnforcementWatch implements EnforcementMetrics {
  private readonly unknown: Counter<'domain'>;
  private readonly unmatched: Counter<'domain' | 'shape'>;
  private logger: Logger | undefined;
  private readonly unknownSeen = new Map<string, Seen>();
  /** domain -> shape -> seen; {@link shapes} counts the shapes with a series of their own. */
  private readonly shapeSeen = new Map<string, Map<string, Seen>>();
  private shapes = 0;
  private readonly activity = new Map<string, Map<string, RuleActivity>>();
  private rules: (() => CompiledSnapshot) | undefined;
  private readonly candidates: Counter<'domain' | 'rule' | 'candidate' | 'outcome'>;
  /** domain + rule + candidate identity -> [ok, would_deny] children (config-bounded). */
  private readonly candidateChildren = new Map<string, readonly [Child, Child]>();

  constructor(
    registry: Registry,
    private readonly now: () => number,
  ) {
    this.unknown = new Counter({
      name: 'meshlimit_unknown_domain_requests_total',
      help: `Descriptors sent for a domain the config does not have (answered OK, nothing limited), by domain as sent (at most ${MAX_UNKNOWN_DOMAINS}, then _other_).`,
      labelNames: ['domain'] as const,
      registers: [registry],
    });
    this.unmatched = new Counter({
      name: 'meshlimit_unmatched_descriptors_total',
      help: `Descriptors of a configured domain that matched no rule (answered OK, nothing limited), by domain and key shape (keys joined by ".", never values; at most ${MAX_UNMATCHED_SHAPES}, then _other_).`,
      labelNames: ['domain', 'shape'] as const,
      registers: [registry],
    });
    this.candidates = new Counter({
      name: 'meshlimit_candidate_decisions_total',
      help: 'Evaluations of candidate limits (candidate_rate_limits: counted, never enforced), by domain, rule, candidate (its name, else its window and algorithm) and outcome (ok, would_deny: this candidate would have denied the request).',
      labelNames: ['domain', 'rule', 'candidate', 'outcome'] as const,
      registers: [registry],
    });
    const idle = () => this.idle();
    new Gauge({
      name: 'meshlimit_rule_idle_seconds',
      help: 'Seconds since a descriptor last matched each configured rule (since the rule was loaded when none has): a rule no traffic reaches enforces nothing.',
      labelNames: ['domain', 'rule'] as const,
      registers: [registry],
      collect() {
        this.reset();
        for (const [domain, rule, seconds] of idle()) this.labels(domain, rule).set(seconds);
      },
    });
  }

  observe(domain: string, status: DescriptorStatus, known: boolean, descriptor: RequestDescriptor): void {
    if (!known) {
      const full = this.unknownSeen.size >= MAX_UNKNOWN_DOMAINS;
      const s = labelled(this.unknownSeen, domain, full, (l) => this.unknown.labels(l));
      s.child.inc();
      this.log(s, { domain }, 'request for a domain that is not in the config: nothing is limited (POST /v1/explain says more)');
      return;
    }
    const rule = status.ruleKey;
    if (rule !== undefined) {
      this.activityOf(domain, rule).hits++;
      return;
    }
    let byShape = this.shapeSeen.get(domain);
    if (byShape === undefined) this.shapeSeen.set(domain, (byShape = new Map()));
    const before = byShape.size;
    const s = labelled(byShape, keyShape(descriptor), this.shapes >= MAX_UNMATCHED_SHAPES, (l) => this.unmatched.labels(domain, l));
    this.shapes += byShape.size - before;
    s.child.inc();
    this.log(s, { domain, shape: s.label }, 'descriptor matched no rule: answered OK, nothing limited (POST /v1/explain says why)');
  }

  candidate(domain: string, ruleKey: string, c: Limit, over: boolean): void {
    const id = `${domain}\u0000${ruleKey}\u0000${c.identity}`;
    let children = this.candidateChildren.get(id);
    if (children === undefined) {
      const label =
        c.name ?? `${c.requestsPerUnit} per ${c.unitMultiplier === 1 ? c.unit : `${c.unitMultiplier} ${c.unit}s`} ${c.algorithm}`;
      children = [this.candidates.labels(domain, ruleKey, label, 'ok'), this.candidates.labels(domain, ruleKey, label, 'would_deny')];
      this.candidateChildren.set(id, children);
    }
    children[over ? 1 : 0].inc();
  }

  watch(current: () => CompiledSnapshot, logger: Logger): void {
    this.rules = current;
    this.logger = logger;
  }

  /** [domain, rule, idle seconds] of every configured rule (at most MAX_IDLE_RULES); a hit since the last scrape counts as now. */
  private idle(): (readonly [string, string, number])[] {
    if (this.rules === undefined) return [];
    const t = this.now();
    const out: (readonly [string, string, number])[] = [];
    for (const [domain, rule] of configuredRules(this.rules())) {
      if (out.length >= MAX_IDLE_RULES) break;
      const a = this.activityOf(domain, rule);
      if (a.hits !== a.seenHits) {
        a.seenHits = a.hits;
        a.activeAt = t;
      }
      out.push([domain, rule, Math.max(0, (t - a.activeAt) / 1000)]);
    }
    return out;
  }

  /**
   * A rule's activity record, made on first sight (a hit or a scrape), with `activeAt` now: a rule
   * counts as idle from when meshlimit first knew it. Rule keys come from the config only, so
   * this holds at most the rules ever configured.
   */
  private activityOf(domain: string, rule: string): RuleActivity {
    let byRule = this.activity.get(domain);
    if (byRule === undefined) this.activity.set(domain, (byRule = new Map()));
    let a = byRule.get(rule);
    if (a === undefined) byRule.set(rule, (a = { hits: 0, seenHits: 0, activeAt: this.now() }));
    return a;
  }

  private log(s: Seen, what: Record<string, string>, msg: string): void {
    s.pending++;
    if (this.logger === undefined) return;
    const t = this.now();
    if (t - s.loggedAt < LOG_EVERY_MS) return;
    this.logger.warn({ ...what, descriptors: s.pending }, msg);
    s.loggedAt = t;
    s.pending = 0;
  }
}

/** The record of `label` in `map`, made on first sight; `_other_` when the map is `full` or the label too long. */
function labelled(map: Map<string, Seen>, label: string, full: boolean, make: (label: string) => Child): Seen {
  const s = map.get(label);
  if (s !== undefined) return s;
  const l = full || label.length > MAX_LABEL_CHARS ? OTHER : label;
  let o = map.get(l);
  if (o === undefined) map.set(l, (o = { label: l, child: make(l), pending: 0, loggedAt: -Infinity }));
  return o;
}

/** Every configured rule as [domain, rule key], from the snapshot's dump (cached per snapshot). */
const cache = new WeakMap<CompiledSnapshot, readonly (readonly [string, string])[]>();
function configuredRules(snapshot: CompiledSnapshot): readonly (readonly [string, string])[] {
  let out = cache.get(snapshot);
  if (out !== undefined) return out;
  const list: [string, string][] = [];
  const walk = (domain: string, ds: readonly DescriptorDump[]): void => {
    for (const d of ds) {
      if (d.ruleKey !== null) list.push([domain, d.ruleKey]);
      walk(domain, d.descriptors);
    }
  };
  for (const d of snapshot.dump().domains) walk(d.domain, d.descriptors);
  out = list;
  cache.set(snapshot, out);
  return out;
}
