import { BackendUnavailableError, SettingsError } from './errors.js';
import type { Backend } from './limiter/ports.js';
import type { GrpcServer } from './server/grpc/server.js';
import type { HealthState } from './server/grpc/health.js';
import type { HttpApp } from './server/http/app.js';
import type { MetricsListener } from './server/http/metrics-listener.js';
import type { Settings } from './settings/index.js';
import type { Logger } from './telemetry/logger.js';
import { buildInfo } from './util/build-info.js';

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
  /** What `/healthcheck` adds to its body about the stores: why a Redis is not connected; undefined when they are. */
  healthDetail(): string | undefined;
  /**
   * Binds both ports, starts the config feed and the readiness timer, logs one line. On a bind
   * failure everything is closed and the error rethrown.
   */
  serve(servers: Servers): Promise<{ grpcPort: number; httpPort: number; metricsPort: number | undefined }>;
  /** Stops serving (idempotent; see the order above). */
  close(): Promise<void>;
}

export interface LifecycleParts {
  readonly settings: Pick<Settings, 'grpc' | 'http' | 'lifecycle' | 'redis' | 'resilience'> & {
    readonly admin?: Pick<Settings['admin'], 'tls'>;
  };
  readonly health: HealthState;
  readonly logger: Logger;
  /** The config feed (directory watcher or xDS client): started once serving, closed first. */
  readonly config: { start(): void; close(): Promise<void>; isReady(): boolean; describe(): Readonly<Record<string, string | number>> };
  /**
   * Read lazily: the backend stack is built after the lifecycle (its hooks refresh health).
   * `storesConnected`: the stores themselves, not the policy's view (`allow` is always ready).
   */
  readonly stack: () => { readonly backend: Backend; storesConnected(): boolean; whyNotConnected(): string | undefined };
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
  const reminder = notConnectedReminder(parts);

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
    try {
      await firstConnection(parts);
    } catch (err) {
      parts.onStop();
      await parts.stack().backend.close();
      throw err;
    }
    const prometheus = settings.http.prometheus; // USE_PROMETHEUS: PROMETHEUS_ADDR
    let ports: { grpcPort: number; httpPort: number; metricsPort: number | undefined };
    try {
      ports = await listenAll(s, settings);
    } catch (err) {
      parts.onStop();
      await Promise.allSettled([s.grpc.close(0), s.http.close(), s.metrics?.close(), parts.stack().backend.close()]);
      throw err;
    }
    const { grpcPort, httpPort, metricsPort } = ports;
    config.start();
    refreshHealth();
    // Readiness also follows lazy transitions (e.g. the breaker going half-open on its own clock).
    timer = setInterval(() => {
      refreshHealth();
      reminder();
    }, 1000);
    timer.unref();
    logger.info(
      {
        version: buildInfo().version,
        grpc: settings.grpc.uds === undefined ? `${settings.grpc.host}:${grpcPort}` : `unix:${settings.grpc.uds}`,
        grpcTls: settings.grpc.tls === undefined ? 'off' : settings.grpc.tls.clientCaFile === undefined ? 'tls' : 'mtls',
        http: `${settings.http.host}:${httpPort}`,
        ...(settings.admin?.tls === undefined ? {} : { httpTls: settings.admin.tls.clientCaFile === undefined ? 'tls' : 'mtls' }),
        ...(metricsPort === undefined ? {} : { metrics: `${prometheus?.host ?? ''}:${metricsPort}${prometheus?.path ?? ''}` }),
        backend: parts.stack().backend.kind,
        ...config.describe(),
      },
      'meshlimit serving',
    );
    return { grpcPort, httpPort, metricsPort };
  };

  const healthDetail = (): string | undefined => (shuttingDown ? 'shutting down' : notReadyDetail(parts.stack()));
  return { isReady, refreshHealth, healthDetail, serve, close };
}

/** Why the counter store keeps the service from being ready, for /healthcheck's body; undefined when it does not. */
function notReadyDetail(stack: ReturnType<LifecycleParts['stack']>): string | undefined {
  const why = stack.whyNotConnected();
  if (why !== undefined) return why;
  if (!stack.backend.isReady())
    return 'the circuit breaker is open: recent Redis calls failed or timed out (see the log and meshlimit_breaker_state); it tries Redis again after BREAKER_OPEN_MS';
  return undefined;
}

/** Opens the ports: gRPC (TCP or GRPC_UDS), the admin app and, with USE_PROMETHEUS, the metrics port. */
async function listenAll(
  s: Servers,
  settings: LifecycleParts['settings'],
): Promise<{ grpcPort: number; httpPort: number; metricsPort: number | undefined }> {
  const uds = settings.grpc.uds;
  const prometheus = settings.http.prometheus;
  const grpcPort =
    uds === undefined
      ? await s.grpc.listen(settings.grpc.host, settings.grpc.port).catch(portError('GRPC', settings.grpc))
      : (await s.grpc.listenUnix(uds), 0);
  const httpPort = (await s.http.listen(settings.http.host, settings.http.port).catch(portError('', settings.http))).port;
  const metricsPort =
    s.metrics !== undefined && prometheus !== undefined ? await s.metrics.listen(prometheus.host, prometheus.port) : undefined;
  return { grpcPort, httpPort, metricsPort };
}

