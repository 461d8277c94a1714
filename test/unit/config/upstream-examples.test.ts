import { describe, expect, it } from 'vitest';
import { MemoryBackend } from '../../../src/backend/memory.js';
import { loadConfigDir } from '../../../src/config/loader.js';
import { ConfigStore } from '../../../src/config/store.js';
import type { CompiledSnapshot } from '../../../src/config/compiled.js';
import { RateLimiter, type LimiterOptions } from '../../../src/limiter/limiter.js';
import type { Decision, RequestDescriptor } from '../../../src/limiter/types.js';
import { configErrorsOf, fixture } from './helpers.js';

/**
 * envoyproxy/ratelimit's own example configs, copied unchanged from its repository
 * (examples/ratelimit/config/*.yaml into test/fixtures/config/upstream_examples/, and
 * test/config/merge_domain_key{1,2}.yaml and metadata.yaml), load here and answer as upstream
 * documents: the README's demo (`curl localhost:8888/twoheader ...`) and the integration-test
 * scripts written against example.yaml with the routes of examples/envoy/proxy.yaml
 * (integration-test/scripts/*.sh), each request being the descriptors its route sends.
 */

const T0 = 1_700_000_040_000; // a minute boundary: every request of a scenario falls in one window

type Entries = readonly (readonly [string, string])[];
const isEntries = (d: Entries | RequestDescriptor): d is Entries => Array.isArray(d);

async function service(options: Partial<LimiterOptions> = {}): Promise<(...descriptors: (Entries | RequestDescriptor)[]) => Decision> {
  const store = new ConfigStore<CompiledSnapshot>(await loadConfigDir(fixture('upstream_examples')));
  const limiter = new RateLimiter(store, new MemoryBackend({ clock: () => T0 }), {
    keyPrefix: '',
    shadowMode: false,
    chargeOnDeny: false,
    now: () => T0,
    ...options,
  });
  return (...descriptors) =>
    limiter.decide({
      domain: 'rl',
      hitsAddend: 0,
      descriptors: descriptors.map((d): RequestDescriptor => (isEntries(d) ? { entries: d.map(([key, value]) => ({ key, value })) } : d)),
    }) as Decision;
}

describe('examples/ratelimit/config (upstream) load unchanged', () => {
  it('with no error and no warning', async () => {
    const s = await loadConfigDir(fixture('upstream_examples'));
    expect(s.domainNames).toEqual(['mongo_cps', 'rl']);
    expect(s.warnings).toEqual([]);
    expect(s.findRule('mongo_cps', [{ key: 'database', value: 'users' }])?.limits[0]).toMatchObject({
      requestsPerUnit: 500,
      unit: 'second',
    });
    expect(s.findRule('rl', [{ key: 'service', value: 'service_2' }])).toMatchObject({
      quotaMode: true,
      shadowMode: false,
      metadata: { service_with_quota: { name: 'service_2' } },
    });
    expect(s.findRule('rl', [{ key: 'unspec', value: 'x' }])).toMatchObject({ detailedMetric: true });
  });
});

