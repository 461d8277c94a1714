/**
 * High cardinality: a new client IP on every request, driven by vary-load (h2load cannot vary
 * the body), every target in turn; the echo baseline gets at most 200,000 IPs (it keeps no
 * state). Each row's ratio is to the echo row of this phase (same driver), not to h2load figures.
 */
import { varyRun } from '../lib/measure.js';
import type { HighCardRow } from '../lib/report.js';
import { log, type Results, type RunContext } from './context.js';

export async function measureHighCardinality(ctx: RunContext, results: Results): Promise<void> {
  const { plan } = ctx;
  if (plan.skip.has('highcard')) return;
  const rows = results.highCardinality;
  for (const t of ctx.targets) {
    const requests = t.name === 'echo' ? Math.min(plan.ips, 200_000) : plan.ips;
    const s = await varyRun(t, { connections: plan.shape.clients, streams: plan.shape.streams, requests, start: 0 }, ctx.cpus.load);
    rows.push({
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
  setRatiosToEcho(rows);
}

/** Sets each row's `ratioToEcho` to its req/s over the echo row's (undefined without an echo row). */
export function setRatiosToEcho(rows: HighCardRow[]): void {
  const e = rows.find((h) => h.target === 'echo');
  for (const h of rows) h.ratioToEcho = e ? h.rps / e.rps : undefined;
}
