import type { CounterOp, EvaluateResult } from '../types.js';
import { ALGORITHM_MATH } from './index.js';

/**
 * The reference semantics of a refund, mirrored by lua/refund.lua: gives back what an admitted
 * evaluation (see evaluate.ts) charged at `chargeNow`, for the ops that were charged (not over,
 * hits > 0; the caller picks them).
 *
 * Ops run in order against a working copy, so two ops on one key each give back their own hits.
 * Returns the changed keys with their new stored states (byte strings); a refund keeps each key's TTL (the Lua
 * twin writes with SET ... KEEPTTL) and never creates a missing key.
 *
 * Only a backend that splits one request over several atomic calls needs this (the Redis
 * Cluster backend, one call per hash slot): it charges every group at once and refunds the
 * charged groups when another group denies the request. See AlgorithmMath.refund for why a
 * refund can under-admit briefly but never over-admits.
 */
export function refundOps(
  ops: readonly CounterOp[],
  chargeNow: number,
  read: (key: string) => string | null | undefined,
): Map<string, string> {
  const working = new Map<string, unknown>();
  const writes = new Map<string, string>();
  for (const op of ops) {
    const math = ALGORITHM_MATH[op.algorithm];
    const state = working.has(op.key) ? working.get(op.key) : math.decode(read(op.key));
    const next = math.refund(state, { windowMs: op.windowMs, threshold: op.threshold, burst: op.burst, hits: op.hits }, chargeNow);
    if (next !== undefined) {
      working.set(op.key, next);
      writes.set(op.key, math.encode(next));
    } else if (!working.has(op.key)) {
      working.set(op.key, state);
    }
  }
  return writes;
}

/**
 * The ops an admitted evaluation charged, which are the ops its refund gives back: those with
 * hits and not over their limit (an over-limit op, a shadow one included, charges nothing;
 * evaluate.ts). For a denied evaluation without chargeOnDeny nothing was charged: the caller does
 * not ask.
 */
export function chargedOps(ops: readonly CounterOp[], result: Pick<EvaluateResult, 'outcomes'>): CounterOp[] {
  return ops.filter((op, k) => op.hits > 0 && result.outcomes[k]?.overLimit === false);
}
