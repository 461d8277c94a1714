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
}

/**
 * Starts `src/main.ts` on free loopback ports with `env` over a minimal base (PATH, ports, hosts,
 * LOG_LEVEL=warn); `env` must name CONFIG_DIR (or CONFIG_TYPE=GRPC_XDS_SOTW). Nothing of the test
 * process's own environment leaks in but PATH, so a test sees what an operator's environment gives.
 */
export async function spawnService(env: Readonly<Record<string, string>>, opts: SpawnServiceOptions = {}): Promise<ServiceProcess> {
  const [httpPort, grpcPort] = [await getFreePort(), await getFreePort()];
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
    const ready = async (): Promise<boolean> => (await fetch(`${httpUrl}/healthcheck`).catch(() => undefined))?.status === 200;
    await eventually(ready, opts.readyTimeoutMs ?? 20_000, 100).catch(async () => {
      await proc.stop();
      throw new Error(`meshlimit${opts.what === undefined ? '' : ` (${opts.what})`} did not become ready:\n${proc.output()}`);
    });
  }
  return { proc, httpPort, grpcPort, httpUrl, grpcAddress: `127.0.0.1:${grpcPort}` };
}
