import type { CounterOp, CounterOutcome, EvaluateResult } from '../types.js';
import type { AlgorithmMath } from './algorithm.js';
import { ALGORITHM_MATH } from './index.js';

/**
 * Where {@link evaluateOps} reads state and writes its result: the memory backend's counters,
 * or a map of stored strings ({@link evaluateStored}).
 */
export interface StateStore {
  /**
   * The current state of `key` for `math`, decoded: undefined for a missing, expired or
   * unparsable value (a fresh counter).
   */
  read(key: string, math: AlgorithmMath<unknown>): unknown;
  /**
   * Stores `key`'s new state (`math.encode(state)` is its stored string) with a TTL of `ttlMs`,
   * or keeping the key's stored TTL when `keepTtl` (Redis `SET ... KEEPTTL`). Called once per
   * changed key, after every op has run, in the order of each key's first change.
   */
  write(key: string, math: AlgorithmMath<unknown>, state: unknown, ttlMs: number, keepTtl: boolean): void;
}

interface PendingWrite {
  readonly key: string;
  readonly math: AlgorithmMath<unknown>;
  state: unknown;
  ttlMs: number;
  keepTtl: boolean;
}

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
 * `store` gives each key's state before the request and takes each changed key's state after
 * it. The pending write of a key changed earlier in the request is also its working copy (rule
 * 1); a request that changes nothing allocates no map.
 */
export function evaluateOps(ops: readonly CounterOp[], now: number, chargeOnDeny: boolean, store: StateStore): EvaluateResult {
  // Insertion order is the order of each key's first change, the order writes are made in.
  let pending: Map<string, PendingWrite> | undefined;
  const outcomes = new Array<CounterOutcome>(ops.length);
  let denied = false;
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!;
    const math = ALGORITHM_MATH[op.algorithm];
    const earlier = pending?.get(op.key);
    const r = math.step(
      earlier !== undefined ? earlier.state : store.read(op.key, math),
      { windowMs: op.windowMs, threshold: op.threshold, burst: op.burst, hits: op.hits, chargeOnOver: chargeOnDeny },
      now,
    );
    if (r.over && op.enforce) denied = true;
    if (r.changed) {
      if (earlier === undefined) {
        (pending ??= new Map()).set(op.key, { key: op.key, math, state: r.next, ttlMs: r.ttlMs, keepTtl: r.keepTtl });
      } else {
        earlier.state = r.next;
        earlier.ttlMs = r.ttlMs;
        earlier.keepTtl = r.keepTtl && earlier.keepTtl;
      }
    }
    outcomes[i] = { overLimit: r.over, remaining: r.remaining, resetMs: r.resetMs };
  }
  if (pending !== undefined && (!denied || chargeOnDeny)) {
    for (const w of pending.values()) store.write(w.key, w.math, w.state, w.ttlMs, w.keepTtl);
  }
  return { denied, outcomes };
}

/**
 * {@link evaluateOps} over stored strings, as Redis holds them (the form lua/evaluate.lua reads
 * and writes): each written key's encoded state, TTL and keepTtl, in the order of first change.
 */
export function evaluateStored(
  ops: readonly CounterOp[],
  now: number,
  chargeOnDeny: boolean,
  read: (key: string) => string | null | undefined,
): { result: EvaluateResult; writes: Map<string, { value: string; ttlMs: number; keepTtl: boolean }> } {
  const writes = new Map<string, { value: string; ttlMs: number; keepTtl: boolean }>();
  const result = evaluateOps(ops, now, chargeOnDeny, {
    read: (key, math) => math.decode(read(key)),
    write: (key, math, state, ttlMs, keepTtl) => writes.set(key, { value: math.encode(state), ttlMs, keepTtl }),
  });
  return { result, writes };
}
