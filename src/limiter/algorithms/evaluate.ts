import type { CounterOp, CounterOutcome, EvaluateResult } from '../../backend/backend.js';
import type { AlgorithmMath } from './algorithm.js';
import { ALGORITHM_MATH } from './index.js';

/** One key a request changes: its new state (decoded), how to encode it, and its TTL. */
export interface StateWrite {
  readonly key: string;
  /** The algorithm whose state `state` is (`math.encode(state)` is the stored string). */
  readonly math: AlgorithmMath<unknown>;
  state: unknown;
  ttlMs: number;
  /** Keep the key's stored TTL instead of setting `ttlMs` (Redis `SET ... KEEPTTL`). */
  keepTtl: boolean;
}

/**
 * Reads the current state of `key` for `math`: the decoded state, or undefined for a missing,
 * expired or unparsable value (a fresh counter).
 */
export type StateReader = (key: string, math: AlgorithmMath<unknown>) => unknown;

/** A {@link StateReader} over stored strings: `math.decode(read(key))`. */
export function decodingReader(read: (key: string) => string | null | undefined): StateReader {
  return (key, math) => math.decode(read(key));
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
 * `read` gives a key's stored state, decoded (see {@link decodingReader} for stored strings);
 * `writes` lists each key to write once, in the order of its first change, with its final state.
 * A request of one op (the common case) allocates no maps.
 */
export function evaluateOps(
  ops: readonly CounterOp[],
  now: number,
  chargeOnDeny: boolean,
  read: StateReader,
): { result: EvaluateResult; writes: StateWrite[] } {
  if (ops.length === 1) return evaluateOne(ops[0]!, now, chargeOnDeny, read);
  const working = new Map<string, unknown>();
  const writeOf = new Map<string, StateWrite>();
  let writes: StateWrite[] = [];
  const outcomes: CounterOutcome[] = [];
  let denied = false;
  for (const op of ops) {
    const math = ALGORITHM_MATH[op.algorithm];
    const state = working.has(op.key) ? working.get(op.key) : read(op.key, math);
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
        const w: StateWrite = { key: op.key, math, state: r.next, ttlMs: r.ttlMs, keepTtl: r.keepTtl };
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
  if (denied && !chargeOnDeny) writes = [];
  return { result: { denied, outcomes }, writes };
}

/** {@link evaluateOps} for one op: the same rules, without the working copy. */
function evaluateOne(op: CounterOp, now: number, chargeOnDeny: boolean, read: StateReader): { result: EvaluateResult; writes: StateWrite[] } {
  const math = ALGORITHM_MATH[op.algorithm];
  const r = math.step(
    read(op.key, math),
    { windowMs: op.windowMs, threshold: op.threshold, burst: op.burst, hits: op.hits, chargeOnOver: chargeOnDeny },
    now,
  );
  const denied = r.over && op.enforce;
  const write = r.changed && (!denied || chargeOnDeny);
  return {
    result: { denied, outcomes: [{ overLimit: r.over, remaining: r.remaining, resetMs: r.resetMs }] },
    writes: write ? [{ key: op.key, math, state: r.next, ttlMs: r.ttlMs, keepTtl: r.keepTtl }] : [],
  };
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
  const { result, writes } = evaluateOps(ops, now, chargeOnDeny, decodingReader(read));
  return { result, writes: new Map(writes.map((w) => [w.key, { value: w.math.encode(w.state), ttlMs: w.ttlMs, keepTtl: w.keepTtl }])) };
}
