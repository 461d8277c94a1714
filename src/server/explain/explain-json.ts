import type { CompiledRule, CompiledSnapshot, MatchStep, MatchTrace } from '../../config/index.js';
import type { Explanation } from '../../limiter/limiter.js';
import type { Planned } from '../../limiter/verdict.js';
import type { CounterOutcome, Limit, RateLimitCheck, RequestDescriptor } from '../../limiter/types.js';

/**
 * The JSON of `POST /v1/explain`: a stable contract (documented in README "Explain"; the web
 * console and `meshlimit explain` render it). Fields are only ever added. Descriptor values
 * appear only as the caller sent them (`entries`); nothing here reveals more of the config than
 * `/rlconfig` does.
 */
export interface ExplainJson {
  readonly domain: string;
  readonly knownDomain: boolean;
  readonly configVersion: string;
  /** What the request would be answered, from the counters as they stand (failure policy and over-limit cache left out). */
  readonly decision: 'OK' | 'OVER_LIMIT';
  /** Always false: explain reads counters, it never writes them. */
  readonly charged: false;
  /** The store's clock the counters were read at (ISO 8601). */
  readonly at: string;
  readonly descriptors: readonly ExplainDescriptorJson[];
}

export interface ExplainDescriptorJson {
  readonly entries: readonly { readonly key: string; readonly value: string }[];
  /** The entry keys joined by `.` (never values), e.g. `company_id.path`. */
  readonly shape: string;
  readonly match: ExplainMatchJson;
  /** The limit Envoy sent in the descriptor (`limit`), which replaces the rule's limits; null when none. */
  readonly override: { readonly requestsPerUnit: number; readonly unit: string } | null;
  readonly hits: number;
  readonly limits: readonly ExplainLimitJson[];
  /** Names of the rule's limits dropped because another matched limit `replaces` them. */
  readonly replaced: readonly string[];
  readonly status: {
    readonly code: 'OK' | 'OVER_LIMIT';
    /** Over a limit but let through by shadow mode (the rule's, or SHADOW_MODE). */
    readonly shadowed: boolean;
    readonly unlimited: boolean;
    readonly quota: boolean;
    /** Requests left after this one in the reported limit (the one closest to exhaustion). */
    readonly remaining: number;
    readonly resetMs: number;
  };
}

export type ExplainMatchJson =
  | {
      readonly matched: true;
      readonly ruleKey: string;
      readonly file: string;
      readonly path: string;
      readonly line: number;
      readonly unlimited: boolean;
      readonly shadowMode: boolean;
      readonly quotaMode: boolean;
      readonly steps: readonly ExplainStepJson[];
    }
  | {
      readonly matched: false;
      readonly reason: 'unknown_domain' | 'no_entries' | 'entry_not_matched' | 'not_at_last_entry';
      /** The request entry the lookup stopped at; null for `unknown_domain` and `no_entries`. */
      readonly entry: number | null;
      /** One sentence an operator can act on. */
      readonly message: string;
      /** Rules at earlier entries the lookup passed (never applied to a longer request descriptor). */
      readonly rulesOnTheWay: readonly string[];
      readonly steps: readonly ExplainStepJson[];
    };

export interface ExplainStepJson {
  readonly entry: number;
  readonly via: 'exact' | 'wildcard' | 'key';
  readonly configKey: string;
  readonly file: string | null;
  readonly path: string | null;
  readonly line: number | null;
}

export interface ExplainLimitJson {
  readonly name: string | null;
  readonly algorithm: string;
  /** The real window, e.g. `30 per 15 minutes`. */
  readonly window: string;
  readonly requestsPerUnit: number;
  readonly unit: string;
  readonly unitMultiplier: number;
  readonly windowMs: number;
  /** Token bucket capacity (equals requestsPerUnit for the windows). */
  readonly burst: number;
  /** False when being over it never denies (shadow mode, quota mode, SHADOW_MODE). */
  readonly enforced: boolean;
  /** The counter as it stands: `used` of `capacity` (burst for a token bucket), `remaining`, `resetMs`. */
  readonly counter: { readonly used: number; readonly remaining: number; readonly resetMs: number };
  /** What this request would find on this counter. */
  readonly wouldBe: { readonly overLimit: boolean; readonly remaining: number; readonly resetMs: number };
}

/** `per second`, `per 15 minutes`. */
export function windowText(requestsPerUnit: number, unit: string, multiplier: number): string {
  return multiplier === 1 ? `${requestsPerUnit} per ${unit}` : `${requestsPerUnit} per ${multiplier} ${unit}s`;
}

/** The key shape of a request descriptor: its keys joined by `.` (values never appear). */
export function descriptorShape(d: RequestDescriptor): string {
  return d.entries.map((e) => e.key).join('.');
}

