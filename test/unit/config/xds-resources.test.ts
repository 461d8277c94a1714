import { describe, expect, it } from 'vitest';
import {
  compileXdsResources,
  ConfigStore,
  XdsConfigUpdates,
  type CompiledSnapshot,
  type ReloadEvent,
  type XdsRateLimitConfig,
  type XdsRateLimitDescriptor,
  type XdsRateLimitPolicy,
} from '../../../src/config/index.js';
import { NoConfigError } from '../../../src/errors.js';
import { configErrorsOf } from './helpers.js';

/**
 * xDS RateLimitConfig resources through the config layer: the checks and messages of a file
 * (named `xds:<resource>`, without lines), proto3 defaults read as upstream reads them, and the
 * updates that swap them in or reject them. The wire decoding and the differential against YAML
 * are in test/unit/xds/.
 */

const policy = (p: Partial<XdsRateLimitPolicy> = {}): XdsRateLimitPolicy => ({
  unit: 'SECOND',
  requestsPerUnit: 5,
  unlimited: false,
  name: '',
  replaces: [],
  ...p,
});
const descriptor = (d: Partial<XdsRateLimitDescriptor> = {}): XdsRateLimitDescriptor => ({
  key: 'k',
  value: '',
  rateLimit: policy(),
  descriptors: [],
  shadowMode: false,
  detailedMetric: false,
  quotaMode: false,
  metadata: null,
  ...d,
});
const resource = (name: string, descriptors: XdsRateLimitDescriptor[], domain = name): XdsRateLimitConfig => ({
  name,
  domain,
  descriptors,
});

const messagesOf = async (resources: XdsRateLimitConfig[]): Promise<string[]> =>
  (await configErrorsOf(() => compileXdsResources(resources))).map((e) => e.message);

describe('xDS resources: the checks and messages of a file', () => {
  it('names the resource and the field, without lines', async () => {
    expect(await messagesOf([resource('edge', [descriptor({ rateLimit: policy({ unit: 'UNKNOWN' }) })])])).toEqual([
      'xds:edge: descriptors[0].rate_limit.unit: missing; expected one of second, minute, hour, day, week, month, year',
    ]);
    expect(await messagesOf([resource('edge', [descriptor({ key: '' })])])).toEqual([
      'xds:edge: descriptors[0].key: descriptor has empty key',
    ]);
    expect(await messagesOf([resource('edge', [], '')])).toEqual(['xds:edge: domain: config file cannot have empty domain']);
  });

  it('an enum number the proto does not name is an invalid unit', async () => {
    expect(await messagesOf([resource('edge', [descriptor({ rateLimit: policy({ unit: 9 }) })])])).toEqual([
      "xds:edge: descriptors[0].rate_limit.unit: invalid rate limit unit '9'; expected one of second, minute, hour, day, week, month, year",
    ]);
  });

  it('reports every error of every resource, in name order', async () => {
    const bad = [
      resource('c', [descriptor(), descriptor()]),
      resource('b', [descriptor({ rateLimit: policy({ unlimited: true, unit: 'MINUTE' }) })]),
      resource('a', [descriptor({ rateLimit: policy({ name: 'x', replaces: [{ name: 'x' }] }) })]),
    ];
    // As with files: the field checks of every source first, then what only the whole tree shows.
    expect(await messagesOf(bad)).toEqual([
      "xds:a: descriptors[0].rate_limit.replaces[0].name: replaces should not contain name of same descriptor ('x')",
      'xds:b: descriptors[0].rate_limit.unit: should not specify rate limit unit when unlimited',
      "xds:c: descriptors[1]: duplicate descriptor composite key 'c.k'; first defined at descriptors[0]",
    ]);
  });

  it('two resources with one name, one domain in two resources, a resource without a name', async () => {
    expect(await messagesOf([resource('x', [], 'd1'), resource('x', [], 'd2')])).toEqual([
      'xds:x: name: more than one resource has this name; each RateLimitConfig needs its own',
    ]);
    expect(await messagesOf([resource('x', [], 'd'), resource('y', [], 'd')])).toEqual([
      "xds:y: domain: duplicate domain 'd'; already defined in xds:x (MERGE_DOMAIN_CONFIG=true merges them)",
    ]);
    expect(await messagesOf([resource('', [descriptor({ key: '' })], 'd')])).toEqual([
      'xds:resources[0]: descriptors[0].key: descriptor has empty key',
    ]);
  });

  it('MERGE_DOMAIN_CONFIG merges one domain across the resources of a response, as across files', () => {
    const a = resource('x', [descriptor({ key: 'a' })], 'd');
    const b = resource('y', [descriptor({ key: 'b' })], 'd');
    const merged = compileXdsResources([a, b], { mergeDomainConfigs: true });
    expect(merged.domainNames).toEqual(['d']);
    expect(merged.ruleCount).toBe(2);
    expect(() => compileXdsResources([a, b])).toThrow(/duplicate domain 'd'/);
  });

  it('metadata is taken like in a file (returned with the limit); an empty Struct is nothing', () => {
    const withMeta = compileXdsResources([resource('edge', [descriptor({ metadata: { team: 'payments', n: 2 } })])]);
    expect(withMeta.warnings).toEqual([]);
    expect(withMeta.dump().domains[0]!.descriptors[0]!).toMatchObject({ metadata: { team: 'payments', n: 2 } });
    const empty = compileXdsResources([resource('edge', [descriptor({ metadata: {} })])]);
    expect(empty.ruleCount).toBe(1);
    expect(empty.dump().domains[0]!.descriptors[0]!.metadata).toBeUndefined();
  });

  it('proto3 defaults: empty value and name are absent, requests_per_unit 0 on unlimited is absent', () => {
    const snap = compileXdsResources([
      resource('edge', [descriptor({ value: '', rateLimit: policy({ unlimited: true, unit: 'UNKNOWN', requestsPerUnit: 0 }) })]),
    ]);
    expect(snap.warnings).toEqual([]);
    const d = snap.dump().domains[0]!.descriptors[0]!;
    expect(d).toMatchObject({ key: 'k', value: null, unlimited: true, limits: [] });
    // An unlimited policy that still carries a count warns, as `requests_per_unit` does in a file.
    const warned = compileXdsResources([resource('edge', [descriptor({ rateLimit: policy({ unlimited: true, unit: 'UNKNOWN' }) })])]);
    expect(warned.warnings.map((w) => w.message)).toEqual([
      'xds:edge: descriptors[0].rate_limit.requests_per_unit: ignored: the limit is unlimited',
    ]);
  });

  it('the version is the content: order and xDS version do not change it, content does', () => {
    const a = resource('a', [descriptor()]);
    const b = resource('b', [descriptor({ key: 'other' })]);
    expect(compileXdsResources([a, b]).version).toBe(compileXdsResources([b, a]).version);
    expect(compileXdsResources([a, b]).version).not.toBe(compileXdsResources([a]).version);
    expect(compileXdsResources([a, b]).dump().files).toEqual(['xds:a', 'xds:b']);
  });
});

