/**
 * End-to-end A/B of the ShouldRateLimit codec: the same build of meshlimit run twice, once with
 * the hand-written codec (src/server/grpc/codec.ts, what the server registers) and once with
 * @grpc/proto-loader's serializers (the build's server.js patched to register the plain
 * proto-loader definition), under the same h2load load, interleaved (A B, B A, A B, ...), each
 * alone on the service CPU in turn. Reported: the median of the per-pair ratios
 * (hand-written / proto-loader requests per second) with its 95% interval, and service CPU per
 * request.
 *
 *   npx tsx benchmarks/codec/ab.ts [--reps 21] [--seconds 3] [--scenario one-tb] [--backend memory|redis]
 *
 * Writes benchmarks/codec/results/ab-<scenario>-<backend>.json.
 */
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { requestFrame } from '../lib/frames.js';
import { h2loadRun, type Sample } from '../lib/measure.js';
import { buildSnapshot, ROOT, SNAPSHOT_DIR } from '../lib/procs.js';
import { SCENARIOS } from '../lib/scenarios.js';
import { median, medianInterval, round } from '../lib/stats.js';
import { startMeshlimit, startStandaloneRedis, type Target } from '../lib/targets.js';
import { cpuLayout } from '../phases/context.js';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1] ?? '');
const reps = Number(args.get('reps') ?? 21);
const seconds = Number(args.get('seconds') ?? 3);
const scenario = SCENARIOS.find((s) => s.id === (args.get('scenario') ?? 'one-tb'));
const backendKind = args.get('backend') ?? 'memory';
if (scenario === undefined || !(reps > 0) || !(seconds > 0) || !['memory', 'redis'].includes(backendKind)) {
  process.stderr.write(
    'usage: npx tsx benchmarks/codec/ab.ts [--reps N] [--seconds S] [--scenario one-tb|one-fw|one-sw|four|...] [--backend memory|redis]\n',
  );
  process.exit(2);
}

const WORK = path.join(ROOT, 'benchmarks/.work/codec-ab');
const LOADER_BUILD = path.join(WORK, 'proto-loader');
const PATCH_FROM = 'server.addService(withHandWrittenCodec(serviceDefinition(pkg, RLS_SERVICE)),';
const PATCH_TO = 'server.addService(serviceDefinition(pkg, RLS_SERVICE),';

/** The snapshot build, and a copy whose server registers proto-loader's serializers. */
function builds(): { hand: string; loader: string } {
  buildSnapshot();
  rmSync(LOADER_BUILD, { recursive: true, force: true });
  cpSync(SNAPSHOT_DIR, LOADER_BUILD, { recursive: true });
  const server = path.join(LOADER_BUILD, 'dist/server/grpc/server.js');
  const text = readFileSync(server, 'utf8');
  if (text.split(PATCH_FROM).length !== 2) throw new Error(`cannot patch ${server}: "${PATCH_FROM}" is not there exactly once`);
  writeFileSync(server, text.replace(PATCH_FROM, PATCH_TO));
  return { hand: SNAPSHOT_DIR, loader: LOADER_BUILD };
}

async function main(): Promise<void> {
  const cpus = cpuLayout();
  const b = builds();
  mkdirSync(WORK, { recursive: true });
  const frames = scenario!.requests.map((req, i) => {
    const file = path.join(WORK, `${scenario!.id}-${i}.bin`);
    writeFileSync(file, requestFrame(req));
    return file;
  });
  const redis = backendKind === 'redis' ? await startStandaloneRedis(cpus.load) : undefined;
  const configDir = path.join(ROOT, 'benchmarks/config/throughput');
  const start = (name: string, buildDir: string): Promise<Target> =>
    startMeshlimit({ name, mode: 'dist', buildDir, cpus: cpus.service, configDir, backend: redis ?? 'memory' });
  const shape = { clients: 8, streams: 8 };
  const run = async (name: string, buildDir: string, rate: number): Promise<Sample> => {
    const t = await start(name, buildDir);
    try {
      await h2loadRun(t, frames, shape, 20_000, cpus.load); // warm-up
      return await h2loadRun(t, frames, shape, Math.max(5_000, Math.round((rate * seconds) / frames.length)), cpus.load);
    } finally {
      await t.stop();
    }
  };
  const pairs: { hand: Sample; loader: Sample }[] = [];
  let rate = 20_000;
  try {
    for (let rep = 0; rep < reps; rep++) {
      const order = rep % 2 === 0 ? (['hand', 'loader'] as const) : (['loader', 'hand'] as const);
      const got: Partial<Record<'hand' | 'loader', Sample>> = {};
      for (const which of order) got[which] = await run(which, b[which], rate);
      pairs.push(got as { hand: Sample; loader: Sample });
      rate = got.hand!.rps;
      const p = pairs.at(-1)!;
      process.stderr.write(
        `rep ${rep + 1}/${reps}: hand ${Math.round(p.hand.rps)} req/s (${p.hand.serviceCpuUsPerRequest.toFixed(1)} us cpu), proto-loader ${Math.round(p.loader.rps)} req/s (${p.loader.serviceCpuUsPerRequest.toFixed(1)} us cpu), ratio ${(p.hand.rps / p.loader.rps).toFixed(3)}, errors ${p.hand.errors + p.loader.errors}\n`,
      );
    }
  } finally {
    await redis?.stop();
  }
  const ratios = pairs.map((p) => p.hand.rps / p.loader.rps);
  const cpuRatios = pairs.map((p) => p.loader.serviceCpuUsPerRequest / p.hand.serviceCpuUsPerRequest);
  const summary = {
    when: new Date().toISOString(),
    node: process.version,
    scenario: scenario!.id,
    backend: backendKind,
    reps,
    secondsPerRun: seconds,
    load: `h2load -c${shape.clients} -m${shape.streams}`,
    cpus: cpus.note,
    throughputRatio: { median: round(median(ratios), 3), interval95: medianInterval(ratios), runs: ratios.map((x) => round(x, 3)) },
    cpuPerRequestRatio: { median: round(median(cpuRatios), 3), interval95: medianInterval(cpuRatios) },
    rps: { hand: Math.round(median(pairs.map((p) => p.hand.rps))), protoLoader: Math.round(median(pairs.map((p) => p.loader.rps))) },
    serviceCpuUsPerRequest: {
      hand: round(median(pairs.map((p) => p.hand.serviceCpuUsPerRequest)), 2),
      protoLoader: round(median(pairs.map((p) => p.loader.serviceCpuUsPerRequest)), 2),
    },
    errors: pairs.reduce((a, p) => a + p.hand.errors + p.loader.errors, 0),
  };
  const out = path.join(ROOT, 'benchmarks/codec/results', `ab-${scenario!.id}-${backendKind}.json`);
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(summary, null, 2)}\n`);
  process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
}

await main();
