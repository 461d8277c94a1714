import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';
import type { CounterOp, CounterOutcome, EvaluateResult } from '../../limiter/types.js';
import { BackendError } from '../../errors.js';
import { ALGORITHM_MATH } from '../../limiter/algorithms/index.js';
import type { Algorithm } from '../../limiter/types.js';

/**
 * The Lua side of the Redis backends: reading and assembling `lua/*.lua` into the scripts
 * (evaluate for several ops, evaluate-one per algorithm for a single op, and refund for the
 * cluster backend), registering the evaluate scripts with ioredis, marshalling KEYS/ARGV and
 * parsing the replies. The contracts of the scripts themselves are the headers of
 * `lua/evaluate.lua`, `lua/evaluate-one.lua` and `lua/refund.lua`.
 *
 * Why several scripts, and splicing: Redis CPU per decision is the cost that scales with traffic,
 * and a script pays on every call for every closure it creates, every Lua function it calls and
 * every argument it is sent. The common request (one descriptor, one limit) runs a script holding
 * only its algorithm's arithmetic, inline; the math still lives once, in the @decode, @step,
 * @encode and @refund sections of `lua/<algorithm>.lua` (see benchmarks/redis-cpu for the figures).
 */

/** Doubles in the packed ARGV[1] before the per-op slices: now, chargeOnDeny. */
export const ARGV_HEADER_DOUBLES = 2;
/** Doubles per op in the packed ARGV[1]: code, windowMs, threshold, burst, hits, enforce. */
export const ARGV_OP_DOUBLES = 6;

/** The algorithm codes the evaluate scripts read from ARGV (`code` in their contracts). */
export const SCRIPT_CODE: Readonly<Record<Algorithm, 1 | 2 | 3>> = Object.freeze({
  fixed_window: 1,
  sliding_window: 2,
  token_bucket: 3,
});

/** The ioredis command the several-ops script (lua/evaluate.lua) is registered under. */
export const EVALUATE_COMMAND = 'meshlimitEvaluate';

/** The ioredis command the batch script (lua/evaluate-batch.lua) is registered under. */
export const EVALUATE_BATCH_COMMAND = 'meshlimitEvaluateBatch';

/** The ioredis commands the one-op scripts (lua/evaluate-one.lua per algorithm) are registered under. */
export const EVALUATE_ONE_COMMAND: Readonly<Record<Algorithm, string>> = Object.freeze({
  fixed_window: 'meshlimitEvaluateFixedWindow',
  sliding_window: 'meshlimitEvaluateSlidingWindow',
  token_bucket: 'meshlimitEvaluateTokenBucket',
});

/**
 * Finds the `lua/` directory: walks up from this module (src/backend/redis under tsx and vitest,
 * dist/backend/redis after a build) to the first directory holding both `package.json` and
 * `lua/evaluate.lua`. A deployment must therefore ship `lua/` next to `package.json`.
 */
export function findLuaDir(from: string = dirname(fileURLToPath(import.meta.url))): string {
  let dir = from;
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'lua', 'evaluate.lua'))) {
      return join(dir, 'lua');
    }
    const parent = dirname(dir);
    if (parent === dir) {
      throw new Error(`meshlimit: cannot find lua/evaluate.lua above ${from} (lua/ must ship next to package.json)`);
    }
    dir = parent;
  }
}

/** The file of each algorithm's math (its @decode, @step, @encode and @refund sections). */
const ALGORITHM_FILES: Readonly<Record<Algorithm, string>> = Object.freeze({
  fixed_window: 'fixed-window.lua',
  sliding_window: 'sliding-window.lua',
  token_bucket: 'token-bucket.lua',
});

export interface AssembledScript {
  readonly source: string;
  /** SHA1 of `source` (what EVALSHA uses); computed, never hard-coded. */
  readonly sha1: string;
}

/** Every evaluate script: one per algorithm for single-op requests, one for several ops. */
export interface EvaluateScripts {
  /** lua/evaluate.lua with the three @step sections: several ops, and every cluster call of a split request. */
  readonly multi: AssembledScript;
  /** lua/evaluate-one.lua with one @step section: a request of exactly one op. */
  readonly one: Readonly<Record<Algorithm, AssembledScript>>;
  /** lua/evaluate-batch.lua with the three decisions and the run loops: several requests in one call. */
  readonly batch: AssembledScript;
}

/** The sections of an algorithm file, in file order (see the contract in lua/fixed-window.lua). */
type Section = 'decode' | 'step' | 'encode' | 'refund';
const SECTIONS: readonly Section[] = ['decode', 'step', 'encode', 'refund'];

