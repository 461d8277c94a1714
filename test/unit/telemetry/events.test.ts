import { describe, expect, it } from 'vitest';
import type { DescriptorStatus, RequestDescriptor } from '../../../src/limiter/types.js';
import { decisionObserver, detailedRuleLabel, MAX_DETAILED_LABEL_CHARS, xdsConnectionLogger } from '../../../src/telemetry/events.js';
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
    observer.onStatus('edge', STATUS, true, descriptor(['path', '/x']));
    observer.onStatus('edge', STATUS, true, descriptor(['path', `/${'y'.repeat(10_000)}`]));
    observer.onStatus('edge', { ...STATUS, detailedMetric: false }, true, descriptor(['path', '/z']));
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