/**
 * Waits (up to REDIS_CONNECT_TIMEOUT_MS) for the counter store's first connection before the
 * ports open, so the first requests a new replica gets are counted, not answered by the failure
 * policy. A store still down after that: with REDIS_REQUIRED_AT_START, start-up fails with the
 * reason (as envoyproxy/ratelimit, whose first PING panics); otherwise the reason is logged and
 * the service starts anyway, not ready (readiness follows the store from then on, and
 * {@link notConnectedReminder} repeats the reason until it connects).
 */
async function firstConnection(parts: LifecycleParts): Promise<void> {
  const connected = (): boolean => parts.stack().storesConnected();
  const waitMs = parts.settings.redis.connectTimeoutMs;
  const until = performance.now() + waitMs;
  while (!connected() && performance.now() < until) await new Promise((r) => setTimeout(r, 5));
  if (connected()) return;
  const why = parts.stack().whyNotConnected() ?? 'the counter store is not connected';
  if (parts.settings.lifecycle.redisRequiredAtStart)
    throw new BackendUnavailableError(
      `${why}. Not starting: REDIS_REQUIRED_AT_START=true and Redis was not connected after REDIS_CONNECT_TIMEOUT_MS=${waitMs} ms`,
    );
  parts.logger.warn(
    { redis: why, waitedMs: waitMs },
    'Redis is not connected: serving anyway, not ready, answering by FAILURE_POLICY until it connects (REDIS_REQUIRED_AT_START=true exits instead)',
  );
}

/** First reminder this long after the store went (or stayed) down; each next one twice as late, up to the cap. */
export const REMINDER_FIRST_MS = 5_000;
export const REMINDER_MAX_MS = 60_000;

/**
 * While a store stays unconnected, logs why again after 5 s, 10 s, 20 s, ... then every minute
 * (a transition alone, logged once, scrolls away; a line per second would flood). Called once a
 * second; resets when the stores connect (their "redis connection ready" line says so).
 */
export function notConnectedReminder(
  parts: Pick<LifecycleParts, 'stack' | 'logger'>,
  clock: () => number = () => performance.now(),
): () => void {
  let downSince: number | undefined;
  let next = 0;
  let every = REMINDER_FIRST_MS;
  return () => {
    const now = clock();
    const why = parts.stack().whyNotConnected();
    if (why === undefined) {
      downSince = undefined;
      return;
    }
    if (downSince === undefined) {
      downSince = now;
      every = REMINDER_FIRST_MS;
      next = now + every;
      return;
    }
    if (now < next) return;
    every = Math.min(every * 2, REMINDER_MAX_MS);
    next = now + every;
    parts.logger.warn(
      { redis: why, downForS: Math.round((now - downSince) / 1000), nextReminderInS: every / 1000 },
      'Redis is still not connected; answering by FAILURE_POLICY',
    );
  };
}

/**
 * A port that cannot be bound, as a SettingsError naming the setting (`PORT`/`HOST` or
 * `GRPC_PORT`/`GRPC_HOST`) and what to do; the system's error code stays in the message.
 */
function portError(prefix: '' | 'GRPC', at: { host: string; port: number }): (err: unknown) => never {
  return (err) => {
    const text = err instanceof Error ? err.message : String(err);
    const code = /\b(EADDRINUSE|EACCES|EADDRNOTAVAIL)\b/.exec(`${(err as NodeJS.ErrnoException).code ?? ''} ${text}`)?.[1];
    const addr = `${at.host}:${at.port}`;
    if (code === 'EADDRINUSE') {
      throw new SettingsError(
        `${prefix}${prefix ? '_' : ''}PORT`,
        `${addr} is already in use (EADDRINUSE): another process listens there (another meshlimit?); stop it or choose another port`,
      );
    }
    if (code === 'EACCES') {
      throw new SettingsError(
        `${prefix}${prefix ? '_' : ''}PORT`,
        `not allowed to listen on ${addr} (EACCES): ports below 1024 need privileges; choose a port of 1024 or more`,
      );
    }
    if (code === 'EADDRNOTAVAIL') {
      throw new SettingsError(
        `${prefix}${prefix ? '_' : ''}HOST`,
        `${at.host} is not an address of this machine (EADDRNOTAVAIL); use 0.0.0.0, 127.0.0.1 or one of its addresses`,
      );
    }
    throw err;
  };
}
