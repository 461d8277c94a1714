import { describe, expect, it } from 'vitest';
import { compileConfig } from '../../../src/config/compile.js';
import type { CompiledSnapshot } from '../../../src/config/compiled.js';
import type { RateLimitCheck, RequestDescriptor } from '../../../src/limiter/types.js';
import { DescriptorResolver, DomainResolver, UNKNOWN_ADDRESS } from '../../../src/resolve/resolver.js';
import type { KeySource } from '../../../src/resolve/key-source.js';
import type { ResolutionOutcome } from '../../../src/resolve/outcome.js';
import { AUDIENCE, ISSUER, makeKey, sign, TEST_SECRET, unsignedToken, type TestKey } from './tokens.js';

const NOW = 1_800_000_000_000;
const S = NOW / 1000;

const yaml = (resolution: string): string => `domain: edge
resolution:
${resolution}
descriptors:
  - key: company_id
    rate_limit: { unit: minute, requests_per_unit: 10 }
`;
const HS = `  jwt:
    issuer: ${ISSUER}
    audience: ${AUDIENCE}
    hs256_secret_env: TEST_JWT_SECRET`;

function compile(...files: [string, string][]): CompiledSnapshot {
  return compileConfig(files.map(([path, text]) => ({ path, text })));
}

interface Harness {
  resolver: DescriptorResolver;
  outcomes: ResolutionOutcome[];
  cache: boolean[];
  setNow(ms: number): void;
  setConfig(s: CompiledSnapshot): void;
  hs: TestKey;
}

async function harness(resolutionYaml = HS, env: Record<string, string> = { TEST_JWT_SECRET: TEST_SECRET }): Promise<Harness> {
  let snap = compile(['edge.yaml', yaml(resolutionYaml)], ['plain.yaml', 'domain: plain\ndescriptors: []\n']);
  let now = NOW;
  const outcomes: ResolutionOutcome[] = [];
  const cache: boolean[] = [];
  const resolver = new DescriptorResolver({
    config: { current: () => snap },
    now: () => now,
    env,
    observer: { onResolution: (_d, o) => outcomes.push(o), onCacheLookup: (_d, hit) => cache.push(hit) },
  });
  expect(await resolver.prepare()).toEqual([]);
  return { resolver, outcomes, cache, setNow: (ms) => (now = ms), setConfig: (s) => (snap = s), hs: await makeKey('HS256', 'h') };
}

const check = (...descriptors: [string, string][][]): RateLimitCheck => ({
  domain: 'edge',
  hitsAddend: 0,
  descriptors: descriptors.map((entries) => ({ entries: entries.map(([key, value]) => ({ key, value })) })),
});
const entriesOf = (c: RateLimitCheck): [string, string][][] =>
  c.descriptors.map((d) => d.entries.map((e) => [e.key, e.value] as [string, string]));
const resolveNow = async (r: DescriptorResolver, c: RateLimitCheck) => entriesOf(await r.resolve(c));

