/**
 * The results document (JSON), the acceptance checks from the benchmark issue, and the
 * Markdown rendering that goes into benchmarks/results/results.md and the README.
 */
import type { BurstResult, SlidingResult } from './accuracy.js';
import { round, type LatencySummary, type MedianInterval } from './stats.js';
import { REFERENCE_RETURN_ONE_US, type Calibration } from './calibrate.js';
import type { SweepPoint } from './svg.js';

export interface ThroughputRow {
  scenario: string;
  target: string;
  descriptors: number;
  /** Median over repetitions of requests/s at saturation. */
  rps: number;
  rpsRuns: number[];
  /** Median over repetitions of (target req/s / echo req/s in the same repetition). */
  ratioToEcho: number;
  /** Those per-repetition ratios (not for echo). */
  ratioRuns?: number[] | undefined;
  /** 95% interval of that median (stats.ts medianInterval); undefined with fewer than 6 repetitions. */
  ratioInterval?: MedianInterval | undefined;
  okShare: number;
  errors: number;
  /** Server-side errors by gRPC outcome code, summed over repetitions. */
  errorsByCode: Record<string, number>;
  requests: number;
  serviceCpuUsPerRequest: number;
  /** Median share of the run the service waited for a CPU held by another process. */
  cpuWaitShare: number;
  /** Median share of the run the Redis server(s) waited for a CPU (summed over nodes). */
  redisCpuWaitShare: number | undefined;
  rssMiB: number;
  redisUsPerRequest: number | undefined;
  redisUsPerDescriptor: number | undefined;
  scriptCallsPerRequest: number | undefined;
  command: string;
}

export interface LatencyRow extends LatencySummary {
  scenario: string;
  target: string;
  errors: number;
  errorsByCode: Readonly<Record<string, number>>;
  /** Redis script time per request during this run (one request at a time: cold caches, see README). */
  redisUsPerRequest: number | undefined;
  /** Standalone Redis moved to the service's CPU for this run (otherwise it shares the load CPU). */
  redisOnServiceCpu?: boolean;
  command: string;
}

export interface HighCardRow {
  target: string;
  distinctIps: number;
  rps: number;
  ratioToEcho?: number | undefined;
  errors: number;
  errorsByCode: Readonly<Record<string, number>>;
  rssMiB: number;
  redisMemoryMiB: number | undefined;
  redisUsPerRequest: number | undefined;
  latency: LatencySummary | undefined;
  command: string;
}

/** meshlimit (memory backend) and the grpc-js echo, both serving over TLS, `one-tb`, interleaved. */
export interface TlsResult {
  readonly note: string;
  readonly echoRps: number;
  readonly meshlimitRps: number;
  /** Service CPU per request (median), echo then meshlimit: less moved by a busy machine than req/s. */
  readonly cpuUsPerRequest: readonly [number, number];
  /** Median of the per-repetition meshlimit / echo ratios. */
  readonly ratio: number;
  readonly ratios: number[];
  readonly ratioInterval: MedianInterval | undefined;
  readonly errors: number;
  readonly command: string;
}

export type WorkersResult =
  | { supported: false; note: string }
  | {
      supported: true;
      note: string;
      rps1?: number;
      rps2?: number;
      ratio?: number;
      /** WORKERS=2 / WORKERS=1 per repetition (runs back to back); `ratio` is their median. */
      ratios?: number[];
      /** 95% interval of `ratio` (stats.ts medianInterval). */
      ratioInterval?: MedianInterval | undefined;
      /** WORKERS=1 pinned to the service CPU (one worker, one core), for context. */
      rps1Pinned?: number | undefined;
      ratioPinned?: number | undefined;
      errors?: number;
      processes?: [number, number];
    };

export interface AcceptanceRow {
  id: string;
  check: string;
  measured: string;
  status: 'pass' | 'FAIL' | 'not measured' | 'not supported';
}

