import { CompactSign } from 'jose';
import { describe, expect, it } from 'vitest';
import { createKeySource } from '../../../src/resolve/key-source.js';
import type { JwtOptions } from '../../../src/config/resolution-schema.js';
import { extractToken, MAX_TOKEN_LENGTH, verifyToken } from '../../../src/resolve/verifier.js';
import { AUDIENCE, ISSUER, jwksOf, makeKey, sign, TEST_SECRET, unsignedToken, withHeader, withPayload, type TestKey } from './tokens.js';

const NOW = 1_800_000_000_000; // Unix ms
const S = NOW / 1000;

describe('extractToken', () => {
  const jwt = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln';
  it('accepts Bearer (any case, extra spaces) and bare compact JWTs', () => {
    expect(extractToken(`Bearer ${jwt}`)).toBe(jwt);
    expect(extractToken(`bearer   ${jwt}`)).toBe(jwt);
    expect(extractToken(`BEARER ${jwt}`)).toBe(jwt);
    expect(extractToken(` ${jwt} `)).toBe(jwt);
    expect(extractToken('eyJhbGciOiJub25lIn0.eyJ4IjoxfQ.')).toBe('eyJhbGciOiJub25lIn0.eyJ4IjoxfQ.'); // alg none shape: verified (and rejected) later
  });
  it('empty values and a bare scheme are missing', () => {
    expect(extractToken('')).toBe('missing');
    expect(extractToken('   ')).toBe('missing');
    expect(extractToken('Bearer')).toBe('missing');
    expect(extractToken('Bearer   ')).toBe('missing');
  });
  it('other schemes, wrong shapes and oversize tokens are malformed', () => {
    expect(extractToken('Basic dXNlcjpwYXNz')).toBe('malformed');
    expect(extractToken('Bearer a.b')).toBe('malformed');
    expect(extractToken('Bearer a.b.c.d')).toBe('malformed');
    expect(extractToken('Bearer a b.c.d')).toBe('malformed');
    expect(extractToken(`Bearer ${'a'.repeat(MAX_TOKEN_LENGTH)}.b.c`)).toBe('malformed');
    expect(extractToken('Bearer a+b.c.d')).toBe('malformed'); // base64, not base64url
  });
});

const jwtOptions = (keys: JwtOptions['keys'], algorithms: string[]): JwtOptions => ({
  issuer: ISSUER,
  audience: [AUDIENCE],
  algorithms,
  clockToleranceSeconds: 30,
  keys,
});

async function jwksSource(...keys: TestKey[]) {
  const body = JSON.stringify(jwksOf(...keys));
  const { source } = await createKeySource(
    { kind: 'jwks_url', url: 'http://jwks.invalid/', timeoutMs: 500, refreshSeconds: 300, cooldownSeconds: 10 },
    { now: () => NOW, fetch: async () => new Response(body, { status: 200 }), env: {} },
  );
  return source;
}

