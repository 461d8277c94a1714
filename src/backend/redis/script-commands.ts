import type { Redis } from 'ioredis';
import { BackendError } from '../../errors.js';
import type { Algorithm, CounterOp } from '../../limiter/types.js';
import type { AssembledScript, EvaluateScripts } from './lua-assembler.js';

/**
 * The evaluate scripts as ioredis commands: the command each script is registered under, which
 * script (and command) serves a request, registration and running by name. The scripts come
 * from lua-assembler.ts; their arguments and replies from script-format.ts and batch-format.ts.
 */

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

/** The ioredis command the refund script (lua/refund.lua) is registered under. */
export const REFUND_COMMAND = 'meshlimitRefund';

/** Registers the refund script on a client (EVALSHA with EVAL fallback, as the evaluate scripts). Idempotent. */
export function registerRefundScript(client: Redis, script: AssembledScript): void {
  if (typeof (client as unknown as RegisteredCommands)[REFUND_COMMAND] !== 'function')
    client.defineCommand(REFUND_COMMAND, { lua: script.source });
}

/** Runs the refund script on `client`: KEYS and ARGV of marshalRefund (script-format.ts). */
export function runRefundCommand(client: Redis, keys: readonly string[], argv: readonly string[]): Promise<unknown> {
  const run = (client as unknown as RegisteredCommands)[REFUND_COMMAND];
  if (run === undefined) return Promise.reject(new BackendError('the refund script is not registered on this client'));
  return run.call(client, keys.length, ...keys, ...argv);
}
