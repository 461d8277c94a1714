import { describe, expect, it } from 'vitest';
import { MemoryOverrideStore } from '../../../src/admin/override-store.js';
import { InvalidRequestError, NotFoundError } from '../../../src/errors.js';
import type { DescriptorStatus } from '../../../src/limiter/types.js';
import { ConsoleStats, MAX_LIMITED, MAX_RULES } from '../../../src/telemetry/console-stats.js';

/** The admin side's bounds: overrides held, audit entries kept, the console's traffic tables. */
const LIMIT = { algorithm: 'fixed_window', unit: 'minute', unitMultiplier: 1, requestsPerUnit: 5, burst: 5 } as const;
const entries = (v: string) => [{ key: 'company_id', value: v }];

describe('MemoryOverrideStore bounds', () => {
  it('refuses one override more than OVERRIDES_MAX (a change of a held one still works) and keeps OVERRIDES_AUDIT_MAX entries', async () => {
    const store = new MemoryOverrideStore({ max: 2, auditMax: 3 });
    await store.set({ domain: 'edge', entries: entries('a'), limit: LIMIT }, 'me');
    await store.set({ domain: 'edge', entries: entries('b'), limit: LIMIT }, 'me');
    await expect(store.set({ domain: 'edge', entries: entries('c'), limit: LIMIT }, 'me')).rejects.toThrow(InvalidRequestError);
    await expect(store.set({ domain: 'edge', entries: entries('c'), limit: LIMIT }, 'me')).rejects.toThrow(/OVERRIDES_MAX/);
    await store.set({ domain: 'edge', entries: entries('a'), limit: { ...LIMIT, requestsPerUnit: 9 } }, 'me');
    expect(store.current().size).toBe(2);
    expect(store.current().lookup('edge', entries('a'))?.requestsPerUnit).toBe(9);
    const audit = await store.audit();
    expect(audit).toHaveLength(3);
    expect(audit[0]).toMatchObject({ action: 'set', old: { requestsPerUnit: 5 }, new: { requestsPerUnit: 9 } });
    await expect(store.remove('edge', entries('zzz'), 'me')).rejects.toThrow(NotFoundError);
  });
});

const over = (detailedMetric: boolean): DescriptorStatus => ({
  code: 'OVER_LIMIT',
  remaining: 0,
  resetMs: 1000,
  shadowed: false,
  unlimited: false,
  ruleKey: 'edge.company_id',
  detailedMetric,
});

describe('ConsoleStats', () => {
  it('shows a denied descriptor by rule, shape and hashed id; its values only for a detailed_metric rule', () => {
    const stats = new ConsoleStats();
    stats.onStatus('edge', over(false), true, { entries: entries('secret-co') });
    stats.onStatus('edge', over(true), true, { entries: entries('shown-co') });
    const [a, b] = stats.topLimited(10);
    const hidden = [a, b].find((x) => x?.values === undefined)!;
    expect(JSON.stringify(hidden)).not.toContain('secret-co');
    expect(hidden).toMatchObject({ ruleKey: 'edge.company_id', shape: 'company_id', denials: 1 });
    expect(hidden.id).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect([a, b].find((x) => x?.values !== undefined)?.values).toEqual(['shown-co']);
    expect(stats.ruleTraffic()).toEqual([{ domain: 'edge', ruleKey: 'edge.company_id', decisions: 2, overLimit: 2, shadowOverLimit: 0 }]);
  });

  it(`holds at most ${MAX_LIMITED} limited descriptors, keeping the most denied, and folds rules past ${MAX_RULES} into _other_`, () => {
    const stats = new ConsoleStats();
    for (let i = 0; i < 5; i++) stats.onStatus('edge', over(false), true, { entries: entries('hot') });
    for (let i = 0; i < 3 * MAX_LIMITED; i++) stats.onStatus('edge', over(false), true, { entries: entries(`v${i}`) });
    const top = stats.topLimited(Number.MAX_SAFE_INTEGER);
    expect(top.length).toBeLessThanOrEqual(MAX_LIMITED);
    expect(top[0]).toMatchObject({ denials: 5 });
    for (let i = 0; i < MAX_RULES + 10; i++)
      stats.onStatus('edge', { ...over(false), code: 'OK', ruleKey: `r${i}` }, true, { entries: entries('x') });
    const rules = stats.ruleTraffic();
    expect(rules.length).toBe(MAX_RULES);
    // edge.company_id and MAX_RULES - 2 of the new rules have rows; the 12 after them share _other_.
    expect(rules.find((r) => r.ruleKey === '_other_')?.decisions).toBe(12);
  });
});
