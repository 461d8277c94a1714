/**
 * Process entry point: read settings, start the service, stop on SIGTERM/SIGINT.
 * Wiring lives in app.ts; nothing here decides anything about rate limits.
 */
import { startService } from './app.js';
import { serviceArgs } from './cli/usage.js';
import { configErrorList } from './config/check.js';
import { buildInfo } from './util/build-info.js';
import { isPrimaryOfWorkers, isWorker, runPrimary, workerMetricsRenderer } from './cluster.js';
import { isMeshlimitError } from './errors.js';
import { clearStaleSocket } from './server/grpc/unix-socket.js';
import { ignoredSettingsMessage, loadSettings, redactedSettings, type Settings } from './settings/index.js';
import { tracingEnvironment } from './settings/upstream.js';
import { createLogger } from './telemetry/logger.js';
import { startTracing } from './telemetry/tracing.js';

async function main(argv: readonly string[]): Promise<void> {
  const args = serviceArgs(argv);
  if (args !== undefined) {
    if (args.stdout !== undefined) process.stdout.write(args.stdout);
    if (args.stderr !== undefined) process.stderr.write(args.stderr);
    process.exit(args.exit);
  }
  let settings;
  try {
    settings = loadSettings();
  } catch (err) {
    process.stderr.write(`meshlimit: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  }
  const logger = createLogger({ level: settings.log.level, format: settings.log.format });
  // The settings in force, at debug: only those that apply (no Redis settings with the memory backend).
  if (!isWorker()) logger.debug({ settings: applicableSettings(redactedSettings(settings)) }, 'settings');
  // envoyproxy/ratelimit's variables that are set and not used here: one line, names and reasons.
  const ignored = isWorker() ? undefined : ignoredSettingsMessage(settings.ignoredUpstream);
  if (ignored !== undefined) logger.info({ ignored: settings.ignoredUpstream }, ignored);
  if (isPrimaryOfWorkers(settings.lifecycle.workers)) {
    logger.info({ version: buildInfo().version, workers: settings.lifecycle.workers }, 'starting meshlimit workers');
    // GRPC_UDS: the workers share the primary's socket, so a stale file is cleared here, once.
    if (settings.grpc.uds !== undefined)
      await clearStaleSocket(settings.grpc.uds).catch((err: unknown) => {
        logger.fatal({ error: err instanceof Error ? err.message : String(err) }, 'meshlimit could not start');
        process.exit(1);
      });
    runPrimary({ workers: settings.lifecycle.workers, logger, gracefulShutdownMs: settings.lifecycle.gracefulShutdownMs });
    return;
  }
  let service;
  // TRACING_* (upstream's names) become the OTEL_* variables the SDK reads from process.env.
  Object.assign(process.env, tracingEnvironment(settings.tracing, process.env));
  const tracing = await startTracing();
  if (tracing.enabled) logger.info({ exporter: process.env.OTEL_TRACES_EXPORTER }, 'tracing enabled');
  try {
    service = await startService(settings, { logger, metricsRender: isWorker() ? (m) => workerMetricsRenderer(m.registry) : undefined });
  } catch (err) {
    const code = isMeshlimitError(err) ? err.code : 'ML_ERR_INTERNAL';
    const configErrors = configErrorList(err);
    if (configErrors !== undefined) {
      // One line per error, then the verdict: a list a human reads, not one line joined by "\n".
      for (const e of configErrors) logger.error({ code, file: e.file, field: e.field || undefined }, e.message);
      logger.fatal({ code, errors: configErrors.length }, 'meshlimit could not start: the config is invalid (errors above)');
    } else {
      logger.fatal({ code, error: err instanceof Error ? err.message : String(err) }, 'meshlimit could not start');
    }
    process.exit(1);
  }
  const stop = (signal: string): void => {
    logger.info({ signal }, 'shutting down');
    service
      .close()
      .then(() => tracing.shutdown())
      .then(
        () => process.exit(0),
        (err: unknown) => {
          logger.error({ error: String(err) }, 'error during shutdown');
          process.exit(1);
        },
      );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

void main(process.argv.slice(2));

/** The settings that apply to the chosen backend and config source. */
function applicableSettings(s: Settings): Partial<Settings> {
  const { redis, redisPerSecond, xds, ...rest } = s;
  return {
    ...rest,
    ...(s.backend.type === 'memory' ? {} : { redis, redisPerSecond }),
    ...(s.config.type === 'GRPC_XDS_SOTW' ? { xds } : {}),
  };
}
