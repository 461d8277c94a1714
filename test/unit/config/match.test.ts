import { describe, expect, it } from 'vitest';
import type { DescriptorEntry } from '../../../src/limiter/types.js';
import { wildcardMatch } from '../../../src/config/matcher.js';
import { compileText } from './helpers.js';

const e = (...pairs: [string, string][]): DescriptorEntry[] => pairs.map(([key, value]) => ({ key, value }));

/** upstream test/config/basic_config.yaml, plus wildcards, in our words. */
const CONFIG = `
domain: test-domain
descriptors:
  - key: key1
    value: value1
    descriptors:
      - key: subkey1
        rate_limit: {unit: second, requests_per_unit: 5}
      - key: subkey1
        value: subvalue1
        rate_limit: {unit: second, requests_per_unit: 10}
  - key: key2
    rate_limit: {unit: minute, requests_per_unit: 20}
  - key: key2
    value: value2
    rate_limit: {unit: minute, requests_per_unit: 30}
  - key: key2
    value: value3
  - key: key5
    value: value5
    rate_limit: {unit: day, requests_per_unit: 15}
    descriptors:
      - key: subkey5
        value: subvalue5
        rate_limit: {unit: day, requests_per_unit: 25}
  - key: wild
    value: foo*
    rate_limit: {unit: minute, requests_per_unit: 1}
  - key: wild
    value: fo*
    rate_limit: {unit: minute, requests_per_unit: 2}
  - key: wild
    value: food
    rate_limit: {unit: minute, requests_per_unit: 3}
  - key: wild
    rate_limit: {unit: minute, requests_per_unit: 4}
  - key: nested
    value: n*
    descriptors:
      - key: inner
        value: x*
        rate_limit: {unit: hour, requests_per_unit: 5}
      - key: inner
        rate_limit: {unit: hour, requests_per_unit: 6}
  - key: mid
    value: bar*b
    rate_limit: {unit: hour, requests_per_unit: 7}
`;

const snap = compileText(CONFIG);
const rpu = (domain: string, entries: DescriptorEntry[]): number | undefined => snap.findRule(domain, entries)?.limits[0]?.requestsPerUnit;
const key = (domain: string, entries: DescriptorEntry[]): string | undefined => snap.findRule(domain, entries)?.ruleKey;

describe('findRule: envoyproxy/ratelimit GetLimit semantics', () => {
  it('unknown domain and empty descriptors find nothing', () => {
    expect(snap.findRule('foo_domain', e(['key2', 'x']))).toBeUndefined();
    expect(snap.findRule('test-domain', [])).toBeUndefined();
    expect(snap.hasDomain('test-domain')).toBe(true);
    expect(snap.hasDomain('foo_domain')).toBe(false);
  });

  it('exact key_value beats the bare key', () => {
    expect(rpu('test-domain', e(['key2', 'value2']))).toBe(30);
    expect(key('test-domain', e(['key2', 'value2']))).toBe('test-domain.key2_value2');
    expect(rpu('test-domain', e(['key2', 'anything']))).toBe(20);
    expect(key('test-domain', e(['key2', 'anything']))).toBe('test-domain.key2');
  });

  it('a key_value descriptor without a limit "whitelists" the value (no fallback to the bare key)', () => {
    expect(snap.findRule('test-domain', e(['key2', 'value3']))).toBeUndefined();
  });

  it('a limit applies only at the request descriptor last entry', () => {
    // key1/value1 has no limit itself.
    expect(snap.findRule('test-domain', e(['key1', 'value1']))).toBeUndefined();
    // key5/value5 has a limit, but the request goes one level deeper without a match there.
    expect(rpu('test-domain', e(['key5', 'value5']))).toBe(15);
    expect(snap.findRule('test-domain', e(['key5', 'value5'], ['subkey5', 'other']))).toBeUndefined();
    // key2 has a limit but no children: a longer request does not match it.
    expect(snap.findRule('test-domain', e(['key2', 'value2'], ['subkey', 'subvalue']))).toBeUndefined();
  });

  it('nested: exact beats bare key at the second level', () => {
    expect(rpu('test-domain', e(['key1', 'value1'], ['subkey1', 'subvalue1']))).toBe(10);
    expect(key('test-domain', e(['key1', 'value1'], ['subkey1', 'subvalue1']))).toBe('test-domain.key1_value1.subkey1_subvalue1');
    expect(rpu('test-domain', e(['key1', 'value1'], ['subkey1', 'something']))).toBe(5);
    expect(key('test-domain', e(['key1', 'value1'], ['subkey1', 'something']))).toBe('test-domain.key1_value1.subkey1');
    expect(rpu('test-domain', e(['key5', 'value5'], ['subkey5', 'subvalue5']))).toBe(25);
  });

  it('a first-level miss ends the walk', () => {
    expect(snap.findRule('test-domain', e(['key1', 'other'], ['subkey1', 'subvalue1']))).toBeUndefined();
  });

  it('exact beats wildcard beats bare key; wildcards are tried in config order', () => {
    expect(rpu('test-domain', e(['wild', 'food']))).toBe(3); // exact
    expect(rpu('test-domain', e(['wild', 'foo']))).toBe(1); // foo* (first in config order)
    expect(rpu('test-domain', e(['wild', 'foobar']))).toBe(1);
    expect(key('test-domain', e(['wild', 'foobar']))).toBe('test-domain.wild_foo*');
    expect(rpu('test-domain', e(['wild', 'fox']))).toBe(2); // only fo* matches
    expect(rpu('test-domain', e(['wild', 'bar']))).toBe(4); // bare key
    expect(rpu('test-domain', e(['wild', '']))).toBe(4);
  });

  it('wildcards at a nested level use that level patterns', () => {
    expect(rpu('test-domain', e(['nested', 'n1'], ['inner', 'x9']))).toBe(5);
    expect(key('test-domain', e(['nested', 'n1'], ['inner', 'x9']))).toBe('test-domain.nested_n*.inner_x*');
    expect(rpu('test-domain', e(['nested', 'nope'], ['inner', 'y']))).toBe(6);
    expect(snap.findRule('test-domain', e(['nested', 'n1']))).toBeUndefined();
  });

  it('a * in the middle matches any run of characters (current upstream wildcardMatch)', () => {
    expect(rpu('test-domain', e(['mid', 'barab']))).toBe(7);
    expect(rpu('test-domain', e(['mid', 'barb']))).toBe(7);
    expect(snap.findRule('test-domain', e(['mid', 'barabc']))).toBeUndefined();
  });

  it('upstream composite-key quirk is kept: key "a_b" (no value) answers request entry (a, b)', () => {
    const s = compileText('domain: d\ndescriptors:\n  - key: a_b\n    rate_limit: {unit: second, requests_per_unit: 9}\n');
    expect(s.findRule('d', e(['a', 'b']))?.limits[0]?.requestsPerUnit).toBe(9);
    expect(s.findRule('d', e(['a_b', 'x']))?.limits[0]?.requestsPerUnit).toBe(9);
  });

  it('a domain with no descriptors matches nothing', () => {
    const s = compileText('domain: d\n');
    expect(s.findRule('d', e(['a', 'b']))).toBeUndefined();
    expect(s.domainNames).toEqual(['d']);
  });

  it('returns the same frozen rule object on every call (no per-call allocation of rules)', () => {
    const a = snap.findRule('test-domain', e(['key2', 'x']));
    const b = snap.findRule('test-domain', e(['key2', 'y']));
    expect(a).toBe(b);
    expect(Object.isFrozen(a)).toBe(true);
  });
});

