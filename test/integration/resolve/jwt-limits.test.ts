import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MemoryBackend } from '../../../src/backend/memory.js';
import { compileConfig } from '../../../src/config/compile.js';
import type { CompiledSnapshot } from '../../../src/config/compiled.js';
import { ConfigStore } from '../../../src/config/store.js';
import { RateLimiter } from '../../../src/limiter/limiter.js';
import { DescriptorResolver, type ResolutionOutcome } from '../../../src/resolve/index.js';
import {
  AUDIENCE,
  ISSUER,
  jwksOf,
  makeKey,
  sign,
  TEST_SECRET,
  unsignedToken,
  withHeader,
  withPayload,
  type TestKey,
} from '../../unit/resolve/tokens.js';
import { startJwksServer, type JwksServer } from './jwks-server.js';

/**
 * Resolution + limiter with real signed tokens (RS256, ES256, HS256 keys generated here) and a
 * real JWKS endpoint on loopback. The clock is fixed and moved by hand (token expiry, cache
 * validity, JWKS cooldown and refresh, counter windows), so every expectation is exact.
 *
 * Quotas: 3 requests per minute per company, 2 per minute per client address.
 */
const T0 = 1_800_000_000_000; // minute-aligned
const S0 = T0 / 1000;
const COMPANY_LIMIT = 3;

const descriptors = `descriptors:
  - key: company_id
    rate_limit: { unit: minute, requests_per_unit: ${COMPANY_LIMIT} }
  - key: remote_address
    rate_limit: { unit: minute, requests_per_unit: 2 }
`;
const jwksDomain = (domain: string, source: string): string => `domain: ${domain}
resolution:
  jwt:
    issuer: ${ISSUER}
    audience: ${AUDIENCE}
    algorithms: [RS256, ES256]
${source}
${descriptors}`;

interface World {
  now: number;
  outcomes: ResolutionOutcome[];
  jwksLoads: boolean[];
  /** One request as the gateway sends it: [(authorization, Bearer token), (remote_address, ip)]. */
  ask(domain: string, token: string | undefined, ip: string): Promise<{ code: string; rule: string | undefined; remaining: number }>;
  resolver: DescriptorResolver;
}

async function world(files: Record<string, string>, env: Record<string, string> = {}): Promise<World> {
  const snap: CompiledSnapshot = compileConfig(Object.entries(files).map(([p, text]) => ({ path: p, text })));
  const store = new ConfigStore<CompiledSnapshot>(snap);
  const w = { now: T0, outcomes: [] as ResolutionOutcome[], jwksLoads: [] as boolean[] } as World;
  w.resolver = new DescriptorResolver({
    config: store,
    now: () => w.now,
    env,
    observer: { onResolution: (_d, o) => w.outcomes.push(o), onJwksRefresh: (_d, ok) => w.jwksLoads.push(ok) },
  });
  expect(await w.resolver.prepare()).toEqual([]);
  const limiter = new RateLimiter(store, new MemoryBackend({ clock: () => w.now }), {
    keyPrefix: '',
    shadowMode: false,
    chargeOnDeny: false,
    now: () => w.now,
  });
  w.ask = async (domain, token, ip) => {
    const entries =
      token === undefined
        ? [{ key: 'remote_address', value: ip }]
        : [
            { key: 'authorization', value: `Bearer ${token}` },
            { key: 'remote_address', value: ip },
          ];
    const check = await w.resolver.resolve({ domain, hitsAddend: 0, descriptors: [{ entries }] });
    const d = await limiter.shouldRateLimit(check);
    const s = d.statuses[0]!;
    return { code: s.code, rule: s.ruleKey, remaining: s.remaining };
  };
  return w;
}

let jwks: JwksServer;
let rsa: TestKey; // company A signs with this
let ec: TestKey; // company B signs with this
let attacker: TestKey; // same kid as rsa, different key
beforeAll(async () => {
  [rsa, ec, attacker] = await Promise.all([makeKey('RS256', 'rsa-1'), makeKey('ES256', 'ec-1'), makeKey('RS256', 'rsa-1')]);
  jwks = await startJwksServer(jwksOf(rsa, ec));
});
afterAll(async () => {
  await jwks?.close();
});
afterEach(() => {
  jwks.mode = 'serve';
  jwks.setKeys(jwksOf(rsa, ec));
});

