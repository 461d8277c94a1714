import type { Redis } from 'ioredis';
import type { Backend, StoredStates } from '../../limiter/ports.js';
import { readStatesStandalone } from './read-states.js';
import type { CounterOp, EvaluateOptions, EvaluateResult } from '../../limiter/types.js';
import { validateOps } from '../../limiter/ops.js';
import { BackendUnavailableError, type BackendError } from '../../errors.js';
import { chargedOps } from '../../limiter/algorithms/refund.js';
import { backstopTimeoutMs, WriteBatch } from './deadline.js';
import { createRedisClient, DEFAULT_COMMAND_TIMEOUT_MS, type RedisConnectionOptions, type RedisType } from './connection.js';
import { CallHealth } from './call-health.js';
import { replyKind, toBackendError } from './errors.js';
import { notConnectedError, notConnectedReason } from './explain.js';
import { ReadinessTracker, type RedisStateChange } from './readiness.js';
import { sendQueue, type QueuedRequest, type ScriptSender } from './batching.js';
import { assembleEvaluateScripts, assembleRefundScript, type AssembledScript, type EvaluateScripts } from './lua-assembler.js';
import { marshalRefund, parseRefundReply } from './script-format.js';
import { registerReservationScript, runReservation } from './reservation-script.js';
import {
  EVALUATE_BATCH_COMMAND,
  evaluateCommandFor,
  registerEvaluateScripts,
  registerRefundScript,
  runEvaluateCommand,
  runRefundCommand,
} from './script-commands.js';

export type { RedisStateChange } from './readiness.js';
export { MAX_BATCH_OPS } from './batching.js';

export interface RedisBackendOptions extends RedisConnectionOptions {
  /** Called when the connection becomes ready or stops being ready (once per transition). */
  readonly onStateChange?: (change: RedisStateChange) => void;
  /**
   * Called when a refund (EvaluateResult.refund, asked for with EvaluateOptions.refundable)
   * failed; its charge stays (under-admission until the window or bucket moves on). For a log
   * line or a counter; never throws into the request.
   */
  readonly onRefundError?: (error: BackendError | BackendUnavailableError) => void;
  /** The assembled evaluate scripts (default: read from lua/ once per process). */
  readonly scripts?: EvaluateScripts;
  /** The assembled refund script (default: read from lua/ once per process). */
  readonly refundScript?: AssembledScript;
}

let sharedScripts: EvaluateScripts | undefined;
let sharedRefundScript: AssembledScript | undefined;

/** The refund script (lua/refund.lua), read from lua/ once per process. */
export function defaultRefundScript(): AssembledScript {
  return (sharedRefundScript ??= assembleRefundScript());
}

/** The evaluate scripts, read from lua/ once per process. */
export function defaultEvaluateScripts(): EvaluateScripts {
  return (sharedScripts ??= assembleEvaluateScripts());
}

/**
 * Counters in a standalone Redis (REDIS_TYPE=single) or a Sentinel-managed primary
 * (REDIS_TYPE=sentinel). One script call (EVALSHA, one round trip) per event-loop turn carries
 * every request of the turn with all of its ops (see `flush`); the script decides and charges each
 * request atomically, using Redis's clock unless the request passes `now`: lua/evaluate-one.lua
 * (the script of the op's algorithm) for a lone one-op request, lua/evaluate.lua for a lone
 * request of several ops, lua/evaluate-batch.lua for several requests. A request is therefore exact, denied requests
 * included, with no refund step (contrast RedisClusterBackend, which must split requests by hash
 * slot).
 *
 * Sentinel: ioredis finds the primary through the sentinels and, after a failover, reconnects to
 * the new one (see sentinelClientOptions); meanwhile calls fail fast as unavailable. Writes the
 * old primary acknowledged but had not replicated are lost in a failover (Redis replication is
 * asynchronous): counters can briefly read lower than they were, never higher.
 *
 * Refunds: asked with EvaluateOptions.refundable (by PerSecondSplitBackend, when one request's
 * ops span this store and another), an admitted request runs lua/evaluate.lua, whose reply
 * carries the time it charged at, and its result gets a `refund` that runs lua/refund.lua with
 * the ops it charged at that time.
 */
