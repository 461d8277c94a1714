import { BackendError } from '../../errors.js';
import { ALGORITHM_MATH } from '../../limiter/algorithms/index.js';
import type { Algorithm, CounterOp, CounterOutcome, EvaluateResult } from '../../limiter/types.js';

/**
 * The wire formats of lua/evaluate.lua, lua/evaluate-one.lua and lua/refund.lua: KEYS and ARGV
 * marshalling and reply parsing, and the algorithm codes the scripts read. lua/evaluate-batch.lua's
 * format, which packs each op as evaluate.lua does and encodes each outcome as evaluate-one.lua
 * does, is in batch-format.ts. Each script's contract is its header.
 */

/** Doubles in the packed ARGV[1] before the per-op slices: now, chargeOnDeny. */
export const ARGV_HEADER_DOUBLES = 2;
/** Doubles per op in the packed ARGV[1]: code, windowMs, threshold, burst, hits, enforce. */
export const ARGV_OP_DOUBLES = 6;

/**
 * The algorithm codes the evaluate scripts read from ARGV (`code` in their contracts), and the
 * codes of the assembler's `if code == ...` chains (lua-assembler.ts).
 */
export const SCRIPT_CODE: Readonly<Record<Algorithm, 1 | 2 | 3>> = Object.freeze({
  fixed_window: 1,
  sliding_window: 2,
  token_bucket: 3,
});

/**
 * KEYS and the packed ARGV[1] for one evaluate call (either script: the one-op script reads the
 * same layout for its single op). `now` must be an integer (the backend floors overrides) or
 * undefined for the Redis clock (sent as NaN). Every value is an integer below 2^53 (validateOps),
 * exact as a double.
 */
export function marshalEvaluate(
  ops: readonly CounterOp[],
  now: number | undefined,
  chargeOnDeny: boolean,
): { keys: string[]; args: Buffer } {
  const keys = new Array<string>(ops.length);
  const args = Buffer.allocUnsafe(8 * (ARGV_HEADER_DOUBLES + ops.length * ARGV_OP_DOUBLES));
  args.writeDoubleLE(now === undefined ? Number.NaN : now, 0);
  args.writeDoubleLE(chargeOnDeny ? 1 : 0, 8);
  let at = 16;
  for (let i = 0; i < ops.length; i++) {
    keys[i] = ops[i]!.key;
    at = writeOp(args, at, ops[i]!);
  }
  return { keys, args };
}

/**
 * Writes one op's 6 doubles (code, windowMs, threshold, burst, hits, enforce) at `at`; returns the
 * offset after them. Shared with batch-format.ts: evaluate-batch.lua reads each op as evaluate.lua does.
 */
export function writeOp(args: Buffer, at: number, op: CounterOp): number {
  args.writeDoubleLE(SCRIPT_CODE[op.algorithm], at);
  args.writeDoubleLE(op.windowMs, at + 8);
  args.writeDoubleLE(op.threshold, at + 16);
  args.writeDoubleLE(op.burst, at + 24);
  args.writeDoubleLE(op.hits, at + 32);
  args.writeDoubleLE(op.enforce ? 1 : 0, at + 40);
  return at + 48;
}

/** Reads a packed ARGV[1] back (tests, debugging a captured MONITOR line). */
export function unmarshalEvaluateArgs(args: Buffer): { now: number; chargeOnDeny: number; ops: number[][] } {
  const ops: number[][] = [];
  for (let at = 16; at + 48 <= args.length; at += 48) {
    ops.push(Array.from({ length: ARGV_OP_DOUBLES }, (_, k) => args.readDoubleLE(at + 8 * k)));
  }
  return { now: args.readDoubleLE(0), chargeOnDeny: args.readDoubleLE(8), ops };
}

/**
 * One op's outcome in the encoding of lua/evaluate-one.lua (also each element of
 * lua/evaluate-batch.lua's reply): an integer, or the array form when the integer would not fit.
 * Undefined when `reply` is neither. Shared with batch-format.ts.
 */
