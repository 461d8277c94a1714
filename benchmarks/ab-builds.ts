/**
 * End-to-end A/B of two builds of meshlimit: the working tree against a git revision (`--base`),
 * under the same h2load load, interleaved (A B, B A, ...), each alone on the service CPU in turn,
 * as benchmarks/codec/ab.ts does for two codecs. Reported: the median of the per-pair ratios
 * (working tree / base requests per second) with its 95% interval, and service CPU per request.
 * For "did this change make the hot path slower?".
 *
 *   npx tsx benchmarks/ab-builds.ts --base <rev> [--reps 11] [--seconds 3] [--scenario one-tb] [--backend memory|redis]
 *
 * The base is built from `git archive <rev>` into benchmarks/.work/ab-base (it runs with this
 * tree's node_modules). Writes benchmarks/.work/ab-builds-<scenario>-<backend>.json.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { requestFrame } from './lib/frames.js';
import { h2loadRun, type Sample } from './lib/measure.js';
import { buildSnapshot, ROOT, SNAPSHOT_DIR } from './lib/procs.js';
import { SCENARIOS } from './lib/scenarios.js';
import { median, medianInterval, round } from './lib/stats.js';
import { startMeshlimit, startStandaloneRedis, type Target } from './lib/targets.js';
import { cpuLayout } from './phases/context.js';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1] ?? '');
const base = args.get('base') ?? '';
const reps = Number(args.get('reps') ?? 11);
const seconds = Number(args.get('seconds') ?? 3);
const scenario = SCENARIOS.find((s) => s.id === (args.get('scenario') ?? 'one-tb'));
const backendKind = args.get('backend') ?? 'memory';
if (base === '' || scenario === undefined || !(reps > 0) || !(seconds > 0) || !['memory', 'redis'].includes(backendKind)) {
  process.stderr.write(
    'usage: npx tsx benchmarks/ab-builds.ts --base <rev> [--reps N] [--seconds S] [--scenario one-tb|one-fw|four|...] [--backend memory|redis]\n',
  );
  process.exit(2);
}

const WORK = path.join(ROOT, 'benchmarks/.work/ab-base');

/** `rev` compiled as buildSnapshot compiles the working tree. */
function buildBase(rev: string): string {
  const src = path.join(WORK, 'src-tree');
  rmSync(WORK, { recursive: true, force: true });
  mkdirSync(src, { recursive: true });
  const tar = execFileSync('git', ['archive', rev, 'src', 'lua', 'proto', 'package.json', 'tsconfig.json', 'tsconfig.build.json'], {
    cwd: ROOT,
    maxBuffer: 1 << 28,
  });
  execFileSync('tar', ['-x', '-C', src], { input: tar });
  const tsc = path.join(ROOT, 'node_modules/typescript/bin/tsc');
  const r = spawnSync('node', [tsc, '-p', path.join(src, 'tsconfig.build.json'), '--outDir', path.join(WORK, 'dist')], {
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`building ${rev} failed:\n${r.stdout}${r.stderr}`);
  for (const f of ['lua', 'proto', 'package.json']) cpSync(path.join(src, f), path.join(WORK, f), { recursive: true });
  return WORK;
}

async function main(): Promise<void> {
  const cpus = cpuLayout();
  buildSnapshot();
  const builds = { tree: SNAPSHOT_DIR, base: buildBase(base) };
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
  const run = async (name: 'tree' | 'base', rate: number): Promise<Sample> => {
    const t = await start(name, builds[name]);
    try {
      await h2loadRun(t, frames, shape, 20_000, cpus.load); // warm-up
      return await h2loadRun(t, frames, shape, Math.max(5_000, Math.round((rate * seconds) / frames.length)), cpus.load);
    } finally {
      await t.stop();
    }
  };
  const pairs: { tree: Sample; base: Sample }[] = [];
  let rate = 20_000;
  try {
    for (let rep = 0; rep < reps; rep++) {
      const order = rep % 2 === 0 ? (['tree', 'base'] as const) : (['base', 'tree'] as const);
      const got: Partial<Record<'tree' | 'base', Sample>> = {};
      for (const which of order) got[which] = await run(which, rate);
      const p = got as { tree: Sample; base: Sample };
      pairs.push(p);
      rate = p.tree.rps;
      process.stderr.write(
        `rep ${rep + 1}/${reps}: tree ${Math.round(p.tree.rps)} req/s (${p.tree.serviceCpuUsPerRequest.toFixed(1)} us cpu), ${base} ${Math.round(p.base.rps)} req/s (${p.base.serviceCpuUsPerRequest.toFixed(1)} us cpu), ratio ${(p.tree.rps / p.base.rps).toFixed(3)}, errors ${p.tree.errors + p.base.errors}\n`,
      );
    }
  } finally {
    await redis?.stop();
  }
  const ratios = pairs.map((p) => p.tree.rps / p.base.rps);
  const cpuRatios = pairs.map((p) => p.base.serviceCpuUsPerRequest / p.tree.serviceCpuUsPerRequest);
  const summary = {
    when: new Date().toISOString(),
    node: process.version,
    base,
    scenario: scenario!.id,
    backend: backendKind,
    reps,
    secondsPerRun: seconds,
    load: `h2load -c${shape.clients} -m${shape.streams}`,
    cpus: cpus.note,
    throughputRatio: { median: round(median(ratios), 3), interval95: medianInterval(ratios), runs: ratios.map((x) => round(x, 3)) },
    cpuPerRequestRatio: { median: round(median(cpuRatios), 3), interval95: medianInterval(cpuRatios) },
    rps: { tree: Math.round(median(pairs.map((p) => p.tree.rps))), base: Math.round(median(pairs.map((p) => p.base.rps))) },
    serviceCpuUsPerRequest: {
      tree: round(median(pairs.map((p) => p.tree.serviceCpuUsPerRequest)), 2),
      base: round(median(pairs.map((p) => p.base.serviceCpuUsPerRequest)), 2),
    },
    errors: pairs.reduce((a, p) => a + p.tree.errors + p.base.errors, 0),
  };
  const out = path.join(ROOT, 'benchmarks/.work', `ab-builds-${scenario!.id}-${backendKind}.json`);
  writeFileSync(out, `${JSON.stringify(summary, null, 2)}\n`);
  process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
}

await main();
