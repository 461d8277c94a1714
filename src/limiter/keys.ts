import { hash } from 'node:crypto';
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
 *   The digest hashes the strings' UTF-8 form, so it tells apart exactly the well-formed strings:
 *   a lone surrogate has no UTF-8 form and hashes as U+FFFD would. The transports accept only
 *   well-formed text (gRPC rejects invalid UTF-8, `/json` lone surrogates), which makes the
 *   mapping from accepted descriptors to tags injective (up to SHA-256 collisions).
 * - `identity` is the limit's counter identity (algorithm, unit, multiplier), never its threshold,
 *   so a reload that changes `requests_per_unit` keeps counting on the same key.
 *
 * The prefix (CACHE_KEY_PREFIX) is validated by settings to contain no `{` or `}`.
 */
export function descriptorTag(domain: string, entries: readonly DescriptorEntry[]): string {
  return TAGS.get(domain, entries) ?? TAGS.set(domain, entries, digest(domain, entries));
}

/**
 * The digest itself: one string, one native one-shot digest (about 3x cheaper than a
 * createHash() object per descriptor: 0.9 vs 2.8 us measured on Node 20). Length prefixes keep
 * the encoding injective.
 */
function digest(domain: string, entries: readonly DescriptorEntry[]): string {
  let s = `${domain.length}:${domain}`;
  for (const e of entries) s += `|${e.key.length}:${e.key}=${e.value.length}:${e.value}`;
  return hash('sha256', s, 'base64url').slice(0, 22);
}

/** A node of a {@link TagCache} generation: the tag of the path that ends here, and the next steps. */
class TagNode {
  tag: string | undefined = undefined;
  next: Map<string, TagNode> | undefined = undefined;
}

/**
 * Longest descriptor a {@link TagCache} holds, in UTF-16 units of its domain, keys and values
 * together. A longer one is not cached (it pays the digest, about 1 us, on every use), so a
 * request's long strings are never kept: a cached path holds at most this much text. Typical
 * descriptors are far below it: `edge` + `remote_address` + an IPv6 address is 57 units, a
 * company and a 100-character path about 130.
 */
export const MAX_CACHED_DESCRIPTOR_CHARS = 512;
/** Most entries of a cached descriptor (the request limit), so empty strings cannot make a path long either. */
export const MAX_CACHED_DESCRIPTOR_ENTRIES = 32;

/**
 * Upper bounds of what one path step and one tag hold on the heap (V8, 64-bit, Node 20): a step
 * is a TagNode (40 bytes), its slot in the parent's Map (at most 56 bytes once the table has
 * grown), a Map of its own when it is its parent's first child (about 184 bytes with its initial
 * table) and its string (16 bytes + 2 per UTF-16 unit at most); a tag is a 22-character slice of
 * a 43-character digest (96 bytes). `node --expose-gc --import tsx benchmarks/tag-cache/memory.ts`
 * checks the estimate against the heap: it is above it for every shape there.
 */
const STEP_BYTES = 40 + 56 + 184 + 16;
const TAG_BYTES = 96;

/**
 * Recently used tags, so a descriptor seen again skips the digest. Each generation is a trie
 * over the path domain, key 1, value 1, key 2, value 2, ...: a lookup is one Map step per
 * string, on the strings the request decoded, so it neither builds nor hashes a joined string
 * (which cost about 200 ns per descriptor against about 50 for the trie, with fresh strings as a
 * request has them). Two generations bound the memory: when `young` holds `capacity` tags, or
 * `generationBytes` by the estimate above, it becomes `old` and the previous `old` is dropped; a
 * hit in `old` is copied into `young`. So the work per lookup is O(path length), descriptors
 * used at least once per generation stay cached (an approximate LRU), and the cache holds at
 * most 2 x capacity tags and 2 x (generationBytes + one path's bytes) of heap, whatever
 * requests send: a descriptor longer than {@link MAX_CACHED_DESCRIPTOR_CHARS} is never stored.
 * High-cardinality traffic (a million client IPs) mostly misses and pays the digest, plus one
 * insert.
 *
 * Cost of the byte budget (`npx tsx benchmarks/tag-cache/bench.ts`: against the count-only trie
 * it replaced, in one process, interleaved, medians of 15 rounds; three runs on the shared 2-core
 * VM, Node 20): a hit, 1 descriptor, 123 / 123 / 208 ns against 119 / 119 / 198; a hit in the
 * gateway's 4-descriptor request 137 / 140 / 210 ns per descriptor against 146 / 142 / 217; a miss
 * (`get` + `set`, without the digest of about 1 us that every miss pays) 603 / 636 / 1,071 ns
 * against 558 / 652 / 1,089. No difference beyond the noise: lookups walk the same trie, and a
 * miss adds a sum of lengths and one addition per created step.
 *
 * Memory (`node --expose-gc --import tsx benchmarks/tag-cache/memory.ts`, one shape per process,
 * heap growth after a full GC against {@link TagCache.bytes}): 3.5 MiB held against a 7.1 MiB
 * estimate for 100,000 client IPv4s (18,080 tags kept); at most 12.7 MiB against 14.7 for
 * values just under the cacheable size (two-byte text), 11.1 against 14.8 for 32-entry
 * descriptors (822 kept), 10.0 against 15.3 for distinct domains. The process-wide cache is
 * therefore bounded by 2 x (8 MiB + one path of at most 20 KiB): 16 MiB of heap.
 */
