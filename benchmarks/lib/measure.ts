/**
 * One measurement = one load run against one target, bracketed by reads of the target's own
 * counters (answers, errors), Redis commandstats and /proc (CPU time, RSS), so every figure of
 * a run comes from the same window of time.
 */
import path from 'node:path';
import { spawnTracked } from '../../test/support/child.js';
import { runH2load, type H2loadResult } from './h2load.js';
import { pinned, ROOT } from './procs.js';
import { summarizeUs, type LatencySummary } from './stats.js';
import type { Counts, ScriptStats, Target } from './targets.js';

export interface LoadShape {
  /** Connections in total (split evenly between the scenario's h2load processes). */
  readonly clients: number;
  /** Streams in flight per connection. */
  readonly streams: number;
}

export interface Sample {
  readonly target: string;
  readonly requests: number;
  readonly seconds: number;
  readonly rps: number;
  /** Answers with overall code OK / all answers (hot and mixed scenarios). */
  readonly okShare: number;
  /**
   * Requests that did not get a decision, seen from both ends: server side, non-OK gRPC statuses
   * the server counted plus requests sent but never answered with a decision; client side,
   * non-2xx, resets, timeouts (and for vary-load, answers without a message). Both are lower
   * bounds of the same set, so the larger one is reported.
   */
  readonly errors: number;
  /** Server-side errors by code (meshlimit_requests_total), non-zero codes only. */
  readonly errorsByCode: Readonly<Record<string, number>>;
  readonly serviceCpuUsPerRequest: number;
  /**
   * Share of the run the service's main thread was runnable but waiting for a CPU held by
   * another process (/proc schedstat): the noise this run suffered. 0.05 = 5%.
   */
  readonly cpuWaitShare: number;
  /** The same for the Redis server(s) of the target (summed over nodes), when Redis-backed. */
  readonly redisCpuWaitShare: number | undefined;
  readonly rssMiB: number;
  /** Script calls and Redis CPU per request (Redis-backed targets only). */
  readonly redis?: { readonly scriptCallsPerRequest: number; readonly usPerRequest: number } | undefined;
  readonly latency?: LatencySummary | undefined;
  readonly commands: readonly string[];
}

interface Before {
  counts: Counts;
  script: ScriptStats | undefined;
  cpuMs: number;
  waitNs: number;
  redisWaitNs: number | undefined;
  at: bigint;
}

async function snapshot(t: Target): Promise<Before> {
  return {
    counts: await t.counts(),
    script: t.scriptStats ? await t.scriptStats() : undefined,
    cpuMs: t.cpuMs(),
    waitNs: t.waitNs(),
    redisWaitNs: t.redisWaitNs?.(),
    at: process.hrtime.bigint(),
  };
}

/** Figures of one run, from counters read before and after it. */
async function close(
  t: Target,
  before: Before,
  sent: number,
  seconds: number,
  clientFailures: number,
  commands: readonly string[],
  latenciesUs?: ArrayLike<number>,
): Promise<Sample> {
  const after = await snapshot(t);
  const ok = after.counts.ok - before.counts.ok;
  const over = after.counts.overLimit - before.counts.overLimit;
  const serverErrors = after.counts.errors - before.counts.errors;
  const unanswered = Math.max(0, sent - ok - over - serverErrors);
  const script =
    before.script && after.script
      ? { calls: after.script.calls - before.script.calls, usec: after.script.usec - before.script.usec }
      : undefined;
  const errorsByCode: Record<string, number> = {};
  for (const [code, v] of Object.entries(after.counts.errorsByCode)) {
    const d = v - (before.counts.errorsByCode[code] ?? 0);
    if (d > 0) errorsByCode[code] = d;
  }
  return {
    target: t.name,
    requests: sent,
    errorsByCode,
    seconds,
    rps: sent / seconds,
    okShare: ok + over === 0 ? 0 : ok / (ok + over),
    errors: t.countsComplete ? Math.max(serverErrors + unanswered, clientFailures) : clientFailures,
    serviceCpuUsPerRequest: ((after.cpuMs - before.cpuMs) * 1000) / sent,
    cpuWaitShare: (after.waitNs - before.waitNs) / Number(after.at - before.at),
    redisCpuWaitShare:
      after.redisWaitNs === undefined || before.redisWaitNs === undefined
        ? undefined
        : (after.redisWaitNs - before.redisWaitNs) / Number(after.at - before.at),
    rssMiB: t.rssMiB(),
    redis: script ? { scriptCallsPerRequest: script.calls / sent, usPerRequest: script.calls === 0 ? 0 : script.usec / sent } : undefined,
    latency: latenciesUs ? summarizeUs(latenciesUs) : undefined,
    commands,
  };
}

