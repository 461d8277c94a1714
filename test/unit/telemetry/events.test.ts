import { describe, expect, it } from 'vitest';
import type { DescriptorStatus, RequestDescriptor } from '../../../src/limiter/types.js';
import {
  decisionObserver,
  detailedRuleLabel,
  MAX_DETAILED_LABEL_CHARS,
  nearLimitHits,
  xdsConnectionLogger,
} from '../../../src/telemetry/events.js';
import { createLogger } from '../../../src/telemetry/logger.js';
import { createMetrics } from '../../../src/telemetry/metrics.js';

const descriptor = (...entries: [string, string][]): RequestDescriptor => ({
  entries: entries.map(([key, value]) => ({ key, value })),
  limitOverride: undefined,
  hitsAddend: undefined,
});
const STATUS: DescriptorStatus = {
  code: 'OK',
  remaining: 1,
  resetMs: 1000,
  shadowed: false,
  unlimited: false,
  ruleKey: 'edge.path',
  detailedMetric: true,
};

describe('detailed_metric rule labels', () => {
  it('are `domain.key_value...` like upstream stats keys while short', () => {
    expect(detailedRuleLabel('edge', 'edge.company_id.path', descriptor(['company_id', 'acme'], ['path', '/v1/orders']))).toBe(
      'edge.company_id_acme.path_/v1/orders',
    );
    const exact = `/${'p'.repeat(MAX_DETAILED_LABEL_CHARS - 'edge.path_/'.length)}`;
    expect(detailedRuleLabel('edge', 'edge.path', descriptor(['path', exact]))).toBe(`edge.path_${exact}`);
  });

  it('are the rule key and a digest when longer: bounded, still one per value', () => {
    const long = (c: string) => descriptor(['path', `/${c.repeat(60_000)}`]);
    const a = detailedRuleLabel('edge', 'edge.path', long('a'));
    const b = detailedRuleLabel('edge', 'edge.path', long('b'));
    expect(a).toMatch(/^edge\.path\.sha256_[A-Za-z0-9_-]{22}$/);
    expect(b).toMatch(/^edge\.path\.sha256_[A-Za-z0-9_-]{22}$/);
    expect(a).not.toBe(b);
    expect(detailedRuleLabel('edge', 'edge.path', long('a'))).toBe(a);
    const justOver = `/${'p'.repeat(MAX_DETAILED_LABEL_CHARS - 'edge.path_/'.length + 1)}`;
    expect(detailedRuleLabel('edge', 'edge.path', descriptor(['path', justOver]))).toMatch(/^edge\.path\.sha256_/);
  });

  it('reach the decisions metric through the observer, only for rules that opted in', async () => {
    const metrics = createMetrics({ collectDefault: false });
    metrics.configReload(true, { rules: 1, domains: ['edge'] });
    const observer = decisionObserver(metrics);
    observer.onStatus('edge', STATUS, true, descriptor(['path', '/x']), 1);
    observer.onStatus('edge', STATUS, true, descriptor(['path', `/${'y'.repeat(10_000)}`]), 1);
    observer.onStatus('edge', { ...STATUS, detailedMetric: false }, true, descriptor(['path', '/z']), 1);
    const rules = (await metrics.registry.getSingleMetric('meshlimit_decisions_total')!.get()).values
      .filter((v) => v.value > 0)
      .map((v) => String(v.labels['rule']));
    expect(rules).toHaveLength(3);
    expect(rules).toContain('edge.path_/x');
    expect(rules).toContain('edge.path'); // no opt-in: the config rule key
    expect(rules.filter((r) => /^edge\.path\.sha256_[A-Za-z0-9_-]{22}$/.test(r))).toHaveLength(1);
    expect(Math.max(...rules.map((r) => r.length))).toBeLessThanOrEqual(MAX_DETAILED_LABEL_CHARS);
  });
});

