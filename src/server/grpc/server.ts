/**
 * The gRPC front door: `envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit` and
 * `grpc.health.v1.Health` on one grpc-js server.
 *
 * Failure contract (Envoy's `failure_mode_deny` decides what a failed call means):
 * - `MeshlimitError` -> its `grpcStatus` (src/errors.ts) with its message as details and its
 *   code in the `meshlimit-error-code` trailer: a backend outage is UNAVAILABLE, a malformed
 *   request INVALID_ARGUMENT, a passed deadline DEADLINE_EXCEEDED;
 * - anything else -> INTERNAL 'internal error' (logged; details never leak internals);
 * - never OK with code UNKNOWN.
 */
import * as grpc from '@grpc/grpc-js';
import type { ServiceDefinition } from '@grpc/proto-loader';
import { CancelledError, DeadlineExceededError, GrpcCode, isMeshlimitError } from '../../errors.js';
import type { StringLimits } from '../../limiter/string-limits.js';
import type { Decision, RateLimitCheck } from '../../limiter/types.js';
import type { DecideOptions } from '../decide.js';
import { decodeRateLimitRequest } from './codec-decode.js';
import { encodeRateLimitResponse } from './codec-encode.js';
import { createHealthService, type HealthState } from './health.js';
import {
  decisionToResponse,
  type SoftLimit,
  requestToCheck,
  EXPLAIN_HEADER,
  EXPLAIN_TRAILER,
  explainLimits,
  type ResponseHeaderNames,
  type WireRateLimitRequest,
  type WireRateLimitResponse,
} from './mapping.js';
import { HEALTH_SERVICE, loadServerPackage, RLQS_SERVICE, RLS_SERVICE, serviceDefinition } from './protos.js';
import type { RlqsService } from './rlqs/service.js';
import type { GrpcTls } from './tls.js';
import { DEFAULT_TRANSPORT_LIMITS, TransportGuard, transportServerOptions, type TransportLimits } from './transport-guard.js';
import { clearStaleSocket } from './unix-socket.js';
import type { TransportAction } from '../../telemetry/metrics.js';
import { tracingEnabled } from '../../telemetry/tracing.js';

/** What the handler needs from the limiter (src/limiter/limiter.ts, wrapped by the composition root). */
export interface RateLimitService {
  /**
   * @param opts the gRPC deadline, the trace carrier (only when tracing is enabled), and the call
   *   itself as the cancellation probe (a call its client cancels while Redis requests wait for
   *   their batch is dropped unsent, see src/backend/redis/batching.ts).
   * @returns the decision, or a promise of it when it needs I/O (a decision the service can make
   *   in-process is answered without a promise). Failures are thrown or rejected.
   */
  shouldRateLimit(check: RateLimitCheck, opts: DecideOptions): Decision | Promise<Decision>;
}

