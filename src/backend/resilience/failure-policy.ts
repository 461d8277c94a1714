import { CancelledError } from '../../errors.js';
import type { Backend } from '../../limiter/ports.js';
import {
  FAILURE_POLICIES,
  type CounterOp,
  type CounterOutcome,
  type DegradedReason,
  type EvaluateOptions,
  type EvaluateResult,
  type FailurePolicy,
} from '../../limiter/types.js';
import { OverloadedError } from '../../errors.js';
import { isCircuitOpenError, isTransientFailure } from './circuit-breaker.js';
import { scaleOpsForReplicas } from './local-limits.js';

/**
 * What to answer when the counter backend fails TRANSIENTLY (timeout, connection loss, failover,
 * open circuit, a request shed by admission control). Non-transient errors (script or argument
 * bugs) are never masked by any policy.
 *
 * - `deny`: rethrow the transient error; the gRPC layer answers UNAVAILABLE and Envoy's
 *   `failure_mode_deny` decides (envoyproxy/ratelimit's behaviour on a Redis error).
 * - `allow`: answer every op as allowed with its full quota, `degraded: 'circuit_open'` when the
 *   breaker failed fast, `'overloaded'` when admission control shed the request, else
 *   `'backend_error'`.
 * - `local`: evaluate on the in-process fallback with per-replica thresholds
 *   ({@link perReplicaShare}), `degraded: 'local_fallback'` (`'overloaded'` for a shed request).
 */
export { FAILURE_POLICIES, type FailurePolicy };

/**
 * What kind of backend error reached the policy. `circuit_open`: the breaker failed fast;
 * `overloaded`: admission control shed the request; in both the store was not called.
 */
export const BACKEND_ERROR_KINDS = ['transient', 'permanent', 'circuit_open', 'overloaded'] as const;
export type BackendErrorKind = (typeof BACKEND_ERROR_KINDS)[number];
/**
 * The outcomes of meshlimit_backend_errors_total: the kinds above, and `refund_failed`, which
 * never reaches the policy (the stores report a failed give-back of a denied request's charge;
 * the request was answered, the charge stays until its window moves on).
 */
export const BACKEND_ERROR_OUTCOMES = [...BACKEND_ERROR_KINDS, 'refund_failed'] as const;
export type BackendErrorOutcome = (typeof BACKEND_ERROR_OUTCOMES)[number];

export interface FailurePolicyOptions {
  /** Default policy, used by `evaluate` and for domains `perDomain` says nothing about. */
  readonly policy: FailurePolicy;
  /** Per-domain override; undefined falls back to `policy`. Called once per failed request only. */
  readonly perDomain?: ((domain: string) => FailurePolicy | undefined) | undefined;
  /** In-process backend (the memory backend) for the `local` policy. Owned: closed by `close()`. */
  readonly localFallback: Backend;
  /** Number of meshlimit replicas sharing the global limits (integer >= 1); divides thresholds for `local`. */
  readonly replicaCount: number;
}

/** Telemetry callbacks. They must not throw; if one does, the error is swallowed so telemetry can never change a decision. */
export interface FailurePolicyHooks {
  /** Once per degraded answer, with the policy that produced it. */
  onDegraded?(reason: DegradedReason, policy: FailurePolicy): void;
  /** Once per error that reached this wrapper, whatever the policy then does with it. */
  onError?(kind: BackendErrorKind, error: unknown): void;
}

/**
 * A {@link Backend} decorator applying an explicit {@link FailurePolicy} to transient failures of
 * `inner` (typically a CircuitBreakerBackend around the Redis backend).
 *
 * The policy of a call is `perDomain(options.domain) ?? policy`: the limiter passes the request's
 * domain in {@link EvaluateOptions.domain}, and the override is looked up only when the inner call
 * fails, so it costs nothing on the happy path. A successful inner call returns the inner result
 * object untouched (no `degraded`).
 *
 * Readiness follows the DEFAULT policy: `deny` is ready when `inner` is; `allow` is always ready
 * (it can always answer); `local` when either `inner` or the local fallback is. Reporting not
 * ready under `allow`/`local` would pull every replica out of the load balancer during an
 * outage and hand the decision to Envoy's failure_mode_deny, defeating the configured policy.
 *
 * `kind` is the inner backend's kind. `close()` closes both `inner` and `localFallback`.
 */
