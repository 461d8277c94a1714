/**
 * Resilience decorators around a counter backend. Typical composition (outermost first):
 * `FailurePolicyBackend(CircuitBreakerBackend(redis), { localFallback: memory, ... })`.
 */
export {
  CIRCUIT_STATES,
  CircuitBreakerBackend,
  CircuitOpenError,
  isCircuitOpenError,
  isTransientFailure,
  type BreakerTransitionReason,
  type CircuitBreakerHooks,
  type CircuitBreakerOptions,
  type CircuitState,
  type StoreHealth,
} from './circuit-breaker.js';
export { AdmissionBackend, type AdmissionOptions } from './admission.js';
export { EventLoopDelay } from './event-loop-delay.js';
export {
  BACKEND_ERROR_KINDS,
  FAILURE_POLICIES,
  FailurePolicyBackend,
  type BackendErrorKind,
  type FailurePolicy,
  type FailurePolicyHooks,
  type FailurePolicyOptions,
} from './failure-policy.js';
export { perReplicaShare, scaleOpsForReplicas } from './local-limits.js';
