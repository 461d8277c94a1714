import { describe, expect, it } from 'vitest';
import { ConfigError, ConfigErrors } from '../../../src/errors.js';
import { loadConfigDir } from '../../../src/config/loader.js';
import { compileConfig } from '../../../src/config/compile.js';
import { configErrorsOf, fixture } from './helpers.js';

/**
 * One fixture directory per config error, each checked against its exact message (the message
 * starts with the file path and names the field as a dotted path, plus the source line).
 */
const UNITS = 'expected one of second, minute, hour, day, week, month, year';

const cases: readonly { dir: string; file: string; field: string; detail: string }[] = [
  {
    dir: 'unknown_key',
    file: 'config.yaml',
    field: 'descriptors[0].ratelimit',
    detail:
      "unknown key 'ratelimit' (line 4); allowed here: key, value, rate_limit, rate_limits, descriptors, shadow_mode, detailed_metric, value_to_metric, share_threshold, quota_mode, metadata, candidate_rate_limits, reservation",
  },
  {
    dir: 'unknown_key_in_rate_limit',
    file: 'config.yaml',
    field: 'descriptors[0].rate_limit.requestsperunit',
    detail:
      "unknown key 'requestsperunit' (line 6); allowed here: unit, requests_per_unit, unlimited, name, replaces, algorithm, burst, unit_multiplier",
  },
  {
    dir: 'bad_failure_mode',
    file: 'config.yaml',
    field: 'failure_mode',
    detail: "invalid failure mode 'maybe' (line 2); expected one of deny, allow, local",
  },
  {
    dir: 'bad_unit',
    file: 'config.yaml',
    field: 'descriptors[0].descriptors[0].rate_limit.unit',
    detail: `invalid rate limit unit 'fortnight' (line 7); ${UNITS}`,
  },
  {
    dir: 'duplicate_yaml_key',
    file: 'config.yaml',
    field: 'descriptors[0].rate_limit.unit',
    detail: 'duplicate key (line 7); first defined on line 5',
  },
  {
    dir: 'duplicate_descriptor',
    file: 'config.yaml',
    field: 'descriptors[1]',
    detail: "duplicate descriptor composite key 'test-domain.key1_value1' (line 8); first defined at descriptors[0]",
  },
  {
    dir: 'unlimited_with_unit',
    file: 'config.yaml',
    field: 'descriptors[0].rate_limit.unit',
    detail: 'should not specify rate limit unit when unlimited (line 6)',
  },
  {
    dir: 'replaces_self',
    file: 'config.yaml',
    field: 'descriptors[0].rate_limit.replaces[0].name',
    detail: "replaces should not contain name of same descriptor ('limit1') (line 9)",
  },
  {
    dir: 'replaces_without_name',
    file: 'config.yaml',
    field: 'descriptors[0].rate_limit.replaces[0].name',
    detail: 'should not have an empty replaces entry (line 9)',
  },
  { dir: 'missing_domain', file: 'config.yaml', field: 'domain', detail: 'missing; config file cannot have empty domain' },
  { dir: 'empty_domain', file: 'config.yaml', field: 'domain', detail: 'config file cannot have empty domain (line 1)' },
  {
    dir: 'descriptor_without_key',
    file: 'config.yaml',
    field: 'descriptors[0].key',
    detail: 'missing; descriptor has empty key (line 3)',
  },
  {
    dir: 'negative_requests_per_unit',
    file: 'config.yaml',
    field: 'descriptors[0].rate_limit.requests_per_unit',
    detail: "must be a non-negative integer (at most 4294967295), got '-5' (line 6)",
  },
  {
    dir: 'fractional_requests_per_unit',
    file: 'config.yaml',
    field: 'descriptors[0].rate_limit.requests_per_unit',
    detail: "must be a non-negative integer (at most 4294967295), got '2.5' (line 6)",
  },
  {
    dir: 'string_requests_per_unit',
    file: 'config.yaml',
    field: 'descriptors[0].rate_limit.requests_per_unit',
    detail: "must be a non-negative integer (at most 4294967295), got string '10' (line 6)",
  },
  {
    dir: 'string_for_boolean',
    file: 'config.yaml',
    field: 'descriptors[0].shadow_mode',
    detail: "must be a boolean (true or false), got string 'true' (line 4)",
  },
  {
    dir: 'yaml_syntax_error',
    file: 'config.yaml',
    field: '',
    detail: 'YAML syntax error at line 5, column 1: Flow map in block collection must be sufficiently indented and end with a }',
  },
  {
    dir: 'not_a_mapping',
    file: 'config.yaml',
    field: '',
    detail: "the top level must be a mapping with 'domain' and 'descriptors', got a list (line 1)",
  },
  {
    dir: 'non_map_list',
    file: 'config.yaml',
    field: 'descriptors[0]',
    detail: "must be a mapping with at least 'key', got string 'a' (line 3)",
  },
  {
    dir: 'burst_without_token_bucket',
    file: 'config.yaml',
    field: 'descriptors[0].rate_limit.burst',
    detail: 'is only valid with algorithm token_bucket, not sliding_window (line 8)',
  },
  {
    dir: 'rate_limit_and_rate_limits',
    file: 'config.yaml',
    field: 'descriptors[0]',
    detail: "has both 'rate_limit' and 'rate_limits' (line 7); use 'rate_limits' alone for several limits",
  },
  {
    dir: 'unknown_algorithm',
    file: 'config.yaml',
    field: 'descriptors[0].rate_limit.algorithm',
    detail: "unknown algorithm 'leaky_bucket' (line 5); expected one of fixed_window, sliding_window, token_bucket",
  },
  {
    dir: 'metadata_not_a_mapping',
    file: 'config.yaml',
    field: 'descriptors[0].metadata',
    detail: "must be a mapping, got string 'service_1' (line 7)",
  },
  {
    dir: 'metadata_duplicate_key',
    file: 'config.yaml',
    field: 'descriptors[0].metadata.service_with_quota.name',
    detail: 'duplicate key (line 10); first defined on line 9',
  },
  {
    dir: 'metadata_complex_key',
    file: 'config.yaml',
    field: 'descriptors[0].metadata',
    detail: 'mapping keys must be strings (line 8)',
  },
  {
    dir: 'zero_unit_multiplier',
    file: 'config.yaml',
    field: 'descriptors[0].rate_limit.unit_multiplier',
    detail: "must be an integer >= 1 (at most 4294967295), got '0' (line 7)",
  },
  {
    dir: 'fractional_unit_multiplier',
    file: 'config.yaml',
    field: 'descriptors[0].rate_limit.unit_multiplier',
    detail: "must be an integer >= 1 (at most 4294967295), got '1.5' (line 7)",
  },
  {
    dir: 'same_counter_identity',
    file: 'config.yaml',
    field: 'descriptors[0].rate_limits[2]',
    detail:
      'uses the same counter as rate_limits[0] (algorithm fixed_window, unit minute, unit_multiplier 1) (line 9); merge them or change the unit',
  },
  {
    dir: 'share_threshold_without_wildcard',
    file: 'config.yaml',
    field: 'descriptors[0].share_threshold',
    detail: "share_threshold can only be used with wildcard values (containing '*'), but found key 'files_report.csv' (line 5)",
  },
  {
    dir: 'unlimited_in_rate_limits',
    file: 'config.yaml',
    field: 'descriptors[0].rate_limits[0].unlimited',
    detail: "is not allowed in 'rate_limits' (line 5); use 'rate_limit: {unlimited: true}' instead",
  },
  {
    dir: 'candidates_without_limit',
    file: 'config.yaml',
    field: 'descriptors[0].candidate_rate_limits',
    detail:
      "needs a limit ('rate_limit' or 'rate_limits') on the same descriptor (line 4): candidates are tried beside a rule's limits, and the descriptor has no limit",
  },
  {
    dir: 'candidates_with_replaces',
    file: 'config.yaml',
    field: 'descriptors[0].candidate_rate_limits[0].replaces',
    detail: 'is not allowed in a candidate (line 8): a candidate never changes an answer',
  },
  {
    dir: 'candidates_not_a_list',
    file: 'config.yaml',
    field: 'descriptors[0].candidate_rate_limits',
    detail: 'must be a list of rate limits, got a mapping (line 5)',
  },
  {
    dir: 'candidates_bad_unit',
    file: 'config.yaml',
    field: 'descriptors[0].candidate_rate_limits[0].unit',
    detail: `invalid rate limit unit 'fortnight' (line 6); ${UNITS}`,
  },
  {
    dir: 'reservation_ttl_longer_than_window',
    file: 'config.yaml',
    field: 'descriptors[0].descriptors[0].descriptors[0].reservation.ttl_seconds',
    detail: "61 s is longer than the limit's window (60 s) (line 9); shorten it or widen the window",
  },
  {
    dir: 'reservation_unknown_key',
    file: 'config.yaml',
    field: 'descriptors[0].descriptors[0].descriptors[0].reservation.ttl',
    detail: "unknown key 'ttl' (line 9); allowed here: mode, phase_key, id_key, estimate, ttl_seconds, expiry_cost, max_outstanding",
  },
  {
    dir: 'reservation_missing_estimate',
    file: 'config.yaml',
    field: 'descriptors[0].descriptors[0].descriptors[0].reservation.estimate',
    detail: "missing (line 9); give an integer >= 1 or hits_addend (the reserve call's hits_addend)",
  },
  {
    dir: 'reservation_key_not_in_path',
    file: 'config.yaml',
    field: 'descriptors[0].descriptors[0].descriptors[0].reservation.id_key',
    detail:
      "'x_request_id' is not a key of this descriptor or its parents (tenant -> phase -> request_id) (line 9); nest the rule under a 'key: x_request_id' descriptor so it matches the entry Envoy sends",
  },
  {
    dir: 'reservation_not_fixed_window',
    file: 'config.yaml',
    field: 'descriptors[0].descriptors[0].descriptors[0].reservation',
    detail: 'needs a fixed_window limit, got sliding_window (line 9)',
  },
  {
    dir: 'reservation_in_flight_with_estimate',
    file: 'config.yaml',
    field: 'descriptors[0].descriptors[0].descriptors[0].reservation.estimate',
    detail: 'is not allowed with mode in_flight (line 9): each request in flight holds 1',
  },
  {
    dir: 'reservation_bad_expiry_cost',
    file: 'config.yaml',
    field: 'descriptors[0].descriptors[0].descriptors[0].reservation.expiry_cost',
    detail: "unknown expiry cost 'half' (line 9); expected none or estimate",
  },
  {
    dir: 'reservation_max_outstanding_too_large',
    file: 'config.yaml',
    field: 'descriptors[0].descriptors[0].descriptors[0].reservation.max_outstanding',
    detail: 'must be at most 100000, got 100001 (line 9)',
  },
  {
    dir: 'reservation_estimate_too_large',
    file: 'config.yaml',
    field: 'descriptors[0].descriptors[0].descriptors[0].reservation.estimate',
    detail: "must be at most 1000000000 (Envoy's cap on hits_addend), got 1000000001 (line 9)",
  },
  {
    dir: 'reservation_without_limit',
    file: 'config.yaml',
    field: 'descriptors[0].descriptors[0].descriptors[0].reservation',
    detail: "needs a 'rate_limit' on the same descriptor (the budget or the in-flight maximum), and the descriptor has none (line 8)",
  },
];

