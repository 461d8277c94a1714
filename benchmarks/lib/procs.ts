/**
 * Child processes under test (meshlimit and the echo baseline) and what the harness reads from
 * /proc about them: CPU time and resident memory, summed over the process and its descendants
 * (so a multi-worker meshlimit is measured whole).
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnTracked, type TrackedChild } from '../../test/support/child.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

const CLK_TCK = (() => {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const n = Number(r.stdout?.trim());
  return Number.isInteger(n) && n > 0 ? n : 100;
})();

/** True when `taskset` (util-linux) can pin processes. */
export function hasTaskset(): boolean {
  const r = spawnSync('taskset', ['--version'], { encoding: 'utf8' });
  return r.error === undefined && r.status === 0;
}

/** [command, args] with a `taskset -c cpus` prefix when cpus is set. */
export function pinned(cpus: string | undefined, cmd: string, args: readonly string[]): [string, string[]] {
  return cpus === undefined ? [cmd, [...args]] : ['taskset', ['-c', cpus, cmd, ...args]];
}

/**
 * Puts a running process (all its threads) under SCHED_FIFO priority 50 (`chrt -a -f -p`), so
 * that on a shared core nothing preempts it in the middle of a command; returns false when this
 * machine does not allow it (needs root or CAP_SYS_NICE, and chrt). Used for redis-server:
 * `INFO commandstats` measures a command's wall time, and a preemption would be counted as
 * Redis CPU.
 */
export function realtimePid(pid: number): boolean {
  return spawnSync('chrt', ['-a', '-f', '-p', '50', String(pid)], { stdio: 'ignore' }).status === 0;
}

/** Pins a running process (all its threads) to `cpus`; no-op when cpus is undefined. */
export function pinPid(pid: number, cpus: string | undefined): void {
  if (cpus === undefined) return;
  spawnSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' });
}

function procStat(pid: number): string[] | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // The command name (field 2) may hold spaces; fields after its closing parenthesis are fixed.
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** `pid` and every live descendant of it. */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const st = procStat(Number(entry));
    if (st === undefined) continue;
    const ppid = Number(st[1]);
    const list = children.get(ppid) ?? [];
    list.push(Number(entry));
    children.set(ppid, list);
  }
  const out: number[] = [];
  const walk = (p: number): void => {
    out.push(p);
    for (const c of children.get(p) ?? []) walk(c);
  };
  walk(pid);
  return out;
}

/** User + system CPU time of `pid` and its descendants, in milliseconds (clock-tick resolution). */
export function cpuTimeMs(pid: number): number {
  let ticks = 0;
  for (const p of processTree(pid)) {
    const st = procStat(p);
    if (st !== undefined) ticks += Number(st[11]) + Number(st[12]);
  }
  return (ticks * 1000) / CLK_TCK;
}

/**
 * Nanoseconds the main threads of `pid` and its descendants spent runnable but waiting for a
 * CPU (second field of /proc/<pid>/schedstat): time another process held the CPU the service
 * wanted. 0 when schedstat is unavailable.
 */
export function runQueueWaitNs(pid: number): number {
  let ns = 0;
  for (const p of processTree(pid)) {
    try {
      ns += Number(readFileSync(`/proc/${p}/schedstat`, 'latin1').split(' ')[1]);
    } catch {
      // exited, or no schedstat
    }
  }
  return ns;
}

/**
 * The whole machine's CPU time from /proc/stat's `cpu` line, in ticks: `idle` (idle + iowait)
 * and `total` (every column but guest time, which user time already counts). Two readings give
 * the share of the machine left idle between them: a saturation run should leave next to none.
 */
export function machineCpuTicks(): { idle: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
  const v = line.trim().split(/\s+/).slice(1, 9).map(Number);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  return { idle, total: v.reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0) };
}

/** Resident set size (VmRSS) of `pid` and its descendants, in MiB. */
export function rssMiB(pid: number): number {
  let kb = 0;
  for (const p of processTree(pid)) {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, 'latin1'));
      if (m) kb += Number(m[1]);
    } catch {
      // exited meanwhile
    }
  }
  return Math.round((kb / 1024) * 10) / 10;
}

export type Child = TrackedChild;

/** Spawns a child in the repository root with piped output, tracked so it dies with the harness. */
export function spawnChild(name: string, cmd: string, args: readonly string[], env: NodeJS.ProcessEnv): Child {
  return spawnTracked(cmd, args, { name, cwd: ROOT, env, keepBytes: 8000 });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * How meshlimit is run: `dist` = the harness's own build (see {@link buildSnapshot});
 * `tsx` = from src/ with tsx (no build).
 */
export type RunMode = 'dist' | 'tsx';

/** Where {@link buildSnapshot} puts its build: a private copy, not the repository's dist/. */
export const SNAPSHOT_DIR = path.join(ROOT, 'benchmarks/.work/build');

/**
 * The node flags of the production command: `npm start` is `node <flags> dist/main.js` (and the
 * Dockerfile's CMD is the same, checked by test/deploy/docker.test.ts), so the benchmark runs
 * meshlimit as it is deployed.
 */
export function productionNodeFlags(): string[] {
  const start = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } }).scripts.start;
  const words = start.split(/\s+/);
  if (words[0] !== 'node' || words.at(-1) !== 'dist/main.js')
    throw new Error(`package.json start is not "node [flags] dist/main.js": ${start}`);
  return words.slice(1, -1);
}

/** The command that runs meshlimit: `buildDir` holds the build for `dist` (default {@link SNAPSHOT_DIR}). */
export function meshlimitCommand(mode: RunMode, buildDir: string = SNAPSHOT_DIR): string[] {
  const flags = productionNodeFlags();
  return mode === 'dist'
    ? ['node', ...flags, path.join(buildDir, 'dist/main.js')]
    : ['node', ...flags, '--import', 'tsx', path.join(ROOT, 'src/main.ts')];
}

/**
 * Compiles src/ (tsconfig.build.json) into benchmarks/.work/build/dist and copies next to it
 * what the build reads at run time: lua/, proto/ and package.json (the Lua loader looks for the
 * first directory above it holding package.json and lua/; the proto loader reads ../../../proto
 * from dist/server/grpc). A private snapshot, because other work on the same checkout may
 * rebuild dist/ or edit lua/ while a long run is still starting processes: every process of one
 * run must run the same code. Packages still resolve from the repository's node_modules.
 */
export function buildSnapshot(): void {
  rmSync(SNAPSHOT_DIR, { recursive: true, force: true });
  mkdirSync(SNAPSHOT_DIR, { recursive: true });
  const tsc = path.join(ROOT, 'node_modules/typescript/bin/tsc');
  const r = spawnSync('node', [tsc, '-p', path.join(ROOT, 'tsconfig.build.json'), '--outDir', path.join(SNAPSHOT_DIR, 'dist')], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`building meshlimit failed (tsc -p tsconfig.build.json):\n${r.stdout}${r.stderr}`);
  for (const dir of ['lua', 'proto']) cpSync(path.join(ROOT, dir), path.join(SNAPSHOT_DIR, dir), { recursive: true });
  cpSync(path.join(ROOT, 'package.json'), path.join(SNAPSHOT_DIR, 'package.json'));
}
