import cluster from 'node:cluster';
import { lstat, unlink } from 'node:fs/promises';
import { connect } from 'node:net';

/**
 * GRPC_UDS: a unix socket file outlives a process killed without closing it (SIGKILL, OOM), and
 * binding over an existing file fails with EADDRINUSE, so a container restarted with the same
 * volume would crash-loop (upstream's does). Before binding: nothing at `path` is fine; a socket
 * file that refuses connections is stale and removed; a socket something still listens on, or
 * any other kind of file, is an error naming the setting (never removed).
 *
 * With WORKERS, the workers' listens go through the primary, which holds the one socket: the
 * primary clears the path before forking (src/main.ts), and a worker, which would find its
 * siblings' socket live, does nothing here.
 */
export async function clearStaleSocket(path: string): Promise<void> {
  if (cluster.isWorker) return;
  let isSocket: boolean;
  try {
    isSocket = (await lstat(path)).isSocket();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (!isSocket) throw new Error(`GRPC_UDS: ${JSON.stringify(path)} exists and is not a unix socket; remove it or choose another path`);
  const live = await new Promise<boolean>((resolve) => {
    const probe = connect({ path });
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (live) throw new Error(`GRPC_UDS: another process is serving on ${JSON.stringify(path)}`);
  await unlink(path);
}
