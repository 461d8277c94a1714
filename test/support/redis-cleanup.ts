/**
 * Cleanup of test `redis-server` processes and their temp dirs, whatever way the test process ends.
 *
 * Contract: every started server is tracked and SIGKILLed by its set-up's `stop()`, by a
 * synchronous `process.on('exit')` hook and by SIGINT/SIGTERM/SIGHUP hooks; the temp roots go with
 * them. A test process that is itself SIGKILLed cannot run hooks, so each set-up's start first
 * reaps what a dead test process left behind (`reapOrphans`): it only kills a process whose pid
 * file sits in a dead owner's temp root *and* whose cwd is that file's dir.
 */
import { existsSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Temp roots are `<tmpdir>/meshlimit-redis-<owner pid>-XXXXXX`. */
const DIR_PREFIX = 'meshlimit-redis-';
/** Each server writes its pid here, in its own dir (its cwd), for `reapOrphans`. */
export const PID_FILE = 'harness.pid';

/** What the exit hooks need of a live process: a signal, no waiting. */
export interface Killable {
  killSync(): void;
}

const tracked = new Set<Killable>();
const trackedDirs = new Set<string>();
let hooksInstalled = false;

function killAllSync(): void {
  for (const p of tracked) p.killSync();
  for (const d of trackedDirs) rmSync(d, { recursive: true, force: true });
}

/** Installed on first use, so importing this module has no side effects. */
function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', killAllSync);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      killAllSync();
      process.off(sig, onSignal);
      // Listening to a signal disables Node's default exit; restore it unless someone else decides.
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    };
    process.on(sig, onSignal);
  }
}

/** Tracks a process that is (about to be) running, until {@link untrack}. */
export function track(p: Killable): void {
  installExitHooks();
  tracked.add(p);
}

export function untrack(p: Killable): void {
  tracked.delete(p);
}

/** A temp root for one set-up; removed by `removeTempRoot` or the exit hook. */
export function makeTempRoot(): string {
  installExitHooks();
  const root = mkdtempSync(join(tmpdir(), `${DIR_PREFIX}${process.pid}-`));
  trackedDirs.add(root);
  return root;
}

export function removeTempRoot(root: string): void {
  rmSync(root, { recursive: true, force: true });
  trackedDirs.delete(root);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Kills servers left by test processes that died without running their exit hooks (SIGKILL,
 * OOM) and removes their temp roots. Safe to run concurrently from several workers.
 */
export function reapOrphans(): void {
  const base = tmpdir();
  const pattern = new RegExp(`^${DIR_PREFIX}(\\d+)-`);
  let entries: string[];
  try {
    entries = readdirSync(base);
  } catch {
    return;
  }
  for (const entry of entries) {
    const owner = pattern.exec(entry)?.[1];
    if (owner === undefined || Number(owner) === process.pid || isAlive(Number(owner))) continue;
    const root = join(base, entry);
    try {
      for (const sub of readdirSync(root)) killIfOrphan(join(root, sub));
    } catch {
      // another worker is reaping the same root
    }
    rmSync(root, { recursive: true, force: true });
  }
}

/** SIGKILLs the process named by `dir`'s pid file when it is alive and `dir` is its cwd. */
function killIfOrphan(dir: string): void {
  const pidFile = join(dir, PID_FILE);
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8'));
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return;
  let cwd = '';
  try {
    cwd = readlinkSync(`/proc/${pid}/cwd`);
  } catch {
    return;
  }
  if (cwd === dir) process.kill(pid, 'SIGKILL');
}
