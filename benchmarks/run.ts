/**
 * The benchmark harness: `npm run bench` (full, writes benchmarks/results/) and
 * `npm run bench:quick` (about a minute, for CI; writes benchmarks/.work/quick/).
 *
 * One run starts every target once (echo baseline, meshlimit on memory, standalone Redis and
 * Redis Cluster), then measures them interleaved: for each repetition and scenario, every
 * target in turn, so the machine's noise hits the baseline and the service alike and the
 * ratios stay meaningful. See benchmarks/README.md for what each figure means.
 *
 * Options: --quick, --reps N, --judged-reps N (repetitions of what the acceptance ratios judge:
 * one-tb and the WORKERS phase; default 21), --seconds S, --clients C, --streams M (saturation shape, default
 * 8 x 8), --workers-clients C --workers-streams M (the WORKERS phase's shape, default 16 x 16),
 * --targets echo,memory,redis,cluster,
 * --scenarios one-tb,..., --skip latency,sweep,highcard,workers,accuracy, --ips N,
 * --out DIR, --no-build, --strict (exit 1 when any request failed).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SETTINGS } from '../src/settings/index.js';
import { calibrateRedis, pingRoundTrip, type Calibration } from './lib/calibrate.js';
import { burst, slidingPatterns, slidingVsLog, type BurstResult, type SlidingResult } from './lib/accuracy.js';
import { requestFrame } from './lib/frames.js';
import { h2loadVersion } from './lib/h2load.js';
import { h2loadRun, varyRun, type LoadShape, type Sample } from './lib/measure.js';
import { buildSnapshot, hasTaskset, machineCpuTicks, pinPid, processTree, productionNodeFlags, ROOT, type RunMode } from './lib/procs.js';
import { acceptance, markdownReport, type Report, type ThroughputRow } from './lib/report.js';
import { HIGH_CARDINALITY, SCENARIOS, type Scenario } from './lib/scenarios.js';
import { median, medianInterval, round } from './lib/stats.js';
import { latencyChart, type SweepPoint } from './lib/svg.js';
import {
  startClusterRedis,
  startEcho,
  startMeshlimit,
  startStandaloneRedis,
  StartupError,
  type RedisDeployment,
  type Target,
} from './lib/targets.js';

type TargetName = 'echo' | 'memory' | 'redis' | 'cluster';
const ALL_TARGETS: readonly TargetName[] = ['echo', 'memory', 'redis', 'cluster'];
/** The scenarios whose ratio to echo is an acceptance item: they run `judgedReps` times. */
const JUDGED_SCENARIOS: readonly string[] = ['one-tb'];
type Phase = 'latency' | 'sweep' | 'highcard' | 'workers' | 'accuracy';

