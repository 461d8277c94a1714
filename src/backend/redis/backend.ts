import type { Redis } from 'ioredis';
import { BackendUnavailableError } from '../../errors.js';
import type { Backend, CounterOp, EvaluateOptions, EvaluateResult } from '../backend.js';
import { validateOps } from '../ops.js';
import { createRedisClient, type RedisConnectionOptions } from './connection.js';
import { toBackendError } from './errors.js';
import {
  assembleEvaluateScript,
  EVALUATE_COMMAND,
  marshalEvaluate,
  parseEvaluateReply,
  registerEvaluateScript,
  type AssembledScript,
  type EvaluateCommand,
} from './scripts.js';

/** A connectivity transition, for logs and gauges (reported once per change, not per call). */
export interface RedisStateChange {
  readonly ready: boolean;
  /** The last connection error seen, when the backend became unready. */
  readonly error?: Error | undefined;
}

export interface RedisBackendOptions extends RedisConnectionOptions {
  /** Called when the connection becomes ready or stops being ready. */
  readonly onStateChange?: (change: RedisStateChange) => void;
  /** The assembled script (default: read from lua/ once per process). */
  readonly script?: AssembledScript;
}

let sharedScript: AssembledScript | undefined;

/**
 * Counters in a standalone Redis. One request = one script call (EVALSHA, one round trip) with
 * all of its ops, whatever their number; the script (lua/evaluate.lua) decides and charges
 * atomically, using Redis's clock unless the call passes `now`.
 *
 * Cluster later: keys.ts already gives every key of one descriptor one hash tag, so a cluster
 * backend can group a request's ops by slot and run this same script once per group in
 * parallel. Across groups the "denied charges nothing" rule then needs a second step (check all
 * groups with hits 0, then charge), which is why `runScript` is the one place that talks to
 * Redis: a subclass or sibling can replace the single call with a per-node plan.
 */
export class RedisBackend implements Backend {
  readonly kind = 'redis';
  readonly client: Redis & EvaluateCommand;
  private wasReady = false;
  private lastError: Error | undefined;
  private closing = false;

  constructor(options: RedisBackendOptions) {
    const script = options.script ?? (sharedScript ??= assembleEvaluateScript());
    const client = createRedisClient(options);
    this.client = registerEvaluateScript(client, script);
    const notify = options.onStateChange;
    client.on('error', (err: Error) => {
      this.lastError = err;
    });
    client.on('ready', () => {
      if (!this.wasReady) {
        this.wasReady = true;
        notify?.({ ready: true });
      }
    });
    const down = (): void => {
      if (this.wasReady) {
        this.wasReady = false;
        notify?.({ ready: false, error: this.lastError });
      }
    };
    client.on('close', down);
    client.on('end', down);
  }

  async evaluate(ops: readonly CounterOp[], options: EvaluateOptions): Promise<EvaluateResult> {
    if (ops.length === 0) return { denied: false, outcomes: [] };
    validateOps(ops);
    const now = options.now === undefined ? undefined : Math.floor(options.now);
    const { keys, argv } = marshalEvaluate(ops, now, options.chargeOnDeny);
    return parseEvaluateReply(await this.runScript(keys, argv), ops.length);
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
    if (this.client.status === 'ready') return Promise.resolve();
    if (this.client.status === 'wait') this.client.connect().catch(() => undefined);
    return new Promise((resolve, reject) => {
      const onReady = (): void => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.client.off('ready', onReady);
        const why = this.lastError ? `: ${this.lastError.message}` : '';
        reject(new BackendUnavailableError(`redis not ready after ${timeoutMs} ms${why}`, { cause: this.lastError }));
      }, timeoutMs);
      this.client.once('ready', onReady);
    });
  }

  /** QUIT (lets in-flight replies arrive), or drops the socket if that fails. Idempotent. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.client.status === 'end') return;
    if (this.client.status !== 'ready') {
      this.client.disconnect(); // never connected, or reconnecting: nothing to flush
      return;
    }
    try {
      await this.client.quit();
    } catch {
      this.client.disconnect();
    }
  }
}
