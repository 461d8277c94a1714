import { GrpcCode } from '../errors.js';
import type { StringLimits } from '../limiter/string-limits.js';
import type { RequestRecorder } from '../telemetry/events.js';
import type { Logger } from '../telemetry/logger.js';
import type { Decider } from './decide.js';
import type { HealthState } from './grpc/health.js';
import type { ResponseHeaderNames, SoftLimit } from './grpc/mapping.js';
import { createGrpcServer, type GrpcServer } from './grpc/server.js';
import type { GrpcTls } from './grpc/tls.js';
import type { RlqsService } from './grpc/rlqs/service.js';
import type { TransportAction } from '../telemetry/metrics.js';
import type { TransportLimits } from './grpc/transport-guard.js';
import type { AdminRoutesOptions } from './http/admin-routes.js';
import { buildHttpApp, type HttpApp } from './http/app.js';
import type { AdminHttps } from './http/tls.js';
import { createMetricsListener, type MetricsListener } from './http/metrics-listener.js';
import { jsonCheck } from './http/json-check.js';

/** What both transports share: one decision pipeline, one request recorder, one answer format. */
export interface ServersOptions {
  readonly decide: Decider;
  readonly recorder: RequestRecorder;
  readonly health: HealthState;
  readonly logger: Logger;
  /** LIMIT_RESPONSE_HEADERS_ENABLED and LIMIT_*_HEADER; undefined when off. */
  readonly headers: ResponseHeaderNames | undefined;
  /** DEGRADED_HEADER; undefined when unset. */
  readonly degradedHeader: string | undefined;
  /** SOFT_LIMIT_HEADER / SOFT_LIMIT_SHARE; undefined when off. */
  readonly softLimit?: SoftLimit | undefined;
  /** The largest domain, key and value a request may carry. */
  readonly stringLimits: StringLimits;
  /** The gRPC port's bounds (GRPC_*): connections, streams, keepalive, resets. */
  readonly grpcLimits: TransportLimits;
  /** GRPC_SERVER_USE_TLS: the gRPC port's credentials and certificate watcher; plaintext when undefined. */
  readonly grpcTls?: GrpcTls | undefined;
  /** Each action the gRPC transport guard takes against a client (counted). */
  readonly onTransportAction: (action: TransportAction) => void;
  /** Readiness for `/healthcheck`. */
  readonly isReady: () => boolean;
  /** What `/healthcheck` adds, when there is something to say (the xDS feed's state). */
  readonly healthDetail?: () => string | undefined;
  /** `/rlconfig`. */
  readonly configDump: () => unknown;
  /** `POST /v1/explain` (src/server/explain/explain-handler.ts); absent: not served. */
  readonly explain?: ((body: unknown) => Promise<unknown>) | undefined;
  /** `/metrics`. */
  readonly metrics: { readonly contentType: string; render(): Promise<string> };
  /** USE_PROMETHEUS: the path of the metrics on a port of their own (PROMETHEUS_PATH); undefined when off. */
  readonly prometheusPath?: string | undefined;
  /** The admin API and console; absent: not served. */
  readonly admin?: AdminRoutesOptions | undefined;
  /** ADMIN_TLS_*: the HTTP port's certificate and watcher; plaintext when undefined. */
  readonly adminHttps?: AdminHttps | undefined;
  /** RLQS on the gRPC port (RLQS_ENABLED); absent: not served. */
  readonly rlqs?: RlqsService | undefined;
}

/**
 * The gRPC server (RLS + health) and the HTTP admin app, built over the same decision pipeline
 * and recorder, so a request is answered, limited, counted and timed alike on either transport.
 */
export function createServers(o: ServersOptions): { grpc: GrpcServer; http: HttpApp; metrics: MetricsListener | undefined } {
  const { decide, recorder, headers, degradedHeader, softLimit, stringLimits, logger } = o;
  const grpc = createGrpcServer({
    limiter: { shouldRateLimit: decide },
    health: o.health,
    limits: o.grpcLimits,
    tls: o.grpcTls,
    rlqs: o.rlqs,
    onTransportAction: o.onTransportAction,
    headers,
    logger,
    degradedHeader,
    softLimit,
    stringLimits,
    onAnswered: recorder.answered,
    onError: (_err, code, startedAt) => recorder.failed(code, startedAt),
  });
  const http = buildHttpApp({
    check: jsonCheck({ decide, recorder, headers, degradedHeader, softLimit, stringLimits }),
    isReady: o.isReady,
    ...(o.healthDetail ? { healthDetail: o.healthDetail } : {}),
    configDump: o.configDump,
    metrics: o.metrics,
    explain: o.explain,
    // Refused before decoding: counted as a gRPC request that does not decode would be.
    onRejected: () => recorder.failed(GrpcCode.INVALID_ARGUMENT, undefined),
    logger,
    admin: o.admin,
    https: o.adminHttps,
  });
  const metrics = o.prometheusPath === undefined ? undefined : createMetricsListener(o.prometheusPath, o.metrics);
  return { grpc, http, metrics };
}
