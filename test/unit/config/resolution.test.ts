import { describe, expect, it } from 'vitest';
import { compileConfig } from '../../../src/config/compile.js';
import { loadConfigDir } from '../../../src/config/loader.js';
import { RESOLUTION_KEYS } from '../../../src/config/resolution-schema.js';
import { compileText, configErrorsOf, fixture } from './helpers.js';

/**
 * The domain-level `resolution:` block (meshlimit extension): one fixture per error with its
 * exact message, plus the parsed options and defaults.
 */
const JWT_KEYS_LIST =
  'issuer, audience, algorithms, jwks_url, jwks_file, hs256_secret_env, clock_tolerance_seconds, jwks_timeout_ms, jwks_refresh_seconds, jwks_cooldown_seconds';

const cases: readonly { dir: string; field: string; detail: string }[] = [
  {
    dir: 'resolution_unknown_key',
    field: 'resolution.tokenentry',
    detail: `unknown key 'tokenentry' (line 3); allowed here: ${RESOLUTION_KEYS.join(', ')}`,
  },
  {
    dir: 'resolution_missing_jwt',
    field: 'resolution.jwt',
    detail: 'missing (line 2); resolution needs a jwt block (issuer, audience and one key source)',
  },
  {
    dir: 'resolution_two_key_sources',
    field: 'resolution.jwt',
    detail: 'needs exactly one key source (jwks_url, jwks_file or hs256_secret_env); found jwks_url and hs256_secret_env (line 4)',
  },
  { dir: 'resolution_alg_none', field: 'resolution.jwt.algorithms[1]', detail: "'none' (unsigned tokens) is never accepted (line 6)" },
  {
    dir: 'resolution_hs256_with_jwks',
    field: 'resolution.jwt.algorithms[0]',
    detail: "algorithm 'HS256' is not allowed here (line 6); a JWKS holds public keys; use hs256_secret_env for HS256",
  },
  { dir: 'resolution_bad_prefix', field: 'resolution.ipv4_prefix', detail: "must be an integer from 0 to 32, got '33' (line 3)" },
  {
    dir: 'resolution_bad_url',
    field: 'resolution.jwt.jwks_url',
    detail: "must be an http:// or https:// URL, got 'ftp://users.example/jwks.json' (line 6)",
  },
  {
    dir: 'resolution_missing_audience',
    field: 'resolution.jwt.audience',
    detail: 'missing (line 4); tokens for any audience would be accepted',
  },
  {
    dir: 'resolution_secret_in_file',
    field: 'resolution.jwt.hs256_secret_env',
    detail:
      "must name an environment variable (letters, digits, '_'), got 'c2VjcmV0 but inline!' (line 6); the secret itself never goes in a config file",
  },
  {
    dir: 'resolution_same_entries',
    field: 'resolution.fallback_entry',
    detail: "must differ from token_entry (both 'authorization') (line 4)",
  },
  { dir: 'resolution_timeout_without_url', field: 'resolution.jwt.jwks_timeout_ms', detail: 'is only valid with jwks_url (line 7)' },
  { dir: 'resolution_not_a_mapping', field: 'resolution', detail: "must be a mapping with a 'jwt' block, got string 'jwt' (line 2)" },
];