describe('config errors: one fixture per error, exact message', () => {
  for (const c of cases) {
    it(c.dir, async () => {
      const errors = await configErrorsOf(() => loadConfigDir(fixture(c.dir)));
      expect(errors).toHaveLength(1);
      const err = errors[0]!;
      const file = fixture(c.dir, c.file);
      expect(err.file).toBe(file);
      expect(err.field).toBe(c.field);
      expect(err.detail).toBe(c.detail);
      expect(err.message).toBe(c.field ? `${file}: ${c.field}: ${c.detail}` : `${file}: ${c.detail}`);
      expect(err.code).toBe('ML_ERR_CONFIG');
      expect(err.transient).toBe(false);
    });
  }

  it('duplicate domain across files: the later file (by name) is blamed', async () => {
    const errors = await configErrorsOf(() => loadConfigDir(fixture('duplicate_domain')));
    expect(errors.map((e) => e.message)).toEqual([
      `${fixture('duplicate_domain', 'b.yaml')}: domain: duplicate domain 'test-domain' (line 2); already defined in ${fixture('duplicate_domain', 'a.yaml')} (MERGE_DOMAIN_CONFIG=true merges them)`,
    ]);
  });

  it('MERGE_DOMAIN_CONFIG=true: a descriptor defined in two files of one domain is still an error (upstream: not merged deeply)', async () => {
    const errors = await configErrorsOf(() => loadConfigDir(fixture('merge_domain_duplicate_descriptor'), { mergeDomainConfigs: true }));
    expect(errors.map((e) => e.message)).toEqual([
      `${fixture('merge_domain_duplicate_descriptor', 'b.yaml')}: descriptors[0]: duplicate descriptor composite key 'test-domain.key1_value1' (line 3); first defined at ${fixture('merge_domain_duplicate_descriptor', 'a.yaml')}:descriptors[0]`,
    ]);
  });

  it('several broken files: every error is collected into ConfigErrors, in file order', async () => {
    let thrown: unknown;
    try {
      await loadConfigDir(fixture('several_broken_files'));
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(ConfigErrors);
    const all = thrown as ConfigErrors;
    expect(all.errors.map((e) => e.message)).toEqual([
      `${fixture('several_broken_files', 'a.yaml')}: descriptors[0].rate_limit.unit: invalid rate limit unit 'century' (line 5); ${UNITS}`,
      `${fixture('several_broken_files', 'b.yaml')}: descriptors[0].key: descriptor has empty key (line 3)`,
    ]);
    expect(all.message).toBe(all.errors.map((e) => e.message).join('\n'));
  });

  it('an empty directory (only a dotfile) is an error naming the directory', async () => {
    const errors = await configErrorsOf(() => loadConfigDir(fixture('empty_dir')));
    expect(errors.map((e) => e.message)).toEqual([`${fixture('empty_dir')}: no *.yaml or *.yml files in the config directory`]);
  });

  it('a missing directory is an error naming the directory', async () => {
    const errors = await configErrorsOf(() => loadConfigDir(fixture('no_such_dir')));
    expect(errors.map((e) => e.message)).toEqual([`${fixture('no_such_dir')}: cannot read config directory: it does not exist`]);
  });

  it('reports every problem of one file, not just the first', async () => {
    const text = [
      'domain: d',
      'descriptors:',
      '  - key: a',
      '    rate_limit: {unit: parsec, requests_per_unit: -1, colour: red}',
      '  - key: ""',
    ].join('\n');
    const errors = await configErrorsOf(() => compileConfig([{ path: 'x.yaml', text }]));
    expect(errors.map((e) => e.message)).toEqual([
      "x.yaml: descriptors[0].rate_limit.colour: unknown key 'colour' (line 4); allowed here: unit, requests_per_unit, unlimited, name, replaces, algorithm, burst, unit_multiplier",
      `x.yaml: descriptors[0].rate_limit.unit: invalid rate limit unit 'parsec' (line 4); ${UNITS}`,
      "x.yaml: descriptors[0].rate_limit.requests_per_unit: must be a non-negative integer (at most 4294967295), got '-1' (line 4)",
      'x.yaml: descriptors[1].key: descriptor has empty key (line 5)',
    ]);
  });

  describe('more cases, inline', () => {
    const one = async (text: string): Promise<string> => {
      const errors = await configErrorsOf(() => compileConfig([{ path: 'x.yaml', text }]));
      expect(errors).toHaveLength(1);
      return errors[0]!.message;
    };

    it('unknown top-level key', async () => {
      expect(await one('domain: d\ndescriptor: []\n')).toBe(
        "x.yaml: descriptor: unknown key 'descriptor' (line 2); allowed here: domain, descriptors, failure_mode, resolution",
      );
    });

    it('unknown key inside a replaces entry', async () => {
      const text =
        'domain: d\ndescriptors:\n  - key: a\n    rate_limit: {unit: second, requests_per_unit: 1, replaces: [{name: b, id: 3}]}\n';
      expect(await one(text)).toBe("x.yaml: descriptors[0].rate_limit.replaces[0].id: unknown key 'id' (line 4); allowed here: name");
    });

    it('a valid upstream key at the wrong level is unknown there (upstream would silently ignore it)', async () => {
      const text = 'domain: d\ndescriptors:\n  - key: a\n    rate_limit: {unit: second, requests_per_unit: 1, shadow_mode: true}\n';
      expect(await one(text)).toBe(
        "x.yaml: descriptors[0].rate_limit.shadow_mode: unknown key 'shadow_mode' (line 4); allowed here: unit, requests_per_unit, unlimited, name, replaces, algorithm, burst, unit_multiplier",
      );
    });

    it('missing unit on a limited rate_limit', async () => {
      expect(await one('domain: d\ndescriptors:\n  - key: a\n    rate_limit:\n      requests_per_unit: 1\n')).toBe(
        `x.yaml: descriptors[0].rate_limit.unit: missing (line 5); ${UNITS}`,
      );
    });

    it('burst without an algorithm (default fixed_window)', async () => {
      expect(await one('domain: d\ndescriptors:\n  - key: a\n    rate_limit: {unit: second, requests_per_unit: 1, burst: 5}\n')).toBe(
        'x.yaml: descriptors[0].rate_limit.burst: is only valid with algorithm token_bucket, not the default fixed_window (line 4)',
      );
    });

    it('burst 0 on a token bucket', async () => {
      const text =
        'domain: d\ndescriptors:\n  - key: a\n    rate_limit: {algorithm: token_bucket, unit: second, requests_per_unit: 1, burst: 0}\n';
      expect(await one(text)).toBe(
        "x.yaml: descriptors[0].rate_limit.burst: must be an integer >= 1 (at most 4294967295), got '0' (line 4)",
      );
    });

    it('requests_per_unit above uint32', async () => {
      expect(await one('domain: d\ndescriptors:\n  - key: a\n    rate_limit: {unit: second, requests_per_unit: 4294967296}\n')).toBe(
        "x.yaml: descriptors[0].rate_limit.requests_per_unit: must be a non-negative integer (at most 4294967295), got '4294967296' (line 4)",
      );
    });

    it('a window too long for exact arithmetic', async () => {
      expect(
        await one('domain: d\ndescriptors:\n  - key: a\n    rate_limit: {unit: year, requests_per_unit: 1, unit_multiplier: 4000000}\n'),
      ).toBe('x.yaml: descriptors[0].rate_limit.unit_multiplier: window is too large for exact arithmetic (year x 4000000) (line 4)');
    });

    it('extension keys together with unlimited', async () => {
      expect(await one('domain: d\ndescriptors:\n  - key: a\n    rate_limit: {unlimited: true, algorithm: token_bucket}\n')).toBe(
        'x.yaml: descriptors[0].rate_limit.algorithm: must not be set when unlimited is true (line 4)',
      );
    });

    it('an empty rate_limits list', async () => {
      expect(await one('domain: d\ndescriptors:\n  - key: a\n    rate_limits: []\n')).toBe(
        'x.yaml: descriptors[0].rate_limits: must list at least one rate limit (line 4)',
      );
    });

    it('descriptors that is not a list', async () => {
      expect(await one('domain: d\ndescriptors: {key: a}\n')).toBe(
        'x.yaml: descriptors: must be a list of descriptors, got a mapping (line 2)',
      );
    });

    it('a domain that is a mapping', async () => {
      expect(await one('domain: {a: 1}\n')).toBe('x.yaml: domain: must be a string, got a mapping (line 1)');
    });

    it('an empty file', async () => {
      expect(await one('')).toBe('x.yaml: domain: missing; config file cannot have empty domain');
    });

    it('a file that is a plain string', async () => {
      expect(await one('hello\n')).toBe(
        "x.yaml: the top level must be a mapping with 'domain' and 'descriptors', got string 'hello' (line 1)",
      );
    });

    it('a duplicate between a key-only descriptor and key_value (upstream composite keys collide)', async () => {
      const text = 'domain: d\ndescriptors:\n  - key: a_b\n  - key: a\n    value: b\n';
      expect(await one(text)).toBe(
        "x.yaml: descriptors[1]: duplicate descriptor composite key 'd.a_b' (line 4); first defined at descriptors[0]",
      );
    });

    it('a duplicate nested descriptor names the nested path', async () => {
      const text = 'domain: d\ndescriptors:\n  - key: a\n    descriptors:\n      - key: b\n      - key: b\n';
      expect(await one(text)).toBe(
        "x.yaml: descriptors[0].descriptors[1]: duplicate descriptor composite key 'd.a.b' (line 6); first defined at descriptors[0].descriptors[0]",
      );
    });

    it('the same file listed twice', async () => {
      const errors = await configErrorsOf(() =>
        compileConfig([
          { path: 'x.yaml', text: 'domain: d' },
          { path: 'x.yaml', text: 'domain: e' },
        ]),
      );
      expect(errors.map((e) => e.message)).toEqual(['x.yaml: file listed more than once']);
    });

    it('an alias that refers to its own anchor is bounded, not a stack overflow', async () => {
      const msg = await one('domain: d\ndescriptors: &a\n  - key: x\n    descriptors: *a\n');
      expect(msg).toBe(
        'x.yaml: YAML document too complex at line 3, column 1: nesting deeper than 64 levels (or an alias that refers to itself)',
      );
    });

    it('an alias bomb is bounded', async () => {
      const lines = ['a0: &a0 [x, x, x, x, x, x, x, x, x, x]'];
      for (let i = 1; i < 10; i++)
        lines.push(
          `a${i}: &a${i} [${Array(10)
            .fill(`*a${i - 1}`)
            .join(', ')}]`,
        );
      expect(await one(lines.join('\n'))).toBe(
        'x.yaml: YAML document too complex at line 1, column 1: document expands to more than 100000 nodes (alias expansion)',
      );
    });
  });

  it('ConfigError carries the ML_ERR_CONFIG code and maps to FAILED_PRECONDITION', () => {
    const e = new ConfigError('f.yaml', 'domain', 'x');
    expect(e.grpcStatus).toBe(9);
  });
});
