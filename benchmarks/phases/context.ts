/**
 * What the phases share: the run's context (plan, CPU layout, directories, request frames, the
 * started targets and Redis deployments, teardowns) and the results collector each phase fills
 * in. A phase reads the context and writes only its own part of the results.
 */
import os from 'node:os';
import type { BurstResult, SlidingResult } from '../lib/accuracy.js';
import type { Calibration } from '../lib/calibrate.js';
import type { Sample } from '../lib/measure.js';
import { hasTaskset, pinPid } from '../lib/procs.js';
import type { HighCardRow, LatencyRow, ThroughputRow, TlsResult, WorkersResult } from '../lib/report.js';
import type { SweepPoint } from '../lib/svg.js';
import type { RedisDeployment, Target } from '../lib/targets.js';
import type { Plan } from './plan.js';

export const log = (msg: string): void => {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
};

/** Which CPUs the service and the load (h2load, Redis) use; undefined: not pinned. */
export interface CpuLayout {
  readonly service: string | undefined;
  readonly load: string | undefined;
  readonly note: string;
}

export function cpuLayout(): CpuLayout {
  const n = os.cpus().length;
  const service = process.env['BENCH_SERVICE_CPUS'];
  const load = process.env['BENCH_LOAD_CPUS'];
  if (service !== undefined || load !== undefined)
    return { service, load, note: `from BENCH_SERVICE_CPUS=${service ?? ''} BENCH_LOAD_CPUS=${load ?? ''}` };
  if (n < 2 || !hasTaskset())
    return { service: undefined, load: undefined, note: `not pinned (${n} CPU(s), taskset ${hasTaskset() ? 'present' : 'missing'})` };
  return { service: '0', load: '1', note: 'service (echo or meshlimit) on CPU 0; h2load, vary-load and every redis-server on CPU 1' };
}

/**
 * Runs `fn` with this process pinned to `cpus` (all its threads), then lets it use every CPU
 * again: a PING round trip measured from the service's CPU is the one the service pays.
 */
export async function onCpus<T>(cpus: string | undefined, fn: () => Promise<T>): Promise<T> {
  pinPid(process.pid, cpus);
  try {
    return await fn();
  } finally {
    if (cpus !== undefined) pinPid(process.pid, `0-${os.cpus().length - 1}`);
  }
}

/** Teardowns, run once in reverse order of registration (a failing one does not stop the rest). */
export class Teardowns {
  private readonly stops: (() => Promise<void>)[] = [];

  add(stop: () => Promise<void>): void {
    this.stops.push(stop);
  }

  async run(): Promise<void> {
    for (const s of this.stops.splice(0).reverse()) await s().catch(() => undefined);
  }
}

export interface RunContext {
  readonly plan: Plan;
  readonly cpus: CpuLayout;
  /** benchmarks/.work/frames: one gRPC frame file per request of each scenario. */
  readonly framesDir: string;
  /** benchmarks/.work/logs: h2load's per-request latency logs. */
  readonly logDir: string;
  /** The throughput config directory every long-lived meshlimit target loads. */
  readonly configDir: string;
  /** Scenario id -> its frame files, one per request shape. */
  readonly frames: ReadonlyMap<string, readonly string[]>;
  /** The started targets, echo first, in the order every phase interleaves them. */
  readonly targets: readonly Target[];
  readonly single: RedisDeployment | undefined;
  readonly cluster: RedisDeployment | undefined;
  /** Targets this build cannot run, with why (the report's `meta.unsupported`). */
  readonly unsupported: Readonly<Record<string, string>>;
  readonly teardowns: Teardowns;
}

/** What the phases measured; the report phase turns it into results.json and results.md. */
export interface Results {
  calibration: Calibration | undefined;
  /** Throughput samples by `${scenario}/${target}`, one per repetition. */
  readonly samples: Map<string, Sample[]>;
  /** The latest req/s by `${scenario}/${target}`: sizes the next run (and the sweep's runs). */
  readonly rates: Map<string, number>;
  warmupErrors: number;
  throughput: ThroughputRow[];
  readonly latency: LatencyRow[];
  readonly sweep: SweepPoint[];
  readonly highCardinality: HighCardRow[];
  workers: WorkersResult;
  tls: TlsResult | undefined;
  readonly bursts: BurstResult[];
  readonly sliding: SlidingResult[];
  /** Phases that failed (their figures are missing), with the error. */
  readonly phaseErrors: Record<string, string>;
}

export function emptyResults(): Results {
  return {
    calibration: undefined,
    samples: new Map(),
    rates: new Map(),
    warmupErrors: 0,
    throughput: [],
    latency: [],
    sweep: [],
    highCardinality: [],
    workers: { supported: false, note: 'skipped' },
    tls: undefined,
    bursts: [],
    sliding: [],
    phaseErrors: {},
  };
}

/**
 * Runs one phase; a failure (a process that cannot start, a tool error) is recorded in
 * `phaseErrors` and the run goes on: the other phases' figures are still written.
 */
export async function guard(results: Results, name: string, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (e) {
    results.phaseErrors[name] = (e instanceof Error ? e.message : String(e)).slice(0, 1500);
    log(`phase ${name} failed: ${results.phaseErrors[name]}`);
  }
}
