import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { CIRCUIT_STATES, type CircuitState } from '../backend/resilience/circuit-breaker.js';
import { BACKEND_ERROR_OUTCOMES, type BackendErrorOutcome } from '../backend/resilience/failure-policy.js';
import { DEGRADED_REASONS, type DegradedReason } from '../limiter/types.js';
import { RESOLUTION_OUTCOMES, type ResolutionOutcome } from '../resolve/outcome.js';
import { buildInfoGauge, configInfoGauge, INFO_METRIC_NAMES } from './info-metrics.js';
import { TRANSPORT_METRIC_NAMES, transportMetrics, type TransportAction } from './transport-metrics.js';
import { ENFORCEMENT_METRIC_NAMES, enforcementMetrics, type EnforcementMetrics } from './enforcement-metrics.js';
import { RESERVATION_METRIC_NAMES, reservationMetrics, type ReservationMetrics } from './reservation-metrics.js';
import { HotCounter, HotHistogram, perRule } from './series.js';
import { RLQS_METRIC_NAMES, rlqsMetrics, type RlqsMetrics } from './rlqs-metrics.js';

/**
 * Every Prometheus metric meshlimit exports, declared here and nowhere else, on a dedicated
 * Registry (never prom-client's global one, so tests and embedders get isolated instances).
 *
 * Cardinality contract: labels take values from small fixed sets or from the config, never from
 * requests. `domain` is one of the configured domains or `_unknown_`; `rule` is a config rule key
 * (`Rule.ruleKey`, built from config keys and values, never request values) or `_none_` when no
 * rule matched; and at most {@link MAX_DECISION_RULES} distinct rules per domain get their own
 * series, the rest share `_other_` (a config with thousands of values must not explode a scrape).
 *
 * One label name for what happened: every counter and histogram that says how an event ended
 * labels it `outcome` (never `code`, `result`, `kind` or `reason`); other labels keep their names
 * (`domain`, `rule`, `state`, `from`/`to`, `action`).
 *
 * Process metrics: prom-client's default collectors (`process_*`, `nodejs_*`) are registered
 * *without* a prefix, so the standard Node.js dashboards and alerts work unchanged.
 *
 * Hot path: {@link Metrics.recordDecision}, {@link Metrics.observeRequest},
 * {@link Metrics.countRequest} and {@link Metrics.observeRedis} update series objects from
 * ./series.ts, cached in nested Maps (no per-call label objects, string building or hashing):
 * an update is an add. Everything else uses prom-client's classes.
 */

export const DECISION_RESULTS = ['ok', 'over_limit', 'shadow_over_limit', 'unlimited', 'no_rule', 'error'] as const;
export type DecisionResult = (typeof DECISION_RESULTS)[number]; // of one descriptor

export const REQUEST_RESULTS = ['ok', 'over_limit', 'error'] as const;
export type RequestResult = (typeof REQUEST_RESULTS)[number]; // of one request, for the latency histogram

export const REQUEST_CODES = ['ok', 'over_limit', 'invalid_argument', 'unavailable', 'deadline_exceeded', 'cancelled', 'internal'] as const;
export type RequestCode = (typeof REQUEST_CODES)[number]; // gRPC/HTTP outcome of one request

export { TRANSPORT_ACTIONS, type TransportAction } from './transport-metrics.js';

/** Label value for a domain that is not in the loaded config. */
export const UNKNOWN_DOMAIN = '_unknown_';
/** Label value for a descriptor that matched no rule. */
export const NO_RULE = '_none_';
/** Label value shared by the rules of a domain beyond {@link MAX_DECISION_RULES}. */
export const OTHER_RULE = '_other_';
/** Distinct `rule` label values per domain before further rules are folded into `_other_`. */
export const MAX_DECISION_RULES = 1000;

/** Latency buckets in seconds: 0.1 ms (memory backend) .. 1 s (a struggling Redis). */
export const DURATION_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

