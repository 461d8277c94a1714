import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';

/**
 * A small xDS management server for tests, standing in for Envoy Gateway's control plane: ADS
 * state of the world (`envoy.service.discovery.v3.AggregatedDiscoveryService/
 * StreamAggregatedResources`) per the public protos and Envoy's documented protocol
 * (https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol), written independently of
 * meshlimit's client: the service comes from @grpc/proto-loader, resources are encoded with
 * protobufjs straight from proto/ratelimit/config/ratelimit/v3/rls_conf.proto.
 *
 * Behaviour, as go-control-plane's snapshot cache serves Envoy Gateway's rate-limit configs:
 * - `setSnapshot(version, resources)` is the state of the world; each subscribed stream gets it
 *   as one DiscoveryResponse with a fresh nonce, unless it is still waiting for the stream's
 *   answer to the previous response (it then gets the newest snapshot right after that answer);
 * - a stream's first request subscribes it; it is sent the snapshot when its `version_info`
 *   differs from the snapshot's (a client that already has the version gets nothing);
 * - a request whose `response_nonce` is not the last one sent on its stream is stale and ignored
 *   (recorded all the same); after a NACK the same version is not sent again;
 * - optional TLS, and mTLS when the client certificate is required.
 *
 * Every request is recorded with its stream, so tests can assert ACKs, NACKs and the node.
 */

const PROTO_DIR = fileURLToPath(new URL('../../proto/', import.meta.url));
export const RATE_LIMIT_CONFIG_TYPE = 'type.googleapis.com/ratelimit.config.ratelimit.v3.RateLimitConfig';

/** A resource to serve: a RateLimitConfig as a protobufjs plain object (snake_case), or raw Any fields. */
export type XdsResource =
  { readonly config: Record<string, unknown> } | { readonly raw: { readonly typeUrl: string; readonly value: Buffer } };

export interface RecordedRequest {
  readonly stream: number;
  readonly versionInfo: string;
  readonly responseNonce: string;
  readonly typeUrl: string;
  readonly resourceNames: readonly string[];
  readonly node: { readonly id: string; readonly metadata: Record<string, unknown>; readonly userAgentName: string } | null;
  readonly errorDetail: { readonly code: number; readonly message: string } | null;
  /** Request headers (gRPC metadata) of the stream. */
  readonly headers: Readonly<Record<string, string>>;
}

export interface XdsServerOptions {
  /** Port to bind (restarting a server on the port of one that went away); 0 picks a free one. */
  readonly port?: number;
  readonly tls?: { readonly key: Buffer; readonly cert: Buffer; readonly ca?: Buffer; readonly requireClientCert?: boolean };
}

interface Stream {
  readonly id: number;
  readonly call: grpc.ServerDuplexStream<Record<string, unknown>, Record<string, unknown>>;
  subscribed: boolean;
  lastNonce: string;
  lastSentVersion: string | undefined;
  awaitingAnswer: boolean;
}

let rlsConfigType: protobuf.Type | undefined;
/** Encodes a RateLimitConfig given as a plain object (snake_case, enums by name or number). */
export function encodeRateLimitConfig(config: Record<string, unknown>): Buffer {
  if (rlsConfigType === undefined) {
    const root = new protobuf.Root();
    root.resolvePath = (_o, target) => PROTO_DIR + target;
    root.loadSync('ratelimit/config/ratelimit/v3/rls_conf.proto', { keepCase: true });
    rlsConfigType = root.lookupType('ratelimit.config.ratelimit.v3.RateLimitConfig');
  }
  return Buffer.from(rlsConfigType.encode(rlsConfigType.fromObject(config)).finish());
}

export class XdsTestServer {
  readonly requests: RecordedRequest[] = [];
  readonly #server = new grpc.Server();
  readonly #streams = new Map<number, Stream>();
  readonly #waiters = new Set<() => void>();
  #snapshot: { version: string; resources: { type_url: string; value: Buffer }[] } | undefined;
  #nextStream = 1;
  #nextNonce = 1;
  #port = 0;

  static async start(options: XdsServerOptions = {}): Promise<XdsTestServer> {
    const s = new XdsTestServer();
    await s.#listen(options);
    return s;
  }

  get port(): number {
    return this.#port;
  }

  /** Streams open now. */
  get openStreams(): number {
    return this.#streams.size;
  }