describe('answers as upstream documents them', () => {
  it('README demo and trigger-ratelimit.sh / trigger-shadow-mode-key.sh: baz limited, baz=shady (shadow_mode) never', async () => {
    const ask = await service();
    const twoheader = (baz: string): string =>
      ask([
        ['foo', 'pelle'],
        ['baz', baz],
      ]).code;
    expect([1, 2, 3, 4, 5].map(() => twoheader('not-so-shady'))).toEqual(['OK', 'OK', 'OK', 'OVER_LIMIT', 'OVER_LIMIT']);
    expect([1, 2, 3, 4, 5].map(() => twoheader('shady'))).toEqual(['OK', 'OK', 'OK', 'OK', 'OK']);
    expect(
      ask([
        ['foo', 'pelle'],
        ['baz', 'shady'],
      ]).statuses[0],
    ).toMatchObject({ code: 'OK', remaining: 0, shadowed: true });
    expect([1, 2].map(() => twoheader('baz'))).toEqual(['OK', 'OVER_LIMIT']); // 1 per second
    expect(
      ask([
        ['foo', 'foo'],
        ['bar', 'banned'],
      ]).code,
    ).toBe('OVER_LIMIT'); // requests_per_unit: 0
    expect(
      ask([
        ['foo', 'foo'],
        ['bay', 'x'],
      ]).statuses[0],
    ).toMatchObject({ unlimited: true });
  });

  it('replaces.sh: replaces raises a limit, leaves the original, and can replace several', async () => {
    const ask = await service();
    const four = (foo: string, bar: string, dest: string): string =>
      ask(
        [
          ['foo', foo],
          ['bar', bar],
        ],
        [
          ['source_cluster', 'proxy'],
          ['destination_cluster', dest],
        ],
      ).code;
    const five = (): string =>
      ask(
        [
          ['foo', 'my_foo'],
          ['bar', 'bkthomps'],
        ],
        [
          ['source_cluster', 'proxy'],
          ['destination_cluster', 'fake'],
        ],
        [['category', 'account']],
      ).code;
    const OK = 'OK';
    const LIMITED = 'OVER_LIMIT';
    expect(
      ask([
        ['foo', 'bkthomps'],
        ['bar', 'banned'],
      ]).code,
    ).toBe(LIMITED);
    expect(four('bkthomps', 'banned', 'mock')).toBe(LIMITED);
    expect([1, 2, 3].map(() => four('bkthomps', 'banned', 'override'))).toEqual([OK, OK, LIMITED]);
    expect([1, 2, 3].map(() => four('my_foo', 'bkthomps', 'bkthomps'))).toEqual([OK, OK, LIMITED]);
    expect([1, 2].map(() => four('my_foo', 'bkthomps', 'not_bkthomps'))).toEqual([OK, LIMITED]);
    expect(four('my_foo', 'bkthomps', 'bkthomps')).toBe(LIMITED);
    expect([1, 2, 3, 4, 5].map(five)).toEqual([OK, OK, OK, OK, LIMITED]);
    const two = (): string =>
      ask([
        ['foo', 'foo_2'],
        ['bar', 'bkthomps'],
      ]).code;
    expect([1, 2].map(two)).toEqual([OK, LIMITED]);
    expect([1, 2, 3].map(() => four('foo_3', 'bar_3', 'fake'))).toEqual([OK, OK, LIMITED]);
    expect(five()).toBe(LIMITED);
  });

  it('quota.sh: /quota debits service_1 (1/min) and service_2 (2/min); the 3rd request finds both exhausted', async () => {
    const ask = await service();
    const quota = (): Decision => ask([['service', 'service_1']], [['service', 'service_2']]);
    expect([quota(), quota(), quota()].map((d) => `${d.code} ${d.statuses.map((s) => s.code).join(',')}`)).toEqual([
      'OK OK,OK',
      'OK OVER_LIMIT,OK',
      'OVER_LIMIT OVER_LIMIT,OVER_LIMIT',
    ]);
  });

  it('multiservice-tokenquota.sh: the metadata of the service with quota left routes requests 1-2 to service_1, 3-5 to service_2, rejects the 6th', async () => {
    const ask = await service({ responseDynamicMetadata: true });
    const check = (name: string): RequestDescriptor => ({ entries: [{ key: 'service', value: name }], hitsAddend: 0 });
    const routed: string[] = [];
    for (let i = 0; i < 6; i++) {
      // Request path: both services checked without consuming; Envoy routes by the metadata
      // (%DYNAMIC_METADATA(envoy.filters.http.ratelimit:metadata:service_with_quota:name)%).
      const d = ask(check('service_1'), check('service_2'));
      if (d.code === 'OVER_LIMIT') {
        routed.push('429');
        continue;
      }
      const name = (d.metadata?.['service_with_quota'] as { name: string }).name;
      routed.push(name);
      // Response path (apply_on_stream_done): the serving service's quota, hits_addend 1.
      ask({ entries: [{ key: 'service', value: name }], hitsAddend: 1 });
    }
    expect(routed).toEqual(['service_1', 'service_1', 'service_2', 'service_2', 'service_2', '429']);
  });
});

describe('upstream test/config fixtures', () => {
  it('merge_domain_key{1,2}.yaml: one domain from two files with MERGE_DOMAIN_CONFIG (TestDomainMerge), an error without it', async () => {
    const s = await loadConfigDir(fixture('merge_domain'), { mergeDomainConfigs: true });
    expect(s.domainNames).toEqual(['test-domain']);
    expect(s.findRule('test-domain', [{ key: 'key1', value: 'value1' }])?.limits[0]).toMatchObject({ requestsPerUnit: 10, unit: 'minute' });
    expect(s.findRule('test-domain', [{ key: 'key2', value: 'value2' }])?.limits[0]).toMatchObject({ requestsPerUnit: 20, unit: 'minute' });
    const errors = await configErrorsOf(() => loadConfigDir(fixture('merge_domain')));
    expect(errors.map((e) => e.message)).toEqual([
      `${fixture('merge_domain', 'merge_domain_key2.yaml')}: domain: duplicate domain 'test-domain' (line 2); already defined in ${fixture('merge_domain', 'merge_domain_key1.yaml')} (MERGE_DOMAIN_CONFIG=true merges them)`,
    ]);
  });

  it('metadata.yaml: each limited descriptor carries its metadata (TestMetadata)', async () => {
    const s = await loadConfigDir(fixture('upstream_metadata'));
    expect(s.warnings).toEqual([]);
    const e = (...pairs: [string, string][]) => pairs.map(([key, value]) => ({ key, value }));
    expect(s.findRule('test-domain', e(['key1', 'value1'], ['subkey1', 'x']))?.metadata).toEqual({ name: 'service_1' });
    expect(s.findRule('test-domain', e(['key1', 'value1'], ['subkey1', 'subvalue1']))?.metadata).toBeUndefined();
    expect(s.findRule('test-domain', e(['key2', 'x']))?.metadata).toEqual({ service_with_quota: { name: 'service_2' } });
  });
});
