import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  compileXdsResources,
  ConfigStore,
  ConfigWatcher,
  loadConfigDir,
  XdsConfigUpdates,
  type CompiledSnapshot,
  type ReloadEvent,
} from './config/index.js';
import { SettingsError } from './errors.js';
import type { ConfigSource } from './limiter/ports.js';
import type { Settings, XdsSettings } from './settings/index.js';
import type { Logger } from './telemetry/logger.js';
import { XdsClient, type XdsStateChange } from './xds/client.js';
import { channelCredentials, type XdsTlsMaterial } from './xds/credentials.js';

/**
 * Which config feeds the store (CONFIG_TYPE), part of the composition: the YAML directory and its
 * watcher (`FILE`), or the xDS client (`GRPC_XDS_SOTW`). Either way the store holds an immutable
 * compiled snapshot swapped atomically, and a rejected config keeps the one in force.
 */
export interface ConfigFeed {
  readonly store: ConfigStore<CompiledSnapshot>;
  /** What the limiter reads: the store, or with xDS a source that refuses to answer before the first config. */
  readonly source: ConfigSource;
  /** Starts watching or streaming; called once the servers listen. */
  start(): void;
  close(): Promise<void>;
  /** False while requests cannot be answered (xDS before its first config, without FORCE_START_WITHOUT_INITIAL_CONFIG). */
  isReady(): boolean;
  /** What health checks should add, when there is something to say (no config yet, management server lost). */
  healthDetail(): string | undefined;
  /** Where the config comes from and what is loaded, for the start-up log line. */
  describe(): Readonly<Record<string, string | number>>;
}

export interface ConfigFeedHooks {
  readonly logger: Logger;
  /** Every reload attempt, of either source (counted and logged by telemetry). */
  readonly onReload: (event: ReloadEvent) => void;
  /** The first load of a config directory (FILE). */
  readonly onLoaded: (snapshot: CompiledSnapshot, dir: string) => void;
  /** Transitions of the xDS connection. */
  readonly onXdsState: (change: XdsStateChange) => void;
  /** Poll interval of the directory watcher (ms); tests shorten it. */
  readonly pollMs?: number | undefined;
}

export async function openConfigFeed(settings: Settings, hooks: ConfigFeedHooks): Promise<ConfigFeed> {
  return settings.config.type === 'GRPC_XDS_SOTW' ? xdsFeed(settings, hooks) : fileFeed(settings, hooks);
}

async function fileFeed(settings: Settings, hooks: ConfigFeedHooks): Promise<ConfigFeed> {
  const dir = path.resolve(settings.config.dir);
  const store = new ConfigStore<CompiledSnapshot>(await loadConfigDir(dir, settings.config)); // MERGE_DOMAIN_CONFIG
  hooks.onLoaded(store.current(), dir);
  const watcher = new ConfigWatcher({
    dir,
    store,
    debounceMs: settings.config.reloadDebounceMs,
    pollIntervalMs: hooks.pollMs ?? 2000,
    compile: settings.config,
    logger: hooks.logger,
    onReload: hooks.onReload,
  });
  return {
    store,
    source: store,
    start: () => watcher.start(),
    close: () => watcher.close(),
    isReady: () => true,
    healthDetail: () => undefined,
    describe: () => {
      const snap = store.current();
      return { config: dir, configVersion: snap.version, domains: snap.domainNames.length, rules: snap.ruleCount };
    },
  };
}

function xdsFeed(settings: Settings, hooks: ConfigFeedHooks): ConfigFeed {
  const xds = settings.xds;
  // An empty placeholder until the management server sends a config.
  const store = new ConfigStore<CompiledSnapshot>(compileXdsResources([]));
  const forceStart = settings.config.forceStartWithoutInitialConfig;
  const compile = settings.config; // MERGE_DOMAIN_CONFIG applies to the resources of one response, as upstream
  const updates = new XdsConfigUpdates({ store, forceStart, compile, logger: hooks.logger, onReload: hooks.onReload });
  // Unreadable or unusable certificate files stop start-up here; later attempts re-read them (rotation).
  checkTls(xds);
  const client = new XdsClient({
    target: xds.serverUrl,
    node: xds.node,
    headers: xds.headers,
    credentials: () => channelCredentials(readTls(xds)),
    serverName: xds.tls?.serverName,
    maxReceiveMessageBytes: xds.maxReceiveMessageBytes,
    connectRetryMs: xds.connectRetryMs,
    backoff: xds.backoff,
    updates,
    onState: hooks.onXdsState,
    logger: hooks.logger,
  });
  if (!forceStart) hooks.logger.info({ target: xds.serverUrl }, 'waiting for the first descriptor config from the xDS management server');
  return {
    store,
    source: updates.source(),
    start: () => client.start(),
    close: () => client.close(),
    // HEALTHY_WITH_AT_LEAST_ONE_CONFIG_LOADED: forced to start, it answers but is not ready until a config arrives.
    isReady: () => (settings.config.healthyWithAtLeastOneConfigLoaded ? updates.hasConfig() : updates.ready()),
    describe: () => ({ config: xds.serverUrl }),
    healthDetail: () =>
      updates.waitingDetail() ??
      (client.state === 'disconnected'
        ? `xDS management server ${xds.serverUrl} unreachable; serving the last config it sent (version ${JSON.stringify(client.acceptedVersion)})`
        : undefined),
  };
}

function checkTls(xds: XdsSettings): void {
  const tls = readTls(xds);
  try {
    channelCredentials(tls);
  } catch (err) {
    throw new SettingsError('CONFIG_GRPC_XDS_SERVER_USE_TLS', `the TLS files do not load: ${(err as Error).message}`);
  }
}

/** The PEM files of the xDS TLS settings, read now; an unreadable one is a SettingsError naming its variable. */
function readTls(xds: XdsSettings): XdsTlsMaterial | undefined {
  if (xds.tls === undefined) return undefined;
  const read = (name: string, file: string | undefined): Buffer | undefined => {
    if (file === undefined) return undefined;
    try {
      return readFileSync(file);
    } catch (err) {
      throw new SettingsError(name, `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  };
  return {
    ca: read('CONFIG_GRPC_XDS_SERVER_TLS_CACERT', xds.tls.caFile),
    cert: read('CONFIG_GRPC_XDS_CLIENT_TLS_CERT', xds.tls.certFile),
    key: read('CONFIG_GRPC_XDS_CLIENT_TLS_KEY', xds.tls.keyFile),
  };
}