const urlSource = (extra = ''): string => `    jwks_url: ${'${URL}'}\n    jwks_timeout_ms: 300\n    jwks_cooldown_seconds: 10\n${extra}`;
const withUrl = (text: string): string => text.replace('${URL}', jwks.url);

describe('per-company quotas from verified tokens (JWKS over HTTP: RS256 and ES256)', () => {
  it('two companies have independent quotas; A exhausting its quota does not touch B', async () => {
    const w = await world({ 'edge.yaml': withUrl(jwksDomain('edge', urlSource())) });
    const a = await sign(rsa, { company_id: 'acme', sub: 'alice' }, { exp: S0 + 3600 });
    const a2 = await sign(rsa, { company_id: 'acme', sub: 'bob' }, { exp: S0 + 3600 }); // another user, same company
    const b = await sign(ec, { company_id: 'globex' }, { exp: S0 + 3600 });
    const seen = [];
    for (const t of [a, a2, a, a2]) seen.push(await w.ask('edge', t, '198.51.100.1'));
    expect(seen).toEqual([
      { code: 'OK', rule: 'edge.company_id', remaining: 2 },
      { code: 'OK', rule: 'edge.company_id', remaining: 1 },
      { code: 'OK', rule: 'edge.company_id', remaining: 0 },
      { code: 'OVER_LIMIT', rule: 'edge.company_id', remaining: 0 },
    ]);
    // B, from the same address: untouched by A.
    expect(await w.ask('edge', b, '198.51.100.1')).toEqual({ code: 'OK', rule: 'edge.company_id', remaining: 2 });
    // A from another address is still A (the quota follows the company, not the IP).
    expect(await w.ask('edge', a, '192.0.2.200')).toEqual({ code: 'OVER_LIMIT', rule: 'edge.company_id', remaining: 0 });
    // Next window: A is back.
    w.now += 60_000;
    expect(await w.ask('edge', a, '198.51.100.1')).toEqual({ code: 'OK', rule: 'edge.company_id', remaining: 2 });
    expect(w.outcomes.every((o) => o === 'verified')).toBe(true);
  });

  it("a forged token claiming B's company ID is limited as its client IP, never as B", async () => {
    const w = await world({ 'edge.yaml': withUrl(jwksDomain('edge', urlSource())) });
    const realB = await sign(ec, { company_id: 'globex' }, { exp: S0 + 3600 });
    const realA = await sign(rsa, { company_id: 'acme' }, { exp: S0 + 3600 });
    const claimsB = { company_id: 'globex', iss: ISSUER, aud: AUDIENCE, exp: S0 + 3600 };
    const forgeries: [string, string, ResolutionOutcome][] = [
      ['wrong key (same kid)', await sign(attacker, { company_id: 'globex' }, { exp: S0 + 3600 }), 'fallback_invalid'],
      ['alg: none', unsignedToken(claimsB), 'fallback_invalid'],
      ["A's token with B in the payload", withPayload(realA, claimsB), 'fallback_invalid'],
      ['expired', await sign(ec, { company_id: 'globex' }, { exp: S0 - 120 }), 'fallback_expired'],
      ['wrong audience', await sign(ec, { company_id: 'globex' }, { exp: S0 + 3600, aud: 'billing' }), 'fallback_invalid'],
      ['wrong issuer', await sign(ec, { company_id: 'globex' }, { exp: S0 + 3600, iss: 'https://evil.example' }), 'fallback_invalid'],
      ['HS256 signed with the public key (algorithm confusion)', withHeader(realB, { alg: 'HS256', kid: 'ec-1' }), 'fallback_invalid'],
      ['unknown kid', await sign(attacker, { company_id: 'globex' }, { exp: S0 + 3600, kid: 'rsa-9' }), 'fallback_unknown_key'],
    ];
    // Each forgery comes from its own address: the first request of each is charged to that IP.
    for (let i = 0; i < forgeries.length; i++) {
      const [what, token, outcome] = forgeries[i]!;
      const before = w.outcomes.length;
      expect(await w.ask('edge', token, `203.0.113.${i + 1}`), what).toEqual({ code: 'OK', rule: 'edge.remote_address', remaining: 1 });
      expect(w.outcomes.slice(before), what).toEqual([outcome]);
    }
    // One attacker address trying them all is stopped by its IP quota (2/min).
    const attempts = [];
    for (const [, token] of forgeries.slice(0, 4)) attempts.push((await w.ask('edge', token, '203.0.113.99')).code);
    expect(attempts).toEqual(['OK', 'OK', 'OVER_LIMIT', 'OVER_LIMIT']);
    // B's quota was never touched.
    expect(await w.ask('edge', realB, '198.51.100.2')).toEqual({ code: 'OK', rule: 'edge.company_id', remaining: COMPANY_LIMIT - 1 });
  });

  it('a request without a token is limited by its IP (and not the worse for it)', async () => {
    const w = await world({ 'edge.yaml': withUrl(jwksDomain('edge', urlSource())) });
    expect(await w.ask('edge', undefined, '198.51.100.3')).toEqual({ code: 'OK', rule: 'edge.remote_address', remaining: 1 });
    expect(await w.ask('edge', '', '198.51.100.3')).toEqual({ code: 'OK', rule: 'edge.remote_address', remaining: 0 });
    expect(await w.ask('edge', undefined, '198.51.100.3')).toEqual({ code: 'OVER_LIMIT', rule: 'edge.remote_address', remaining: 0 });
    expect(w.outcomes).toEqual(['fallback_missing', 'fallback_missing', 'fallback_missing']);
  });
});

