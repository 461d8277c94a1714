/**
 * Tests of the phases' pure parts (benchmarks/phases/): the command line, which scenarios a
 * repetition runs, the rows built from samples, the WORKERS summary, the README splice. The
 * phases that drive processes are checked end to end by `npm run bench:quick`.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Sample } from '../lib/measure.js';
import { ROOT } from '../lib/procs.js';
import type { HighCardRow } from '../lib/report.js';
import { SCENARIOS } from '../lib/scenarios.js';
import { setRatiosToEcho } from '../phases/highcard.js';
import { parseArgs, repsOf } from '../phases/plan.js';
import { README_END, README_START, readmeWithResults } from '../phases/results.js';
import { sweepPoints } from '../phases/sweep.js';
import { throughputRows } from '../phases/throughput.js';
import { summarizeWorkers, type WorkersRuns } from '../phases/workers.js';

const sample = (rps: number, more: Partial<Sample> = {}): Sample => ({
  target: 't',
  requests: 1000,
  seconds: 1,
  rps,
  okShare: 1,
  errors: 0,
  errorsByCode: {},
  serviceCpuUsPerRequest: 40,
  cpuWaitShare: 0.1,
  redisCpuWaitShare: undefined,
  rssMiB: 200,
  commands: ['h2load a'],
  ...more,
});

describe('the command line', () => {
  it('gives a full run its defaults', () => {
    const p = parseArgs([]);
    expect(p).toMatchObject({
      quick: false,
      runMode: 'dist',
      reps: 5,
      judgedReps: 21,
      seconds: 3,
      warmRequests: 8000,
      ips: 1_000_000,
      sweepReps: 3,
      slidingLog: true,
      strict: false,
    });
    expect(p.targets).toEqual(['echo', 'memory', 'redis', 'cluster']);
    expect(p.scenarios.map((s) => s.id)).toEqual(SCENARIOS.map((s) => s.id));
    expect(p.shape).toEqual({ clients: 8, streams: 8 });
    expect(p.workersShape).toEqual({ clients: 16, streams: 16 });
    expect(p.latencyScenarios).toEqual(['one-tb', 'one-fw', 'one-sw', 'four', 'hot']);
    expect(p.sweepLevels).toHaveLength(10);
    expect(p.out).toBe(path.join(ROOT, 'benchmarks/results'));
  });

  it('gives a quick run its defaults: tsx, one repetition, no cluster, out in .work/quick', () => {
    const p = parseArgs(['--quick']);
    expect(p).toMatchObject({
      quick: true,
      runMode: 'tsx',
      reps: 1,
      judgedReps: 1,
      seconds: 1.2,
      warmRequests: 2000,
      ips: 20_000,
      accuracyBurst: 8000,
      slidingLog: false,
    });
    expect(p.targets).toEqual(['echo', 'memory', 'redis']);
    expect(p.latencyScenarios).toEqual(['one-tb']);
    expect(p.sweepLevels).toEqual([
      [1, 1],
      [2, 4],
      [8, 8],
      [16, 32],
    ]);
    expect(p.out).toBe(path.join(ROOT, 'benchmarks/.work/quick'));
  });

  it('reads every option, puts echo first when missing, and never judges on fewer repetitions than --reps', () => {
    const p = parseArgs([
      '--targets',
      'redis, memory',
      '--scenarios',
      'four,hot',
      '--skip',
      'sweep,workers',
      '--reps',
      '7',
      '--judged-reps',
      '3',
      '--seconds',
      '2.5',
      '--clients',
      '4',
      '--streams',
      '2',
      '--workers-clients',
      '8',
      '--workers-streams',
      '4',
      '--ips',
      '500',
      '--out',
      'tmp/x',
      '--no-build',
      '--strict',
    ]);
    expect(p.targets).toEqual(['echo', 'redis', 'memory']);
    expect(p.scenarios.map((s) => s.id)).toEqual(['four', 'hot']);
    expect([...p.skip]).toEqual(['sweep', 'workers']);
    expect(p).toMatchObject({ reps: 7, judgedReps: 7, seconds: 2.5, ips: 500, runMode: 'tsx', strict: true, out: path.resolve('tmp/x') });
    expect(p.shape).toEqual({ clients: 4, streams: 2 });
    expect(p.workersShape).toEqual({ clients: 8, streams: 4 });
  });

  it('rejects an unknown target and a number that is not positive', () => {
    expect(() => parseArgs(['--targets', 'echo,valkey'])).toThrow('unknown target valkey; expected echo,memory,redis,cluster');
    expect(() => parseArgs(['--reps', '0'])).toThrow('--reps must be a positive number');
    expect(() => parseArgs(['--seconds', 'soon'])).toThrow('--seconds must be a positive number');
  });

  it('runs the judged scenario judgedReps times and the others reps times', () => {
    const plan = { reps: 5, judgedReps: 21 };
    expect(repsOf(plan, { id: 'one-tb' })).toBe(21);
    expect(repsOf(plan, { id: 'four' })).toBe(5);
  });
});

describe('throughput rows', () => {
  it('pairs each repetition with the echo run of the same repetition and sums errors by code', () => {
    const samples = new Map<string, Sample[]>([
      ['one-tb/echo', [sample(100), sample(200), sample(300)]],
      [
        'one-tb/redis',
        [
          sample(90, {
            errors: 1,
            errorsByCode: { unavailable: 1 },
            redis: { scriptCallsPerRequest: 1, usPerRequest: 4 },
            redisCpuWaitShare: 0.2,
            rssMiB: 250,
          }),
          sample(100, { redis: { scriptCallsPerRequest: 0.5, usPerRequest: 3 }, redisCpuWaitShare: 0.1 }),
          sample(240, {
            errors: 2,
            errorsByCode: { unavailable: 1, internal: 1 },
            redis: { scriptCallsPerRequest: 0.8, usPerRequest: 5 },
            redisCpuWaitShare: 0.3,
          }),
        ],
      ],
    ]);
    const [echo, redis] = throughputRows([{ id: 'one-tb', descriptors: 2 }], [{ name: 'echo' }, { name: 'redis' }], samples);
    expect(echo).toMatchObject({ target: 'echo', rps: 200, rpsRuns: [100, 200, 300], ratioToEcho: 1, redisUsPerRequest: undefined });
    expect(echo).not.toHaveProperty('ratioRuns');
    expect(redis).toMatchObject({
      scenario: 'one-tb',
      target: 'redis',
      rps: 100,
      ratioRuns: [0.9, 0.5, 0.8],
      ratioToEcho: 0.8,
      ratioInterval: undefined, // three repetitions give no 95% interval
      errors: 3,
      errorsByCode: { unavailable: 2, internal: 1 },
      requests: 3000,
      rssMiB: 250,
      redisCpuWaitShare: 0.2,
      redisUsPerRequest: 4,
      redisUsPerDescriptor: 2,
      scriptCallsPerRequest: 0.8,
      command: 'h2load a',
    });
  });
});

describe('sweep points', () => {
  it('one point per level and target, levels outermost, medians of the repetitions', () => {
    const lat = (p50: number, p99: number) => ({ samples: 10, p50, p90: p99, p99, p999: p99, max: p99 });
    const runs = new Map<string, Sample[]>([
      [
        'echo/1/1',
        [
          sample(1000.4, { latency: lat(0.1, 0.3) }),
          sample(1200, { latency: lat(0.2, 0.5) }),
          sample(900, { latency: lat(0.3, 0.4), errors: 1 }),
        ],
      ],
      ['redis/1/1', [sample(500, { latency: lat(0.4, 0.9) })]],
    ]);
    const points = sweepPoints(
      [
        [1, 1],
        [2, 4],
      ],
      [{ name: 'echo' }, { name: 'redis' }],
      runs,
    );
    expect(points.map((p) => `${p.clients}/${p.streams}/${p.target}`)).toEqual(['1/1/echo', '1/1/redis', '2/4/echo', '2/4/redis']);
    expect(points[0]).toEqual({ target: 'echo', clients: 1, streams: 1, rps: 1000, p50: 0.2, p99: 0.4, errors: 1 });
    expect(points[2]).toMatchObject({ rps: Number.NaN, errors: 0 }); // a level with no run
  });
});

describe('high cardinality', () => {
  it('quotes every row against the echo row of the same phase', () => {
    const rows = [
      { target: 'echo', rps: 200 },
      { target: 'memory', rps: 150 },
    ] as HighCardRow[];
    setRatiosToEcho(rows);
    expect(rows.map((r) => r.ratioToEcho)).toEqual([1, 0.75]);
    const alone = [{ target: 'memory', rps: 150 }] as HighCardRow[];
    setRatiosToEcho(alone);
    expect(alone[0]!.ratioToEcho).toBeUndefined();
  });
});

describe('WORKERS summary', () => {
  it('judges the median of the per-repetition ratios and reports the pinned run beside it', () => {
    const runs: WorkersRuns = {
      rps: { '1': [100, 100, 200], '1-pinned': [100, 80, 100], '2': [150, 170, 260] },
      idle: { '1': [0.4, 0.5, 0.3], '1-pinned': [0.5, 0.5, 0.5], '2': [0.1, 0.05, 0.2] },
      processes: { '1': 1, '1-pinned': 1, '2': 3 },
      errors: [0, 1, 0, 0, 2, 0, 0, 0, 0],
    };
    expect(summarizeWorkers(runs, { clients: 16, streams: 16 })).toEqual({
      supported: true,
      note:
        'one-tb on standalone Redis, h2load -c 16 -m 16; WORKERS=1 and WORKERS=2 not pinned (both CPUs), h2load and Redis on the load CPU; ' +
        'machine idle during the runs (median): WORKERS=1 40.0%, WORKERS=2 10.0%',
      rps1: 100,
      rps2: 170,
      ratio: 1.5,
      ratios: [1.5, 1.7, 1.3],
      ratioInterval: undefined,
      rps1Pinned: 100,
      ratioPinned: 2.125,
      errors: 3,
      processes: [1, 3],
    });
  });

  it('leaves the pinned figures out when WORKERS=1 could not be pinned', () => {
    const runs: WorkersRuns = {
      rps: { '1': [100], '1-pinned': [], '2': [150] },
      idle: { '1': [0.4], '1-pinned': [], '2': [0.1] },
      processes: { '1': 1, '1-pinned': 0, '2': 3 },
      errors: [0, 0],
    };
    expect(summarizeWorkers(runs, { clients: 16, streams: 16 })).toMatchObject({
      ratio: 1.5,
      rps1Pinned: undefined,
      ratioPinned: undefined,
    });
  });
});

describe('README results', () => {
  const readme = `# Benchmarks\n\nprose\n\n${README_START}\nold tables\n${README_END}\n\nafter\n`;
  const md = '## Results (full run, 2026-12-06)\n\n### Acceptance\n\n| a |\n\n### Throughput\n';

  it('replaces what lies between the markers, one heading level down, with the chart', () => {
    expect(readmeWithResults(readme, md)).toBe(
      `# Benchmarks\n\nprose\n\n${README_START}\n### Results (full run, 2026-12-06)\n\n#### Acceptance\n\n| a |\n\n#### Throughput\n\n` +
        `![latency against offered load](results/latency-vs-load.svg)\n${README_END}\n\nafter\n`,
    );
  });

  it('leaves a README without both markers alone', () => {
    expect(readmeWithResults('# no markers', md)).toBeUndefined();
    expect(readmeWithResults(`${README_END}\n${README_START}`, md)).toBeUndefined();
  });
});
