import type { CounterOp, CounterOutcome, EvaluateResult } from '../../backend/backend.js';
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
 * it. A request of one op (the common case) allocates no maps or lists beyond its outcome.
 */
export function evaluateOps(ops: readonly CounterOp[], now: number, chargeOnDeny: boolean, store: StateStore): EvaluateResult {
  if (ops.length === 1) return evaluateOne(ops[0]!, now, chargeOnDeny, store);
  const working = new Map<string, unknown>();
  const writeOf = new Map<string, PendingWrite>();
  const writes: PendingWrite[] = [];
  const outcomes: CounterOutcome[] = [];
  let denied = false;
  for (const op of ops) {
    const math = ALGORITHM_MATH[op.algorithm];
    const state = working.has(op.key) ? working.get(op.key) : store.read(op.key, math);
    const r = math.step(
      state,
      { windowMs: op.windowMs, threshold: op.threshold, burst: op.burst, hits: op.hits, chargeOnOver: chargeOnDeny },
      now,
    );
    if (r.over && op.enforce) denied = true;
    if (r.changed) {
      working.set(op.key, r.next);
      const earlier = writeOf.get(op.key);
      if (earlier === undefined) {
        const w: PendingWrite = { key: op.key, math, state: r.next, ttlMs: r.ttlMs, keepTtl: r.keepTtl };
        writeOf.set(op.key, w);
        writes.push(w);
      } else {
        earlier.state = r.next;
        earlier.ttlMs = r.ttlMs;
        earlier.keepTtl = r.keepTtl && earlier.keepTtl;
      }
    }
    outcomes.push({ overLimit: r.over, remaining: r.remaining, resetMs: r.resetMs });
  }
  if (!denied || chargeOnDeny) {
    for (const w of writes) store.write(w.key, w.math, w.state, w.ttlMs, w.keepTtl);
  }
  return { denied, outcomes };
}

/** {@link evaluateOps} for one op: the same rules, without the working copy. */
function evaluateOne(op: CounterOp, now: number, chargeOnDeny: boolean, store: StateStore): EvaluateResult {
  const math = ALGORITHM_MATH[op.algorithm];
  const r = math.step(
    store.read(op.key, math),
    { windowMs: op.windowMs, threshold: op.threshold, burst: op.burst, hits: op.hits, chargeOnOver: chargeOnDeny },
    now,
  );
  const denied = r.over && op.enforce;
  if (r.changed && (!denied || chargeOnDeny)) store.write(op.key, math, r.next, r.ttlMs, r.keepTtl);
  return { denied, outcomes: [{ overLimit: r.over, remaining: r.remaining, resetMs: r.resetMs }] };
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
