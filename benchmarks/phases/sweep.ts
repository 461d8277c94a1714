/**
 * Latency against offered load: `one-tb` at each concurrency level of the plan (c1 m1 up to
 * c16 m32), every target in turn. Each level runs `sweepReps` times (targets interleaved); a
 * point is the median of the repetitions' throughput and percentiles, so one noisy second does
 * not bend the curve.
 */
import { h2loadRun, type Sample } from '../lib/measure.js';
import { median } from '../lib/stats.js';
import type { SweepPoint } from '../lib/svg.js';
import type { Target } from '../lib/targets.js';
import { log, type Results, type RunContext } from './context.js';

export async function measureSweep(ctx: RunContext, results: Results): Promise<void> {
  const { plan } = ctx;
  const sweepFrames = ctx.frames.get('one-tb');
  if (plan.skip.has('sweep') || sweepFrames === undefined) return;
  const runs = new Map<string, Sample[]>();
  for (let rep = 0; rep < plan.sweepReps; rep++) {
    for (const [c, m] of plan.sweepLevels) {
      for (const t of ctx.targets) {
        const s = await sweepRun(ctx, results, sweepFrames, t, c, m);
        const key = `${t.name}/${c}/${m}`;
        runs.set(key, [...(runs.get(key) ?? []), s]);
        log(
          `sweep rep ${rep + 1} c${c} m${m} ${t.name}: ${Math.round(s.rps)} req/s, p50 ${s.latency?.p50} ms, p99 ${s.latency?.p99} ms, errors ${s.errors}`,
        );
      }
    }
  }
  results.sweep.push(...sweepPoints(plan.sweepLevels, ctx.targets, runs));
}

/** One run at `c` connections x `m` streams, sized to about `sweepSeconds` at the expected rate. */
function sweepRun(ctx: RunContext, results: Results, frames: readonly string[], t: Target, c: number, m: number): Promise<Sample> {
  const sat = results.rates.get(`one-tb/${t.name}`) ?? 5000;
  const guess = sat * Math.min(1, (c * m) / 32);
  const n = Math.max(1000, c, Math.round(guess * ctx.plan.sweepSeconds));
  return h2loadRun(t, frames, { clients: c, streams: m }, n, ctx.cpus.load, ctx.logDir);
}

/** One point per level and target (levels outermost): medians of its runs (`${target}/${c}/${m}`), errors summed. */
export function sweepPoints(
  levels: readonly (readonly [number, number])[],
  targets: readonly Pick<Target, 'name'>[],
  runs: ReadonlyMap<string, readonly Sample[]>,
): SweepPoint[] {
  const points: SweepPoint[] = [];
  for (const [c, m] of levels) {
    for (const t of targets) {
      const ss = runs.get(`${t.name}/${c}/${m}`) ?? [];
      points.push({
        target: t.name,
        clients: c,
        streams: m,
        rps: Math.round(median(ss.map((s) => s.rps))),
        p50: median(ss.map((s) => s.latency?.p50 ?? Number.NaN)),
        p99: median(ss.map((s) => s.latency?.p99 ?? Number.NaN)),
        errors: ss.reduce((a, s) => a + s.errors, 0),
      });
    }
  }
  return points;
}