export class RedisBackend implements Backend {
  readonly kind = 'redis';
  readonly redisType: Exclude<RedisType, 'cluster'>;
  readonly client: Redis;
  private readonly readiness: ReadinessTracker;
  /** What this backend saw of its script calls, for the circuit breaker (per call, never per request). */
  readonly health = new CallHealth();
  private readonly commandTimeoutMs: number;
  /** How messages name this Redis (RedisConnectionOptions.label). */
  private readonly label: string | undefined;
  private readonly onRefundError: RedisBackendOptions['onRefundError'];
  private closing = false;

  constructor(options: RedisBackendOptions) {
    const type = options.type ?? 'single';
    if (type === 'cluster') throw new TypeError("RedisBackend: use RedisClusterBackend (or createBackend) for REDIS_TYPE 'cluster'");
    this.redisType = type;
    this.commandTimeoutMs = options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    this.label = options.label;
    // Script calls get their deadline from their batch's write (WriteBatch); ioredis' own
    // per-command timer, which starts before the write, stays only as a backstop for anything
    // else this client sends.
    const client = createRedisClient({ ...options, commandTimeoutMs: backstopTimeoutMs(this.commandTimeoutMs) });
    registerEvaluateScripts(client, options.scripts ?? defaultEvaluateScripts());
    registerRefundScript(client, options.refundScript ?? defaultRefundScript());
    registerReservationScript(client);
    this.onRefundError = options.onRefundError;
    this.client = client;
    this.readiness = new ReadinessTracker(client, (change) => {
      this.health.connection(change.ready);
      options.onStateChange?.(change);
    });
  }

  /** Counters read with GET only (explain; see ./read-states.ts). Not tracked in `health`: an admin read must not move the breaker. */
  readStates(keys: readonly string[], now?: number): Promise<StoredStates> {
    return readStatesStandalone(this.client, keys, now);
  }

  evaluate(ops: readonly CounterOp[], options: EvaluateOptions): Promise<EvaluateResult> {
    if (ops.length === 0) return Promise.resolve({ denied: false, outcomes: [] });
    try {
      validateOps(ops);
    } catch (err) {
      return Promise.reject(err);
    }
    if (options.reservation !== undefined) return this.reservation(ops, options);
    const now = options.now === undefined ? undefined : Math.floor(options.now);
    return new Promise<EvaluateResult>((resolve, reject) => {
      const cancellation = options.cancellation;
      const queued: QueuedRequest =
        options.refundable === true
          ? {
              ops,
              now,
              chargeOnDeny: options.chargeOnDeny,
              cancellation,
              needsNow: true,
              resolve: (r, at) => resolve(this.withRefund(ops, r, at)),
              reject,
            }
          : { ops, now, chargeOnDeny: options.chargeOnDeny, cancellation, resolve, reject };
      if (this.queue.push(queued) === 1) setImmediate(this.flush);
    });
  }

  /**
   * A reservation rule's call: lua/reservation.lua on its own, not batched (see
   * ./reservation-script.ts), with the same deadline from its write as a batch's.
   */
  private reservation(ops: readonly CounterOp[], options: EvaluateOptions): Promise<EvaluateResult> {
    const batch = new WriteBatch(this.commandTimeoutMs, timedOut);
    const reply = batch.guard(this.health.track(runReservation(this.client, ops[0]!, options.reservation!, options.now), replyKind));
    batch.written();
    return reply.catch((err: unknown) => {
      throw toBackendError(err);
    });
  }

  /** `result` with a handle that gives back what it charged at `chargeNow`, when it was admitted and charged anything. */
  private withRefund(ops: readonly CounterOp[], result: EvaluateResult, chargeNow: number): EvaluateResult {
    if (result.denied) return result;
    const charged = chargedOps(ops, result);
    return charged.length === 0 ? result : { ...result, refund: () => this.refundAt(charged, chargeNow) };
  }

  /** One lua/refund.lua call; resolves in every case (a failure goes to `onRefundError`). */
  private async refundAt(ops: readonly CounterOp[], chargeNow: number): Promise<void> {
    const { keys, argv } = marshalRefund(ops, chargeNow);
    try {
      parseRefundReply(await this.health.track(runRefundCommand(this.client, keys, argv), replyKind));
    } catch (err) {
      try {
        this.onRefundError?.(toBackendError(err));
      } catch {
        // a reporting hook must never fail the request
      }
    }
  }