describe('DescriptorResolver: what each descriptor becomes', () => {
  it('a verified token becomes (company_id, claim) in its place; the fallback entry goes', async () => {
    const h = await harness();
    const tok = await sign(h.hs, { company_id: 'acme' }, { exp: S + 600 });
    expect(
      await resolveNow(
        h.resolver,
        check(
          [
            ['authorization', `Bearer ${tok}`],
            ['remote_address', '198.51.100.7'],
          ],
          [
            ['authorization', `Bearer ${tok}`],
            ['remote_address', '198.51.100.7'],
            ['path', '/api/v1/users'],
          ],
          [
            ['remote_address', '198.51.100.7'],
            ['authorization', `Bearer ${tok}`],
            ['path', '/x'],
          ],
          [['authorization', tok]],
        ),
      ),
    ).toEqual([
      [['company_id', 'acme']],
      [
        ['company_id', 'acme'],
        ['path', '/api/v1/users'],
      ],
      [
        ['company_id', 'acme'],
        ['path', '/x'],
      ],
      [['company_id', 'acme']],
    ]);
    expect(h.outcomes).toEqual(['verified', 'verified', 'verified', 'verified']);
  });

  it('a failed token becomes the client address in its place (own entry, else the request\'s, else "unknown")', async () => {
    const h = await harness();
    const forged = unsignedToken({ company_id: 'globex', iss: ISSUER, aud: AUDIENCE, exp: S + 600 });
    expect(
      await resolveNow(
        h.resolver,
        check(
          [
            ['authorization', `Bearer ${forged}`],
            ['remote_address', '198.51.100.7'],
            ['path', '/a'],
          ],
          [
            ['authorization', `Bearer ${forged}`],
            ['path', '/b'],
          ], // no own address: the request's
        ),
      ),
    ).toEqual([
      [
        ['remote_address', '198.51.100.7'],
        ['path', '/a'],
      ],
      [
        ['remote_address', '198.51.100.7'],
        ['path', '/b'],
      ],
    ]);
    expect(await resolveNow(h.resolver, check([['authorization', `Bearer ${forged}`]]))).toEqual([[['remote_address', UNKNOWN_ADDRESS]]]);
    expect(h.outcomes).toEqual(['fallback_invalid', 'fallback_invalid', 'fallback_invalid']);
  });

  it('missing and malformed tokens fall back too, with their own outcome', async () => {
    const h = await harness();
    expect(
      await resolveNow(
        h.resolver,
        check(
          [
            ['authorization', ''],
            ['remote_address', '2001:db8:1:2:3:4:5:6'],
          ],
          [
            ['authorization', 'Basic dXNlcjpwYXNz'],
            ['remote_address', '198.51.100.7'],
          ],
          [['remote_address', '198.51.100.8']],
        ),
      ),
    ).toEqual([[['remote_address', '2001:db8:1:2::/64']], [['remote_address', '198.51.100.7']], [['remote_address', '198.51.100.8']]]);
    expect(h.outcomes).toEqual(['fallback_missing', 'fallback_malformed', 'fallback_missing']);
  });

  it('descriptors with neither entry are untouched and not counted; a domain without resolution is the same object', async () => {
    const h = await harness();
    const c = check([['path', '/healthz']], [['company_id', 'raw']]);
    expect(h.resolver.resolve(c)).toBe(c);
    const plain: RateLimitCheck = { ...check([['authorization', 'Bearer a.b.c']]), domain: 'plain' };
    expect(h.resolver.resolve(plain)).toBe(plain);
    const unknownDomain: RateLimitCheck = { ...c, domain: 'nope' };
    expect(h.resolver.resolve(unknownDomain)).toBe(unknownDomain);
    expect(h.outcomes).toEqual([]);
  });

  it('keeps descriptor fields other than entries (limit override, hits_addend) and the request fields', async () => {
    const h = await harness();
    const tok = await sign(h.hs, { company_id: 'acme' }, { exp: S + 600 });
    const d: RequestDescriptor = {
      entries: [{ key: 'authorization', value: `Bearer ${tok}` }],
      hitsAddend: 3,
      limitOverride: { requestsPerUnit: 5, unit: 'second' },
    };
    const out = await h.resolver.resolve({ domain: 'edge', hitsAddend: 2, descriptors: [d] });
    expect(out).toEqual({
      domain: 'edge',
      hitsAddend: 2,
      descriptors: [
        { entries: [{ key: 'company_id', value: 'acme' }], hitsAddend: 3, limitOverride: { requestsPerUnit: 5, unit: 'second' } },
      ],
    });
  });

  it('the raw token appears nowhere in the resolved request', async () => {
    const h = await harness();
    const good = await sign(h.hs, { company_id: 'acme' }, { exp: S + 600 });
    const bad = await sign(await makeKey('HS256', 'h', 'x'.repeat(40)), { company_id: 'globex' }, { exp: S + 600 });
    const out = await h.resolver.resolve(
      check(
        [['authorization', `Bearer ${good}`]],
        [
          ['authorization', `Bearer ${bad}`],
          ['remote_address', '10.0.0.1'],
        ],
      ),
    );
    const text = JSON.stringify(out);
    for (const t of [good, bad, ...good.split('.'), ...bad.split('.')]) expect(text).not.toContain(t);
  });

  it('honours custom entry names, a custom claim and IPv4 masking', async () => {
    const h = await harness(`  token_entry: jwt
  claim: org
  resolved_entry: tenant
  fallback_entry: client_ip
  ipv4_prefix: 24
${HS}`);
    const tok = await sign(h.hs, { org: 'o-1', company_id: 'ignored' }, { exp: S + 600 });
    expect(
      await resolveNow(
        h.resolver,
        check(
          [
            ['jwt', tok],
            ['client_ip', '10.1.2.3'],
          ],
          [
            ['jwt', 'garbage'],
            ['client_ip', '10.1.2.3'],
          ],
        ),
      ),
    ).toEqual([[['tenant', 'o-1']], [['client_ip', '10.1.2.0/24']]]);
  });

  it('does no work for a request the limiter will reject (too many descriptors)', async () => {
    const h = await harness();
    const c = check(...Array.from({ length: 65 }, () => [['authorization', 'Bearer a.b.c'] as [string, string]]));
    expect(h.resolver.resolve(c)).toBe(c);
    expect(h.outcomes).toEqual([]);
  });
});