describe('rule flags are carried', () => {
  const s = compileText(`
domain: d
descriptors:
  - key: shadow
    shadow_mode: true
    detailed_metric: true
    rate_limit: {unit: second, requests_per_unit: 1, name: base}
  - key: free
    rate_limit: {unlimited: true, name: free_limit, replaces: [{name: base}]}
  - key: rep
    rate_limit: {unit: second, requests_per_unit: 2, replaces: [{name: base}, {name: other}]}
  - key: quota
    quota_mode: true
    value_to_metric: true
    rate_limit: {unit: second, requests_per_unit: 3}
  - key: files
    value: files/*
    share_threshold: true
    descriptors:
      - key: user
        rate_limit: {unit: second, requests_per_unit: 4}
`);

  it('shadow_mode and detailed_metric', () => {
    const r = s.findRule('d', e(['shadow', 'x']))!;
    expect(r).toMatchObject({
      ruleKey: 'd.shadow',
      shadowMode: true,
      detailedMetric: true,
      unlimited: false,
      names: ['base'],
      replaces: [],
    });
    expect(r.limits[0]!.name).toBe('base');
  });

  it('unlimited has no limits but keeps its name and replaces', () => {
    const r = s.findRule('d', e(['free', 'x']))!;
    expect(r).toMatchObject({
      ruleKey: 'd.free',
      unlimited: true,
      limits: [],
      names: ['free_limit'],
      replaces: ['base'],
      shadowMode: false,
    });
  });

  it('replaces on a limit', () => {
    const r = s.findRule('d', e(['rep', 'x']))!;
    expect(r.limits[0]!.replaces).toEqual(['base', 'other']);
    expect(r.replaces).toEqual(['base', 'other']);
    expect(r.limits[0]!.name).toBeUndefined();
  });

  it('quota_mode is carried on its own (not as shadow mode), without a warning; value_to_metric is carried', () => {
    const r = s.findRule('d', e(['quota', 'x']))!;
    expect(r).toMatchObject({ quotaMode: true, shadowMode: false, valueToMetric: true });
    expect(s.warnings).toEqual([]);
  });

  it('share_threshold: the wildcard value per entry index, for counter sharing', () => {
    const r = s.findRule('d', e(['files', 'files/a.csv'], ['user', 'u1']))!;
    expect(r.sharedValues).toEqual(['files/*', undefined]);
    expect(s.findRule('d', e(['shadow', 'x']))!.sharedValues).toBeUndefined();
  });
});

describe('wildcardMatch', () => {
  const m = (pattern: string, value: string): boolean => wildcardMatch(pattern.split('*'), value);
  it('matches like a glob with * only', () => {
    expect(m('foo*', 'foo')).toBe(true);
    expect(m('foo*', 'foobar')).toBe(true);
    expect(m('foo*', 'fo')).toBe(false);
    expect(m('*', '')).toBe(true);
    expect(m('a*c', 'abc')).toBe(true);
    expect(m('a*c', 'ac')).toBe(true);
    expect(m('a*c', 'abcd')).toBe(false);
    expect(m('a*b*c', 'aXbYc')).toBe(true);
    expect(m('a*b*c', 'acb')).toBe(false);
    expect(m('ab*ba', 'aba')).toBe(false); // prefix and suffix may not overlap
    expect(m('a*a*a', 'aaa')).toBe(true);
    expect(m('a*a*a', 'aa')).toBe(false);
    expect(m('*x*', 'abxcd')).toBe(true);
    expect(m('a**', 'a')).toBe(true);
  });
});
