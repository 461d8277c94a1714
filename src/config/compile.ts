import { ConfigError, ConfigErrors } from '../errors.js';
import { deepFreeze } from '../util/deep-freeze.js';
import { limitIdentity } from '../limiter/keys.js';
import { UNIT_SECONDS, type Limit } from '../limiter/types.js';
import type { CompiledRule, CompiledSnapshot, ConfigWarning, DescriptorDump, LimitDump } from './compiled.js';
import type { MatchNode, WildcardChild } from './matcher.js';
import { Snapshot, type DomainBuildResult } from './snapshot.js';
import type { LimitSpec } from './limit-schema.js';
import { checkFile, type DescriptorSpec, type DomainOptions, type FileSpec } from './schema.js';
import { contentVersion, type ConfigFile } from './version.js';
import { at } from './checker.js';
import { readYaml, type YNode } from './yaml-tree.js';

export interface CompileOptions {
  /**
   * envoyproxy/ratelimit `MERGE_DOMAIN_CONFIG`: several files may define one domain, their
   * descriptors are merged (a descriptor defined twice is still an error). Default false: a
   * domain defined in two files is an error.
   */
  readonly mergeDomainConfigs?: boolean;
  /** Clock for `loadedAt` (tests). */
  readonly now?: () => number;
}

/**
 * Compiles config files into an immutable snapshot. Pure: no I/O, no clock unless `now` is
 * omitted. Throws a `ConfigError` for a single problem and `ConfigErrors` for several (every file
 * is checked, so one run reports every broken file). Files are processed in path order, so the
 * result and the errors do not depend on the order they are passed in.
 */