/** The subset of a pino logger the adapter uses. */
export interface GrpcLogger {
  error(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

export interface ShouldRateLimitHandlerOptions {
  readonly limiter: RateLimitService;
  /**
   * LIMIT_RESPONSE_HEADERS_ENABLED and LIMIT_*_HEADER: the names of the rate-limit headers added
   * to responses; undefined when they are off.
   */
  readonly headers?: ResponseHeaderNames | undefined;
  /** DEGRADED_HEADER: response header naming the reason of a degraded answer; none when undefined. */
  readonly degradedHeader?: string | undefined;
  /** SOFT_LIMIT_HEADER / SOFT_LIMIT_SHARE; undefined when off. */
  readonly softLimit?: SoftLimit | undefined;
  /** Largest domain, key and value accepted (MAX_DESCRIPTOR_VALUE_BYTES); the defaults when undefined. */
  readonly stringLimits?: StringLimits | undefined;
  readonly logger?: GrpcLogger | undefined;
  /**
   * Called once per failed call with the error and the status sent (for metrics); `startedAt`
   * (performance.now() when the limiter was asked) is undefined when the call failed before
   * that (a malformed request, a passed deadline).
   */
  readonly onError?: ((err: unknown, code: number, startedAt: number | undefined) => void) | undefined;
  /**
   * Called once per answered call with performance.now() of when the limiter was asked, before
   * the answer is sent (for the request duration and count metrics). It runs inside the handler's
   * own async frame, so timing a request costs no extra promise.
   */
  readonly onAnswered?: ((startedAt: number, decision: Decision) => void) | undefined;
}

export interface GrpcServerOptions extends ShouldRateLimitHandlerOptions {
  readonly health: HealthState;
  /** Bounds on connections, streams, pings and resets (the GRPC_* settings); default {@link DEFAULT_TRANSPORT_LIMITS}. */
  readonly limits?: TransportLimits | undefined;
  /** Called on each action the transport guard takes against a client (for a counter). */
  readonly onTransportAction?: ((action: TransportAction) => void) | undefined;
  /** grpc-js server options, merged over {@link DEFAULT_SERVER_OPTIONS} and the limits' options. */
  readonly serverOptions?: grpc.ServerOptions | undefined;
  /** TLS (GRPC_SERVER_USE_TLS, ./tls.ts): the credentials every listen uses; plaintext when undefined. */
  readonly tls?: GrpcTls | undefined;
  /** RLQS (RLQS_ENABLED, ./rlqs/service.ts); not served when undefined. */
  readonly rlqs?: RlqsService | undefined;
}

export interface GrpcServer {
  readonly server: grpc.Server;
  /**
   * Binds `host:port` (0 picks a free port) and starts serving; resolves with the bound port.
   * `credentials` default to the server's TLS, else plaintext.
   */
  listen(host: string, port: number, credentials?: grpc.ServerCredentials): Promise<number>;
  /**
   * GRPC_UDS: binds a unix domain socket at `path` (replacing a stale socket file left by a
   * previous process, see ./unix-socket.ts) and starts serving.
   */
  listenUnix(path: string, credentials?: grpc.ServerCredentials): Promise<void>;
  /**
   * Marks every health service NOT_SERVING, ends Watch streams, lets in-flight calls finish for
   * up to `graceMs` (tryShutdown), then cuts the rest (forceShutdown).
   */
  close(graceMs: number): Promise<void>;
}

/**
 * Defaults sized for Envoy as the only client: RLS messages are small (the limiter accepts at
 * most 64 descriptors of 32 entries, values of at most MAX_DESCRIPTOR_VALUE_BYTES), so 1 MiB is
 * generous; a larger message is RESOURCE_EXHAUSTED before it is decoded. Connections, streams,
 * keepalive and resets are bounded by the GRPC_* settings (./transport-guard.ts).
 *
 * Channelz is off: grpc-js otherwise records every call and message of every connection (counts
 * and `Date` timestamps) for a `grpc.channelz.v1` service that meshlimit does not serve, so nobody
 * could read them. Its handler was 0.6% of the busy time in a profile under load; instruction
 * counts per call (callgrind) showed no difference beyond their +-3% noise. Calls are counted and
 * timed by the admin port's `/metrics` instead.
 */
export const DEFAULT_SERVER_OPTIONS: Readonly<grpc.ServerOptions> = Object.freeze({
  'grpc.max_receive_message_length': 1024 * 1024,
  'grpc.max_send_message_length': 4 * 1024 * 1024,
  'grpc.enable_channelz': 0,
});

const ERROR_CODE_TRAILER = 'meshlimit-error-code';

/**
 * The ShouldRateLimit handler, exported so it can be tested without a socket. Hot path: no
 * per-request logging and no closures; a decision the limiter makes synchronously (the memory
 * backend) is answered in the same turn without any promise, one that needs Redis with one.
 */
export function createShouldRateLimitHandler(
  opts: ShouldRateLimitHandlerOptions,
): grpc.handleUnaryCall<WireRateLimitRequest, WireRateLimitResponse> {
  const { limiter, logger, onError, onAnswered, headers, stringLimits } = opts;

  const fail = (callback: grpc.sendUnaryData<WireRateLimitResponse>, err: unknown, startedAt: number | undefined): void => {
    const status = errorToStatus(err, logger);
    callback(status);
    onError?.(err, status.code, startedAt);
  };
  const answer = (callback: grpc.sendUnaryData<WireRateLimitResponse>, decision: Decision, startedAt: number, explain: boolean): void => {
    let response: WireRateLimitResponse;
    try {
      onAnswered?.(startedAt, decision);
      response = decisionToResponse(decision, headers, opts.degradedHeader, opts.softLimit);
    } catch (err) {
      fail(callback, err, startedAt);
      return;
    }
    if (!explain) return callback(null, response);
    const trailer = new grpc.Metadata();
    trailer.set(EXPLAIN_TRAILER, explainLimits(decision));
    callback(null, response, trailer);
  };

  return function shouldRateLimit(call, callback): void {
    let decision: Decision | Promise<Decision>;
    let startedAt: number | undefined;
    try {
      const deadline = deadlineMs(call.getDeadline());
      // Nobody waits for an answer any more: do not charge counters for it.
      if (call.cancelled) throw new CancelledError('the client cancelled the call before it was evaluated');
      if (deadline !== undefined && Date.now() >= deadline) {
        throw new DeadlineExceededError('deadline exceeded before the request was evaluated');
      }
      const check = requestToCheck(call.request, stringLimits);
      startedAt = performance.now();
      decision = limiter.shouldRateLimit(check, {
        deadline,
        traceCarrier: tracingEnabled() ? call.metadata.getMap() : undefined,
        cancellation: call,
      });
    } catch (err) {
      fail(callback, err, startedAt);
      return;
    }
    // (Optional chaining: a call built by hand, as in socketless tests, may carry no metadata.)
    const explain = ((call.metadata as grpc.Metadata | undefined)?.get(EXPLAIN_HEADER).length ?? 0) > 0;
    if (decision instanceof Promise) {
      const started = startedAt;
      decision.then(
        (d) => answer(callback, d, started, explain),
        (err: unknown) => fail(callback, err, started),
      );
    } else {
      answer(callback, decision, startedAt, explain);
    }
  };
}

/** A gRPC status for a failed call; see the module comment. */
export function errorToStatus(err: unknown, logger?: GrpcLogger): { code: number; details: string; metadata?: grpc.Metadata } {
  if (isMeshlimitError(err)) {
    const code = err.grpcStatus;
    // INTERNAL means a bug (e.g. a Lua error): always visible. The others are expected under
    // load or outages and are counted by onError, not logged per call.
    if (code === GrpcCode.INTERNAL) logger?.error({ err, code: err.code }, 'ShouldRateLimit failed');
    else logger?.debug({ err, code: err.code }, 'ShouldRateLimit failed');
    const metadata = new grpc.Metadata();
    metadata.set(ERROR_CODE_TRAILER, err.code);
    return { code, details: err.message, metadata };
  }
  logger?.error({ err }, 'ShouldRateLimit: unexpected error');
  return { code: grpc.status.INTERNAL, details: 'internal error' };
}

/** grpc-js reports "no deadline" as Infinity. */
function deadlineMs(deadline: grpc.Deadline): number | undefined {
  const ms = typeof deadline === 'number' ? deadline : deadline.getTime();
  return Number.isFinite(ms) ? ms : undefined;
}

/**
 * The RLS service definition with ShouldRateLimit's request decoding and response encoding done
 * by the hand-written codec (codec-decode.ts, codec-encode.ts): the same objects and bytes as
 * proto-loader's, at a half to a quarter of the cost per message (benchmarks/codec/bench.ts) and
 * 1.17x the requests per second end to end on the four-descriptor request of an Istio gateway
 * (benchmarks/codec/README.md). A copy: the cached proto-loader definition stays as it is for
 * the health service, clients and tests. The echo baseline registers the same definition.
 */
export function withHandWrittenCodec(def: ServiceDefinition): ServiceDefinition {
  const method = def['ShouldRateLimit'];
  if (method === undefined) throw new Error(`${RLS_SERVICE} has no ShouldRateLimit method`);
  return {
    ...def,
    ShouldRateLimit: {
      ...method,
      requestDeserialize: decodeRateLimitRequest,
      // The definition is typed for any object; the only caller is our handler's callback.
      responseSerialize: encodeRateLimitResponse as (value: object) => Buffer,
    },
  };
}

export function createGrpcServer(opts: GrpcServerOptions): GrpcServer {
  const pkg = loadServerPackage();
  const limits = opts.limits ?? DEFAULT_TRANSPORT_LIMITS;
  const server = new grpc.Server({ ...DEFAULT_SERVER_OPTIONS, ...transportServerOptions(limits), ...opts.serverOptions });
  server.addService(withHandWrittenCodec(serviceDefinition(pkg, RLS_SERVICE)), { ShouldRateLimit: createShouldRateLimitHandler(opts) });
  const health = createHealthService(opts.health);
  server.addService(serviceDefinition(pkg, HEALTH_SERVICE), health.implementation);
  // Streaming methods (the health service's Watch) outlive the stream timeout once their request is complete.
  const longLived = [RLS_SERVICE, HEALTH_SERVICE].flatMap((name) =>
    Object.values(serviceDefinition(pkg, name))
      .filter((m) => m.requestStream || m.responseStream)
      .map((m) => m.path),
  );
  const openEnded: string[] = [];
  if (opts.rlqs !== undefined) {
    const def = serviceDefinition(pkg, RLQS_SERVICE);
    server.addService(def, { StreamRateLimitQuotas: opts.rlqs.handler });
    openEnded.push(...Object.values(def).map((m) => m.path));
    opts.rlqs.start();
  }
  const guard = new TransportGuard(limits, longLived, opts.onTransportAction, opts.tls?.acceptPeer, openEnded);
  const defaultCredentials = (): grpc.ServerCredentials => opts.tls?.credentials ?? grpc.ServerCredentials.createInsecure();
  const bind = (address: string, credentials: grpc.ServerCredentials): Promise<number> =>
    new Promise<number>((resolve, reject) => {
      server.bindAsync(address, credentials, (err, bound) => {
        if (err) return reject(err);
        try {
          guard.attach(server);
        } catch (e) {
          server.forceShutdown();
          return reject(e as Error);
        }
        resolve(bound);
      });
    });

  return {
    server,
    listen(host, port, credentials = defaultCredentials()) {
      const address = host.includes(':') && !host.startsWith('[') ? `[${host}]:${port}` : `${host}:${port}`;
      return bind(address, credentials);
    },
    async listenUnix(path, credentials = defaultCredentials()) {
      await clearStaleSocket(path);
      await bind(`unix:${path}`, credentials);
    },
    close(graceMs) {
      opts.health.setServing(false);
      // RLQS streams never end on their own: expire their assignments and end them first.
      opts.rlqs?.shutdown();
      health.endWatches();
      return new Promise<void>((resolve) => {
        const done = (): void => {
          guard.close();
          opts.tls?.watcher.close();
          resolve();
        };
        const timer = setTimeout(() => {
          server.forceShutdown();
          done();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          done();
        });
      });
    },
  };
}
