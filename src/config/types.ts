import type { DescriptorEntry, Rule } from '../limiter/types.js';

/**
 * A compiled, immutable descriptor config. Built once per (re)load by `compileConfig`, swapped
 * atomically by the store; a request reads one snapshot for its whole evaluation.
 */
export interface ConfigSnapshot {
  /** Content hash of all loaded files (changes when any file changes). */
  readonly version: string;
  readonly loadedAt: Date;
  /** Absolute or directory-relative paths of the files loaded, sorted. */
  readonly files: readonly string[];
  /** Known domain names. */
  readonly domainNames: readonly string[];
  hasDomain(domain: string): boolean;
  /**
   * envoyproxy/ratelimit matching: at each level try `key_value` exactly, then wildcard values
   * (config order), then the bare `key`; descend into children while entries remain; a rule
   * applies only when it sits at the request's last entry. Returns undefined when nothing applies
   * or the domain is unknown.
   */
  findRule(domain: string, entries: readonly DescriptorEntry[]): Rule | undefined;
  /** A JSON-serialisable view of the config (for GET /rlconfig and logs). */
  dump(): unknown;
}

/** Where the limiter reads the current snapshot from. */
export interface ConfigSource {
  current(): ConfigSnapshot;
}
