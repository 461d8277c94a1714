import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryBackend } from '../../../src/backend/memory.js';
import { RedisBackend } from '../../../src/backend/redis/backend.js';
import { compileConfig } from '../../../src/config/compile.js';
import type { CompiledSnapshot } from '../../../src/config/compiled.js';
import { ConfigStore } from '../../../src/config/store.js';
import { RateLimiter, type LimiterObserver } from '../../../src/limiter/limiter.js';
import type { Backend } from '../../../src/limiter/ports.js';
import type { RateLimitCheck } from '../../../src/limiter/types.js';
import { startRedis, type RedisInstance } from '../../support/redis.js';

/**
 * Candidate limits never change an answer: the same request sequence, at the same times, gets
 * identical decisions (code, every status, remaining, reset) from a config with
 * `candidate_rate_limits` and from the same config without them, on the memory backend and on a
 * real Redis; and the candidates are counted (some would have denied).
 */
const config = (candidates: boolean) => {
  const c = (indent: string, list: string) => (candidates ? `${indent}candidate_rate_limits: ${list}\n` : '');
  return (
    'domain: edge\ndescriptors:\n' +
    '  - key: company\n' +
    '    rate_limits:\n' +
    '      - { unit: minute, requests_per_unit: 5 }\n' +
    '      - { algorithm: token_bucket, unit: second, requests_per_unit: 2, burst: 4 }\n' +
    c(
      '    ',
      '[ { unit: minute, requests_per_unit: 2 }, { name: tight, algorithm: sliding_window, unit: minute, requests_per_unit: 1 } ]',
    ) +
    '    descriptors:\n' +
    '      - key: path\n' +
    '        rate_limit: { algorithm: sliding_window, unit: minute, requests_per_unit: 3 }\n' +
    c('        ', '[ { algorithm: token_bucket, unit: second, requests_per_unit: 1, burst: 1 } ]') +
    '  - key: plan\n' +
    '    shadow_mode: true\n' +
    '    rate_limit: { unit: second, requests_per_unit: 1 }\n' +
    c('    ', '[ { unit: second, unit_multiplier: 10, requests_per_unit: 1 } ]')
  );
};

const T0 = 1_700_000_000_000;
const entry = fc.constantFrom(
  [{ key: 'company', value: 'a' }],
  [{ key: 'company', value: 'b' }],
  [
    { key: 'company', value: 'a' },
    { key: 'path', value: '/x' },
  ],
  [{ key: 'plan', value: 'p' }],
  [{ key: 'other', value: 'o' }],
);
const step = fc.record({
  descriptors: fc.array(entry, { minLength: 1, maxLength: 3 }),
  hits: fc.integer({ min: 0, max: 3 }),
  advanceMs: fc.constantFrom(0, 0, 10, 300, 1_000, 20_000),
});

function limiter(candidates: boolean, backend: Backend, clock: { now: number }, observer?: LimiterObserver): RateLimiter {
  const store = new ConfigStore<CompiledSnapshot>(compileConfig([{ path: 'edge.yaml', text: config(candidates) }]));
  return new RateLimiter(
    store,
    backend,
    { keyPrefix: candidates ? 'with:' : 'without:', shadowMode: false, chargeOnDeny: false, now: () => clock.now },
    observer,
  );
}

async function sameAnswers(make: () => Promise<[Backend, Backend]>, runs: number): Promise<number> {
  let wouldDeny = 0;
  const observer: LimiterObserver = { onStatus: () => {}, onCandidate: (_d, _r, _c, over) => void (over && wouldDeny++) };
  await fc.assert(
    fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 25 }), async (steps) => {
      const [a, b] = await make();
      const clock = { now: T0 };
      const plain = limiter(false, a, clock);
      const tried = limiter(true, b, clock, observer);
      for (const s of steps) {
        clock.now += s.advanceMs;
        const check: RateLimitCheck = { domain: 'edge', hitsAddend: s.hits, descriptors: s.descriptors.map((entries) => ({ entries })) };
        expect(await tried.decide(check)).toEqual(await plain.decide(check));
      }
    }),
    { numRuns: runs },
  );
  return wouldDeny;
}

describe('candidate limits never change the enforced answer', () => {
  let redis: RedisInstance;
  let backend: RedisBackend;
  beforeAll(async () => {
    redis = await startRedis();
    backend = new RedisBackend({ nodes: [{ host: '127.0.0.1', port: redis.port }], type: 'single' });
    await backend.waitReady();
  }, 30_000);
  afterAll(async () => {
    await backend?.close();
    await redis?.stop();
  });

  it('memory backend', async () => {
    const wouldDeny = await sameAnswers(async () => [new MemoryBackend({ clock: () => T0 }), new MemoryBackend({ clock: () => T0 })], 300);
    expect(wouldDeny).toBeGreaterThan(0);
  });

  it('real Redis (one store, the two configs under different key prefixes)', async () => {
    const wouldDeny = await sameAnswers(async () => {
      await redis.client().flushall();
      return [backend, backend];
    }, 60);
    expect(wouldDeny).toBeGreaterThan(0);
  }, 60_000);
});
