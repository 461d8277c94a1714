import { describe, expect, it } from 'vitest';
import { compileConfig, compileXdsResources, loadConfigDir, type CompiledSnapshot } from '../../../src/config/index.js';
import { type ConfigError, ConfigErrors } from '../../../src/errors.js';
import { unpackResources } from '../../../src/xds/mapping.js';
import { encodeRateLimitConfig, RATE_LIMIT_CONFIG_TYPE } from '../../support/xds-server.js';
import { fixture } from '../config/helpers.js';

/**
 * The differential test of the xDS translation: the same config as YAML through the file loader
 * and as RateLimitConfig protos (encoded with protobufjs straight from rls_conf.proto, decoded by
 * meshlimit's xDS path) compiles to equal snapshots, and fails with equal errors. Every field of
 * rls_conf.proto is exercised.
 */

const T = 1_800_000_000_000;

/** The protos twin of test/fixtures/config/xds_equivalent/ (edge.yaml, api.yaml). */
const EDGE = {
  name: 'edge',
  domain: 'edge',
  descriptors: [
    { key: 'remote_address', rate_limit: { unit: 'SECOND', requests_per_unit: 10 } },
    { key: 'path', value: '/healthz', rate_limit: { unlimited: true, name: 'health', replaces: [{ name: 'per_minute' }] } },
    {
      key: 'company_id',
      value: 'trial-*',
      shadow_mode: true,
      descriptors: [
        {
          key: 'path',
          detailed_metric: true,
          rate_limit: { name: 'per_minute', unit: 'MINUTE', requests_per_unit: 5, replaces: [{ name: 'other' }, { name: 'health' }] },
        },
      ],
    },
    {
      key: 'tier',
      value: 'gold',
      quota_mode: true,
      rate_limit: { unit: 'HOUR', requests_per_unit: 100 },
      metadata: {
        fields: {
          team: { stringValue: 'payments' },
          weight: { numberValue: 2 },
          tags: { listValue: { values: [{ stringValue: 'a' }, { stringValue: 'b' }] } },
          nested: { structValue: { fields: { on: { boolValue: true }, none: { nullValue: 0 } } } },
        },
      },
    },
    { key: 'd', rate_limit: { unit: 'DAY', requests_per_unit: 4 } },
    { key: 'w', rate_limit: { unit: 'WEEK', requests_per_unit: 7 } },
    { key: 'mo', rate_limit: { unit: 'MONTH', requests_per_unit: 5 } },
    { key: 'y', rate_limit: { unit: 'YEAR', requests_per_unit: 6 } },
    { key: 'blocked', rate_limit: { unit: 'SECOND', requests_per_unit: 0 } },
    {
      key: 'parent',
      metadata: { fields: { ignored: { stringValue: 'yes' } } },
      descriptors: [{ key: 'leaf', value: '010', rate_limit: { unit: 'SECOND', requests_per_unit: 1 } }],
    },
  ],
};
const API = { name: 'api', domain: 'api', descriptors: [{ key: 'user', rate_limit: { unit: 'MINUTE', requests_per_unit: 60 } }] };

/** Resources as the xDS client receives them: Any-wrapped bytes, decoded by meshlimit. */
function viaXds(...configs: Record<string, unknown>[]): CompiledSnapshot {
  const response = {
    versionInfo: '1',
    typeUrl: RATE_LIMIT_CONFIG_TYPE,
    nonce: '1',
    controlPlane: '',
    resources: configs.map((c) => ({ typeUrl: RATE_LIMIT_CONFIG_TYPE, value: encodeRateLimitConfig(c) })),
  };
  return compileXdsResources(unpackResources(response), { now: () => T });
}