describe('resolution config errors: one fixture per error, exact message', () => {
  for (const c of cases) {
    it(c.dir, async () => {
      const errors = await configErrorsOf(() => loadConfigDir(fixture(c.dir)));
      expect(errors.map((e) => e.message)).toEqual([`${fixture(c.dir, 'config.yaml')}: ${c.field}: ${c.detail}`]);
      expect(errors[0]!.field).toBe(c.field);
      expect(errors[0]!.code).toBe('ML_ERR_CONFIG');
    });
  }

  const one = async (text: string): Promise<string[]> =>
    (await configErrorsOf(() => compileConfig([{ path: 'x.yaml', text }]))).map((e) => e.message);
  const jwt = 'issuer: https://i\n    audience: a\n    jwks_url: https://i/jwks';

  it('more cases, inline', async () => {
    expect(await one(`domain: d\nresolution:\n  jwt:\n    ${jwt}\n    colour: red\n`)).toEqual([
      `x.yaml: resolution.jwt.colour: unknown key 'colour' (line 7); allowed here: ${JWT_KEYS_LIST}`,
    ]);
    expect(await one('domain: d\nresolution:\n  jwt:\n    issuer: https://i\n    audience: a\n')).toEqual([
      'x.yaml: resolution.jwt: needs exactly one key source (jwks_url, jwks_file or hs256_secret_env); none is set (line 4)',
    ]);
    expect(await one('domain: d\nresolution:\n  jwt:\n    issuer: ""\n    audience: []\n    jwks_url: https://i/jwks\n')).toEqual([
      'x.yaml: resolution.jwt.issuer: must not be empty (line 4)',
      'x.yaml: resolution.jwt.audience: must list at least one audience (line 5)',
    ]);
    expect(await one(`domain: d\nresolution:\n  jwt:\n    ${jwt}\n    algorithms: [ES256, XS999]\n`)).toEqual([
      "x.yaml: resolution.jwt.algorithms[1]: algorithm 'XS999' is not allowed here (line 7); expected one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA, Ed25519",
    ]);
    expect(
      await one(
        'domain: d\nresolution:\n  jwt:\n    issuer: https://i\n    audience: a\n    hs256_secret_env: S\n    algorithms: [RS256]\n    jwks_cooldown_seconds: 5\n',
      ),
    ).toEqual([
      'x.yaml: resolution.jwt.jwks_cooldown_seconds: is only valid with jwks_url or jwks_file (line 8)',
      "x.yaml: resolution.jwt.algorithms[0]: algorithm 'RS256' is not allowed here (line 7); hs256_secret_env verifies HS256 only",
    ]);
    expect(await one(`domain: d\nresolution:\n  claim: company_id\n  resolved_entry: authorization\n  jwt:\n    ${jwt}\n`)).toEqual([
      "x.yaml: resolution.resolved_entry: must differ from token_entry (both 'authorization') (line 4)",
    ]);
    expect(
      await one(
        `domain: d\nresolution:\n  token_entry: "has space"\n  ipv6_prefix: 64.5\n  cache_size: "10"\n  jwt:\n    ${jwt}\n    clock_tolerance_seconds: 301\n`,
      ),
    ).toEqual([
      "x.yaml: resolution.token_entry: must be a descriptor entry key (1 to 128 characters, no whitespace), got 'has space' (line 3)",
      "x.yaml: resolution.ipv6_prefix: must be an integer from 0 to 128, got '64.5' (line 4)",
      "x.yaml: resolution.cache_size: must be an integer from 0 to 1000000, got string '10' (line 5)",
      "x.yaml: resolution.jwt.clock_tolerance_seconds: must be an integer from 0 to 300, got '301' (line 10)",
    ]);
    expect(await one(`domain: d\nresolution:\n  jwt:\n    ${jwt}\n    jwks_url: https://other\n`)).toEqual([
      'x.yaml: resolution.jwt.jwks_url: duplicate key (line 7); first defined on line 6',
    ]);
  });

  it('two files of one merged domain may not both carry a resolution block', async () => {
    const block = `resolution:\n  jwt:\n    ${jwt}\n`;
    const errors = await configErrorsOf(() =>
      compileConfig(
        [
          { path: 'a.yaml', text: `domain: d\n${block}descriptors: [ { key: a } ]\n` },
          { path: 'b.yaml', text: `domain: d\n${block}descriptors: [ { key: b } ]\n` },
        ],
        { mergeDomainConfigs: true },
      ),
    );
    expect(errors.map((e) => e.message)).toEqual([
      "b.yaml: resolution: is already set for domain 'd' in a.yaml; define it in one file only",
    ]);
  });
});