describe('NEAR_LIMIT_RATIO: hits admitted past the ratio of their limit, counted as upstream counts near_limit', () => {
  const LIMIT = { requestsPerUnit: 10, unit: 'minute' as const, unitMultiplier: 1, name: undefined };
  const at = (remaining: number, extra: Partial<DescriptorStatus> = {}): DescriptorStatus => ({
    ...STATUS,
    limit: LIMIT,
    remaining,
    ...extra,
  });

  it('counts only the hits past floor(limit x ratio), none at or below it', () => {
    // limit 10, ratio 0.8: threshold 8 (after float32 arithmetic, as upstream)
    expect(nearLimitHits(at(3), 1, 0.8)).toBe(0); // count 7
    expect(nearLimitHits(at(2), 1, 0.8)).toBe(0); // count 8: not past
    expect(nearLimitHits(at(1), 1, 0.8)).toBe(1); // 8 -> 9
    expect(nearLimitHits(at(0), 3, 0.8)).toBe(2); // 7 -> 10: two of the three hits
    expect(nearLimitHits(at(0), 2, 0.8)).toBe(2); // 8 -> 10
    expect(nearLimitHits(at(0), 0, 0.8)).toBe(0); // a check without consuming
    expect(nearLimitHits(at(5), 1, 0.4)).toBe(1); // threshold 4, 4 -> 5
  });

  it('nothing for a status without a limit, unlimited or shadowed', () => {
    expect(nearLimitHits({ ...STATUS, remaining: 0 }, 1, 0.8)).toBe(0);
    expect(nearLimitHits(at(0, { unlimited: true }), 1, 0.8)).toBe(0);
    expect(nearLimitHits(at(0, { shadowed: true }), 1, 0.8)).toBe(0);
  });

  it('reaches meshlimit_near_limit_hits_total through the observer, for OK statuses of configured domains', async () => {
    const metrics = createMetrics({ collectDefault: false });
    metrics.configReload(true, { rules: 1, domains: ['edge'] });
    const observer = decisionObserver(metrics, 0.5);
    const d = descriptor(['path', '/x']);
    const plain = { detailedMetric: false };
    observer.onStatus('edge', at(6, plain), true, d, 1); // count 4: not past 5
    observer.onStatus('edge', at(3, plain), true, d, 2); // 5 -> 7
    observer.onStatus('edge', at(0, { ...plain, code: 'OVER_LIMIT' }), true, d, 1);
    observer.onStatus('other', at(0, plain), false, d, 1);
    const values = (await metrics.registry.getSingleMetric('meshlimit_near_limit_hits_total')!.get()).values;
    expect(values.map((v) => [v.labels['domain'], v.labels['rule'], v.value])).toEqual([['edge', 'edge.path', 2]]);
  });
});

describe('xDS connection transitions', () => {
  it('one line per transition, a lost server a warning that says the config stays', () => {
    const lines: { level: number; msg: string; target: string; error?: string; retryInMs?: number }[] = [];
    const logger = createLogger({ level: 'info', format: 'json', destination: { write: (l) => void lines.push(JSON.parse(l)) } });
    const log = xdsConnectionLogger(logger);
    const target = 'envoy-gateway:18001';
    log({ state: 'connecting', previous: undefined, target });
    log({ state: 'disconnected', previous: 'connecting', target, error: 'UNAVAILABLE: refused', retryInMs: 3000 });
    log({ state: 'connected', previous: 'disconnected', target });
    log({ state: 'disconnected', previous: 'connected', target, error: 'UNAVAILABLE: reset', retryInMs: 10_000 });
    expect(lines.map((l) => [l.level, l.msg, l.target, l.error, l.retryInMs])).toEqual([
      [30, 'connecting to the xDS management server', target, undefined, undefined],
      [40, 'cannot reach the xDS management server; retrying', target, 'UNAVAILABLE: refused', 3000],
      [30, 'connected to the xDS management server', target, undefined, undefined],
      [40, 'lost the xDS management server; keeping the current config and reconnecting', target, 'UNAVAILABLE: reset', 10_000],
    ]);
  });
});
