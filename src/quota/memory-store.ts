import { QuotaEnvoysError } from '../errors.js';
import type { Backend } from '../limiter/ports.js';
import type { CounterOp } from '../limiter/types.js';
import type { EnvoyQuotaState } from './allocate.js';
import { assign, checkReport, type CheckedReport, type CounterAfterCharge } from './report.js';
import { MAX_ENVOYS_PER_RULE, type QuotaAssignment, type QuotaReport, type QuotaStore } from './types.js';

export interface MemoryQuotaStoreOptions {
  /**
   * The counter store RLS uses (the memory backend, unwrapped): reported allowed requests are
   * charged to the rule's counter through it and its count bounds the shares, so RLS and RLQS
   * share one budget in this process.
   */
  readonly backend: Backend;
  /** Wall clock in Unix ms (default Date.now); a call's `nowMs` wins. */
  readonly clock?: () => number;
  /** Most rule counters held (default 65,536); a report for a new one beyond it is refused. */
  readonly maxRules?: number;
  /** Most Envoys per rule counter (default MAX_ENVOYS_PER_RULE; tests lower it). */
  readonly maxEnvoysPerRule?: number;
}

/**
 * Quota division in this process: the reference store (runs src/quota/report.ts as it stands)
 * and the store of BACKEND_TYPE=memory. State is per process: a restart loses the Envoys'
 * demands (they come back with the next reports), and replicas do not see each other's Envoys.
 */
export class MemoryQuotaStore implements QuotaStore {
  private readonly rules = new Map<string, Map<string, EnvoyQuotaState>>();
  private readonly clock: () => number;
  private readonly maxRules: number;
  private readonly maxEnvoys: number;

  constructor(private readonly options: MemoryQuotaStoreOptions) {
    this.clock = options.clock ?? Date.now;
    this.maxRules = options.maxRules ?? 65_536;
    this.maxEnvoys = options.maxEnvoysPerRule ?? MAX_ENVOYS_PER_RULE;
  }

  async report(reports: readonly QuotaReport[], nowMs?: number): Promise<QuotaAssignment[]> {
    const checked = reports.map(checkReport);
    const out: QuotaAssignment[] = [];
    for (const r of checked) out.push(await this.one(r, nowMs ?? this.clock()));
    return out;
  }

  private async one(r: CheckedReport, now: number): Promise<QuotaAssignment> {
    // Charged first, whatever follows: the Envoy admitted these requests already.
    const counter = await this.charge(r, now);
    const envoys = this.envoysOf(r.ruleKey, now);
    dropSilent(envoys, now);
    if (!envoys.has(r.envoyId) && envoys.size >= this.maxEnvoys) {
      throw new QuotaEnvoysError(
        `RLQS: rule counter ${r.ruleKey} is already divided among ${envoys.size} Envoys (the most, MAX_ENVOYS_PER_RULE); Envoy ${r.envoyId} gets no share until one is silent for 4 reporting intervals or forgotten`,
      );
    }
    const { state, assignment } = assign(r, envoys, counter, now);
    envoys.set(r.envoyId, state);
    return assignment;
  }

  /** Charges the report's allowed requests to the rule's fixed-window counter, as RLS would count them. */
  private async charge(r: CheckedReport, now: number): Promise<CounterAfterCharge> {
    const op: CounterOp = {
      key: r.ruleKey,
      algorithm: 'fixed_window',
      windowMs: r.limit.windowMs,
      threshold: r.limit.requestsPerUnit,
      burst: r.limit.requestsPerUnit,
      hits: r.allowed,
      enforce: true,
    };
    // chargeOnDeny: the requests were admitted already, so they are counted even past the limit.
    const result = await this.options.backend.evaluate([op], { chargeOnDeny: true, now });
    const outcome = result.outcomes[0]!;
    return { remaining: outcome.overLimit ? 0 : outcome.remaining, resetMs: outcome.resetMs };
  }

  private envoysOf(ruleKey: string, now: number): Map<string, EnvoyQuotaState> {
    let envoys = this.rules.get(ruleKey);
    if (envoys !== undefined) return envoys;
    if (this.rules.size >= this.maxRules) {
      for (const [key, held] of this.rules) if (dropSilent(held, now) === 0) this.rules.delete(key);
      if (this.rules.size >= this.maxRules) {
        throw new QuotaEnvoysError(
          `RLQS: the memory quota store already holds ${this.rules.size} rule counters (the most); ${ruleKey} is refused`,
        );
      }
    }
    this.rules.set(ruleKey, (envoys = new Map()));
    return envoys;
  }

  async forget(ruleKey: string, envoyId: string, nowMs?: number): Promise<void> {
    const envoys = this.rules.get(ruleKey);
    const e = envoys?.get(envoyId);
    if (envoys === undefined || e === undefined) return;
    const now = nowMs ?? this.clock();
    // It may enforce its last assignment until that expires: keep counting it as held until then.
    if (e.heldUntilMs > now) envoys.set(envoyId, { ...e, demand: 0, reclaimAtMs: e.heldUntilMs });
    else envoys.delete(envoyId);
    if (envoys.size === 0) this.rules.delete(ruleKey);
    return Promise.resolve();
  }

  waitReady(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.rules.clear();
    return Promise.resolve();
  }
}

/** Deletes the Envoys whose reclaim time has come; returns how many are left. */
function dropSilent(envoys: Map<string, EnvoyQuotaState>, now: number): number {
  for (const [id, e] of envoys) if (e.reclaimAtMs <= now) envoys.delete(id);
  return envoys.size;
}
