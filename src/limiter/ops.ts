import { BackendError } from '../errors.js';
import { ALGORITHM_MATH } from './algorithms/index.js';
import type { CounterOp } from './types.js';

/**
 * Checks a request's counter ops before any backend runs them; shared by every backend so they
 * reject exactly the same inputs.
 *
 * The algorithms are exact only for integers (windowMs > 0, threshold, burst and hits >= 0, all
 * below 2^53), and ops sharing a key must share an algorithm: the reference passes one op's
 * decoded state to the next op on that key, so mixing algorithms on a key has no defined meaning
 * (keys.ts never does it: the algorithm is part of the counter identity). A violation is a bug
 * in the caller, so it is a non-transient {@link BackendError}.
 */
export function validateOps(ops: readonly CounterOp[]): void {
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!;
    const bad = opProblem(op);
    if (bad !== undefined) throw new BackendError(`invalid counter op #${i} (${String(op.key)}): ${bad}`);
  }
  if (ops.length > 1) {
    const algorithmByKey = new Map<string, string>();
    for (const op of ops) {
      const seen = algorithmByKey.get(op.key);
      if (seen === undefined) algorithmByKey.set(op.key, op.algorithm);
      else if (seen !== op.algorithm) {
        throw new BackendError(`invalid counter ops: key ${op.key} is used with both ${seen} and ${op.algorithm}`);
      }
    }
  }
}

function opProblem(op: CounterOp): string | undefined {
  if (typeof op.key !== 'string' || op.key === '') return 'key must be a non-empty string';
  if (!Object.hasOwn(ALGORITHM_MATH, op.algorithm)) return `unknown algorithm ${String(op.algorithm)}`;
  if (!Number.isSafeInteger(op.windowMs) || op.windowMs <= 0) return `windowMs must be a positive integer, got ${op.windowMs}`;
  if (!isCount(op.threshold)) return `threshold must be a non-negative integer, got ${op.threshold}`;
  if (!isCount(op.burst)) return `burst must be a non-negative integer, got ${op.burst}`;
  if (!isCount(op.hits)) return `hits must be a non-negative integer, got ${op.hits}`;
  if (typeof op.enforce !== 'boolean') return 'enforce must be a boolean';
  return undefined;
}

function isCount(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0;
}

/**
 * The clock value a backend evaluates with: the caller's override, or the backend's own clock
 * reading `wall`, truncated to whole milliseconds (the algorithms are exact for integer clocks,
 * and Redis TIME is truncated the same way by lua/evaluate.lua).
 */
export function effectiveNow(override: number | undefined, wall: number): number {
  return Math.floor(override ?? wall);
}
