import { isPerSecondWindow } from '../backend/per-second.js';
import type { QuotaAssignment, QuotaReport, QuotaStore } from './types.js';

/**
 * REDIS_PERSECOND for RLQS: the quota state of a per-second limit (isPerSecondWindow, as
 * src/backend/per-second.ts routes RLS counters) lives in the per-second Redis beside
 * that limit's RLS counter, every other in the main Redis, so RLQS and RLS still share one budget
 * per rule. A report's reports go to their stores in parallel and come back in the order given.
 */
export class SplitQuotaStore implements QuotaStore {
  constructor(
    private readonly main: QuotaStore,
    private readonly perSecond: QuotaStore,
  ) {}

  async report(reports: readonly QuotaReport[], nowMs?: number): Promise<QuotaAssignment[]> {
    const toPerSecond = reports.map((r) => isPerSecondWindow(r.limit.windowMs));
    const [main, perSecond] = await Promise.all([
      this.main.report(
        reports.filter((_, i) => !toPerSecond[i]),
        nowMs,
      ),
      this.perSecond.report(
        reports.filter((_, i) => toPerSecond[i]),
        nowMs,
      ),
    ]);
    let m = 0;
    let p = 0;
    return toPerSecond.map((ps) => (ps ? perSecond[p++]! : main[m++]!));
  }

  /** The rule key does not say its window: forget on both (forgetting an Envoy a store does not hold changes nothing). */
  async forget(ruleKey: string, envoyId: string, nowMs?: number): Promise<void> {
    await Promise.all([this.main.forget(ruleKey, envoyId, nowMs), this.perSecond.forget(ruleKey, envoyId, nowMs)]);
  }

  async waitReady(timeoutMs?: number): Promise<void> {
    await Promise.all([this.main.waitReady(timeoutMs), this.perSecond.waitReady(timeoutMs)]);
  }

  async close(): Promise<void> {
    await Promise.all([this.main.close(), this.perSecond.close()]);
  }
}
