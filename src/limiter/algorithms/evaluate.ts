import type { CounterOp, CounterOutcome, EvaluateResult } from '../../backend/backend.js';
import { ALGORITHM_MATH } from './index.js';

/**
 * The reference semantics of one request's evaluation, shared by the memory backend and mirrored
 * by the Lua driver (lua/evaluate.lua):
 *
 * 1. Ops run in order against a working copy of the state, so two ops on one key see each other.
 * 2. An op that is over its limit is not applied to the working copy (unless chargeOnDeny, where
 *    window counters are charged anyway, as envoyproxy/ratelimit does).
 * 3. The request is denied when any op with `enforce` is over its limit.
 * 4. Denied and not chargeOnDeny: nothing is written. Otherwise every changed key is written.
 * 5. A written key keeps its stored TTL (`keepTtl`) when every step that changed it said its
 *    input was stored in the current window (StepResult.keepTtl); otherwise it gets the TTL of
 *    the last step that changed it. (A second step on a key sees the first step's working copy,
 *    never stored, hence the AND: one step on a stale window re-arms the TTL.)
 *
 * `read` returns the stored string for a key; `writes` maps each key to write to its encoded
 * state, its TTL and whether the stored TTL is kept instead.
 */
export function evaluateOps(
  ops: readonly CounterOp[],
  now: number,
  chargeOnDeny: boolean,
  read: (key: string) => string | null | undefined,
): { result: EvaluateResult; writes: Map<string, { value: string; ttlMs: number; keepTtl: boolean }> } {
  const working = new Map<string, unknown>();
  const writes = new Map<string, { value: string; ttlMs: number; keepTtl: boolean }>();
  const outcomes: CounterOutcome[] = [];
  let denied = false;
  for (const op of ops) {
    const math = ALGORITHM_MATH[op.algorithm];
    const state = working.has(op.key) ? working.get(op.key) : math.decode(read(op.key));
    const r = math.step(
      state,
      { windowMs: op.windowMs, threshold: op.threshold, burst: op.burst, hits: op.hits, chargeOnOver: chargeOnDeny },
      now,
    );
    if (r.over && op.enforce) denied = true;
    if (r.changed) {
      working.set(op.key, r.next);
      const earlier = writes.get(op.key);
      writes.set(op.key, { value: math.encode(r.next), ttlMs: r.ttlMs, keepTtl: r.keepTtl && (earlier === undefined || earlier.keepTtl) });
    }
    outcomes.push({ overLimit: r.over, remaining: r.remaining, resetMs: r.resetMs });
  }
  if (denied && !chargeOnDeny) writes.clear();
  return { result: { denied, outcomes }, writes };
}
