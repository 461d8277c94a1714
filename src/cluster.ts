import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry, type Registry } from 'prom-client';
import type { Logger } from './telemetry/logger.js';

/**
 * WORKERS > 1: one primary process forks N workers that serve the same gRPC and HTTP ports
 * (Node's cluster module shares the listening sockets). Counters are in Redis, so every worker
 * gives the same answer; the primary holds no rate-limit state.
 *
 * Metrics: a scrape reaches one worker, which asks the primary for the sum over all workers
 * (prom-client's AggregatorRegistry), so `/metrics` stays one consistent view of the pod.
 */

const METRICS_REQUEST = 'meshlimit:metrics-request';
const METRICS_REPLY = 'meshlimit:metrics-reply';

interface MetricsRequest {
  readonly type: typeof METRICS_REQUEST;
  readonly id: number;
}
interface MetricsReply {
  readonly type: typeof METRICS_REPLY;
  readonly id: number;
  readonly text?: string;
  readonly error?: string;
}

export interface PrimaryOptions {
  readonly workers: number;
  readonly logger: Logger;
  /** Grace given to workers on SIGTERM/SIGINT before they are killed. */
  readonly gracefulShutdownMs: number;
}

/** Runs the primary: forks workers, replaces crashed ones, aggregates metrics, forwards shutdown. */
export function runPrimary(opts: PrimaryOptions): void {
  const { logger } = opts;
  const aggregator = new AggregatorRegistry();
  let stopping = false;
  const restarts: number[] = [];

  const fork = (): Worker => {
    const w = cluster.fork();
    w.on('message', (msg: MetricsRequest) => {
      if (msg?.type !== METRICS_REQUEST) return;
      aggregator.clusterMetrics().then(
        (text) => w.send({ type: METRICS_REPLY, id: msg.id, text } satisfies MetricsReply),
        (err: unknown) => w.send({ type: METRICS_REPLY, id: msg.id, error: String(err) } satisfies MetricsReply),
      );
    });
    return w;
  };

  cluster.on('exit', (worker, code, signal) => {
    if (stopping) return;
    // A crashed worker is replaced; a crash loop (5 in 30 s) stops the pod so Kubernetes sees it.
    const now = Date.now();
    restarts.push(now);
    while (restarts.length > 0 && restarts[0]! < now - 30_000) restarts.shift();
    logger.error({ pid: worker.process.pid, code, signal }, 'worker exited; starting a new one');
    if (restarts.length > 5) {
      logger.fatal({}, 'workers keep crashing; stopping');
      void shutdown(1);
      return;
    }
    fork();
  });

  const shutdown = async (exitCode: number): Promise<void> => {
    if (stopping) return;
    stopping = true;
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined);
    const exited = workers.map((w) => new Promise<void>((resolve) => (w.isDead() ? resolve() : w.once('exit', () => resolve()))));
    for (const w of workers) w.process.kill('SIGTERM');
    const timer = setTimeout(() => {
      for (const w of workers) if (!w.isDead()) w.process.kill('SIGKILL');
    }, opts.gracefulShutdownMs + 2000);
    await Promise.all(exited);
    clearTimeout(timer);
    logger.info({}, 'all workers stopped');
    process.exit(exitCode);
  };
  process.once('SIGTERM', () => void shutdown(0));
  process.once('SIGINT', () => void shutdown(0));

  logger.info({ workers: opts.workers }, 'starting workers');
  for (let i = 0; i < opts.workers; i++) fork();
}

/**
 * In a worker: registers this worker's registry with the aggregator and returns a renderer for
 * `/metrics` that asks the primary for the pod-wide sum.
 */
export function workerMetricsRenderer(registry: Registry, timeoutMs = 5000): () => Promise<string> {
  // Constructing one installs prom-client's worker-side listener that answers the primary.
  new AggregatorRegistry();
  AggregatorRegistry.setRegistries([registry]);
  let nextId = 0;
  const pending = new Map<number, { resolve: (s: string) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  process.on('message', (msg: MetricsReply) => {
    if (msg?.type !== METRICS_REPLY) return;
    const p = pending.get(msg.id);
    if (p === undefined) return;
    pending.delete(msg.id);
    clearTimeout(p.timer);
    if (msg.text !== undefined) p.resolve(msg.text);
    else p.reject(new Error(`metrics aggregation failed: ${msg.error ?? 'unknown error'}`));
  });
  return () =>
    new Promise<string>((resolve, reject) => {
      const id = nextId++;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error('metrics aggregation timed out'));
      }, timeoutMs);
      pending.set(id, { resolve, reject, timer });
      process.send?.({ type: METRICS_REQUEST, id } satisfies MetricsRequest);
    });
}

export const isPrimaryOfWorkers = (workers: number): boolean => workers > 1 && cluster.isPrimary;
export const isWorker = (): boolean => cluster.isWorker;
