import { describe, expect, it } from 'vitest';
import { compileConfig } from '../../../src/config/compile.js';
import { contentVersion } from '../../../src/config/version.js';
import { limitIdentity } from '../../../src/limiter/keys.js';
import type { DescriptorEntry } from '../../../src/limiter/types.js';
import { compileText, configErrorsOf } from './helpers.js';

const e = (...pairs: [string, string][]): DescriptorEntry[] => pairs.map(([key, value]) => ({ key, value }));

describe('compiled limits', () => {
  const s = compileText(`
domain: d
descriptors:
  - key: fw
    rate_limit: {unit: minute, requests_per_unit: 20, name: fw_limit}
  - key: tb
    rate_limit: {algorithm: token_bucket, unit: second, requests_per_unit: 100, burst: 250}
  - key: tbdefault
    rate_limit: {algorithm: token_bucket, unit: second, requests_per_unit: 100}
  - key: sw
    rate_limit: {algorithm: sliding_window, unit: hour, requests_per_unit: 7, unit_multiplier: 3}
  - key: multi
    rate_limits:
      - {unit: second, requests_per_unit: 10}
      - {unit: day, requests_per_unit: 1000}
      - {unit: day, requests_per_unit: 5000, algorithm: sliding_window}
  - key: upper
    rate_limit: {unit: DAY, requests_per_unit: 1}
`);

  it('fixed window (default algorithm)', () => {
    expect(s.findRule('d', e(['fw', 'x']))!.limits).toEqual([
      {
        name: 'fw_limit',
        algorithm: 'fixed_window',
        unit: 'minute',
        unitMultiplier: 1,
        requestsPerUnit: 20,
        burst: 20,
        windowMs: 60_000,
        identity: limitIdentity('fixed_window', 'minute', 1),
        replaces: [],
      },
    ]);
  });

  it('token bucket with explicit and default burst', () => {
    expect(s.findRule('d', e(['tb', 'x']))!.limits[0]).toMatchObject({
      algorithm: 'token_bucket',
      requestsPerUnit: 100,
      burst: 250,
      windowMs: 1000,
    });
    expect(s.findRule('d', e(['tbdefault', 'x']))!.limits[0]).toMatchObject({ burst: 100 });
  });

  it('sliding window with unit_multiplier: window = unit x multiplier', () => {
    expect(s.findRule('d', e(['sw', 'x']))!.limits[0]).toMatchObject({
      algorithm: 'sliding_window',
      unit: 'hour',
      unitMultiplier: 3,
      windowMs: 3 * 3600 * 1000,
      identity: limitIdentity('sliding_window', 'hour', 3),
    });
  });

  it('rate_limits: several limits on one descriptor, in order', () => {
    const limits = s.findRule('d', e(['multi', 'x']))!.limits;
    expect(limits.map((l) => [l.requestsPerUnit, l.unit, l.algorithm])).toEqual([
      [10, 'second', 'fixed_window'],
      [1000, 'day', 'fixed_window'],
      [5000, 'day', 'sliding_window'],
    ]);
    expect(new Set(limits.map((l) => l.identity)).size).toBe(3);
  });

  it('upper-case units are accepted (upstream upper-cases before the enum lookup)', () => {
    expect(s.findRule('d', e(['upper', 'x']))!.limits[0]!.unit).toBe('day');
  });

  it('counter identity leaves the threshold out', () => {
    const a = compileText('domain: d\ndescriptors:\n  - key: k\n    rate_limit: {unit: second, requests_per_unit: 1}\n');
    const b = compileText('domain: d\ndescriptors:\n  - key: k\n    rate_limit: {unit: second, requests_per_unit: 99}\n');
    expect(a.findRule('d', e(['k', 'v']))!.limits[0]!.identity).toBe(b.findRule('d', e(['k', 'v']))!.limits[0]!.identity);
  });
});

