import { describe, expect, it } from 'vitest';
import { register as globalRegistry } from 'prom-client';
import { DURATION_BUCKETS, MAX_DECISION_RULES, METRIC_NAMES, createMetrics, type Metrics } from '../../../src/telemetry/metrics.js';

type Sample = { labels: Record<string, string | number>; value: number; metricName?: string };

async function samples(metrics: Metrics, name: string): Promise<Sample[]> {
  const metric = metrics.registry.getSingleMetric(name);
  if (metric === undefined) throw new Error(`no metric ${name}`);
  return (await metric.get()).values as Sample[];
}

async function value(metrics: Metrics, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const all = await samples(metrics, name);
  return all.find(
    (s) => Object.keys(labels).length === Object.keys(s.labels).length && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  )?.value;
}

describe('declaration', () => {
  it('exposes every declared metric name in the text output', async () => {
    const metrics = createMetrics({ collectDefault: false });
    const text = await metrics.render();
    for (const name of METRIC_NAMES) expect(text).toContain(`# TYPE ${name} `);
    expect(metrics.contentType).toBe('text/plain; version=0.0.4; charset=utf-8');
  });

  it('uses its own registry, not the global one, and unprefixed default process metrics', async () => {
    const metrics = createMetrics();
    expect(metrics.registry).not.toBe(globalRegistry);
    expect(globalRegistry.getSingleMetric('meshlimit_decisions_total')).toBeUndefined();
    const text = await metrics.render();
    expect(text).toContain('# TYPE process_cpu_user_seconds_total counter');
    expect(text).toContain('# TYPE nodejs_eventloop_lag_seconds gauge');
  });

  it('two instances do not share state', async () => {
    const a = createMetrics({ collectDefault: false });
    const b = createMetrics({ collectDefault: false });
    a.countRequest('ok');
    expect(await value(a, 'meshlimit_requests_total', { outcome: 'ok' })).toBe(1);
    expect(await value(b, 'meshlimit_requests_total', { outcome: 'ok' })).toBe(0);
  });

  it('starts fixed-label series at zero', async () => {
    const metrics = createMetrics({ collectDefault: false });
    expect(await samples(metrics, 'meshlimit_requests_total')).toEqual(
      ['ok', 'over_limit', 'invalid_argument', 'unavailable', 'deadline_exceeded', 'cancelled', 'internal'].map((code) => ({
        labels: { outcome: code },
        value: 0,
      })),
    );
    expect(await samples(metrics, 'meshlimit_backend_errors_total')).toEqual([
      { labels: { outcome: 'transient' }, value: 0 },
      { labels: { outcome: 'permanent' }, value: 0 },
      { labels: { outcome: 'circuit_open' }, value: 0 },
      { labels: { outcome: 'overloaded' }, value: 0 },
      { labels: { outcome: 'refund_failed' }, value: 0 },
    ]);
    expect(await samples(metrics, 'meshlimit_degraded_answers_total')).toEqual([
      { labels: { outcome: 'circuit_open' }, value: 0 },
      { labels: { outcome: 'backend_error' }, value: 0 },
      { labels: { outcome: 'local_fallback' }, value: 0 },
      { labels: { outcome: 'overloaded' }, value: 0 },
    ]);
    expect(await samples(metrics, 'meshlimit_config_reloads_total')).toEqual([
      { labels: { outcome: 'success' }, value: 0 },
      { labels: { outcome: 'failure' }, value: 0 },
    ]);
    expect(await samples(metrics, 'meshlimit_decisions_total')).toEqual([]);
    expect(await samples(metrics, 'meshlimit_grpc_transport_actions_total')).toEqual(
      ['connection_refused', 'stream_refused', 'stream_timeout', 'too_many_pings', 'too_many_resets', 'san_refused'].map((action) => ({
        labels: { action },
        value: 0,
      })),
    );
    expect(await samples(metrics, 'meshlimit_grpc_tls_reloads_total')).toEqual([
      { labels: { outcome: 'applied' }, value: 0 },
      { labels: { outcome: 'rejected' }, value: 0 },
    ]);
  });
});