/**
 * The sections of an algorithm file: the lines after each of its `-- @decode`, `-- @step`,
 * `-- @encode` and `-- @refund` lines, which it must have once each, in that order (see the
 * contract in lua/fixed-window.lua). Each is returned alone; {@link splice} combines them.
 */
export function algorithmSections(source: string, file = 'algorithm file'): Readonly<Record<Section, string>> {
  const lines = source.split('\n');
  const at = SECTIONS.map((name) => {
    const marker = `-- @${name}`;
    return lines.indexOf(marker) === lines.lastIndexOf(marker) ? lines.indexOf(marker) : -1;
  });
  if (at.some((line, i) => line < 0 || (i > 0 && line < at[i - 1]!))) {
    throw new Error(`meshlimit: ${file} needs one each of the lines "-- @decode", "-- @step", "-- @encode" and "-- @refund", in that order`);
  }
  const body = (i: number): string => lines.slice(at[i]! + 1, i + 1 < at.length ? at[i + 1] : lines.length).join('\n');
  return { decode: body(0), step: body(1), encode: body(2), refund: body(3) };
}

/**
 * Expands every `-- @each-algorithm` ... `-- @end-each-algorithm` block of `driver` into an
 * `if code == <code> then <block> elseif ...` chain with one branch per algorithm and an error for
 * an unknown code: the block's bare splice lines (`-- @step`, `-- @decode`, ...) name the branch's
 * algorithm. A driver thus writes code that runs per algorithm once, and the algorithm's math
 * still runs inline, without a Lua function call.
 */
function expandEachAlgorithm(driver: string, driverFile: string): string {
  const out = driver.replace(/^([ \t]*)-- @each-algorithm\n([\s\S]*?)^[ \t]*-- @end-each-algorithm$/gm, (_m, indent: string, block: string) => {
    const branches = (Object.keys(ALGORITHM_FILES) as Algorithm[]).map((algorithm, i) => {
      const base = ALGORITHM_FILES[algorithm].replace(/\.lua$/, '');
      const body = block.replace(/^([ \t]*-- @(?:step|decode|step-only|encode|refund))$/gm, `$1 ${base}`).replace(/\n$/, '');
      return `${indent}${i === 0 ? 'if' : 'elseif'} code == ${SCRIPT_CODE[algorithm]} then\n${body}`;
    });
    return `${branches.join('\n')}\n${indent}else\n${indent}  return error({ err = 'ERR meshlimit: unknown algorithm code ' .. tostring(code) })\n${indent}end`;
  });
  if (/^[ \t]*-- @(end-)?each-algorithm$/m.test(out)) throw new Error(`meshlimit: ${driverFile}: unmatched "-- @each-algorithm" or "-- @end-each-algorithm"`);
  return out;
}

/**
 * Replaces every splice line of `driver` by algorithm sections, indented like the line (after
 * expanding its `-- @each-algorithm` blocks). A line names the algorithm file (`-- @step
 * fixed-window`), or is bare, which means `algorithm`. The lines:
 *   - `-- @step <a>`: decode, step and (when the step changed the state) encode, in `do ... end`
 *     so its locals stay its own: one whole decision, reading `raw` and assigning `value`;
 *   - `-- @refund <a>`: decode, refund and encode alike;
 *   - `-- @decode <a>`, `-- @step-only <a>`, `-- @encode <a>`: one section each, as it stands, for
 *     a driver that keeps the decoded state in locals across several steps of one key.
 * Splicing instead of binding each module to a function: a script pays on every call for every
 * closure it creates and every Lua function it calls.
 */
function splice(driver: string, driverFile: string, read: (file: string) => string, algorithm?: Algorithm): string {
  const cache = new Map<string, Readonly<Record<Section, string>>>();
  let spliced = 0;
  const out = expandEachAlgorithm(driver, driverFile).replace(/^([ \t]*)-- @(step|refund|decode|step-only|encode)(?: ([a-z-]+))?$/gm, (_m, indent: string, marker: string, base: string | undefined) => {
    const file = base === undefined ? (algorithm === undefined ? undefined : ALGORITHM_FILES[algorithm]) : `${base}.lua`;
    if (file === undefined || !Object.values(ALGORITHM_FILES).includes(file)) {
      throw new Error(`meshlimit: ${driverFile}: cannot splice "-- @${marker}${base === undefined ? '' : ` ${base}`}"`);
    }
    let sections = cache.get(file);
    if (sections === undefined) cache.set(file, (sections = algorithmSections(read(file), file)));
    spliced++;
    const indented = (text: string, by: string): string =>
      text
        .split('\n')
        .map((l) => (l === '' ? l : `${by}${l}`))
        .join('\n');
    if (marker === 'step' || marker === 'refund') {
      const body = [sections.decode, sections[marker], 'if changed then', indented(sections.encode, '  '), 'end'].join('\n');
      return `${indent}do -- lua/${file} @${marker}\n${indent}  local changed\n${indented(body, `${indent}  `)}\n${indent}end`;
    }
    const section: Section = marker === 'step-only' ? 'step' : (marker as Section);
    return `${indent}-- lua/${file} @${section}\n${indented(sections[section], indent)}`;
  });
  if (spliced === 0) throw new Error(`meshlimit: ${driverFile} has no "-- @step" or "-- @refund" line`);
  return out;
}

