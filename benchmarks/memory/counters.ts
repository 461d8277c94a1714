/**
 * Heap bytes per counter of the memory backend, per algorithm: what `MEMORY_MAX_KEYS` costs.
 *
 *   node --expose-gc --import tsx benchmarks/memory/counters.ts [counters]
 *
 * For each algorithm: a fresh backend, `counters` (default 1,000,000) distinct counters created
 * one op per call, with keys built exactly as the limiter builds them (a 22-character digest tag,
 * `{tag}:fw:minute:1`), then a full GC; the heap growth over the empty backend, divided by the
 * count. Nothing else holds the keys, so the figure is the entry, its list links, the key string,
 * the decoded state and the Map's slot. Then the cap: the same count again past a cap of half of
 * it, to show that eviction leaves nothing behind.
 */
import { hash } from 'node:crypto';
import { MemoryBackend } from '../../src/backend/memory.js';
import { counterKey, limitIdentity } from '../../src/limiter/keys.js';
import type { Algorithm, CounterOp } from '../../src/limiter/types.js';

const N = Number(process.argv[2] ?? 1_000_000);
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with node --expose-gc');

function heap(): number {
  for (let i = 0; i < 3; i++) gc!();
  return process.memoryUsage().heapUsed;
}

/** The key of counter `i`, as limiter.ts builds it: a digest tag sliced to 22 characters. */
function keyOf(i: number, algorithm: Algorithm): string {
  const tag = hash('sha256', `4:edge|14:remote_address=${String(i).length}:${i}`, 'base64url').slice(0, 22);
  return counterKey('', tag, limitIdentity(algorithm, 'minute', 1));
}

function fill(backend: MemoryBackend, algorithm: Algorithm, from: number, count: number): void {
  for (let i = from; i < from + count; i++) {
    const op: CounterOp = { key: keyOf(i, algorithm), algorithm, windowMs: 60_000, threshold: 100, burst: 100, hits: 1, enforce: true };
    backend.evaluateSync([op], { chargeOnDeny: false, now: 1_700_000_000_000 });
  }
}

const now = 1_700_000_000_000;
for (const algorithm of ['fixed_window', 'sliding_window', 'token_bucket'] as const) {
  const before = heap();
  const backend = new MemoryBackend({ clock: () => now, sweepIntervalMs: 0, maxKeys: N });
  fill(backend, algorithm, 0, N);
  const after = heap();
  console.log(`${algorithm}: ${backend.size} counters, ${((after - before) / backend.size).toFixed(0)} bytes each`);
  await backend.close();
}
{
  const before = heap();
  const backend = new MemoryBackend({ clock: () => now, sweepIntervalMs: 0, maxKeys: N / 2 });
  fill(backend, 'fixed_window', 0, 2 * N);
  const after = heap();
  console.log(
    `fixed_window past a cap of ${N / 2}: ${2 * N} created, ${backend.size} kept, ${((after - before) / backend.size).toFixed(0)} bytes each`,
  );
  await backend.close();
}