/** The metric names, for documentation and tests. */
export const METRIC_NAMES = [
  'meshlimit_decisions_total',
  'meshlimit_near_limit_hits_total',
  'meshlimit_request_duration_seconds',
  'meshlimit_requests_total',
  'meshlimit_config_reloads_total',
  'meshlimit_config_last_reload_success',
  'meshlimit_config_last_reload_timestamp_seconds',
  'meshlimit_config_rules',
  'meshlimit_backend_errors_total',
  'meshlimit_degraded_answers_total',
  'meshlimit_resolutions_total',
  'meshlimit_resolution_cache_lookups_total',
  'meshlimit_jwks_refreshes_total',
  'meshlimit_breaker_state',
  'meshlimit_breaker_transitions_total',
  'meshlimit_redis_command_duration_seconds',
  ...TRANSPORT_METRIC_NAMES,
  ...INFO_METRIC_NAMES,
  ...ENFORCEMENT_METRIC_NAMES,
  ...RESERVATION_METRIC_NAMES,
  ...RLQS_METRIC_NAMES,
] as const;

/** What a successful config (re)load reports. */
export interface LoadedConfigInfo {
  /** Number of rules (descriptors with a rate limit or `unlimited`) in the new config. */
  readonly rules: number;
  /** The configured domains: the only values the `domain` label takes besides `_unknown_`. */
  readonly domains: readonly string[];
  readonly version?: string | undefined; // content version (src/config/version.ts): meshlimit_config_info
}

/** The metrics API the limiter, adapters and config store call. */
export interface Metrics {
  readonly registry: Registry;
  /** Unknown domains, unmatched descriptors, idle rules (./enforcement-metrics.ts); reservations (./reservation-metrics.ts). */
  readonly enforcement: EnforcementMetrics;
  readonly reservations: ReservationMetrics;
  /** The RLQS service's streams, buckets and assignments (./rlqs-metrics.ts). */
  readonly rlqs: RlqsMetrics;
  /** Content-Type of {@link render}'s output (Prometheus text exposition format). */
  readonly contentType: string;
  /** The exposition text, for `GET /metrics`. */
  render(): Promise<string>;
  /** Counts one descriptor decision. `ruleKey` undefined means no rule matched. */
  recordDecision(domain: string, ruleKey: string | undefined, result: DecisionResult): void;
  /** Adds hits admitted past NEAR_LIMIT_RATIO of their limit (a configured domain's rule). */
  recordNearLimit(domain: string, ruleKey: string | undefined, hits: number): void;
  /** Observes one request's latency in seconds. */
  observeRequest(seconds: number, result: RequestResult): void;
  /** Counts one request by its gRPC/HTTP outcome. */
  countRequest(code: RequestCode): void;
  /**
   * Records a config (re)load attempt. On success pass the new config's info: the rule gauge,
   * the known-domain set and the success timestamp follow it. On failure the old config stays in
   * use, so only the failure counter and the success gauge change.
   */
  configReload(ok: true, info: LoadedConfigInfo): void;
  configReload(ok: false): void;
  /** Counts one failed backend call. */
  backendError(kind: BackendErrorOutcome): void;
  /** Counts one answer that did not come from exact shared counters. */
  degradedAnswer(reason: DegradedReason): void;
  /** Records a circuit-breaker transition (called once per transition, never per call). */
  breakerTransition(from: CircuitState, to: CircuitState): void;
  /** Sets the breaker state gauge without counting a transition (at start-up). */
  setBreakerState(state: CircuitState): void;
  /** Observes one Redis round trip (a script call) in seconds. */
  observeRedis(seconds: number, ok: boolean): void;
  /** Counts one resolved descriptor (src/resolve) of a domain with a resolution block, by outcome. */
  resolution(domain: string, outcome: ResolutionOutcome): void;
  /** Counts one lookup in a domain's verified-token cache. */
  resolutionCacheLookup(domain: string, hit: boolean): void;
  /** Counts one JWKS load attempt (URL or file) of a domain's resolution. */
  jwksRefresh(domain: string, ok: boolean): void;
  /** Counts one action of the gRPC transport guard against a client. */
  transportAction(action: TransportAction): void;
  /** Counts one changed set of the gRPC port's TLS files: applied, or rejected (the previous set stays). */
  tlsReload(result: 'applied' | 'rejected', listener?: 'grpc' | 'admin'): void;
}

