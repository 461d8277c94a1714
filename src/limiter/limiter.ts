import { CancelledError, DeadlineExceededError, InvalidRequestError } from '../errors.js';
import { validate } from './validate-check.js';
import { limitIdentity } from './keys.js';
import type { OverLimitCache } from './over-limit-cache.js';
import { counterRefs, type CounterRef } from './counter-refs.js';
import { ruleWithOverride, type OverrideSource } from './overrides.js';
import { evaluateStored } from './algorithms/evaluate.js';
import type { Explanation, StateRead } from './explanation.js';
import { buildOps, NONE } from './plan-ops.js';
import { evaluateWithReservations, hasReservation, type ReservationObserve } from './reservations.js';
import type { Backend, ConfigSnapshot, ConfigSource } from './ports.js';
import { OK_NO_LIMIT, verdict, type Planned, type VerdictFlags } from './verdict.js';
import {
  UNIT_SECONDS,
  type CancellationProbe,
  type CounterOp,
  type CounterOutcome,
  type Decision,
  type DegradedReason,
  type DescriptorStatus,
  type EvaluateOptions,
  type EvaluateResult,
  type Limit,
  type RateLimitCheck,
  type RequestDescriptor,
  type Rule,
} from './types.js';

export type { Explanation, StateRead } from './explanation.js';
export type { CounterRef } from './counter-refs.js';

/** Behaviour switches of the limiter (from settings). */
export interface LimiterOptions {
  /** CACHE_KEY_PREFIX: prepended to every counter key. */
  readonly keyPrefix: string;
  /**
   * SHADOW_MODE: the overall answer is always OK; each descriptor's status still says OVER_LIMIT
   * when it is over (as upstream), and nothing is denied, so counters are charged as if admitted.
   */
  readonly shadowMode: boolean;
  /** QUOTA_MODE: every descriptor is a quota-mode descriptor (see ./verdict.ts). */
  readonly quotaMode?: boolean | undefined;
  /** RESPONSE_DYNAMIC_METADATA: decisions carry the passed descriptors' merged `metadata`. */
  readonly responseDynamicMetadata?: boolean | undefined;
  /**
   * CHARGE_ON_DENY: false (default) means a denied request consumes nothing on any descriptor;
   * true restores envoyproxy/ratelimit's behaviour of charging every descriptor.
   */
  readonly chargeOnDeny: boolean;
  /** Test-only clock override in Unix ms, forwarded to the backend; undefined in production (Redis TIME). */
  readonly now?: (() => number | undefined) | undefined;
  /** LOCAL_CACHE_SIZE: fixed-window counters known to be over their limit (see over-limit-cache.ts). */
  readonly overLimitCache?: OverLimitCache | undefined;
  /** Tenant limits set at run time (./overrides.ts); read once per request descriptor. */
  readonly overrides?: { current(): OverrideSource } | undefined;
}

/** Hook for telemetry; the limiter itself stays free of prom-client. */
export interface LimiterObserver {
  /**
   * Called once per descriptor status of a completed decision. `knownDomain` is false for
   * unknown domains. `descriptor` carries request values: an observer must not turn them into
   * labels unless the rule opted in (`status.detailedMetric`). `hits` is what the request asked
   * this descriptor to consume (its hits_addend, else the request's, 0 meaning 1 at that level).
   */
  onStatus(domain: string, status: DescriptorStatus, knownDomain: boolean, descriptor: RequestDescriptor, hits: number): void;
  /**
   * Called once per candidate limit of a matched rule in a decision whose counters were
   * evaluated: `over` when the candidate would have denied this request, `denied` when the
   * enforced answer was OVER_LIMIT anyway.
   */
  onCandidate?(domain: string, rule: Rule, candidate: Limit, over: boolean, denied: boolean): void;
  /** Called once per reservation call (reserve, settle, cancel) with its outcome (./reservations.ts). */
  onReservation?: ReservationObserve;
}

export { REQUEST_LIMITS } from './validate-check.js';

