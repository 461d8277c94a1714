import type { MetadataStruct, MetadataValue } from '../limiter/types.js';
import { at, type Checker } from './checker.js';
import type { LimitsSpec } from './limit-schema.js';
import { describeNode as describe, type YEntry, type YMap, type YNode } from './yaml-tree.js';

/**
 * A descriptor's `metadata` (envoyproxy/ratelimit #1112, #1175): any YAML mapping, converted as
 * upstream converts it (yaml.v2 into `map[string]interface{}`, then `structpb.NewStruct`):
 * strings, numbers (as doubles), booleans, null, lists and nested mappings; a timestamp-looking
 * scalar stays its text, as yaml.v2 leaves it. An absent, null or empty mapping is no metadata.
 *
 * Errors: a `metadata` that is not a mapping (upstream fails to decode the file too), and, as
 * everywhere in this schema (stricter than yaml.v2, which keeps the last), a key given twice in
 * one mapping and a mapping or list used as a key. The keys and values themselves are free.
 */
export function checkDescriptorMetadata(
  c: Checker,
  entry: YEntry | undefined,
  path: string,
  limits: LimitsSpec['kind'],
): MetadataStruct | undefined {
  if (entry === undefined) return undefined;
  const metadata = checkMetadata(c, entry.value, path);
  if (metadata !== undefined && limits !== 'limits') {
    // Upstream accepts it, but returns a descriptor's metadata only with the limit it found.
    const why = limits === 'none' ? 'no rate limit' : 'an unlimited rate limit';
    c.warn(path, `ignored: the descriptor has ${why}, and metadata is returned only with a limit that applied${at(entry.keyLine)}`);
  }
  return metadata;
}

function checkMetadata(c: Checker, node: YNode, path: string): MetadataStruct | undefined {
  if (node.kind === 'scalar' && node.value === null) return undefined;
  if (node.kind !== 'map') {
    c.error(path, `must be a mapping, got ${describe(node)}${at(node.line)}`);
    return undefined;
  }
  const out = struct(c, node, path);
  return Object.keys(out).length === 0 ? undefined : out;
}

function struct(c: Checker, node: YMap, path: string): MetadataStruct {
  for (const d of node.duplicates) c.error(`${path}.${d.key}`, `duplicate key${at(d.line)}; first defined on line ${d.firstLine}`);
  for (const line of node.complexKeyLines) c.error(path, `mapping keys must be strings${at(line)}`);
  // Null prototype: any key, `__proto__` included, is plain data.
  const out = Object.create(null) as Record<string, MetadataValue>;
  for (const [key, entry] of node.entries) out[key] = value(c, entry.value, `${path}.${key}`);
  return out;
}

function value(c: Checker, node: YNode, path: string): MetadataValue {
  if (node.kind === 'map') return struct(c, node, path);
  if (node.kind === 'seq') return node.items.map((item, i) => value(c, item, `${path}[${i}]`));
  const v = node.value;
  if (v === null || typeof v === 'boolean' || typeof v === 'number' || typeof v === 'string') return v;
  return node.source;
}
