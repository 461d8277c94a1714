/**
 * TLS: meshlimit (memory backend, GRPC_SERVER_USE_TLS with a throwaway certificate) against the
 * grpc-js echo baseline serving the same certificate over TLS, `one-tb` at the saturation shape,
 * interleaved over `reps` repetitions (both alternate first). h2load negotiates h2 by ALPN and
 * does not verify the certificate; each of its connections makes one TLS handshake, then every
 * request pays TLS record encryption both ways, on both servers alike. The ratio says what
 * meshlimit keeps of the baseline when both pay for TLS; the plaintext ratio is the throughput
 * table's `one-tb` memory row.
 */
import { h2loadRun, type Sample } from '../lib/measure.js';
import type { TlsResult } from '../lib/report.js';
import { median, medianInterval } from '../lib/stats.js';
import { startEcho, startMeshlimit, type Target } from '../lib/targets.js';
import { createTestPki } from '../../test/support/tls-pki.js';
import { log, type Results, type RunContext } from './context.js';

export async function measureTls(ctx: RunContext, results: Results): Promise<void> {
  const { plan, cpus } = ctx;
  if (plan.skip.has('tls')) return;
  const files = ctx.frames.get('one-tb');
  if (files === undefined) return;
  const pki = createTestPki();
  const ts: Target[] = [];
  try {
    ts.push(await startEcho(cpus.service, pki.server, 'echo-tls'));
    ts.push(
      await startMeshlimit({
        name: 'memory-tls',
        mode: plan.runMode,
        cpus: cpus.service,
        configDir: ctx.configDir,
        backend: 'memory',
        tls: pki.server,
      }),
    );
    const samples: Sample[][] = [[], []];
    let errors = 0;
    for (const t of ts) errors += (await h2loadRun(t, files, plan.shape, plan.warmRequests, cpus.load)).errors;
    const perProcess = Math.max(2000, Math.round((plan.seconds * 15_000) / files.length));
    for (let rep = 0; rep < plan.reps; rep++) {
      const order = rep % 2 === 0 ? [0, 1] : [1, 0];
      for (const i of order) {
        const s = await h2loadRun(ts[i] as Target, files, plan.shape, perProcess, cpus.load);
        samples[i]!.push(s);
        errors += s.errors;
        log(
          `tls rep ${rep + 1}/${plan.reps} ${(ts[i] as Target).name}: ${Math.round(s.rps)} req/s, ${s.serviceCpuUsPerRequest.toFixed(1)} us CPU/request, errors ${s.errors}`,
        );
      }
    }
    results.tls = summarizeTls(samples[0]!, samples[1]!, errors);
  } finally {
    for (const t of ts) await t.stop();
    pki.remove();
  }
}

export function summarizeTls(echo: readonly Sample[], meshlimit: readonly Sample[], errors: number): TlsResult {
  const ratios = meshlimit.map((s, i) => s.rps / (echo[i] as Sample).rps);
  return {
    note: 'both on the service CPU, h2load on the load CPU; an EC P-256 certificate, the cipher suite whatever h2load and Node negotiate',
    echoRps: median(echo.map((s) => s.rps)),
    meshlimitRps: median(meshlimit.map((s) => s.rps)),
    cpuUsPerRequest: [median(echo.map((s) => s.serviceCpuUsPerRequest)), median(meshlimit.map((s) => s.serviceCpuUsPerRequest))],
    ratio: median(ratios),
    ratios,
    ratioInterval: ratios.length > 1 ? medianInterval(ratios) : undefined,
    errors,
    command: meshlimit[0]?.commands.join(' & ') ?? '',
  };
}
