import { createHash } from 'node:crypto';
import type { DescriptorEntry } from './types.js';

/**
 * Counter keys, built here and nowhere else.
 *
 *   <prefix>{<tag>}:<identity>
 *
 * - `tag` is a 128-bit digest (base64url, 22 chars) of the domain and the descriptor's entries,
 *   each length-prefixed. Every key one descriptor's limits touch shares it, so a Lua script's
 *   keys always hash to one Redis Cluster slot, while different descriptors spread over the
 *   cluster (a per-domain tag would make one hot shard).
 * - Values are never embedded raw: `{`, `}`, `:` or megabytes of text cannot break the tag,
 *   collide with another descriptor or blow up key size (keys are bounded by prefix + ~60 bytes).
 * - `identity` is the limit's counter identity (algorithm, unit, multiplier), never its threshold,
 *   so a reload that changes `requests_per_unit` keeps counting on the same key.
 *
 * The prefix (CACHE_KEY_PREFIX) is validated by settings to contain no `{` or `}`.
 */
export function descriptorTag(domain: string, entries: readonly DescriptorEntry[]): string {
  const h = createHash('sha256');
  h.update(`${domain.length}:${domain}`);
  for (const e of entries) {
    h.update(`|${e.key.length}:${e.key}=${e.value.length}:`);
    h.update(e.value);
  }
  return h.digest('base64url').slice(0, 22);
}

export function counterKey(prefix: string, tag: string, identity: string): string {
  return `${prefix}{${tag}}:${identity}`;
}

/** Counter identity of a limit: algorithm, unit, multiplier. */
export function limitIdentity(algorithm: string, unit: string, unitMultiplier: number): string {
  return `${algorithm === 'fixed_window' ? 'fw' : algorithm === 'sliding_window' ? 'sw' : 'tb'}:${unit}:${unitMultiplier}`;
}
