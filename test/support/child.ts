import { spawn, type ChildProcess } from 'node:child_process';

/**
 * A child process for tests and benchmarks: output piped and kept (the tail, for error
 * messages), exit as a promise, and tracked so it is SIGKILLed if the parent exits first.
 */
export interface TrackedChild {
  readonly name: string;
  readonly pid: number;
  readonly child: ChildProcess;
  /** The last `keepBytes` of stdout+stderr. */
  output(): string;
  /** Resolves with the exit code once the process has exited (-1 when it could not start). */
  readonly exited: Promise<number | null>;
  /** SIGTERM, then SIGKILL after `graceMs`. Idempotent. */
  stop(graceMs?: number): Promise<void>;
}

export interface SpawnOptions {
  readonly name?: string;
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** How much output to keep (default 64 KiB). */
  readonly keepBytes?: number;
}

const live = new Set<ChildProcess>();
let hooked = false;
function hookExit(): void {
  if (hooked) return;
  hooked = true;
  const killAll = (): void => {
    for (const c of live) {
      try {
        c.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
    live.clear();
  };
  process.on('exit', killAll);
  // Ctrl-C or a CI timeout: take the children down, then die of the same signal.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      killAll();
      process.kill(process.pid, signal);
    });
  }
}

/** Resolves once stdout and stderr have both closed, or after `ms`, whichever comes first. */
function outputEnded(child: ChildProcess, ms: number): Promise<void> {
  const streams = [child.stdout, child.stderr].filter((s): s is NonNullable<typeof s> => s !== null && !s.closed);
  if (streams.length === 0) return Promise.resolve();
  return new Promise((resolve) => {
    let open = streams.length;
    const timer = setTimeout(resolve, ms);
    timer.unref();
    for (const s of streams) {
      s.once('close', () => {
        if (--open === 0) {
          clearTimeout(timer);
          resolve();
        }
      });
    }
  });
}

export function spawnTracked(cmd: string, args: readonly string[], opts: SpawnOptions = {}): TrackedChild {
  hookExit();
  const child = spawn(cmd, [...args], { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  const keepBytes = opts.keepBytes ?? 64 * 1024;
  let out = '';
  const keep = (d: Buffer): void => {
    out += d.toString();
    if (out.length > keepBytes) out = out.slice(-keepBytes);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      live.delete(child);
      // 'exit' can come before the last output has been read from the pipes: wait for both to
      // end, so output() holds everything the process wrote (bounded: a grandchild that kept a
      // pipe open must not hold the caller up).
      void outputEnded(child, 2_000).then(() => resolve(code));
    });
    child.once('error', () => {
      live.delete(child);
      resolve(-1);
    });
  });
  let stopping: Promise<void> | undefined;
  return {
    name: opts.name ?? cmd,
    pid: child.pid ?? -1,
    child,
    output: () => out,
    exited,
    stop(graceMs = 3000) {
      stopping ??= (async () => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(t);
      })();
      return stopping;
    },
  };
}