export function compileConfig(files: readonly ConfigFile[], options: CompileOptions = {}): CompiledSnapshot {
  const sorted = [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const found: Found = { errors: [], warnings: [] };
  const trees: ConfigTree[] = [];
  for (let i = 0; i < sorted.length; i++) {
    const f = sorted[i]!;
    if (i > 0 && sorted[i - 1]!.path === f.path) {
      found.errors.push(new ConfigError(f.path, '', 'file listed more than once'));
      continue;
    }
    const tree = parseFile(f, found);
    if (tree !== undefined) trees.push(tree);
  }
  return compileTrees(trees, contentVersion(sorted), options, found);
}

/**
 * One config source as the schema checks read it: a YAML file's positional tree, or an xDS
 * resource translated into the same tree (./xds-resources.ts), so both pass the same checks and
 * the same compiler.
 */
export interface ConfigTree {
  /** Names the source in every message: a file path, or `xds:<resource name>`. */
  readonly path: string;
  /** Null for an empty document. */
  readonly root: YNode | null;
  /** Reported when the schema checks found nothing else (the YAML parser's duplicate keys). */
  readonly fallbackError?: string | undefined;
}

/** Errors and warnings found so far (parsing), to which the checks and the compiler add. */
export interface Found {
  readonly errors: ConfigError[];
  readonly warnings: ConfigWarning[];
}

/**
 * The schema checks and the compiler, over trees already parsed (`compileConfig`) or translated
 * (`compileXdsResources`). `version` names the content; trees are taken in path order. Throws
 * like {@link compileConfig}, with the errors already in `found` first.
 */
export function compileTrees(
  trees: readonly ConfigTree[],
  version: string,
  options: CompileOptions = {},
  found: Found = { errors: [], warnings: [] },
): CompiledSnapshot {
  const sorted = [...trees].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const { errors, warnings } = found;
  const specs: FileSpec[] = [];
  for (const t of sorted) {
    const spec = checkTree(t, found);
    if (spec !== undefined) specs.push(spec);
  }
  const builder = new TreeBuilder(options.mergeDomainConfigs ?? false, errors);
  for (const spec of specs) builder.addFile(spec);

  if (errors.length === 1) throw errors[0]!;
  if (errors.length > 1) throw new ConfigErrors(errors);

  return new Snapshot(
    version,
    (options.now ?? Date.now)(),
    Object.freeze(sorted.map((t) => t.path)),
    builder.finish(),
    Object.freeze(warnings.map((w) => Object.freeze(w))),
    builder.ruleCount,
  );
}

function warner(path: string, found: Found): (field: string, detail: string) => void {
  return (field, detail) => {
    found.warnings.push({ file: path, field, detail, message: new ConfigError(path, field, detail).message });
  };
}

function parseFile(f: ConfigFile, found: Found): ConfigTree | undefined {
  const read = readYaml(f.text);
  if (!read.ok) {
    const what = read.syntax ? 'YAML syntax error' : 'YAML document too complex';
    found.errors.push(new ConfigError(f.path, '', `${what} at line ${read.line}, column ${read.column}: ${read.message}`));
    return undefined;
  }
  if (read.extraDocuments > 0) warner(f.path, found)('', `only the first YAML document is used; ${read.extraDocuments} more ignored`);
  // The YAML parser saw a duplicate key the field checks may not reach (defensive).
  const fallbackError = read.yamlDuplicateKeyLines.length > 0 ? `duplicate mapping key (line ${read.yamlDuplicateKeyLines[0]})` : undefined;
  return { path: f.path, root: read.root, fallbackError };
}

function checkTree(t: ConfigTree, found: Found): FileSpec | undefined {
  const result = checkFile(t.path, t.root);
  const warn = warner(t.path, found);
  for (const w of result.warnings) warn(w.field, w.detail);
  for (const e of result.errors) found.errors.push(new ConfigError(t.path, e.field, e.detail));
  if (result.errors.length === 0 && t.fallbackError !== undefined) {
    found.errors.push(new ConfigError(t.path, '', t.fallbackError));
    return undefined;
  }
  return result.spec;
}

interface BuildNode {
  children: Map<string, BuildNode> | undefined;
  wildcards: WildcardChild[];
  rule: CompiledRule | undefined;
  /** Path of the descriptor that created this node (for duplicate messages). */
  readonly origin: string;
  /** The same place, for explain (undefined for a domain's root). */
  readonly source?: { readonly file: string; readonly path: string; readonly line: number } | undefined;
}

interface DomainBuild {
  options: DomainOptions;
  readonly root: BuildNode;
  readonly files: string[];
  readonly dump: DescriptorDump[];
}

class TreeBuilder {
  ruleCount = 0;
  private readonly domains = new Map<string, DomainBuild>();
  private readonly domainFile = new Map<string, string>();

  constructor(
    private readonly merge: boolean,
    private readonly errors: ConfigError[],
  ) {}

  addFile(spec: FileSpec): void {
    let d = this.domains.get(spec.domain);
    if (d !== undefined && !this.merge) {
      this.errors.push(
        new ConfigError(
          spec.file,
          'domain',
          `duplicate domain '${spec.domain}'${at(spec.domainLine)}; already defined in ${this.domainFile.get(spec.domain)} (MERGE_DOMAIN_CONFIG=true merges them)`,
        ),
      );
      return;
    }
    if (d !== undefined && spec.options.failureMode !== undefined) {
      if (d.options.failureMode !== undefined && d.options.failureMode !== spec.options.failureMode) {
        this.errors.push(
          new ConfigError(
            spec.file,
            'failure_mode',
            `'${spec.options.failureMode}' conflicts with '${d.options.failureMode}' set for domain '${spec.domain}' in ${this.domainFile.get(spec.domain)}`,
          ),
        );
        return;
      }
      d.options = { ...d.options, failureMode: spec.options.failureMode };
    }
    if (d !== undefined && spec.options.resolution !== undefined) {
      // Two resolution blocks for one domain cannot be merged meaningfully: one file owns it.
      if (d.options.resolution !== undefined) {
        this.errors.push(
          new ConfigError(
            spec.file,
            'resolution',
            `is already set for domain '${spec.domain}' in ${d.options.resolution.file}; define it in one file only`,
          ),
        );
        return;
      }
      d.options = { ...d.options, resolution: spec.options.resolution };
    }
    if (d === undefined) {
      d = { options: spec.options, root: newNode(''), files: [], dump: [] };
      this.domains.set(spec.domain, d);
      this.domainFile.set(spec.domain, spec.file);
    }
    d.files.push(spec.file);
    this.addLevel(spec.file, d.root, `${spec.domain}.`, spec.descriptors, [], d.dump);
  }

  private addLevel(
    file: string,
    parent: BuildNode,
    parentKey: string,
    descriptors: readonly DescriptorSpec[],
    shared: readonly (string | undefined)[],
    dumpOut: DescriptorDump[],
  ): void {
    for (const d of descriptors) {
      const finalKey = d.value === undefined ? d.key : `${d.key}_${d.value}`;
      const ruleKey = parentKey + finalKey;
      const children = (parent.children ??= new Map());
      const existing = children.get(finalKey);
      if (existing !== undefined) {
        const where = existing.origin.startsWith(`${file}:`) ? existing.origin.slice(file.length + 1) : existing.origin;
        this.errors.push(
          new ConfigError(file, d.path, `duplicate descriptor composite key '${ruleKey}'${at(d.line)}; first defined at ${where}`),
        );
        continue;
      }
      const isWildcard = finalKey.includes('*');
      const myShared = [...shared, d.shareThreshold && isWildcard ? (d.value ?? finalKey) : undefined];
      const node: BuildNode = { ...newNode(`${file}:${d.path}`), source: Object.freeze({ file, path: d.path, line: d.line }) };
      node.rule = this.rule(file, ruleKey, d, myShared);
      children.set(finalKey, node);
      if (isWildcard) parent.wildcards.push({ pattern: finalKey, parts: Object.freeze(finalKey.split('*')), node: node as MatchNode });
      const childDump: DescriptorDump[] = [];
      this.addLevel(file, node, `${ruleKey}.`, d.descriptors, myShared, childDump);
      dumpOut.push(dumpDescriptor(d, node.rule, childDump));
    }
  }

  private rule(file: string, ruleKey: string, d: DescriptorSpec, shared: readonly (string | undefined)[]): CompiledRule | undefined {
    const spec = d.limits;
    if (spec.kind === 'none') return undefined;
    this.ruleCount++;
    const sharedValues = shared.some((s) => s !== undefined) ? Object.freeze([...shared]) : undefined;
    const common = {
      ruleKey,
      shadowMode: d.shadowMode,
      detailedMetric: d.detailedMetric,
      file,
      path: d.path,
      line: d.line,
      quotaMode: d.quotaMode,
      valueToMetric: d.valueToMetric,
      sharedValues,
      // Only a limited rule returns its metadata (upstream attaches it to the limit it found).
      metadata: spec.kind === 'limits' ? d.metadata : undefined,
    };
    if (spec.kind === 'unlimited') {
      return Object.freeze({
        ...common,
        limits: Object.freeze([]),
        unlimited: true,
        names: Object.freeze(spec.name === undefined ? [] : [spec.name]),
        replaces: Object.freeze([...spec.replaces]),
      });
    }
    const limits = spec.limits.map(compileLimit);
    const candidates = d.candidates.map((c) => Object.freeze({ ...compileLimit(c), identity: `cand:${compileLimit(c).identity}` }));
    return Object.freeze({
      ...common,
      ...(candidates.length > 0 ? { candidates: Object.freeze(candidates) } : {}),
      // A reservation rule's counter is the reservation state (lua/reservation.lua), never an ordinary one.
      ...(d.reservation === undefined ? {} : { reservation: d.reservation }),
      limits: Object.freeze(
        d.reservation === undefined ? limits : limits.map((l) => Object.freeze({ ...l, identity: `rsv:${l.identity}` })),
      ),
      unlimited: false,
      names: Object.freeze(limits.flatMap((l) => (l.name === undefined ? [] : [l.name]))),
      replaces: Object.freeze([...new Set(limits.flatMap((l) => l.replaces))]),
    });
  }

  finish(): ReadonlyMap<string, DomainBuildResult> {
    const out = new Map<string, DomainBuildResult>();
    for (const name of [...this.domains.keys()].sort()) {
      const d = this.domains.get(name)!;
      out.set(name, {
        root: freezeNode(d.root),
        options: deepFreeze({ ...d.options }),
        dump: deepFreeze({
          domain: name,
          files: [...d.files],
          ...(d.options.failureMode ? { failureMode: d.options.failureMode } : {}),
          ...(d.options.resolution ? { resolution: structuredClone(d.options.resolution) } : {}),
          descriptors: d.dump,
        }),
      });
    }
    return out;
  }
}

function newNode(origin: string): BuildNode {
  return { children: undefined, wildcards: [], rule: undefined, origin };
}

function freezeNode(n: BuildNode): MatchNode {
  if (n.children !== undefined) for (const c of n.children.values()) freezeNode(c);
  Object.freeze(n.wildcards);
  return Object.freeze(n) as MatchNode;
}

export function compileLimit(l: LimitSpec): Limit {
  return Object.freeze({
    name: l.name,
    algorithm: l.algorithm,
    unit: l.unit,
    unitMultiplier: l.unitMultiplier,
    requestsPerUnit: l.requestsPerUnit,
    burst: l.burst,
    windowMs: UNIT_SECONDS[l.unit] * l.unitMultiplier * 1000,
    identity: limitIdentity(l.algorithm, l.unit, l.unitMultiplier),
    replaces: Object.freeze([...l.replaces]),
  });
}

function dumpLimit(l: Limit): LimitDump {
  return {
    name: l.name ?? null,
    algorithm: l.algorithm,
    unit: l.unit,
    unitMultiplier: l.unitMultiplier,
    requestsPerUnit: l.requestsPerUnit,
    burst: l.burst,
    windowMs: l.windowMs,
    identity: l.identity,
    replaces: [...l.replaces],
  };
}

function dumpDescriptor(d: DescriptorSpec, rule: CompiledRule | undefined, descriptors: DescriptorDump[]): DescriptorDump {
  return {
    key: d.key,
    value: d.value ?? null,
    ruleKey: rule?.ruleKey ?? null,
    unlimited: rule?.unlimited ?? false,
    shadowMode: d.shadowMode,
    quotaMode: d.quotaMode,
    detailedMetric: d.detailedMetric,
    valueToMetric: d.valueToMetric,
    shareThreshold: d.shareThreshold,
    ...(d.metadata === undefined ? {} : { metadata: d.metadata }),
    limits: rule?.limits.map(dumpLimit) ?? [],
    ...(rule?.candidates === undefined ? {} : { candidateLimits: rule.candidates.map(dumpLimit) }),
    ...(d.reservation === undefined ? {} : { reservation: { ...d.reservation } }),
    descriptors,
  };
}
