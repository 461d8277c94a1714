import { errors, jwtVerify, type JWTPayload } from 'jose';
import { UnknownKeyError, type KeySource } from './key-source.js';
import type { FallbackOutcome } from './outcome.js';
import type { JwtOptions } from '../config/resolution-schema.js';

/**
 * One token in, one classified result out. jose does the cryptography and the claim checks; this
 * module decides which failures are which outcome and what a usable claim value is.
 *
 * Checks, in jose's order: compact form; `alg` in the configured list (so `none` and algorithm
 * confusion fail before any key is looked up); key by `kid`; signature; `iss`; `aud`; `exp`
 * (required) and `nbf` with `clockToleranceSeconds` of leeway, against the injected clock.
 */

/** Longest token considered (Envoy's default max request headers size is 60 KiB; real JWTs are < 2 KiB). */
export const MAX_TOKEN_LENGTH = 8192;
/** Longest claim value used as a descriptor value. */
export const MAX_CLAIM_LENGTH = 256;

export type VerifyResult =
  { readonly outcome: 'verified'; readonly value: string; readonly expiresAtMs: number } | { readonly outcome: FallbackOutcome };

const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
const BEARER = /^bearer +/i;

/**
 * The compact JWT in an entry value: `Bearer <jwt>` (scheme in any case) or a bare `<jwt>`.
 * Returns 'missing' for an empty value (or a bare `Bearer`), 'malformed' for anything else.
 */
export function extractToken(entryValue: string): string | 'missing' | 'malformed' {
  const v = entryValue.trim();
  if (v === '' || /^bearer$/i.test(v)) return 'missing';
  if (v.length > MAX_TOKEN_LENGTH + 7) return 'malformed';
  const token = BEARER.test(v) ? v.replace(BEARER, '') : v;
  return token.length <= MAX_TOKEN_LENGTH && COMPACT_JWS.test(token) ? token : 'malformed';
}

/** Verifies `token` and reads `claim`. Never rejects. */
export async function verifyToken(token: string, jwt: JwtOptions, claim: string, keys: KeySource, nowMs: number): Promise<VerifyResult> {
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(token, (header) => keys.getKey(header), {
      issuer: jwt.issuer,
      audience: [...jwt.audience],
      algorithms: [...jwt.algorithms],
      clockTolerance: jwt.clockToleranceSeconds,
      requiredClaims: ['exp'],
      currentDate: new Date(nowMs),
    }));
  } catch (err) {
    return { outcome: classify(err) };
  }
  const raw = payload[claim];
  let value: string | undefined;
  if (typeof raw === 'string') value = raw;
  else if (typeof raw === 'number' && Number.isSafeInteger(raw)) value = String(raw);
  if (value === undefined || value === '' || value.length > MAX_CLAIM_LENGTH) return { outcome: 'fallback_no_claim' };
  return { outcome: 'verified', value, expiresAtMs: (payload.exp as number) * 1000 };
}

function classify(err: unknown): FallbackOutcome {
  if (err instanceof errors.JWTExpired) return 'fallback_expired';
  if (err instanceof UnknownKeyError) return 'fallback_unknown_key';
  if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid) return 'fallback_malformed';
  // Signature, algorithm, issuer, audience, nbf, missing exp, unusable key: the token is not
  // trustworthy. Anything unexpected lands here too: a token we cannot verify is never trusted.
  return 'fallback_invalid';
}
