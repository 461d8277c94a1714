import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfigDir } from '../../../src/config/loader.js';
import { checkConfigDir } from '../../../src/config/check.js';
import type { DescriptorEntry } from '../../../src/limiter/types.js';
import { fixture } from './helpers.js';

/**
 * envoyproxy/ratelimit compatibility: the README's configuration examples (copied unchanged
 * into test/fixtures/config/upstream_readme/) and a file exercising the other keys upstream
 * accepts load without modification and match the way the README describes.
 */
const e = (...pairs: [string, string][]): DescriptorEntry[] => pairs.map(([key, value]) => ({ key, value }));
const DIR = fixture('upstream_readme');

describe('envoyproxy/ratelimit README examples load unchanged', async () => {
  const s = await loadConfigDir(DIR);
  const limit = (domain: string, entries: DescriptorEntry[]): [number, string] | undefined => {
    const l = s.findRule(domain, entries)?.limits[0];
    return l === undefined ? undefined : [l.requestsPerUnit, l.unit];
  };

  it('loads every file, with no warnings', async () => {
    const names = (await readdir(DIR)).filter((n) => n.endsWith('.yaml')).sort();
    expect(s.files).toEqual(names.map((n) => join(DIR, n)));
    expect(s.domainNames).toEqual([
      'edge_proxy_per_ip',
      'example4',
      'example6',
      'example7',
      'example8',
      'example9',
      'internal',
      'messaging',
      'mongo_cps',
      'test-domain',
    ]);
    expect(s.warnings).toEqual([]);
  });

  it('example 1: key/value limits', () => {
    expect(limit('mongo_cps', e(['database', 'users']))).toEqual([500, 'second']);
    expect(limit('mongo_cps', e(['database', 'default']))).toEqual([500, 'second']);
    expect(limit('mongo_cps', e(['database', 'other']))).toBeUndefined();
  });

  it('example 2: nested descriptors and a per-number limit', () => {
    expect(limit('messaging', e(['message_type', 'marketing'], ['to_number', '2061111111']))).toEqual([5, 'day']);
    expect(limit('messaging', e(['to_number', '2061111111']))).toEqual([100, 'day']);
    expect(limit('messaging', e(['message_type', 'marketing']))).toBeUndefined();
  });

  it('example 3: the most specific match wins; requests_per_unit 0 blocks', () => {
    expect(limit('edge_proxy_per_ip', e(['remote_address', '50.0.0.1']))).toEqual([10, 'second']);
    expect(limit('edge_proxy_per_ip', e(['remote_address', '50.0.0.5']))).toEqual([0, 'second']);
  });

  it('example 4: a request matches only at the same depth', () => {
    expect(limit('example4', e(['key', 'value'], ['subkey', 'subvalue']))).toEqual([300, 'second']);
    expect(limit('example4', e(['key', 'value']))).toBeUndefined();
  });

  it('example 5: unlimited', () => {
    const r = s.findRule('internal', e(['ldap', 'x']))!;
    expect(r.unlimited).toBe(true);
    expect(r.limits).toEqual([]);
    expect(limit('internal', e(['azure', 'x']))).toEqual([100, 'minute']);
  });

  it('example 6: shadow_mode per rule', () => {
    expect(s.findRule('example6', e(['service', 'auth-service'], ['user', 'user-a']))!.shadowMode).toBe(true);
    expect(s.findRule('example6', e(['service', 'auth-service'], ['user', 'user-b']))!.shadowMode).toBe(false);
  });

  it('example 7: names and replaces', () => {
    expect(s.findRule('example7', e(['key_1', 'value_1'], ['user', 'bkthomps']))!.limits[0]!.name).toBe('specific_limit');
    expect(s.findRule('example7', e(['key_2', 'value_2'], ['user', 'bkthomps']))!.limits[0]!.replaces).toEqual(['specific_limit']);
  });

  it('example 8: detailed_metric', () => {
    expect(s.findRule('example8', e(['key1', 'unspecified_value']))).toMatchObject({ detailedMetric: true, ruleKey: 'example8.key1' });
    expect(limit('example8', e(['key1', 'value1']))).toEqual([20, 'minute']);
  });

  it('example 9: wildcard values', () => {
    expect(limit('example9', e(['key1', 'value_1']))).toEqual([20, 'minute']);
    expect(limit('example9', e(['key1', 'value_2']))).toEqual([20, 'minute']);
    expect(limit('example9', e(['key1', 'other']))).toBeUndefined();
  });

  it('other upstream keys: upper-case units, aliases, YAML 1.1 booleans, week, share_threshold, value_to_metric, quota_mode, unit_multiplier', () => {
    expect(limit('test-domain', e(['key1', 'value1'], ['subkey1', 'x']))).toEqual([5, 'second']);
    expect(limit('test-domain', e(['key1', 'value1'], ['subkey1', 'subvalue1']))).toEqual([10, 'second']);
    expect(s.findRule('test-domain', e(['key2', 'value3']))).toBeUndefined();
    expect(limit('test-domain', e(['port', '8080']))).toEqual([20, 'minute']);
    expect(s.findRule('test-domain', e(['key6', 'x']))).toMatchObject({ unlimited: true, names: ['key6_unlimited'] });
    expect(s.findRule('test-domain', e(['key7', 'x']))).toMatchObject({ detailedMetric: true });
    expect(limit('test-domain', e(['key7', 'x']))).toEqual([70, 'week']);
    expect(s.findRule('test-domain', e(['files', 'files/a']))!.sharedValues).toEqual(['files/*']);
    expect(s.findRule('test-domain', e(['route', 'api/v1'], ['method', 'GET']))).toMatchObject({
      sharedValues: ['api/*', undefined],
      ruleKey: 'test-domain.route_api/*.method',
    });
    expect(limit('test-domain', e(['midpath', '/api/x/v1']))).toEqual([100, 'minute']);
    expect(s.findRule('test-domain', e(['soft', 'x']))).toMatchObject({ quotaMode: true, shadowMode: false });
    expect(s.findRule('test-domain', e(['multi', 'x']))!.limits[0]).toMatchObject({ unitMultiplier: 5, windowMs: 300_000 });
  });

  it('the example files are byte-for-byte the README text (not edited to fit)', async () => {
    const ex3 = await readFile(fixture('upstream_readme', 'example3.yaml'), 'utf8');
    expect(ex3).toContain('  # Black list IP\n  - key: remote_address\n    value: 50.0.0.5\n');
  });
});

describe('the example config directory (config/)', () => {
  it('passes the offline check', async () => {
    const dir = new URL('../../../config/', import.meta.url).pathname;
    const result = await checkConfigDir(dir);
    expect(result.ok).toBe(true);
    expect(result.output.split('\n').slice(0, 2)).toEqual([
      expect.stringMatching(/^config OK: 3 files, 3 domains, 12 rules$/),
      expect.stringMatching(/^version [0-9a-f]{64}$/),
    ]);
  });
});

describe('an empty value (upstream: the same as no value)', () => {
  it('loads with a warning and matches any value of the key, like a bare key', async () => {
    const s = await loadConfigDir(fixture('compat_empty_value'));
    expect(s.warnings.map((w) => w.message)).toEqual([
      `${join(fixture('compat_empty_value'), 'config.yaml')}: descriptors[0].value: is empty (line 4); treated as absent, so the rule matches any value of 'key1'`,
    ]);
    expect(s.findRule('test-domain', e(['key1', 'anything']))?.limits[0]?.requestsPerUnit).toBe(5);
  });
});
