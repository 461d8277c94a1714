import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';
import type { CounterOp, CounterOutcome, EvaluateResult } from '../backend.js';
import { BackendError } from '../../errors.js';
import { ALGORITHM_MATH } from '../../limiter/algorithms/index.js';

/**
 * The Lua side of the Redis backends: reading and assembling `lua/*.lua` into two scripts (evaluate,
 * and refund for the cluster backend), registering the evaluate script with ioredis, marshalling
 * KEYS/ARGV and parsing the replies. The contracts of the scripts themselves are the headers of
 * `lua/evaluate.lua` and `lua/refund.lua`.
 */

/** Values per op in ARGV (see lua/evaluate.lua). */
export const ARGV_PER_OP = 6;
/** Leading ARGV values before the per-op slices: now, chargeOnDeny. */
export const ARGV_HEADER = 2;

/** The ioredis command name the script is registered under. */
export const EVALUATE_COMMAND = 'meshlimitEvaluate';

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

/** The algorithm modules and the local each is bound to in the assembled script. */
const ALGORITHM_MODULES = [
  ['FIXED', 'fixed-window.lua'],
  ['SLIDING', 'sliding-window.lua'],
  ['TOKEN', 'token-bucket.lua'],
] as const;

export interface AssembledScript {
  readonly source: string;
  /** SHA1 of `source` (what EVALSHA uses); computed, never hard-coded. */
  readonly sha1: string;
}

/** Wraps a module file as a function body (its locals stay private) and calls it. */
function wrapModule(source: string, params: string, args: string): string {
  return `(function(${params})\n${source}\nend)(${args})`;
}

/**
 * Builds a driver script from disk: `N`, a function building lua/number.lua on its first call
 * (only corrupted or non-integer state needs it), the three algorithm modules bound to `FIXED`,
 * `SLIDING`, `TOKEN` (each module assembled with `REFUND` = `refund`: a step function for
 * evaluate.lua, a refund function for refund.lua), then the driver. Read once at start-up.
 */
function assembleDriver(driver: 'evaluate.lua' | 'refund.lua', refund: boolean, luaDir: string): AssembledScript {
  const read = (file: string): string => readFileSync(join(luaDir, file), 'utf8');
  const parts = [
    `-- meshlimit ${driver.slice(0, -4)} script, assembled at start-up from lua/*.lua by src/backend/redis/scripts.ts`,
    lazyNumberModule(read('number.lua')),
  ];
  for (const [name, file] of ALGORITHM_MODULES) {
    parts.push(`local ${name} = ${wrapModule(read(file), 'N, REFUND', `N, ${refund ? 'true' : 'false'}`)}`);
  }
  parts.push(read(driver));
  const source = parts.join('\n');
  return { source, sha1: createHash('sha1').update(source).digest('hex') };
}

/** The evaluate script (lua/evaluate.lua and the step functions). */
export function assembleEvaluateScript(luaDir: string = findLuaDir()): AssembledScript {
  return assembleDriver('evaluate.lua', false, luaDir);
}

/** The refund script (lua/refund.lua and the refund functions); only the cluster backend runs it. */
export function assembleRefundScript(luaDir: string = findLuaDir()): AssembledScript {
  return assembleDriver('refund.lua', true, luaDir);
}

/** `local N`: a function that instantiates lua/number.lua once, on first use, and returns it. */
function lazyNumberModule(source: string): string {
  return `local N\ndo\n  local M\n  N = function()\n    if M == nil then M = (function()\n${source}\nend)() end\n    return M\n  end\nend`;
}

/**
 * A script that binds `N` as the evaluate script does and then runs `body`; for tests that
 * compare the Lua conversions (`N().num`, `N().str`, `N().fmt`) with JavaScript's.
 */
export function assembleNumberScript(body: string, luaDir: string = findLuaDir()): string {
  return `${lazyNumberModule(readFileSync(join(luaDir, 'number.lua'), 'utf8'))}\n${body}`;
}

/** What a client gets once the script is registered. */
export interface EvaluateCommand {
  [EVALUATE_COMMAND](numKeys: number, ...keysAndArgs: string[]): Promise<unknown>;
}

/**
 * Registers the script on a client with ioredis `defineCommand`: ioredis sends EVALSHA and falls
 * back to EVAL on NOSCRIPT (after SCRIPT FLUSH, a restart or a failover to a replica that never
 * saw the script), so a flushed script costs one extra round trip, never a failed request.
 */
export function registerEvaluateScript(client: Redis, script: AssembledScript): Redis & EvaluateCommand {
  if (typeof (client as Partial<EvaluateCommand>)[EVALUATE_COMMAND] !== 'function') {
    client.defineCommand(EVALUATE_COMMAND, { lua: script.source });
  }
  return client as Redis & EvaluateCommand;
}

/**
 * KEYS and ARGV for one script call. `now` must be an integer (the backend floors overrides) or
 * undefined for the Redis clock. Numbers are sent with `String(n)`, which Lua's `tonumber` reads
 * back as the same double.
 */
export function marshalEvaluate(
  ops: readonly CounterOp[],
  now: number | undefined,
  chargeOnDeny: boolean,
): { keys: string[]; argv: string[] } {
  const keys = new Array<string>(ops.length);
  const argv = new Array<string>(ARGV_HEADER + ops.length * ARGV_PER_OP);
  argv[0] = now === undefined ? '' : String(now);
  argv[1] = chargeOnDeny ? '1' : '0';
  let a = ARGV_HEADER;
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!;
    keys[i] = op.key;
    argv[a++] = ALGORITHM_MATH[op.algorithm].code;
    argv[a++] = String(op.windowMs);
    argv[a++] = String(op.threshold);
    argv[a++] = String(op.burst);
    argv[a++] = String(op.hits);
    argv[a++] = op.enforce ? '1' : '0';
  }
  return { keys, argv };
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