describe.each(['RS256', 'ES256'] as const)('verifyToken with a %s JWKS', (alg) => {
  it('classifies every way a token can fail', async () => {
    const key = await makeKey(alg, 'k1');
    const other = await makeKey(alg, 'k1'); // same kid, different key: a forgery
    const source = await jwksSource(key);
    const opts = jwtOptions({ kind: 'jwks_url', url: 'http://jwks.invalid/', timeoutMs: 500, refreshSeconds: 300, cooldownSeconds: 10 }, [
      'RS256',
      'ES256',
    ]);
    const v = (token: string, claim = 'company_id') => verifyToken(token, opts, claim, source, NOW);
    const good = await sign(key, { company_id: 'acme' }, { exp: S + 60 });

    expect(await v(good)).toEqual({ outcome: 'verified', value: 'acme', expiresAtMs: (S + 60) * 1000 });
    expect(await v(await sign(key, { company_id: 42 }, { exp: S + 60 }))).toEqual({
      outcome: 'verified',
      value: '42',
      expiresAtMs: (S + 60) * 1000,
    });
    expect(await v(await sign(other, { company_id: 'globex' }, { exp: S + 60 }))).toEqual({ outcome: 'fallback_invalid' });
    expect(await v(withPayload(good, { company_id: 'globex', iss: ISSUER, aud: AUDIENCE, exp: S + 60 }))).toEqual({
      outcome: 'fallback_invalid',
    });
    expect(await v(unsignedToken({ company_id: 'globex', iss: ISSUER, aud: AUDIENCE, exp: S + 60 }))).toEqual({
      outcome: 'fallback_invalid',
    });
    expect(await v(withHeader(good, { alg: 'none', kid: 'k1' }))).toEqual({ outcome: 'fallback_invalid' });
    expect(await v(withHeader(good, { alg: 'HS256', kid: 'k1' }))).toEqual({ outcome: 'fallback_invalid' }); // algorithm confusion
    expect(await v(await sign(key, { company_id: 'acme' }, { exp: S - 31 }))).toEqual({ outcome: 'fallback_expired' });
    expect(await v(await sign(key, { company_id: 'acme' }, { exp: S - 29 }))).toMatchObject({ outcome: 'verified' }); // within the 30 s leeway
    expect(await v(await sign(key, { company_id: 'acme' }, { exp: S + 60, aud: 'another-service' }))).toEqual({
      outcome: 'fallback_invalid',
    });
    expect(await v(await sign(key, { company_id: 'acme' }, { exp: S + 60, iss: 'https://evil.example' }))).toEqual({
      outcome: 'fallback_invalid',
    });
    expect(await v(await sign(key, { company_id: 'acme' }, { exp: S + 60, nbf: S + 31 }))).toEqual({ outcome: 'fallback_invalid' });
    expect(await v(await sign(key, { company_id: 'acme' }))).toEqual({ outcome: 'fallback_invalid' }); // no exp
    expect(await v(await sign(key, { company_id: 'acme' }, { exp: S + 60, kid: 'k2' }))).toEqual({ outcome: 'fallback_unknown_key' });
    expect(await v(await sign(key, { sub: 'x' }, { exp: S + 60 }))).toEqual({ outcome: 'fallback_no_claim' });
    expect(await v(await sign(key, { company_id: '' }, { exp: S + 60 }))).toEqual({ outcome: 'fallback_no_claim' });
    expect(await v(await sign(key, { company_id: { id: 1 } }, { exp: S + 60 }))).toEqual({ outcome: 'fallback_no_claim' });
    expect(await v(await sign(key, { company_id: 'x'.repeat(257) }, { exp: S + 60 }))).toEqual({ outcome: 'fallback_no_claim' });
    expect(await v(await sign(key, { org: 'o1' }, { exp: S + 60 }), 'org')).toEqual({
      outcome: 'verified',
      value: 'o1',
      expiresAtMs: (S + 60) * 1000,
    });
    // A header that is not JSON fails before any key lookup; a payload that is not a JSON object
    // is only noticed once the signature checks out (jose verifies the signature first).
    expect(await v('bm90IGpzb24.eyJ4IjoxfQ.c2ln')).toEqual({ outcome: 'fallback_malformed' });
    const notJson = await new CompactSign(new TextEncoder().encode('not json')).setProtectedHeader({ alg, kid: 'k1' }).sign(key.signingKey);
    expect(await v(notJson)).toEqual({ outcome: 'fallback_malformed' });
    expect(await v('eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.bm90IGpzb24.c2ln')).toEqual({
      outcome: alg === 'RS256' ? 'fallback_invalid' : 'fallback_unknown_key',
    });
  });
});

describe('verifyToken with an HS256 secret', () => {
  it('verifies with the secret from the environment and rejects other secrets and algorithms', async () => {
    const { source, problem } = await createKeySource(
      { kind: 'hs256_secret_env', env: 'SECRET' },
      { now: () => NOW, fetch, env: { SECRET: TEST_SECRET } },
    );
    expect(problem).toBeUndefined();
    const opts = jwtOptions({ kind: 'hs256_secret_env', env: 'SECRET' }, ['HS256']);
    const key = await makeKey('HS256', 'h');
    const wrong = await makeKey('HS256', 'h', 'another-secret-of-sufficient-length-xyz');
    const rsa = await makeKey('RS256', 'h');
    expect(await verifyToken(await sign(key, { company_id: 'acme' }, { exp: S + 60 }), opts, 'company_id', source, NOW)).toMatchObject({
      outcome: 'verified',
      value: 'acme',
    });
    expect(await verifyToken(await sign(wrong, { company_id: 'acme' }, { exp: S + 60 }), opts, 'company_id', source, NOW)).toEqual({
      outcome: 'fallback_invalid',
    });
    expect(await verifyToken(await sign(rsa, { company_id: 'acme' }, { exp: S + 60 }), opts, 'company_id', source, NOW)).toEqual({
      outcome: 'fallback_invalid',
    });
  });

  it('an unset or short secret is a problem, and every token then has no key', async () => {
    const unset = await createKeySource({ kind: 'hs256_secret_env', env: 'NOPE' }, { now: () => NOW, fetch, env: {} });
    expect(unset.problem).toBe('environment variable NOPE is not set');
    const short = await createKeySource({ kind: 'hs256_secret_env', env: 'S' }, { now: () => NOW, fetch, env: { S: 'too-short' } });
    expect(short.problem).toBe('environment variable S is shorter than 32 bytes');
    const opts = jwtOptions({ kind: 'hs256_secret_env', env: 'S' }, ['HS256']);
    const key = await makeKey('HS256', 'h', 'too-short');
    expect(await verifyToken(await sign(key, { company_id: 'acme' }, { exp: S + 60 }), opts, 'company_id', short.source, NOW)).toEqual({
      outcome: 'fallback_unknown_key',
    });
  });
});