  /** Serves a new state of the world to every subscribed stream. */
  setSnapshot(version: string, resources: readonly XdsResource[]): void {
    const encoded = resources.map((r) =>
      'raw' in r
        ? { type_url: r.raw.typeUrl, value: r.raw.value }
        : { type_url: RATE_LIMIT_CONFIG_TYPE, value: encodeRateLimitConfig(r.config) },
    );
    this.#snapshot = { version, resources: encoded };
    for (const s of this.#streams.values()) if (s.subscribed && !s.awaitingAnswer) this.#send(s);
  }

  /** Resolves with the first recorded request (from now on, or already recorded) that `match` accepts. */
  async waitForRequest(match: (r: RecordedRequest) => boolean, timeoutMs = 10_000): Promise<RecordedRequest> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const found = this.requests.find(match);
      if (found !== undefined) return found;
      if (Date.now() > end) throw new Error(`no matching xDS request within ${timeoutMs} ms; got ${JSON.stringify(this.requests)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 50);
        this.#waiters.add(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** The ACK of `version` (the request carrying it with the nonce of the response that sent it). */
  waitForAck(version: string, timeoutMs?: number): Promise<RecordedRequest> {
    return this.waitForRequest((r) => r.versionInfo === version && r.responseNonce !== '' && r.errorDetail === null, timeoutMs);
  }

  /** The next NACK recorded after `after` requests. */
  waitForNack(after = 0, timeoutMs?: number): Promise<RecordedRequest> {
    return this.waitForRequest((r) => this.requests.indexOf(r) >= after && r.errorDetail !== null, timeoutMs);
  }

  /** The management server going away: every stream is cut, the port closed. */
  async stop(): Promise<void> {
    this.#server.forceShutdown();
    this.#streams.clear();
  }

  async #listen(options: XdsServerOptions): Promise<void> {
    const def = protoLoader.loadSync('envoy/service/discovery/v3/ads.proto', {
      keepCase: true,
      longs: Number,
      enums: String,
      defaults: true,
      arrays: true,
      includeDirs: [PROTO_DIR],
    });
    const service = def['envoy.service.discovery.v3.AggregatedDiscoveryService'] as protoLoader.ServiceDefinition;
    this.#server.addService(service, { StreamAggregatedResources: (call: Stream['call']) => this.#onStream(call) });
    const tls = options.tls;
    const creds =
      tls === undefined
        ? grpc.ServerCredentials.createInsecure()
        : grpc.ServerCredentials.createSsl(
            tls.ca ?? null,
            [{ private_key: tls.key, cert_chain: tls.cert }],
            tls.requireClientCert ?? false,
          );
    this.#port = await new Promise<number>((resolve, reject) =>
      this.#server.bindAsync(`127.0.0.1:${options.port ?? 0}`, creds, (err, port) => (err ? reject(err) : resolve(port))),
    );
  }

  #onStream(call: Stream['call']): void {
    const stream: Stream = {
      id: this.#nextStream++,
      call,
      subscribed: false,
      lastNonce: '',
      lastSentVersion: undefined,
      awaitingAnswer: false,
    };
    this.#streams.set(stream.id, stream);
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(call.metadata.getMap())) headers[k] = String(v);
    call.on('data', (req: Record<string, unknown>) => this.#onRequest(stream, req, headers));
    const done = (): void => {
      this.#streams.delete(stream.id);
    };
    call.on('end', () => {
      done();
      call.end();
    });
    call.on('error', done);
    call.on('cancelled', done);
  }

  #onRequest(stream: Stream, req: Record<string, unknown>, headers: Record<string, string>): void {
    const node = req.node as { id: string; metadata: { fields: Record<string, unknown> } | null; user_agent_name: string } | null;
    const error = req.error_detail as { code: number; message: string } | null;
    const recorded: RecordedRequest = {
      stream: stream.id,
      versionInfo: req.version_info as string,
      responseNonce: req.response_nonce as string,
      typeUrl: req.type_url as string,
      resourceNames: req.resource_names as string[],
      node: node === null ? null : { id: node.id, metadata: node.metadata?.fields ?? {}, userAgentName: node.user_agent_name },
      errorDetail: error === null ? null : { code: error.code, message: error.message },
      headers,
    };
    this.requests.push(recorded);
    for (const w of [...this.#waiters]) w();
    this.#waiters.clear();
    if (recorded.typeUrl !== RATE_LIMIT_CONFIG_TYPE) return;
    if (!stream.subscribed) {
      // The first request of a stream subscribes it, whatever nonce it carries (a nonce from an
      // earlier stream means nothing on this one).
      stream.subscribed = true;
      if (this.#snapshot !== undefined && this.#snapshot.version !== recorded.versionInfo) this.#send(stream);
      return;
    }
    if (recorded.responseNonce !== stream.lastNonce) return; // stale: an answer to an older response
    stream.awaitingAnswer = false;
    // A newer snapshot set while the client was busy with the previous one goes out now.
    if (this.#snapshot !== undefined && this.#snapshot.version !== stream.lastSentVersion) this.#send(stream);
  }

  #send(stream: Stream): void {
    const snap = this.#snapshot!;
    stream.lastNonce = String(this.#nextNonce++);
    stream.lastSentVersion = snap.version;
    stream.awaitingAnswer = true;
    stream.call.write({
      version_info: snap.version,
      resources: snap.resources,
      type_url: RATE_LIMIT_CONFIG_TYPE,
      nonce: stream.lastNonce,
      control_plane: { identifier: 'meshlimit-test-xds-server' },
    });
  }
}
