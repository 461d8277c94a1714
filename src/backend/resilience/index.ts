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
  type BackendErrorKind,
  type FailurePolicy,
  type FailurePolicyHooks,
  type FailurePolicyOptions,
} from './failure-policy.js';
export { perReplicaShare, scaleOpsForReplicas } from './local-limits.js';
