/** The descriptor config pipeline: parse, check, compile, store, watch. */
export type { ConfigSnapshot, ConfigSource } from '../limiter/ports.js';
export type { MatchStep, MatchTrace, NodeSource, NoMatchReason } from './compiled.js';
export type { CompiledRule, CompiledSnapshot, ConfigDump, ConfigWarning, DescriptorDump, LimitDump } from './compiled.js';
export { compileConfig, compileTrees, type CompileOptions, type ConfigTree } from './compile.js';
export { contentVersion, type ConfigFile } from './version.js';
export { loadConfigDir, readConfigDir, type ReadDirResult } from './loader.js';
export { ConfigStore, type ConfigChangeListener, type ConfigStoreOptions } from './store.js';
export {
  ConfigWatcher,
  type ConfigWatcherOptions,
  type ReloadEvent,
  type ReloadTrigger,
  type SwappableStore,
  type WatcherLogger,
} from './watcher.js';
export { checkConfigDir, configErrorList, type CheckResult } from './check.js';
export type { DomainOptions } from './schema.js';
export {
  compileXdsResources,
  XDS_SOURCE_PREFIX,
  XDS_UNIT_NAMES,
  xdsSourceName,
  type XdsRateLimitConfig,
  type XdsRateLimitDescriptor,
  type XdsRateLimitPolicy,
  type XdsUnitName,
} from './xds-resources.js';
export { XdsConfigUpdates, type XdsApplyResult, type XdsConfigUpdatesOptions, type XdsStore } from './xds-updates.js';