  /**
   * Batching: the requests of one event-loop turn go to Redis in one script call. `evaluate`
   * queues each request and the first of a turn schedules a `setImmediate`, which runs after the
   * turn's I/O phase: by then grpc-js has handed over every request whose frames that phase read
   * (each HTTP/2 stream's data arrives in a callback of its own, so a `process.nextTick` would
   * flush after every request). A request alone in its turn runs lua/evaluate-one.lua (one op) or
   * lua/evaluate.lua, as before; several run lua/evaluate-batch.lua, which evaluates them one
   * after another exactly as those scripts would, in one EVALSHA: Redis pays a script call's fixed
   * cost (dispatch, Lua call, TIME, and a GET and a SET per key) once per turn instead of once per
   * request, a hot key is read and written once per batch, and the service sends and parses one
   * command instead of one per request. A batch holds at most MAX_BATCH_OPS ops (./batching.ts) (one
   * script call blocks Redis for about a microsecond per op); a bigger turn is sent as several
   * calls, in order.
   *
   * A lone request waits for nothing extra: its turn's I/O phase ends, then its call is written.
   *
   * Errors stay per request: a key of another Redis type fails only the requests using it (the
   * script's reply holds the WRONGTYPE error in their place), and a failed call (timeout, lost
   * connection, a script error) fails the requests of that call, as it would have failed each.
   * The deadline counts from the write (see WriteBatch in ./deadline.ts).
   */
  private queue: QueuedRequest[] = [];
  /** The deadline of the calls the running `flush` sends. */
  private turn: WriteBatch | undefined;
  private readonly flush = (): void => {
    const queue = this.queue;
    this.queue = [];
    const turn = (this.turn = new WriteBatch(this.commandTimeoutMs, timedOut));
    sendQueue(queue, this.sender);
    this.turn = undefined;
    turn.written();
  };
  private readonly sender: ScriptSender = {
    alone: (request, keys, args, several) => this.runScript(evaluateCommandFor(request.ops, several), keys, args, this.turn),
    batch: (keys, args) => this.runScript(EVALUATE_BATCH_COMMAND, keys, args, this.turn),
  };

  /** One script call (`command`: a registered evaluate script), its errors mapped to backend errors. */
  protected runScript(command: string, keys: string[], args: Buffer, batch?: WriteBatch): Promise<unknown> {
    const reply = this.health.track(runEvaluateCommand(this.client, command, keys, args), replyKind);
    return (batch === undefined ? reply : batch.guard(reply)).catch((err: unknown) => {
      const e = toBackendError(err);
      // Not connected: meshlimit says which Redis and what to check; ioredis' words are the detail.
      throw e instanceof BackendUnavailableError && !this.closing && this.client.status !== 'ready'
        ? notConnectedError(this.label, this.readiness.lastError, e)
        : e;
    });
  }

  /** DEL of one descriptor's counters (one hash tag, so one slot on a cluster). */
  async deleteKeys(keys: readonly string[]): Promise<number> {
    if (keys.length === 0) return 0;
    try {
      return await this.client.del(...keys);
    } catch (err) {
      throw toBackendError(err);
    }
  }

  /** Why this Redis is not connected (which one, what failed, what to check); undefined when it is. */
  whyNotConnected(): string | undefined {
    return this.isReady() ? undefined : notConnectedReason(this.label, this.readiness.lastError);
  }

  /** Connected and the socket writable (a peer that just hung up can leave status 'ready' briefly). */
  isReady(): boolean {
    return !this.closing && this.client.status === 'ready' && this.client.stream?.writable === true;
  }

  /**
   * Resolves once connected (or at once if already ready); rejects with BackendUnavailableError
   * after `timeoutMs`. For start-up and tests: `evaluate` never waits for a connection.
   */
  waitReady(timeoutMs = 5_000): Promise<void> {
    return this.readiness.waitReady(timeoutMs, this.redisType === 'sentinel' ? 'redis (sentinel)' : 'redis');
  }

  /**
   * QUIT (lets in-flight replies arrive), or drops the socket if that fails. Idempotent. Always
   * ends with `disconnect()`, which is what releases the connector: with Sentinel, ioredis' QUIT
   * leaves the failover detector's sentinel subscriptions open (they would reconnect forever).
   */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    try {
      if (this.client.status === 'ready') await this.client.quit();
    } catch {
      // dropped below
    } finally {
      this.client.disconnect();
    }
  }
}

const timedOut = (ms: number): BackendUnavailableError =>
  new BackendUnavailableError(`redis unavailable: Command timed out (no reply within ${ms} ms of the write)`);