export interface MetricsOptions {
  /** Register prom-client's default process/Node.js collectors (default true). */
  readonly collectDefault?: boolean | undefined;
  /** Clock for the reload timestamp; for tests. */
  readonly now?: (() => number) | undefined;
}

type Child = { inc(value?: number): void };

export function createMetrics(options: MetricsOptions = {}): Metrics {
  const registry = new Registry();
  if (options.collectDefault ?? true) collectDefaultMetrics({ register: registry });
  // The configured domains: the only values the `domain` label of decisions takes besides _unknown_.
  const domains: KnownDomains = { current: new Set() };
  buildInfoGauge(registry);
  return {
    registry,
    enforcement: enforcementMetrics(registry, options.now),
    reservations: reservationMetrics(registry),
    rlqs: rlqsMetrics(registry),
    contentType: registry.contentType,
    render: () => registry.metrics(),
    ...requestMetrics(registry, domains),
    ...configMetrics(registry, domains, options.now ?? Date.now),
    ...backendMetrics(registry),
    ...resolutionMetrics(registry),
    ...transportMetrics(registry),
  };
}

interface KnownDomains {
  current: ReadonlySet<string>;
}

type RequestObservers = 'observeRequest' | 'countRequest';

// Fixed label sets are created up front in each group below: every series exists (at 0) from
// the first scrape, so rate() and absent() work, and the hot path never builds a child.

/** Per request (series.ts's HotCounter/HotHistogram: same exposition, an add per update). */
function requestMetrics(registry: Registry, domains: KnownDomains): Pick<Metrics, 'recordDecision' | 'recordNearLimit' | RequestObservers> {
  const decisions = new HotCounter(
    'meshlimit_decisions_total',
    'Descriptor decisions by domain (configured domains only, else _unknown_), config rule key (_none_ when no rule matched) and outcome.',
    ['domain', 'rule', 'outcome'],
    [registry],
  );
  const nearLimit = new HotCounter(
    'meshlimit_near_limit_hits_total',
    "Hits admitted within their limit but past NEAR_LIMIT_RATIO of it (envoyproxy/ratelimit's near_limit), by domain and config rule key.",
    ['domain', 'rule'],
    [registry],
  );
  const duration = new HotHistogram(
    'meshlimit_request_duration_seconds',
    'Time to decide one rate-limit request, in seconds, by outcome (ok, over_limit, error).',
    ['outcome'],
    DURATION_BUCKETS,
    [registry],
  );
  const requests = new HotCounter(
    'meshlimit_requests_total',
    'Rate-limit requests (gRPC and HTTP /json, failed ones included) by outcome.',
    ['outcome'],
    [registry],
  );
  const durationChildren = childrenOf(REQUEST_RESULTS, (r) => duration.labels(r));
  const requestChildren = childrenOf(REQUEST_CODES, (c) => requests.labels(c));
  for (const c of Object.values(requestChildren)) c.inc(0);
  for (const r of REQUEST_RESULTS) durationChildren[r].touch();
  const byRule = perRule(MAX_DECISION_RULES, OTHER_RULE);
  const decisionChild = byRule((domain, rule) => childrenOf(DECISION_RESULTS, (r) => decisions.labels(domain, rule, r)));
  const nearChild = byRule((domain, rule) => nearLimit.labels(domain, rule));
  return {
    recordNearLimit(domain, ruleKey, hits) {
      if (domains.current.has(domain)) nearChild(domain, ruleKey ?? NO_RULE).inc(hits);
    },
    recordDecision(domain, ruleKey, result) {
      // A rule key cannot belong to a domain the config does not have.
      if (!domains.current.has(domain)) decisionChild(UNKNOWN_DOMAIN, NO_RULE)[result].inc();
      else decisionChild(domain, ruleKey ?? NO_RULE)[result].inc();
    },
    observeRequest(seconds, result) {
      durationChildren[result].observe(seconds);
    },
    countRequest(code) {
      requestChildren[code].inc();
    },
  };
}

