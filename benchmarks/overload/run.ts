/**
 * Overload is not an outage, measured (issue "Holds under attack and overload"):
 *
 * 1. overload: `h2load -c 64 -m 64 -n 20000` (split over the processes) on one descriptor limited
 *    to 100 per hour, at default settings, against a healthy Redis: standalone and a 3-primary
 *    cluster, 1 and 4 meshlimit processes, FAILURE_POLICY deny and allow. Reported from the
 *    services' own counters: decisions (OK, OVER_LIMIT), overloaded sheds, any other error, the
 *    breaker's transitions, and the counter in Redis. Judged: the breaker never opens, every
 *    answer is a decision or a shed, OK never exceeds the limit.
 * 2. outage: a paced load of about 2,000 requests per second on one process, then the standalone
 *    Redis SIGSTOPped (hung) or SIGKILLed (gone) for 3 s: how long until the breaker opens (from
 *    the fault), how long answers take while it is open, and how long until exact answers return.
 *
 *   npx tsx benchmarks/overload/run.ts [--phases overload,outage] [--redis single,cluster] [--processes 1,4]
 *                                      [--policies deny,allow] [--out benchmarks/overload/results]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRlsClient } from '../../src/client/rls-client.js';
import { requestFrame } from '../lib/frames.js';
import { runH2load } from '../lib/h2load.js';
import { buildSnapshot, ROOT, sleep } from '../lib/procs.js';
import { percentile } from '../lib/stats.js';
import { startClusterRedis, startMeshlimit, startStandaloneRedis, type RedisDeployment, type Target } from '../lib/targets.js';
import { cpuLayout } from '../phases/context.js';
import { redisCommand } from '../../test/support/redis-admin.js';

const LIMIT = 100;
const CONFIG = `domain: ov\ndescriptors:\n  - key: k\n    rate_limit: { unit: hour, requests_per_unit: ${LIMIT} }\n`;

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1] ?? '');
const phases = (args.get('phases') ?? 'overload,outage').split(',');
const redisKinds = (args.get('redis') ?? 'single,cluster').split(',') as ('single' | 'cluster')[];
const processCounts = (args.get('processes') ?? '1,4').split(',').map(Number);
const policies = (args.get('policies') ?? 'deny,allow').split(',') as ('deny' | 'allow')[];
const outDir = path.resolve(args.get('out') ?? path.join(ROOT, 'benchmarks/overload/results'));
const work = path.join(ROOT, 'benchmarks/.work/overload');
const cpus = cpuLayout();

interface Counts {
  ok: number;
  overLimit: number;
  unavailable: number;
  other: number;
  shed: number;
  transient: number;
  circuitOpen: number;
  breakerOpened: number;
  degradedOverloaded: number;
}

/** The counters one service exposes on /metrics that this benchmark reads. */
async function countsOf(t: Target): Promise<Counts> {
  const text = await (await fetch(`http://127.0.0.1:${t.httpPort}/metrics`)).text();
  const v = (series: string): number => {
    const line = text.split('\n').find((l) => l.startsWith(`${series} `));
    return line === undefined ? 0 : Number(line.slice(series.length + 1));
  };
  const code = (c: string): number => v(`meshlimit_requests_total{outcome="${c}"}`);
  return {
    ok: code('ok'),
    overLimit: code('over_limit'),
    unavailable: code('unavailable'),
    other: code('invalid_argument') + code('deadline_exceeded') + code('internal'),
    shed: v('meshlimit_backend_errors_total{outcome="overloaded"}'),
    transient: v('meshlimit_backend_errors_total{outcome="transient"}'),
    circuitOpen: v('meshlimit_backend_errors_total{outcome="circuit_open"}'),
    breakerOpened: v('meshlimit_breaker_transitions_total{from="closed",to="open"}'),
    degradedOverloaded: v('meshlimit_degraded_answers_total{outcome="overloaded"}'),
  };
}

function sum(list: readonly Counts[]): Counts {
  const out = { ...list[0]! };
  for (const c of list.slice(1)) for (const k of Object.keys(out) as (keyof Counts)[]) out[k] += c[k];
  return out;
}

/** The fixed-window count stored for the one counter, over every primary. */
async function storedCount(dep: RedisDeployment): Promise<number> {
  let total = 0;
  for (const port of dep.primaryPorts) {
    const keys = (await redisCommand(port, ['KEYS', '*'])) as string[];
    for (const key of keys) {
      total += Number(
        await redisCommand(port, ['EVAL', "local m, s, n = struct.unpack('<Bdd', redis.call('GET', KEYS[1])) return n", 1, key]),
      );
    }
  }
  return total;
}