/** A dump with each source named by its base name (a file `.../edge.yaml` and the resource `xds:edge` are both `edge`) and no version. */
function comparable(snap: CompiledSnapshot): unknown {
  const base = (p: string) =>
    p
      .replace(/^xds:/, '')
      .replace(/^.*\//, '')
      .replace(/\.yaml$/, '');
  const dump = structuredClone(snap.dump()) as unknown as { version?: string; files: string[]; domains: { files: string[] }[] };
  delete dump.version;
  dump.files = dump.files.map(base);
  for (const d of dump.domains) d.files = d.files.map(base);
  return dump;
}

describe('xDS translation: the same config as YAML and as protos compiles the same', () => {
  it('every field of rls_conf.proto: equal dump()', async () => {
    const yaml = await loadConfigDir(fixture('xds_equivalent'), { now: () => T });
    const xds = viaXds(EDGE, API);
    expect(comparable(xds)).toEqual(comparable(yaml));
    // Sanity: the dump is not trivially equal (both sides hold what the fixture says).
    expect(xds.ruleCount).toBe(11);
    expect(xds.domainNames).toEqual(['api', 'edge']);
  });

  it('equal rules for requests (names, replaces, flags, limits), and equal warnings', async () => {
    const yaml = await loadConfigDir(fixture('xds_equivalent'), { now: () => T });
    const xds = viaXds(API, EDGE);
    const requests = [
      [['remote_address', '1.2.3.4']],
      [['path', '/healthz']],
      [
        ['company_id', 'trial-9'],
        ['path', '/x'],
      ],
      [['tier', 'gold']],
      [['w', 'a']],
      [
        ['parent', 'p'],
        ['leaf', '010'],
      ],
      [['nothing', 'here']],
    ].map((entries) => entries.map(([key, value]) => ({ key: key!, value: value! })));
    for (const entries of requests) {
      const strip = (r: ReturnType<CompiledSnapshot['findRule']>) => (r === undefined ? undefined : { ...r, file: '', line: 0 });
      expect(strip(xds.findRule('edge', entries)), JSON.stringify(entries)).toEqual(strip(yaml.findRule('edge', entries)));
    }
    const detail = (s: CompiledSnapshot) => s.warnings.map((w) => `${w.field}: ${w.detail.replace(/ \(line \d+\)/, '')}`);
    expect(detail(xds)).toEqual(detail(yaml));
    expect(detail(xds)).toEqual([
      'descriptors[9].metadata: ignored: the descriptor has no rate limit, and metadata is returned only with a limit that applied',
    ]);
  });
});

describe('xDS translation: the same mistakes fail with the same messages', () => {
  const UNITS = 'expected one of second, minute, hour, day, week, month, year';
  const cases: { name: string; yaml: string; proto: Record<string, unknown>; errors: string[] }[] = [
    {
      name: 'an empty key',
      yaml: 'domain: d\ndescriptors:\n  - key: ""\n    rate_limit: { unit: second, requests_per_unit: 1 }\n',
      proto: { domain: 'd', descriptors: [{ key: '', rate_limit: { unit: 'SECOND', requests_per_unit: 1 } }] },
      errors: ['descriptors[0].key: descriptor has empty key'],
    },
    {
      name: 'no unit (UNKNOWN, the proto default)',
      yaml: 'domain: d\ndescriptors:\n  - key: k\n    rate_limit: { requests_per_unit: 1 }\n',
      proto: { domain: 'd', descriptors: [{ key: 'k', rate_limit: { unit: 'UNKNOWN', requests_per_unit: 1 } }] },
      errors: [`descriptors[0].rate_limit.unit: missing; ${UNITS}`],
    },
    {
      name: 'unlimited with a unit',
      yaml: 'domain: d\ndescriptors:\n  - key: k\n    rate_limit: { unlimited: true, unit: minute }\n',
      proto: { domain: 'd', descriptors: [{ key: 'k', rate_limit: { unlimited: true, unit: 'MINUTE' } }] },
      errors: ['descriptors[0].rate_limit.unit: should not specify rate limit unit when unlimited'],
    },
    {
      name: 'a limit that replaces itself, and an empty replaces entry',
      yaml: 'domain: d\ndescriptors:\n  - key: k\n    rate_limit: { unit: second, requests_per_unit: 1, name: a, replaces: [{ name: a }, { name: "" }] }\n',
      proto: {
        domain: 'd',
        descriptors: [
          { key: 'k', rate_limit: { unit: 'SECOND', requests_per_unit: 1, name: 'a', replaces: [{ name: 'a' }, { name: '' }] } },
        ],
      },
      errors: [
        "descriptors[0].rate_limit.replaces[0].name: replaces should not contain name of same descriptor ('a')",
        'descriptors[0].rate_limit.replaces[1].name: should not have an empty replaces entry',
      ],
    },
    {
      name: 'a duplicate descriptor',
      yaml: 'domain: d\ndescriptors:\n  - key: k\n    value: v\n  - key: k\n    value: v\n',
      proto: {
        domain: 'd',
        descriptors: [
          { key: 'k', value: 'v' },
          { key: 'k', value: 'v' },
        ],
      },
      errors: ["descriptors[1]: duplicate descriptor composite key 'd.k_v'; first defined at descriptors[0]"],
    },
    {
      name: 'an empty domain',
      yaml: 'domain: ""\n',
      proto: { domain: '' },
      errors: ['domain: config file cannot have empty domain'],
    },
  ];

  const errorsOf = (fn: () => unknown, source: string): string[] => {
    try {
      fn();
    } catch (err) {
      const list = err instanceof ConfigErrors ? err.errors : [err as ConfigError];
      return list.map((e) => {
        expect(e.file).toBe(source);
        return `${e.field}: ${e.detail.replace(/ \(line \d+\)/, '')}`;
      });
    }
    throw new Error(`${source} compiled`);
  };

  for (const c of cases) {
    it(c.name, () => {
      const fromYaml = errorsOf(() => compileConfig([{ path: 'd.yaml', text: c.yaml }]), 'd.yaml');
      const fromXds = errorsOf(() => viaXds({ name: 'd', ...c.proto }), 'xds:d');
      expect(fromXds).toEqual(c.errors);
      expect(fromYaml).toEqual(c.errors);
    });
  }
});
