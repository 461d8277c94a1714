import path from 'node:path';
import { spawnTracked, type TrackedChild } from './child.js';
import { getFreePort } from './ports.js';
import { eventually } from './service.js';

/** The repository root: `src/main.ts` is started from here, as `npm run dev` does. */
export const ROOT = path.resolve(import.meta.dirname, '../..');

/** meshlimit as its own process (`src/main.ts` under tsx), configured by environment only. */
export interface ServiceProcess {
  readonly proc: TrackedChild;
  readonly httpPort: number;
  readonly grpcPort: number;
  /** `http://127.0.0.1:<httpPort>` */
  readonly httpUrl: string;
  /** `127.0.0.1:<grpcPort>` */
  readonly grpcAddress: string;
}

export interface SpawnServiceOptions {
  /** Wait until `/healthcheck` answers 200 (default true); on a timeout the process is stopped and its output thrown. */
  readonly waitReady?: boolean;
  readonly readyTimeoutMs?: number;
  /** Says what was started, in the error when it does not become ready (never the environment: it may hold secrets). */
  readonly what?: string;
  /** The [HTTP, gRPC] ports of each attempt (default: two free ones); tests of the harness pass taken ones. */
  readonly pickPorts?: (attempt: number) => Promise<readonly [number, number]>;
}

/**
 * Starts `src/main.ts` on free loopback ports with `env` over a minimal base (PATH, ports, hosts,
 * LOG_LEVEL=warn); `env` must name CONFIG_DIR (or CONFIG_TYPE=GRPC_XDS_SOTW). Nothing of the test
 * process's own environment leaks in but PATH, so a test sees what an operator's environment gives.
 */
export async function spawnService(env: Readonly<Record<string, string>>, opts: SpawnServiceOptions = {}): Promise<ServiceProcess> {
  // Free ports are a hint, not a lease (ports.ts): a process started at the same moment (another
  // service, a redis-server of a concurrent test) may take one first. meshlimit then exits naming
  // the port (EADDRINUSE); start it again on other ports.
  for (let attempt = 1; ; attempt++) {
    const ports = (await opts.pickPorts?.(attempt)) ?? ([await getFreePort(), await getFreePort()] as const);
    const started = await spawnOnce(env, opts, ports);
    if (started !== 'port_taken') return started;
    if (attempt === 3) throw new Error('meshlimit did not start: its ports were taken three times (EADDRINUSE)');
  }
}

async function spawnOnce(
  env: Readonly<Record<string, string>>,
  opts: SpawnServiceOptions,
  [httpPort, grpcPort]: readonly [number, number],
): Promise<ServiceProcess | 'port_taken'> {
  const proc = spawnTracked(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: ROOT,
    env: {
      PATH: process.env['PATH'] ?? '',
      PORT: String(httpPort),
      GRPC_PORT: String(grpcPort),
      HOST: '127.0.0.1',
      GRPC_HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      ...env,
    },
  });
  const httpUrl = `http://127.0.0.1:${httpPort}`;
  if (opts.waitReady ?? true) {
    const exited = (): boolean => proc.child.exitCode !== null || proc.child.signalCode !== null;
    const ready = async (): Promise<boolean> => {
      if (exited()) throw new Error('exited');
      // Bounded: until meshlimit binds the port, whoever holds it may accept and never answer.
      return (await fetch(`${httpUrl}/healthcheck`, { signal: AbortSignal.timeout(1_000) }).catch(() => undefined))?.status === 200;
    };
    const up = await eventually(ready, opts.readyTimeoutMs ?? 20_000, 100).then(
      () => true,
      () => false,
    );
    if (!up) {
      await proc.stop();
      if (/already in use \(EADDRINUSE\)/.test(proc.output())) return 'port_taken';
      throw new Error(`meshlimit${opts.what === undefined ? '' : ` (${opts.what})`} did not become ready:\n${proc.output()}`);
    }
  }
  return { proc, httpPort, grpcPort, httpUrl, grpcAddress: `127.0.0.1:${grpcPort}` };
}
