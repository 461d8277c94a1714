import type { EventEmitter } from 'node:events';
import { BackendUnavailableError } from '../../errors.js';

/** How ioredis words a command refused on a dead stream with the offline queue off. */
const STREAM_NOT_WRITEABLE = "Stream isn't writeable";

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
 * became usable, `not ready` when it closed or ended. The errors seen are kept to explain the
 * drop ({@link lastError}). Shared by the standalone/sentinel and the cluster backend.
 */
export class ReadinessTracker {
  private wasReady = false;
  /** The last TLS error since the client was last ready (see {@link lastError}). */
  private tlsError: Error | undefined;
  private latest: Error | undefined;

  constructor(
    private readonly client: StatusEmitter,
    notify: ((change: RedisStateChange) => void) | undefined,
  ) {
    const remember = (err: Error): void => {
      // A command refused on a stream that just died says nothing about why it died; the error
      // that killed it (a TLS alert such as "certificate required", a reset) came first: keep it.
      if (this.latest !== undefined && err.message.startsWith(STREAM_NOT_WRITEABLE)) return;
      this.latest = withNodeError(err);
      if (isTlsError(err)) this.tlsError = this.latest;
    };
    client.on('error', remember);
    client.on('node error', remember); // Cluster: one node's connection failed
    client.on('ready', () => {
      this.tlsError = undefined;
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

  /**
   * Why the client is not usable, best first: a TLS error seen since it was last ready (a refused
   * certificate, an untrusted chain, a name mismatch), which a later generic error of the same
   * failed attempt would hide (a TLS 1.3 server refuses a client certificate after the handshake,
   * so the client's first write often meets a reset before it reads the alert); else the last
   * error seen.
   */
  get lastError(): Error | undefined {
    return this.tlsError ?? this.latest;
  }
}

/** An error of the TLS layer: an OpenSSL error or alert, or a certificate the client refused. */
function isTlsError(err: Error): boolean {
  const e = err as Error & { code?: unknown; lastNodeError?: Error | null };
  if (e.lastNodeError instanceof Error) return isTlsError(e.lastNodeError);
  return typeof e.code === 'string' && /^ERR_SSL_|^ERR_TLS_|CERT|UNABLE_TO_/.test(e.code);
}

/**
 * The error with the node error inside it spelled out: a cluster that could not load its slot
 * map says only "Failed to refresh slots cache." (ioredis' ClusterAllFailedError), and keeps why
 * in `lastNodeError`.
 */
function withNodeError(err: Error): Error {
  const last = (err as Error & { lastNodeError?: Error | null }).lastNodeError;
  if (!(last instanceof Error)) return err;
  const explained = new Error(`${err.message} Last node error: ${last.message}`, { cause: err });
  return Object.assign(explained, { code: (last as Error & { code?: unknown }).code });
}