function assembled(parts: string[]): AssembledScript {
  const source = parts.join('\n');
  return { source, sha1: createHash('sha1').update(source).digest('hex') };
}

function reader(luaDir: string): (file: string) => string {
  return (file) => readFileSync(join(luaDir, file), 'utf8');
}

function banner(what: string): string {
  return `-- meshlimit ${what} script, assembled at start-up from lua/*.lua by src/backend/redis/scripts.ts`;
}

/** The several-ops evaluate script: lua/evaluate.lua with the three @step sections. Read once at start-up. */
export function assembleEvaluateScript(luaDir: string = findLuaDir()): AssembledScript {
  const read = reader(luaDir);
  return assembled([banner('evaluate'), splice(read('evaluate.lua'), 'evaluate.lua', read)]);
}

/** The batch evaluate script: lua/evaluate-batch.lua with the three @step sections. Read once at start-up. */
export function assembleEvaluateBatchScript(luaDir: string = findLuaDir()): AssembledScript {
  const read = reader(luaDir);
  return assembled([banner('evaluate-batch'), splice(read('evaluate-batch.lua'), 'evaluate-batch.lua', read)]);
}

/**
 * The one-op evaluate script of `algorithm`: its code bound to `CODE`, then lua/evaluate-one.lua
 * with that algorithm's @step section. The section is the same text the several-ops script
 * splices, so the math exists once.
 */
export function assembleEvaluateOneScript(algorithm: Algorithm, luaDir: string = findLuaDir()): AssembledScript {
  const read = reader(luaDir);
  return assembled([banner(`evaluate-one (${algorithm})`), `local CODE = ${SCRIPT_CODE[algorithm]}`, splice(read('evaluate-one.lua'), 'evaluate-one.lua', read, algorithm)]);
}

/** Every evaluate script, read from `luaDir`. */
export function assembleEvaluateScripts(luaDir: string = findLuaDir()): EvaluateScripts {
  return {
    multi: assembleEvaluateScript(luaDir),
    one: {
      fixed_window: assembleEvaluateOneScript('fixed_window', luaDir),
      sliding_window: assembleEvaluateOneScript('sliding_window', luaDir),
      token_bucket: assembleEvaluateOneScript('token_bucket', luaDir),
    },
    batch: assembleEvaluateBatchScript(luaDir),
  };
}

/** The refund script (lua/refund.lua with the three @refund sections); only the cluster backend runs it. */
export function assembleRefundScript(luaDir: string = findLuaDir()): AssembledScript {
  const read = reader(luaDir);
  return assembled([banner('refund'), splice(read('refund.lua'), 'refund.lua', read)]);
}

/**
 * The name of the registered command that evaluates `ops` alone: the one-op script of its
 * algorithm, or the several-ops script when `several` (default: more than one op; a caller that
 * needs the `now` in evaluate.lua's reply asks for it for one op too).
 */
export function evaluateCommandFor(ops: readonly CounterOp[], several = ops.length !== 1): string {
  return several ? EVALUATE_COMMAND : EVALUATE_ONE_COMMAND[ops[0]!.algorithm];
}

/** The script that evaluates `ops` in one call: as {@link evaluateCommandFor}, the assembled script itself. */
export function evaluateScriptFor(scripts: EvaluateScripts, ops: readonly CounterOp[], several = ops.length !== 1): AssembledScript {
  return several ? scripts.multi : scripts.one[ops[0]!.algorithm];
}

/** What ioredis `defineCommand` adds to a client: one method per registered script. */
type RegisteredCommands = Record<string, ((numKeys: number, ...keysAndArgs: Array<string | Buffer>) => Promise<unknown>) | undefined>;

