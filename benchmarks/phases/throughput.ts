/**
 * Throughput at saturation, interleaved: for each repetition and scenario, every target in turn
 * (echo, memory, redis, cluster, echo, ...), so the machine's noise hits the baseline and the
 * service alike. Each target's first run of a scenario is an untimed warm-up that also sizes the
 * timed runs (about `seconds` at the rate last measured).
 */
import { h2loadRun, type Sample } from '../lib/measure.js';
import type { ThroughputRow } from '../lib/report.js';
import type { Scenario } from '../lib/scenarios.js';
import { median, medianInterval, round } from '../lib/stats.js';
import type { Target } from '../lib/targets.js';
import { log, type Results, type RunContext } from './context.js';
import { repsOf } from './plan.js';

export async function measureThroughput(ctx: RunContext, results: Results): Promise<void> {
  const { plan } = ctx;
  for (let rep = 0; rep < plan.judgedReps; rep++) {
    for (const sc of plan.scenarios.filter((x) => rep < repsOf(plan, x))) {
      for (const t of ctx.targets) await measureOne(ctx, results, sc, t, rep);
    }
  }
}

/** One timed run of scenario `sc` against `t` (after its warm-up, the first time). */
async function measureOne(ctx: RunContext, results: Results, sc: Scenario, t: Target, rep: number): Promise<void> {
  const { plan, cpus } = ctx;
  const files = ctx.frames.get(sc.id) as string[];
  const key = `${sc.id}/${t.name}`;
  if (!results.rates.has(key)) {
    const warm = await h2loadRun(t, files, plan.shape, Math.ceil(plan.warmRequests / files.length), cpus.load);
    results.rates.set(key, warm.rps);
    results.warmupErrors += warm.errors;
    if (warm.errors > 0) log(`warm-up ${sc.id} ${t.name}: ${warm.errors} errors ${JSON.stringify(warm.errorsByCode)}`);
  }
  const perProcess = Math.max(2000, Math.round(((results.rates.get(key) as number) * plan.seconds) / files.length));
  const s = await h2loadRun(t, files, plan.shape, perProcess, cpus.load);
  results.rates.set(key, s.rps);
  results.samples.set(key, [...(results.samples.get(key) ?? []), s]);
  log(
    `rep ${rep + 1}/${repsOf(plan, sc)} ${sc.id} ${t.name}: ${Math.round(s.rps)} req/s, cpu wait ${(s.cpuWaitShare * 100).toFixed(1)}%${s.redisCpuWaitShare === undefined ? '' : ` (redis ${(s.redisCpuWaitShare * 100).toFixed(1)}%)`}, errors ${s.errors}${s.errors > 0 ? ` ${JSON.stringify(s.errorsByCode)}` : ''}${s.redis ? `, redis ${s.redis.usPerRequest.toFixed(2)} us/req` : ''}`,
  );
}

/**
 * One row per scenario and target from the samples (`${scenario}/${target}`, in repetition
 * order): medians over repetitions, and each target's ratio to the echo run of the same
 * repetition. Built after the phase, also when it failed part-way (from what it measured).
 */
export function throughputRows(
  scenarios: readonly Pick<Scenario, 'id' | 'descriptors'>[],
  targets: readonly Pick<Target, 'name'>[],
  samples: ReadonlyMap<string, readonly Sample[]>,
): ThroughputRow[] {
  const rows: ThroughputRow[] = [];
  for (const sc of scenarios) {
    const base = samples.get(`${sc.id}/echo`) ?? [];
    for (const t of targets) rows.push(throughputRow(sc, t.name, samples.get(`${sc.id}/${t.name}`) ?? [], base));
  }
  return rows;
}

function throughputRow(
  sc: Pick<Scenario, 'id' | 'descriptors'>,
  target: string,
  ss: readonly Sample[],
  base: readonly Sample[],
): ThroughputRow {
  const ratios = ss.map((s, i) => s.rps / ((base[i] as Sample).rps || Number.NaN));
  const redis = ss.map((s) => s.redis).filter((r) => r !== undefined);
  return {
    scenario: sc.id,
    target,
    descriptors: sc.descriptors,
    rps: median(ss.map((s) => s.rps)),
    rpsRuns: ss.map((s) => Math.round(s.rps)),
    ratioToEcho: target === 'echo' ? 1 : median(ratios),
    ...(target === 'echo' ? {} : { ratioRuns: ratios.map((x) => round(x, 3)), ratioInterval: medianInterval(ratios) }),
    okShare: median(ss.map((s) => s.okShare)),
    errors: ss.reduce((a, s) => a + s.errors, 0),
    errorsByCode: sumCodes(ss.map((s) => s.errorsByCode)),
    requests: ss.reduce((a, s) => a + s.requests, 0),
    serviceCpuUsPerRequest: median(ss.map((s) => s.serviceCpuUsPerRequest)),
    cpuWaitShare: median(ss.map((s) => s.cpuWaitShare)),
    redisCpuWaitShare: redis.length ? median(ss.map((s) => s.redisCpuWaitShare ?? Number.NaN)) : undefined,
    rssMiB: Math.max(...ss.map((s) => s.rssMiB)),
    redisUsPerRequest: redis.length ? median(redis.map((r) => r.usPerRequest)) : undefined,
    redisUsPerDescriptor: redis.length ? median(redis.map((r) => r.usPerRequest)) / sc.descriptors : undefined,
    scriptCallsPerRequest: redis.length ? median(redis.map((r) => r.scriptCallsPerRequest)) : undefined,
    command: ss[0]?.commands.join(' & ') ?? '',
  };
}

function sumCodes(list: readonly Readonly<Record<string, number>>[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of list) for (const [k, v] of Object.entries(m)) out[k] = (out[k] ?? 0) + v;
  return out;
}
