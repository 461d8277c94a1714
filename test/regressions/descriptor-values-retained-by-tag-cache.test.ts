import type { ServiceError } from '@grpc/grpc-js';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import type { RlsClient } from '../../src/client/rls-client.js';
import { bootService, type BootedService } from '../support/service.js';

/**
 * What broke: descriptor values stayed in memory after their request. The tag cache
 * (src/limiter/keys.ts) kept every distinct value string as a key of its trie, bounded by count
 * (2 x 16,384 descriptors), not bytes: 1,500 requests with distinct 1 MB values took a service
 * from 89 to 1,576 MB of RSS, never given back. Now a value over MAX_DESCRIPTOR_VALUE_BYTES
 * (64 KiB by default) is refused before anything reads it, a descriptor longer than 512
 * characters is never cached, and the cache has a byte budget (at most 16 MiB of heap).
 *
 * Measured in this process (the service booted in it, memory backend, a rule that matches any
 * value), after full GCs, against the budgets the README states:
 * - 20,000 distinct values just under the longest cacheable descriptor (512 characters), which
 *   the cache does keep, enough to rotate its generations: heap within the tag cache's 16 MiB
 *   budget plus 8 MiB;
 * - 33,000 distinct values just under the maximum size, enough to fill the tag cache's 2 x 16,384
 *   slots (here the maximum is set to 8 KiB, which keeps the traffic at 270 MB; the default
 *   64 KiB behaves the same, the cache keeping none of them): heap within 8 MiB;
 * - 2,000 requests with distinct 512 KB values: all refused (INVALID_ARGUMENT naming the field);
 *   heap within 8 MiB of its start, RSS within 128 MiB (RSS also holds what the allocators keep
 *   once the garbage of 1 GB of messages is freed: +29 to +59 MiB in our runs).
 * Counters are capped by MEMORY_MAX_KEYS=1000, whose memory (about 450 KB) is not what is tested.
 */
const CONFIG = 'domain: mem\ndescriptors:\n  - key: k\n    rate_limit: { unit: minute, requests_per_unit: 10 }\n';
const MiB = 1024 * 1024;
const IN_FLIGHT = 16;

/** A full-GC function in this process (vitest does not start workers with --expose-gc). */
const gc = ((): (() => void) => {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
})();

function memory(): { heap: number; rss: number } {
  for (let i = 0; i < 4; i++) gc();
  const m = process.memoryUsage();
  return { heap: m.heapUsed, rss: m.rss };
}

/**
 * Sends `count` descriptors `[(k, value(i))]`, `perRequest` to a request, IN_FLIGHT requests at a
 * time; returns how many requests ended with each gRPC code.
 */
async function send(client: RlsClient, count: number, value: (i: number) => string, perRequest = 1): Promise<Map<number, number>> {
  const codes = new Map<number, number>();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const first = next;
      next = Math.min(count, next + perRequest);
      const descriptors = Array.from({ length: next - first }, (_, j) => ({ entries: [{ key: 'k', value: value(first + j) }] }));
      let code = 0;
      try {
        await client.shouldRateLimit({ domain: 'mem', descriptors }, { deadlineMs: 30_000 });
      } catch (err) {
        code = (err as ServiceError).code;
      }
      codes.set(code, (codes.get(code) ?? 0) + 1);
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  return codes;
}

let svc: BootedService | undefined;
afterEach(async () => {
  await svc?.close();
  svc = undefined;
});

const mb = (n: number): string => `${(n / MiB).toFixed(1)} MiB`;
const report = (start: { heap: number; rss: number }, end: { heap: number; rss: number }): string =>
  `heap ${mb(start.heap)} -> ${mb(end.heap)}, RSS ${mb(start.rss)} -> ${mb(end.rss)}`;

// The tag cache is one per process, so the order matters to a cache that keeps values: each
// test's values would replace the previous test's in it (shortest first). Each measures its own change.
describe('descriptor values are not retained', () => {
  it(
    '20,000 distinct values just under the longest cacheable descriptor stay within the tag cache budget',
    { timeout: 120_000 },
    async () => {
      svc = await bootService({ files: { 'mem.yaml': CONFIG }, env: { MEMORY_MAX_KEYS: '1000' } });
      const body = 'c'.repeat(512 - 'mem'.length - 'k'.length - 9);
      await send(svc.client, 1_100, (i) => `w${String(i).padStart(8, '0')}${body}`, 8);
      const start = memory();
      const codes = await send(svc.client, 20_000, (i) => `${String(i).padStart(9, '0')}${body}`, 8);
      const end = memory();
      expect(end.heap - start.heap, report(start, end)).toBeLessThan(16 * MiB + 8 * MiB);
      expect(Object.fromEntries(codes)).toEqual({ 0: 20_000 / 8 });
    },
  );

  it('33,000 distinct values just under the maximum size keep nothing', { timeout: 120_000 }, async () => {
    const max = 8192;
    svc = await bootService({ files: { 'mem.yaml': CONFIG }, env: { MEMORY_MAX_KEYS: '1000', MAX_DESCRIPTOR_VALUE_BYTES: String(max) } });
    const body = 'v'.repeat(max - 9);
    await send(svc.client, 1_100, (i) => `w${String(i).padStart(8, '0')}${body}`, 8); // warm-up, and the counters' cap reached
    const start = memory();
    const codes = await send(svc.client, 33_000, (i) => `${String(i).padStart(9, '0')}${body}`, 8);
    const end = memory();
    expect(end.heap - start.heap, report(start, end)).toBeLessThan(8 * MiB);
    expect(Object.fromEntries(codes)).toEqual({ 0: 33_000 / 8 }); // every request admitted: a new counter per descriptor
  });

  it('2,000 distinct 512 KB values are refused and leave heap and RSS where they were', { timeout: 120_000 }, async () => {
    svc = await bootService({ files: { 'mem.yaml': CONFIG }, env: { MEMORY_MAX_KEYS: '1000' } });
    const big = 'x'.repeat(512 * 1024 - 8);
    await send(svc.client, 50, (i) => `w${String(i).padStart(7, '0')}${big}`); // warm-up: connections, code paths
    const start = memory();
    const codes = await send(svc.client, 2_000, (i) => `${String(i).padStart(8, '0')}${big}`);
    const end = memory();
    expect(end.heap - start.heap, report(start, end)).toBeLessThan(8 * MiB);
    expect(end.rss - start.rss, report(start, end)).toBeLessThan(128 * MiB);
    expect(Object.fromEntries(codes)).toEqual({ 3: 2_000 }); // INVALID_ARGUMENT
    await expect(
      svc.client.shouldRateLimit({ domain: 'mem', descriptors: [{ entries: [{ key: 'k', value: big }] }] }),
    ).rejects.toMatchObject({ code: 3, details: `descriptors[0].entries[0].value is ${big.length} bytes; at most 65536` });
  });
});