export class FailurePolicyBackend implements Backend {
  readonly kind: string;

  constructor(
    private readonly inner: Backend,
    private readonly opts: FailurePolicyOptions,
    private readonly hooks: FailurePolicyHooks = {},
  ) {
    if (!FAILURE_POLICIES.includes(opts.policy))
      throw new RangeError(`policy must be one of ${FAILURE_POLICIES.join(', ')}, got ${String(opts.policy)}`);
    if (!Number.isInteger(opts.replicaCount) || opts.replicaCount < 1) {
      throw new RangeError(`replicaCount must be an integer >= 1, got ${opts.replicaCount}`);
    }
    this.kind = inner.kind;
  }

  /** Evaluates with the policy of `options.domain` (its `failure_mode`, else the default). */
  async evaluate(ops: readonly CounterOp[], options: EvaluateOptions): Promise<EvaluateResult> {
    try {
      return await this.inner.evaluate(ops, options);
    } catch (err) {
      return this.onFailure(err, ops, options, options.domain === undefined ? this.opts.policy : this.policyFor(options.domain));
    }
  }

  /**
   * The policy applied to `domain`: its override, else the default. An override that is not a
   * known policy (a config bug the config schema should have caught) also yields the default.
   */
  policyFor(domain: string): FailurePolicy {
    const override = this.opts.perDomain?.(domain);
    return override !== undefined && FAILURE_POLICIES.includes(override) ? override : this.opts.policy;
  }

  isReady(): boolean {
    switch (this.opts.policy) {
      case 'deny':
        return this.inner.isReady();
      case 'allow':
        return true;
      case 'local':
        return this.inner.isReady() || this.opts.localFallback.isReady();
    }
  }

  async close(): Promise<void> {
    const results = await Promise.allSettled([this.inner.close(), this.opts.localFallback.close()]);
    for (const r of results) if (r.status === 'rejected') throw r.reason;
  }

  private async onFailure(
    err: unknown,
    ops: readonly CounterOp[],
    options: EvaluateOptions,
    policy: FailurePolicy,
  ): Promise<EvaluateResult> {
    // The caller went away before the store was asked: not a store error, nothing to answer.
    if (err instanceof CancelledError) throw err;
    if (!isTransientFailure(err)) {
      this.report(() => this.hooks.onError?.('permanent', err));
      throw err;
    }
    const kind = errorKind(err);
    this.report(() => this.hooks.onError?.(kind, err));
    switch (policy) {
      case 'deny':
        throw err;
      case 'allow': {
        const reason: DegradedReason = kind === 'circuit_open' ? 'circuit_open' : kind === 'overloaded' ? 'overloaded' : 'backend_error';
        this.report(() => this.hooks.onDegraded?.(reason, policy));
        return { denied: false, outcomes: ops.map(allowAll), degraded: reason };
      }
      case 'local': {
        const local = await this.opts.localFallback.evaluate(scaleOpsForReplicas(ops, this.opts.replicaCount), options);
        const reason: DegradedReason = kind === 'overloaded' ? 'overloaded' : 'local_fallback';
        this.report(() => this.hooks.onDegraded?.(reason, policy));
        return { denied: local.denied, outcomes: local.outcomes, degraded: reason };
      }
    }
  }

  private report(call: () => void): void {
    try {
      call();
    } catch {
      // Telemetry must not change a decision (see FailurePolicyHooks).
    }
  }
}

/** The kind of a transient failure: the breaker failing fast, admission shedding, or the store itself. */
function errorKind(err: unknown): BackendErrorKind {
  if (isCircuitOpenError(err)) return 'circuit_open';
  return err instanceof OverloadedError ? 'overloaded' : 'transient';
}

/**
 * The `allow` answer for one op: not over, full quota, no reset. "Full quota" is `burst`, which
 * equals the threshold for the window algorithms and is the bucket capacity for token bucket.
 */
function allowAll(op: CounterOp): CounterOutcome {
  return { overLimit: false, remaining: op.burst, resetMs: 0 };
}