export class TagCache {
  private young = new TagNode();
  private old = new TagNode();
  private youngSize = 0;
  private oldSize = 0;
  private youngBytes = 0;
  private oldBytes = 0;

  constructor(
    private readonly capacity: number,
    private readonly generationBytes = 8 * 1024 * 1024,
  ) {}

  get(domain: string, entries: readonly DescriptorEntry[]): string | undefined {
    const hit = walk(this.young, domain, entries)?.tag;
    if (hit !== undefined) return hit;
    const aged = walk(this.old, domain, entries)?.tag;
    if (aged !== undefined) this.set(domain, entries, aged);
    return aged;
  }

  /** Stores (unless the descriptor is too long to cache) and returns `tag`. */
  set(domain: string, entries: readonly DescriptorEntry[], tag: string): string {
    if (!cacheable(domain, entries)) return tag;
    if (this.youngSize >= this.capacity || this.youngBytes >= this.generationBytes) {
      this.old = this.young;
      this.oldSize = this.youngSize;
      this.oldBytes = this.youngBytes;
      this.young = new TagNode();
      this.youngSize = 0;
      this.youngBytes = 0;
    }
    let node = this.step(this.young, domain);
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      node = this.step(this.step(node, e.key), e.value);
    }
    if (node.tag === undefined) {
      this.youngSize++;
      this.youngBytes += TAG_BYTES;
    }
    node.tag = tag;
    return tag;
  }

  /** Tags held in both generations (a descriptor in both counts twice). */
  get size(): number {
    return this.youngSize + this.oldSize;
  }

  /** Heap held by both generations, by the upper-bound estimate ({@link STEP_BYTES}, {@link TAG_BYTES}). */
  get bytes(): number {
    return this.youngBytes + this.oldBytes;
  }

  /** The child of `node` for `key` in the young generation, created (and its bytes counted) when missing. */
  private step(node: TagNode, key: string): TagNode {
    let next = node.next?.get(key);
    if (next === undefined) {
      next = new TagNode();
      (node.next ??= new Map()).set(key, next);
      this.youngBytes += STEP_BYTES + 2 * key.length;
    }
    return next;
  }
}

/** Whether a descriptor is short enough to cache ({@link MAX_CACHED_DESCRIPTOR_CHARS}, {@link MAX_CACHED_DESCRIPTOR_ENTRIES}). */
function cacheable(domain: string, entries: readonly DescriptorEntry[]): boolean {
  if (entries.length > MAX_CACHED_DESCRIPTOR_ENTRIES) return false;
  let chars = domain.length;
  for (let i = 0; i < entries.length && chars <= MAX_CACHED_DESCRIPTOR_CHARS; i++) {
    const e = entries[i]!;
    chars += e.key.length + e.value.length;
  }
  return chars <= MAX_CACHED_DESCRIPTOR_CHARS;
}

/** The node of the path (domain, key 1, value 1, ...) under `root`, if it exists. */
function walk(root: TagNode, domain: string, entries: readonly DescriptorEntry[]): TagNode | undefined {
  let node = root.next?.get(domain);
  for (let i = 0; node !== undefined && i < entries.length; i++) {
    const e = entries[i]!;
    node = node.next?.get(e.key);
    if (node !== undefined) node = node.next?.get(e.value);
  }
  return node;
}

/** Shared by every limiter in the process: a tag is a pure function of its input. */
const TAGS = new TagCache(16_384);

export function counterKey(prefix: string, tag: string, identity: string): string {
  return `${prefix}{${tag}}:${identity}`;
}

/** Counter identity of a limit: algorithm, unit, multiplier. */
export function limitIdentity(algorithm: string, unit: string, unitMultiplier: number): string {
  return `${algorithm === 'fixed_window' ? 'fw' : algorithm === 'sliding_window' ? 'sw' : 'tb'}:${unit}:${unitMultiplier}`;
}
