import { ConfigError } from '../errors.js';
import type { CompiledSnapshot } from './compiled.js';
import { compileTrees, type CompileOptions, type ConfigTree, type Found } from './compile.js';
import { contentVersion } from './version.js';
import type { YMap, YNode, YScalar, YSeq } from './yaml-tree.js';

/**
 * envoyproxy/ratelimit's xDS config resource, `ratelimit.config.ratelimit.v3.RateLimitConfig`
 * (proto/ratelimit/config/ratelimit/v3/rls_conf.proto), as plain values, and its compilation.
 *
 * A resource is translated into the positional tree the YAML schema checks read, then checked and
 * compiled exactly like a file (upstream does the same: `ConfigXdsProtoToYaml`, then its YAML
 * loader), so an xDS config behaves as the equivalent YAML and fails with the same messages,
 * prefixed `xds:<resource name>` instead of a file path and without line numbers. The proto has
 * no field for meshlimit's YAML extensions (`algorithm`, `burst`, `unit_multiplier`,
 * `rate_limits`, `failure_mode`, `resolution`), nor for upstream's YAML-only `value_to_metric` and
 * `share_threshold`: those are file-only.
 *
 * Proto3 has no "unset" for scalars, so the translation reads the defaults as upstream does: an
 * empty `value` or `name` is absent, unit `UNKNOWN` (0) is no unit, and `requests_per_unit` 0 on
 * an `unlimited` policy is absent. Transport-free: src/xds decodes the wire message into these
 * types.
 */

/** `ratelimit.config.ratelimit.v3.RateLimitUnit` names, in declaration order (WEEK, 7, comes before MONTH, 5). */
export const XDS_UNIT_NAMES = ['UNKNOWN', 'SECOND', 'MINUTE', 'HOUR', 'DAY', 'WEEK', 'MONTH', 'YEAR'] as const;
export type XdsUnitName = (typeof XDS_UNIT_NAMES)[number];

export interface XdsRateLimitConfig {
  readonly name: string;
  readonly domain: string;
  readonly descriptors: readonly XdsRateLimitDescriptor[];
}

export interface XdsRateLimitDescriptor {
  readonly key: string;
  readonly value: string;
  /** Null when the message is absent. */
  readonly rateLimit: XdsRateLimitPolicy | null;
  readonly descriptors: readonly XdsRateLimitDescriptor[];
  readonly shadowMode: boolean;
  readonly detailedMetric: boolean;
  readonly quotaMode: boolean;
  /** The `google.protobuf.Struct` as JSON; null when absent. */
  readonly metadata: Readonly<Record<string, unknown>> | null;
}

export interface XdsRateLimitPolicy {
  /** The enum value's name, or its number when this proto does not name it (an open proto3 enum). */
  readonly unit: XdsUnitName | number;
  readonly requestsPerUnit: number;
  readonly unlimited: boolean;
  readonly name: string;
  readonly replaces: readonly { readonly name: string }[];
}

/** Prefix of the name every message about an xDS resource starts with. */
export const XDS_SOURCE_PREFIX = 'xds:';

/** How messages name a resource: `xds:<name>`, or `xds:resources[i]` for a resource without a name. */
export function xdsSourceName(resource: XdsRateLimitConfig, index: number): string {
  return resource.name === '' ? `${XDS_SOURCE_PREFIX}resources[${index}]` : `${XDS_SOURCE_PREFIX}${resource.name}`;
}

/**
 * Checks and compiles one state of the world (every resource of a DiscoveryResponse) into a
 * snapshot. Throws `ConfigError` / `ConfigErrors` like `compileConfig`; the snapshot's version is
 * a content hash of the resources, so an unchanged set sent again under a new xDS version is
 * recognised as unchanged.
 */
export function compileXdsResources(resources: readonly XdsRateLimitConfig[], options: CompileOptions = {}): CompiledSnapshot {
  const found: Found = { errors: [], warnings: [] };
  const trees: ConfigTree[] = [];
  const seen = new Set<string>();
  resources.forEach((r, i) => {
    const path = xdsSourceName(r, i);
    if (seen.has(path)) {
      found.errors.push(new ConfigError(path, 'name', 'more than one resource has this name; each RateLimitConfig needs its own'));
      return;
    }
    seen.add(path);
    trees.push({ path, root: configTree(r) });
  });
  const version = contentVersion(
    resources.map((r, i) => ({ path: xdsSourceName(r, i), name: xdsSourceName(r, i), text: JSON.stringify(r) })),
  );
  return compileTrees(trees, version, options, found);
}

/** The resource as the tree its YAML twin would parse to (every node on line 0: no lines). */
export function configTree(r: XdsRateLimitConfig): YMap {
  const entries: [string, YNode][] = [['domain', str(r.domain)]];
  if (r.descriptors.length > 0) entries.push(['descriptors', seq(r.descriptors.map(descriptorTree))]);
  return map(entries);
}

function descriptorTree(d: XdsRateLimitDescriptor): YMap {
  const entries: [string, YNode][] = [['key', str(d.key)]];
  if (d.value !== '') entries.push(['value', str(d.value)]);
  if (d.rateLimit !== null) entries.push(['rate_limit', policyTree(d.rateLimit)]);
  if (d.descriptors.length > 0) entries.push(['descriptors', seq(d.descriptors.map(descriptorTree))]);
  if (d.shadowMode) entries.push(['shadow_mode', bool(true)]);
  if (d.detailedMetric) entries.push(['detailed_metric', bool(true)]);
  if (d.quotaMode) entries.push(['quota_mode', bool(true)]);
  if (d.metadata !== null && Object.keys(d.metadata).length > 0) entries.push(['metadata', json(d.metadata)]);
  return map(entries);
}

function policyTree(p: XdsRateLimitPolicy): YMap {
  const entries: [string, YNode][] = [];
  if (p.unit !== 'UNKNOWN' && p.unit !== 0) entries.push(['unit', str(String(p.unit))]);
  if (!(p.unlimited && p.requestsPerUnit === 0)) entries.push(['requests_per_unit', num(p.requestsPerUnit)]);
  if (p.unlimited) entries.push(['unlimited', bool(true)]);
  if (p.name !== '') entries.push(['name', str(p.name)]);
  if (p.replaces.length > 0) entries.push(['replaces', seq(p.replaces.map((r) => map([['name', str(r.name)]])))]);
  return map(entries);
}

// Tree nodes without lines. Strings are marked quoted: their value is the text, never a YAML
// 1.1 boolean or number (a proto string is a string).
const str = (s: string): YScalar => ({ kind: 'scalar', line: 0, value: s, source: s, quoted: true });
const num = (n: number): YScalar => ({ kind: 'scalar', line: 0, value: n, source: String(n), quoted: false });
const bool = (b: boolean): YScalar => ({ kind: 'scalar', line: 0, value: b, source: String(b), quoted: false });
const seq = (items: YNode[]): YSeq => ({ kind: 'seq', line: 0, items });
const map = (entries: [string, YNode][]): YMap => ({
  kind: 'map',
  line: 0,
  entries: new Map(entries.map(([k, value]) => [k, { keyLine: 0, value }])),
  duplicates: [],
  complexKeyLines: [],
});

export function json(v: unknown): YNode {
  if (v === null || v === undefined) return { kind: 'scalar', line: 0, value: null, source: '', quoted: false };
  if (typeof v === 'string') return str(v);
  if (typeof v === 'number') return num(v);
  if (typeof v === 'boolean') return bool(v);
  if (Array.isArray(v)) return seq(v.map(json));
  return map(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, json(x)]));
}
