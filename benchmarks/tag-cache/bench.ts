/**
 * Nanoseconds per tag-cache operation: the byte-budgeted trie (src/limiter/keys.ts) against the
 * count-only trie it replaced (count-only-trie.ts).
 *
 *   npx tsx benchmarks/tag-cache/bench.ts [calls per round] [rounds]
 *
 * Strings are fresh for every call, as a request decodes them (a string's hash is computed on its
 * first Map lookup, so reusing one object would flatter both). Cases:
 * - hit, 1 descriptor: `edge / remote_address / <ip>`, one hot IP;
 * - hit, 4 descriptors: the gateway's request (company, company + path, address, address + method);
 * - miss: a new IP on every call, `get` then `set` (what descriptorTag does besides the digest,
 *   which is about 1 us and the same for both).
 * Each round runs every (case, cache) pair once, alternating the order between rounds; the
 * figure is the median over rounds.
 */
import { hash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { TagCache } from '../../src/limiter/keys.js';
import type { DescriptorEntry } from '../../src/limiter/types.js';
import { CountOnlyTagCache } from './count-only-trie.js';

const CALLS = Number(process.argv[2] ?? 50_000);
const ROUNDS = Number(process.argv[3] ?? 15);

type Cache = Pick<TagCache, 'get' | 'set'>;
type Descriptor = [string, DescriptorEntry[]];

const fresh = (s: string): string => Buffer.from(s, 'latin1').toString('latin1');
const copies = (make: (i: number) => Descriptor[], n: number): Descriptor[][] => Array.from({ length: n }, (_, i) => make(i));
const e = (key: string, value: string): DescriptorEntry => ({ key: fresh(key), value: fresh(value) });

const oneHot = (): Descriptor[] => [[fresh('edge'), [e('remote_address', '198.51.100.7')]]];
const gateway = (): Descriptor[] => [
  [fresh('edge'), [e('company_id', 'acme-corp')]],
  [fresh('edge'), [e('company_id', 'acme-corp'), e('path', '/v1/orders')]],
  [fresh('edge'), [e('remote_address', '198.51.100.7')]],
  [fresh('edge'), [e('remote_address', '198.51.100.7'), e('method', 'POST')]],
];
const newIp = (i: number): Descriptor[] => [[fresh('edge'), [e('remote_address', `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`)]]];
const TAG = hash('sha256', 'x', 'base64url').slice(0, 22);

let sink = 0;
function run(cache: Cache, requests: Descriptor[][]): number {
  const t0 = performance.now();
  for (const request of requests) {
    for (const [domain, entries] of request) {
      const hit = cache.get(domain, entries);
      if (hit === undefined) cache.set(domain, entries, TAG);
      else sink += hit.length;
    }
  }
  return ((performance.now() - t0) * 1e6) / (requests.length * requests[0]!.length);
}

const CASES = [
  { name: 'hit, 1 descriptor', make: () => copies(oneHot, CALLS) },
  { name: 'hit, 4 descriptors (per descriptor)', make: () => copies(gateway, CALLS / 4) },
  { name: 'miss: new IP, get + set', make: (round: number) => copies((i) => newIp(round * CALLS + i), CALLS) },
];
const CACHES: [string, () => Cache][] = [
  ['count-only trie', () => new CountOnlyTagCache(16_384)],
  ['byte-budgeted trie', () => new TagCache(16_384)],
];

const results = new Map<string, number[]>();
const caches = CACHES.map(([name, make]) => [name, make()] as const);
for (let round = 0; round < ROUNDS + 2; round++) {
  const order = round % 2 === 0 ? caches : [...caches].reverse();
  for (const c of CASES) {
    for (const [name, cache] of order) {
      const ns = run(cache, c.make(round));
      if (round >= 2) (results.get(`${c.name}|${name}`) ?? results.set(`${c.name}|${name}`, []).get(`${c.name}|${name}`)!).push(ns);
    }
  }
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
console.log(`Node ${process.version}, ${CALLS} descriptors per round, ${ROUNDS} rounds, medians (sink ${sink % 10})\n`);
console.log(`| case | ${CACHES.map(([n]) => `${n} ns`).join(' | ')} |`);
console.log(`| --- | ${CACHES.map(() => '---:').join(' | ')} |`);
for (const c of CASES) console.log(`| ${c.name} | ${CACHES.map(([n]) => median(results.get(`${c.name}|${n}`)!).toFixed(0)).join(' | ')} |`);