interface OverloadRow {
  readonly redis: 'single' | 'cluster';
  readonly processes: number;
  readonly policy: 'deny' | 'allow';
  readonly requests: number;
  readonly seconds: number;
  readonly counts: Counts;
  readonly stored: number;
  readonly pass: boolean;
  readonly command: string;
}

async function overloadRun(
  dep: RedisDeployment,
  processes: number,
  policy: 'deny' | 'allow',
  configDir: string,
  frame: string,
): Promise<OverloadRow> {
  const targets: Target[] = [];
  try {
    for (let i = 0; i < processes; i++) {
      targets.push(
        await startMeshlimit({
          name: `ov-${i}`,
          mode: 'dist',
          cpus: cpus.service,
          configDir,
          backend: dep,
          env: { FAILURE_POLICY: policy },
        }),
      );
    }
    const t0 = performance.now();
    const runs = await Promise.all(
      targets.map((t) =>
        runH2load({
          port: t.grpcPort,
          dataFile: frame,
          clients: 64 / processes,
          streams: 64,
          requests: 20_000 / processes,
          cpus: cpus.load,
        }),
      ),
    );
    const seconds = (performance.now() - t0) / 1000;
    await sleep(300); // late replies and metrics settle
    const counts = sum(await Promise.all(targets.map(countsOf)));
    const stored = await storedCount(dep);
    const answers = counts.ok + counts.overLimit + (policy === 'deny' ? counts.shed : 0);
    const decisionsOrShed =
      policy === 'deny' ? answers === 20_000 && counts.unavailable === counts.shed : counts.ok + counts.overLimit === 20_000;
    const exactOk = policy === 'deny' ? counts.ok : counts.ok - counts.degradedOverloaded;
    const pass = counts.breakerOpened === 0 && decisionsOrShed && exactOk <= LIMIT && stored <= LIMIT && counts.other === 0;
    return {
      redis: dep.kind,
      processes,
      policy,
      requests: runs.reduce((a, r) => a + r.requests, 0),
      seconds,
      counts,
      stored,
      pass,
      command: runs[0]!.command,
    };
  } finally {
    for (const t of targets) await t.stop();
    for (const port of dep.primaryPorts) await redisCommand(port, ['FLUSHALL']);
  }
}

async function overloadPhase(configDir: string, frame: string): Promise<OverloadRow[]> {
  const rows: OverloadRow[] = [];
  for (const kind of redisKinds) {
    const dep = kind === 'single' ? await startStandaloneRedis(cpus.load) : await startClusterRedis(cpus.load);
    try {
      for (const processes of processCounts) {
        for (const policy of policies) {
          const row = await overloadRun(dep, processes, policy, configDir, frame);
          process.stderr.write(
            `overload ${kind} x${processes} ${policy}: ${JSON.stringify(row.counts)} stored ${row.stored} ${row.pass ? 'PASS' : 'FAIL'}\n`,
          );
          rows.push(row);
        }
      }
    } finally {
      await dep.stop();
    }
  }
  return rows;
}

interface Sample {
  readonly sentAt: number;
  readonly ms: number;
  readonly code: number; // 0 = a decision
}

interface OutageRow {
  readonly fault: 'SIGSTOP' | 'SIGKILL';
  readonly rate: number;
  readonly faultMs: number;
  readonly openedAfterMs: number | undefined;
  /** Answers sent before the breaker opened that waited for the command timeout. */
  readonly waitedForTimeout: number;
  readonly whileOpen: { readonly count: number; readonly p50Ms: number; readonly p99Ms: number };
  readonly exactAgainAfterMs: number | undefined;
}

/** Sends `rate` requests per second until `stop()`, recording each answer's time and status. */
function pacedLoad(grpcPort: number, rate: number): { samples: Sample[]; stop: () => Promise<void> } {
  const client = createRlsClient(`127.0.0.1:${grpcPort}`);
  const samples: Sample[] = [];
  const pending = new Set<Promise<void>>();
  const perTick = Math.max(1, Math.round(rate / 200));
  const timer = setInterval(() => {
    for (let i = 0; i < perTick; i++) {
      const sentAt = performance.now();
      const p = client
        .shouldRateLimit(
          { domain: 'ov', descriptors: [{ entries: [{ key: 'k', value: `v${samples.length % 50}` }] }] },
          { deadlineMs: 2_000 },
        )
        .then(
          () => void samples.push({ sentAt, ms: performance.now() - sentAt, code: 0 }),
          (err: unknown) => void samples.push({ sentAt, ms: performance.now() - sentAt, code: (err as { code?: number }).code ?? -1 }),
        )
        .finally(() => pending.delete(p));
      pending.add(p);
    }
  }, 5);
  return {
    samples,
    stop: async () => {
      clearInterval(timer);
      await Promise.allSettled([...pending]);
      client.close();
    },
  };
}

