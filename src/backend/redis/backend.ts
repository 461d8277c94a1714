import type { Redis } from 'ioredis';
import type { Backend, CounterOp, EvaluateOptions, EvaluateResult } from '../backend.js';
import { validateOps } from '../ops.js';
import { createRedisClient, normalizeRedisType, type RedisConnectionOptions, type RedisType } from './connection.js';
import { toBackendError } from './errors.js';
import { ReadinessTracker, type RedisStateChange } from './readiness.js';
import {
  assembleEvaluateScript,
  EVALUATE_COMMAND,
  marshalEvaluate,
  parseEvaluateReply,
  registerEvaluateScript,
  type AssembledScript,
  type EvaluateCommand,
} from './scripts.js';

export type { RedisStateChange } from './readiness.js';

export interface RedisBackendOptions extends RedisConnectionOptions {
  /** Called when the connection becomes ready or stops being ready (once per transition). */
  readonly onStateChange?: (change: RedisStateChange) => void;
  /** The assembled evaluate script (default: read from lua/ once per process). */
  readonly script?: AssembledScript;
}

let sharedScript: AssembledScript | undefined;

/** The evaluate script, read from lua/ once per process. */
export function defaultEvaluateScript(): AssembledScript {
  return (sharedScript ??= assembleEvaluateScript());
}

/**
 * Counters in a standalone Redis (REDIS_TYPE=single) or a Sentinel-managed primary
 * (REDIS_TYPE=sentinel). One request = one script call (EVALSHA, one round trip) with all of its
 * ops, whatever their number; the script (lua/evaluate.lua) decides and charges atomically, using
 * Redis's clock unless the call passes `now`. A request is therefore exact, denied requests
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
  readonly client: Redis & EvaluateCommand;
  private readonly readiness: ReadinessTracker;
  private closing = false;

  constructor(options: RedisBackendOptions) {
    const type = normalizeRedisType(options.type);
    if (type === 'cluster') throw new TypeError("RedisBackend: use RedisClusterBackend (or createBackend) for REDIS_TYPE 'cluster'");
    this.redisType = type;
    const client = createRedisClient(options);
    this.client = registerEvaluateScript(client, options.script ?? defaultEvaluateScript());
    this.readiness = new ReadinessTracker(client, options.onStateChange);
  }

  async evaluate(ops: readonly CounterOp[], options: EvaluateOptions): Promise<EvaluateResult> {
    if (ops.length === 0) return { denied: false, outcomes: [] };
    validateOps(ops);
    const now = options.now === undefined ? undefined : Math.floor(options.now);
    const { keys, argv } = marshalEvaluate(ops, now, options.chargeOnDeny);
    return parseEvaluateReply(await this.runScript(keys, argv), ops.length).result;
  }

  /** The one Redis round trip of a request. */
  protected async runScript(keys: string[], argv: string[]): Promise<unknown> {
    try {
      return await this.client[EVALUATE_COMMAND](keys.length, ...keys, ...argv);
    } catch (err) {
      throw toBackendError(err);
    }
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
