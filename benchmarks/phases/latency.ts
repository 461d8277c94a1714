/**
 * Latency one request at a time (h2load -c1 -m1): each latency scenario against every target,
 * then, for standalone Redis, a second layout with Redis moved to the service's CPU.
 */
import { pingRoundTrip } from '../lib/calibrate.js';
import { h2loadRun } from '../lib/measure.js';
import { pinPid } from '../lib/procs.js';
import type { RedisDeployment, Target } from '../lib/targets.js';
import { log, onCpus, type Results, type RunContext } from './context.js';

export async function measureLatency(ctx: RunContext, results: Results): Promise<void> {
  if (ctx.plan.skip.has('latency')) return;
  for (const id of ctx.plan.latencyScenarios) {
    for (const t of ctx.targets) await latencyRow(ctx, results, id, t, false);
  }
  const redisTarget = ctx.targets.find((t) => t.name === 'redis');
  const { service, load } = ctx.cpus;
  if (ctx.single !== undefined && redisTarget !== undefined && service !== undefined && load !== undefined && service !== load) {
    await withRedisOnServiceCpu(ctx, results, ctx.single, redisTarget);
  }
}

/**
 * The second layout: standalone Redis moved to the service's CPU. One request at a time, every
 * hop between the two CPUs wakes an idle vCPU (tens of microseconds here): with Redis beside
 * h2load a request crosses CPUs four times, the echo server's twice. Beside the service, Redis
 * costs what it costs, not two more wake-ups (see README). Redis goes back to the load CPU after.
 */
async function withRedisOnServiceCpu(ctx: RunContext, results: Results, dep: RedisDeployment, redisTarget: Target): Promise<void> {
  const { service, load } = ctx.cpus;
  for (const pid of dep.pids) pinPid(pid, service);
  try {
    for (const id of ctx.plan.latencyScenarios) await latencyRow(ctx, results, id, redisTarget, true);
    const calibration = results.calibration;
    if (calibration !== undefined)
      calibration.roundTripRedisOnServiceCpu = await onCpus(service, () => pingRoundTrip(dep.primaryPorts[0] as number));
  } finally {
    for (const pid of dep.pids) pinPid(pid, load);
  }
}

/** One h2load -c1 -m1 run of scenario `id` against `t`, recorded as a latency row. */
async function latencyRow(ctx: RunContext, results: Results, id: string, t: Target, redisOnServiceCpu: boolean): Promise<void> {
  const files = ctx.frames.get(id);
  if (files === undefined) return;
  const s = await h2loadRun(t, files.slice(0, 1), { clients: 1, streams: 1 }, ctx.plan.latencyRequests, ctx.cpus.load, ctx.logDir);
  const l = s.latency;
  if (l === undefined) return;
  results.latency.push({
    scenario: id,
    target: t.name,
    ...(redisOnServiceCpu ? { redisOnServiceCpu } : {}),
    ...l,
    errors: s.errors,
    errorsByCode: s.errorsByCode,
    redisUsPerRequest: s.redis?.usPerRequest,
    command: s.commands[0] ?? '',
  });
  log(
    `latency ${id} ${t.name}${redisOnServiceCpu ? ' (Redis on the service CPU)' : ''}: p50 ${l.p50} ms, p99 ${l.p99} ms, p99.9 ${l.p999} ms`,
  );
}