describe('XdsConfigUpdates: swap, reject, and the wait for the first config', () => {
  const setup = (forceStart: boolean) => {
    const store = new ConfigStore<CompiledSnapshot>(compileXdsResources([]));
    const events: ReloadEvent[] = [];
    const updates = new XdsConfigUpdates({ store, forceStart, onReload: (e) => events.push(e) });
    return { store, events, updates };
  };
  const check = { domain: 'edge', descriptors: [{ entries: [{ key: 'k', value: 'v' }] }], hitsAddend: 0 };

  it('without FORCE_START_WITHOUT_INITIAL_CONFIG: not ready, and requests fail until the first config', () => {
    const { updates, store } = setup(false);
    expect(updates.ready()).toBe(false);
    expect(updates.waitingDetail()).toBe('waiting for the first descriptor config from the xDS management server');
    expect(() => updates.source().current()).toThrow(NoConfigError);
    expect(updates.apply([resource('edge', [descriptor()])])).toEqual({ ok: true });
    expect(updates.ready()).toBe(true);
    expect(updates.waitingDetail()).toBeUndefined();
    expect(updates.source().current()).toBe(store.current());
    expect(store.current().findRule(check.domain, check.descriptors[0]!.entries)?.ruleKey).toBe('edge.k');
  });

  it('with it: ready at once, answering from the empty config', () => {
    const { updates, store } = setup(true);
    expect(updates.ready()).toBe(true);
    expect(updates.hasConfig()).toBe(false);
    expect(updates.waitingDetail()).toMatch(/^no descriptor config from the xDS management server yet; answering from an empty config/);
    expect(updates.source().current().domainNames).toEqual([]);
    expect(updates.source().current()).toBe(store.current());
  });

  it('an empty first config is still the first config (it makes the service ready), and counts', () => {
    const { updates, events } = setup(false);
    expect(updates.apply([])).toEqual({ ok: true });
    expect(updates.ready()).toBe(true);
    expect(events).toMatchObject([{ ok: true, changed: true, trigger: 'xds' }]);
  });

  it('an invalid config is rejected with the message and the last good one stays; the same content again is no change', () => {
    const { updates, store, events } = setup(false);
    updates.apply([resource('edge', [descriptor()])]);
    const good = store.current();
    const result = updates.apply([resource('edge', [descriptor({ rateLimit: policy({ unit: 'UNKNOWN' }) })])]);
    expect(result).toEqual({
      ok: false,
      message: 'xds:edge: descriptors[0].rate_limit.unit: missing; expected one of second, minute, hour, day, week, month, year',
    });
    expect(store.current()).toBe(good);
    expect(updates.apply([resource('edge', [descriptor()])])).toEqual({ ok: true });
    expect(store.current()).toBe(good);
    expect(events.map((e) => (e.ok ? `ok changed=${e.changed}` : `failed kept=${e.keptVersion === good.version}`))).toEqual([
      'ok changed=true',
      'failed kept=true',
      'ok changed=false',
    ]);
  });

  it('reject: an undecodable response counts as a failed reload and gives the NACK message', () => {
    const { updates, events } = setup(true);
    expect(updates.reject(new Error('xds:resources[0]: cannot decode'))).toEqual({ ok: false, message: 'xds:resources[0]: cannot decode' });
    expect(events).toMatchObject([{ ok: false, trigger: 'xds' }]);
    expect(updates.hasConfig()).toBe(false);
  });
});
