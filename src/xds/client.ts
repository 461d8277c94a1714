import * as grpc from '@grpc/grpc-js';
import type { XdsApplyResult, XdsRateLimitConfig } from '../config/index.js';
import { connectRetryDelay, ReconnectBackoff, type ReconnectBackoffOptions } from './backoff.js';
import { discoveryRequest, toDiscoveryResponse, unpackResources, type DiscoveryResponse, type NodeIdentity } from './mapping.js';
import { ADS_SOTW_PATH, decodeMessage, encodeMessage, RATE_LIMIT_CONFIG_TYPE_URL, xdsTypes } from './protos.js';

/**
 * meshlimit as an xDS client: one ADS state-of-the-world stream
 * (`AggregatedDiscoveryService/StreamAggregatedResources`) subscribed to every
 * `RateLimitConfig` of this node, as envoyproxy/ratelimit's `GRPC_XDS_SOTW` provider does.
 *
 * Protocol (https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol):
 * - a stream opens with a request carrying the node, the type URL, no resource names (all of
 *   them), the last version applied ('' at first; kept across streams, as Envoy does, so a server
 *   that still has that version need not resend it) and no nonce (nonces belong to one stream);
 * - each response is the whole state of the world; it is handed to `updates.apply` and answered
 *   before the next is read: an ACK carries the response's version and nonce, a NACK the version
 *   still applied, the response's nonce and `error_detail` (code INTERNAL as Envoy sends it, and
 *   meshlimit's validation message naming the resource and field). A NACKed config is not applied;
 *   the last good one keeps answering.
 *
 * Connection: every attempt uses a fresh channel, so the waits below are the only retry schedule
 * (no leftover gRPC reconnect backoff). An attempt that never reached the server is retried after
 * `connectRetryMs` +-50%; a stream lost after the connection was up, after the reconnect backoff
 * (./backoff.ts). Losing the server never touches the applied config. Keepalive pings every 5
 * minutes (the least a default grpc-go server accepts) find a server that vanished silently.
 */

export type XdsConnectionState = 'connecting' | 'connected' | 'disconnected';

export interface XdsStateChange {
  readonly state: XdsConnectionState;
  readonly previous: XdsConnectionState | undefined;
  readonly target: string;
  /** Why the stream ended (`disconnected`). */
  readonly error?: string | undefined;
  /** When the next attempt starts (`disconnected`). */
  readonly retryInMs?: number | undefined;
}

/** pino-compatible subset. */
export interface XdsLogger {
  debug(obj: Record<string, unknown>, msg: string): void;
  warn(obj: Record<string, unknown>, msg: string): void;
}

export interface XdsClientOptions {
  /** CONFIG_GRPC_XDS_SERVER_URL, a gRPC target (`host:port`). */
  readonly target: string;
  readonly node: NodeIdentity;
  /** CONFIG_GRPC_XDS_CLIENT_ADDITIONAL_HEADERS: metadata sent with the stream. */
  readonly headers: Readonly<Record<string, string>>;
  /** Called for every attempt (certificate files are re-read, so a rotation is picked up); may throw. */
  readonly credentials: () => grpc.ChannelCredentials;
  /** CONFIG_GRPC_XDS_SERVER_TLS_SAN: the name the server certificate must carry, instead of the target's host. */
  readonly serverName?: string | undefined;
  /** XDS_CLIENT_MAX_MSG_SIZE_IN_BYTES; gRPC's default (4 MiB) when undefined. */
  readonly maxReceiveMessageBytes?: number | undefined;
  /** CONFIG_GRPC_XDS_SERVER_CONNECT_RETRY_INTERVAL. */
  readonly connectRetryMs: number;
  /** XDS_CLIENT_BACKOFF_*. */
  readonly backoff: ReconnectBackoffOptions;
  readonly updates: {
    apply(resources: readonly XdsRateLimitConfig[]): XdsApplyResult;
    reject(error: Error): XdsApplyResult;
  };
  /** Called on every state transition (never twice for the same state). */
  readonly onState?: (change: XdsStateChange) => void;
  readonly logger?: XdsLogger;
  readonly random?: () => number;
}

const KEEPALIVE_MS = 300_000;
const KEEPALIVE_TIMEOUT_MS = 20_000;

/** One stream's bookkeeping. */
interface Attempt {
  readonly client: grpc.Client;
  readonly call: grpc.ClientDuplexStream<Record<string, unknown>, DiscoveryResponse>;
  established: boolean;
  over: boolean;
}

export class XdsClient {
  readonly #opts: XdsClientOptions;
  readonly #backoff: ReconnectBackoff;
  #state: XdsConnectionState | undefined;
  #attempt: Attempt | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** The version_info of the last applied response ('' before the first). */
  #acceptedVersion = '';
  #started = false;
  #closed = false;

  constructor(options: XdsClientOptions) {
    this.#opts = options;
    this.#backoff = new ReconnectBackoff({ ...options.backoff, random: options.random ?? options.backoff.random });
  }

  get state(): XdsConnectionState | undefined {
    return this.#state;
  }

  /** The version_info of the last ACKed response ('' before the first). */
  get acceptedVersion(): string {
    return this.#acceptedVersion;
  }

  start(): void {
    if (this.#started || this.#closed) return;
    this.#started = true;
    this.#connect();
  }

  /** Ends the stream and stops reconnecting (idempotent). */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    const a = this.#attempt;
    this.#attempt = undefined;
    if (a !== undefined) this.#end(a);
  }

