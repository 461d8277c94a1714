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
import { runAb } from '../lib/ab.js';
import { buildSnapshot, ROOT, SNAPSHOT_DIR } from '../lib/procs.js';
import { SCENARIOS } from '../lib/scenarios.js';

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
  const b = builds();
  mkdirSync(WORK, { recursive: true });
  const summary = await runAb({
    a: { name: 'hand', buildDir: b.hand },
    b: { name: 'protoLoader', buildDir: b.loader },
    scenario: scenario!,
    backend: backendKind as 'memory' | 'redis',
    reps,
    secondsPerRun: seconds,
    workDir: WORK,
    progress: (rep, n, line) => process.stderr.write(`rep ${rep}/${n}: ${line}\n`),
  });
  const out = path.join(ROOT, 'benchmarks/codec/results', `ab-${scenario!.id}-${backendKind}.json`);
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(summary, null, 2)}\n`);
  process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
}

await main();
