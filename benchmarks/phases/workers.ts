/**
 * WORKERS: meshlimit on standalone Redis with WORKERS=1 and WORKERS=2 (and WORKERS=1 pinned to
 * the service CPU, for context), `one-tb`, interleaved over `judgedReps` repetitions. Reported
 * only when the build declares the WORKERS setting.
 *
 * Workers need both CPUs: WORKERS=2 and the judged WORKERS=1 are not pinned (a lone worker then
 * also gets the other core for V8's GC helper threads). Every run uses `plan.workersShape`.
 */
import { SETTINGS } from '../../src/settings/index.js';
import { h2loadRun } from '../lib/measure.js';
import { machineCpuTicks, processTree } from '../lib/procs.js';
import type { WorkersResult } from '../lib/report.js';
import { median, medianInterval } from '../lib/stats.js';
import { startMeshlimit, type RedisDeployment, type Target } from '../lib/targets.js';
import { log, type Results, type RunContext } from './context.js';
import type { Plan } from './plan.js';

const NAMES = ['1', '1-pinned', '2'] as const;
type WorkersName = (typeof NAMES)[number];

/** Per kind of run: req/s and the machine's idle share per repetition, processes in the service's tree. */
export interface WorkersRuns {
  readonly rps: Record<WorkersName, number[]>;
  readonly idle: Record<WorkersName, number[]>;
  readonly processes: Record<WorkersName, number>;
  readonly errors: number[];
}

export async function measureWorkers(ctx: RunContext, results: Results): Promise<void> {
  if (ctx.plan.skip.has('workers')) return;
  if (!SETTINGS.some((s) => s.name === 'WORKERS')) {
    results.workers = { supported: false, note: 'not supported: WORKERS is not a setting of this build (src/settings.ts)' };
    log(results.workers.note);
  } else if (ctx.single === undefined) {
    results.workers = { supported: true, note: 'not measured: needs the redis target' };
  } else {
    results.workers = await runWorkers(ctx, ctx.single);
  }
}

async function runWorkers(ctx: RunContext, redis: RedisDeployment): Promise<WorkersResult> {
  const active = NAMES.filter((w) => w !== '1-pinned' || ctx.cpus.service !== undefined);
  const ts: Target[] = [];
  try {
    for (const w of active) ts.push(await startWorkersTarget(ctx, redis, w));
  } catch (e) {
    for (const t of ts) await t.stop();
    return { supported: false, note: `not supported: ${e instanceof Error ? e.message.slice(0, 300) : String(e)}` };
  }
  try {
    return summarizeWorkers(await workersReps(ctx.plan, active, ts, ctx.frames.get('one-tb') ?? [], ctx.cpus.load), ctx.plan.workersShape);
  } finally {
    for (const t of ts) await t.stop();
  }
}

function startWorkersTarget(ctx: RunContext, redis: RedisDeployment, w: WorkersName): Promise<Target> {
  const cpus = w === '1-pinned' ? ctx.cpus.service : undefined;
  const env = { WORKERS: w === '2' ? '2' : '1' };
  return startMeshlimit({
    name: `workers-${w}`,
    mode: ctx.plan.runMode,
    cpus,
    configDir: ctx.configDir,
    backend: redis,
    env,
    countsComplete: false,
  });
}

/** A warm-up of each target, then `judgedReps` timed runs of each (`ts[i]` runs `active[i]`). */
async function workersReps(
  plan: Plan,
  active: readonly WorkersName[],
  ts: readonly Target[],
  files: readonly string[],
  loadCpus: string | undefined,
): Promise<WorkersRuns> {
  const runs: WorkersRuns = {
    rps: { '1': [], '1-pinned': [], '2': [] },
    idle: { '1': [], '1-pinned': [], '2': [] },
    processes: { '1': 0, '1-pinned': 0, '2': 0 },
    errors: [],
  };
  const shape = plan.workersShape;
  for (const [i] of active.entries()) await h2loadRun(ts[i] as Target, files, shape, plan.warmRequests, loadCpus);
  for (let rep = 0; rep < plan.judgedReps; rep++) {
    // The order alternates (1, 1-pinned, 2, then 2, 1-pinned, 1, ...): this VM's speed drifts
    // by tens of percent within a minute, and a fixed order would turn the drift into a bias
    // of every ratio; alternating cancels a steady drift over each pair of repetitions.
    const order = [...active.entries()];
    if (rep % 2 === 1) order.reverse();
    for (const [i, w] of order) {
      const t = ts[i] as Target;
      const before = machineCpuTicks();
      const s = await h2loadRun(t, files, shape, Math.round(25_000 * plan.seconds), loadCpus);
      const after = machineCpuTicks();
      runs.idle[w].push((after.idle - before.idle) / Math.max(1, after.total - before.total));
      runs.processes[w] = processTree(t.pid).length;
      runs.rps[w].push(s.rps);
      runs.errors.push(s.errors);
      log(`workers=${w} rep ${rep + 1}: ${Math.round(s.rps)} req/s, machine idle ${(100 * (runs.idle[w].at(-1) as number)).toFixed(1)}%`);
    }
  }
  return runs;
}

/** The phase's result from its runs: the judged ratio is the median of the per-repetition WORKERS=2 / WORKERS=1 ratios. */
export function summarizeWorkers(runs: WorkersRuns, shape: Plan['workersShape']): WorkersResult {
  const { rps, idle, processes } = runs;
  const ratios = rps['2'].map((r, i) => r / (rps['1'][i] as number));
  const pinnedRatios = rps['2'].map((r, i) => r / (rps['1-pinned'][i] as number)).filter((x) => Number.isFinite(x));
  const pct = (xs: number[]): string => `${(100 * median(xs)).toFixed(1)}%`;
  return {
    supported: true,
    note:
      `one-tb on standalone Redis, h2load -c ${shape.clients} -m ${shape.streams}; WORKERS=1 and WORKERS=2 not pinned (both CPUs), h2load and Redis on the load CPU; ` +
      `machine idle during the runs (median): WORKERS=1 ${pct(idle['1'])}, WORKERS=2 ${pct(idle['2'])}`,
    rps1: median(rps['1']),
    rps2: median(rps['2']),
    ratio: median(ratios),
    ratios,
    ratioInterval: medianInterval(ratios),
    rps1Pinned: rps['1-pinned'].length > 0 ? median(rps['1-pinned']) : undefined,
    ratioPinned: pinnedRatios.length > 0 ? median(pinnedRatios) : undefined,
    errors: runs.errors.reduce((a, b) => a + b, 0),
    processes: [processes['1'], processes['2']],
  };
}
