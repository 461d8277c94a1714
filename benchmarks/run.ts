/**
 * The benchmark harness: `npm run bench` (full, writes benchmarks/results/) and
 * `npm run bench:quick` (about a minute, for CI; writes benchmarks/.work/quick/).
 *
 * One run starts every target once (echo baseline, meshlimit on memory, standalone Redis and
 * Redis Cluster), then measures them interleaved: for each repetition and scenario, every
 * target in turn, so the machine's noise hits the baseline and the service alike and the
 * ratios stay meaningful. See benchmarks/README.md for what each figure means.
 *
 * This file parses the arguments and runs the phases in order; each phase is a module of
 * benchmarks/phases/, sharing the run's context and filling in its part of the results.
 *
 * Options: --quick, --reps N, --judged-reps N (repetitions of what the acceptance ratios judge:
 * one-tb and the WORKERS phase; default 21), --seconds S, --clients C, --streams M (saturation shape, default
 * 8 x 8), --workers-clients C --workers-streams M (the WORKERS phase's shape, default 16 x 16),
 * --targets echo,memory,redis,cluster,
 * --scenarios one-tb,..., --skip latency,sweep,highcard,workers,tls,accuracy, --ips N,
 * --out DIR, --no-build, --strict (exit 1 when any request failed).
 */
import path from 'node:path';
import { h2loadVersion } from './lib/h2load.js';
import { ROOT } from './lib/procs.js';
import { measureAccuracy } from './phases/accuracy.js';
import { logCalibration, measureCalibration } from './phases/calibration.js';
import { emptyResults, guard, log, Teardowns, type Results, type RunContext } from './phases/context.js';
import { measureHighCardinality } from './phases/highcard.js';
import { measureLatency } from './phases/latency.js';
import { parseArgs } from './phases/plan.js';
import { buildReport, writeResults } from './phases/results.js';
import { prepare, startTargets } from './phases/setup.js';
import { measureSweep } from './phases/sweep.js';
import { measureThroughput, throughputRows } from './phases/throughput.js';
import { measureTls } from './phases/tls.js';
import { measureWorkers } from './phases/workers.js';

/** The measuring phases after throughput, in order; each is guarded (a failure is recorded, the run goes on). */
const LATER_PHASES: readonly (readonly [string, (ctx: RunContext, results: Results) => Promise<void>])[] = [
  ['latency', measureLatency],
  ['sweep', measureSweep],
  ['highcard', measureHighCardinality],
  ['workers', measureWorkers],
  ['tls', measureTls],
  ['accuracy', measureAccuracy],
];

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const plan = parseArgs(argv);
  const startedAt = new Date();
  const h2load = h2loadVersion(); // throws with an install hint when missing
  const prepared = prepare(plan);
  const teardowns = new Teardowns();
  process.once('SIGINT', () => void teardowns.run().then(() => process.exit(130)));

  try {
    const ctx: RunContext = { ...prepared, ...(await startTargets(prepared, teardowns)), teardowns };
    const results = emptyResults();
    await guard(results, 'calibration', () => measureCalibration(ctx, results));
    logCalibration(results);
    await guard(results, 'throughput', () => measureThroughput(ctx, results));
    // Rows from whatever the throughput phase measured, also when it failed part-way.
    results.throughput = throughputRows(plan.scenarios, ctx.targets, results.samples);
    for (const [name, phase] of LATER_PHASES) await guard(results, name, () => phase(ctx, results));

    const report = buildReport(ctx, results, { startedAt, h2load, argv });
    const md = writeResults(plan, report);
    process.stdout.write(`${md}\n`);
    log(`results in ${path.relative(ROOT, plan.out) || '.'}/`);
    // Performance figures never fail the command (the machine may be noisy); with --strict, a
    // run with errors does.
    const failedErrors = report.acceptance.find((a) => a.id === 'errors');
    if (plan.strict && failedErrors?.status === 'FAIL') process.exitCode = 1;
  } finally {
    await teardowns.run();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(2);
});