describe('YAML decoding mirrors yaml.v2 (YAML 1.1, scalar source text in string fields)', () => {
  const s = compileText(`
domain: 123
descriptors:
  - key: zip
    value: 010
    rate_limit: &std {unit: second, requests_per_unit: 0x0A}
  - key: flag
    value: yes
    shadow_mode: yes
    rate_limit: *std
  - key: ver
    value: 1.50
    rate_limit:
      <<: *std
      unit: minute
  - key: date
    value: 2001-12-14
    rate_limit: *std
`);

  it('numbers, booleans and timestamps in string fields keep their source text', () => {
    expect(s.domainNames).toEqual(['123']);
    expect(s.findRule('123', e(['zip', '010']))?.ruleKey).toBe('123.zip_010');
    expect(s.findRule('123', e(['flag', 'yes']))?.ruleKey).toBe('123.flag_yes');
    expect(s.findRule('123', e(['ver', '1.50']))?.ruleKey).toBe('123.ver_1.50');
    expect(s.findRule('123', e(['date', '2001-12-14']))?.ruleKey).toBe('123.date_2001-12-14');
  });

  it('YAML 1.1 booleans and hex integers in typed fields; anchors, aliases and merge keys', () => {
    expect(s.findRule('123', e(['flag', 'yes']))!.shadowMode).toBe(true);
    expect(s.findRule('123', e(['zip', '010']))!.limits[0]!.requestsPerUnit).toBe(10);
    expect(s.findRule('123', e(['ver', '1.50']))!.limits[0]).toMatchObject({ unit: 'minute', requestsPerUnit: 10 });
  });
});

describe('warnings for configs upstream accepts but that are probably mistakes', () => {
  it('missing requests_per_unit is 0 (every request over the limit), as upstream', () => {
    const s = compileText('domain: d\ndescriptors:\n  - key: k\n    rate_limit:\n      unit: second\n');
    expect(s.findRule('d', e(['k', 'v']))!.limits[0]!.requestsPerUnit).toBe(0);
    expect(s.warnings.map((w) => w.message)).toEqual([
      'test.yaml: descriptors[0].rate_limit.requests_per_unit: missing, so it is 0 and every request is over the limit (line 5)',
    ]);
  });

  it('unlimited with requests_per_unit, or with a unit upstream does not know', () => {
    const s = compileText(
      'domain: d\ndescriptors:\n  - key: k\n    rate_limit: {unlimited: true, unit: fortnight, requests_per_unit: 5}\n',
    );
    expect(s.findRule('d', e(['k', 'v']))!.unlimited).toBe(true);
    expect(s.warnings.map((w) => w.message)).toEqual([
      'test.yaml: descriptors[0].rate_limit.unit: ignored: unlimited limits have no unit (line 4)',
      'test.yaml: descriptors[0].rate_limit.requests_per_unit: ignored: the limit is unlimited (line 4)',
    ]);
  });

  it('only the first YAML document is used', () => {
    const s = compileText('domain: d\n---\ndomain: e\n');
    expect(s.domainNames).toEqual(['d']);
    expect(s.warnings.map((w) => w.message)).toEqual(['test.yaml: only the first YAML document is used; 1 more ignored']);
  });

  it('rate_limit: null means no limit (yaml.v2 nil pointer)', () => {
    const s = compileText('domain: d\ndescriptors:\n  - key: k\n    rate_limit:\n');
    expect(s.findRule('d', e(['k', 'v']))).toBeUndefined();
    expect(s.ruleCount).toBe(0);
  });
});