interface Plan {
  readonly quick: boolean;
  readonly runMode: RunMode;
  readonly targets: readonly TargetName[];
  readonly scenarios: readonly Scenario[];
  readonly skip: ReadonlySet<Phase>;
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

function parseArgs(argv: readonly string[]): Plan {
  const get = (name: string): string | undefined => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const quick = argv.includes('--quick');
  const list = (name: string): string[] | undefined => get(name)?.split(',').map((s) => s.trim()).filter(Boolean);
  const targets = (list('targets') ?? (quick ? ['echo', 'memory', 'redis'] : [...ALL_TARGETS])) as TargetName[];
  for (const t of targets) if (!ALL_TARGETS.includes(t)) throw new Error(`unknown target ${t}; expected ${ALL_TARGETS.join(',')}`);
  if (!targets.includes('echo')) targets.unshift('echo'); // ratios need the baseline
  const ids = list('scenarios');
  const scenarios = ids === undefined ? SCENARIOS : SCENARIOS.filter((s) => ids.includes(s.id));
  const skip = new Set((list('skip') ?? []) as Phase[]);
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
      ? [[1, 1], [2, 4], [8, 8], [16, 32]]
      : [[1, 1], [1, 2], [1, 4], [2, 4], [4, 4], [4, 8], [8, 8], [8, 16], [16, 16], [16, 32]],
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

const log = (msg: string): void => {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
};

function tool(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim().split('\n')[0] ?? '' : 'unavailable';
}

/** Which CPUs the service and the load (h2load, Redis) use. */
function cpuLayout(): { service: string | undefined; load: string | undefined; note: string } {
  const n = os.cpus().length;
  const service = process.env['BENCH_SERVICE_CPUS'];
  const load = process.env['BENCH_LOAD_CPUS'];
  if (service !== undefined || load !== undefined) return { service, load, note: `from BENCH_SERVICE_CPUS=${service ?? ''} BENCH_LOAD_CPUS=${load ?? ''}` };
  if (n < 2 || !hasTaskset()) return { service: undefined, load: undefined, note: `not pinned (${n} CPU(s), taskset ${hasTaskset() ? 'present' : 'missing'})` };
  return { service: '0', load: '1', note: 'service (echo or meshlimit) on CPU 0; h2load, vary-load and every redis-server on CPU 1' };
}

/**
 * Runs `fn` with this process pinned to `cpus` (all its threads), then lets it use every CPU
 * again: a PING round trip measured from the service's CPU is the one the service pays.
 */
async function onCpus<T>(cpus: string | undefined, fn: () => Promise<T>): Promise<T> {
  pinPid(process.pid, cpus);
  try {
    return await fn();
  } finally {
    if (cpus !== undefined) pinPid(process.pid, `0-${os.cpus().length - 1}`);
  }
}

async function main(): Promise<void> {
  const plan = parseArgs(process.argv.slice(2));
  const startedAt = new Date();
  const h2load = h2loadVersion(); // throws with an install hint when missing
  const cpus = cpuLayout();
  const work = path.join(ROOT, 'benchmarks/.work');
  const framesDir = path.join(work, 'frames');
  const logDir = path.join(work, 'logs');
  mkdirSync(framesDir, { recursive: true });
  mkdirSync(logDir, { recursive: true });
  mkdirSync(plan.out, { recursive: true });

  if (plan.runMode === 'dist') {
    log('building meshlimit into benchmarks/.work/build (tsc -p tsconfig.build.json)');
    buildSnapshot();
  }

  // Frames: one file per request of each scenario.
  const frames = new Map<string, string[]>();
  for (const sc of plan.scenarios) {
    frames.set(
      sc.id,
      sc.requests.map((req, i) => {
        const file = path.join(framesDir, `${sc.id}-${i}.bin`);
        writeFileSync(file, requestFrame(req));
        return file;
      }),
    );
  }

  const stops: (() => Promise<void>)[] = [];
  const cleanup = async (): Promise<void> => {
    for (const s of stops.reverse()) await s().catch(() => undefined);
  };
  process.once('SIGINT', () => void cleanup().then(() => process.exit(130)));

  try {
    const configDir = path.join(ROOT, 'benchmarks/config/throughput');
    const targets: Target[] = [];
    const unsupported: Record<string, string> = {};
    let single: RedisDeployment | undefined;
    let cluster: RedisDeployment | undefined;
    for (const name of plan.targets) {
      log(`starting ${name}`);
      if (name === 'echo') {
        const t = await startEcho(cpus.service);
        stops.push(() => t.stop());
        targets.push(t);
        continue;
      }
      let backend: 'memory' | RedisDeployment = 'memory';
      if (name === 'redis') {
        single = await startStandaloneRedis(cpus.load);
        stops.push(() => (single as RedisDeployment).stop());
        backend = single;
      } else if (name === 'cluster') {
        cluster = await startClusterRedis(cpus.load);
        stops.push(() => (cluster as RedisDeployment).stop());
        backend = cluster;
      }
      try {
        const t = await startMeshlimit({ name, mode: plan.runMode, cpus: cpus.service, configDir, backend });
        stops.push(() => t.stop());
        targets.push(t);
      } catch (e) {
        if (!(e instanceof StartupError)) throw e;
        unsupported[name] = e.message.split('\n').slice(1).join(' ').trim().slice(0, 300);
        log(`${name}: not supported by this build: ${unsupported[name]}`);
      }
    }
    // A failing phase (a process that cannot start, a tool error) is recorded and the run goes
    // on: the other phases' figures are still written.
    const phaseErrors: Record<string, string> = {};
    const guard = async (name: string, fn: () => Promise<void>): Promise<void> => {
      try {
        await fn();
      } catch (e) {
        phaseErrors[name] = (e instanceof Error ? e.message : String(e)).slice(0, 1500);
        log(`phase ${name} failed: ${phaseErrors[name]}`);
      }
    };
    let calibration: Calibration | undefined;
    await guard('calibration', async () => {
      if (single !== undefined) {
        const dep = single;
        calibration = await onCpus(cpus.service, () => calibrateRedis(dep));
      }
    });
    if (calibration) log(`calibration: minimal TIME+GET+SET script ${calibration.minimalScriptUs.toFixed(2)} us, return 1 ${calibration.returnOneUs.toFixed(2)} us per call; PING round trip p50 ${calibration.roundTrip.p50.toFixed(3)} ms`);

    // ---- throughput at saturation, interleaved ----
    const samples = new Map<string, Sample[]>(); // `${scenario}/${target}`
    const rates = new Map<string, number>();
    let warmupErrors = 0;
    await guard('throughput', async () => {
      const repsOf = (sc: Scenario): number => (JUDGED_SCENARIOS.includes(sc.id) ? plan.judgedReps : plan.reps);
      for (let rep = 0; rep < plan.judgedReps; rep++) {
        for (const sc of plan.scenarios.filter((x) => rep < repsOf(x))) {
          const files = frames.get(sc.id) as string[];
          for (const t of targets) {
            const key = `${sc.id}/${t.name}`;
            if (!rates.has(key)) {
              const warm = await h2loadRun(t, files, plan.shape, Math.ceil(plan.warmRequests / files.length), cpus.load);
              rates.set(key, warm.rps);
              warmupErrors += warm.errors;
              if (warm.errors > 0) log(`warm-up ${sc.id} ${t.name}: ${warm.errors} errors ${JSON.stringify(warm.errorsByCode)}`);
            }
            const perProcess = Math.max(2000, Math.round(((rates.get(key) as number) * plan.seconds) / files.length));
            const s = await h2loadRun(t, files, plan.shape, perProcess, cpus.load);
            rates.set(key, s.rps);
            samples.set(key, [...(samples.get(key) ?? []), s]);
            log(
              `rep ${rep + 1}/${repsOf(sc)} ${sc.id} ${t.name}: ${Math.round(s.rps)} req/s, cpu wait ${(s.cpuWaitShare * 100).toFixed(1)}%${s.redisCpuWaitShare === undefined ? '' : ` (redis ${(s.redisCpuWaitShare * 100).toFixed(1)}%)`}, errors ${s.errors}${s.errors > 0 ? ` ${JSON.stringify(s.errorsByCode)}` : ''}${s.redis ? `, redis ${s.redis.usPerRequest.toFixed(2)} us/req` : ''}`,
            );
          }
        }
      }
    });

    const throughput: ThroughputRow[] = [];
    for (const sc of plan.scenarios) {
      const base = samples.get(`${sc.id}/echo`) ?? [];
      for (const t of targets) {
        const ss = samples.get(`${sc.id}/${t.name}`) ?? [];
        const ratios = ss.map((s, i) => s.rps / ((base[i] as Sample).rps || Number.NaN));
        const redis = ss.map((s) => s.redis).filter((r) => r !== undefined);
        throughput.push({
          scenario: sc.id,
          target: t.name,
          descriptors: sc.descriptors,
          rps: median(ss.map((s) => s.rps)),
          rpsRuns: ss.map((s) => Math.round(s.rps)),
          ratioToEcho: t.name === 'echo' ? 1 : median(ratios),
          ...(t.name === 'echo' ? {} : { ratioRuns: ratios.map((x) => round(x, 3)), ratioInterval: medianInterval(ratios) }),
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
        });
      }
    }

    // ---- latency one request at a time ----
    const latency: Report['latency'] = [];
    await guard('latency', async () => {
      if (!plan.skip.has('latency')) {
        // One h2load -c1 -m1 run of scenario `id` against `t`, recorded as a latency row.
        const measure = async (id: string, t: Target, redisOnServiceCpu: boolean): Promise<void> => {
          const files = frames.get(id);
          if (files === undefined) return;
          const s = await h2loadRun(t, files.slice(0, 1), { clients: 1, streams: 1 }, plan.latencyRequests, cpus.load, logDir);
          const l = s.latency;
          if (l === undefined) return;
          latency.push({ scenario: id, target: t.name, ...(redisOnServiceCpu ? { redisOnServiceCpu } : {}), ...l, errors: s.errors, errorsByCode: s.errorsByCode, redisUsPerRequest: s.redis?.usPerRequest, command: s.commands[0] ?? '' });
          log(`latency ${id} ${t.name}${redisOnServiceCpu ? ' (Redis on the service CPU)' : ''}: p50 ${l.p50} ms, p99 ${l.p99} ms, p99.9 ${l.p999} ms`);
        };
        for (const id of plan.latencyScenarios) {
          for (const t of targets) await measure(id, t, false);
        }
        // The second layout: standalone Redis moved to the service's CPU. One request at a time,
        // every hop between the two CPUs wakes an idle vCPU (tens of microseconds here): with
        // Redis beside h2load a request crosses CPUs four times, the echo server's twice. Beside
        // the service, Redis costs what it costs, not two more wake-ups (see README).
        const redisTarget = targets.find((t) => t.name === 'redis');
        if (single !== undefined && redisTarget !== undefined && cpus.service !== undefined && cpus.load !== undefined && cpus.service !== cpus.load) {
          const dep = single;
          for (const pid of dep.pids) pinPid(pid, cpus.service);
          try {
            for (const id of plan.latencyScenarios) await measure(id, redisTarget, true);
            if (calibration !== undefined) calibration.roundTripRedisOnServiceCpu = await onCpus(cpus.service, () => pingRoundTrip(dep.primaryPorts[0] as number));
          } finally {
            for (const pid of dep.pids) pinPid(pid, cpus.load);
          }
        }
      }
    });

    // ---- sweep: latency against offered load (concurrency) ----
    const sweep: SweepPoint[] = [];
    const sweepFrames = frames.get('one-tb');
    await guard('sweep', async () => {
      if (!plan.skip.has('sweep') && sweepFrames !== undefined) {
        // Each level is run sweepReps times (targets interleaved); a point is the median of the
        // repetitions' throughput and percentiles, so one noisy second does not bend the curve.
        const runs = new Map<string, Sample[]>();
        for (let rep = 0; rep < plan.sweepReps; rep++) {
          for (const [c, m] of plan.sweepLevels) {
            for (const t of targets) {
              const sat = rates.get(`one-tb/${t.name}`) ?? 5000;
              const guess = sat * Math.min(1, (c * m) / 32);
              const n = Math.max(1000, c, Math.round(guess * plan.sweepSeconds));
              const s = await h2loadRun(t, sweepFrames, { clients: c, streams: m }, n, cpus.load, logDir);
              const key = `${t.name}/${c}/${m}`;
              runs.set(key, [...(runs.get(key) ?? []), s]);
              log(`sweep rep ${rep + 1} c${c} m${m} ${t.name}: ${Math.round(s.rps)} req/s, p50 ${s.latency?.p50} ms, p99 ${s.latency?.p99} ms, errors ${s.errors}`);
            }
          }
        }
        for (const [c, m] of plan.sweepLevels) {
          for (const t of targets) {
            const ss = runs.get(`${t.name}/${c}/${m}`) ?? [];
            sweep.push({
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
      }
    });

    // ---- high cardinality ----
    const highcard: Report['highCardinality'] = [];
    await guard('highcard', async () => {
      if (!plan.skip.has('highcard')) {
        for (const t of targets) {
          const requests = t.name === 'echo' ? Math.min(plan.ips, 200_000) : plan.ips;
          const s = await varyRun(t, { connections: plan.shape.clients, streams: plan.shape.streams, requests, start: 0 }, cpus.load);
          highcard.push({
            target: t.name,
            distinctIps: requests,
            rps: s.rps,
            errors: s.errors,
            errorsByCode: s.errorsByCode,
            rssMiB: s.rssMiB,
            redisMemoryMiB: t.redisMemoryMiB ? await t.redisMemoryMiB() : undefined,
            redisUsPerRequest: s.redis?.usPerRequest,
            latency: s.latency,
            command: s.commands[0] ?? '',
          });
          log(`highcard ${t.name}: ${requests} IPs, ${Math.round(s.rps)} req/s, errors ${s.errors}, rss ${s.rssMiB} MiB`);
        }
        const e = highcard.find((h) => h.target === 'echo');
        for (const h of highcard) h.ratioToEcho = e ? h.rps / e.rps : undefined;
      }
    });

    // ---- WORKERS ----
    let workers: Report['workers'] = { supported: false, note: 'skipped' };
    await guard('workers', async () => {
      if (!plan.skip.has('workers')) {
        const declared = SETTINGS.some((s) => s.name === 'WORKERS');
        if (!declared) {
          workers = { supported: false, note: 'not supported: WORKERS is not a setting of this build (src/settings.ts)' };
          log(workers.note);
        } else if (single === undefined) {
          workers = { supported: true, note: 'not measured: needs the redis target' };
        } else {
          workers = await measureWorkers(plan, single, configDir, frames.get('one-tb') ?? [], cpus.load, cpus.service);
        }
      }
    });

    // ---- accuracy ----
    const bursts: BurstResult[] = [];
    const sliding: SlidingResult[] = [];
    await guard('accuracy', async () => {
      if (!plan.skip.has('accuracy')) {
        const accDir = path.join(ROOT, 'benchmarks/config/accuracy');
        for (const dep of [single, cluster]) {
          if (dep === undefined) continue;
          const name = dep.kind === 'single' ? 'redis' : 'cluster';
          if (unsupported[name] !== undefined) continue;
          const services: Target[] = [];
          for (let i = 0; i < plan.accuracyProcesses; i++) {
            // Not pinned: four processes share both CPUs. A long command timeout, so that a starved
            // process times out no request (a timed-out script may still have charged).
            const t = await startMeshlimit({
              name: `${name}-acc-${i}`,
              mode: plan.runMode,
              cpus: undefined,
              configDir: accDir,
              backend: dep,
              env: { REDIS_COMMAND_TIMEOUT_MS: '2000' },
            });
            stops.push(() => t.stop());
            services.push(t);
          }
          for (const algorithm of ['fixed_window', 'token_bucket', 'sliding_window'] as const) {
            const r = await burst(name, services, algorithm, plan.accuracyBurst, framesDir, undefined);
            bursts.push(r);
            log(`accuracy ${name} ${algorithm}: admitted ${r.admitted} of limit ${r.limit} (sent ${r.sent}, errors ${r.errors})`);
          }
          if (plan.slidingLog && dep.kind === 'single') {
            for (const p of slidingPatterns()) {
              const r = await slidingVsLog(services[0] as Target, p);
              sliding.push(r);
              log(`sliding ${p.id}: admitted ${r.admitted}, exact log ${r.exactLogAdmitted}, max in any window ${r.maxInAnyWindow}`);
            }
          }
          for (const s of services) await s.stop();
        }
      }
    });

    const report: Report = {
      meta: {
        startedAt: startedAt.toISOString(),
        finishedAt: new Date().toISOString(),
        mode: plan.quick ? 'quick' : 'full',
        meshlimit:
          plan.runMode === 'dist'
            ? `node ${productionNodeFlags().join(' ')} benchmarks/.work/build/dist/main.js (the flags of npm start; tsc -p tsconfig.build.json, a private build)`
            : `node ${productionNodeFlags().join(' ')} --import tsx src/main.ts`,
        node: process.version,
        h2load,
        redis: tool('redis-server', ['--version']),
        cpu: `${os.cpus()[0]?.model ?? 'unknown'} x ${os.cpus().length}`,
        memoryGiB: Math.round(os.totalmem() / 2 ** 30),
        kernel: os.release(),
        pinning: `${cpus.note}${[single, cluster].some((d) => d !== undefined) ? `; redis-server ${[single, cluster].every((d) => d === undefined || d.realtime) ? 'under SCHED_FIFO (chrt -f 50), so INFO commandstats counts no preemption' : 'at normal priority (chrt not permitted): INFO commandstats includes preemptions'}` : ''}`,
        reps: plan.reps,
        judgedReps: plan.judgedReps,
        secondsPerRun: plan.seconds,
        load: `h2load -c ${plan.shape.clients} -m ${plan.shape.streams} -t 1 (one process per request shape, connections split between them), count mode (-n)`,
        shape: plan.shape,
        sweepReps: plan.sweepReps,
        unsupported,
        command: `npx tsx benchmarks/run.ts ${process.argv.slice(2).join(' ')}`.trim(),
      },
      scenarios: [...plan.scenarios.map((s) => ({ id: s.id, title: s.title, about: s.about, descriptors: s.descriptors })), { ...HIGH_CARDINALITY }],
      throughput,
      latency,
      sweep,
      warmupErrors,
      calibration,
      phaseErrors,
      highCardinality: highcard,
      workers,
      accuracy: { bursts, sliding },
      acceptance: [],
    };
    report.acceptance = acceptance(report);
    writeFileSync(path.join(plan.out, 'results.json'), `${JSON.stringify(report, null, 2)}\n`);
    const md = markdownReport(report);
    writeFileSync(path.join(plan.out, 'results.md'), md);
    if (sweep.length > 0) {
      writeFileSync(
        path.join(plan.out, 'latency-vs-load.svg'),
        latencyChart(sweep, 'meshlimit: latency against offered load (one descriptor, token bucket)', `${report.meta.cpu}; ${report.meta.startedAt.slice(0, 10)}; concurrency swept from c1 m1 to c${plan.sweepLevels.at(-1)?.[0]} m${plan.sweepLevels.at(-1)?.[1]}`),
      );
    }
    if (!plan.quick && plan.out === path.join(ROOT, 'benchmarks/results')) updateReadme(md);
    process.stdout.write(`${md}\n`);
    log(`results in ${path.relative(ROOT, plan.out) || '.'}/`);
    // Performance figures never fail the command (the machine may be noisy); with --strict, a
    // run with errors does.
    const failedErrors = report.acceptance.find((a) => a.id === 'errors');
    if (plan.strict && failedErrors?.status === 'FAIL') process.exitCode = 1;
  } finally {
    await cleanup();
  }
}

const README_START = '<!-- results:start -->';
const README_END = '<!-- results:end -->';

/** Puts the latest full run's tables into benchmarks/README.md, between the result markers. */
function updateReadme(md: string): void {
  const file = path.join(ROOT, 'benchmarks/README.md');
  const text = readFileSync(file, 'utf8');
  const i = text.indexOf(README_START);
  const j = text.indexOf(README_END);
  if (i < 0 || j < i) {
    log(`README not updated: markers ${README_START} / ${README_END} not found`);
    return;
  }
  const body = md.replace(/^## /m, '### ').replace(/^### (?!Results)/gm, '#### ');
  writeFileSync(file, `${text.slice(0, i + README_START.length)}\n${body}\n![latency against offered load](results/latency-vs-load.svg)\n${text.slice(j)}`);
}

function sumCodes(list: readonly Readonly<Record<string, number>>[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of list) for (const [k, v] of Object.entries(m)) out[k] = (out[k] ?? 0) + v;
  return out;
}

async function measureWorkers(plan: Plan, redis: RedisDeployment, configDir: string, files: string[], loadCpus: string | undefined, serviceCpus: string | undefined): Promise<Report['workers']> {
  // Workers need both CPUs: WORKERS=2 and the judged WORKERS=1 are not pinned (a lone worker then
  // also gets the other core for V8's GC helper threads). WORKERS=1 pinned to the service CPU
  // (one worker, one core) is measured too, for context. Every run uses plan.workersShape.
  const names = ['1', '1-pinned', '2'] as const;
  type Name = (typeof names)[number];
  const runs: Record<Name, number[]> = { '1': [], '1-pinned': [], '2': [] };
  const idle: Record<Name, number[]> = { '1': [], '1-pinned': [], '2': [] };
  const processes: Record<Name, number> = { '1': 0, '1-pinned': 0, '2': 0 };
  const errors: number[] = [];
  const ts: Target[] = [];
  try {
    for (const w of names) {
      const cpus = w === '1-pinned' ? serviceCpus : undefined;
      if (w === '1-pinned' && cpus === undefined) continue;
      ts.push(await startMeshlimit({ name: `workers-${w}`, mode: plan.runMode, cpus, configDir, backend: redis, env: { WORKERS: w === '2' ? '2' : '1' }, countsComplete: false }));
    }
  } catch (e) {
    for (const t of ts) await t.stop();
    return { supported: false, note: `not supported: ${e instanceof Error ? e.message.slice(0, 300) : String(e)}` };
  }
  const active = names.filter((w) => w !== '1-pinned' || serviceCpus !== undefined);
  const shape = plan.workersShape;
  try {
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
        idle[w].push((after.idle - before.idle) / Math.max(1, after.total - before.total));
        processes[w] = processTree(t.pid).length;
        runs[w].push(s.rps);
        errors.push(s.errors);
        log(`workers=${w} rep ${rep + 1}: ${Math.round(s.rps)} req/s, machine idle ${(100 * (idle[w].at(-1) as number)).toFixed(1)}%`);
      }
    }
  } finally {
    for (const t of ts) await t.stop();
  }
  const ratios = runs['2'].map((r, i) => r / (runs['1'][i] as number));
  const pinnedRatios = runs['2'].map((r, i) => r / (runs['1-pinned'][i] as number)).filter((x) => Number.isFinite(x));
  const pct = (xs: number[]): string => `${(100 * median(xs)).toFixed(1)}%`;
  return {
    supported: true,
    note:
      `one-tb on standalone Redis, h2load -c ${shape.clients} -m ${shape.streams}; WORKERS=1 and WORKERS=2 not pinned (both CPUs), h2load and Redis on the load CPU; ` +
      `machine idle during the runs (median): WORKERS=1 ${pct(idle['1'])}, WORKERS=2 ${pct(idle['2'])}`,
    rps1: median(runs['1']),
    rps2: median(runs['2']),
    ratio: median(ratios),
    ratios,
    ratioInterval: medianInterval(ratios),
    rps1Pinned: runs['1-pinned'].length > 0 ? median(runs['1-pinned']) : undefined,
    ratioPinned: pinnedRatios.length > 0 ? median(pinnedRatios) : undefined,
    errors: errors.reduce((a, b) => a + b, 0),
    processes: [processes['1'], processes['2']],
  };
}

main().catch((e: unknown) => {
  process.stderr.write(`bench: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(2);
});
