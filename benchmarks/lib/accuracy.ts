/**
 * Accuracy: does a limit hold when several meshlimit processes share one Redis?
 *
 * 1. Burst: N service processes, one descriptor with a limit of 1000, far more requests than
 *    that sent at once through all of them (one h2load per process, in parallel). Admitted
 *    requests are the sum of the processes' `meshlimit_requests_total{outcome="ok"}` deltas.
 *    Fixed window and token bucket must admit exactly the limit; the sliding window is reported
 *    too (on a fresh key it must also be exact).
 * 2. Sliding window against an exact sliding log, for documented arrival patterns: requests are
 *    sent at planned wall-clock times, and the same arrival times are replayed through an exact
 *    sliding log (admit when fewer than L admitted requests lie in (t - window, t]).
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { createRlsClient } from '../../src/client/rls-client.js';
import { requestFrame } from './frames.js';
import { runH2load } from './h2load.js';
import { sleep } from './procs.js';
import type { Counts, Target } from './targets.js';

export const ACCURACY_DOMAIN = 'accuracy';
export const BURST_LIMIT = 1000;

export interface BurstResult {
  readonly backend: string;
  readonly algorithm: 'fixed_window' | 'token_bucket' | 'sliding_window';
  readonly processes: number;
  readonly limit: number;
  readonly sent: number;
  readonly admitted: number;
  readonly denied: number;
  readonly errors: number;
  /** admitted === limit and errors === 0 */
  readonly exact: boolean;
  readonly seconds: number;
  readonly commands: readonly string[];
}

const KEYS = { fixed_window: 'fw', token_bucket: 'tb', sliding_window: 'sw' } as const;

/** Waits while fewer than `marginMs` remain before the next UTC midnight (the day window's edge). */
async function awayFromDayBoundary(marginMs: number): Promise<void> {
  const toMidnight = 86_400_000 - (Date.now() % 86_400_000);
  if (toMidnight < marginMs) await sleep(toMidnight + 1000);
}

export async function burst(
  backend: string,
  services: readonly Target[],
  algorithm: BurstResult['algorithm'],
  sent: number,
  workDir: string,
  cpus: string | undefined,
): Promise<BurstResult> {
  const value = `${backend}-${algorithm}-${Date.now()}-${process.pid}`;
  const file = path.join(workDir, `accuracy-${KEYS[algorithm]}.bin`);
  writeFileSync(file, requestFrame({ domain: ACCURACY_DOMAIN, descriptors: [{ entries: [{ key: KEYS[algorithm], value }] }] }));
  await awayFromDayBoundary(120_000);
  const before = await Promise.all(services.map((s) => s.counts()));
  const per = Math.ceil(sent / services.length);
  const t0 = Date.now();
  const runs = await Promise.all(
    services.map((s) => runH2load({ port: s.grpcPort, dataFile: file, clients: 4, streams: 8, requests: per, cpus })),
  );
  const seconds = (Date.now() - t0) / 1000;
  const after = await Promise.all(services.map((s) => s.counts()));
  let admitted = 0;
  let denied = 0;
  let errors = 0;
  services.forEach((_, i) => {
    const a = after[i] as Counts;
    const b = before[i] as Counts;
    admitted += a.ok - b.ok;
    denied += a.overLimit - b.overLimit;
    errors += a.errors - b.errors;
  });
  const total = per * services.length;
  errors += Math.max(0, total - admitted - denied - errors);
  errors += runs.reduce((s, r) => s + r.failed + r.errored + r.timeout + (r.requests - r.status2xx), 0);
  return {
    backend,
    algorithm,
    processes: services.length,
    limit: BURST_LIMIT,
    sent: total,
    admitted,
    denied,
    errors,
    exact: admitted === BURST_LIMIT && errors === 0,
    seconds,
    commands: runs.map((r) => r.command),
  };
}

/** Arrival pattern: offsets (ms) from an aligned window start at which requests are sent. */
export interface Pattern {
  readonly id: string;
  readonly about: string;
  /** Send times in ms relative to the start (the start is a whole second). */
  readonly offsetsMs: readonly number[];
}

export const SLIDING_LIMIT = 50;
export const SLIDING_WINDOW_MS = 1000;

