import type { Cluster, Redis } from 'ioredis';
import type { StoredStates } from '../../limiter/ports.js';
import { BackendUnavailableError } from '../../errors.js';
import { toBackendError } from './errors.js';

/**
 * `Backend.readStates` on Redis: `TIME` and one `GET` per key, nothing else, so reading can never
 * charge or re-arm a counter (`POST /v1/explain`). The decision is then computed in TypeScript by
 * the reference math the Lua scripts mirror (src/limiter/algorithms/evaluate.ts), over exactly the
 * bytes the scripts would read: a read-only twin needs no Lua of its own.
 *
 * Not atomic across keys (no script, no MULTI): two keys may be read a few microseconds apart.
 * Explain reports what a request would find, not a promise; an atomic read would need a script
 * per slot on a cluster for no gain an operator could see.
 */

/** Standalone or Sentinel: one pipeline (TIME then the GETs), one round trip. */
export async function readStatesStandalone(client: Redis, keys: readonly string[], now: number | undefined): Promise<StoredStates> {
  if (client.status !== 'ready')
    throw new BackendUnavailableError(`redis is not connected (client status ${client.status}); explain reads the counters from it`);
  const p = client.pipeline();
  p.time();
  for (const k of keys) p.getBuffer(k);
  let replies: [Error | null, unknown][] | null;
  try {
    replies = await p.exec();
  } catch (err) {
    throw toBackendError(err);
  }
  if (replies === null) throw new BackendUnavailableError('redis: the read pipeline was discarded');
  for (const [err] of replies) if (err !== null) throw toBackendError(err);
  return { now: now ?? timeMs(replies[0]![1]), values: replies.slice(1).map(([, v]) => bytes(v)) };
}

/** Cluster: TIME from one master, each GET routed to its key's slot (keys of one request may span slots). */
export async function readStatesCluster(client: Cluster, keys: readonly string[], now: number | undefined): Promise<StoredStates> {
  if (client.status !== 'ready')
    throw new BackendUnavailableError(
      `redis cluster is not connected (client status ${client.status}); explain reads the counters from it`,
    );
  try {
    const [time, ...values] = await Promise.all([
      now === undefined ? client.nodes('master')[0]!.time() : Promise.resolve(undefined),
      ...keys.map((k) => client.getBuffer(k)),
    ]);
    return { now: now ?? timeMs(time), values: values.map(bytes) };
  } catch (err) {
    throw toBackendError(err);
  }
}

/** TIME's [seconds, microseconds] as integer Unix ms, as lua/includes/time-now.lua computes it. */
function timeMs(reply: unknown): number {
  const [s, us] = reply as [string, string];
  return Number(s) * 1000 + Math.floor(Number(us) / 1000);
}

/** A stored value as the scripts and the memory backend see it: one char per byte. */
function bytes(v: unknown): string | null {
  return Buffer.isBuffer(v) ? v.toString('latin1') : null;
}
