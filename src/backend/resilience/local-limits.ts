import type { CounterOp } from '../../limiter/types.js';

/**
 * One replica's share of a global limit, for the `local` failure policy: while the shared store is
 * down, each of `replicas` meshlimit instances enforces `ceil(value / replicas)` on its own
 * in-process counters, at least 1.
 *
 * Rounding trade-off: `ceil` (never `floor`) because a degraded mode should not punish clients
 * for our outage. Fleet-wide, at most `replicas * ceil(value / replicas) < value + replicas`
 * requests pass per window, i.e. fewer than `replicas` extra; `floor` would under-admit by up to
 * as many and turn every limit below `replicas` into 0 (deny all). The floor of 1 has the same
 * motive. A value of 0 (a deliberate "deny everything" limit) stays 0.
 *
 * The share assumes the load balancer spreads a client's requests evenly; a client pinned to
 * one replica gets only 1/replicas of its quota until the store is back.
 */
export function perReplicaShare(value: number, replicas: number): number {
  if (value <= 0) return value;
  return Math.max(1, Math.ceil(value / replicas));
}

/**
 * The ops with `threshold` and `burst` replaced by their per-replica share (keys, windows, hits
 * and `enforce` unchanged). With one replica the input array is returned as is.
 */
export function scaleOpsForReplicas(ops: readonly CounterOp[], replicas: number): readonly CounterOp[] {
  if (replicas === 1) return ops;
  return ops.map((op) => ({ ...op, threshold: perReplicaShare(op.threshold, replicas), burst: perReplicaShare(op.burst, replicas) }));
}