describe('DescriptorResolver: the verification cache', () => {
  it('a cached token resolves synchronously; the cache is keyed per token and valid until exp', async () => {
    const h = await harness();
    const tok = await sign(h.hs, { company_id: 'acme' }, { exp: S + 60 });
    const c = check([['authorization', `Bearer ${tok}`]]);
    const first = h.resolver.resolve(c);
    expect(first).toBeInstanceOf(Promise);
    expect(entriesOf(await first)).toEqual([[['company_id', 'acme']]]);
    const second = h.resolver.resolve(c);
    expect(second).not.toBeInstanceOf(Promise);
    expect(entriesOf(second as RateLimitCheck)).toEqual([[['company_id', 'acme']]]);
    h.setNow(NOW + 59_999);
    expect(h.resolver.resolve(c)).not.toBeInstanceOf(Promise);
    h.setNow(NOW + 60_000); // exp reached: verified again (still within the clock leeway), not cached
    const again = h.resolver.resolve(c);
    expect(again).toBeInstanceOf(Promise);
    expect(entriesOf(await again)).toEqual([[['company_id', 'acme']]]);
    h.setNow(NOW + 90_001); // beyond the 30 s leeway
    expect(entriesOf(await h.resolver.resolve(c))).toEqual([[['remote_address', UNKNOWN_ADDRESS]]]);
    expect(h.cache).toEqual([false, true, true, false, false]);
    expect(h.outcomes).toEqual(['verified', 'verified', 'verified', 'verified', 'fallback_expired']);
  });

  it('cache_ttl_seconds bounds how long a long-lived token is trusted without re-verification', async () => {
    const h = await harness(`  cache_ttl_seconds: 10\n${HS}`);
    const tok = await sign(h.hs, { company_id: 'acme' }, { exp: S + 3600 });
    const c = check([['authorization', `Bearer ${tok}`]]);
    await h.resolver.resolve(c);
    h.setNow(NOW + 9_999);
    expect(h.resolver.resolve(c)).not.toBeInstanceOf(Promise);
    h.setNow(NOW + 10_000);
    expect(h.resolver.resolve(c)).toBeInstanceOf(Promise);
  });

  it('cache_size: 0 verifies every time', async () => {
    const h = await harness(`  cache_size: 0\n${HS}`);
    const tok = await sign(h.hs, { company_id: 'acme' }, { exp: S + 3600 });
    const c = check([['authorization', `Bearer ${tok}`]]);
    await h.resolver.resolve(c);
    expect(h.resolver.resolve(c)).toBeInstanceOf(Promise);
  });

  it('failed tokens are never cached', async () => {
    const h = await harness();
    const c = check([['authorization', `Bearer ${unsignedToken({ company_id: 'x', exp: S + 60 })}`]]);
    await h.resolver.resolve(c);
    expect(h.resolver.resolve(c)).toBeInstanceOf(Promise);
    expect(h.cache).toEqual([false, false]);
  });

  it('concurrent requests with one new token share one verification', async () => {
    const hs = await makeKey('HS256', 'h');
    let lookups = 0;
    const keys: KeySource = {
      getKey: () => {
        lookups++;
        return Promise.resolve(new TextEncoder().encode(TEST_SECRET));
      },
      close: () => undefined,
    };
    const snap = compile(['edge.yaml', yaml(HS)]);
    const dr = new DomainResolver('edge', snap.domainOptions('edge')!.resolution!, keys, () => NOW, undefined);
    const tok = await sign(hs, { company_id: 'acme' }, { exp: S + 60 });
    const c = check(
      [['authorization', `Bearer ${tok}`]],
      [
        ['authorization', `Bearer ${tok}`],
        ['path', '/p'],
      ],
    );
    const all = await Promise.all([dr.resolve(c), dr.resolve(c), dr.resolve(c)]);
    expect(all.map(entriesOf)).toEqual(
      Array(3).fill([
        [['company_id', 'acme']],
        [
          ['company_id', 'acme'],
          ['path', '/p'],
        ],
      ]),
    );
    expect(lookups).toBe(1);
    expect(dr.cachedTokens).toBe(1);
  });

  it('a reload that keeps the resolution block keeps the cache; a changed block starts afresh', async () => {
    const h = await harness();
    const tok = await sign(h.hs, { company_id: 'acme' }, { exp: S + 600 });
    const c = check([['authorization', `Bearer ${tok}`]]);
    await h.resolver.resolve(c);
    const same = compile(['other-name.yaml', yaml(HS).replace('requests_per_unit: 10', 'requests_per_unit: 20')]);
    h.setConfig(same);
    expect(await h.resolver.prepare(same)).toEqual([]);
    expect(h.resolver.resolve(c)).not.toBeInstanceOf(Promise);
    const changed = compile(['edge.yaml', yaml(`  ipv4_prefix: 24\n${HS}`)]);
    h.setConfig(changed);
    expect(await h.resolver.prepare(changed)).toEqual([]);
    expect(h.resolver.resolve(c)).toBeInstanceOf(Promise);
  });
});

