import { CancelledError } from '../../errors.js';
import type { CancellationProbe, EvaluateResult } from '../../limiter/types.js';
import { toBackendError } from './errors.js';
import { groupIdenticalRequests, marshalEvaluateBatch, parseEvaluateBatchReply, type BatchRequest } from './batch-format.js';
import { marshalEvaluate, parseEvaluateOneReply, parseEvaluateReply } from './script-format.js';

/**
 * Batching the requests of one event-loop turn into one script call, shared by the standalone
 * (and Sentinel) backend and the cluster backend (which keeps one queue per hash slot). Each
 * backend queues its requests and, in a `setImmediate`, hands the queue to {@link sendQueue}
 * with the two ways it sends a script call.
 */

/** One request waiting in a turn's queue. */
export interface QueuedRequest extends BatchRequest {
  /** EvaluateOptions.cancellation: read when the turn is sent; a cancelled request is not. */
  readonly cancellation: CancellationProbe | undefined;
  /**
   * The caller needs the time its charge ran at (the cluster backend may refund it): sent alone,
   * it runs lua/evaluate.lua, whose reply carries that time, even for one op.
   */
  readonly needsNow?: boolean;
  /** `now`: the Unix ms the request was evaluated at (NaN when unknown: a lone one-op request without needsNow). */
  readonly resolve: (result: EvaluateResult, now: number) => void;
  readonly reject: (err: Error) => void;
}

/**
 * The most ops one lua/evaluate-batch.lua call carries. The call blocks Redis while it runs
 * (about a microsecond per op), and the batch's saving per request flattens out long before.
 */
export const MAX_BATCH_OPS = 256;

/** How a backend sends one script call; a rejection may be any error (mapped with toBackendError). */
export interface ScriptSender {
  /** A request alone: KEYS and ARGV of marshalEvaluate, for the several-ops script (lua/evaluate.lua) when `several`, else the one-op script of its op's algorithm. */
  alone(request: BatchRequest, keys: string[], args: Buffer, several: boolean): Promise<unknown>;
  /** Several requests: KEYS and ARGV of marshalEvaluateBatch, for lua/evaluate-batch.lua. */
  batch(keys: string[], args: Buffer): Promise<unknown>;
}

/**
 * Sends `turn` in order (after {@link groupIdenticalRequests}, which brings identical one-op
 * requests together without changing any answer): consecutive requests of up to {@link MAX_BATCH_OPS} ops in all as one
 * lua/evaluate-batch.lua call, a request left alone with its own script (the cheapest call for
 * it), and settles every request from its call's reply. A failed call fails the requests it
 * carried; an error the batch script reports for one request (a key of another Redis type) fails
 * that request only.
 *
 * A request whose caller has gone by now (its cancellation probe says so) is dropped unsent and
 * rejected with CancelledError: it charges nothing. That is what waiting for the turn buys: the
 * RST_STREAM frames read in the turn's I/O phase, after the request arrived, have marked their
 * calls cancelled before this `setImmediate` runs. A request already sent is past saving (its
 * charge stands, as before).
 */
export function sendQueue(turn: readonly QueuedRequest[], send: ScriptSender): void {
  const queue = groupIdenticalRequests(withoutCancelled(turn));
  let from = 0;
  while (from < queue.length) {
    let to = from + 1;
    let ops = queue[from]!.ops.length;
    while (to < queue.length && ops + queue[to]!.ops.length <= MAX_BATCH_OPS) ops += queue[to++]!.ops.length;
    if (to - from === 1) sendAlone(queue[from]!, send);
    else sendBatch(queue.slice(from, to), send);
    from = to;
  }
}

/** `turn` without its cancelled requests, which are rejected; `turn` itself when there are none (no allocation). */
function withoutCancelled(turn: readonly QueuedRequest[]): readonly QueuedRequest[] {
  let i = 0;
  while (i < turn.length && turn[i]!.cancellation?.cancelled !== true) i++;
  if (i === turn.length) return turn;
  const live = turn.slice(0, i);
  const err = new CancelledError('the caller cancelled the request before it was sent to redis; nothing was charged');
  for (; i < turn.length; i++) {
    const q = turn[i]!;
    if (q.cancellation?.cancelled === true) q.reject(err);
    else live.push(q);
  }
  return live;
}

function sendAlone(q: QueuedRequest, send: ScriptSender): void {
  const { keys, args } = marshalEvaluate(q.ops, q.now, q.chargeOnDeny);
  const several = q.ops.length > 1 || q.needsNow === true;
  send.alone(q, keys, args, several).then(
    (reply) => {
      let result: EvaluateResult;
      let now: number;
      try {
        if (several) ({ result, now } = parseEvaluateReply(reply, q.ops.length));
        else [result, now] = [parseEvaluateOneReply(reply, q.ops[0]!), q.now ?? Number.NaN];
      } catch (err) {
        q.reject(toBackendError(err));
        return;
      }
      q.resolve(result, now);
    },
    (err: unknown) => q.reject(toBackendError(err)),
  );
}

function sendBatch(queued: readonly QueuedRequest[], send: ScriptSender): void {
  const { keys, args } = marshalEvaluateBatch(queued);
  const rejectAll = (err: unknown): void => {
    const e = toBackendError(err);
    for (const q of queued) q.reject(e);
  };
  send.batch(keys, args).then((reply) => {
    let parsed: ReturnType<typeof parseEvaluateBatchReply>;
    try {
      parsed = parseEvaluateBatchReply(reply, queued);
    } catch (err) {
      rejectAll(err);
      return;
    }
    for (let i = 0; i < queued.length; i++) {
      const q = queued[i]!;
      const r = parsed.results[i]!;
      if (r instanceof Error) q.reject(toBackendError(r));
      else q.resolve(r, q.now ?? parsed.clock);
    }
  }, rejectAll);
}