/**
 * Turns a request into counter operations, runs them on the backend in one call, and turns the
 * outcomes into a decision. Reads one config snapshot per request.
 */
export class RateLimiter {
  /**
   * One frozen options object per domain, so a request allocates none (production has no clock
   * override). Only configured domains reach the backend, so this holds at most every domain
   * ever configured.
   */
  private readonly evaluateOptions = new Map<string, EvaluateOptions>();
  /** The same for requests with a quota-mode limit (charged as upstream, see {@link optionsFor}). */
  private readonly quotaOptions = new Map<string, EvaluateOptions>();
  private readonly verdictFlags: VerdictFlags;

  constructor(
    private readonly config: ConfigSource,
    private readonly backend: Backend,
    private readonly options: LimiterOptions,
    private readonly observer?: LimiterObserver,
  ) {
    this.verdictFlags = Object.freeze({ globalShadow: options.shadowMode, metadata: options.responseDynamicMetadata === true });
  }

  /**
   * @param deadline Unix ms after which the caller no longer waits (from the gRPC deadline).
   * @throws (as a rejected promise) InvalidRequestError for malformed requests,
   *   DeadlineExceededError when the deadline has passed, BackendUnavailableError / BackendError
   *   from the backend.
   */
  async shouldRateLimit(check: RateLimitCheck, deadline?: number): Promise<Decision> {
    return this.decide(check, deadline);
  }

  /**
   * {@link shouldRateLimit} without a promise when none is needed: the decision itself when the
   * backend answers in-process (`Backend.evaluateSync`, the memory backend), when the domain is
   * unknown or nothing is limited, or when the over-limit cache answers; a promise when the
   * backend must be asked over the network. A promise costs an allocation and a microtask turn
   * per layer, a measurable share of a request that takes a few microseconds.
   * @param cancellation the caller's cancellation (its gRPC call): a cancelled request is not
   *   evaluated (CancelledError), and an asynchronous backend reads it again just before it sends
   *   the request. The memory backend, which answers at once, is never given it, so its requests
   *   keep the cached options object and allocate nothing more.
   * @throws synchronously, or as a rejected promise, the errors of {@link shouldRateLimit}, and
   *   CancelledError.
   */
  decide(check: RateLimitCheck, deadline?: number, cancellation?: CancellationProbe): Decision | Promise<Decision> {
    validate(check);
    const snapshot = this.config.current();
    const domain = check.domain;
    if (!snapshot.hasDomain(domain)) {
      const statuses = check.descriptors.map(() => OK_NO_LIMIT);
      this.observe(check, statuses, false);
      return this.verdictFlags.metadata ? { code: 'OK', statuses, request: check } : { code: 'OK', statuses };
    }
    const requestHits = check.hitsAddend === 0 ? 1 : check.hitsAddend;
    const plans = this.plan(snapshot, check, requestHits);
    const ops: CounterOp[] = [];
    const { quota, reservation, candidateStart } = buildOps(this.options.keyPrefix, check, plans, ops);
    if (ops.length === 0) return this.conclude(check, plans, [], undefined);
    if (reservation) return this.reserving(check, plans, ops, quota, deadline, cancellation);
    const cache = this.options.overLimitCache;
    // Candidate ops never deny: the cache answers from the enforced ops alone (candidates then go uncounted, as a denied request charges nothing).
    const enforcedOps = candidateStart === ops.length ? ops : ops.slice(0, candidateStart);
    const fromCache =
      cache?.enabled === true && candidateStart > 0 ? cachedDenial(cache, enforcedOps, this.options.now?.() ?? Date.now()) : undefined;
    if (fromCache !== undefined) return this.conclude(check, plans, fromCache, undefined);
    stillWanted(deadline, cancellation);
    const options = this.optionsFor(domain, quota);
    const backend = this.backend;
    if (backend.evaluateSync !== undefined) return this.evaluated(check, plans, ops, backend.evaluateSync(ops, options));
    // A failure-policy decorator applies the domain's failure_mode and may answer degraded; the
    // reason travels into the decision so adapters and metrics say so.
    // A literal, not a spread: spreading the frozen cached object costs 60 ns, a literal 5.
    const asked =
      cancellation === undefined ? options : { chargeOnDeny: options.chargeOnDeny, now: options.now, domain: options.domain, cancellation };
    return backend.evaluate(ops, asked).then((result) => this.evaluated(check, plans, ops, result));
  }

