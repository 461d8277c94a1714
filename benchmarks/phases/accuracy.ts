/**
 * Accuracy: for standalone Redis and the cluster, `accuracyProcesses` meshlimit processes on the
 * same Redis take a burst per algorithm (admitted must equal the limit); on standalone Redis in a
 * full run, the sliding window is also compared with an exact sliding log. See lib/accuracy.ts.
 */
import path from 'node:path';
import { burst, slidingPatterns, slidingVsLog } from '../lib/accuracy.js';
import { ROOT } from '../lib/procs.js';
import { startMeshlimit, type RedisDeployment, type Target } from '../lib/targets.js';
import { log, type Results, type RunContext } from './context.js';

const ALGORITHMS = ['fixed_window', 'token_bucket', 'sliding_window'] as const;

export async function measureAccuracy(ctx: RunContext, results: Results): Promise<void> {
  if (ctx.plan.skip.has('accuracy')) return;
  for (const dep of [ctx.single, ctx.cluster]) {
    if (dep === undefined) continue;
    const name = dep.kind === 'single' ? 'redis' : 'cluster';
    if (ctx.unsupported[name] !== undefined) continue;
    const services = await startAccuracyServices(ctx, dep, name);
    for (const algorithm of ALGORITHMS) {
      const r = await burst(name, services, algorithm, ctx.plan.accuracyBurst, ctx.framesDir, undefined);
      results.bursts.push(r);
      log(`accuracy ${name} ${algorithm}: admitted ${r.admitted} of limit ${r.limit} (sent ${r.sent}, errors ${r.errors})`);
    }
    if (ctx.plan.slidingLog && dep.kind === 'single') {
      for (const p of slidingPatterns()) {
        const r = await slidingVsLog(services[0] as Target, p);
        results.sliding.push(r);
        log(`sliding ${p.id}: admitted ${r.admitted}, exact log ${r.exactLogAdmitted}, max in any window ${r.maxInAnyWindow}`);
      }
    }
    for (const s of services) await s.stop();
  }
}

/**
 * The processes of one deployment's accuracy runs. Not pinned: they share both CPUs. A long
 * command timeout, so that a starved process times out no request (a timed-out script may still
 * have charged), and no admission bounds: this phase measures exactness, not shedding.
 */
async function startAccuracyServices(ctx: RunContext, dep: RedisDeployment, name: string): Promise<Target[]> {
  const services: Target[] = [];
  for (let i = 0; i < ctx.plan.accuracyProcesses; i++) {
    const t = await startMeshlimit({
      name: `${name}-acc-${i}`,
      mode: ctx.plan.runMode,
      cpus: undefined,
      configDir: path.join(ROOT, 'benchmarks/config/accuracy'),
      backend: dep,
      env: { REDIS_COMMAND_TIMEOUT_MS: '2000', ADMISSION_MAX_OUTSTANDING: '0', ADMISSION_MAX_EVENT_LOOP_DELAY_MS: '0' },
    });
    ctx.teardowns.add(() => t.stop());
    services.push(t);
  }
  return services;
}