describe('per-company quotas with an HS256 shared secret', () => {
  it('independent quotas, and a token signed with another secret is limited by IP', async () => {
    const hsDomain = `domain: edge-hs
resolution:
  jwt:
    issuer: ${ISSUER}
    audience: ${AUDIENCE}
    hs256_secret_env: EDGE_JWT_SECRET
${descriptors}`;
    const w = await world({ 'edge-hs.yaml': hsDomain }, { EDGE_JWT_SECRET: TEST_SECRET });
    const hs = await makeKey('HS256', 'h');
    const wrong = await makeKey('HS256', 'h', 'not-the-secret-but-long-enough-0123456789');
    const a = await sign(hs, { company_id: 'acme' }, { exp: S0 + 600 });
    const b = await sign(hs, { company_id: 'globex' }, { exp: S0 + 600 });
    for (let i = 0; i < COMPANY_LIMIT; i++) expect((await w.ask('edge-hs', a, '198.51.100.4')).code).toBe('OK');
    expect(await w.ask('edge-hs', a, '198.51.100.4')).toEqual({ code: 'OVER_LIMIT', rule: 'edge-hs.company_id', remaining: 0 });
    expect(await w.ask('edge-hs', b, '198.51.100.4')).toEqual({ code: 'OK', rule: 'edge-hs.company_id', remaining: 2 });
    expect(await w.ask('edge-hs', await sign(wrong, { company_id: 'globex' }, { exp: S0 + 600 }), '203.0.113.50')).toEqual({
      code: 'OK',
      rule: 'edge-hs.remote_address',
      remaining: 1,
    });
    expect(await w.ask('edge-hs', await sign(rsa, { company_id: 'globex' }, { exp: S0 + 600 }), '203.0.113.50')).toEqual({
      code: 'OK',
      rule: 'edge-hs.remote_address',
      remaining: 0,
    });
  });
});

