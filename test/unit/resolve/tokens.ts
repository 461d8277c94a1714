import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';

/**
 * Real keys and real signed tokens for the resolution tests (no I/O). Keys are generated per
 * test run; nothing is checked in.
 */
export type TestAlg = 'RS256' | 'ES256' | 'HS256';

export interface TestKey {
  readonly alg: TestAlg;
  readonly kid: string;
  readonly signingKey: CryptoKey | Uint8Array;
  /** Public JWK (with kid, alg, use) for a JWKS; undefined for HS256. */
  readonly publicJwk: JWK | undefined;
}

/** A 32-byte+ shared secret for HS256 tests. */
export const TEST_SECRET = 'meshlimit-test-secret-0123456789abcdef';

export async function makeKey(alg: TestAlg, kid: string, secret = TEST_SECRET): Promise<TestKey> {
  if (alg === 'HS256') return { alg, kid, signingKey: new TextEncoder().encode(secret), publicJwk: undefined };
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = await exportJWK(publicKey);
  return { alg, kid, signingKey: privateKey, publicJwk: { ...jwk, kid, alg, use: 'sig' } };
}

export function jwksOf(...keys: TestKey[]): { keys: JWK[] } {
  return { keys: keys.map((k) => k.publicJwk!).filter(Boolean) };
}

export interface SignOptions {
  readonly iss?: string;
  readonly aud?: string;
  /** Unix seconds. */
  readonly exp?: number | undefined;
  readonly nbf?: number;
  /** Header kid override (default: the key's kid; null: no kid header). */
  readonly kid?: string | null;
}

export const ISSUER = 'https://users.example';
export const AUDIENCE = 'meshlimit-test';

export async function sign(key: TestKey, claims: JWTPayload, opts: SignOptions = {}): Promise<string> {
  const header: { alg: string; kid?: string; typ: string } = { alg: key.alg, typ: 'JWT' };
  if (opts.kid !== null) header.kid = opts.kid ?? key.kid;
  let jwt = new SignJWT(claims)
    .setProtectedHeader(header)
    .setIssuer(opts.iss ?? ISSUER)
    .setAudience(opts.aud ?? AUDIENCE);
  if (opts.exp !== undefined) jwt = jwt.setExpirationTime(opts.exp);
  if (opts.nbf !== undefined) jwt = jwt.setNotBefore(opts.nbf);
  return jwt.sign(key.signingKey);
}

const b64 = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url');

/** An unsigned token (`alg: none`), as an attacker would craft it. */
export function unsignedToken(payload: JWTPayload): string {
  return `${b64({ alg: 'none', typ: 'JWT' })}.${b64(payload)}.`;
}

/** `token` with its payload replaced (the signature no longer matches). */
export function withPayload(token: string, payload: JWTPayload): string {
  const [h, , s] = token.split('.');
  return `${h}.${b64(payload)}.${s}`;
}

/** `token` with its header replaced (e.g. a forged `kid` or `alg`). */
export function withHeader(token: string, header: object): string {
  const [, p, s] = token.split('.');
  return `${b64(header)}.${p}.${s}`;
}
