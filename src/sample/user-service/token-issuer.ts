import { createPublicKey, randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import {
  calculateJwkThumbprint,
  createLocalJWKSet,
  exportJWK,
  generateKeyPair,
  importPKCS8,
  jwtVerify,
  SignJWT,
  type CryptoKey,
  type JWK,
  type JWTPayload,
} from 'jose';

/**
 * The sample service's token issuer: an ES256 key pair, either loaded from a PKCS#8 PEM file
 * (`signingKeyFile`, e.g. a Kubernetes Secret mounted as a file, so every replica and every
 * restart signs with the same key) or generated at start-up and never written anywhere; tokens
 * carrying `company_id`, and a JWKS that publishes the public keys, which is what meshlimit's
 * `resolution.jwt.jwks_url` points at. A loaded key's `kid` is its RFC 7638 thumbprint, so it is
 * the same in every replica.
 *
 * `rotate()` starts signing with a new key and keeps the previous public key in the JWKS, so
 * tokens issued before a rotation stay valid until they expire (the usual overlap).
 */
export interface TokenIssuer {
  readonly issuer: string;
  readonly audience: string;
  /** `kid` of the current signing key. */
  readonly kid: string;
  issue(claims: { readonly sub: string; readonly companyId: string }): Promise<{ readonly token: string; readonly expiresIn: number }>;
  jwks(): { keys: JWK[] };
  /** The verified payload, or undefined for any token this issuer did not sign (or that expired). */
  verify(token: string): Promise<JWTPayload | undefined>;
  rotate(): Promise<void>;
}

export interface TokenIssuerOptions {
  readonly issuer: string;
  readonly audience: string;
  /** Token lifetime in seconds (default 900). */
  readonly ttlSeconds?: number | undefined;
  /** Public keys kept in the JWKS (current + previous ones), default 2. */
  readonly keepKeys?: number | undefined;
  /** PKCS#8 PEM file holding the ES256 (P-256) private key; absent = generate one in memory. */
  readonly signingKeyFile?: string | undefined;
}

interface SigningKey {
  readonly kid: string;
  readonly privateKey: CryptoKey;
  readonly publicJwk: JWK;
}

async function newKey(): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const kid = randomUUID();
  return { kid, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' } };
}

/** Loads an ES256 signing key from a PKCS#8 PEM file; the error names the file, never the key. */
async function keyFromFile(file: string): Promise<SigningKey> {
  let pem: string;
  try {
    pem = await readFile(file, 'utf8');
  } catch (err) {
    throw new Error(`signing key file ${file}: cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  let privateKey: CryptoKey;
  let publicJwk: JWK;
  try {
    privateKey = await importPKCS8(pem, 'ES256');
    publicJwk = await exportJWK(createPublicKey(pem));
  } catch {
    throw new Error(`signing key file ${file}: not a PKCS#8 PEM ES256 (P-256) private key`);
  }
  const kid = await calculateJwkThumbprint(publicJwk);
  return { kid, privateKey, publicJwk: { ...publicJwk, kid, alg: 'ES256', use: 'sig' } };
}

export async function createTokenIssuer(options: TokenIssuerOptions): Promise<TokenIssuer> {
  const ttl = options.ttlSeconds ?? 900;
  const keep = options.keepKeys ?? 2;
  let keys: SigningKey[] = [options.signingKeyFile === undefined ? await newKey() : await keyFromFile(options.signingKeyFile)];
  let localSet = createLocalJWKSet({ keys: keys.map((k) => k.publicJwk) });
  return {
    issuer: options.issuer,
    audience: options.audience,
    get kid() {
      return keys[0]!.kid;
    },
    async issue({ sub, companyId }) {
      const current = keys[0]!;
      const token = await new SignJWT({ company_id: companyId })
        .setProtectedHeader({ alg: 'ES256', kid: current.kid, typ: 'JWT' })
        .setIssuer(options.issuer)
        .setAudience(options.audience)
        .setSubject(sub)
        .setIssuedAt()
        .setExpirationTime(`${ttl}s`)
        .sign(current.privateKey);
      return { token, expiresIn: ttl };
    },
    jwks() {
      return { keys: keys.map((k) => ({ ...k.publicJwk })) };
    },
    async verify(token) {
      try {
        const { payload } = await jwtVerify(token, localSet, {
          issuer: options.issuer,
          audience: options.audience,
          algorithms: ['ES256'],
          requiredClaims: ['exp'],
        });
        return payload;
      } catch {
        return undefined;
      }
    },
    async rotate() {
      keys = [await newKey(), ...keys].slice(0, keep);
      localSet = createLocalJWKSet({ keys: keys.map((k) => k.publicJwk) });
    },
  };
}