export function decodeOutcome(reply: unknown, op: CounterOp): CounterOutcome | undefined {
  if (typeof reply === 'number' && Number.isSafeInteger(reply)) {
    if (reply < 0) return { overLimit: true, remaining: 0, resetMs: -1 - reply };
    const m = op.burst + 1;
    const remaining = reply % m;
    return { overLimit: false, remaining, resetMs: (reply - remaining) / m };
  }
  if (
    Array.isArray(reply) &&
    reply.length === 3 &&
    reply.every((v) => typeof v === 'number' && Number.isInteger(v)) &&
    (reply[0] === 0 || reply[0] === 1)
  ) {
    const r = reply as number[];
    return { overLimit: r[0] === 1, remaining: r[1]!, resetMs: r[2]! };
  }
  return undefined;
}

/**
 * Parses lua/evaluate-one.lua's reply for `op`: the integer encoding (see the script header), or
 * the array form it falls back to. A malformed reply is a bug, hence a BackendError.
 */
export function parseEvaluateOneReply(reply: unknown, op: CounterOp): EvaluateResult {
  const outcome = decodeOutcome(reply, op);
  if (outcome === undefined) throw new BackendError(`unexpected evaluate-one script reply: ${describeReply(reply)}`);
  return { denied: outcome.overLimit && op.enforce, outcomes: [outcome] };
}

/**
 * Parses evaluate.lua's flat integer reply: the result, and the `now` (Unix ms) the script
 * evaluated at, which a refund of this call's charges needs. A malformed reply is a bug, hence a
 * BackendError.
 */
export function parseEvaluateReply(reply: unknown, opCount: number): { result: EvaluateResult; now: number } {
  if (!Array.isArray(reply) || reply.length !== 2 + 3 * opCount) {
    throw new BackendError(`unexpected evaluate script reply: ${describeReply(reply)} for ${opCount} ops`);
  }
  for (const v of reply) {
    if (typeof v !== 'number' || !Number.isInteger(v)) {
      throw new BackendError(`unexpected evaluate script reply: ${describeReply(reply)}`);
    }
  }
  const r = reply as number[];
  const outcomes = new Array<CounterOutcome>(opCount);
  for (let i = 0, j = 1; i < opCount; i++, j += 3) {
    outcomes[i] = { overLimit: r[j] === 1, remaining: r[j + 1]!, resetMs: r[j + 2]! };
  }
  return { result: { denied: r[0] === 1, outcomes }, now: r[1 + 3 * opCount]! };
}

/** Values per op in the refund script's ARGV (see lua/refund.lua). */
export const REFUND_ARGV_PER_OP = 5;

/** KEYS and ARGV for lua/refund.lua: the charged ops and the `now` their charge used. */
export function marshalRefund(ops: readonly CounterOp[], chargeNow: number): { keys: string[]; argv: string[] } {
  const keys = new Array<string>(ops.length);
  const argv = new Array<string>(1 + ops.length * REFUND_ARGV_PER_OP);
  argv[0] = String(chargeNow);
  let a = 1;
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!;
    keys[i] = op.key;
    argv[a++] = ALGORITHM_MATH[op.algorithm].code;
    argv[a++] = String(op.windowMs);
    argv[a++] = String(op.threshold);
    argv[a++] = String(op.burst);
    argv[a++] = String(op.hits);
  }
  return { keys, argv };
}

/** The refund script's reply: the number of keys it rewrote. */
export function parseRefundReply(reply: unknown): number {
  if (typeof reply !== 'number' || !Number.isInteger(reply) || reply < 0) {
    throw new BackendError(`unexpected refund script reply: ${describeReply(reply)}`);
  }
  return reply;
}

/** A reply for an error message: JSON, cut at 200 characters. */
export function describeReply(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 200 ? `${s.slice(0, 200)}...` : s;
}
