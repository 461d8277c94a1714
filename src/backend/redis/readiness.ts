import type { EventEmitter } from 'node:events';
import { BackendUnavailableError } from '../../errors.js';

/** A connectivity transition, for logs and gauges (reported once per change, not per call). */
export interface RedisStateChange {
  readonly ready: boolean;
  /** The last connection error seen, when the backend became unready. */
  readonly error?: Error | undefined;
}

/** What the tracker needs of an ioredis `Redis` or `Cluster` client. */
export interface StatusEmitter extends EventEmitter {
  readonly status: string;
  connect(): Promise<void>;
}

/**
 * Follows an ioredis client's readiness and reports transitions once each: `ready` after the
 * client (a standalone or sentinel-managed connection, or a whole cluster with its slot map)
 * became usable, `not ready` when it closed or ended. The last error event is kept to explain
 * the drop. Shared by the standalone/sentinel and the cluster backend.
 */
export class ReadinessTracker {
  private wasReady = false;
  lastError: Error | undefined;

  constructor(
    private readonly client: StatusEmitter,
    notify: ((change: RedisStateChange) => void) | undefined,
  ) {
    const remember = (err: Error): void => {
      this.lastError = err;
    };
    client.on('error', remember);
    client.on('node error', remember); // Cluster: one node's connection failed
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

  /**
   * Resolves once the client is ready (at once if it is); rejects with BackendUnavailableError
   * after `timeoutMs`. For start-up and tests: `evaluate` never waits for a connection.
   */
  waitReady(timeoutMs: number, what: string): Promise<void> {
    const client = this.client;
    if (client.status === 'ready') return Promise.resolve();
    if (client.status === 'wait') client.connect().catch(() => undefined);
    return new Promise((resolve, reject) => {
      const onReady = (): void => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        client.off('ready', onReady);
        const why = this.lastError ? `: ${this.lastError.message}` : '';
        reject(new BackendUnavailableError(`${what} not ready after ${timeoutMs} ms${why}`, { cause: this.lastError }));
      }, timeoutMs);
      client.once('ready', onReady);
    });
  }
}
