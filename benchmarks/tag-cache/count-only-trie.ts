/**
 * The tag cache as it was before its byte budget (src/limiter/keys.ts at 1f8b8de): a two-
 * generation trie bounded by count only. Kept as the baseline of bench.ts, byte for byte.
 */
import type { DescriptorEntry } from '../../src/limiter/types.js';

/** A node of a {@link TagCache} generation: the tag of the path that ends here, and the next steps. */
class TagNode {
  tag: string | undefined = undefined;
  next: Map<string, TagNode> | undefined = undefined;
}

/**
 * Recently used tags, so a descriptor seen again skips the digest. Each generation is a trie
 * over the path domain, key 1, value 1, key 2, value 2, ...: a lookup is one Map step per
 * string, on the strings the request decoded, so it neither builds nor hashes a joined string
 * (which cost about 200 ns per descriptor against about 50 for the trie, with fresh strings as a
 * request has them). Two generations bound the memory: when `young` holds `capacity` tags it
 * becomes `old` and the previous `old` is dropped; a hit in `old` is copied into `young`. So at
 * most 2 x capacity tags are held, the work per lookup is O(path length), and descriptors used at
 * least once per generation stay cached (an approximate LRU). High-cardinality traffic (a
 * million client IPs) mostly misses and pays the digest, plus one insert.
 */
export class CountOnlyTagCache {
  private young = new TagNode();
  private old = new TagNode();
  private youngSize = 0;
  private oldSize = 0;

  constructor(private readonly capacity: number) {}

  get(domain: string, entries: readonly DescriptorEntry[]): string | undefined {
    const hit = walk(this.young, domain, entries, false)?.tag;
    if (hit !== undefined) return hit;
    const aged = walk(this.old, domain, entries, false)?.tag;
    if (aged !== undefined) this.set(domain, entries, aged);
    return aged;
  }

  /** Stores and returns `tag`. */
  set(domain: string, entries: readonly DescriptorEntry[], tag: string): string {
    if (this.youngSize >= this.capacity) {
      this.old = this.young;
      this.oldSize = this.youngSize;
      this.young = new TagNode();
      this.youngSize = 0;
    }
    const node = walk(this.young, domain, entries, true)!;
    if (node.tag === undefined) this.youngSize++;
    node.tag = tag;
    return tag;
  }

  /** Tags held in both generations (a descriptor in both counts twice). */
  get size(): number {
    return this.youngSize + this.oldSize;
  }
}

/** The node of the path (domain, key 1, value 1, ...) under `root`; created on the way when `create`. */
function walk(root: TagNode, domain: string, entries: readonly DescriptorEntry[], create: boolean): TagNode | undefined {
  let node = child(root, domain, create);
  for (let i = 0; node !== undefined && i < entries.length; i++) {
    const e = entries[i]!;
    node = child(node, e.key, create);
    if (node !== undefined) node = child(node, e.value, create);
  }
  return node;
}

function child(node: TagNode, step: string, create: boolean): TagNode | undefined {
  let next = node.next?.get(step);
  if (next === undefined && create) {
    next = new TagNode();
    (node.next ??= new Map()).set(step, next);
  }
  return next;
}