const h2Failures = (r: H2loadResult): number => r.failed + r.errored + r.timeout + (r.requests - r.status2xx);

/**
 * Runs one h2load process per frame in parallel (connections split evenly), `perProcess`
 * requests each; with `logDir`, collects per-request latencies.
 */
export async function h2loadRun(
  t: Target,
  frames: readonly string[],
  shape: LoadShape,
  perProcess: number,
  cpus: string | undefined,
  logDir?: string,
): Promise<Sample> {
  const clients = Math.max(1, Math.floor(shape.clients / frames.length));
  const n = Math.max(perProcess, clients);
  const before = await snapshot(t);
  const results = await Promise.all(
    frames.map((dataFile, i) =>
      runH2load({
        port: t.grpcPort,
        tls: t.tls,
        dataFile,
        clients,
        streams: shape.streams,
        requests: n,
        cpus,
        logFile: logDir === undefined ? undefined : path.join(logDir, `lat-${process.pid}-${i}.tsv`),
      }),
    ),
  );
  const sent = results.reduce((s, r) => s + r.requests, 0);
  const seconds = Math.max(...results.map((r) => r.seconds));
  let latencies: Float64Array | undefined;
  if (logDir !== undefined) {
    const all = results.flatMap((r) => Array.from(r.latenciesUs ?? []));
    latencies = Float64Array.from(all);
  }
  return close(
    t,
    before,
    sent,
    seconds,
    results.reduce((s, r) => s + h2Failures(r), 0),
    results.map((r) => r.command),
    latencies,
  );
}

export interface VaryLoadOptions {
  readonly connections: number;
  readonly streams: number;
  readonly requests: number;
  /** Index of the first IP (runs on one target use disjoint ranges, so every IP is new). */
  readonly start: number;
}

interface VaryOut {
  completed: number;
  failed: number;
  seconds: number;
  latency: LatencySummary;
}

/** High-cardinality load (benchmarks/vary-load.ts in a child process pinned to `cpus`). */
export async function varyRun(t: Target, o: VaryLoadOptions, cpus: string | undefined): Promise<Sample> {
  const arg = JSON.stringify({ port: t.grpcPort, connections: o.connections, streams: o.streams, requests: o.requests, start: o.start });
  const [cmd, args] = pinned(cpus, 'node', ['--import', 'tsx', path.join(ROOT, 'benchmarks/vary-load.ts'), arg]);
  const before = await snapshot(t);
  // spawnTracked's exit waits for the pipes to end, so the JSON line is read whole.
  const child = spawnTracked(cmd, args, { name: 'vary-load', cwd: ROOT });
  const code = await child.exited;
  const text = child.output();
  const line = text.split('\n').find((l) => l.startsWith('{'));
  if (code !== 0 || line === undefined) throw new Error(`vary-load exited with ${code}:\n${text.slice(-2000)}`);
  const out = JSON.parse(line) as VaryOut;
  const shown = args.map((a) => (a.startsWith(ROOT) ? a.slice(ROOT.length) : a.startsWith('{') ? `'${a}'` : a));
  const sample = await close(t, before, o.requests, out.seconds, out.failed + (o.requests - out.completed), [`${cmd} ${shown.join(' ')}`]);
  return { ...sample, latency: out.latency };
}