/** Config (re)loads. `aggregator`: how the per-process values combine in the WORKERS > 1 /metrics. */
function configMetrics(registry: Registry, domains: KnownDomains, now: () => number): Pick<Metrics, 'configReload'> {
  const reloads = new Counter({
    name: 'meshlimit_config_reloads_total',
    help: 'Config (re)load attempts by outcome (success, failure); a failed reload keeps the previous config.',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  const lastReloadSuccess = new Gauge({
    name: 'meshlimit_config_last_reload_success',
    aggregator: 'min',
    help: '1 when the last config (re)load succeeded, 0 when it failed (the previous config is still in use).',
    registers: [registry],
  });
  const lastReloadTimestamp = new Gauge({
    name: 'meshlimit_config_last_reload_timestamp_seconds',
    aggregator: 'min',
    help: 'Unix time of the last successful config (re)load, i.e. when the config in use was loaded.',
    registers: [registry],
  });
  const setConfigVersion = configInfoGauge(registry);
  const rules = new Gauge({
    name: 'meshlimit_config_rules',
    aggregator: 'max',
    help: 'Number of rules in the config in use.',
    registers: [registry],
  });
  const reloadSuccess = reloads.labels('success');
  const reloadFailure = reloads.labels('failure');
  reloadSuccess.inc(0);
  reloadFailure.inc(0);
  lastReloadSuccess.set(0);
  rules.set(0);
  function configReload(ok: boolean, info?: LoadedConfigInfo): void {
    if (ok && info !== undefined) {
      reloadSuccess.inc();
      lastReloadSuccess.set(1);
      lastReloadTimestamp.set(now() / 1000);
      rules.set(info.rules);
      if (info.version !== undefined) setConfigVersion(info.version);
      domains.current = new Set(info.domains);
    } else {
      reloadFailure.inc();
      lastReloadSuccess.set(0);
    }
  }
  return { configReload: configReload as Metrics['configReload'] };
}

/** The counter store: errors, degraded answers, the breaker and Redis round trips. */
function backendMetrics(
  registry: Registry,
): Pick<Metrics, 'backendError' | 'degradedAnswer' | 'breakerTransition' | 'setBreakerState' | 'observeRedis'> {
  const backendErrors = new Counter({
    name: 'meshlimit_backend_errors_total',
    help: "Failed backend calls by outcome: transient (timeout, connection, failover), permanent (script error, a bug), circuit_open (failed fast by the breaker), overloaded (shed), refund_failed (a denied request's charge could not be given back).",
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  const degraded = new Counter({
    name: 'meshlimit_degraded_answers_total',
    help: 'Answers that did not come from exact shared counters, by outcome (circuit_open, backend_error, local_fallback, overloaded).',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  const breakerState = new Gauge({
    name: 'meshlimit_breaker_state',
    aggregator: 'max',
    help: 'Circuit breaker around Redis: 1 for the current state (closed, half_open, open), 0 for the others; with REDIS_PERSECOND the worse of the two breakers. Absent with the memory backend.',
    labelNames: ['state'] as const,
    registers: [registry],
  });
  const breakerTransitions = new Counter({
    name: 'meshlimit_breaker_transitions_total',
    help: 'Circuit breaker state changes, by from and to state (with REDIS_PERSECOND, of either breaker).',
    labelNames: ['from', 'to'] as const,
    registers: [registry],
  });
  const redisDuration = new HotHistogram(
    'meshlimit_redis_command_duration_seconds',
    'Duration of Redis script calls (one per request on standalone Redis), by outcome (ok, error).',
    ['outcome'],
    DURATION_BUCKETS,
    [registry],
  );
  const redisOk = redisDuration.labels('ok');
  const redisError = redisDuration.labels('error');
  const backendChildren = childrenOf(BACKEND_ERROR_OUTCOMES, (k) => backendErrors.labels(k) as Child);
  const degradedChildren = childrenOf(DEGRADED_REASONS, (r) => degraded.labels(r) as Child);
  for (const c of [...Object.values(backendChildren), ...Object.values(degradedChildren)]) c.inc(0);
  const setState = (state: CircuitState): void => {
    for (const st of CIRCUIT_STATES) breakerState.set({ state: st }, st === state ? 1 : 0);
  };
  return {
    backendError: (kind) => backendChildren[kind].inc(),
    degradedAnswer: (reason) => degradedChildren[reason].inc(),
    breakerTransition(from, to) {
      setState(to);
      breakerTransitions.inc({ from, to });
    },
    setBreakerState: setState,
    observeRedis: (seconds, ok) => (ok ? redisOk : redisError).observe(seconds),
  };
}

/**
 * Descriptor resolution (src/resolve). `domain` takes only domains that have a resolution block
 * in the config (the resolver never reports others), so it is bounded by the config.
 */
function resolutionMetrics(registry: Registry): Pick<Metrics, 'resolution' | 'resolutionCacheLookup' | 'jwksRefresh'> {
  const resolutions = new Counter({
    name: 'meshlimit_resolutions_total',
    help: 'Descriptors resolved from a bearer token, by domain and outcome (verified, or why the client address was used instead).',
    labelNames: ['domain', 'outcome'] as const,
    registers: [registry],
  });
  const resolutionCache = new Counter({
    name: 'meshlimit_resolution_cache_lookups_total',
    help: 'Lookups of a token in the verified-token cache, by domain and outcome (hit, miss); a miss costs one signature verification.',
    labelNames: ['domain', 'outcome'] as const,
    registers: [registry],
  });
  const jwksRefreshes = new Counter({
    name: 'meshlimit_jwks_refreshes_total',
    help: 'JWKS load attempts (jwks_url or jwks_file) by domain and outcome (success, failure); on failure the cached keys stay in use.',
    labelNames: ['domain', 'outcome'] as const,
    registers: [registry],
  });
  const resolutionChildren = new Map<string, Record<ResolutionOutcome, Child>>();
  const cacheChildren = new Map<string, { hit: Child; miss: Child }>();
  const jwksChildren = new Map<string, { success: Child; failure: Child }>();
  return {
    resolution(domain, outcome) {
      perDomain(resolutionChildren, domain, () => childrenOf(RESOLUTION_OUTCOMES, (o) => resolutions.labels(domain, o) as Child))[
        outcome
      ].inc();
    },
    resolutionCacheLookup(domain, hit) {
      const c = perDomain(cacheChildren, domain, () => ({
        hit: resolutionCache.labels(domain, 'hit') as Child,
        miss: resolutionCache.labels(domain, 'miss') as Child,
      }));
      (hit ? c.hit : c.miss).inc();
    },
    jwksRefresh(domain, ok) {
      const c = perDomain(jwksChildren, domain, () => ({
        success: jwksRefreshes.labels(domain, 'success') as Child,
        failure: jwksRefreshes.labels(domain, 'failure') as Child,
      }));
      (ok ? c.success : c.failure).inc();
    },
  };
}

function perDomain<T>(map: Map<string, T>, domain: string, make: () => T): T {
  let v = map.get(domain);
  if (v === undefined) {
    v = make();
    map.set(domain, v);
  }
  return v;
}

function childrenOf<K extends string, C>(keys: readonly K[], make: (key: K) => C): Record<K, C> {
  const out = {} as Record<K, C>;
  for (const k of keys) out[k] = make(k);
  return out;
}