/** An unknown domain: every descriptor says so. */
export function unknownDomainJson(check: RateLimitCheck, snapshot: CompiledSnapshot, now: number): ExplainJson {
  const known = snapshot.domainNames;
  const hint =
    known.length === 0
      ? 'no domain is configured'
      : `configured domains: ${known.slice(0, 20).join(', ')}${known.length > 20 ? ', ...' : ''}`;
  return {
    domain: check.domain,
    knownDomain: false,
    configVersion: snapshot.version,
    decision: 'OK',
    charged: false,
    at: new Date(now).toISOString(),
    descriptors: check.descriptors.map((d) => ({
      entries: d.entries.map((e) => ({ key: e.key, value: e.value })),
      shape: descriptorShape(d),
      match: {
        matched: false,
        reason: 'unknown_domain',
        entry: null,
        message: `domain '${check.domain}' is not in the loaded config, so nothing is limited (${hint})`,
        rulesOnTheWay: [],
        steps: [],
      },
      override: null,
      hits: d.hitsAddend ?? (check.hitsAddend === 0 ? 1 : check.hitsAddend),
      limits: [],
      replaced: [],
      status: { code: 'OK', shadowed: false, unlimited: false, quota: false, remaining: 0, resetMs: 0 },
    })),
  };
}

export function explanationJson(check: RateLimitCheck, e: Explanation, snapshot: CompiledSnapshot): ExplainJson {
  return {
    domain: check.domain,
    knownDomain: true,
    configVersion: snapshot.version,
    decision: e.decision.code,
    charged: false,
    at: new Date(e.now).toISOString(),
    descriptors: check.descriptors.map((d, i) => descriptorJson(check, d, e, i, snapshot)),
  };
}

function descriptorJson(
  check: RateLimitCheck,
  d: RequestDescriptor,
  e: Explanation,
  i: number,
  snapshot: CompiledSnapshot,
): ExplainDescriptorJson {
  const plan = e.plans[i]!;
  const status = e.decision.statuses[i]!;
  const trace = snapshot.traceMatch(check.domain, d.entries);
  const rule = trace?.matched === true ? trace.rule : undefined;
  const kept = new Set(plan.limits);
  const replaced =
    d.limitOverride === undefined && rule !== undefined ? rule.limits.filter((l) => !kept.has(l)).map((l) => l.name ?? '') : [];
  return {
    entries: d.entries.map((x) => ({ key: x.key, value: x.value })),
    shape: descriptorShape(d),
    match: matchJson(trace, d),
    override: d.limitOverride === undefined ? null : { requestsPerUnit: d.limitOverride.requestsPerUnit, unit: d.limitOverride.unit },
    hits: plan.hits,
    limits: plan.limits.map((l, j) => limitJson(l, plan, e.current[plan.firstOp + j]!, e.outcomes[plan.firstOp + j]!)),
    replaced,
    status: {
      code: status.code,
      shadowed: status.shadowed,
      unlimited: status.unlimited,
      quota: status.quota === true,
      remaining: status.remaining,
      resetMs: status.resetMs,
    },
  };
}

function limitJson(l: Limit, plan: Planned, now: CounterOutcome, would: CounterOutcome): ExplainLimitJson {
  const capacity = l.algorithm === 'token_bucket' ? l.burst : l.requestsPerUnit;
  return {
    name: l.name ?? null,
    algorithm: l.algorithm,
    window: windowText(l.requestsPerUnit, l.unit, l.unitMultiplier),
    requestsPerUnit: l.requestsPerUnit,
    unit: l.unit,
    unitMultiplier: l.unitMultiplier,
    windowMs: l.windowMs,
    burst: l.burst,
    enforced: plan.enforce,
    counter: { used: Math.max(0, capacity - now.remaining), remaining: now.remaining, resetMs: now.resetMs },
    wouldBe: { overLimit: would.overLimit, remaining: would.remaining, resetMs: would.resetMs },
  };
}

function stepJson(s: MatchStep): ExplainStepJson {
  return {
    entry: s.entry,
    via: s.via,
    configKey: s.configKey,
    file: s.source?.file ?? null,
    path: s.source?.path ?? null,
    line: s.source?.line ?? null,
  };
}

function matchJson(trace: MatchTrace | undefined, d: RequestDescriptor): ExplainMatchJson {
  if (trace === undefined) throw new Error('explain: the domain vanished between two reads of one snapshot');
  const steps = trace.steps.map(stepJson);
  if (trace.matched) {
    const r: CompiledRule = trace.rule;
    return {
      matched: true,
      ruleKey: r.ruleKey,
      file: r.file,
      path: r.path,
      line: r.line,
      unlimited: r.unlimited,
      shadowMode: r.shadowMode,
      quotaMode: r.quotaMode,
      steps,
    };
  }
  const entry = trace.entry < 0 ? null : trace.entry;
  const on = trace.rulesOnTheWay;
  const passed = on.length === 0 ? '' : `; the lookup passed ${on.join(', ')}, whose limits apply only to a descriptor ending there`;
  let message: string;
  if (trace.reason === 'no_entries') message = 'the descriptor has no entries, so no rule can match';
  else if (trace.reason === 'entry_not_matched') {
    const x = d.entries[trace.entry]!;
    const where =
      trace.entry === 0 ? "among the domain's top-level descriptors" : `under the descriptor matched by entry ${trace.entry - 1}`;
    message = `entry ${trace.entry} (key '${x.key}') matched no descriptor ${where} (neither ${x.key}_<value>, a wildcard, nor the bare key '${x.key}')${passed}`;
  } else {
    message = `every entry matched, but the descriptor the last entry (${trace.entry}) matched has no rate_limit${passed}`;
  }
  return { matched: false, reason: trace.reason, entry, message, rulesOnTheWay: [...on], steps };
}
