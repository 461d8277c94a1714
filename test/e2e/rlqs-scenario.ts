/**
 * The RLQS acceptance scenario shared by test/e2e/rlqs*.test.ts and benchmarks/rlqs.ts: N
 * simulated Envoys (test/support/rlqs-envoy.ts) send skewed demand into one bucket of one global
 * fixed-window limit, through real meshlimit processes; admissions are counted per limit window
 * (aligned to the Unix epoch, as the server's fixed windows) and the Envoys' assigned rates are
 * sampled on demand.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { overshootBound, TTL_INTERVALS } from '../../src/quota/index.js';
import { SimEnvoy } from '../support/rlqs-envoy.js';

export const DOMAIN = 'rlqs';
export const BUCKET = { api: 'orders' } as const;
/** The global limit: LIMIT requests per WINDOW_SEC seconds (100/s). */
export const LIMIT = 500;
export const WINDOW_SEC = 5;
export const REPORTING_INTERVAL_SEC = 1;
export const ENVOYS = 5;
/** Busy and idle demand, requests/s: one Envoy at 10x the others; together above the limit's 100/s. */
export const BUSY = 80;
export const IDLE = 8;

/** What the documented bound allows beyond LIMIT in one window (src/quota/allocate.ts). */
export const OVERSHOOT = overshootBound({
  requestsPerUnit: LIMIT,
  windowSec: WINDOW_SEC,
  envoys: ENVOYS,
  reportingIntervalSec: REPORTING_INTERVAL_SEC,
  ttlSec: TTL_INTERVALS * REPORTING_INTERVAL_SEC,
});

/** A config directory with the scenario's one rule (`api: orders`, fixed window). */
export function scenarioConfigDir(limit = LIMIT, windowSec = WINDOW_SEC): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'meshlimit-rlqs-'));
  writeFileSync(
    path.join(dir, 'rlqs.yaml'),
    `domain: ${DOMAIN}\ndescriptors:\n  - key: api\n    value: orders\n    rate_limit: { unit: second, unit_multiplier: ${windowSec}, requests_per_unit: ${limit}, algorithm: fixed_window }\n`,
  );
  return dir;
}

/** The meshlimit settings the scenario runs with (reassignment at the reporting interval). */
export const SCENARIO_ENV = { RLQS_REASSIGN_INTERVAL_MS: String(REPORTING_INTERVAL_SEC * 1000) } as const;

export class Fleet {
  readonly envoys: SimEnvoy[];
  /** Requests/s each Envoy sends (change it to shift demand). */
  readonly demand: number[];
  /** Admitted requests per window start (Unix ms). */
  readonly admitted = new Map<number, number>();
  readonly startedAt = Date.now();
  stoppedAt = 0;
  requests = 0;
  private readonly acc: number[];
  private readonly timer: NodeJS.Timeout;
  private last = performance.now();

  /** `addresses(i)`: the RLQS servers Envoy i tries, in order. */
  constructor(
    addresses: (i: number) => readonly string[],
    demand: readonly number[],
    idPrefix = 'envoy',
    private readonly windowSec = WINDOW_SEC,
  ) {
    this.demand = [...demand];
    this.acc = demand.map(() => 0);
    this.envoys = demand.map((_, i) =>
      new SimEnvoy({
        addresses: addresses(i),
        domain: DOMAIN,
        envoyId: `${idPrefix}-${i}`,
        reportingIntervalSec: REPORTING_INTERVAL_SEC,
        noAssignment: 'deny_all',
      }).start(),
    );
    this.timer = setInterval(() => this.tick(), 10);
  }

  /** The Envoys' assigned rates (requests/s) now. */
  rates(): number[] {
    return this.envoys.map((e) => e.assignedRate(BUCKET));
  }

  stop(): void {
    clearInterval(this.timer);
    this.stoppedAt = Date.now();
    for (const e of this.envoys) e.close();
  }

  /** Admitted per window that lies wholly inside the run, oldest first. */
  fullWindows(): { start: number; admitted: number }[] {
    const ms = this.windowSec * 1000;
    const end = this.stoppedAt || Date.now();
    return [...this.admitted]
      .filter(([start]) => start >= this.startedAt && start + ms <= end)
      .sort(([a], [b]) => a - b)
      .map(([start, admitted]) => ({ start, admitted }));
  }

  get totalAdmitted(): number {
    let n = 0;
    for (const e of this.envoys) n += e.counts(BUCKET).admitted;
    return n;
  }

  private tick(): void {
    const now = performance.now();
    const dt = (now - this.last) / 1000;
    this.last = now;
    const window = Math.floor(Date.now() / (this.windowSec * 1000)) * this.windowSec * 1000;
    for (let i = 0; i < this.envoys.length; i++) {
      this.acc[i]! += this.demand[i]! * dt;
      while (this.acc[i]! >= 1) {
        this.acc[i]! -= 1;
        this.requests++;
        if (this.envoys[i]!.request(BUCKET)) this.admitted.set(window, (this.admitted.get(window) ?? 0) + 1);
      }
    }
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface ShiftResult {
  readonly before: number[];
  readonly after: number[];
  readonly windows: { start: number; admitted: number }[];
}

/**
 * Envoy 0 busy for `settleMs`, then Envoy 1 busy and Envoy 0 idle; the rates are sampled just
 * before the shift and two reporting intervals (plus 300 ms for the round trip) after it; the run
 * goes on to `totalMs`. Prints what it measured.
 */
export async function runShift(
  label: string,
  addresses: (i: number) => readonly string[],
  settleMs = 9000,
  totalMs = 22_000,
): Promise<ShiftResult> {
  const demand = Array.from({ length: ENVOYS }, (_, i) => (i === 0 ? BUSY : IDLE));
  const fleet = new Fleet(addresses, demand, label);
  try {
    await sleep(settleMs);
    const before = fleet.rates();
    fleet.demand[0] = IDLE;
    fleet.demand[1] = BUSY;
    await sleep(2 * REPORTING_INTERVAL_SEC * 1000 + 300);
    const after = fleet.rates();
    await sleep(Math.max(0, totalMs - (Date.now() - fleet.startedAt)));
    fleet.stop();
    const windows = fleet.fullWindows();
    const fmt = (r: number[]): string => r.map((x) => x.toFixed(1)).join(' ');
    console.log(
      `[rlqs ${label}] limit ${LIMIT}/${WINDOW_SEC}s, bound +${OVERSHOOT.toFixed(1)}; admitted per full window: ${windows.map((w) => w.admitted).join(', ')}; ` +
        `rates before shift [${fmt(before)}], 2 intervals after [${fmt(after)}]`,
    );
    return { before, after, windows };
  } finally {
    fleet.stop();
  }
}