  /** A request with a reservation rule's descriptor: its own path (./reservations.ts), past the over-limit cache. */
  private reserving(
    check: RateLimitCheck,
    plans: readonly Planned[],
    ops: readonly CounterOp[],
    quota: boolean,
    deadline: number | undefined,
    cancellation: CancellationProbe | undefined,
  ): Promise<Decision> {
    stillWanted(deadline, cancellation);
    const options = this.optionsFor(check.domain, quota);
    return evaluateWithReservations(this.backend, check, plans, ops, options, this.observer?.onReservation).then(({ outcomes, degraded }) =>
      this.conclude(check, plans, outcomes, degraded),
    );
  }

  /**
   * The backend call's options for `domain`: cached, except under a test clock.
   *
   * A request with a quota-mode limit is charged as envoyproxy/ratelimit charges (every window
   * counter, admitted or denied, within its limit or not), whatever CHARGE_ON_DENY says: a quota
   * counter records consumption that has happened (Envoy reports it with `hits_addend`, often on
   * the response path, `apply_on_stream_done`), and refusing to record the hits that cross the
   * limit would leave an exhausted quota looking available to every later check (a `hits_addend:
   * 0` check is over only once the count is past the limit).
   */
  private optionsFor(domain: string, quota: boolean): EvaluateOptions {
    const chargeOnDeny = quota || this.options.chargeOnDeny;
    const now = this.options.now;
    if (now !== undefined) return { chargeOnDeny, now: now(), domain };
    const cache = quota ? this.quotaOptions : this.evaluateOptions;
    let options = cache.get(domain);
    if (options === undefined) {
      options = Object.freeze({ chargeOnDeny, now: undefined, domain });
      cache.set(domain, options);
    }
    return options;
  }

  private evaluated(check: RateLimitCheck, plans: readonly Planned[], ops: readonly CounterOp[], result: EvaluateResult): Decision {
    const cache = this.options.overLimitCache;
    if (cache?.enabled === true && result.degraded === undefined)
      rememberDenials(cache, ops, result.outcomes, this.options.now?.() ?? Date.now());
    return this.conclude(check, plans, result.outcomes, result.degraded);
  }

  /** The decision from each op's outcome (`outcomes[i]` belongs to op i); see ./verdict.ts. */
  private conclude(
    check: RateLimitCheck,
    plans: readonly Planned[],
    outcomes: readonly CounterOutcome[],
    degraded: DegradedReason | undefined,
  ): Decision {
    const decision = verdict(plans, outcomes, this.verdictFlags);
    this.observe(check, decision.statuses, true);
    if (this.observer?.onCandidate !== undefined) this.observeCandidates(check.domain, plans, outcomes, decision.code === 'OVER_LIMIT');
    if (degraded === undefined && !this.verdictFlags.metadata) return decision;
    const request = this.verdictFlags.metadata ? check : undefined;
    return degraded === undefined ? { ...decision, request } : { ...decision, degraded, request };
  }

