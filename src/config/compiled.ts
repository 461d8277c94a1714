import type { ReservationSpec } from '../limiter/reservation-types.js';
import type { DescriptorEntry, MetadataStruct, Rule } from '../limiter/types.js';
import type { DomainOptions } from './schema.js';
import type { ConfigSnapshot } from '../limiter/ports.js';

/**
 * What `compileConfig` returns: the `ConfigSnapshot` contract plus details the contract does not
 * carry (all optional for consumers; a `ConfigSnapshot` user sees plain `Rule`s).
 */

/** A `Rule` plus upstream descriptor flags that do not change the limiter's arithmetic. */
export interface CompiledRule extends Rule {
  /** File the rule was defined in. */
  readonly file: string;
  /** Where in that file: the descriptor's YAML path (e.g. `descriptors[0].descriptors[1]`) and its line (0 when unknown, xDS). */
  readonly path: string;
  readonly line: number;
  /**
   * Names of this rule's limits, and of the `unlimited` rate_limit (whose `limits` is empty but
   * which upstream still lets be replaced / replace others).
   */
  readonly names: readonly string[];
  /** Union of `replaces` of this rule's limits, including an `unlimited` rate_limit's. */
  readonly replaces: readonly string[];
  /** upstream `quota_mode` (see src/limiter/verdict.ts). */
  readonly quotaMode: boolean;
  /** upstream `value_to_metric` (metrics only). */
  readonly valueToMetric: boolean;
  /**
   * upstream `share_threshold`, per request entry index: the wildcard value (e.g. `files/*`) whose
   * matches all share one counter, or undefined for entries that keep their own value. Undefined
   * when no level of this rule's path uses share_threshold. To honour it, a limiter builds the
   * counter key from entries whose value is replaced by this pattern.
   */
  readonly sharedValues: readonly (string | undefined)[] | undefined;
}

/** A non-fatal finding: something upstream accepts but that is probably not what was meant. */
export interface ConfigWarning {
  readonly file: string;
  readonly field: string;
  readonly detail: string;
  /** `file: field: detail`, formatted like `ConfigError.message`. */
  readonly message: string;
}

export interface CompiledSnapshot extends ConfigSnapshot {
  readonly warnings: readonly ConfigWarning[];
  /** Number of descriptors that carry a rule (limits or unlimited). */
  readonly ruleCount: number;
  findRule(domain: string, entries: readonly DescriptorEntry[]): CompiledRule | undefined;
  dump(): ConfigDump;
  /**
   * How `findRule` walked the domain's tree for `entries`, step by step, and why it matched or
   * not (for `POST /v1/explain`; not on the request path). Undefined for an unknown domain.
   */
  traceMatch(domain: string, entries: readonly DescriptorEntry[]): MatchTrace | undefined;
  /** Domain-level meshlimit extensions (e.g. `failure_mode`); undefined for an unknown domain. */
  domainOptions(domain: string): DomainOptions | undefined;
}

export interface LimitDump {
  readonly name: string | null;
  readonly algorithm: string;
  readonly unit: string;
  readonly unitMultiplier: number;
  readonly requestsPerUnit: number;
  readonly burst: number;
  readonly windowMs: number;
  readonly identity: string;
  readonly replaces: readonly string[];
}

export interface DescriptorDump {
  readonly key: string;
  readonly value: string | null;
  /** Present when this descriptor carries a rule. */
  readonly ruleKey: string | null;
  readonly unlimited: boolean;
  readonly shadowMode: boolean;
  readonly quotaMode: boolean;
  readonly detailedMetric: boolean;
  readonly valueToMetric: boolean;
  readonly shareThreshold: boolean;
  /** upstream descriptor `metadata`, when set. */
  readonly metadata?: MetadataStruct;
  readonly limits: readonly LimitDump[];
  /** meshlimit `candidate_rate_limits` (counted, never enforced), when set. */
  readonly candidateLimits?: readonly LimitDump[];
  /** meshlimit `reservation` as compiled (ttlMs in ms). */
  readonly reservation?: ReservationSpec;
  readonly descriptors: readonly DescriptorDump[];
}

export interface ConfigDump {
  readonly version: string;
  readonly loadedAt: string;
  readonly files: readonly string[];
  readonly domains: readonly {
    readonly domain: string;
    readonly files: readonly string[];
    readonly failureMode?: string;
    /** Descriptor resolution as configured (names the HS256 secret's variable, never the secret). */
    readonly resolution?: DomainOptions['resolution'];
    readonly descriptors: readonly DescriptorDump[];
  }[];
}

/** A config descriptor's place: file, YAML path, line (0 when the source has no lines, xDS). */
export interface NodeSource {
  readonly file: string;
  readonly path: string;
  readonly line: number;
}

/** How one request entry was looked up at its level (see {@link traceMatch}). */
export interface MatchStep {
  /** Index of the request entry. */
  readonly entry: number;
  /** `exact`: the config's `key` + `value`; `wildcard`: a value pattern; `key`: the bare `key` (any value). */
  readonly via: 'exact' | 'wildcard' | 'key';
  /** The config descriptor's composite key as upstream spells it (`key_value`, the pattern, or `key`). */
  readonly configKey: string;
  readonly source: NodeSource | undefined;
}

/**
 * Why a descriptor matched no rule:
 * - `no_entries`: the request descriptor has no entries;
 * - `entry_not_matched`: entry `entry` matched nothing at its level (or its level has no nested descriptors);
 * - `not_at_last_entry`: every entry matched but the config descriptor of the last one has no limit
 *   (a limit sits at an earlier entry, which upstream never applies to a longer request descriptor).
 */
export type NoMatchReason = 'no_entries' | 'entry_not_matched' | 'not_at_last_entry';

export type MatchTrace =
  | { readonly matched: true; readonly rule: CompiledRule; readonly steps: readonly MatchStep[] }
  | {
      readonly matched: false;
      readonly reason: NoMatchReason;
      /** The request entry the walk stopped at (the last one for `not_at_last_entry`); -1 for `no_entries`. */
      readonly entry: number;
      /** Limits passed on the way (config descriptors with a rule at an earlier entry), as rule keys. */
      readonly rulesOnTheWay: readonly string[];
      readonly steps: readonly MatchStep[];
    };
