/**
 * The last phase: the results document (results.json), its Markdown (results.md, also printed),
 * the latency-vs-load chart, and, after a full run into benchmarks/results/, the tables in
 * benchmarks/README.md between the result markers.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { productionNodeFlags, ROOT } from '../lib/procs.js';
import { acceptance, markdownReport, type Report } from '../lib/report.js';
import { HIGH_CARDINALITY } from '../lib/scenarios.js';
import { latencyChart } from '../lib/svg.js';
import { log, type Results, type RunContext } from './context.js';
import type { Plan } from './plan.js';

/** What the report says about the run itself, beyond the context. */
export interface RunInfo {
  readonly startedAt: Date;
  /** `h2load --version`'s first line. */
  readonly h2load: string;
  /** The arguments after run.ts, as given. */
  readonly argv: readonly string[];
}

function tool(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return r.status === 0 ? (r.stdout.trim().split('\n')[0] ?? '') : 'unavailable';
}

export function buildReport(ctx: RunContext, results: Results, run: RunInfo): Report {
  const { plan } = ctx;
  const report: Report = {
    meta: {
      startedAt: run.startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      mode: plan.quick ? 'quick' : 'full',
      meshlimit:
        plan.runMode === 'dist'
          ? `node ${productionNodeFlags().join(' ')} benchmarks/.work/build/dist/main.js (the flags of npm start; tsc -p tsconfig.build.json, a private build)`
          : `node ${productionNodeFlags().join(' ')} --import tsx src/main.ts`,
      node: process.version,
      h2load: run.h2load,
      redis: tool('redis-server', ['--version']),
      cpu: `${os.cpus()[0]?.model ?? 'unknown'} x ${os.cpus().length}`,
      memoryGiB: Math.round(os.totalmem() / 2 ** 30),
      kernel: os.release(),
      pinning: pinningNote(ctx),
      reps: plan.reps,
      judgedReps: plan.judgedReps,
      secondsPerRun: plan.seconds,
      load: `h2load -c ${plan.shape.clients} -m ${plan.shape.streams} -t 1 (one process per request shape, connections split between them), count mode (-n)`,
      shape: plan.shape,
      sweepReps: plan.sweepReps,
      unsupported: { ...ctx.unsupported },
      command: `npx tsx benchmarks/run.ts ${run.argv.join(' ')}`.trim(),
    },
    scenarios: [
      ...plan.scenarios.map((s) => ({ id: s.id, title: s.title, about: s.about, descriptors: s.descriptors })),
      { ...HIGH_CARDINALITY },
    ],
    throughput: results.throughput,
    latency: results.latency,
    sweep: results.sweep,
    warmupErrors: results.warmupErrors,
    calibration: results.calibration,
    phaseErrors: results.phaseErrors,
    highCardinality: results.highCardinality,
    workers: results.workers,
    tls: results.tls,
    accuracy: { bursts: results.bursts, sliding: results.sliding },
    acceptance: [],
  };
  report.acceptance = acceptance(report);
  return report;
}

/** The CPU layout, and whether the redis-servers run under SCHED_FIFO (when there are any). */
function pinningNote(ctx: RunContext): string {
  const deps = [ctx.single, ctx.cluster];
  if (!deps.some((d) => d !== undefined)) return ctx.cpus.note;
  const realtime = deps.every((d) => d === undefined || d.realtime);
  return `${ctx.cpus.note}; redis-server ${realtime ? 'under SCHED_FIFO (chrt -f 50), so INFO commandstats counts no preemption' : 'at normal priority (chrt not permitted): INFO commandstats includes preemptions'}`;
}

/** Writes results.json, results.md and (with a sweep) latency-vs-load.svg into `plan.out`; returns the Markdown. */
export function writeResults(plan: Plan, report: Report): string {
  writeFileSync(path.join(plan.out, 'results.json'), `${JSON.stringify(report, null, 2)}\n`);
  const md = markdownReport(report);
  writeFileSync(path.join(plan.out, 'results.md'), md);
  if (report.sweep.length > 0) {
    const last = plan.sweepLevels.at(-1);
    writeFileSync(
      path.join(plan.out, 'latency-vs-load.svg'),
      latencyChart(
        report.sweep,
        'meshlimit: latency against offered load (one descriptor, token bucket)',
        `${report.meta.cpu}; ${report.meta.startedAt.slice(0, 10)}; concurrency swept from c1 m1 to c${last?.[0]} m${last?.[1]}`,
      ),
    );
  }
  if (!plan.quick && plan.out === path.join(ROOT, 'benchmarks/results')) updateReadme(md);
  return md;
}

export const README_START = '<!-- results:start -->';
export const README_END = '<!-- results:end -->';

/**
 * `text` with the run's tables (`md`, headings moved one level down) and the chart between the
 * result markers; undefined when the markers are missing or out of order.
 */
export function readmeWithResults(text: string, md: string): string | undefined {
  const i = text.indexOf(README_START);
  const j = text.indexOf(README_END);
  if (i < 0 || j < i) return undefined;
  const body = md.replace(/^## /m, '### ').replace(/^### (?!Results)/gm, '#### ');
  return `${text.slice(0, i + README_START.length)}\n${body}\n![latency against offered load](results/latency-vs-load.svg)\n${text.slice(j)}`;
}

/** Puts the latest full run's tables into benchmarks/README.md, between the result markers. */
function updateReadme(md: string): void {
  const file = path.join(ROOT, 'benchmarks/README.md');
  const updated = readmeWithResults(readFileSync(file, 'utf8'), md);
  if (updated === undefined) log(`README not updated: markers ${README_START} / ${README_END} not found`);
  else writeFileSync(file, updated);
}
