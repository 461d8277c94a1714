/**
 * What one run measures: the command line parsed once into a typed, read-only plan. Every
 * phase reads its knobs from here; nothing re-reads `process.argv`.
 */
import path from 'node:path';
import { ROOT, type RunMode } from '../lib/procs.js';
import { SCENARIOS, type Scenario } from '../lib/scenarios.js';
import type { LoadShape } from '../lib/measure.js';

export type TargetName = 'echo' | 'memory' | 'redis' | 'cluster';
export const ALL_TARGETS: readonly TargetName[] = ['echo', 'memory', 'redis', 'cluster'];
/** The scenarios whose ratio to echo is an acceptance item: they run `judgedReps` times. */
export const JUDGED_SCENARIOS: readonly string[] = ['one-tb'];
/** The phases `--skip` can leave out. */
export type SkippablePhase = 'latency' | 'sweep' | 'highcard' | 'workers' | 'accuracy' | 'tls';

export interface Plan {
  readonly quick: boolean;
  readonly runMode: RunMode;
  readonly targets: readonly TargetName[];
  readonly scenarios: readonly Scenario[];
  readonly skip: ReadonlySet<SkippablePhase>;
  readonly reps: number;
  /**
   * Repetitions of what the acceptance ratios are judged on (`one-tb` against echo, and the
   * WORKERS phase), at least `reps`: one 3-second run on this VM moves by +-30%, so a median of
   * 5-9 paired ratios still has a 95% interval about 0.2 wide; 21 narrow it to about half that.
   * The extra repetitions of `one-tb` run after the others, still interleaved across targets.
   */
  readonly judgedReps: number;
  readonly seconds: number;
  readonly warmRequests: number;
  readonly shape: LoadShape;
  /**
   * The WORKERS phase's load: two workers need more requests in flight than one to be kept busy
   * (at 8 x 8 both CPUs sat 10-19% idle during WORKERS=2 runs: the load, not the service, set the
   * pace), so both WORKERS=1 and WORKERS=2 are driven at 16 x 16, and the machine's idle share
   * during the runs is reported to show they were saturated.
   */
  readonly workersShape: LoadShape;
  readonly latencyRequests: number;
  readonly latencyScenarios: readonly string[];
  readonly sweepLevels: readonly (readonly [number, number])[];
  readonly sweepSeconds: number;
  readonly sweepReps: number;
  readonly ips: number;
  readonly accuracyProcesses: number;
  readonly accuracyBurst: number;
  readonly slidingLog: boolean;
  readonly out: string;
  readonly strict: boolean;
}

/** The plan for `argv` (the arguments after `run.ts`); throws on an unknown target or a bad number. */
export function parseArgs(argv: readonly string[]): Plan {
  const get = (name: string): string | undefined => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const quick = argv.includes('--quick');
  const list = (name: string): string[] | undefined =>
    get(name)
      ?.split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  const targets = (list('targets') ?? (quick ? ['echo', 'memory', 'redis'] : [...ALL_TARGETS])) as TargetName[];
  for (const t of targets) if (!ALL_TARGETS.includes(t)) throw new Error(`unknown target ${t}; expected ${ALL_TARGETS.join(',')}`);
  if (!targets.includes('echo')) targets.unshift('echo'); // ratios need the baseline
  const ids = list('scenarios');
  const scenarios = ids === undefined ? SCENARIOS : SCENARIOS.filter((s) => ids.includes(s.id));
  const skip = new Set((list('skip') ?? []) as SkippablePhase[]);
  const num = (name: string, dflt: number): number => {
    const v = get(name);
    const n = v === undefined ? dflt : Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number`);
    return n;
  };
  const reps = num('reps', quick ? 1 : 5);
  return {
    quick,
    runMode: argv.includes('--no-build') || quick ? 'tsx' : 'dist',
    targets,
    scenarios,
    skip,
    reps,
    judgedReps: Math.max(reps, num('judged-reps', quick ? 1 : 21)),
    seconds: num('seconds', quick ? 1.2 : 3),
    warmRequests: quick ? 2000 : 8000,
    shape: { clients: num('clients', 8), streams: num('streams', 8) },
    workersShape: { clients: num('workers-clients', 16), streams: num('workers-streams', 16) },
    latencyRequests: quick ? 3000 : 10_000,
    latencyScenarios: quick ? ['one-tb'] : ['one-tb', 'one-fw', 'one-sw', 'four', 'hot'],
    sweepLevels: quick
      ? [
          [1, 1],
          [2, 4],
          [8, 8],
          [16, 32],
        ]
      : [
          [1, 1],
          [1, 2],
          [1, 4],
          [2, 4],
          [4, 4],
          [4, 8],
          [8, 8],
          [8, 16],
          [16, 16],
          [16, 32],
        ],
    sweepSeconds: quick ? 0.8 : 2,
    sweepReps: quick ? 1 : 3,
    ips: num('ips', quick ? 20_000 : 1_000_000),
    accuracyProcesses: 4,
    accuracyBurst: quick ? 8000 : 20_000,
    slidingLog: !quick,
    strict: argv.includes('--strict'),
    out: path.resolve(get('out') ?? path.join(ROOT, quick ? 'benchmarks/.work/quick' : 'benchmarks/results')),
  };
}

/** Repetitions of scenario `sc`: `judgedReps` for a judged scenario, else `reps`. */
export function repsOf(plan: Pick<Plan, 'reps' | 'judgedReps'>, sc: Pick<Scenario, 'id'>): number {
  return JUDGED_SCENARIOS.includes(sc.id) ? plan.judgedReps : plan.reps;
}
