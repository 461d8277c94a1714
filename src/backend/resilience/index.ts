/**
 * Resilience decorators around a counter backend. Typical composition (outermost first):
 * `FailurePolicyBackend(CircuitBreakerBackend(redis), { localFallback: memory, ... })`.
 */
export {
  CircuitBreakerBackend,
  CircuitOpenError,
  isCircuitOpenError,
  isTransientFailure,
  type BreakerTransitionReason,
  type CircuitBreakerHooks,
  type CircuitBreakerOptions,
  type CircuitState,
} from './circuit-breaker.js';
export {
  FAILURE_POLICIES,
  FailurePolicyBackend,
  isPolicyAware,
  type BackendErrorKind,
  type FailurePolicy,
  type FailurePolicyHooks,
  type FailurePolicyOptions,
  type PolicyAwareBackend,
  type ResilientResult,
} from './failure-policy.js';
export { perReplicaShare, scaleOpsForReplicas } from './local-limits.js';
