/**
 * Before any measurement: the work directories, the private build (full runs), one request
 * frame file per request of each scenario, and every target started once for the whole run.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { requestFrame } from '../lib/frames.js';
import { buildSnapshot, ROOT } from '../lib/procs.js';
import type { Scenario } from '../lib/scenarios.js';
import {
  startClusterRedis,
  startEcho,
  startMeshlimit,
  startStandaloneRedis,
  StartupError,
  type RedisDeployment,
  type Target,
} from '../lib/targets.js';
import { cpuLayout, log, type RunContext, type Teardowns } from './context.js';
import type { Plan } from './plan.js';

type Prepared = Pick<RunContext, 'plan' | 'cpus' | 'framesDir' | 'logDir' | 'configDir' | 'frames'>;
type Started = Pick<RunContext, 'targets' | 'single' | 'cluster' | 'unsupported'>;

/** Directories, the build (unless run from src/ with tsx) and the frame files. Starts nothing. */
export function prepare(plan: Plan): Prepared {
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
  const configDir = path.join(ROOT, 'benchmarks/config/throughput');
  return { plan, cpus, framesDir, logDir, configDir, frames: writeFrames(plan.scenarios, framesDir) };
}

/** Writes `<framesDir>/<scenario>-<i>.bin` for each request of each scenario; scenario id -> files. */
function writeFrames(scenarios: readonly Scenario[], framesDir: string): Map<string, string[]> {
  const frames = new Map<string, string[]>();
  for (const sc of scenarios) {
    frames.set(
      sc.id,
      sc.requests.map((req, i) => {
        const file = path.join(framesDir, `${sc.id}-${i}.bin`);
        writeFileSync(file, requestFrame(req));
        return file;
      }),
    );
  }
  return frames;
}

/**
 * Starts every target of the plan in order (echo first), with the Redis deployments they need.
 * A meshlimit build that refuses a backend at start-up (StartupError) is recorded as unsupported
 * and the run goes on without that target. Every start registers its teardown.
 */
export async function startTargets(p: Prepared, teardowns: Teardowns): Promise<Started> {
  const { plan, cpus, configDir } = p;
  const targets: Target[] = [];
  const unsupported: Record<string, string> = {};
  let single: RedisDeployment | undefined;
  let cluster: RedisDeployment | undefined;
  for (const name of plan.targets) {
    log(`starting ${name}`);
    if (name === 'echo') {
      const t = await startEcho(cpus.service);
      teardowns.add(() => t.stop());
      targets.push(t);
      continue;
    }
    let backend: 'memory' | RedisDeployment = 'memory';
    if (name === 'redis') {
      const dep = await startStandaloneRedis(cpus.load);
      teardowns.add(() => dep.stop());
      backend = single = dep;
    } else if (name === 'cluster') {
      const dep = await startClusterRedis(cpus.load);
      teardowns.add(() => dep.stop());
      backend = cluster = dep;
    }
    try {
      const t = await startMeshlimit({ name, mode: plan.runMode, cpus: cpus.service, configDir, backend });
      teardowns.add(() => t.stop());
      targets.push(t);
    } catch (e) {
      if (!(e instanceof StartupError)) throw e;
      unsupported[name] = e.message.split('\n').slice(1).join(' ').trim().slice(0, 300);
      log(`${name}: not supported by this build: ${unsupported[name]}`);
    }
  }
  return { targets, single, cluster, unsupported };
}