export interface Report {
  meta: {
    startedAt: string;
    finishedAt: string;
    mode: 'quick' | 'full';
    meshlimit: string;
    node: string;
    h2load: string;
    redis: string;
    cpu: string;
    memoryGiB: number;
    kernel: string;
    pinning: string;
    reps: number;
    /** Repetitions of one-tb and of the WORKERS phase (the judged ratios); older results lack it. */
    judgedReps?: number;
    secondsPerRun: number;
    load: string;
    shape: { clients: number; streams: number };
    sweepReps: number;
    unsupported: Record<string, string>;
    command: string;
  };
  scenarios: { id: string; title: string; about: string; descriptors: number }[];
  throughput: ThroughputRow[];
  latency: LatencyRow[];
  sweep: SweepPoint[];
  /** Errors during the untimed warm-up runs (a cold process is part of the service too). */
  warmupErrors: number;
  /** The floor on this machine's Redis: see lib/calibrate.ts. */
  calibration: Calibration | undefined;
  highCardinality: HighCardRow[];
  workers: WorkersResult;
  /** The TLS phase: meshlimit (memory) and the echo baseline, both over TLS; older results lack it. */
  tls?: TlsResult | undefined;
  accuracy: { bursts: BurstResult[]; sliding: SlidingResult[] };
  acceptance: AcceptanceRow[];
  /** Phases that failed (their figures are missing), with the error. */
  phaseErrors: Record<string, string>;
}

const f = (x: number | undefined, d = 2): string => (x === undefined || !Number.isFinite(x) ? '-' : String(round(x, d)));
/** "0", or "12 (unavailable 12)" */
const errs = (n: number, byCode: Readonly<Record<string, number>> | undefined): string => {
  const codes = Object.entries(byCode ?? {}).map(([k, v]) => `${k} ${v}`);
  return n === 0 ? '0' : `**${n}**${codes.length > 0 ? ` (${codes.join(', ')})` : ''}`;
};
const int = (x: number | undefined): string => (x === undefined || !Number.isFinite(x) ? '-' : Math.round(x).toLocaleString('en-US'));

/**
 * How sure a median ratio is: its 95% interval, and whether the line lies inside it (then this
 * run alone cannot tell which side the service is on; more repetitions or more runs can).
 */
function intervalNote(i: MedianInterval | undefined, line: number): string {
  if (i === undefined) return '';
  const spans = i.low < line && line <= i.high;
  return ` (95% interval of the median ${f(i.low)}-${f(i.high)}${spans ? `, which spans the ${line} line: within this run's noise` : ''})`;
}

/** Shows a judged ratio with its interval (see intervalNote). */
const ratioShown =
  (interval: MedianInterval | undefined, line: number) =>
  (v: number): string =>
    `${f(v)}x${intervalNote(interval, line)}`;