/**
 * Registers every evaluate script on a client with ioredis `defineCommand`: ioredis sends EVALSHA
 * and falls back to EVAL on NOSCRIPT (after SCRIPT FLUSH, a restart or a failover to a replica
 * that never saw the script), so a flushed script costs one extra round trip, never a failed
 * request. Idempotent.
 */
export function registerEvaluateScripts(client: Redis, scripts: EvaluateScripts): void {
  const define = (name: string, script: AssembledScript): void => {
    if (typeof (client as unknown as RegisteredCommands)[name] !== 'function') client.defineCommand(name, { lua: script.source });
  };
  define(EVALUATE_COMMAND, scripts.multi);
  define(EVALUATE_BATCH_COMMAND, scripts.batch);
  for (const algorithm of Object.keys(EVALUATE_ONE_COMMAND) as Algorithm[]) define(EVALUATE_ONE_COMMAND[algorithm], scripts.one[algorithm]);
}

/** Runs a registered evaluate script (`command`: see {@link evaluateCommandFor}) on `client`. */
export function runEvaluateCommand(client: Redis, command: string, keys: readonly string[], args: Buffer): Promise<unknown> {
  const run = (client as unknown as RegisteredCommands)[command];
  if (run === undefined) return Promise.reject(new BackendError(`evaluate script ${command} is not registered on this client`));
  return run.call(client, keys.length, ...keys, args);
}

/**
 * KEYS and the packed ARGV[1] for one evaluate call (either script: the one-op script reads the
 * same layout for its single op). `now` must be an integer (the backend floors overrides) or
 * undefined for the Redis clock (sent as NaN). Every value is an integer below 2^53 (validateOps),
 * exact as a double.
 */
export function marshalEvaluate(ops: readonly CounterOp[], now: number | undefined, chargeOnDeny: boolean): { keys: string[]; args: Buffer } {
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

/** Writes one op's 6 doubles (code, windowMs, threshold, burst, hits, enforce) at `at`; returns the offset after them. */
function writeOp(args: Buffer, at: number, op: CounterOp): number {
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
 * Undefined when `reply` is neither.
 */
function decodeOutcome(reply: unknown, op: CounterOp): CounterOutcome | undefined {
  if (typeof reply === 'number' && Number.isSafeInteger(reply)) {
    if (reply < 0) return { overLimit: true, remaining: 0, resetMs: -1 - reply };
    const m = op.burst + 1;
    const remaining = reply % m;
    return { overLimit: false, remaining, resetMs: (reply - remaining) / m };
  }
  if (Array.isArray(reply) && reply.length === 3 && reply.every((v) => typeof v === 'number' && Number.isInteger(v)) && (reply[0] === 0 || reply[0] === 1)) {
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
  if (outcome === undefined) throw new BackendError(`unexpected evaluate-one script reply: ${describe(reply)}`);
  return { denied: outcome.overLimit && op.enforce, outcomes: [outcome] };
}

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
export function parseEvaluateBatchReply(reply: unknown, requests: readonly BatchRequest[]): { results: Array<EvaluateResult | Error>; clock: number } {
  let opCount = 0;
  for (const r of requests) opCount += r.ops.length;
  if (!Array.isArray(reply) || reply.length !== opCount + 1 || !Number.isSafeInteger(reply[opCount])) {
    throw new BackendError(`unexpected evaluate-batch script reply: ${describe(reply)} for ${opCount} ops`);
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
      if (outcome === undefined) throw new BackendError(`unexpected evaluate-batch script reply element ${j}: ${describe(reply[j])}`);
      if (outcome.overLimit && ops[k]!.enforce) denied = true;
      outcomes[k] = outcome;
    }
    results[i] = { denied, outcomes };
  }
  return { results, clock: reply[opCount] as number };
}

/**
 * Parses evaluate.lua's flat integer reply: the result, and the `now` (Unix ms) the script
 * evaluated at, which a refund of this call's charges needs. A malformed reply is a bug, hence a
 * BackendError.
 */
export function parseEvaluateReply(reply: unknown, opCount: number): { result: EvaluateResult; now: number } {
  if (!Array.isArray(reply) || reply.length !== 2 + 3 * opCount) {
    throw new BackendError(`unexpected evaluate script reply: ${describe(reply)} for ${opCount} ops`);
  }
  for (const v of reply) {
    if (typeof v !== 'number' || !Number.isInteger(v)) {
      throw new BackendError(`unexpected evaluate script reply: ${describe(reply)}`);
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
    throw new BackendError(`unexpected refund script reply: ${describe(reply)}`);
  }
  return reply;
}

function describe(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 200 ? `${s.slice(0, 200)}...` : s;
}