describe('resolution config: parsed options', () => {
  it('fills in the defaults', () => {
    const s = compileText(
      'domain: edge\nresolution:\n  jwt:\n    issuer: https://users.example\n    audience: meshlimit\n    jwks_url: https://users.example/jwks\n',
    );
    expect(s.domainOptions('edge')).toEqual({
      failureMode: undefined,
      resolution: {
        file: 'test.yaml',
        line: 2,
        tokenEntry: 'authorization',
        claim: 'company_id',
        resolvedEntry: 'company_id',
        fallbackEntry: 'remote_address',
        ipv4Prefix: 32,
        ipv6Prefix: 64,
        cacheSize: 10_000,
        cacheTtlSeconds: 300,
        jwt: {
          issuer: 'https://users.example',
          audience: ['meshlimit'],
          algorithms: ['RS256', 'ES256'],
          clockToleranceSeconds: 30,
          keys: { kind: 'jwks_url', url: 'https://users.example/jwks', timeoutMs: 500, refreshSeconds: 300, cooldownSeconds: 10 },
        },
      },
    });
    expect(Object.isFrozen(s.domainOptions('edge')!.resolution!.jwt.keys)).toBe(true);
  });

  it('takes every option; a relative jwks_file is resolved against the config file directory', () => {
    const s = compileConfig([
      {
        path: '/etc/meshlimit/edge.yaml',
        text: `domain: edge
failure_mode: allow
resolution:
  token_entry: x-token
  claim: org_id
  resolved_entry: tenant
  fallback_entry: client_ip
  ipv4_prefix: 24
  ipv6_prefix: 48
  cache_size: 0
  cache_ttl_seconds: 60
  jwt:
    issuer: https://id.example
    audience: [edge, api]
    algorithms: [ES256, ES256, EdDSA]
    jwks_file: keys/jwks.json
    jwks_refresh_seconds: 30
    jwks_cooldown_seconds: 0
    clock_tolerance_seconds: 0
`,
      },
    ]);
    expect(s.domainOptions('edge')).toMatchObject({
      failureMode: 'allow',
      resolution: {
        tokenEntry: 'x-token',
        claim: 'org_id',
        resolvedEntry: 'tenant',
        fallbackEntry: 'client_ip',
        ipv4Prefix: 24,
        ipv6Prefix: 48,
        cacheSize: 0,
        cacheTtlSeconds: 60,
        jwt: {
          issuer: 'https://id.example',
          audience: ['edge', 'api'],
          algorithms: ['ES256', 'EdDSA'],
          clockToleranceSeconds: 0,
          keys: { kind: 'jwks_file', path: '/etc/meshlimit/keys/jwks.json', refreshSeconds: 30, cooldownSeconds: 0 },
        },
      },
    });
  });

  it('HS256: the default algorithm list is [HS256] and only the variable name is kept (and dumped)', () => {
    const s = compileText(
      'domain: edge\nresolution:\n  jwt:\n    issuer: i\n    audience: a\n    hs256_secret_env: EDGE_JWT_SECRET\ndescriptors: []\n',
    );
    expect(s.domainOptions('edge')!.resolution!.jwt).toMatchObject({
      algorithms: ['HS256'],
      keys: { kind: 'hs256_secret_env', env: 'EDGE_JWT_SECRET' },
    });
    expect(s.dump().domains[0]!.resolution!.jwt.keys).toEqual({ kind: 'hs256_secret_env', env: 'EDGE_JWT_SECRET' });
  });

  it('a merged domain keeps a resolution block from one file and failure_mode from another', () => {
    const s = compileConfig(
      [
        {
          path: 'a.yaml',
          text: 'domain: d\nresolution:\n  jwt:\n    issuer: i\n    audience: a\n    jwks_url: https://i/jwks\ndescriptors: [ { key: a } ]\n',
        },
        { path: 'b.yaml', text: 'domain: d\nfailure_mode: deny\ndescriptors: [ { key: b } ]\n' },
      ],
      { mergeDomainConfigs: true },
    );
    expect(s.domainOptions('d')!.failureMode).toBe('deny');
    expect(s.domainOptions('d')!.resolution!.file).toBe('a.yaml');
  });

  it('a domain without the block has no resolution (and its dump has no resolution key)', () => {
    const s = compileText('domain: plain\ndescriptors: []\n');
    expect(s.domainOptions('plain')!.resolution).toBeUndefined();
    expect('resolution' in s.dump().domains[0]!).toBe(false);
  });
});
