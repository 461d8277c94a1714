import type { Cluster, Redis } from 'ioredis';
import { BackendError, BackendUnavailableError, QuotaEnvoysError } from '../errors.js';
import { createClusterClient, createRedisClient, type RedisConnectionOptions } from '../backend/redis/connection.js';
import { toBackendError } from '../backend/redis/errors.js';
import { assembleQuotaReportScript, type AssembledScript } from '../backend/redis/lua-assembler.js';
import { MAX_FILL_INTERVAL_SEC, FLOOR_FRACTION, RECLAIM_INTERVALS, TTL_INTERVALS } from './allocate.js';
import { quotaStateKey } from './keys.js';
import { assignmentOf, checkReport, type CheckedReport } from './report.js';
import { MAX_ENVOYS_PER_RULE, type QuotaAssignment, type QuotaReport, type QuotaStore } from './types.js';

export interface RedisQuotaStoreOptions {
  /** The same connection settings as the counter backend (REDIS_URL, REDIS_TYPE, REDIS_AUTH, ...). */
  readonly redis: RedisConnectionOptions;
  /** Most Envoys per rule counter (default MAX_ENVOYS_PER_RULE; tests lower it). */
  readonly maxEnvoysPerRule?: number;
  /** The assembled lua/quota-report.lua (default: read from lua/ at construction). */
  readonly script?: AssembledScript;
}

/** The ioredis command lua/quota-report.lua is registered under. */
const COMMAND = 'meshlimitQuotaReport';
type Client = Redis | Cluster;
type Run = (numKeys: number, ...keysAndArgs: string[]) => Promise<unknown>;

/**
 * Quota division in Redis: each rule's Envoys in a hash beside its RLS counter (same hash tag),
 * updated by one script per report (lua/quota-report.lua) on Redis's clock, so any replica can
 * serve any Envoy and a restart loses nothing. Standalone, Sentinel and Cluster alike: every key a
 * report touches shares the counter's slot.
 *
 * Its own connection (one client), apart from the counter backend's: RLQS traffic is one script
 * per bucket per reporting interval, and sharing the backend's batching pipeline would tie the
 * two protocols' failure handling together. Errors are the backend's: transient ones
 * (ML_ERR_BACKEND_UNAVAILABLE) for the breaker and failure policy, script errors ML_ERR_BACKEND.
 */
export class RedisQuotaStore implements QuotaStore {
  private readonly client: Client;
  private readonly run: Run;
  private readonly maxEnvoys: string;

  constructor(options: RedisQuotaStoreOptions) {
    const script = options.script ?? assembleQuotaReportScript();
    this.client = options.redis.type === 'cluster' ? createClusterClient(options.redis) : createRedisClient(options.redis);
    // Connection errors surface on the calls (ML_ERR_BACKEND_UNAVAILABLE) and the counter
    // backend, on the same Redis, logs the transitions; without a listener ioredis would print
    // every reconnection failure as an unhandled error event.
    this.client.on('error', () => undefined);
    this.client.defineCommand(COMMAND, { lua: script.source });
    this.run = (this.client as unknown as Record<string, Run>)[COMMAND]!.bind(this.client);
    this.maxEnvoys = String(options.maxEnvoysPerRule ?? MAX_ENVOYS_PER_RULE);
  }

  async report(reports: readonly QuotaReport[], nowMs?: number): Promise<QuotaAssignment[]> {
    const checked = reports.map(checkReport);
    // One script per report, sent together: ioredis keeps their order per connection, so two
    // reports of one rule are applied in the order given.
    return Promise.all(checked.map((r) => this.one(r, nowMs)));
  }

  private async one(r: CheckedReport, nowMs: number | undefined): Promise<QuotaAssignment> {
    const reply = await this.call([
      r.ruleKey,
      quotaStateKey(r.ruleKey),
      'r',
      r.envoyId,
      nowMs === undefined ? '' : String(nowMs),
      String(r.allowed),
      String(r.denied),
      String(r.interval),
      String(r.limit.requestsPerUnit),
      String(r.limit.windowMs),
      this.maxEnvoys,
      String(FLOOR_FRACTION),
      String(TTL_INTERVALS),
      String(RECLAIM_INTERVALS),
      String(MAX_FILL_INTERVAL_SEC),
      r.elapsedSec < 1 ? '1' : '0',
    ]);
    if (!Array.isArray(reply) || reply.length < 2 || !reply.every((v) => typeof v === 'number')) {
      throw new BackendError(`lua/quota-report.lua answered ${JSON.stringify(reply)}, expected [tokensPerFill, fillIntervalSec, ttlSec]`);
    }
    const [tokens, fill, ttl] = reply as number[];
    if (tokens === -1) {
      throw new QuotaEnvoysError(
        `RLQS: rule counter ${r.ruleKey} is already divided among ${fill} Envoys (the most, MAX_ENVOYS_PER_RULE); Envoy ${r.envoyId} gets no share until one is silent for 4 reporting intervals or forgotten`,
      );
    }
    return assignmentOf(tokens!, fill!, ttl!);
  }

  async forget(ruleKey: string, envoyId: string, nowMs?: number): Promise<void> {
    await this.call([ruleKey, quotaStateKey(ruleKey), 'f', envoyId, nowMs === undefined ? '' : String(nowMs)]);
  }

  private async call(keysAndArgs: string[]): Promise<unknown> {
    try {
      return await this.run(2, ...keysAndArgs);
    } catch (err) {
      throw toBackendError(err);
    }
  }

  waitReady(timeoutMs = 5_000): Promise<void> {
    if (this.client.status === 'ready') return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onReady = (): void => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.client.off('ready', onReady);
        reject(
          new BackendUnavailableError(
            `RLQS quota store: Redis not ready after ${timeoutMs} ms (client status ${this.client.status}); check REDIS_URL`,
          ),
        );
      }, timeoutMs);
      this.client.once('ready', onReady);
    });
  }

  async close(): Promise<void> {
    try {
      await this.client.quit();
    } catch {
      this.client.disconnect();
    }
  }
}