  /**
   * What {@link decide} would do with `check`, charging nothing: the same plan and ops, evaluated
   * by the reference math (src/limiter/algorithms/evaluate.ts, which the Lua scripts mirror) over
   * the counters as `read` returns them, with every write discarded. `read` must not write (the
   * stores' `readStates`). Undefined for an unknown domain. Not on the request path: it allocates
   * freely and is not observed by metrics. An unknown domain reads nothing (`knownDomain` false).
   */
  async explain(check: RateLimitCheck, read: StateRead): Promise<Explanation> {
    validate(check);
    const snapshot = this.config.current();
    if (!snapshot.hasDomain(check.domain)) {
      const statuses = check.descriptors.map(() => OK_NO_LIMIT);
      const now = this.options.now?.() ?? Date.now();
      return { snapshot, knownDomain: false, plans: [], ops: [], now, current: [], outcomes: [], decision: { code: 'OK', statuses } };
    }
    const plans = this.plan(snapshot, check, check.hitsAddend === 0 ? 1 : check.hitsAddend);
    notReservation(plans, 'explain');
    const ops: CounterOp[] = [];
    const { quota } = buildOps(this.options.keyPrefix, check, plans, ops);
    const chargeOnDeny = quota || this.options.chargeOnDeny;
    const stored = ops.length === 0 ? { now: this.options.now?.() ?? Date.now(), values: [] } : await read(ops, this.options.now?.());
    const byKey = new Map<string, string | null>();
    ops.forEach((op, i) => byKey.set(op.key, stored.values[i] ?? null));
    const get = (key: string) => byKey.get(key);
    const current = evaluateStored(
      ops.map((op) => ({ ...op, hits: 0 })),
      stored.now,
      chargeOnDeny,
      get,
    ).result.outcomes;
    const { result } = evaluateStored(ops, stored.now, chargeOnDeny, get);
    const decision = verdict(plans, result.outcomes, this.verdictFlags);
    return { snapshot, knownDomain: true, plans, ops, now: stored.now, current, outcomes: result.outcomes, decision };
  }

  private plan(snapshot: ConfigSnapshot, check: RateLimitCheck, requestHits: number): Planned[] {
    const plans: Planned[] = [];
    let replaced: Set<string> | undefined;
    const overrides = this.options.overrides?.current();
    for (const d of check.descriptors) {
      const hits = d.hitsAddend ?? requestHits;
      let rule: Rule | undefined;
      let limits: readonly Limit[];
      if (d.limitOverride !== undefined) {
        // As envoyproxy/ratelimit: an override from Envoy applies whenever the domain is known,
        // as a fixed window, never in shadow mode (the global SHADOW_MODE still applies).
        const { unit, requestsPerUnit } = d.limitOverride;
        const identity = `ovr:${limitIdentity('fixed_window', unit, 1)}`;
        const limit: Limit = {
          name: undefined,
          algorithm: 'fixed_window',
          unit,
          unitMultiplier: 1,
          requestsPerUnit,
          burst: requestsPerUnit,
          windowMs: UNIT_SECONDS[unit] * 1000,
          identity,
          replaces: [],
        };
        const matched = snapshot.findRule(check.domain, d.entries);
        rule = {
          ruleKey: matched?.ruleKey ?? `${check.domain}._override_`,
          limits: [limit],
          unlimited: false,
          shadowMode: false,
          detailedMetric: matched?.detailedMetric ?? false,
        };
        limits = rule.limits;
      } else {
        rule = ruleWithOverride(check.domain, snapshot.findRule(check.domain, d.entries), overrides?.lookup(check.domain, d.entries));
        limits = rule === undefined || rule.unlimited ? [] : rule.limits;
      }
      for (const l of limits) {
        for (const name of l.replaces) (replaced ??= new Set()).add(name);
      }
      const candidates = d.limitOverride === undefined ? (rule?.candidates ?? NONE) : NONE;
      plans.push({
        rule,
        limits,
        hits,
        firstOp: 0,
        candidates,
        firstCandidate: 0,
        ruleShadow: rule?.shadowMode ?? false,
        quota: false,
        enforce: false,
      });
    }
    // envoyproxy/ratelimit `replaces`: a limit named by any matched limit's `replaces` is dropped.
    if (replaced !== undefined) {
      for (const p of plans) p.limits = p.limits.filter((l) => l.name === undefined || !replaced.has(l.name));
    }
    const { shadowMode, quotaMode } = this.options;
    for (const p of plans) {
      // As upstream: QUOTA_MODE makes every descriptor a quota one; a rule's quota_mode counts
      // only while the rule still has a limit (upstream drops a replaced limit altogether).
      p.quota = quotaMode === true || (p.rule?.quotaMode === true && p.limits.length > 0);
      p.enforce = !(shadowMode || p.ruleShadow || p.quota);
    }
    return plans;
  }

