import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startService, type ServiceHandle } from '../../src/app.js';
import { createRlsClient, type RlsClient } from '../../src/client/rls-client.js';
import { loadSettings } from '../../src/settings/index.js';
import { createLogger, type Logger } from '../../src/telemetry/logger.js';

/**
 * Boots the whole service in-process on free loopback ports, as `npm start` wires it, with a
 * temporary config directory. Used by the e2e tests; real sockets, real gRPC client.
 */
export interface BootedService {
  readonly handle: ServiceHandle;
  readonly client: RlsClient;
  readonly httpUrl: string;
  readonly configDir: string;
  /** Writes (or replaces) a config file in the service's config directory. */
  writeConfig(name: string, text: string): void;
  close(): Promise<void>;
}

export interface BootOptions {
  /** File name -> YAML text, written into a fresh temp config directory. */
  readonly files?: Readonly<Record<string, string>>;
  /** Use this config directory instead of a temp one. */
  readonly configDir?: string;
  /** Extra environment settings (BACKEND_TYPE, REDIS_URL, SHADOW_MODE, ...). */
  readonly env?: Readonly<Record<string, string>>;
  /** Clock override in Unix ms for exact expectations. */
  readonly now?: () => number | undefined;
  readonly configPollMs?: number;
  /** The service's logger (default: fatal only). */
  readonly logger?: Logger;
}

export async function bootService(opts: BootOptions = {}): Promise<BootedService> {
  const ownDir = opts.configDir === undefined;
  const configDir = opts.configDir ?? mkdtempSync(path.join(tmpdir(), 'meshlimit-e2e-'));
  for (const [name, text] of Object.entries(opts.files ?? {})) writeFileSync(path.join(configDir, name), text);
  const settings = loadSettings({
    PORT: '0',
    GRPC_PORT: '0',
    HOST: '127.0.0.1',
    GRPC_HOST: '127.0.0.1',
    CONFIG_DIR: configDir,
    CONFIG_RELOAD_DEBOUNCE_MS: '50',
    GRACEFUL_SHUTDOWN_MS: '500',
    LOG_LEVEL: 'fatal',
    ...opts.env,
  });
  const handle = await startService(settings, {
    logger: opts.logger ?? createLogger({ level: 'fatal', format: 'json' }),
    now: opts.now,
    configPollMs: opts.configPollMs ?? 500,
  });
  // Wait until the counter store itself is connected before sending traffic. Not the policy
  // wrapper's readiness: under FAILURE_POLICY=allow or local that is always true (by design), and
  // a first request racing the connection would be answered degraded.
  await eventually(async () => handle.counterStore.isReady() && (handle.perSecondStore?.isReady() ?? true), 10_000, 20);
  const client = createRlsClient(`127.0.0.1:${handle.grpcPort}`);
  return {
    handle,
    client,
    httpUrl: `http://127.0.0.1:${handle.httpPort}`,
    configDir,
    writeConfig: (name, text) => writeFileSync(path.join(configDir, name), text),
    async close() {
      client.close();
      await handle.close();
      if (ownDir) rmSync(configDir, { recursive: true, force: true });
    },
  };
}

/** Polls `check` until it returns true or `timeoutMs` passes (for reload tests: bounded, then fails). */
export async function eventually(check: () => Promise<boolean>, timeoutMs = 5000, stepMs = 50): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > end) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/**
 * The value of one series on a service's `/metrics`, e.g.
 * `meshlimit_breaker_state{state="open"}`; NaN when the series is absent, so an assertion on a
 * missing series fails instead of passing as 0.
 */
export async function metricValue(httpUrl: string, series: string): Promise<number> {
  const text = await (await fetch(`${httpUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? Number.NaN : Number(line.slice(series.length + 1));
}