/** The acceptance figures of the benchmark issue, judged on this report. */
export function acceptance(r: Report): AcceptanceRow[] {
  const out: AcceptanceRow[] = [];
  const tp = (sc: string, t: string): ThroughputRow | undefined => r.throughput.find((x) => x.scenario === sc && x.target === t);
  const judge = (id: string, check: string, value: number | undefined, ok: (v: number) => boolean, show: (v: number) => string): void => {
    if (value === undefined || !Number.isFinite(value)) out.push({ id, check, measured: '-', status: 'not measured' });
    else out.push({ id, check, measured: show(value), status: ok(value) ? 'pass' : 'FAIL' });
  };
  const redis = tp('one-tb', 'redis');
  const memory = tp('one-tb', 'memory');
  judge(
    'ratio-redis',
    'one-tb, standalone Redis, one process: >= 0.75x echo req/s',
    redis?.ratioToEcho,
    (v) => v >= 0.75,
    ratioShown(redis?.ratioInterval, 0.75),
  );
  judge(
    'ratio-memory',
    'one-tb, memory backend: >= 0.9x echo req/s',
    memory?.ratioToEcho,
    (v) => v >= 0.9,
    ratioShown(memory?.ratioInterval, 0.9),
  );
  // Judged with Redis on the service's CPU when that layout ran (the request then crosses CPUs as
  // often as the echo server's does); the figure with Redis beside h2load is shown with it.
  const onService = r.latency.find((x) => x.scenario === 'one-tb' && x.target === 'redis' && x.redisOnServiceCpu === true);
  const onLoad = r.latency.find((x) => x.scenario === 'one-tb' && x.target === 'redis' && x.redisOnServiceCpu !== true);
  const lat = onService ?? onLoad;
  const echoLat = r.latency.find((x) => x.scenario === 'one-tb' && x.target === 'echo');
  const rttOf = (row: LatencyRow | undefined) => (row === onService ? r.calibration?.roundTripRedisOnServiceCpu : r.calibration?.roundTrip);
  // What this machine allows: the echo server's own latency plus one Redis round trip (PING from the service's CPU).
  const floor = (row: LatencyRow | undefined, p: 'p50' | 'p99'): string => {
    const rtt = rttOf(row);
    return echoLat === undefined || rtt === undefined
      ? ''
      : `floor here: echo ${f(echoLat[p], 3)} + Redis round trip ${f(rtt[p], 3)} = ${f(echoLat[p] + rtt[p], 3)} ms`;
  };
  const show =
    (p: 'p50' | 'p99') =>
    (v: number): string => {
      const where = onService === undefined ? '' : 'Redis on the service CPU, ';
      const other =
        onService !== undefined && onLoad !== undefined ? `; with Redis on the load CPU ${f(onLoad[p], 3)} ms (${floor(onLoad, p)})` : '';
      return `${f(v, 3)} ms (${where}${floor(lat, p)})${other}`;
    };
  judge('latency-p50', 'one-tb, standalone Redis, h2load -c1 -m1: p50 <= 0.3 ms', lat?.p50, (v) => v <= 0.3, show('p50'));
  judge('latency-p99', 'one-tb, standalone Redis, h2load -c1 -m1: p99 <= 0.6 ms', lat?.p99, (v) => v <= 0.6, show('p99'));
  // Judged on the figure measured here; the reference-scaled one is shown for comparison only.
  const cal = r.calibration;
  const scaled = (v: number): string =>
    cal === undefined
      ? ''
      : ` (x ${f(REFERENCE_RETURN_ONE_US / cal.returnOneUs)} on the issue's reference machine: ${f((v * REFERENCE_RETURN_ONE_US) / cal.returnOneUs)} us)`;
  judge(
    'redis-cpu-tb',
    'Redis CPU per decision, token bucket (one descriptor): <= 3 us',
    tp('one-tb', 'redis')?.redisUsPerDescriptor,
    (v) => v <= 3,
    (v) => `${f(v)} us${scaled(v)}`,
  );
  judge(
    'redis-cpu-sw',
    'Redis CPU per decision, sliding window (one descriptor): <= 3 us',
    tp('one-sw', 'redis')?.redisUsPerDescriptor,
    (v) => v <= 3,
    (v) => `${f(v)} us${scaled(v)}`,
  );
  judge(
    'redis-cpu-fw',
    'Redis CPU per decision, fixed window (one descriptor): <= 2 us',
    tp('one-fw', 'redis')?.redisUsPerDescriptor,
    (v) => v <= 2,
    (v) => `${f(v)} us${scaled(v)}`,
  );
  if (!r.workers.supported) {
    out.push({
      id: 'workers',
      check: 'WORKERS=2: >= 1.4x WORKERS=1',
      measured: r.workers.note,
      status: r.workers.note === 'skipped' ? 'not measured' : 'not supported',
    });
  } else {
    judge('workers', 'WORKERS=2: >= 1.4x WORKERS=1', r.workers.ratio, (v) => v >= 1.4, ratioShown(r.workers.ratioInterval, 1.4));
  }
  for (const algorithm of ['fixed_window', 'token_bucket'] as const) {
    const b = r.accuracy.bursts.find((x) => x.backend === 'redis' && x.algorithm === algorithm);
    if (b === undefined)
      out.push({
        id: `accuracy-${algorithm}`,
        check: `accuracy ${algorithm}, Redis, 4 processes: admitted == limit`,
        measured: '-',
        status: 'not measured',
      });
    else
      out.push({
        id: `accuracy-${algorithm}`,
        check: `accuracy ${algorithm}, Redis, ${b.processes} processes: admitted == limit`,
        measured: `${b.admitted} of ${b.limit} (${b.sent} sent, ${b.errors} errors)`,
        status: b.exact ? 'pass' : 'FAIL',
      });
  }
  const sl = r.accuracy.sliding;
  out.push({
    id: 'sliding-log',
    check: 'sliding window error against an exact sliding log (reported)',
    measured:
      sl.length === 0
        ? '-'
        : sl.map((s) => `${s.pattern}: ${s.admitted} vs ${s.exactLogAdmitted} (${f(s.relativeError * 100, 1)}%)`).join('; '),
    status: sl.length === 0 ? 'not measured' : 'pass',
  });
  const errors =
    r.throughput.reduce((a, x) => a + x.errors, 0) +
    r.latency.reduce((a, x) => a + x.errors, 0) +
    r.sweep.reduce((a, x) => a + x.errors, 0) +
    r.warmupErrors +
    r.highCardinality.reduce((a, x) => a + x.errors, 0) +
    r.accuracy.bursts.reduce((a, x) => a + x.errors, 0) +
    r.accuracy.sliding.reduce((a, x) => a + x.errors, 0) +
    (r.workers.supported ? (r.workers.errors ?? 0) : 0) +
    (r.tls?.errors ?? 0);
  out.push({ id: 'errors', check: 'errors in every run: 0', measured: String(errors), status: errors === 0 ? 'pass' : 'FAIL' });
  return out;
}