describe('DescriptorResolver.prepare', () => {
  it('reports a domain whose HS256 secret is unset, and that domain limits every token by address', async () => {
    const snap = compile(['edge.yaml', yaml(HS)]);
    const outcomes: ResolutionOutcome[] = [];
    const r = new DescriptorResolver({
      config: { current: () => snap },
      now: () => NOW,
      env: {},
      observer: { onResolution: (_d, o) => outcomes.push(o) },
    });
    const problems = await r.prepare();
    expect(problems).toEqual([
      {
        domain: 'edge',
        file: 'edge.yaml',
        field: 'resolution.jwt.hs256_secret_env',
        detail: 'environment variable TEST_JWT_SECRET is not set',
        message: 'edge.yaml: resolution.jwt.hs256_secret_env: environment variable TEST_JWT_SECRET is not set',
      },
    ]);
    const tok = await sign(await makeKey('HS256', 'h'), { company_id: 'acme' }, { exp: S + 60 });
    expect(
      await resolveNow(
        r,
        check([
          ['authorization', `Bearer ${tok}`],
          ['remote_address', '10.0.0.1'],
        ]),
      ),
    ).toEqual([[['remote_address', '10.0.0.1']]]);
    expect(outcomes).toEqual(['fallback_unknown_key']);
  });

  it('resolve() builds a domain lazily when prepare() has not seen it', async () => {
    const snap = compile(['edge.yaml', yaml(HS)]);
    const r = new DescriptorResolver({ config: { current: () => snap }, now: () => NOW, env: { TEST_JWT_SECRET: TEST_SECRET } });
    const tok = await sign(await makeKey('HS256', 'h'), { company_id: 'acme' }, { exp: S + 60 });
    expect(await resolveNow(r, check([['authorization', `Bearer ${tok}`]]))).toEqual([[['company_id', 'acme']]]);
  });
});