describe('decisions', () => {
  it('counts by configured domain, rule key and result', async () => {
    const metrics = createMetrics({ collectDefault: false });
    metrics.configReload(true, { rules: 2, domains: ['edge', 'api'] });
    metrics.recordDecision('edge', 'edge.remote_address', 'ok');
    metrics.recordDecision('edge', 'edge.remote_address', 'ok');
    metrics.recordDecision('edge', 'edge.remote_address', 'over_limit');
    metrics.recordDecision('api', 'api.path_/login', 'shadow_over_limit');
    metrics.recordDecision('api', undefined, 'no_rule');
    expect(await samples(metrics, 'meshlimit_decisions_total')).toEqual([
      { labels: { domain: 'edge', rule: 'edge.remote_address', outcome: 'ok' }, value: 2 },
      { labels: { domain: 'edge', rule: 'edge.remote_address', outcome: 'over_limit' }, value: 1 },
      { labels: { domain: 'api', rule: 'api.path_/login', outcome: 'shadow_over_limit' }, value: 1 },
      { labels: { domain: 'api', rule: '_none_', outcome: 'no_rule' }, value: 1 },
    ]);
  });

  it('labels a domain missing from the config _unknown_, whatever the caller sends', async () => {
    const metrics = createMetrics({ collectDefault: false });
    metrics.configReload(true, { rules: 1, domains: ['edge'] });
    metrics.recordDecision('attacker-chosen-1', undefined, 'no_rule');
    metrics.recordDecision('attacker-chosen-2', 'some.rule', 'no_rule');
    expect(await samples(metrics, 'meshlimit_decisions_total')).toEqual([
      { labels: { domain: '_unknown_', rule: '_none_', outcome: 'no_rule' }, value: 2 },
    ]);
  });

  it('treats every domain as unknown before the first config load', async () => {
    const metrics = createMetrics({ collectDefault: false });
    metrics.recordDecision('edge', 'edge.x', 'error');
    expect(await samples(metrics, 'meshlimit_decisions_total')).toEqual([
      { labels: { domain: '_unknown_', rule: '_none_', outcome: 'error' }, value: 1 },
    ]);
  });

  it('follows the domain set of the latest successful reload only', async () => {
    const metrics = createMetrics({ collectDefault: false });
    metrics.configReload(true, { rules: 1, domains: ['old'] });
    metrics.configReload(true, { rules: 1, domains: ['new'] });
    metrics.configReload(false);
    metrics.recordDecision('old', 'old.k', 'ok');
    metrics.recordDecision('new', 'new.k', 'ok');
    expect(await samples(metrics, 'meshlimit_decisions_total')).toEqual([
      { labels: { domain: '_unknown_', rule: '_none_', outcome: 'ok' }, value: 1 },
      { labels: { domain: 'new', rule: 'new.k', outcome: 'ok' }, value: 1 },
    ]);
  });

  it(`folds rules beyond ${MAX_DECISION_RULES} per domain into _other_`, async () => {
    const metrics = createMetrics({ collectDefault: false });
    metrics.configReload(true, { rules: MAX_DECISION_RULES + 5, domains: ['d'] });
    for (let i = 0; i < MAX_DECISION_RULES + 5; i++) metrics.recordDecision('d', `d.k_${i}`, 'ok');
    metrics.recordDecision('d', 'd.k_0', 'ok');
    const all = await samples(metrics, 'meshlimit_decisions_total');
    expect(all).toHaveLength(MAX_DECISION_RULES + 1);
    expect(all.find((s) => s.labels.rule === 'd.k_0')?.value).toBe(2);
    expect(all.find((s) => s.labels.rule === `d.k_${MAX_DECISION_RULES - 1}`)?.value).toBe(1);
    expect(all.find((s) => s.labels.rule === `d.k_${MAX_DECISION_RULES}`)).toBeUndefined();
    expect(all.find((s) => s.labels.rule === '_other_')).toEqual({ labels: { domain: 'd', rule: '_other_', outcome: 'ok' }, value: 5 });
  });
});

