import { BackendError } from '../../errors.js';
import type { CounterOp, CounterOutcome, EvaluateResult } from '../../limiter/types.js';
import { ARGV_OP_DOUBLES, decodeOutcome, describeReply, writeOp } from './script-format.js';

/**
 * The wire format of lua/evaluate-batch.lua (several requests in one call, see its header):
 * grouping identical one-op requests into runs, KEYS and ARGV marshalling, reply parsing.
 */

/** One request of a batch: its ops and options, as RedisBackend.evaluate received them. */
export interface BatchRequest {
  readonly ops: readonly CounterOp[];
  /** Integer Unix ms, or undefined for the Redis clock. */
  readonly now: number | undefined;
  readonly chargeOnDeny: boolean;
}

/** Doubles per request in lua/evaluate-batch.lua's ARGV[1], before its ops: now, chargeOnDeny, op count. */
export const BATCH_REQUEST_DOUBLES = 3;

/** Whether two ops are the same op: same key, algorithm, limit, hits and enforcement. */
function sameOp(a: CounterOp, b: CounterOp): boolean {
  return (
    a === b ||
    (a.key === b.key &&
      a.algorithm === b.algorithm &&
      a.windowMs === b.windowMs &&
      a.threshold === b.threshold &&
      a.burst === b.burst &&
      a.hits === b.hits &&
      a.enforce === b.enforce)
  );
}

/** Whether `b` may join a run after `a`: one op each, the same op, `now` and chargeOnDeny. */
function sameOneOpRequest(a: BatchRequest, b: BatchRequest): boolean {
  return a.ops.length === 1 && b.ops.length === 1 && a.now === b.now && a.chargeOnDeny === b.chargeOnDeny && sameOp(a.ops[0]!, b.ops[0]!);
}

/**
 * `requests` in an order that gives every request the same answer and leaves the same state as
 * the order given, with identical one-op requests brought together so that
 * {@link marshalEvaluateBatch} sends them as runs: a one-op request moves up to the last request
 * identical to it when no request in between touches its key. It only passes requests on other
 * keys, and requests on different keys commute (each reads and writes its own keys only; the
 * Redis clock is one per call). Returns `requests` itself when nothing moves.
 */
export function groupIdenticalRequests<T extends BatchRequest>(requests: readonly T[]): readonly T[] {
  // A request moves only past another one, to join a third: a lone request (every
  // request of a quiet service) or a pair costs no Map.
  if (requests.length < 3) return requests;
  // the group a one-op request on this key may still join (deleted once another request
  // touches the key)
  const open = new Map<string, T[]>();
  const groups: T[][] = [];
  let moved = false;
  for (const r of requests) {
    if (r.ops.length === 1) {
      const key = r.ops[0]!.key;
      const group = open.get(key);
      if (group !== undefined && sameOneOpRequest(group[0]!, r)) {
        if (group !== groups[groups.length - 1]) moved = true;
        group.push(r);
        continue;
      }
      const fresh = [r];
      groups.push(fresh);
      open.set(key, fresh);
    } else {
      groups.push([r]);
      for (const op of r.ops) open.delete(op.key);
    }
  }
  return moved ? groups.flat() : requests;
}

/**
 * KEYS and the packed ARGV[1] of lua/evaluate-batch.lua for `requests` (see its contract): a
 * header (the entry count), then per entry now (NaN for the Redis clock), chargeOnDeny and its op
 * count, then its ops as {@link marshalEvaluate} packs them. Consecutive one-op requests with the
 * same op, `now` and chargeOnDeny (many requests of one hot descriptor in one event-loop turn)
 * become one request entry and then one run entry (op count -m: the previous entry's op, m more
 * times), which the script evaluates with the key's state decoded once. The reply still has one
 * element per request.
 */
export function marshalEvaluateBatch(requests: readonly BatchRequest[]): { keys: string[]; args: Buffer } {
  let opCount = 0;
  for (const r of requests) opCount += r.ops.length;
  const keys: string[] = [];
  const args = Buffer.allocUnsafe(8 * (1 + BATCH_REQUEST_DOUBLES * requests.length + ARGV_OP_DOUBLES * opCount));
  let at = 8;
  let entries = 0;
  // the previous request when it had one op, and the offset of the op count of the run entry
  // that follows it (-1 while there is none)
  let single: BatchRequest | undefined;
  let run = -1;
  let length = 0;
  for (const r of requests) {
    if (single !== undefined && sameOneOpRequest(single, r)) {
      if (run < 0) {
        args.writeDoubleLE(r.now === undefined ? Number.NaN : r.now, at);
        args.writeDoubleLE(r.chargeOnDeny ? 1 : 0, at + 8);
        run = at + 16;
        length = 0;
        at += 24;
        entries++;
      }
      args.writeDoubleLE(-++length, run);
      continue;
    }
    args.writeDoubleLE(r.now === undefined ? Number.NaN : r.now, at);
    args.writeDoubleLE(r.chargeOnDeny ? 1 : 0, at + 8);
    args.writeDoubleLE(r.ops.length, at + 16);
    at += 24;
    entries++;
    for (const op of r.ops) {
      keys.push(op.key);
      at = writeOp(args, at, op);
    }
    single = r.ops.length === 1 ? r : undefined;
    run = -1;
  }
  args.writeDoubleLE(entries, 0);
  return { keys, args: args.subarray(0, at) };
}

/**
 * Parses lua/evaluate-batch.lua's reply: per request its result, or the Redis error its keys
 * met (a key of another type), as an Error; and the Redis clock the requests without a `now` of
 * their own were evaluated at (0 when there were none). A reply of the wrong shape is a bug,
 * hence a thrown BackendError (for the whole batch).
 */
export function parseEvaluateBatchReply(
  reply: unknown,
  requests: readonly BatchRequest[],
): { results: Array<EvaluateResult | Error>; clock: number } {
  let opCount = 0;
  for (const r of requests) opCount += r.ops.length;
  if (!Array.isArray(reply) || reply.length !== opCount + 1 || !Number.isSafeInteger(reply[opCount])) {
    throw new BackendError(`unexpected evaluate-batch script reply: ${describeReply(reply)} for ${opCount} ops`);
  }
  const results = new Array<EvaluateResult | Error>(requests.length);
  let j = 0;
  for (let i = 0; i < requests.length; i++) {
    const ops = requests[i]!.ops;
    const first: unknown = reply[j];
    if (first instanceof Error) {
      results[i] = first;
      j += ops.length;
      continue;
    }
    const outcomes = new Array<CounterOutcome>(ops.length);
    let denied = false;
    for (let k = 0; k < ops.length; k++, j++) {
      const outcome = decodeOutcome(reply[j], ops[k]!);
      if (outcome === undefined) throw new BackendError(`unexpected evaluate-batch script reply element ${j}: ${describeReply(reply[j])}`);
      if (outcome.overLimit && ops[k]!.enforce) denied = true;
      outcomes[k] = outcome;
    }
    results[i] = { denied, outcomes };
  }
  return { results, clock: reply[opCount] as number };
}
