import type { Socket } from 'node:net';
import type { Redis } from 'ioredis';
import type { Backend, CounterOp, EvaluateOptions, EvaluateResult } from '../backend.js';
import { validateOps } from '../ops.js';
import { BackendUnavailableError } from '../../errors.js';
import { backstopTimeoutMs, WriteBatch } from './deadline.js';
import { createRedisClient, DEFAULT_COMMAND_TIMEOUT_MS, normalizeRedisType, type RedisConnectionOptions, type RedisType } from './connection.js';
import { toBackendError } from './errors.js';
import { ReadinessTracker, type RedisStateChange } from './readiness.js';
import {
  assembleEvaluateScripts,
  evaluateCommandFor,
  marshalEvaluate,
  parseEvaluateOneReply,
  parseEvaluateReply,
  registerEvaluateScripts,
  runEvaluateCommand,
  type EvaluateScripts,
} from './scripts.js';

export type { RedisStateChange } from './readiness.js';

export interface RedisBackendOptions extends RedisConnectionOptions {
  /** Called when the connection becomes ready or stops being ready (once per transition). */
  readonly onStateChange?: (change: RedisStateChange) => void;
  /** The assembled evaluate scripts (default: read from lua/ once per process). */
  readonly scripts?: EvaluateScripts;
}

let sharedScripts: EvaluateScripts | undefined;

/** The evaluate scripts, read from lua/ once per process. */
export function defaultEvaluateScripts(): EvaluateScripts {
  return (sharedScripts ??= assembleEvaluateScripts());
}

/**
 * Counters in a standalone Redis (REDIS_TYPE=single) or a Sentinel-managed primary
 * (REDIS_TYPE=sentinel). One request = one script call (EVALSHA, one round trip) with all of its
 * ops, whatever their number; the script decides and charges atomically, using Redis's clock
 * unless the call passes `now`: lua/evaluate-one.lua (the script of the op's algorithm) for the
 * common one-op request, lua/evaluate.lua for several ops. A request is therefore exact, denied requests
 * included, with no refund step (contrast RedisClusterBackend, which must split requests by hash
 * slot).
 *
 * Sentinel: ioredis finds the primary through the sentinels and, after a failover, reconnects to
 * the new one (see sentinelClientOptions); meanwhile calls fail fast as unavailable. Writes the
 * old primary acknowledged but had not replicated are lost in a failover (Redis replication is
 * asynchronous): counters can briefly read lower than they were, never higher.
 */
export class RedisBackend implements Backend {
  readonly kind = 'redis';
  readonly redisType: Exclude<RedisType, 'cluster'>;
  readonly client: Redis;
  private readonly readiness: ReadinessTracker;
  private readonly commandTimeoutMs: number;
  private closing = false;

  constructor(options: RedisBackendOptions) {
    const type = normalizeRedisType(options.type);
    if (type === 'cluster') throw new TypeError("RedisBackend: use RedisClusterBackend (or createBackend) for REDIS_TYPE 'cluster'");
    this.redisType = type;
    this.commandTimeoutMs = options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    // Script calls get their deadline from their batch's write (WriteBatch); ioredis' own
    // per-command timer, which starts before the write, stays only as a backstop for anything
    // else this client sends.
    const client = createRedisClient({ ...options, commandTimeoutMs: backstopTimeoutMs(this.commandTimeoutMs) });
    registerEvaluateScripts(client, options.scripts ?? defaultEvaluateScripts());
    this.client = client;
    this.readiness = new ReadinessTracker(client, options.onStateChange);
  }

  async evaluate(ops: readonly CounterOp[], options: EvaluateOptions): Promise<EvaluateResult> {
    if (ops.length === 0) return { denied: false, outcomes: [] };
    validateOps(ops);
    const now = options.now === undefined ? undefined : Math.floor(options.now);
    const { keys, args } = marshalEvaluate(ops, now, options.chargeOnDeny);
    const reply = await this.runScript(evaluateCommandFor(ops), keys, args);
    return ops.length === 1 ? parseEvaluateOneReply(reply, ops[0]!) : parseEvaluateReply(reply, ops.length).result;
  }

  /** The one Redis round trip of a request: `command` is a registered evaluate script. */
  protected async runScript(command: string, keys: string[], args: Buffer): Promise<unknown> {
    try {
      const batch = this.currentBatch();
      const reply = runEvaluateCommand(this.client, command, keys, args);
      return await (batch === undefined ? reply : batch.guard(reply));
    } catch (err) {
      throw toBackendError(err);
    }
  }

  /**
   * Batches the script calls of one burst of requests into one socket write: the first call
   * corks the socket and a `setImmediate` uncorks it after the event loop's current I/O phase, so
   * the calls of every request that grpc-js handed over in that phase (each request runs
   * synchronously up to its Redis call, but each HTTP/2 stream's data arrives in a callback of its
   * own, so a `process.nextTick` would flush after every request) go out in one writev(2).
   * Replies and errors stay per call (ioredis matches them in order), and one request alone is
   * flushed as soon as its I/O phase ends. This is what ioredis' `enableAutoPipelining` does,
   * minus a Pipeline object and a promise per call. Micro-benchmark (ioredis PING, Node on one
   * core, two interleaved runs): with 64 calls in flight 2.9 us of Node CPU per call against 5.5-6
   * with auto-pipelining and 8.9 unbatched; one call at a time, p50 98-104 us against 119-140 with
   * auto-pipelining and 89-107 unbatched.
   *
   * The batch also owns the calls' timeout (see WriteBatch in ./deadline.ts). Undefined when the socket
   * is not writable: the call then fails at once (no offline queue).
   */
  private currentBatch(): WriteBatch | undefined {
    if (this.batch !== undefined) return this.batch;
    const stream = this.client.stream as Socket | undefined;
    if (stream === undefined || !stream.writable) return undefined;
    stream.cork();
    const batch = new WriteBatch(this.commandTimeoutMs, timedOut);
    this.batch = batch;
    setImmediate(this.flush, stream, batch);
    return batch;
  }

  private batch: WriteBatch | undefined;
  private readonly flush = (stream: Socket, batch: WriteBatch): void => {
    this.batch = undefined;
    stream.uncork();
    batch.written();
  };

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
