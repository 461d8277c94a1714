/**
 * Heap held by the tag cache (src/limiter/keys.ts) against its own byte estimate, for the shapes
 * that cost the most per descriptor and the common one:
 *
 *   node --expose-gc --import tsx benchmarks/tag-cache/memory.ts
 *
 * Each shape fills a fresh `TagCache(16_384)` (the size the limiter uses) with enough distinct
 * descriptors to rotate both generations several times, with strings made the way the
 * transports make them (Buffer#utf8Slice: flat strings, nothing shared with a larger one) and
 * tags made as descriptorTag makes them; then a full GC. It prints the heap growth, the cache's
 * estimate (`TagCache#bytes`) and their ratio, which must stay at or below 1 for the estimate to
 * be a budget; and the process's RSS growth.
 */
import { spawnSync } from 'node:child_process';
import { hash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { MAX_CACHED_DESCRIPTOR_CHARS, TagCache } from '../../src/limiter/keys.js';
import type { DescriptorEntry } from '../../src/limiter/types.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with node --expose-gc');
const heap = (): number => {
  for (let i = 0; i < 3; i++) gc!();
  return process.memoryUsage().heapUsed;
};
/** A fresh flat string, as a decoder makes it. */
const wire = (s: string): string => Buffer.from(s, 'utf8').toString('utf8');
const tagOf = (i: number): string => hash('sha256', `tag ${i}`, 'base64url').slice(0, 22);

interface Shape {
  readonly name: string;
  readonly count: number;
  descriptor(i: number): [string, DescriptorEntry[]];
}

const pad = (i: number, n: number, unit: string): string => `${i}:`.padEnd(n, unit);
const SHAPES: readonly Shape[] = [
  {
    name: 'edge / remote_address / IPv4 (the common case)',
    count: 100_000,
    descriptor: (i) => ['edge', [{ key: 'remote_address', value: wire(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`) }]],
  },
  {
    name: `one value just under the cacheable size (${MAX_CACHED_DESCRIPTOR_CHARS - 20} one-byte chars)`,
    count: 60_000,
    descriptor: (i) => ['edge', [{ key: 'path', value: wire(pad(i, MAX_CACHED_DESCRIPTOR_CHARS - 20, 'x')) }]],
  },
  {
    name: `one value just under the cacheable size (${MAX_CACHED_DESCRIPTOR_CHARS - 20} two-byte chars: U+20AC)`,
    count: 60_000,
    descriptor: (i) => ['edge', [{ key: 'path', value: wire(pad(i, MAX_CACHED_DESCRIPTOR_CHARS - 20, '\u20ac')) }]],
  },
  {
    name: '32 entries of 1-char keys, distinct from the first value on (most steps per descriptor)',
    count: 20_000,
    descriptor: (i) => [
      'edge',
      [
        { key: 'a', value: wire(String(i)) },
        ...Array.from({ length: 31 }, (_, j) => ({ key: wire(String.fromCharCode(98 + (j % 20))), value: '' })),
      ],
    ],
  },
  {
    name: 'distinct domains, one short entry',
    count: 100_000,
    descriptor: (i) => [wire(`d${i}`), [{ key: 'k', value: 'v' }]],
  },
];

/** One shape in this process (a fresh process per shape: nothing of another shape is on the heap). */
function measure(shape: Shape): void {
  const rss0 = process.memoryUsage().rss;
  const before = heap();
  const cache = new TagCache(16_384);
  for (let i = 0; i < shape.count; i++) {
    const [domain, entries] = shape.descriptor(i);
    cache.set(domain, entries, tagOf(i));
  }
  const grown = heap() - before;
  const mb = (n: number): string => (n / 1048576).toFixed(1);
  console.log(
    `${shape.name}: ${shape.count} set, ${cache.size} tags held; heap +${mb(grown)} MiB, estimate ${mb(cache.bytes)} MiB, ` +
      `heap/estimate ${(grown / cache.bytes).toFixed(2)}; RSS +${mb(process.memoryUsage().rss - rss0)} MiB`,
  );
}

const which = process.argv[2];
if (which !== undefined) measure(SHAPES[Number(which)]!);
else {
  for (let i = 0; i < SHAPES.length; i++) {
    const child = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), String(i)], { stdio: 'inherit' });
    if (child.status !== 0) process.exit(child.status ?? 1);
  }
}