/** Rows about correctness (accuracy, errors): a quick run judges them like a full run. */
const CORRECTNESS_ROW = /^(accuracy-|errors$|sliding-log$)/;

/**
 * The status cell of an acceptance row. A quick run's speed figures are one short sample each,
 * so a speed row below its line reads as that, not as a failure; correctness rows fail in
 * either mode.
 */
export function statusText(row: AcceptanceRow, mode: Report['meta']['mode']): string {
  if (row.status !== 'FAIL') return row.status;
  return mode === 'quick' && !CORRECTNESS_ROW.test(row.id) ? 'below the line (one short sample)' : '**FAIL**';
}

function table(head: string[], rows: string[][]): string {
  return [`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

export function markdownReport(r: Report): string {
  const m = r.meta;
  const parts: string[] = [];
  parts.push(`## Results (${m.mode} run, ${m.startedAt.slice(0, 16).replace('T', ' ')} UTC)`);
  parts.push(
    [
      `- machine: ${m.cpu}, ${m.memoryGiB} GiB, Linux ${m.kernel}; ${m.node}; ${m.h2load}; ${m.redis.replace(/ sha=.*/, '')}`,
      `- CPUs: ${m.pinning}`,
      `- meshlimit: ${m.meshlimit}, LOG_LEVEL=error; saturation load: ${m.load}; ${m.reps} repetition(s) of about ${m.secondsPerRun} s per target, interleaved${m.judgedReps !== undefined && m.judgedReps > m.reps ? ` (one-tb, whose ratios are judged, and the WORKERS phase: ${m.judgedReps})` : ''}`,
      `- command: \`${m.command}\``,
      ...Object.entries(m.unsupported).map(([t, why]) => `- **${t}: not supported by this build** (${why})`),
    ].join('\n'),
  );

  for (const [phase, error] of Object.entries(r.phaseErrors))
    parts.push(`**Phase ${phase} failed** (its figures are missing): \`${error.split('\n')[0]}\``);
  parts.push('### Acceptance');
  if (m.mode === 'quick') {
    parts.push(
      'Quick run: each speed figure below is one repetition of about a second, so its row says where that one sample fell, not whether the target holds (`npm run bench` judges them over paired repetitions). The correctness rows (accuracy, errors) count as they are.',
    );
  }
  parts.push(
    table(
      ['check', 'measured', 'status'],
      r.acceptance.map((a) => [a.check, a.measured, statusText(a, m.mode)]),
    ),
  );

  parts.push('### Throughput at saturation');
  parts.push(
    table(
      [
        'scenario',
        'target',
        'req/s (median)',
        'x echo',
        'OK share',
        'Redis us/request',
        'Redis us/decision',
        'service CPU us/request',
        'CPU wait service / Redis',
        'RSS MiB',
        'errors',
      ],
      r.throughput.map((x) => [
        x.scenario,
        x.target,
        int(x.rps),
        x.target === 'echo' ? '1' : f(x.ratioToEcho),
        `${f(x.okShare * 100, 1)}%`,
        f(x.redisUsPerRequest),
        f(x.redisUsPerDescriptor),
        f(x.serviceCpuUsPerRequest, 1),
        `${f(x.cpuWaitShare * 100, 1)}% / ${x.redisCpuWaitShare === undefined ? '-' : `${f(x.redisCpuWaitShare * 100, 1)}%`}`,
        f(x.rssMiB, 0),
        errs(x.errors, x.errorsByCode),
      ]),
    ),
  );
  parts.push(
    'Runs (req/s per repetition): ' + r.throughput.map((x) => `${x.scenario}/${x.target} ${x.rpsRuns.join(', ')}`).join('; ') + '.',
  );
  const cal = r.calibration;
  parts.push(
    [
      cal
        ? `Redis on this machine, before any meshlimit load: a minimal \`TIME; GET; SET PX\` script takes ${f(cal.minimalScriptUs)} us per call and \`return 1\` ${f(cal.returnOneUs)} us (pipelined, ${int(cal.calls)} calls each; the issue's reference machine: 0.74 us for \`return 1\`); one PING at a time from Node on the service's CPU takes p50 ${f(cal.roundTrip.p50, 3)} ms, p99 ${f(cal.roundTrip.p99, 3)} ms${cal.roundTripRedisOnServiceCpu === undefined ? '' : ` (with Redis moved to the service's CPU: p50 ${f(cal.roundTripRedisOnServiceCpu.p50, 3)} ms, p99 ${f(cal.roundTripRedisOnServiceCpu.p99, 3)} ms)`}.`
        : '',
      `Errors during untimed warm-up runs: ${r.warmupErrors}.`,
    ]
      .filter(Boolean)
      .join(' '),
  );

  if (r.latency.length > 0) {
    parts.push('### Latency, one request at a time (h2load -c1 -m1)');
    parts.push(
      table(
        ['scenario', 'target', 'samples', 'p50 ms', 'p90 ms', 'p99 ms', 'p99.9 ms', 'max ms', 'Redis us/request', 'errors'],
        r.latency.map((x) => [
          x.scenario,
          x.redisOnServiceCpu === true ? `${x.target} (Redis on the service CPU)` : x.target,
          String(x.samples),
          f(x.p50, 3),
          f(x.p90, 3),
          f(x.p99, 3),
          f(x.p999, 3),
          f(x.max, 2),
          f(x.redisUsPerRequest),
          errs(x.errors, x.errorsByCode),
        ]),
      ),
    );
  }

  if (r.sweep.length > 0) {
    parts.push(`### Latency against offered load (one-tb, median of ${m.sweepReps} run(s) per point; chart: latency-vs-load.svg)`);
    const levels = [...new Set(r.sweep.map((p) => `c${p.clients} m${p.streams}`))];
    const targets = [...new Set(r.sweep.map((p) => p.target))];
    parts.push(
      table(
        ['concurrency', ...targets.map((t) => `${t} req/s, p50 / p99 ms`)],
        levels.map((lv) => [
          lv,
          ...targets.map((t) => {
            const p = r.sweep.find((q) => q.target === t && `c${q.clients} m${q.streams}` === lv);
            return p ? `${int(p.rps)}, ${f(p.p50, 2)} / ${f(p.p99, 2)}${p.errors > 0 ? `, **${p.errors} errors**` : ''}` : '-';
          }),
        ]),
      ),
    );
  }

  if (r.highCardinality.length > 0) {
    parts.push(
      `### High cardinality (a new client IP on every request; vary-load, ${m.shape.clients} connections x ${m.shape.streams} streams)`,
    );
    parts.push(
      table(
        [
          'target',
          'distinct IPs',
          'req/s',
          'x echo',
          'p50 / p99 ms at saturation',
          'Redis us/request',
          'RSS MiB after',
          'Redis used_memory MiB after',
          'errors',
        ],
        r.highCardinality.map((x) => [
          x.target,
          int(x.distinctIps),
          int(x.rps),
          x.target === 'echo' ? '1' : f(x.ratioToEcho),
          x.latency ? `${f(x.latency.p50)} / ${f(x.latency.p99)}` : '-',
          f(x.redisUsPerRequest),
          f(x.rssMiB, 0),
          x.redisMemoryMiB === undefined ? '-' : String(x.redisMemoryMiB),
          errs(x.errors, x.errorsByCode),
        ]),
      ),
    );
  }

  parts.push('### WORKERS');
  parts.push(
    r.workers.supported && r.workers.ratio !== undefined
      ? `WORKERS=1: ${int(r.workers.rps1)} req/s, WORKERS=2: ${int(r.workers.rps2)} req/s, ratio ${f(r.workers.ratio)}x (the acceptance figure: the median of the per-repetition ratios ${(r.workers.ratios ?? []).map((x) => f(x)).join(', ')}); WORKERS=1 pinned to one CPU: ${int(r.workers.rps1Pinned)} req/s, WORKERS=2 against it ${f(r.workers.ratioPinned)}x; errors ${r.workers.errors ?? '-'}; processes in the service's tree: ${r.workers.processes?.join(' and ') ?? '-'} (${r.workers.note}).`
      : r.workers.note,
  );

  if (r.tls !== undefined) {
    const t = r.tls;
    parts.push('### TLS');
    parts.push(
      `Over TLS, one-tb: echo ${int(t.echoRps)} req/s, meshlimit (memory) ${int(t.meshlimitRps)} req/s, ratio ${f(t.ratio)}x` +
        `${t.ratioInterval === undefined ? '' : ` (95% interval of the median ${f(t.ratioInterval.low)}-${f(t.ratioInterval.high)})`} (per repetition: ${t.ratios.map((x) => f(x)).join(', ')}); service CPU per request: echo ${f(t.cpuUsPerRequest[0], 1)} us, meshlimit ${f(t.cpuUsPerRequest[1], 1)} us; errors ${t.errors}. ${t.note}. Command: \`${t.command}\``,
    );
  }

  if (r.accuracy.bursts.length > 0) {
    parts.push('### Accuracy: a burst through several processes sharing one Redis');
    parts.push(
      table(
        ['backend', 'algorithm', 'processes', 'limit', 'sent', 'admitted', 'denied', 'errors', 'exact'],
        r.accuracy.bursts.map((b) => [
          b.backend,
          b.algorithm,
          String(b.processes),
          String(b.limit),
          String(b.sent),
          String(b.admitted),
          String(b.denied),
          String(b.errors),
          b.exact ? 'yes' : '**no**',
        ]),
      ),
    );
  }
  if (r.accuracy.sliding.length > 0) {
    parts.push('### Sliding window against an exact sliding log (limit 50 per 1 s window, standalone Redis)');
    parts.push(
      table(
        ['pattern', 'sent', 'admitted', 'exact log admits', 'error', 'most admitted in any 1 s span', 'errors'],
        r.accuracy.sliding.map((s) => [
          `${s.pattern}: ${s.about}`,
          String(s.sent),
          String(s.admitted),
          String(s.exactLogAdmitted),
          `${f(s.relativeError * 100, 1)}%`,
          String(s.maxInAnyWindow),
          String(s.errors),
        ]),
      ),
    );
  }

  const ex = r.throughput.find((x) => x.scenario === 'one-tb' && x.target === 'redis') ?? r.throughput[0];
  const lx = r.latency.find((x) => x.scenario === 'one-tb' && x.target === 'redis') ?? r.latency[0];
  parts.push('### Commands (examples from this run)');
  parts.push(['```sh', ex ? `# saturation\n${ex.command}` : '', lx ? `# latency\n${lx.command}` : '', '```'].filter(Boolean).join('\n'));
  return `${parts.join('\n\n')}\n`;
}
