import type { Backend } from './limiter/ports.js';
import type { GrpcServer } from './server/grpc/server.js';
import type { HealthState } from './server/grpc/health.js';
import type { HttpApp } from './server/http/app.js';
import type { MetricsListener } from './server/http/metrics-listener.js';
import type { Settings } from './settings/index.js';
import type { Logger } from './telemetry/logger.js';

/** What `serve` opens: the gRPC server, the admin app and, with USE_PROMETHEUS, the metrics port. */
type Servers = { readonly grpc: GrpcServer; readonly http: HttpApp; readonly metrics?: MetricsListener | undefined };

/**
 * The running service's lifecycle: readiness (health) that follows the config feed and the
 * backend, listening on both ports, and an orderly stop. Stop order: readiness NOT_SERVING first
 * (so load balancers and Envoy move away), then the config feed and resolver, then the servers
 * drain in-flight calls for up to GRACEFUL_SHUTDOWN_MS, and only then the backend closes (a
 * draining call may still need Redis).
 */
export interface Lifecycle {
  /** True while serving: not shutting down, a config to answer from, and the backend usable. */
  isReady(): boolean;
  /** Re-reads readiness into the gRPC health service (after a backend or breaker transition). */
  refreshHealth(): void;
  /**
   * Binds both ports, starts the config feed and the readiness timer, logs one line. On a bind
   * failure everything is closed and the error rethrown.
   */
  serve(servers: Servers): Promise<{ grpcPort: number; httpPort: number; metricsPort: number | undefined }>;
  /** Stops serving (idempotent; see the order above). */
  close(): Promise<void>;
}

export interface LifecycleParts {
  readonly settings: Pick<Settings, 'grpc' | 'http' | 'lifecycle' | 'redis' | 'resilience'>;
  readonly health: HealthState;
  readonly logger: Logger;
  /** The config feed (directory watcher or xDS client): started once serving, closed first. */
  readonly config: { start(): void; close(): Promise<void>; isReady(): boolean };
  /**
   * Read lazily: the backend stack is built after the lifecycle (its hooks refresh health).
   * `storesConnected`: the stores themselves, not the policy's view (`allow` is always ready).
   */
  readonly stack: () => { readonly backend: Backend; storesConnected(): boolean };
  /** Closed with the config feed (the descriptor resolver's JWKS fetches). */
  readonly onStop: () => void;
}

export function createLifecycle(parts: LifecycleParts): Lifecycle {
  const { settings, health, logger, config } = parts;
  let shuttingDown = false;
  let servers: Servers | undefined;
  let timer: NodeJS.Timeout | undefined;
  let closing: Promise<void> | undefined;
  // REDIS_HEALTH_CHECK_ACTIVE_CONNECTION: the stores' own connection state, whatever the failure policy answers.
  const followRedis = settings.resilience.redisHealthCheckActiveConnection;
  const isReady = (): boolean =>
    !shuttingDown && config.isReady() && parts.stack().backend.isReady() && (!followRedis || parts.stack().storesConnected());
  const refreshHealth = (): void => health.setServing(isReady());

  const close = (): Promise<void> =>
    (closing ??= (async () => {
      shuttingDown = true;
      clearInterval(timer);
      health.setServing(false);
      await config.close();
      parts.onStop();
      if (servers !== undefined)
        await Promise.allSettled([
          servers.grpc.close(settings.lifecycle.gracefulShutdownMs),
          servers.http.close(),
          servers.metrics?.close(),
        ]);
      await parts.stack().backend.close();
      logger.info({}, 'meshlimit stopped');
    })());

  const serve = async (s: Servers): Promise<{ grpcPort: number; httpPort: number; metricsPort: number | undefined }> => {
    servers = s;
    await firstConnection(parts);
    let grpcPort: number;
    let httpPort: number;
    let metricsPort: number | undefined;
    const prometheus = settings.http.prometheus; // USE_PROMETHEUS: PROMETHEUS_ADDR
    try {
      const uds = settings.grpc.uds;
      grpcPort = uds === undefined ? await s.grpc.listen(settings.grpc.host, settings.grpc.port) : (await s.grpc.listenUnix(uds), 0);
      httpPort = (await s.http.listen(settings.http.host, settings.http.port)).port;
      if (s.metrics !== undefined && prometheus !== undefined) metricsPort = await s.metrics.listen(prometheus.host, prometheus.port);
    } catch (err) {
      parts.onStop();
      await Promise.allSettled([s.grpc.close(0), s.http.close(), s.metrics?.close(), parts.stack().backend.close()]);
      throw err;
    }
    config.start();
    refreshHealth();
    // Readiness also follows lazy transitions (e.g. the breaker going half-open on its own clock).
    timer = setInterval(refreshHealth, 1000);
    timer.unref();
    logger.info(
      {
        grpc: settings.grpc.uds === undefined ? `${settings.grpc.host}:${grpcPort}` : `unix:${settings.grpc.uds}`,
        grpcTls: settings.grpc.tls === undefined ? 'off' : settings.grpc.tls.clientCaFile === undefined ? 'tls' : 'mtls',
        http: `${settings.http.host}:${httpPort}`,
        ...(metricsPort === undefined ? {} : { metrics: `${prometheus?.host ?? ''}:${metricsPort}${prometheus?.path ?? ''}` }),
        backend: parts.stack().backend.kind,
      },
      'meshlimit serving',
    );
    return { grpcPort, httpPort, metricsPort };
  };

  return { isReady, refreshHealth, serve, close };
}

/**
 * Waits (up to REDIS_CONNECT_TIMEOUT_MS) for the counter store's first connection before the
 * ports open, so the first requests a new replica gets are counted, not answered by the failure
 * policy. A store still down after that is logged and the service starts anyway, not ready
 * (readiness follows the store from then on).
 */
async function firstConnection(parts: LifecycleParts): Promise<void> {
  const connected = (): boolean => parts.stack().storesConnected();
  const waitMs = parts.settings.redis.connectTimeoutMs;
  const until = performance.now() + waitMs;
  while (!connected() && performance.now() < until) await new Promise((r) => setTimeout(r, 5));
  if (!connected())
    parts.logger.warn(
      { waitedMs: waitMs },
      'the counter store is not connected yet (REDIS_URL): serving anyway, not ready, and answering by FAILURE_POLICY until it connects',
    );
}
