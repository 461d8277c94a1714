/** Descriptor resolution: a verified JWT's claim (company ID), else the client address. See resolver.ts. */
export {
  DescriptorResolver,
  DomainResolver,
  UNKNOWN_ADDRESS,
  type DescriptorResolverOptions,
  type ResolutionConfigSource,
  type ResolutionConfigView,
  type ResolutionProblem,
  type ResolverLogger,
  type ResolverObserver,
} from './resolver.js';
export { startResolver, type StartResolverOptions } from './start.js';
export { RESOLUTION_OUTCOMES, type FallbackOutcome, type ResolutionOutcome } from './outcome.js';
export { RESOLUTION_DEFAULTS, type JwtOptions, type KeySourceSpec, type ResolutionOptions } from '../config/resolution-schema.js';
export { maskAddress } from './ip.js';
export { extractToken, verifyToken, MAX_TOKEN_LENGTH, MAX_CLAIM_LENGTH, type VerifyResult } from './verifier.js';
export { createKeySource, UnknownKeyError, MIN_SECRET_BYTES, type KeySource } from './key-source.js';
export { TokenCache, tokenHash } from './token-cache.js';