  #connect(): void {
    if (this.#closed) return;
    // Attempts while disconnected are not transitions: they are logged at debug only.
    if (this.#state === undefined) this.#setState({ state: 'connecting' });
    else this.#opts.logger?.debug({ target: this.#opts.target }, 'connecting to the xDS management server');
    let client: grpc.Client;
    try {
      client = new grpc.Client(this.#opts.target, this.#opts.credentials(), this.#channelOptions());
    } catch (err) {
      this.#retry(false, err instanceof Error ? err.message : String(err));
      return;
    }
    const metadata = new grpc.Metadata();
    for (const [k, v] of Object.entries(this.#opts.headers)) metadata.add(k, v);
    const types = xdsTypes();
    const call = client.makeBidiStreamRequest(
      ADS_SOTW_PATH,
      (value: Record<string, unknown>) => encodeMessage(types.discoveryRequest, value),
      (bytes: Buffer) => toDiscoveryResponse(decodeMessage(types.discoveryResponse, bytes)),
      metadata,
      {},
    );
    const attempt: Attempt = { client, call, established: false, over: false };
    this.#attempt = attempt;
    this.#watchReady(attempt);
    // 'error' always comes with 'status'; the listener keeps an error status from being thrown.
    call.on('error', () => undefined);
    call.on('status', (s: grpc.StatusObject) => this.#onStreamEnd(attempt, `${grpc.status[s.code]}: ${s.details}`));
    call.on('data', (r: DiscoveryResponse) => this.#onResponse(attempt, r));
    call.write(discoveryRequest(this.#opts.node, this.#acceptedVersion, ''));
  }

  #channelOptions(): grpc.ChannelOptions {
    const o: grpc.ChannelOptions = { 'grpc.keepalive_time_ms': KEEPALIVE_MS, 'grpc.keepalive_timeout_ms': KEEPALIVE_TIMEOUT_MS };
    if (this.#opts.serverName !== undefined) o['grpc.ssl_target_name_override'] = this.#opts.serverName;
    if (this.#opts.maxReceiveMessageBytes !== undefined) o['grpc.max_receive_message_length'] = this.#opts.maxReceiveMessageBytes;
    return o;
  }

  /** Marks the attempt connected once its channel is READY (TCP, TLS and HTTP/2 up). */
  #watchReady(attempt: Attempt): void {
    const channel = attempt.client.getChannel();
    const watch = (current: grpc.connectivityState): void => {
      channel.watchConnectivityState(current, Infinity, () => {
        if (attempt.over) return;
        const now = channel.getConnectivityState(false);
        if (now === grpc.connectivityState.READY) this.#connected(attempt);
        else if (now !== grpc.connectivityState.SHUTDOWN) watch(now);
      });
    };
    watch(channel.getConnectivityState(true));
  }

  #connected(attempt: Attempt): void {
    if (attempt.established || attempt.over) return;
    attempt.established = true;
    this.#setState({ state: 'connected' });
  }

  #onResponse(attempt: Attempt, response: DiscoveryResponse): void {
    if (attempt.over) return;
    this.#connected(attempt);
    this.#backoff.reset();
    const { node, logger } = this.#opts;
    if (response.typeUrl !== RATE_LIMIT_CONFIG_TYPE_URL) {
      // ADS only sends the types a client asked for; a stray one is not ours to (N)ACK.
      logger?.warn(
        { typeUrl: response.typeUrl, version: response.versionInfo },
        'xDS response of a type meshlimit did not ask for; ignored',
      );
      return;
    }
    let result: XdsApplyResult;
    try {
      result = this.#opts.updates.apply(unpackResources(response));
    } catch (err) {
      // A ResourceDecodeError names the resource; anything else would be a bug, NACKed all the
      // same rather than thrown out of an event handler.
      result = this.#opts.updates.reject(err instanceof Error ? err : new Error(String(err)));
    }
    const ctx = {
      version: response.versionInfo,
      nonce: response.nonce,
      resources: response.resources.length,
      controlPlane: response.controlPlane,
    };
    if (result.ok) {
      this.#acceptedVersion = response.versionInfo;
      attempt.call.write(discoveryRequest(node, response.versionInfo, response.nonce));
      logger?.debug(ctx, 'xDS config ACKed');
    } else {
      attempt.call.write(discoveryRequest(node, this.#acceptedVersion, response.nonce, result.message));
      logger?.debug({ ...ctx, keptVersion: this.#acceptedVersion }, 'xDS config NACKed');
    }
  }

  #onStreamEnd(attempt: Attempt, why: string): void {
    if (attempt.over) return;
    this.#end(attempt);
    if (this.#attempt === attempt) this.#attempt = undefined;
    this.#retry(attempt.established, why);
  }

  #end(attempt: Attempt): void {
    attempt.over = true;
    attempt.call.cancel();
    attempt.client.close();
  }

  #retry(established: boolean, error: string): void {
    if (this.#closed) return;
    const retryInMs = established ? this.#backoff.next() : connectRetryDelay(this.#opts.connectRetryMs, this.#opts.random);
    this.#setState({ state: 'disconnected', error, retryInMs });
    this.#opts.logger?.debug({ target: this.#opts.target, error, retryInMs }, 'xDS management server unreachable; retrying');
    this.#timer = setTimeout(() => this.#connect(), retryInMs);
  }

  #setState(change: Omit<XdsStateChange, 'previous' | 'target'>): void {
    if (change.state === this.#state) return;
    const previous = this.#state;
    this.#state = change.state;
    this.#opts.onState?.({ ...change, previous, target: this.#opts.target });
  }
}
