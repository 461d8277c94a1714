/**
 * End-to-end A/B of two builds of meshlimit: the working tree against a git revision (`--base`),
 * under the same h2load load, interleaved (A B, B A, ...), each alone on the service CPU in turn,
 * as benchmarks/codec/ab.ts does for two codecs. Reported: the median of the per-pair ratios
 * (working tree / base requests per second) with its 95% interval, and service CPU per request.
 * For "did this change make the hot path slower?".
 *
 *   npx tsx benchmarks/ab-builds.ts --base <rev> [--reps 11] [--seconds 3] [--scenario one-tb] [--backend memory|redis]
 *                                   [--latency <requests per run>]
 *
 * With `--latency`, one request at a time (h2load -c1 -m1) and the p50 and p99 ratios instead.
 *
 * The base is built from `git archive <rev>` into benchmarks/.work/ab-base (it runs with this
 * tree's node_modules). Writes benchmarks/.work/ab-builds-<scenario>-<backend>.json.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { runAb } from './lib/ab.js';
import { buildSnapshot, ROOT, SNAPSHOT_DIR } from './lib/procs.js';
import { SCENARIOS } from './lib/scenarios.js';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1] ?? '');
const base = args.get('base') ?? '';
const reps = Number(args.get('reps') ?? 11);
const seconds = Number(args.get('seconds') ?? 3);
const scenario = SCENARIOS.find((s) => s.id === (args.get('scenario') ?? 'one-tb'));
const backendKind = args.get('backend') ?? 'memory';
const latency = args.has('latency') ? Number(args.get('latency')) : undefined;
if (
  (latency !== undefined && !(latency >= 1000)) ||
  base === '' ||
  scenario === undefined ||
  !(reps > 0) ||
  !(seconds > 0) ||
  !['memory', 'redis'].includes(backendKind)
) {
  process.stderr.write(
    'usage: npx tsx benchmarks/ab-builds.ts --base <rev> [--reps N] [--seconds S] [--scenario one-tb|one-fw|four|...] [--backend memory|redis] [--latency N>=1000]\n',
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
  buildSnapshot();
  const baseDir = buildBase(base);
  const summary = await runAb({
    a: { name: 'tree', buildDir: SNAPSHOT_DIR },
    b: { name: 'base', buildDir: baseDir },
    scenario: scenario!,
    backend: backendKind as 'memory' | 'redis',
    reps,
    secondsPerRun: seconds,
    latencyRequests: latency,
    workDir: WORK,
    progress: (rep, n, line) => process.stderr.write(`rep ${rep}/${n}: ${line}\n`),
  });
  const out = path.join(
    ROOT,
    'benchmarks/.work',
    `ab-builds-${scenario!.id}-${backendKind}${latency === undefined ? '' : '-latency'}.json`,
  );
  writeFileSync(out, `${JSON.stringify({ base, ...summary }, null, 2)}\n`);
  process.stdout.write(`${JSON.stringify({ base, ...summary }, null, 2)}\n`);
}

await main();