/** The documented patterns (limit 50 per 1-second sliding window). */
export function slidingPatterns(): Pattern[] {
  const steady: number[] = [];
  // 100 per second (twice the limit), evenly spaced, for 6 seconds, starting 0.37 s into a second.
  for (let i = 0; i < 600; i++) steady.push(370 + i * 10);
  const adversarial: number[] = [];
  // Every 2 s: a burst of 100 at 0.95 of a window, then a burst of 100 at the middle of the next.
  for (let cycle = 0; cycle < 3; cycle++) {
    for (let i = 0; i < 100; i++) adversarial.push(cycle * 2000 + 950);
    for (let i = 0; i < 100; i++) adversarial.push(cycle * 2000 + 1500);
  }
  return [
    {
      id: 'steady-2x',
      about: '100 requests/s evenly spaced (twice the limit of 50/s) for 6 s, starting 370 ms into a second',
      offsetsMs: steady,
    },
    {
      id: 'edge-bursts',
      about:
        'for 6 s, every 2 s: a burst of 100 requests at 950 ms into a window, then 100 more at 500 ms into the next (the case the weighted estimate gets most wrong)',
      offsetsMs: adversarial,
    },
  ];
}

export interface SlidingResult {
  readonly pattern: string;
  readonly about: string;
  readonly limit: number;
  readonly windowMs: number;
  readonly sent: number;
  readonly admitted: number;
  readonly exactLogAdmitted: number;
  /** (admitted - exact) / exact */
  readonly relativeError: number;
  /** Most admitted requests meshlimit let through in any window-long span (exact log: <= limit). */
  readonly maxInAnyWindow: number;
  readonly errors: number;
}

/** Admitted count of an exact sliding log over ascending times `ts` (ms). */
export function exactSlidingLog(ts: readonly number[], limit: number, windowMs: number): number {
  const admitted: number[] = [];
  let head = 0;
  for (const t of ts) {
    while (head < admitted.length && (admitted[head] as number) <= t - windowMs) head++;
    if (admitted.length - head < limit) admitted.push(t);
  }
  return admitted.length;
}

/** Largest number of times in `ts` (ascending) within any half-open span of `windowMs`. */
export function maxInWindow(ts: readonly number[], windowMs: number): number {
  let best = 0;
  let lo = 0;
  for (let hi = 0; hi < ts.length; hi++) {
    while ((ts[hi] as number) - (ts[lo] as number) >= windowMs) lo++;
    best = Math.max(best, hi - lo + 1);
  }
  return best;
}

export async function slidingVsLog(service: Target, pattern: Pattern): Promise<SlidingResult> {
  const client = createRlsClient(`127.0.0.1:${service.grpcPort}`);
  try {
    const value = `${pattern.id}-${Date.now()}-${process.pid}`;
    const req = { domain: ACCURACY_DOMAIN, descriptors: [{ entries: [{ key: 'swlog', value }] }] };
    await client.shouldRateLimit({ domain: ACCURACY_DOMAIN, descriptors: [{ entries: [{ key: 'swlog', value: `${value}-warm` }] }] });
    // Start at the next whole second plus one, so offsets are phases of aligned windows.
    const start = (Math.floor(Date.now() / 1000) + 2) * 1000;
    const sentAt: number[] = [];
    const results: Promise<{ t: number; ok: boolean | undefined }>[] = [];
    for (const off of pattern.offsetsMs) {
      const due = start + off;
      const wait = due - Date.now();
      if (wait > 1) await sleep(wait - 1);
      while (Date.now() < due) {
        // spin the last millisecond for an exact send time
      }
      const t = Date.now();
      sentAt.push(t);
      results.push(
        client.shouldRateLimit(req).then(
          (r) => ({ t, ok: r.overallCode === 'OK' }),
          () => ({ t, ok: undefined }),
        ),
      );
    }
    const answers = await Promise.all(results);
    const admittedTimes = answers.filter((a) => a.ok === true).map((a) => a.t);
    const errors = answers.filter((a) => a.ok === undefined).length;
    const exact = exactSlidingLog(sentAt, SLIDING_LIMIT, SLIDING_WINDOW_MS);
    return {
      pattern: pattern.id,
      about: pattern.about,
      limit: SLIDING_LIMIT,
      windowMs: SLIDING_WINDOW_MS,
      sent: sentAt.length,
      admitted: admittedTimes.length,
      exactLogAdmitted: exact,
      relativeError: (admittedTimes.length - exact) / exact,
      maxInAnyWindow: maxInWindow(admittedTimes, SLIDING_WINDOW_MS),
      errors,
    };
  } finally {
    client.close();
  }
}