describe('snapshot', () => {
  const files = [
    { path: 'b.yaml', text: 'domain: b\ndescriptors:\n  - key: k\n    rate_limit: {unit: second, requests_per_unit: 1}\n' },
    { path: 'a.yaml', text: 'domain: a\ndescriptors:\n  - key: k\n    value: v\n    rate_limit: {unlimited: true}\n' },
  ];

  it('version is the sha256 of the sorted (path, text) pairs, independent of input order', () => {
    const s1 = compileConfig(files);
    const s2 = compileConfig([...files].reverse());
    expect(s1.version).toMatch(/^[0-9a-f]{64}$/);
    expect(s1.version).toBe(s2.version);
    expect(s1.version).toBe(contentVersion(files));
    const changed = compileConfig([files[0]!, { ...files[1]!, text: `${files[1]!.text}# comment\n` }]);
    expect(changed.version).not.toBe(s1.version);
    const renamed = compileConfig([files[0]!, { ...files[1]!, path: 'c.yaml' }]);
    expect(renamed.version).not.toBe(s1.version);
  });

  it('files and domains are sorted; loadedAt comes from the clock option', () => {
    const s = compileConfig(files, { now: () => 1_700_000_000_000 });
    expect(s.files).toEqual(['a.yaml', 'b.yaml']);
    expect(s.domainNames).toEqual(['a', 'b']);
    expect(s.loadedAt.toISOString()).toBe('2023-11-14T22:13:20.000Z');
    expect(s.ruleCount).toBe(2);
  });

  it('is deeply frozen', () => {
    const s = compileConfig(files, { now: () => 0 });
    expect(Object.isFrozen(s)).toBe(true);
    expect(Object.isFrozen(s.files)).toBe(true);
    expect(Object.isFrozen(s.domainNames)).toBe(true);
    const rule = s.findRule('b', e(['k', 'x']))!;
    expect(Object.isFrozen(rule)).toBe(true);
    expect(Object.isFrozen(rule.limits)).toBe(true);
    expect(Object.isFrozen(rule.limits[0])).toBe(true);
    expect(Object.isFrozen(rule.limits[0]!.replaces)).toBe(true);
    const dump = s.dump();
    expect(Object.isFrozen(dump)).toBe(true);
    expect(Object.isFrozen(dump.domains[0]!.descriptors[0])).toBe(true);
    expect(() => {
      (s.loadedAt as Date).setTime(5);
    }).not.toThrow();
    expect(s.loadedAt.getTime()).toBe(0);
  });

  it('dump() is a plain JSON view with our fields', () => {
    const s = compileConfig(files, { now: () => 0 });
    expect(JSON.parse(JSON.stringify(s.dump()))).toEqual({
      version: s.version,
      loadedAt: '1970-01-01T00:00:00.000Z',
      files: ['a.yaml', 'b.yaml'],
      domains: [
        {
          domain: 'a',
          files: ['a.yaml'],
          descriptors: [
            {
              key: 'k',
              value: 'v',
              ruleKey: 'a.k_v',
              unlimited: true,
              shadowMode: false,
              quotaMode: false,
              detailedMetric: false,
              valueToMetric: false,
              shareThreshold: false,
              limits: [],
              descriptors: [],
            },
          ],
        },
        {
          domain: 'b',
          files: ['b.yaml'],
          descriptors: [
            {
              key: 'k',
              value: null,
              ruleKey: 'b.k',
              unlimited: false,
              shadowMode: false,
              quotaMode: false,
              detailedMetric: false,
              valueToMetric: false,
              shareThreshold: false,
              limits: [
                {
                  name: null,
                  algorithm: 'fixed_window',
                  unit: 'second',
                  unitMultiplier: 1,
                  requestsPerUnit: 1,
                  burst: 1,
                  windowMs: 1000,
                  identity: 'fw:second:1',
                  replaces: [],
                },
              ],
              descriptors: [],
            },
          ],
        },
      ],
    });
  });
});

describe('mergeDomainConfigs (upstream MERGE_DOMAIN_CONFIG)', () => {
  const a = { path: 'a.yaml', text: 'domain: d\ndescriptors:\n  - key: k1\n    rate_limit: {unit: second, requests_per_unit: 1}\n' };
  const b = { path: 'b.yaml', text: 'domain: d\ndescriptors:\n  - key: k2\n    rate_limit: {unit: second, requests_per_unit: 2}\n' };

  it('merges descriptors of one domain from several files', () => {
    const s = compileConfig([a, b], { mergeDomainConfigs: true });
    expect(s.findRule('d', e(['k1', 'x']))!.limits[0]!.requestsPerUnit).toBe(1);
    expect(s.findRule('d', e(['k2', 'x']))!.limits[0]!.requestsPerUnit).toBe(2);
    expect(s.findRule('d', e(['k2', 'x']))!.file).toBe('b.yaml');
    expect(s.dump().domains[0]!.files).toEqual(['a.yaml', 'b.yaml']);
  });

  it('still rejects one descriptor defined in two files', async () => {
    const errors = await configErrorsOf(() => compileConfig([a, { path: 'b.yaml', text: a.text }], { mergeDomainConfigs: true }));
    expect(errors.map((x) => x.message)).toEqual([
      "b.yaml: descriptors[0]: duplicate descriptor composite key 'd.k1' (line 3); first defined at a.yaml:descriptors[0]",
    ]);
  });
});

describe('failure_mode (meshlimit extension, domain level)', () => {
  it('is exposed per domain and absent when not set', async () => {
    const { compileConfig } = await import('../../../src/config/compile.js');
    const s = compileConfig([
      { path: 'a.yaml', text: 'domain: a\nfailure_mode: LOCAL\ndescriptors: []\n' },
      { path: 'b.yaml', text: 'domain: b\ndescriptors: []\n' },
    ]);
    expect(s.domainOptions('a')).toEqual({ failureMode: 'local' });
    expect(s.domainOptions('b')).toEqual({ failureMode: undefined });
    expect(s.domainOptions('c')).toBeUndefined();
  });
});
