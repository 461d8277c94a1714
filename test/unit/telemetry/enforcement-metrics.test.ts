import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { compileConfig } from '../../../src/config/compile.js';
import type { DescriptorStatus, RequestDescriptor } from '../../../src/limiter/types.js';
import {
  LOG_EVERY_MS,
  MAX_LABEL_CHARS,
  MAX_UNKNOWN_DOMAINS,
  MAX_UNMATCHED_SHAPES,
  enforcementMetrics,
} from '../../../src/telemetry/enforcement-metrics.js';
import type { Logger } from '../../../src/telemetry/logger.js';

const OK: DescriptorStatus = { code: 'OK', remaining: 0, resetMs: 0, shadowed: false, unlimited: false };
const desc = (...pairs: [string, string][]): RequestDescriptor => ({ entries: pairs.map(([key, value]) => ({ key, value })) });
const CONFIG =
  'domain: edge\ndescriptors:\n  - key: plan\n    rate_limit: { unit: minute, requests_per_unit: 1 }\n  - key: path\n    value: /x\n    rate_limit: { unlimited: true }\n';

function setup() {
  const registry = new Registry();
  let t = 1_000_000;
  const lines: { ctx: Record<string, unknown>; msg: string }[] = [];
  const logger = { warn: (ctx: Record<string, unknown>, msg: string) => lines.push({ ctx, msg }) } as unknown as Logger;
  const m = enforcementMetrics(registry, () => t);
  const snapshot = compileConfig([{ path: 'edge.yaml', text: CONFIG }]);
  m.watch(() => snapshot, logger);
  return { registry, m, lines, advance: (ms: number) => (t += ms), text: () => registry.metrics() };
}

describe('enforcement metrics', () => {
  it('counts unknown domains by name and unmatched descriptors by key shape, never values', async () => {
    const { m, text } = setup();
    m.observe('edg', OK, false, desc(['plan', 'secret-value']));
    m.observe('edge', OK, true, desc(['company_id', 'acme-secret'], ['path', '/private']));
    m.observe('edge', OK, true, desc());
    const out = await text();
    expect(out).toContain('meshlimit_unknown_domain_requests_total{domain="edg"} 1');
    expect(out).toContain('meshlimit_unmatched_descriptors_total{domain="edge",shape="company_id.path"} 1');
    expect(out).toContain('meshlimit_unmatched_descriptors_total{domain="edge",shape="_empty_"} 1');
    expect(out).not.toMatch(/secret|private/);
  });

  it('caps each label set and folds the rest into _other_', async () => {
    const { m, text } = setup();
    for (let i = 0; i < MAX_UNKNOWN_DOMAINS + 10; i++) m.observe(`d${i}`, OK, false, desc(['k', 'v']));
    for (let i = 0; i < MAX_UNMATCHED_SHAPES + 10; i++) m.observe('edge', OK, true, desc([`k${i}`, 'v']));
    m.observe('edge', OK, true, desc(['x'.repeat(MAX_LABEL_CHARS + 1), 'v']));
    const out = await text();
    expect(out.match(/^meshlimit_unknown_domain_requests_total\{/gm)).toHaveLength(MAX_UNKNOWN_DOMAINS + 1);
    expect(out).toContain('meshlimit_unknown_domain_requests_total{domain="_other_"} 10');
    expect(out.match(/^meshlimit_unmatched_descriptors_total\{/gm)).toHaveLength(MAX_UNMATCHED_SHAPES + 1);
    expect(out).toContain('meshlimit_unmatched_descriptors_total{domain="edge",shape="_other_"} 11');
  });

  it('logs a shape at most once a minute, counting the descriptors between lines', () => {
    const { m, lines, advance } = setup();
    for (let i = 0; i < 5; i++) m.observe('edge', OK, true, desc(['tenant', `t${i}`]));
    expect(lines).toEqual([{ ctx: { domain: 'edge', shape: 'tenant', descriptors: 1 }, msg: expect.stringContaining('matched no rule') }]);
    advance(LOG_EVERY_MS);
    m.observe('edge', OK, true, desc(['tenant', 'x']));
    m.observe('edg', OK, false, desc(['tenant', 'x']));
    expect(lines.slice(1).map((l) => l.ctx)).toEqual([
      { domain: 'edge', shape: 'tenant', descriptors: 5 },
      { domain: 'edg', descriptors: 1 },
    ]);
  });

  it('reports every configured rule idle since it was loaded, and active once matched', async () => {
    const { m, text, advance } = setup();
    expect(await text()).toContain('meshlimit_rule_idle_seconds{domain="edge",rule="edge.plan"} 0');
    advance(90_000);
    m.observe('edge', { ...OK, ruleKey: 'edge.path_/x', unlimited: true }, true, desc(['path', '/x']));
    const out = await text();
    expect(out).toContain('meshlimit_rule_idle_seconds{domain="edge",rule="edge.plan"} 90');
    expect(out).toContain('meshlimit_rule_idle_seconds{domain="edge",rule="edge.path_/x"} 0');
    advance(30_000);
    expect(await text()).toContain('meshlimit_rule_idle_seconds{domain="edge",rule="edge.path_/x"} 30');
  });
});