describe('requests', () => {
  it('observes latency into the declared buckets by result', async () => {
    const metrics = createMetrics({ collectDefault: false });
    metrics.observeRequest(0.00005, 'ok');
    metrics.observeRequest(0.003, 'ok');
    metrics.observeRequest(2, 'error');
    const all = await samples(metrics, 'meshlimit_request_duration_seconds');
    const bucket = (result: string, le: number | string) =>
      all.find((s) => s.metricName === 'meshlimit_request_duration_seconds_bucket' && s.labels.outcome === result && s.labels.le === le)
        ?.value;
    expect(bucket('ok', 0.0001)).toBe(1);
    expect(bucket('ok', 0.0025)).toBe(1);
    expect(bucket('ok', 0.005)).toBe(2);
    expect(bucket('ok', '+Inf')).toBe(2);
    expect(bucket('error', 1)).toBe(0);
    expect(bucket('error', '+Inf')).toBe(1);
    expect(bucket('over_limit', '+Inf')).toBe(0);
    const les = all
      .filter((s) => s.metricName === 'meshlimit_request_duration_seconds_bucket' && s.labels.outcome === 'ok')
      .map((s) => s.labels.le);
    expect(les).toEqual([...DURATION_BUCKETS, '+Inf']);
  });

  it('counts requests by code', async () => {
    const metrics = createMetrics({ collectDefault: false });
    metrics.countRequest('over_limit');
    metrics.countRequest('unavailable');
    metrics.countRequest('unavailable');
    expect(await value(metrics, 'meshlimit_requests_total', { outcome: 'over_limit' })).toBe(1);
    expect(await value(metrics, 'meshlimit_requests_total', { outcome: 'unavailable' })).toBe(2);
    expect(await value(metrics, 'meshlimit_requests_total', { outcome: 'ok' })).toBe(0);
  });
});

describe('config reloads', () => {
  it('tracks success, failure, rule count and the time of the config in use', async () => {
    let clock = 1_714_564_800_000;
    const metrics = createMetrics({ collectDefault: false, now: () => clock });
    metrics.configReload(true, { rules: 7, domains: ['a'] });
    expect(await value(metrics, 'meshlimit_config_reloads_total', { outcome: 'success' })).toBe(1);
    expect(await value(metrics, 'meshlimit_config_last_reload_success')).toBe(1);
    expect(await value(metrics, 'meshlimit_config_last_reload_timestamp_seconds')).toBe(1_714_564_800);
    expect(await value(metrics, 'meshlimit_config_rules')).toBe(7);

    clock += 30_500;
    metrics.configReload(false);
    expect(await value(metrics, 'meshlimit_config_reloads_total', { outcome: 'failure' })).toBe(1);
    expect(await value(metrics, 'meshlimit_config_last_reload_success')).toBe(0);
    // A failed reload keeps the old config: its rule count and load time stay.
    expect(await value(metrics, 'meshlimit_config_last_reload_timestamp_seconds')).toBe(1_714_564_800);
    expect(await value(metrics, 'meshlimit_config_rules')).toBe(7);

    metrics.configReload(true, { rules: 3, domains: ['a'] });
    expect(await value(metrics, 'meshlimit_config_reloads_total', { outcome: 'success' })).toBe(2);
    expect(await value(metrics, 'meshlimit_config_last_reload_success')).toBe(1);
    expect(await value(metrics, 'meshlimit_config_last_reload_timestamp_seconds')).toBe(1_714_564_830.5);
    expect(await value(metrics, 'meshlimit_config_rules')).toBe(3);
  });
});

describe('backend', () => {
  it('counts backend errors by kind and degraded answers by reason', async () => {
    const metrics = createMetrics({ collectDefault: false });
    metrics.backendError('transient');
    metrics.backendError('transient');
    metrics.backendError('permanent');
    metrics.degradedAnswer('circuit_open');
    expect(await value(metrics, 'meshlimit_backend_errors_total', { outcome: 'transient' })).toBe(2);
    expect(await value(metrics, 'meshlimit_backend_errors_total', { outcome: 'permanent' })).toBe(1);
    expect(await value(metrics, 'meshlimit_degraded_answers_total', { outcome: 'circuit_open' })).toBe(1);
    expect(await value(metrics, 'meshlimit_degraded_answers_total', { outcome: 'backend_error' })).toBe(0);
  });
});

describe('breaker and redis metrics', () => {
  it('tracks the breaker state as one-hot, counts transitions, and observes Redis round trips', async () => {
    const metrics = createMetrics({ collectDefault: false });
    metrics.setBreakerState('closed');
    metrics.breakerTransition('closed', 'open');
    metrics.breakerTransition('open', 'half_open');
    const text = await metrics.render();
    expect(text).toContain('meshlimit_breaker_state{state="half_open"} 1');
    expect(text).toContain('meshlimit_breaker_state{state="open"} 0');
    expect(text).toContain('meshlimit_breaker_state{state="closed"} 0');
    expect(text).toContain('meshlimit_breaker_transitions_total{from="closed",to="open"} 1');
    metrics.observeRedis(0.0004, true);
    metrics.observeRedis(0.05, false);
    const after = await metrics.render();
    expect(after).toContain('meshlimit_redis_command_duration_seconds_count{outcome="ok"} 1');
    expect(after).toContain('meshlimit_redis_command_duration_seconds_count{outcome="error"} 1');
  });
});