describe('JWKS rotation and outages', () => {
  it('a rotation is picked up: a new kid verifies once the cooldown allows a refresh; a removed key stops verifying new tokens', async () => {
    const w = await world({ 'edge.yaml': withUrl(jwksDomain('edge', urlSource())) });
    const a = await sign(rsa, { company_id: 'acme' }, { exp: S0 + 3600 });
    expect((await w.ask('edge', a, '198.51.100.5')).rule).toBe('edge.company_id');
    const requestsBefore = jwks.requests;

    const next = await makeKey('ES256', 'ec-2');
    jwks.setKeys(jwksOf(ec, next)); // rotation: rsa-1 retired, ec-2 published
    const b2 = await sign(next, { company_id: 'globex' }, { exp: S0 + 3600 });
    // Within the cooldown since the last fetch: no refetch, the unknown kid falls back to the IP.
    w.now += 9_999;
    expect(await w.ask('edge', b2, '198.51.100.6')).toEqual({ code: 'OK', rule: 'edge.remote_address', remaining: 1 });
    expect(jwks.requests).toBe(requestsBefore);
    // Cooldown over: the unknown kid triggers one fetch and verifies.
    w.now += 1;
    expect(await w.ask('edge', b2, '198.51.100.6')).toEqual({ code: 'OK', rule: 'edge.company_id', remaining: 2 });
    expect(jwks.requests).toBe(requestsBefore + 1);
    // A's already verified token stays cached (until its cache TTL or exp)...
    expect((await w.ask('edge', a, '198.51.100.5')).rule).toBe('edge.company_id');
    // ...but a new token signed with the retired key no longer verifies.
    const aNew = await sign(rsa, { company_id: 'acme', sub: 'new' }, { exp: S0 + 3600 });
    expect(await w.ask('edge', aNew, '198.51.100.7')).toEqual({ code: 'OK', rule: 'edge.remote_address', remaining: 1 });
    expect(w.outcomes.slice(-2)).toEqual(['verified', 'fallback_unknown_key']);
  });

  it('a JWKS endpoint that hangs does not stall requests: cached keys keep working, unknown keys fall back to the IP', async () => {
    // A 1 s fetch bound: far longer than answering from cached keys takes, so "answered while
    // the refresh was still hanging" is an ordering fact, not a timing guess.
    const w = await world({
      'edge.yaml': withUrl(
        jwksDomain('edge', urlSource('    jwks_refresh_seconds: 60\n').replace('jwks_timeout_ms: 300', 'jwks_timeout_ms: 1000')),
      ),
    });
    const a = await sign(rsa, { company_id: 'acme' }, { exp: S0 + 3600 });
    expect((await w.ask('edge', a, '198.51.100.8')).rule).toBe('edge.company_id');

    jwks.mode = 'hang';
    w.now += 60_000; // keys are stale: the next verification starts a background refresh, which hangs
    const fresh = await sign(ec, { company_id: 'globex', sub: 'not-cached' }, { exp: S0 + 3600 });
    expect(await w.ask('edge', fresh, '198.51.100.9')).toEqual({ code: 'OK', rule: 'edge.company_id', remaining: 2 });
    // Answered from the cached keys while the refresh has not finished (no load reported yet)...
    expect(w.jwksLoads).toEqual([true]);
    // ...and that refresh is indeed hanging on the server.
    await jwks.hangStarted();
    expect(jwks.hanging).toBe(1);

    // An unknown kid waits for that same fetch, which is cut at jwks_timeout_ms; then it falls back.
    const aborted = jwks.nextHangAborted();
    const unknown = await sign(attacker, { company_id: 'globex' }, { exp: S0 + 3600, kid: 'rsa-9' });
    expect(await w.ask('edge', unknown, '203.0.113.60')).toEqual({ code: 'OK', rule: 'edge.remote_address', remaining: 1 });
    await aborted;
    expect(jwks.hanging).toBe(0);
    expect(w.jwksLoads).toEqual([true, false]);

    // Inside the cooldown: unknown kids fall back at once, with no fetch at all.
    const requests = jwks.requests;
    expect(await w.ask('edge', unknown, '203.0.113.60')).toEqual({ code: 'OK', rule: 'edge.remote_address', remaining: 0 });
    expect(jwks.requests).toBe(requests);
    // Known keys still verify new tokens.
    const fresh2 = await sign(rsa, { company_id: 'acme', sub: 'also-new' }, { exp: S0 + 3600 });
    expect((await w.ask('edge', fresh2, '198.51.100.8')).rule).toBe('edge.company_id');
  });

  it('a JWKS endpoint that refuses connections or answers 503: cached keys keep working; it recovers', async () => {
    const w = await world({ 'edge.yaml': withUrl(jwksDomain('edge', urlSource())) });
    const a = await sign(rsa, { company_id: 'acme' }, { exp: S0 + 3600 });
    expect((await w.ask('edge', a, '198.51.100.10')).rule).toBe('edge.company_id');
    const next = await makeKey('RS256', 'rsa-2');
    const c = await sign(next, { company_id: 'initech' }, { exp: S0 + 3600 });

    await jwks.stop();
    try {
      w.now += 10_000;
      expect((await w.ask('edge', c, '198.51.100.11')).rule).toBe('edge.remote_address'); // refused: fell back
      const fresh = await sign(rsa, { company_id: 'acme', sub: 'x' }, { exp: S0 + 3600 });
      expect((await w.ask('edge', fresh, '198.51.100.10')).rule).toBe('edge.company_id');
    } finally {
      await jwks.start();
    }
    jwks.mode = 'error';
    w.now += 10_000;
    expect((await w.ask('edge', c, '198.51.100.11')).rule).toBe('edge.remote_address'); // 503: fell back
    jwks.mode = 'serve';
    jwks.setKeys(jwksOf(rsa, ec, next));
    w.now += 10_000;
    expect((await w.ask('edge', c, '198.51.100.11')).rule).toBe('edge.company_id'); // back, and rotated
    expect(w.jwksLoads).toEqual([true, false, false, true]);
  });

  it('started while the JWKS endpoint is down: tokens fall back until it is up', async () => {
    await jwks.stop();
    let w: World;
    const a = await sign(rsa, { company_id: 'acme' }, { exp: S0 + 3600 });
    try {
      w = await world({ 'edge.yaml': withUrl(jwksDomain('edge', urlSource())) });
      expect((await w.ask('edge', a, '198.51.100.12')).rule).toBe('edge.remote_address');
    } finally {
      await jwks.start();
    }
    w.now += 10_000;
    expect((await w.ask('edge', a, '198.51.100.12')).rule).toBe('edge.company_id');
  });
});

