/**
 * What happened to one descriptor's token, the `outcome` label of
 * `meshlimit_resolutions_total`. A fixed set: never a token, a claim value or an address.
 *
 * - `verified`: the token entry became (resolved_entry, claim value);
 * - `fallback_missing`: no token (no token entry, or an empty one) and a client address to use;
 * - `fallback_malformed`: not `Bearer <compact JWT>`, or undecodable;
 * - `fallback_invalid`: bad signature, algorithm not allowed (including `none`), wrong issuer or
 *   audience, not yet valid, no `exp`;
 * - `fallback_expired`: past its `exp` (beyond the clock tolerance);
 * - `fallback_unknown_key`: no key for its `kid` (even after a permitted JWKS refresh), or no key
 *   configured (HS256 secret variable unset);
 * - `fallback_no_claim`: verified, but the claim is absent, empty, too long or not a string/integer.
 */
export const RESOLUTION_OUTCOMES = [
  'verified',
  'fallback_missing',
  'fallback_malformed',
  'fallback_invalid',
  'fallback_expired',
  'fallback_unknown_key',
  'fallback_no_claim',
] as const;
export type ResolutionOutcome = (typeof RESOLUTION_OUTCOMES)[number];
export type FallbackOutcome = Exclude<ResolutionOutcome, 'verified'>;