async function outageRun(fault: 'SIGSTOP' | 'SIGKILL', configDir: string): Promise<OutageRow> {
  let dep = await startStandaloneRedis(cpus.load);
  const target = await startMeshlimit({
    name: `outage-${fault}`,
    mode: 'dist',
    cpus: cpus.service,
    configDir,
    backend: dep,
    env: { BREAKER_OPEN_MS: '1000' },
  });
  const rate = 2_000;
  const load = pacedLoad(target.grpcPort, rate);
  try {
    await sleep(2_000);
    const pid = dep.pids[0]!;
    const port = dep.primaryPorts[0]!;
    const faultAt = performance.now();
    process.kill(pid, fault);
    let openedAfterMs: number | undefined;
    while (performance.now() - faultAt < 3_000) {
      if (openedAfterMs === undefined && (await countsOf(target)).breakerOpened > 0) openedAfterMs = performance.now() - faultAt;
      await sleep(10);
    }
    const healedAt = performance.now();
    if (fault === 'SIGSTOP') process.kill(pid, 'SIGCONT');
    else dep = await restartOnPort(port);
    await sleep(3_000);
    await load.stop();
    const s = load.samples;
    const opened = openedAfterMs === undefined ? Number.POSITIVE_INFINITY : faultAt + openedAfterMs;
    const beforeOpen = s.filter((x) => x.sentAt >= faultAt && x.sentAt < opened);
    const whileOpen = s
      .filter((x) => x.sentAt >= opened + 20 && x.sentAt < healedAt)
      .map((x) => x.ms)
      .sort((a, b) => a - b);
    const firstExact = s.find((x) => x.sentAt >= healedAt && x.code === 0);
    return {
      fault,
      rate,
      faultMs: healedAt - faultAt,
      openedAfterMs,
      waitedForTimeout: beforeOpen.filter((x) => x.ms >= 45).length,
      whileOpen: { count: whileOpen.length, p50Ms: percentile(whileOpen, 50), p99Ms: percentile(whileOpen, 99) },
      exactAgainAfterMs: firstExact === undefined ? undefined : firstExact.sentAt - healedAt,
    };
  } finally {
    await load.stop();
    await target.stop();
    await dep.stop();
  }
}

/** A standalone Redis again on `port` (clients expect it there). */
async function restartOnPort(port: number): Promise<RedisDeployment> {
  const { startRedis } = await import('../../test/support/redis.js');
  const r = await startRedis({ port });
  return { kind: 'single', url: `127.0.0.1:${port}`, primaryPorts: [port], pids: [r.pid], realtime: false, stop: () => r.stop() };
}

async function main(): Promise<void> {
  mkdirSync(work, { recursive: true });
  mkdirSync(outDir, { recursive: true });
  const configDir = path.join(work, 'config');
  mkdirSync(configDir, { recursive: true });
  writeFileSync(path.join(configDir, 'ov.yaml'), CONFIG);
  const frame = path.join(work, 'ov.bin');
  writeFileSync(frame, requestFrame({ domain: 'ov', descriptors: [{ entries: [{ key: 'k', value: 'hot' }] }] }));
  buildSnapshot();
  const result: Record<string, unknown> = {
    when: new Date().toISOString(),
    node: process.version,
    cpus: `${os.cpus().length}; ${cpus.note}`,
  };
  if (phases.includes('overload')) result['overload'] = await overloadPhase(configDir, frame);
  if (phases.includes('outage')) {
    const rows: OutageRow[] = [];
    for (const fault of ['SIGSTOP', 'SIGKILL'] as const) {
      const row = await outageRun(fault, configDir);
      process.stderr.write(`outage ${fault}: ${JSON.stringify(row)}\n`);
      rows.push(row);
    }
    result['outage'] = rows;
  }
  writeFileSync(path.join(outDir, 'results.json'), `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}

await main();
