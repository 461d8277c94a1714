import { describe, expect, it } from 'vitest';
import { SplitQuotaStore, type QuotaAssignment, type QuotaReport, type QuotaStore } from '../../../src/quota/index.js';

/** A store that answers each report with tokens_per_fill = the number its rule key ends with, and records what it saw. */
function recording(): QuotaStore & { forgotten: string[]; seen: string[] } {
  const seen: string[] = [];
  const forgotten: string[] = [];
  return {
    seen,
    forgotten,
    report: (reports) => {
      seen.push(...reports.map((r) => r.ruleKey));
      return Promise.resolve(
        reports.map((r): QuotaAssignment => ({
          tokensPerFill: Number(r.ruleKey.split('-')[1]),
          fillIntervalSec: 1,
          maxTokens: 1,
          ttlSec: 2,
          ratePerSec: 1,
          denyAll: false,
        })),
      );
    },
    forget: (ruleKey, envoyId) => {
      forgotten.push(`${ruleKey}/${envoyId}`);
      return Promise.resolve();
    },
    waitReady: () => Promise.resolve(),
    close: () => Promise.resolve(),
  };
}

const report = (ruleKey: string, windowMs: number): QuotaReport => ({
  ruleKey,
  envoyId: 'e1',
  allowed: 1,
  denied: 0,
  elapsedSec: 1,
  limit: { requestsPerUnit: 10, windowMs },
});

describe('SplitQuotaStore (REDIS_PERSECOND)', () => {
  it('sends one-second windows to the per-second store, the rest to the main one, and answers in the order given', async () => {
    const main = recording();
    const perSecond = recording();
    const split = new SplitQuotaStore(main, perSecond);
    const got = await split.report([report('ps-1', 1_000), report('main-2', 60_000), report('ps-3', 1_000), report('main-4', 5_000)]);
    expect(main.seen).toEqual(['main-2', 'main-4']);
    expect(perSecond.seen).toEqual(['ps-1', 'ps-3']);
    // Each report gets its own answer back, in the order given.
    expect(got.map((a) => a.tokensPerFill)).toEqual([1, 2, 3, 4]);
  });

  it('forgets an Envoy on both stores (a rule key does not say its window)', async () => {
    const main = recording();
    const perSecond = recording();
    await new SplitQuotaStore(main, perSecond).forget('k', 'e1');
    expect([main.forgotten, perSecond.forgotten]).toEqual([['k/e1'], ['k/e1']]);
  });
});