  private observeCandidates(domain: string, plans: readonly Planned[], outcomes: readonly CounterOutcome[], denied: boolean): void {
    for (const p of plans) {
      for (let j = 0; j < p.candidates.length; j++) {
        const o = outcomes[p.firstCandidate + j];
        // Absent when the over-limit cache answered: a denied request counts nothing.
        if (o !== undefined) this.observer!.onCandidate!(domain, p.rule!, p.candidates[j]!, o.overLimit, denied);
      }
    }
  }

  /**
   * The counters `check`'s descriptors would touch, found as a decision finds them (rule match,
   * `replaces`, `share_threshold`, tenant and request overrides), each with an op that reads it
   * without charging (hits 0, not enforced). Counter keys hold descriptor values only as digests,
   * so this is how a counter is found: from a descriptor, never by decoding keys.
   * @throws InvalidRequestError for a malformed check.
   */
  counters(check: RateLimitCheck): CounterRef[] {
    validate(check);
    const snapshot = this.config.current();
    if (!snapshot.hasDomain(check.domain)) return [];
    const plans = this.plan(snapshot, check, 0);
    notReservation(plans, 'the admin API');
    return counterRefs(check, plans, this.options.keyPrefix);
  }

  private observe(check: RateLimitCheck, statuses: readonly DescriptorStatus[], known: boolean): void {
    if (this.observer === undefined) return;
    const requestHits = check.hitsAddend === 0 ? 1 : check.hitsAddend;
    for (let i = 0; i < statuses.length; i++) {
      const descriptor = check.descriptors[i]!;
      this.observer.onStatus(check.domain, statuses[i]!, known, descriptor, descriptor.hitsAddend ?? requestHits);
    }
  }
}

/** Throws when the caller has stopped waiting (its deadline passed, or it cancelled) before the backend is asked. */
function stillWanted(deadline: number | undefined, cancellation: CancellationProbe | undefined): void {
  if (deadline !== undefined && Date.now() >= deadline)
    throw new DeadlineExceededError('deadline exceeded before the counters were evaluated');
  if (cancellation?.cancelled === true) throw new CancelledError('the caller cancelled the request before its counters were evaluated');
}

/** Explain and the admin API read ordinary counters only: a reservation rule's state is a hash of its own (lua/reservation.lua). */
function notReservation(plans: readonly Planned[], what: string): void {
  if (!hasReservation(plans)) return;
  const rule = plans.find((p) => p.rule?.reservation !== undefined)!.rule!.ruleKey;
  throw new InvalidRequestError(
    `${what} does not cover reservation rules (${rule} matched): their state is not an ordinary counter (README "Reservations")`,
  );
}

/**
 * Outcomes straight from the over-limit cache when every op of the request is an enforced fixed
 * window cached as over (the request is then denied, and a denied request charges nothing, so
 * Redis has nothing to do). Undefined when any op must be asked.
 */
function cachedDenial(cache: OverLimitCache, ops: readonly CounterOp[], now: number): CounterOutcome[] | undefined {
  const out: CounterOutcome[] = [];
  for (const op of ops) {
    if (op.algorithm !== 'fixed_window' || !op.enforce) return undefined;
    const ms = cache.remainingMs(op.key, now);
    if (ms === 0) return undefined;
    out.push({ overLimit: true, remaining: 0, resetMs: ms });
  }
  return out;
}

/** Caches fixed-window counters that a one-hit request would find over (count >= threshold). */
function rememberDenials(cache: OverLimitCache, ops: readonly CounterOp[], outcomes: readonly CounterOutcome[], now: number): void {
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!;
    const o = outcomes[i]!;
    if (o.overLimit && op.algorithm === 'fixed_window' && op.enforce && op.hits <= 1) cache.add(op.key, now, o.resetMs);
  }
}
