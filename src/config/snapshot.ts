import { deepFreeze } from '../util/deep-freeze.js';
import type { DescriptorEntry } from '../limiter/types.js';
import type { CompiledRule, CompiledSnapshot, ConfigDump, ConfigWarning } from './compiled.js';
import type { MatchTrace } from './compiled.js';
import { matchRule, traceMatch, type MatchNode } from './matcher.js';
import type { DomainOptions } from './schema.js';

/** One domain as the compiler built it: its match tree, its options and its dump. */
export interface DomainBuildResult {
  readonly root: MatchNode;
  readonly options: DomainOptions;
  readonly dump: ConfigDump['domains'][number];
}

/** The immutable snapshot `compileConfig` and `compileXdsResources` return (./compile.ts). */
export class Snapshot implements CompiledSnapshot {
  readonly domainNames: readonly string[];
  readonly #loadedAtMs: number;
  readonly #roots: ReadonlyMap<string, MatchNode>;
  readonly #options: ReadonlyMap<string, DomainOptions>;
  readonly #dump: ConfigDump;

  constructor(
    readonly version: string,
    loadedAtMs: number,
    readonly files: readonly string[],
    domains: ReadonlyMap<string, DomainBuildResult>,
    readonly warnings: readonly ConfigWarning[],
    readonly ruleCount: number,
  ) {
    this.#loadedAtMs = loadedAtMs;
    this.domainNames = Object.freeze([...domains.keys()]);
    this.#roots = new Map([...domains].map(([k, v]) => [k, v.root]));
    this.#options = new Map([...domains].map(([k, v]) => [k, v.options]));
    this.#dump = deepFreeze({
      version,
      loadedAt: new Date(loadedAtMs).toISOString(),
      files: [...files],
      domains: [...domains.values()].map((d) => d.dump),
    });
    Object.freeze(this);
  }

  /** A fresh Date per read, so the snapshot stays immutable. */
  get loadedAt(): Date {
    return new Date(this.#loadedAtMs);
  }

  hasDomain(domain: string): boolean {
    return this.#roots.has(domain);
  }

  findRule(domain: string, entries: readonly DescriptorEntry[]): CompiledRule | undefined {
    const root = this.#roots.get(domain);
    return root === undefined ? undefined : matchRule(root, entries);
  }

  traceMatch(domain: string, entries: readonly DescriptorEntry[]): MatchTrace | undefined {
    const root = this.#roots.get(domain);
    return root === undefined ? undefined : traceMatch(root, entries);
  }

  dump(): ConfigDump {
    return this.#dump;
  }

  domainOptions(domain: string): DomainOptions | undefined {
    return this.#options.get(domain);
  }
}