describe('a JWKS file', () => {
  it('loads keys from the file and picks up a rewritten file after the cooldown', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'meshlimit-jwks-'));
    try {
      writeFileSync(path.join(dir, 'jwks.json'), JSON.stringify(jwksOf(rsa)));
      const w = await world({
        [path.join(dir, 'edge.yaml')]: jwksDomain('edge', '    jwks_file: jwks.json\n    jwks_cooldown_seconds: 5'),
      });
      const a = await sign(rsa, { company_id: 'acme' }, { exp: S0 + 3600 });
      const b = await sign(ec, { company_id: 'globex' }, { exp: S0 + 3600 });
      expect((await w.ask('edge', a, '198.51.100.13')).rule).toBe('edge.company_id');
      writeFileSync(path.join(dir, 'jwks.json'), JSON.stringify(jwksOf(rsa, ec)));
      expect((await w.ask('edge', b, '198.51.100.14')).rule).toBe('edge.remote_address');
      w.now += 5_000;
      expect((await w.ask('edge', b, '198.51.100.14')).rule).toBe('edge.company_id');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a missing or invalid JWKS file is a problem reported by prepare()', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'meshlimit-jwks-'));
    try {
      writeFileSync(path.join(dir, 'bad.json'), '{"keys": 3}');
      const snap = compileConfig([
        { path: path.join(dir, 'a.yaml'), text: jwksDomain('a', '    jwks_file: missing.json') },
        { path: path.join(dir, 'b.yaml'), text: jwksDomain('b', '    jwks_file: bad.json') },
      ]);
      const r = new DescriptorResolver({ config: { current: () => snap } });
      const problems = await r.prepare();
      expect(problems.map((p) => p.message)).toEqual([
        `${path.join(dir, 'a.yaml')}: resolution.jwt.jwks_file: cannot load ${path.join(dir, 'missing.json')}: ENOENT: no such file or directory, open '${path.join(dir, 'missing.json')}'`,
        `${path.join(dir, 'b.yaml')}: resolution.jwt.jwks_file: cannot load ${path.join(dir, 'bad.json')}: JSON Web Key Set malformed`,
      ]);
      r.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
