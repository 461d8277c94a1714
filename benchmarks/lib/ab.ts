/**
 * The interleaved end-to-end A/B both A/B scripts run (benchmarks/ab-builds.ts: two builds;
 * benchmarks/codec/ab.ts: two codecs in one build): each build started alone on the service CPU
 * in turn, in the order A B, B A, A B, ..., under the same h2load load, warmed up first. Reported:
 * the median of the per-pair ratios (A / B requests per second) with its 95% interval, and service
 * CPU per request. With `latencyRequests`, the load is one request at a time (h2load -c1 -m1, as
 * the benchmark's latency table) and the ratios are of p50 and p99 (A / B: below 1 is faster).
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { cpuLayout } from '../phases/context.js';
import { requestFrame } from './frames.js';
import { h2loadRun, type Sample } from './measure.js';
import { ROOT } from './procs.js';
import type { Scenario } from './scenarios.js';
import { median, medianInterval, round } from './stats.js';
import { startMeshlimit, startStandaloneRedis, type Target } from './targets.js';

export interface AbSide {
  /** The key this side has in the summary (`tree`, `base`, `hand`, `protoLoader`). */
  readonly name: string;
  /** A build directory as buildSnapshot makes it (dist/, lua/, proto/, package.json). */
  readonly buildDir: string;
}

export interface AbOptions {
  readonly a: AbSide;
  readonly b: AbSide;
  readonly scenario: Scenario;
  readonly backend: 'memory' | 'redis';
  readonly reps: number;
  readonly secondsPerRun: number;
  /** Where the request frames are written. */
  readonly workDir: string;
  /** One request at a time, this many per run, and latency ratios instead of throughput. */
  readonly latencyRequests?: number | undefined;
  /** On each line of progress, after the rep number. */
  readonly progress: (rep: number, reps: number, line: string) => void;
}

/** Runs the A/B and returns its summary (JSON-ready). */
export async function runAb(o: AbOptions): Promise<Record<string, unknown>> {
  const cpus = cpuLayout();
  const frames = o.scenario.requests.map((req, i) => {
    const file = path.join(o.workDir, `${o.scenario.id}-${i}.bin`);
    writeFileSync(file, requestFrame(req));
    return file;
  });
  const redis = o.backend === 'redis' ? await startStandaloneRedis(cpus.load) : undefined;
  const configDir = path.join(ROOT, 'benchmarks/config/throughput');
  const latency = o.latencyRequests;
  const shape = latency === undefined ? { clients: 8, streams: 8 } : { clients: 1, streams: 1 };
  const run = async (side: AbSide, rate: number): Promise<Sample> => {
    const t: Target = await startMeshlimit({
      name: side.name,
      mode: 'dist',
      buildDir: side.buildDir,
      cpus: cpus.service,
      configDir,
      backend: redis ?? 'memory',
    });
    try {
      if (latency !== undefined) {
        await h2loadRun(t, frames.slice(0, 1), shape, 5_000, cpus.load); // warm-up
        return await h2loadRun(t, frames.slice(0, 1), shape, latency, cpus.load, o.workDir);
      }
      await h2loadRun(t, frames, shape, 20_000, cpus.load); // warm-up
      return await h2loadRun(t, frames, shape, Math.max(5_000, Math.round((rate * o.secondsPerRun) / frames.length)), cpus.load);
    } finally {
      await t.stop();
    }
  };
  const pairs: { a: Sample; b: Sample }[] = [];
  let rate = 20_000;
  try {
    for (let rep = 0; rep < o.reps; rep++) {
      const order = rep % 2 === 0 ? (['a', 'b'] as const) : (['b', 'a'] as const);
      const got: Partial<Record<'a' | 'b', Sample>> = {};
      for (const which of order) got[which] = await run(o[which], rate);
      const p = got as { a: Sample; b: Sample };
      pairs.push(p);
      rate = p.a.rps;
      const side = (s: AbSide, x: Sample): string =>
        latency === undefined
          ? `${s.name} ${Math.round(x.rps)} req/s (${x.serviceCpuUsPerRequest.toFixed(1)} us cpu)`
          : `${s.name} p50 ${x.latency?.p50} ms p99 ${x.latency?.p99} ms`;
      const ratio = latency === undefined ? p.a.rps / p.b.rps : p.a.latency!.p50 / p.b.latency!.p50;
      o.progress(rep + 1, o.reps, `${side(o.a, p.a)}, ${side(o.b, p.b)}, ratio ${ratio.toFixed(3)}, errors ${p.a.errors + p.b.errors}`);
    }
  } finally {
    await redis?.stop();
  }
  const errors = pairs.reduce((acc, p) => acc + p.a.errors + p.b.errors, 0);
  const common = {
    when: new Date().toISOString(),
    node: process.version,
    scenario: o.scenario.id,
    backend: o.backend,
    reps: o.reps,
    cpus: cpus.note,
  };
  /** Per side, the median of `f` over the repetitions (rounded to `digits`, or to an integer). */
  const both = (f: (s: Sample) => number, digits: number | undefined): Record<string, number> => {
    const m = (side: 'a' | 'b'): number => median(pairs.map((p) => f(p[side])));
    return {
      [o.a.name]: digits === undefined ? Math.round(m('a')) : round(m('a'), digits),
      [o.b.name]: digits === undefined ? Math.round(m('b')) : round(m('b'), digits),
    };
  };
  /** The median of per-pair ratios with its 95% interval (and each pair's, with `runs`). */
  const summary = (r: number[], runs = true) => ({
    median: round(median(r), 3),
    interval95: medianInterval(r),
    ...(runs ? { runs: r.map((x) => round(x, 3)) } : {}),
  });
  if (latency !== undefined) {
    const of = (q: 'p50' | 'p99') => ({
      ratio: summary(pairs.map((p) => p.a.latency![q] / p.b.latency![q])),
      ms: both((s) => s.latency![q], 3),
    });
    return { ...common, requestsPerRun: latency, load: 'h2load -c1 -m1', p50: of('p50'), p99: of('p99'), errors };
  }
  return {
    ...common,
    secondsPerRun: o.secondsPerRun,
    load: `h2load -c${shape.clients} -m${shape.streams}`,
    throughputRatio: summary(pairs.map((p) => p.a.rps / p.b.rps)),
    cpuPerRequestRatio: summary(
      pairs.map((p) => p.b.serviceCpuUsPerRequest / p.a.serviceCpuUsPerRequest),
      false,
    ),
    rps: both((s) => s.rps, undefined),
    serviceCpuUsPerRequest: both((s) => s.serviceCpuUsPerRequest, 2),
    errors,
  };
}
